// The engine's replies read into plain data (pure): every field used is checked for its type first, so an
// odd reply is an EngineBadReply naming the endpoint, never a JSON type error escaping from the client.
#include <climits>
#include <string>

#include "docker/docker.hpp"

namespace xqw::docker {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxQuotedBytes = 200;

std::string describe(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number with a fraction";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "an unsupported value";
  }
}

std::string quoted(std::string_view text) {
  if (text.empty()) return "empty";
  std::string out(text.substr(0, kMaxQuotedBytes));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return "'" + out + (text.size() > kMaxQuotedBytes ? "...'" : "'");
}

// One reply read against the shape its endpoint documents; `where` ("inspect container c1") starts every
// complaint. Fields are named by their path in the reply ("State.OOMKilled", "[2].Id").
class Reply {
 public:
  explicit Reply(std::string where) : where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& problem) const { throw EngineBadReply(where_ + ": " + problem); }

  json parse(std::string_view body) const {
    auto parsed = json::parse(body, nullptr, false);
    if (parsed.is_discarded()) fail("the reply is not JSON: " + quoted(body));
    return parsed;
  }
  json object(std::string_view body) const {
    auto parsed = parse(body);
    if (!parsed.is_object()) fail("the reply is " + describe(parsed) + ", expected a JSON object");
    return parsed;
  }
  json array(std::string_view body) const {
    auto parsed = parse(body);
    if (!parsed.is_array()) fail("the reply is " + describe(parsed) + ", expected a JSON array");
    return parsed;
  }

  // The field `key` of `object`, nullptr when it is absent or null.
  static const json* find(const json& object, const char* key) {
    const auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
  }
  const json& required(const json& object, const std::string& path, const char* key) const {
    const json* value = find(object, key);
    if (!value) fail(join(path, key) + " is missing");
    return *value;
  }

  std::string text(const json& object, const std::string& path, const char* key,
                   bool required = false) const {
    const json* value = required ? &this->required(object, path, key) : find(object, key);
    if (!value) return {};
    if (!value->is_string()) wrong_type(join(path, key), *value, "a string");
    return value->get<std::string>();
  }
  std::string id(const json& object, const std::string& path) const {
    auto value = text(object, path, "Id", true);
    if (value.empty()) fail(join(path, "Id") + " is empty");
    return value;
  }
  bool flag(const json& object, const std::string& path, const char* key) const {
    const json* value = find(object, key);
    if (!value) return false;
    if (!value->is_boolean()) wrong_type(join(path, key), *value, "a boolean");
    return value->get<bool>();
  }
  int integer(const json& object, const std::string& path, const char* key, bool required = false) const {
    const json* value = required ? &this->required(object, path, key) : find(object, key);
    if (!value) return 0;
    if (!value->is_number_integer()) wrong_type(join(path, key), *value, "an integer");
    if (value->is_number_unsigned()
            ? value->get<std::uint64_t>() > static_cast<std::uint64_t>(INT_MAX)
            : value->get<std::int64_t>() < INT_MIN || value->get<std::int64_t>() > INT_MAX) {
      fail(join(path, key) + " is " + value->dump() + ", out of range for an exit status");
    }
    return value->get<int>();
  }
  // An object of strings (labels); absent or null is empty.
  std::map<std::string, std::string> strings(const json& object, const std::string& path,
                                             const char* key) const {
    std::map<std::string, std::string> out;
    const json* value = find(object, key);
    if (!value) return out;
    if (!value->is_object()) wrong_type(join(path, key), *value, "an object of strings");
    for (const auto& [name, item] : value->items()) {
      if (!item.is_string()) wrong_type(join(join(path, key), name.c_str()), item, "a string");
      out[name] = item.get<std::string>();
    }
    return out;
  }

  [[noreturn]] void wrong_type(const std::string& path, const json& value, std::string_view expected) const {
    fail(path + " is " + describe(value) + ", expected " + std::string(expected));
  }

  static std::string join(const std::string& path, const char* key) {
    return path.empty() ? std::string(key) : path + "." + key;
  }

 private:
  std::string where_;
};

