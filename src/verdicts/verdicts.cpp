#include "verdicts/verdicts.hpp"

#include <cstdio>

namespace xqw::verdicts {
namespace {

constexpr std::string_view kLimitPlaceholder = "{limit}";
constexpr std::string_view kDetailPlaceholder = "{detail}";

// `value` with at most `decimals` decimals and no trailing zeros: "1.50" -> "1.5", "256.00" -> "256".
std::string decimal(double value, int decimals) {
  std::array<char, 64> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "%.*f", decimals, value);
  std::string text(buffer.data());
  if (text.find('.') == std::string::npos) return text;
  text.erase(text.find_last_not_of('0') + 1);
  if (text.back() == '.') text.pop_back();
  return text;
}

std::string format_unsigned_bytes(std::uint64_t bytes) {
  static constexpr std::array<std::string_view, 4> kUnits{"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
  double value = static_cast<double>(bytes) / 1024.0;
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  return decimal(value, 2) + " " + std::string(kUnits[unit]);
}

bool holds(std::string_view text, std::string_view placeholder) {
  return text.find(placeholder) != std::string_view::npos;
}

}  // namespace

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

std::string student_text(Verdict verdict, std::string_view limit, std::string_view detail) {
  const auto* info = find(verdict);
  if (!info) return "";
  const bool unfilled = (holds(info->text, kLimitPlaceholder) && limit.empty()) ||
                        (holds(info->text, kDetailPlaceholder) && detail.empty());
  if (unfilled && !info->text_unquoted.empty()) return std::string(info->text_unquoted);
  return replace_all(replace_all(std::string(info->text), kLimitPlaceholder, limit), kDetailPlaceholder,
                     detail);
}

std::string format_bytes(std::int64_t bytes) {
  if (bytes >= 0) return format_unsigned_bytes(static_cast<std::uint64_t>(bytes));
  return "-" + format_unsigned_bytes(0 - static_cast<std::uint64_t>(bytes));
}

std::string format_duration(std::chrono::milliseconds duration) {
  const std::int64_t ms = duration.count();
  if (ms < 0) return "-" + format_duration(std::chrono::milliseconds(0 - ms));
  if (ms < 1000) return std::to_string(ms) + " ms";
  if (ms % 60000 == 0) return std::to_string(ms / 60000) + " min";
  return decimal(static_cast<double>(ms) / 1000.0, 2) + " s";
}

std::string format_duration_as_written(std::chrono::milliseconds duration) {
  auto ms = duration.count();
  if (ms < 0) return "-" + format_duration_as_written(std::chrono::milliseconds(0 - ms));
  if (ms < 1000) return std::to_string(ms) + "ms";
  std::string text;
  if (ms >= 3600000) {
    text += std::to_string(ms / 3600000) + "h";
    ms %= 3600000;
  }
  if (ms >= 60000) {
    text += std::to_string(ms / 60000) + "m";
    ms %= 60000;
  }
  if (ms > 0) text += decimal(static_cast<double>(ms) / 1000.0, 3) + "s";
  return text;
}

std::string format_cpus(double cpus) { return decimal(cpus, 3); }

}  // namespace xqw::verdicts
