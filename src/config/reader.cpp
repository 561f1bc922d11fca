// config (internal): typed reads that record problems; environment expansion; secrets; key suggestions.
#include "config/reader.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "text/text.hpp"

using xqw::text::ascii_lower;

namespace xqw::config::detail {
namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

std::string got(const Node& node) { return std::string(describe(node.kind)); }

}  // namespace

std::string join_key(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
}

std::string index_key(const std::string& prefix, std::size_t index) {
  return prefix + "[" + std::to_string(index) + "]";
}

std::string closest(std::string_view unknown, const std::vector<std::string_view>& known) {
  const std::string wanted = ascii_lower(unknown);
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(2, wanted.size() / 3) + 1;
  for (const auto candidate : known) {
    const std::size_t distance = edit_distance(wanted, ascii_lower(candidate));
    if (distance < best_distance) {
      best_distance = distance;
      best = std::string(candidate);
    }
  }
  return best;
}

std::expected<std::string, ExpansionError> expand_env(std::string_view text, const EnvLookup& env) {
  auto refused = [](std::string reason) { return std::unexpected(ExpansionError{std::move(reason)}); };
  std::string out;
  std::size_t at = 0;
  while (at < text.size()) {
    if (text.compare(at, 3, "$${") == 0) {
      out += "${";
      at += 3;
      continue;
    }
    if (text.compare(at, 2, "${") != 0) {
      out += text[at++];
      continue;
    }
    const auto close = text.find('}', at + 2);
    if (close == std::string_view::npos)
      return refused("unterminated ${...} reference (write $${ for a literal ${)");
    const auto reference = text.substr(at + 2, close - at - 2);
    const auto fallback_at = reference.find(":-");
    const auto name = reference.substr(0, fallback_at);
    if (!valid_env_name(name)) {
      return refused("'${" + std::string(reference) + "}' does not name an environment variable");
    }
    const auto value = env(std::string(name));
    if (fallback_at != std::string_view::npos) {
      out += value && !value->empty() ? *value : std::string(reference.substr(fallback_at + 2));
    } else if (value) {
      out += *value;
    } else {
      return refused("environment variable " + std::string(name) + " is not set (referenced as ${" +
                     std::string(name) + "}; use ${" + std::string(name) + ":-default} for a fallback)");
    }
    at = close + 1;
  }
  return out;
}

void Reader::error(const Node& at, const std::string& key, std::string reason) {
  findings_.errors.push_back({file_.string(), key, std::move(reason), at.line});
}

void Reader::warn(const Node& at, const std::string& key, std::string reason) {
  findings_.warnings.push_back({file_.string(), key, std::move(reason), at.line});
}

bool Reader::expect(const Node& node, Node::Kind kind, const std::string& key) {
  if (node.kind == kind) return true;
  error(node, key, "expected " + std::string(describe(kind)) + ", got " + got(node));
  return false;
}

void Reader::reject_unknown_keys(const Node& map, const std::string& key,
                                 const std::vector<std::string_view>& known) {
  for (const auto& [name, value] : map.entries) {
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    std::string reason = "unknown key";
    if (const auto suggestion = closest(name, known); !suggestion.empty()) {
      reason += " (did you mean '" + suggestion + "'?)";
    }
    error(value, join_key(key, name), reason);
  }
}

std::optional<std::string> Reader::text(const Node& node, const std::string& key) {
  if (node.kind != Node::Kind::String && node.kind != Node::Kind::Plain) {
    error(node, key, "expected a string, got " + got(node));
    return std::nullopt;
  }
  auto expanded = expand_env(node.text, env_);
  if (!expanded) {
    error(node, key, expanded.error().reason);
    return std::nullopt;
  }
  return std::move(*expanded);
}

std::optional<std::string> Reader::scalar_text(const Node& node, const std::string& key) {
  if (node.kind == Node::Kind::Number) return node.text;
  if (node.kind != Node::Kind::String && node.kind != Node::Kind::Plain) {
    error(node, key, "expected a number or a string, got " + got(node));
    return std::nullopt;
  }
  return text(node, key);
}

std::optional<bool> Reader::boolean(const Node& node, const std::string& key) {
  if (node.kind == Node::Kind::Bool) return node.text == "true";
  if (node.kind == Node::Kind::Plain) {
    const std::string value = ascii_lower(node.text);
    if (value == "true" || value == "yes" || value == "on") return true;
    if (value == "false" || value == "no" || value == "off") return false;
  }
  error(node, key, "expected true or false, got " + (node.is_scalar() ? "'" + node.text + "'" : got(node)));
  return std::nullopt;
}

std::optional<std::int64_t> Reader::integer(const Node& node, const std::string& key, std::int64_t min,
                                            std::int64_t max) {
  if (node.kind != Node::Kind::Number && node.kind != Node::Kind::Plain) {
    error(node, key, "expected a whole number, got " + got(node));
    return std::nullopt;
  }
  std::int64_t value = 0;
  const auto& text = node.text;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    error(node, key, "expected a whole number, got '" + text + "'");
    return std::nullopt;
  }
  if (value < min) {
    error(node, key, "must be at least " + std::to_string(min) + ", got " + text);
    return std::nullopt;
  }
  if (value > max) {
    error(node, key, "must be at most " + std::to_string(max) + ", got " + text);
    return std::nullopt;
  }
  return value;
}

std::optional<std::chrono::milliseconds> Reader::duration(const Node& node, const std::string& key) {
  const auto raw = scalar_text(node, key);
  if (!raw) return std::nullopt;
  auto duration = parse_duration(*raw);
  if (!duration) {
    error(node, key, std::move(duration.error()));
    return std::nullopt;
  }
  return *duration;
}

std::optional<std::filesystem::path> Reader::path(const Node& node, const std::string& key) {
  const auto raw = text(node, key);
  if (!raw) return std::nullopt;
  if (raw->empty()) {
    error(node, key, "the path is empty");
    return std::nullopt;
  }
  std::filesystem::path value(*raw);
  if (value.is_relative()) value = std::filesystem::absolute(base_dir() / value);
  return value.lexically_normal();
}

std::optional<std::string> Reader::secret(const Node& map, const std::string& map_key,
                                          std::string_view name) {
  const std::string file_name = std::string(name) + "_file";
  const Node* inline_value = map.find(name);
  const Node* file_value = map.find(file_name);
  if (inline_value && file_value) {
    error(*file_value, join_key(map_key, file_name),
          "set " + std::string(name) + " or " + file_name + ", not both");
    return std::nullopt;
  }
  if (inline_value) return text(*inline_value, join_key(map_key, name));
  if (!file_value) return std::nullopt;
  const auto secret_path = path(*file_value, join_key(map_key, file_name));
  if (!secret_path) return std::nullopt;
  std::ifstream in(*secret_path, std::ios::binary);
  std::error_code ec;
  if (!in || std::filesystem::is_directory(*secret_path, ec)) {
    const std::string why = in ? "it is a directory" : std::strerror(errno);
    error(*file_value, join_key(map_key, file_name), "cannot read " + secret_path->string() + ": " + why);
    return std::nullopt;
  }
  std::ostringstream content;
  content << in.rdbuf();
  std::string value = content.str();
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  return value;
}

}  // namespace xqw::config::detail
