// config (internal): the `files:` block (uploaded files: caps, where they may come from) under a queue and
// `defaults`, and `bounds.files`.
#include <algorithm>
#include <cctype>

#include "config/schema.hpp"

namespace xqw::config::detail {
namespace {

const std::vector<std::string_view> kFilesKeys = {"max_count", "max_size", "max_total",
                                                  "timeout",   "base_url", "allowed_hosts"};
const std::vector<std::string_view> kFileBoundKeys = {"max_count", "max_size", "max_total", "timeout"};

// A cap the whole watcher holds in memory per submission in flight; beyond it a queue needs another design.
constexpr std::int64_t kMaxFileCount = 1000;
constexpr std::chrono::milliseconds kMaxFileTimeout{60000};

std::string above(const std::string& value, const std::string& bound, std::string_view field) {
  return value + " is above the operator's bound of " + bound + " (bounds.files." + std::string(field) +
         " in xqwatcher.yaml)";
}

std::optional<std::string> bound_violation(std::string_view field, const FilesConfig& files,
                                           const LimitBounds& bounds) {
  if (field == "max_count" && bounds.file_count && files.max_count > *bounds.file_count) {
    return above(std::to_string(files.max_count), std::to_string(*bounds.file_count), field);
  }
  if (field == "max_size" && bounds.file_size_bytes && files.max_size_bytes > *bounds.file_size_bytes) {
    return above(format_bytes(files.max_size_bytes), format_bytes(*bounds.file_size_bytes), field);
  }
  if (field == "max_total" && bounds.file_total_bytes && files.max_total_bytes > *bounds.file_total_bytes) {
    return above(format_bytes(files.max_total_bytes), format_bytes(*bounds.file_total_bytes), field);
  }
  if (field == "timeout" && bounds.file_timeout && files.timeout > *bounds.file_timeout) {
    return above(format_duration_as_written(files.timeout), format_duration_as_written(*bounds.file_timeout),
                 field);
  }
  return std::nullopt;
}

std::optional<std::int64_t> read_size(Reader& reader, const Node& value, const std::string& key) {
  const auto raw = reader.scalar_text(value, key);
  if (!raw) return std::nullopt;
  const auto bytes = parse_bytes(*raw);
  if (!bytes) {
    reader.error(value, key, bytes.error());
    return std::nullopt;
  }
  if (*bytes < 1) {
    reader.error(value, key, "must be at least 1 byte, got '" + *raw + "'");
    return std::nullopt;
  }
  return *bytes;
}

std::optional<std::chrono::milliseconds> read_timeout(Reader& reader, const Node& value,
                                                      const std::string& key) {
  const auto timeout = reader.duration(value, key);
  if (!timeout) return std::nullopt;
  if (timeout->count() <= 0 || *timeout > kMaxFileTimeout) {
    reader.error(value, key,
                 "must be more than 0 and at most " + format_duration_as_written(kMaxFileTimeout) +
                     ", got '" + value.text + "'");
    return std::nullopt;
  }
  return timeout;
}

void read_allowed_hosts(Reader& reader, const Node& list, const std::string& key,
                        std::vector<std::string>& hosts) {
  if (!reader.expect(list, Node::Kind::List, key)) return;
  hosts.clear();
  for (std::size_t i = 0; i < list.items.size(); ++i) {
    const std::string item_key = index_key(key, i);
    const auto entry = reader.text(list.items[i], item_key);
    if (!entry) continue;
    if (const auto problem = allowed_host_problem(*entry)) {
      reader.error(list.items[i], item_key, *problem);
      continue;
    }
    std::string host = *entry;
    std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
    hosts.push_back(host);
  }
}

}  // namespace

std::optional<std::string> allowed_host_problem(std::string_view entry) {
  const std::string quoted = "'" + std::string(entry) + "'";
  if (entry.empty()) return "the host is empty";
  if (entry.find("://") != std::string_view::npos || entry.find('/') != std::string_view::npos) {
    return quoted +
           " is not a host: write the host only (e.g. files.example.org or files.example.org:8443), "
           "without scheme or path";
  }
  std::string_view host = entry;
  std::string_view port;
  if (host.front() == '[') {  // [IPv6] or [IPv6]:port
    const auto close = host.find(']');
    if (close == std::string_view::npos) return quoted + " has an unclosed '['";
    if (close + 1 < host.size()) {
      if (host[close + 1] != ':') return quoted + " has text after ']' that is not :port";
      port = host.substr(close + 2);
    }
    const auto address = host.substr(1, close - 1);
    if (address.empty() || !std::all_of(address.begin(), address.end(), [](unsigned char c) {
          return std::isxdigit(c) || c == ':' || c == '.';
        })) {
      return quoted + " is not an IPv6 address in brackets";
    }
  } else {
    if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
      if (port.empty()) return quoted + " has an empty port";
    }
    std::string_view name = host;
    if (name.starts_with("*.")) name.remove_prefix(2);
    if (name.empty()) return quoted + " names no host";
    if (name.find('*') != std::string_view::npos) {
      return quoted + ": a wildcard is allowed only as a whole first label (*.example.org)";
    }
    const bool valid = std::all_of(name.begin(), name.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '-' || c == '.' || c == '_';
    });
    if (!valid || name.front() == '.' || name.back() == '.' || name.find("..") != std::string_view::npos) {
      return quoted +
             " is not a host name (letters, digits, '-' and '.'; optionally *. first and :port last)";
    }
  }
  if (!port.empty()) {
    const bool digits =
        std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); });
    if (!digits || port.size() > 5 || std::stoi(std::string(port)) < 1 ||
        std::stoi(std::string(port)) > 65535) {
      return quoted + " has a port that is not a number from 1 to 65535";
    }
  }
  return std::nullopt;
}

