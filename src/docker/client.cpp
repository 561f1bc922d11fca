// The engine client's calls: one keep-alive libcurl handle on the engine's unix socket.
#include <spdlog/spdlog.h>

#include <thread>

#include "docker/docker.hpp"

namespace xqw::docker {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// The engine's error replies are {"message": "..."}; fall back to the raw body.
std::string engine_message(const http::Response& response) {
  auto parsed = json::parse(response.body, nullptr, false);
  if (parsed.is_object() && parsed.contains("message") && parsed["message"].is_string()) {
    return parsed["message"].get<std::string>();
  }
  return response.body.substr(0, 500);
}

milliseconds until(steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
  return std::max(left, milliseconds{1});
}

std::map<std::string, std::string> string_map(const json& object) {
  std::map<std::string, std::string> out;
  if (!object.is_object()) return out;
  for (const auto& [key, value] : object.items()) {
    if (value.is_string()) out[key] = value.get<std::string>();
  }
  return out;
}

// "name:tag" or "name@digest" split for /images/create; a registry port is not a tag.
std::pair<std::string, std::string> split_reference(const std::string& image) {
  if (auto at = image.find('@'); at != std::string::npos) return {image.substr(0, at), image.substr(at + 1)};
  auto colon = image.rfind(':');
  if (colon != std::string::npos && image.find('/', colon) == std::string::npos) {
    return {image.substr(0, colon), image.substr(colon + 1)};
  }
  return {image, "latest"};
}

}  // namespace

Client::Client(std::string socket_path)
    : Client(http::make_curl_transport({.unix_socket = socket_path,
                                        .connect_timeout = milliseconds{3000},
                                        .request_timeout = milliseconds{60000}}),
             socket_path) {}

Client::Client(std::unique_ptr<http::Transport> transport, std::string socket_path)
    : transport_(std::move(transport)), socket_path_(std::move(socket_path)) {}

http::Response Client::call(const std::string& method, const std::string& path, const std::string& body,
                            milliseconds timeout) {
  http::Request request{.method = method,
                        .url = "http://docker/" + std::string(kApiVersion) + path,
                        .body = body,
                        .timeout = timeout};
  if (!body.empty()) request.headers.emplace_back("Content-Type", "application/json");
  try {
    return transport_->perform(request);
  } catch (const http::TransportError& error) {
    if (error.timed_out()) throw EngineTimeout("Docker engine at " + socket_path_ + " timed out: " + error.what());
    throw EngineUnreachable("Docker engine at " + socket_path_ + " is unreachable: " + error.what());
  }
}

void Client::fail(const std::string& what, const http::Response& response) {
  const std::string message = engine_message(response);
  throw EngineApiError(what + ": engine answered " + std::to_string(response.status) + ": " + message,
                       response.status, message);
}

void Client::ping() {
  auto response = call("GET", "/_ping", "", milliseconds{5000});
  if (response.status != 200) fail("ping", response);
}

namespace {
std::string string_field(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}
}  // namespace

