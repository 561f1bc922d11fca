// config: the per-queue limits, one row each (key, member, kind, minimum, bound); what is shown of them.
// A new limit is its member in Limits (the default), its bound in LimitBounds, its row here, and the line
// in grading's container spec that applies it.
#include <algorithm>
#include <array>
#include <cctype>

#include "config/config.hpp"

namespace xqw::config {
namespace {

std::optional<std::string> network_rule(const Limits& limits, const LimitBounds* bounds) {
  if (bounds && limits.network && !bounds->network_allowed) {
    return "network access is not allowed by the operator (bounds.network: true in xqwatcher.yaml allows it)";
  }
  return std::nullopt;
}

std::optional<std::string> runtime_rule(const Limits& limits, const LimitBounds* bounds) {
  if (!bounds || limits.runtime.empty() || bounds->allowed_runtimes.empty() ||
      std::find(bounds->allowed_runtimes.begin(), bounds->allowed_runtimes.end(), limits.runtime) !=
          bounds->allowed_runtimes.end()) {
    return std::nullopt;
  }
  std::string allowed;
  for (const auto& runtime : bounds->allowed_runtimes) allowed += (allowed.empty() ? "" : ", ") + runtime;
  return "runtime '" + limits.runtime + "' is not one the operator allows (bounds.runtimes: " + allowed + ")";
}

// "1000", "1000:1000", "grader", "grader:grader"; never root, which the container contract forbids.
std::optional<std::string> user_rule(const Limits& limits, const LimitBounds*) {
  const std::string& user = limits.user;
  if (user.empty()) return std::nullopt;
  const auto colon = user.find(':');
  const std::string name = user.substr(0, colon);
  const bool well_formed = !name.empty() && std::all_of(user.begin(), user.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == ':';
  }) && std::count(user.begin(), user.end(), ':') <= 1;
  if (!well_formed) return "'" + user + "' is not a user (write a name or uid, optionally :group or :gid)";
  if (name == "root" || name == "0") {
    return "grading containers never run as root; leave user empty to let the image decide";
  }
  return std::nullopt;
}

using K = LimitKind;
using L = Limits;
using B = LimitBounds;

// The order of docs/operators.md's `limits` table and of check-config's listing.
constexpr std::array kLimitFields = std::to_array<LimitField>({
    {"memory", K::Size, &L::memory_bytes, 6 * MiB, &B::memory_bytes, "memory"},
    {"cpus", K::Cpus, &L::cpus, 0, &B::cpus, "cpus"},
    {"pids", K::Count, &L::pids, 1, &B::pids, "pids"},
    {"timeout", K::Duration, &L::timeout, 1, &B::timeout, "timeout"},
    {"stdout", K::Size, &L::stdout_bytes, 1, &B::stdout_bytes, "stdout"},
    {"stderr", K::Size, &L::stderr_bytes, 1, &B::stderr_bytes, "stderr"},
    {"tmpfs", K::Size, &L::tmpfs_bytes, 1, &B::tmpfs_bytes, "tmpfs"},
    {"nofile", K::Count, &L::nofile, 1, &B::nofile, "nofile"},
    {"fsize", K::Size, &L::fsize_bytes, 1, &B::fsize_bytes, "fsize"},
    {"submission", K::Size, &L::submission_bytes, 1, &B::submission_bytes, "submission"},
    {"network", K::Flag, &L::network, 0, {}, "network", network_rule},
    {"runtime", K::Text, &L::runtime, 0, {}, "runtimes", runtime_rule},
    {"user", K::Text, &L::user, 0, {}, "", user_rule},
});

}  // namespace

std::span<const LimitField> limit_fields() { return kLimitFields; }

const LimitField* limit_field(std::string_view key) {
  for (const auto& field : kLimitFields) {
    if (field.key == key) return &field;
  }
  return nullptr;
}

std::string show_limit(const Limits& limits, const LimitField& field) {
  return std::visit(
      [&](auto member) -> std::string {
        const auto& value = limits.*member;
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, bool>) {
          return value ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return value;
        } else if constexpr (std::is_same_v<T, double>) {
          return format_cpus(value);
        } else if constexpr (std::is_same_v<T, std::chrono::milliseconds>) {
          return format_duration_as_written(value);
        } else {
          return field.kind == LimitKind::Size ? format_bytes(value) : std::to_string(value);
        }
      },
      field.member);
}

std::string quote_limit(const Limits& limits, std::string_view key) {
  const auto* field = limit_field(key);
  if (!field) return "";
  return std::visit(
      [&](auto member) -> std::string {
        const auto& value = limits.*member;
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::string>) {
          return "";
        } else if constexpr (std::is_same_v<T, double>) {
          return value > 0 ? format_cpus(value) + " CPUs" : "";
        } else if constexpr (std::is_same_v<T, std::chrono::milliseconds>) {
          return value.count() > 0 ? verdicts::format_duration(value) : "";
        } else {
          if (value <= 0) return "";
          return field->kind == LimitKind::Size ? format_bytes(value) : std::to_string(value);
        }
      },
      field->member);
}

}  // namespace xqw::config