void read_files(Reader& reader, const Node& map, const std::string& key, FilesConfig& files,
                const LimitBounds* bounds) {
  if (!reader.expect(map, Node::Kind::Map, key)) return;
  reader.reject_unknown_keys(map, key, kFilesKeys);
  for (const auto& [name, value] : map.entries) {
    const std::string field_key = join_key(key, name);
    if (name == "max_count") {
      if (const auto count = reader.integer(value, field_key, 0, kMaxFileCount)) files.max_count = *count;
    } else if (name == "max_size") {
      if (const auto bytes = read_size(reader, value, field_key)) files.max_size_bytes = *bytes;
    } else if (name == "max_total") {
      if (const auto bytes = read_size(reader, value, field_key)) files.max_total_bytes = *bytes;
    } else if (name == "timeout") {
      if (const auto timeout = read_timeout(reader, value, field_key)) files.timeout = *timeout;
    } else if (name == "base_url") {
      if (const auto url = read_url(reader, value, field_key)) files.base_url = *url;
      continue;
    } else if (name == "allowed_hosts") {
      read_allowed_hosts(reader, value, field_key, files.allowed_hosts);
      continue;
    } else {
      continue;  // reported by reject_unknown_keys
    }
    if (bounds) {
      if (const auto violation = bound_violation(name, files, *bounds))
        reader.error(value, field_key, *violation);
    }
  }
}

void read_file_bounds(Reader& reader, const Node& map, const std::string& key, LimitBounds& bounds) {
  if (!reader.expect(map, Node::Kind::Map, key)) return;
  reader.reject_unknown_keys(map, key, kFileBoundKeys);
  for (const auto& [name, value] : map.entries) {
    const std::string field_key = join_key(key, name);
    if (name == "max_count") {
      if (const auto count = reader.integer(value, field_key, 0, kMaxFileCount)) bounds.file_count = *count;
    } else if (name == "max_size") {
      if (const auto bytes = read_size(reader, value, field_key)) bounds.file_size_bytes = *bytes;
    } else if (name == "max_total") {
      if (const auto bytes = read_size(reader, value, field_key)) bounds.file_total_bytes = *bytes;
    } else if (name == "timeout") {
      if (const auto timeout = read_timeout(reader, value, field_key)) bounds.file_timeout = *timeout;
    }
  }
}

void check_files_within_bounds(Reader& reader, const Node& at, const std::string& key,
                               const FilesConfig& files, const LimitBounds& bounds) {
  for (const auto field : kFileBoundKeys) {
    if (const auto violation = bound_violation(field, files, bounds)) {
      reader.error(at, join_key(key, field), *violation);
    }
  }
}

}  // namespace xqw::config::detail