VersionInfo parse_version(std::string_view version_body, std::optional<std::string_view> info_body) {
  const auto parsed = json::parse(version_body, nullptr, false);
  // An engine (or something else on the socket) answering oddly is an engine error, never a JSON type error
  // that would end the thread asking.
  if (!parsed.is_object()) throw EngineError("version: the reply is not a JSON object");
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

VersionInfo Client::version() {
  auto response = call("GET", "/version");
  if (response.status != 200) fail("version", response);
  auto system = call("GET", "/info");
  return parse_version(response.body,
                       system.status == 200 ? std::optional<std::string_view>(system.body) : std::nullopt);
}

std::optional<ImageInfo> Client::inspect_image(const std::string& image) {
  auto response = call("GET", "/images/" + http::url_escape(image) + "/json");
  if (response.status == 404) return std::nullopt;
  if (response.status != 200) fail("inspect image " + image, response);
  auto parsed = json::parse(response.body, nullptr, false);
  if (!parsed.is_object()) throw EngineError("inspect image " + image + ": reply is not a JSON object");
  ImageInfo info;
  info.id = parsed.value("Id", "");
  if (parsed.contains("Config") && parsed["Config"].is_object()) {
    const auto& config = parsed["Config"];
    if (config.contains("User") && config["User"].is_string()) info.user = config["User"].get<std::string>();
    if (config.contains("Labels")) info.labels = string_map(config["Labels"]);
  }
  return info;
}

void Client::pull_image(const std::string& image) {
  auto [name, tag] = split_reference(image);
  auto response = call("POST", "/images/create?fromImage=" + http::url_escape(name) + "&tag=" + http::url_escape(tag),
                       "", milliseconds{600000});
  if (response.status == 404) throw ImageMissing(image, engine_message(response));
  if (response.status != 200) throw ImageMissing(image, "pull failed: " + engine_message(response));
  // The engine reports pull failures inside a 200 progress stream, one JSON object per line.
  std::size_t start = 0;
  while (start < response.body.size()) {
    auto end = response.body.find('\n', start);
    if (end == std::string::npos) end = response.body.size();
    auto line = json::parse(response.body.substr(start, end - start), nullptr, false);
    if (line.is_object() && line.contains("error")) {
      throw ImageMissing(image, "pull failed: " + line["error"].dump());
    }
    start = end + 1;
  }
}

ImageInfo Client::ensure_image(const std::string& image, PullPolicy policy) {
  if (policy != PullPolicy::Always) {
    if (auto info = inspect_image(image)) return *info;
    if (policy == PullPolicy::Never) throw ImageMissing(image, "not present on the engine and pull policy is never");
  }
  spdlog::info("pulling image {}", image);
  pull_image(image);
  if (auto info = inspect_image(image)) return *info;
  throw ImageMissing(image, "still absent after a successful pull");
}

std::string Client::create_container(const ContainerSpec& spec, const std::string& name) {
  std::string path = "/containers/create";
  if (!name.empty()) path += "?name=" + http::url_escape(name);
  auto response = call("POST", path, create_body(spec).dump());
  if (response.status == 404) throw ImageMissing(spec.image, engine_message(response));
  if (response.status != 201) fail("create container from " + spec.image, response);
  auto parsed = json::parse(response.body, nullptr, false);
  if (!parsed.is_object() || !parsed.contains("Id") || !parsed["Id"].is_string()) {
    throw EngineError("create container from " + spec.image + ": reply has no Id");
  }
  return parsed["Id"].get<std::string>();
}

void Client::start(const std::string& id) {
  auto response = call("POST", "/containers/" + id + "/start");
  if (response.status == 404) throw ContainerGone("start container " + id + ": " + engine_message(response));
  if (response.status != 204 && response.status != 304) fail("start container " + id, response);
}

CapturedOutput Client::follow_output(const std::string& id, OutputCaps caps, steady_clock::time_point deadline,
                                     bool* deadline_hit) {
  StreamDemuxer demuxer(caps);
  http::Request request{.method = "GET",
                        .url = "http://docker/" + std::string(kApiVersion) + "/containers/" + id +
                               "/logs?follow=1&stdout=1&stderr=1",
                        .timeout = until(deadline)};
  bool timed_out = false;
  try {
    auto response = transport_->perform_streaming(request, [&](std::string_view chunk) { return demuxer.feed(chunk); });
    if (response.status == 404) throw ContainerGone("logs of container " + id + ": no such container");
    if (response.status != 200 && response.status != 0) fail("logs of container " + id, response);
  } catch (const http::TransportError& error) {
    if (!error.timed_out()) throw EngineUnreachable("logs of container " + id + ": " + error.what());
    timed_out = true;
  }
  if (deadline_hit) *deadline_hit = timed_out;
  if (timed_out || demuxer.output().cap_hit()) {
    try {
      kill(id);
    } catch (const EngineApiError& error) {
      // E.g. "PID is zombie and can not be killed" under load: the run is over for us either way, and
      // what it printed is the caller's to classify; the container is force-removed afterwards.
      spdlog::warn("could not kill container {} after stopping its output: {}", id, error.what());
    }
  }
  return demuxer.take();
}

WaitResult Client::wait(const std::string& id, steady_clock::time_point deadline) {
  WaitResult result;
  http::Response response;
  try {
    response = call("POST", "/containers/" + id + "/wait", "", until(deadline));
  } catch (const EngineTimeout&) {
    result.deadline_hit = true;
    kill(id);
    response = call("POST", "/containers/" + id + "/wait", "", milliseconds{30000});
  }
  if (response.status == 404) throw ContainerGone("wait for container " + id + ": no such container");
  if (response.status != 200) fail("wait for container " + id, response);
  auto parsed = json::parse(response.body, nullptr, false);
  if (!parsed.is_object() || !parsed.contains("StatusCode") || !parsed["StatusCode"].is_number_integer()) {
    throw EngineError("wait for container " + id + ": reply has no StatusCode");
  }
  result.exit_code = parsed["StatusCode"].get<int>();
  return result;
}

void Client::kill(const std::string& id, const std::string& signal) {
  send_signal(id, signal);  // false: not running any more, which is what we wanted
}

bool Client::send_signal(const std::string& id, const std::string& signal) {
  auto response = call("POST", "/containers/" + id + "/kill?signal=" + http::url_escape(signal));
  if (response.status == 404) throw ContainerGone("signal " + signal + " to container " + id + ": no such container");
  if (response.status == 409) return false;
  if (response.status != 204) fail("signal " + signal + " to container " + id, response);
  return true;
}

ContainerState Client::inspect(const std::string& id) {
  auto response = call("GET", "/containers/" + id + "/json");
  if (response.status == 404) throw ContainerGone("inspect container " + id + ": no such container");
  if (response.status != 200) fail("inspect container " + id, response);
  auto parsed = json::parse(response.body, nullptr, false);
  if (!parsed.is_object() || !parsed.contains("State") || !parsed["State"].is_object()) {
    throw EngineError("inspect container " + id + ": reply has no State");
  }
  const auto& state = parsed["State"];
  return ContainerState{.status = state.value("Status", ""),
                        .running = state.value("Running", false),
                        .oom_killed = state.value("OOMKilled", false),
                        .exit_code = state.value("ExitCode", 0)};
}

void Client::remove(const std::string& id) {
  auto response = call("DELETE", "/containers/" + id + "?force=1&v=1");
  if (response.status == 404) return;
  // 409: removal already in progress (e.g. a concurrent clean-up).
  if (response.status != 204 && response.status != 409) fail("remove container " + id, response);
}

std::vector<ContainerSummary> Client::list_by_label(const std::string& label_filter) {
  const json filters = {{"label", json::array({label_filter})}};
  auto response = call("GET", "/containers/json?all=1&filters=" + http::url_escape(filters.dump()));
  if (response.status != 200) fail("list containers labelled " + label_filter, response);
  auto parsed = json::parse(response.body, nullptr, false);
  if (!parsed.is_array()) throw EngineError("list containers labelled " + label_filter + ": reply is not a list");
  std::vector<ContainerSummary> out;
  for (const auto& item : parsed) {
    if (!item.is_object()) continue;
    out.push_back({.id = item.value("Id", ""),
                   .state = item.value("State", ""),
                   .labels = item.contains("Labels") ? string_map(item["Labels"]) : std::map<std::string, std::string>{}});
  }
  return out;
}

int Client::remove_by_label(const std::string& label_filter) {
  int removed = 0;
  for (const auto& container : list_by_label(label_filter)) {
    remove(container.id);
    ++removed;
  }
  return removed;
}

ContainerGuard::~ContainerGuard() {
  if (id_.empty()) return;
  try {
    client_->remove(id_);
  } catch (const std::exception& error) {
    // The start-up orphan sweep (by label) removes it later; never throw from a destructor.
    spdlog::warn("could not remove container {}: {}", id_, error.what());
  }
}

}  // namespace xqw::docker
