// config: limit parsing ("256Mi", "500m", "20s"); pure functions, an error is the reason.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>

#include "config/config.hpp"

namespace xqw::config {
namespace {

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

// Splits "256Mi" into 256 and "Mi". The number is digits with an optional fraction; no sign.
struct Quantity {
  double value = 0;
  std::string_view unit;
};

std::optional<Quantity> split_quantity(std::string_view text) {
  std::size_t end = 0;
  bool digits = false;
  while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.')) {
    digits = digits || text[end] != '.';
    ++end;
  }
  if (!digits || std::count(text.begin(), text.begin() + end, '.') > 1) return std::nullopt;
  Quantity quantity;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + end, quantity.value);
  if (ec != std::errc() || ptr != text.data() + end) return std::nullopt;
  quantity.unit = trim(text.substr(end));
  return quantity;
}

std::unexpected<std::string> fail(std::string reason) { return std::unexpected(std::move(reason)); }

// The reason a signed `text` is refused, or nullopt.
std::optional<std::string> signed_problem(std::string_view text, std::string_view what) {
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    return quoted(text) + " is not " + std::string(what) + ": write it without a sign";
  }
  return std::nullopt;
}

struct Unit {
  std::string_view name;
  double factor;
};

constexpr Unit kByteUnits[] = {
    {"", 1},
    {"B", 1},
    {"byte", 1},
    {"bytes", 1},
    {"Ki", 1024.0},
    {"KiB", 1024.0},
    {"Mi", 1048576.0},
    {"MiB", 1048576.0},
    {"Gi", 1073741824.0},
    {"GiB", 1073741824.0},
    {"Ti", 1099511627776.0},
    {"TiB", 1099511627776.0},
    {"k", 1e3},
    {"K", 1e3},
    {"kB", 1e3},
    {"KB", 1e3},
    {"M", 1e6},
    {"MB", 1e6},
    {"G", 1e9},
    {"GB", 1e9},
    {"T", 1e12},
    {"TB", 1e12},
};

constexpr Unit kDurationUnits[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};

}  // namespace

Parsed<std::int64_t> parse_bytes(std::string_view raw) {
  const auto text = trim(raw);
  if (text.empty()) return fail("a size is required (e.g. 256Mi)");
  if (auto problem = signed_problem(text, "a size")) return fail(std::move(*problem));
  const auto quantity = split_quantity(text);
  if (!quantity) return fail(quoted(text) + " is not a size (e.g. 256Mi, 1Gi, 512Ki, 1048576)");
  if (quantity->unit == "m") {
    return fail(quoted(text) + " is ambiguous: 'm' is milli in Kubernetes and mebi in Docker; write Mi or M");
  }
  for (const auto& unit : kByteUnits) {
    if (unit.name != quantity->unit) continue;
    const double bytes = std::floor(quantity->value * unit.factor);
    if (bytes > static_cast<double>(std::numeric_limits<std::int64_t>::max() / 2)) {
      return fail(quoted(text) + " is too large");
    }
    return static_cast<std::int64_t>(bytes);
  }
  return fail(quoted(text) + " has an unknown unit " + quoted(quantity->unit) +
              " (use B, Ki, Mi, Gi, Ti for powers of 1024 or k, M, G, T for powers of 1000)");
}

Parsed<double> parse_cpus(std::string_view raw) {
  const auto text = trim(raw);
  if (text.empty()) return fail("a CPU count is required (e.g. 0.5, 2 or 500m)");
  if (auto problem = signed_problem(text, "a CPU count")) return fail(std::move(*problem));
  const auto quantity = split_quantity(text);
  if (!quantity) return fail(quoted(text) + " is not a CPU count (e.g. 0.5, 2 or 500m)");
  double cpus = quantity->value;
  if (quantity->unit == "m") {
    cpus /= 1000.0;
  } else if (!quantity->unit.empty()) {
    return fail(quoted(text) + " has an unknown unit " + quoted(quantity->unit) +
                " (write CPUs as 0.5 or millicores as 500m)");
  }
  if (cpus <= 0) return fail(quoted(text) + " must be more than 0 CPUs");
  if (cpus > 1024) return fail(quoted(text) + " is too large for a CPU count");
  return cpus;
}

Parsed<std::chrono::milliseconds> parse_duration(std::string_view raw) {
  const auto text = trim(raw);
  if (text.empty()) return fail("a duration is required (e.g. 20s, 500ms, 2m)");
  if (auto problem = signed_problem(text, "a duration")) return fail(std::move(*problem));
  const auto bad = [&] {
    return fail(quoted(text) + " is not a duration (e.g. 20s, 500ms, 1.5s, 2m, 1m30s)");
  };
  const auto is = [&](std::size_t at, auto predicate) {
    return at < text.size() && predicate(static_cast<unsigned char>(text[at]));
  };
  const auto number_char = [](unsigned char c) { return std::isdigit(c) || c == '.'; };
  const auto space = [](unsigned char c) { return std::isspace(c) != 0; };
  double total_ms = 0;
  std::size_t at = 0;
  while (at < text.size()) {  // one or more "<number><unit>" terms, e.g. "1m30s"
    const auto number_start = at;
    while (is(at, number_char)) ++at;
    const auto quantity = split_quantity(text.substr(number_start, at - number_start));
    if (!quantity) return bad();
    while (is(at, space)) ++at;
    const auto unit_start = at;
    while (is(at, [](unsigned char c) { return std::isalpha(c) != 0; })) ++at;
    const auto unit_name = text.substr(unit_start, at - unit_start);
    if (unit_name.empty()) {
      // A bare number is seconds, as upstream's integer "timeout": 20.
      if (number_start == 0 && at == text.size()) {
        total_ms = quantity->value * 1000;
        break;
      }
      return bad();
    }
    const auto unit = std::find_if(std::begin(kDurationUnits), std::end(kDurationUnits),
                                   [&](const Unit& candidate) { return candidate.name == unit_name; });
    if (unit == std::end(kDurationUnits)) {
      return fail(quoted(text) + " has an unknown unit " + quoted(unit_name) + " (use ms, s, m or h)");
    }
    total_ms += quantity->value * unit->factor;
    while (is(at, space)) ++at;
  }
  if (total_ms > 1e12) return fail(quoted(text) + " is too long");
  return std::chrono::milliseconds(std::llround(total_ms));
}

Parsed<std::int64_t> parse_count(std::string_view raw) {
  const auto text = trim(raw);
  if (text.empty()) return fail("a number is required");
  if (auto problem = signed_problem(text, "a count")) return fail(std::move(*problem));
  std::int64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) return fail(quoted(text) + " is too large");
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return fail(quoted(text) + " is not a whole number");
  }
  return value;
}

}  // namespace xqw::config