std::string string_field(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

VersionInfo parse_version(std::string_view version_body, std::optional<std::string_view> info_body) {
  const auto parsed = json::parse(version_body, nullptr, false);
  // An engine (or something else on the socket) answering oddly is an engine error, never a JSON type error
  // that would end the thread asking.
  if (!parsed.is_object()) throw EngineBadReply("version: the reply is not a JSON object");
  VersionInfo info{.version = string_field(parsed, "Version"),
                   .api_version = string_field(parsed, "ApiVersion"),
                   .os = string_field(parsed, "Os")};
  if (!info_body) return info;
  const auto details = json::parse(*info_body, nullptr, false);
  if (!details.is_object()) return info;
  if (const auto cpus = details.find("NCPU"); cpus != details.end() && cpus->is_number_integer()) {
    info.cpus = cpus->get<int>();
  }
  if (const auto runtimes = details.find("Runtimes"); runtimes != details.end() && runtimes->is_object()) {
    for (const auto& [name, description] : runtimes->items()) info.runtimes[name] = description;
  }
  return info;
}

std::string parse_create_reply(std::string_view body, std::string_view image) {
  const Reply reply("create container from " + std::string(image));
  return reply.id(reply.object(body), "");
}

int parse_wait_reply(std::string_view body, std::string_view id) {
  const Reply reply("wait for container " + std::string(id));
  return reply.integer(reply.object(body), "", "StatusCode", true);
}

ContainerState parse_inspect_reply(std::string_view body, std::string_view id) {
  const Reply reply("inspect container " + std::string(id));
  const json parsed = reply.object(body);
  const json& state = reply.required(parsed, "", "State");
  if (!state.is_object()) reply.wrong_type("State", state, "an object");
  return ContainerState{.status = reply.text(state, "State", "Status"),
                        .running = reply.flag(state, "State", "Running"),
                        .oom_killed = reply.flag(state, "State", "OOMKilled"),
                        .exit_code = reply.integer(state, "State", "ExitCode")};
}

ImageInfo parse_image_reply(std::string_view body, std::string_view image) {
  const Reply reply("inspect image " + std::string(image));
  const json parsed = reply.object(body);
  ImageInfo info{.id = reply.text(parsed, "", "Id")};
  if (const json* config = Reply::find(parsed, "Config")) {
    if (!config->is_object()) reply.wrong_type("Config", *config, "an object");
    info.user = reply.text(*config, "Config", "User");
    info.labels = reply.strings(*config, "Config", "Labels");
  }
  return info;
}

void check_pull_progress(std::string_view body, std::string_view image) {
  const Reply reply("pull image " + std::string(image));
  std::size_t start = 0;
  for (int line_number = 1; start < body.size(); ++line_number) {
    auto end = body.find('\n', start);
    if (end == std::string_view::npos) end = body.size();
    const auto line = body.substr(start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const auto parsed = json::parse(line, nullptr, false);
    if (!parsed.is_object()) {
      reply.fail("progress line " + std::to_string(line_number) + " is " +
                 (parsed.is_discarded() ? "not JSON: " + quoted(line) : describe(parsed)) +
                 ", expected a JSON object");
    }
    // The engine reports pull failures inside its 200 progress stream.
    if (const json* error = Reply::find(parsed, "error")) {
      throw ImageMissing(std::string(image), "pull failed: " + error->dump());
    }
  }
}

std::vector<ContainerSummary> parse_container_list(std::string_view body, std::string_view label_filter) {
  const Reply reply("list containers labelled " + std::string(label_filter));
  const json parsed = reply.array(body);
  std::vector<ContainerSummary> out;
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    const json& item = parsed[i];
    const std::string path = "[" + std::to_string(i) + "]";
    if (!item.is_object()) reply.wrong_type(path, item, "an object");
    out.push_back({.id = reply.id(item, path),
                   .state = reply.text(item, path, "State"),
                   .labels = reply.strings(item, path, "Labels")});
  }
  return out;
}

std::string parse_error_message(std::string_view body) {
  const auto parsed = json::parse(body, nullptr, false);
  if (parsed.is_object()) {
    if (const auto message = parsed.find("message"); message != parsed.end() && message->is_string()) {
      return message->get<std::string>();
    }
  }
  return std::string(body.substr(0, 500));
}

}  // namespace xqw::docker
