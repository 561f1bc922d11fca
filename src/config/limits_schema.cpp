// config (internal): `limits:`, `bounds:`, `messages:` and the per-queue fields both forms share.
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>

#include "config/schema.hpp"

namespace xqw::config::detail {
namespace {

enum class FieldKind { Bytes, Count, Cpus, Duration, Flag, Text };

// One numeric limit and its bound; the minimum keeps values the engine would refuse or misread
// (Docker needs 6 MiB of memory; a pids limit of 0 means unlimited).
struct NumericField {
  std::string_view name;
  FieldKind kind;
  std::int64_t Limits::*value;
  std::optional<std::int64_t> LimitBounds::*bound;
  std::int64_t minimum;
};

const NumericField kNumericFields[] = {
    {"memory", FieldKind::Bytes, &Limits::memory_bytes, &LimitBounds::memory_bytes, 6 * MiB},
    {"pids", FieldKind::Count, &Limits::pids, &LimitBounds::pids, 1},
    {"stdout", FieldKind::Bytes, &Limits::stdout_bytes, &LimitBounds::stdout_bytes, 1},
    {"stderr", FieldKind::Bytes, &Limits::stderr_bytes, &LimitBounds::stderr_bytes, 1},
    {"tmpfs", FieldKind::Bytes, &Limits::tmpfs_bytes, &LimitBounds::tmpfs_bytes, 1},
    {"nofile", FieldKind::Count, &Limits::nofile, &LimitBounds::nofile, 1},
    {"fsize", FieldKind::Bytes, &Limits::fsize_bytes, &LimitBounds::fsize_bytes, 1},
    {"submission", FieldKind::Bytes, &Limits::submission_bytes, &LimitBounds::submission_bytes, 1},
};

const NumericField* numeric_field(std::string_view name) {
  for (const auto& field : kNumericFields) {
    if (field.name == name) return &field;
  }
  return nullptr;
}

std::string show(FieldKind kind, std::int64_t value) {
  return kind == FieldKind::Bytes ? format_bytes(value) : std::to_string(value);
}

std::string above(const std::string& value, const std::string& bound, std::string_view field) {
  return value + " is above the operator's bound of " + bound + " (bounds." + std::string(field) +
         " in xqwatcher.yaml)";
}

std::optional<std::string> bound_violation(std::string_view field, const Limits& limits,
                                           const LimitBounds& bounds) {
  if (const auto* numeric = numeric_field(field)) {
    const auto& bound = bounds.*(numeric->bound);
    const auto value = limits.*(numeric->value);
    if (bound && value > *bound) return above(show(numeric->kind, value), show(numeric->kind, *bound), field);
    return std::nullopt;
  }
  if (field == "cpus" && bounds.cpus && limits.cpus > *bounds.cpus + 1e-9) {
    return above(format_cpus(limits.cpus) + " CPUs", format_cpus(*bounds.cpus) + " CPUs", field);
  }
  if (field == "timeout" && bounds.timeout && limits.timeout > *bounds.timeout) {
    return above(format_duration(limits.timeout), format_duration(*bounds.timeout), field);
  }
  if (field == "network" && limits.network && !bounds.network_allowed) {
    return "network access is not allowed by the operator (bounds.network: true in xqwatcher.yaml allows it)";
  }
  if (field == "runtime" && !limits.runtime.empty() && !bounds.allowed_runtimes.empty() &&
      std::find(bounds.allowed_runtimes.begin(), bounds.allowed_runtimes.end(), limits.runtime) ==
          bounds.allowed_runtimes.end()) {
    std::string allowed;
    for (const auto& runtime : bounds.allowed_runtimes) allowed += (allowed.empty() ? "" : ", ") + runtime;
    return "runtime '" + limits.runtime + "' is not one the operator allows (bounds.runtimes: " + allowed +
           ")";
  }
  return std::nullopt;
}

// "1000", "1000:1000", "grader", "grader:grader"; never root, which the container contract forbids.
std::optional<std::string> user_problem(const std::string& user) {
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

}  // namespace

const std::vector<std::string_view>& limit_field_names() {
  static const std::vector<std::string_view> names = {"memory",  "cpus",    "pids",   "timeout", "stdout",
                                                      "stderr",  "tmpfs",   "nofile", "fsize",   "submission",
                                                      "network", "runtime", "user"};
  return names;
}

const std::vector<std::string_view>& bound_field_names() {
  static const std::vector<std::string_view> names = {"memory", "cpus",       "pids",    "timeout",
                                                      "stdout", "stderr",     "tmpfs",   "nofile",
                                                      "fsize",  "submission", "network", "runtimes",
                                                      "files"};
  return names;
}

void read_limit(Reader& reader, const Node& value, const std::string& key, std::string_view field,
                Limits& limits, const LimitBounds* bounds) {
  if (field == "network") {
    const auto flag = reader.boolean(value, key);
    if (!flag) return;
    limits.network = *flag;
  } else if (field == "runtime" || field == "user") {
    const auto text = reader.text(value, key);
    if (!text) return;
    if (field == "user") {
      if (const auto problem = user_problem(*text)) return reader.error(value, key, *problem);
      limits.user = *text;
    } else {
      limits.runtime = *text;
    }
  } else {
    const auto raw = reader.scalar_text(value, key);
    if (!raw) return;
    try {
      if (field == "cpus") {
        limits.cpus = parse_cpus(*raw);
      } else if (field == "timeout") {
        const auto timeout = parse_duration(*raw);
        if (timeout.count() <= 0) return reader.error(value, key, "the timeout must be more than 0");
        limits.timeout = timeout;
      } else if (const auto* numeric = numeric_field(field)) {
        const auto parsed = numeric->kind == FieldKind::Bytes ? parse_bytes(*raw) : parse_count(*raw);
        if (parsed < numeric->minimum) {
          return reader.error(
              value, key,
              "must be at least " + show(numeric->kind, numeric->minimum) + ", got '" + *raw + "'");
        }
        limits.*(numeric->value) = parsed;
      }
    } catch (const LimitParseError& problem) {
      return reader.error(value, key, problem.what());
    }
  }
  if (bounds) {
    if (const auto violation = bound_violation(field, limits, *bounds)) reader.error(value, key, *violation);
  }
}

void read_limits(Reader& reader, const Node& map, const std::string& key, Limits& limits,
                 const LimitBounds* bounds) {
  if (!reader.expect(map, Node::Kind::Map, key)) return;
  reader.reject_unknown_keys(map, key, limit_field_names());
  for (const auto& [name, value] : map.entries) {
    const auto& names = limit_field_names();
    if (std::find(names.begin(), names.end(), name) == names.end()) continue;
    read_limit(reader, value, join_key(key, name), name, limits, bounds);
  }
}

void read_bounds(Reader& reader, const Node& map, const std::string& key, LimitBounds& bounds) {
  if (!reader.expect(map, Node::Kind::Map, key)) return;
  reader.reject_unknown_keys(map, key, bound_field_names());
  for (const auto& [name, value] : map.entries) {
    const std::string field_key = join_key(key, name);
    if (name == "network") {
      if (const auto flag = reader.boolean(value, field_key)) bounds.network_allowed = *flag;
    } else if (name == "files") {
      read_file_bounds(reader, value, field_key, bounds);
    } else if (name == "runtimes") {
      if (!reader.expect(value, Node::Kind::List, field_key)) continue;
      for (std::size_t i = 0; i < value.items.size(); ++i) {
        if (const auto runtime = reader.text(value.items[i], index_key(field_key, i))) {
          bounds.allowed_runtimes.push_back(*runtime);
        }
      }
    } else if (const auto raw = (name == "cpus" || name == "timeout" || numeric_field(name))
                                    ? reader.scalar_text(value, field_key)
                                    : std::nullopt) {
      try {
        if (name == "cpus") {
          bounds.cpus = parse_cpus(*raw);
        } else if (name == "timeout") {
          bounds.timeout = parse_duration(*raw);
        } else {
          const auto* numeric = numeric_field(name);
          bounds.*(numeric->bound) =
              numeric->kind == FieldKind::Bytes ? parse_bytes(*raw) : parse_count(*raw);
        }
      } catch (const LimitParseError& problem) {
        reader.error(value, field_key, problem.what());
      }
    }
  }
}

void check_limits_within_bounds(Reader& reader, const Node& at, const std::string& key, const Limits& limits,
                                const LimitBounds& bounds) {
  for (const auto field : limit_field_names()) {
    if (const auto violation = bound_violation(field, limits, bounds)) {
      reader.error(at, join_key(key, field), *violation);
    }
  }
}

void read_messages(Reader& reader, const Node& map, const std::string& key,
                   std::map<std::string, std::string>& messages) {
  if (!reader.expect(map, Node::Kind::Map, key)) return;
  const std::vector<std::string_view> verdicts(kMessageVerdicts.begin(), kMessageVerdicts.end());
  for (const auto& [verdict, value] : map.entries) {
    const std::string verdict_key = join_key(key, verdict);
    if (std::find(verdicts.begin(), verdicts.end(), verdict) == verdicts.end()) {
      std::string reason = "unknown verdict";
      if (const auto suggestion = closest(verdict, verdicts); !suggestion.empty()) {
        reason += " (did you mean '" + suggestion + "'?)";
      }
      reason += "; messages can be set for";
      for (std::size_t i = 0; i < verdicts.size(); ++i) reason += (i == 0 ? " " : ", ") + std::string(verdicts[i]);
      reader.error(value, verdict_key, reason);
      continue;
    }
    const auto text = reader.text(value, verdict_key);
    if (!text) continue;
    // Only {limit} is substituted; any other {word} would reach students verbatim.
    for (std::size_t open = text->find('{'); open != std::string::npos; open = text->find('{', open + 1)) {
      const auto close = text->find('}', open);
      const std::string placeholder = text->substr(open, close == std::string::npos ? 1 : close - open + 1);
      if (placeholder != "{limit}") {
        reader.error(value, verdict_key,
                     "unknown placeholder '" + placeholder + "' (only {limit} is replaced)");
        break;
      }
    }
    messages[verdict] = *text;
  }
}

std::optional<std::filesystem::path> read_grader_root(Reader& reader, const Node& node,
                                                      const std::string& key) {
  auto root = reader.path(node, key);
  if (!root) return std::nullopt;
  std::error_code ec;
  if (!std::filesystem::exists(*root, ec)) {
    reader.error(node, key, root->string() + " does not exist");
    return std::nullopt;
  }
  if (!std::filesystem::is_directory(*root, ec)) {
    reader.error(node, key, root->string() + " is not a directory");
    return std::nullopt;
  }
  const auto canonical = std::filesystem::canonical(*root, ec);
  return ec ? *root : canonical;
}

std::optional<std::filesystem::path> read_host_path(Reader& reader, const Node& node,
                                                    const std::string& key) {
  const auto text = reader.text(node, key);
  if (!text) return std::nullopt;
  const std::filesystem::path path(*text);
  if (!path.is_absolute()) {
    reader.error(node, key, "'" + *text + "' must be an absolute path on the engine's host");
    return std::nullopt;
  }
  return path.lexically_normal();
}

std::optional<std::string> read_image(Reader& reader, const Node& node, const std::string& key) {
  auto image = reader.text(node, key);
  if (!image) return std::nullopt;
  if (image->empty() ||
      std::any_of(image->begin(), image->end(), [](unsigned char c) { return std::isspace(c); })) {
    reader.error(node, key,
                 "'" + *image + "' is not an image reference (e.g. xqueue-watcher/python-grader:latest)");
    return std::nullopt;
  }
  return image;
}

std::optional<docker::PullPolicy> read_pull_policy(Reader& reader, const Node& node, const std::string& key) {
  const auto text = reader.text(node, key);
  if (!text) return std::nullopt;
  const auto policy = docker::parse_pull_policy(*text);
  if (!policy) reader.error(node, key, "unknown pull policy '" + *text + "' (use never, if-not-present or always)");
  return policy;
}

std::optional<Precreate> read_precreate(Reader& reader, const Node& node, const std::string& key) {
  if (node.kind == Node::Kind::Bool || node.kind == Node::Kind::Plain || node.kind == Node::Kind::String) {
    std::string value = node.text;
    std::transform(value.begin(), value.end(), value.begin(), [](unsigned char c) { return std::tolower(c); });
    if (value == "true" || value == "yes" || value == "on" || value == "started") return Precreate::Started;
    if (value == "created") return Precreate::Created;
    if (value == "false" || value == "no" || value == "off") return Precreate::Off;
  }
  const std::string got = node.is_scalar() ? "'" + node.text + "'" : "a " + std::string(describe(node.kind));
  reader.error(node, key, "expected started (or true), created, or false (or off), got " + got);
  return std::nullopt;
}

namespace {
// One of `names` (case-insensitive) as its index; an error naming the choices otherwise.
template <typename Enum, std::size_t N>
std::optional<Enum> read_choice(Reader& reader, const Node& node, const std::string& key,
                                const std::array<std::pair<std::string_view, Enum>, N>& names) {
  auto text = reader.text(node, key);
  if (!text) return std::nullopt;
  std::transform(text->begin(), text->end(), text->begin(), [](unsigned char c) { return std::tolower(c); });
  std::string expected;
  for (const auto& [name, value] : names) {
    if (*text == name) return value;
    expected += (expected.empty() ? "" : ", ") + std::string(name);
  }
  reader.error(node, key, "expected one of " + expected + ", got '" + node.text + "'");
  return std::nullopt;
}
}  // namespace

std::optional<ServerApi> read_server_api(Reader& reader, const Node& node, const std::string& key) {
  return read_choice<ServerApi, 2>(reader, node, key, {{{"xqueue", ServerApi::XQueue}, {"lms", ServerApi::Lms}}});
}

std::optional<PointsRounding> read_points_rounding(Reader& reader, const Node& node, const std::string& key) {
  return read_choice<PointsRounding, 3>(
      reader, node, key,
      {{{"nearest", PointsRounding::Nearest}, {"down", PointsRounding::Down}, {"up", PointsRounding::Up}}});
}

std::optional<ContractKind> read_contract(Reader& reader, const Node& node, const std::string& key) {
  const auto text = reader.text(node, key);
  if (!text) return std::nullopt;
  for (const auto kind : {ContractKind::Native, ContractKind::Upstream}) {
    if (*text == contract_name(kind)) return kind;
  }
  std::string reason = "unknown contract '" + *text + "' (use native or upstream)";
  if (const auto suggestion = closest(*text, {"native", "upstream"}); !suggestion.empty()) {
    reason = "unknown contract '" + *text + "' (did you mean '" + suggestion + "'?)";
  }
  reader.error(node, key, reason);
  return std::nullopt;
}

std::optional<std::string> read_url(Reader& reader, const Node& node, const std::string& key) {
  auto url = reader.text(node, key);
  if (!url) return std::nullopt;
  if (url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0) {
    reader.error(node, key, "'" + *url + "' is not an http:// or https:// URL");
    return std::nullopt;
  }
  while (url->size() > 8 && url->back() == '/') url->pop_back();
  return url;
}

bool check_queue_name(Reader& reader, const Node& at, const std::string& key, const std::string& name) {
  if (name.empty()) {
    reader.error(at, key, "the queue name is empty");
    return false;
  }
  if (std::any_of(name.begin(), name.end(),
                  [](unsigned char c) { return std::iscntrl(c) || std::isspace(c); })) {
    reader.error(at, key, "queue name '" + name + "' contains spaces or control characters");
    return false;
  }
  return true;
}

QueueDraft new_queue_draft(Reader& reader, const Node& map, const std::string& key, const std::string& name,
                           std::string_view rename_key, const ManagerConfig& manager) {
  QueueDraft draft;
  draft.key = key;
  draft.line = map.line;
  QueueConfig& queue = draft.queue;
  queue.source = reader.file().string();
  queue.name = name;
  queue.image = manager.default_image;
  queue.pull_policy = manager.default_pull_policy;
  queue.limits = manager.default_limits;
  queue.messages = manager.default_messages;
  queue.files = manager.default_files;
  queue.docker_host_grader_root = manager.default_docker_host_grader_root;
  if (const Node* rename = map.find(std::string(rename_key))) {
    const std::string rename_path = join_key(key, std::string(rename_key));
    if (auto value = reader.text(*rename, rename_path)) queue.name = *value;
    check_queue_name(reader, *rename, rename_path, queue.name);
  } else {
    check_queue_name(reader, map, key, queue.name);
  }
  return draft;
}

}  // namespace xqw::config::detail

namespace xqw::config {

std::string_view contract_name(ContractKind contract) {
  return contract == ContractKind::Upstream ? "upstream" : "native";
}

bool is_python_grader_image(std::string_view reference) {
  reference = reference.substr(0, reference.find('@'));  // digest
  const auto last_slash = reference.rfind('/');
  const auto tag = reference.rfind(':');
  if (tag != std::string_view::npos && (last_slash == std::string_view::npos || tag > last_slash)) {
    reference = reference.substr(0, tag);
  }
  constexpr std::string_view kRepository = "xqueue-watcher/python-grader";
  // Any registry or namespace in front ("ghcr.io/org/xqueue-watcher/python-grader"), never a longer name.
  return reference == kRepository ||
         (reference.ends_with(kRepository) && reference[reference.size() - kRepository.size() - 1] == '/');
}

std::string_view precreate_name(Precreate precreate) {
  switch (precreate) {
    case Precreate::Off: return "off";
    case Precreate::Created: return "created";
    case Precreate::Started: return "started";
  }
  return "?";
}

}  // namespace xqw::config
