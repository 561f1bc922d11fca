// The engine client's calls: one keep-alive libcurl handle on the engine's unix socket.
#include <spdlog/spdlog.h>

#include <thread>

#include "docker/docker.hpp"

namespace xqw::docker {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

milliseconds until(steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
  return std::max(left, milliseconds{1});
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
    if (error.timed_out())
      throw EngineTimeout("Docker engine at " + socket_path_ + " timed out: " + error.what());
    throw EngineUnreachable("Docker engine at " + socket_path_ + " is unreachable: " + error.what());
  }
}

void Client::fail(const std::string& what, const http::Response& response) {
  const std::string message = parse_error_message(response.body);
  throw EngineApiError(what + ": engine answered " + std::to_string(response.status) + ": " + message,
                       response.status, message);
}

void Client::ping() {
  auto response = call("GET", "/_ping", "", milliseconds{5000});
  if (response.status != 200) fail("ping", response);
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
  return parse_image_reply(response.body, image);
}

void Client::pull_image(const std::string& image, const std::string& registry_auth_file) {
  auto [name, tag] = split_reference(image);
  const auto registry = registry_of(image);
  std::string how = "anonymously";
  http::Request request{.method = "POST",
                        .url = "http://docker/" + std::string(kApiVersion) + "/images/create?fromImage=" +
                               http::url_escape(name) + "&tag=" + http::url_escape(tag),
                        .timeout = milliseconds{600000}};
  if (!registry_auth_file.empty()) {
    // Read for every pull, so that credentials rotated in the file (a Secret's mount) are used without a
    // restart.
    const auto auths = load_docker_config(registry_auth_file);
    if (!auths) {
      const auto& problem = auths.error().front();
      throw ImageMissing(image, "registry credentials " + registry_auth_file +
                                    (problem.key.empty() ? "" : ": " + problem.key) + ": " + problem.reason);
    }
    if (const auto* credential = auths->find(image)) {
      request.headers.emplace_back("X-Registry-Auth", registry_auth_header(*credential));
      how = "with the credentials for " + registry + " in " + registry_auth_file;
    } else {
      how = "anonymously (" + registry_auth_file + " has no credentials for " + registry + ")";
    }
  }
  http::Response response;
  try {
    response = transport_->perform(request);
  } catch (const http::TransportError& error) {
    if (error.timed_out())
      throw EngineTimeout("Docker engine at " + socket_path_ + " timed out pulling " + image + ": " +
                          error.what());
    throw EngineUnreachable("Docker engine at " + socket_path_ + " is unreachable: " + error.what());
  }
  const std::string from = "pull from registry " + registry + " " + how + " failed: ";
  if (response.status != 200) throw ImageMissing(image, from + parse_error_message(response.body));
  try {
    check_pull_progress(response.body, image);
  } catch (const ImageMissing& error) {
    throw ImageMissing(image, from + error.reason());
  }
  spdlog::info("pulled image {} from registry {} {}", image, registry, how);
}

ImageInfo Client::ensure_image(const std::string& image, PullPolicy policy,
                               const std::string& registry_auth_file) {
  if (policy != PullPolicy::Always) {
    if (auto info = inspect_image(image)) return *info;
    if (policy == PullPolicy::Never)
      throw ImageMissing(image, "not present on the engine and pull policy is never");
  }
  spdlog::info("pulling image {} from registry {}", image, registry_of(image));
  try {
    pull_image(image, registry_auth_file);
  } catch (const ImageMissing& error) {
    // always: a registry that cannot be reached (or no longer has the tag) does not stop a queue whose
    // image the engine has; it is graded with the engine's copy until a later pull succeeds.
    if (policy != PullPolicy::Always) throw;
    auto local = inspect_image(image);
    if (!local) throw;
    spdlog::warn("pull policy always: pulling image {} failed ({}); using the engine's copy {}", image,
                 error.what(), local->id.substr(0, 19));
    return *local;
  }
  if (auto info = inspect_image(image)) return *info;
  throw ImageMissing(image, "still absent after a successful pull");
}

std::string Client::create_container(const ContainerSpec& spec, const std::string& name) {
  std::string path = "/containers/create";
  if (!name.empty()) path += "?name=" + http::url_escape(name);
  auto response = call("POST", path, create_body(spec).dump());
  if (response.status == 404) throw ImageMissing(spec.image, parse_error_message(response.body));
  if (response.status != 201) fail("create container from " + spec.image, response);
  return parse_create_reply(response.body, spec.image);
}

void Client::start(const std::string& id) {
  auto response = call("POST", "/containers/" + id + "/start");
  if (response.status == 404)
    throw ContainerGone("start container " + id + ": " + parse_error_message(response.body));
  if (response.status != 204 && response.status != 304) fail("start container " + id, response);
}

CapturedOutput Client::follow_output(const std::string& id, OutputCaps caps,
                                     steady_clock::time_point deadline, bool* deadline_hit) {
  StreamDemuxer demuxer(caps);
  http::Request request{.method = "GET",
                        .url = "http://docker/" + std::string(kApiVersion) + "/containers/" + id +
                               "/logs?follow=1&stdout=1&stderr=1",
                        .timeout = until(deadline)};
  bool timed_out = false;
  try {
    auto response =
        transport_->perform_streaming(request, [&](std::string_view chunk) { return demuxer.feed(chunk); });
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
  auto output = demuxer.take();
  if (!output) throw EngineBadReply("logs of container " + id + ": " + output.error());
  return std::move(*output);
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
  result.exit_code = parse_wait_reply(response.body, id);
  return result;
}

void Client::kill(const std::string& id, const std::string& signal) {
  send_signal(id, signal);  // false: not running any more, which is what we wanted
}

bool Client::send_signal(const std::string& id, const std::string& signal) {
  auto response = call("POST", "/containers/" + id + "/kill?signal=" + http::url_escape(signal));
  if (response.status == 404)
    throw ContainerGone("signal " + signal + " to container " + id + ": no such container");
  if (response.status == 409) return false;
  if (response.status != 204) fail("signal " + signal + " to container " + id, response);
  return true;
}

ContainerState Client::inspect(const std::string& id) {
  auto response = call("GET", "/containers/" + id + "/json");
  if (response.status == 404) throw ContainerGone("inspect container " + id + ": no such container");
  if (response.status != 200) fail("inspect container " + id, response);
  return parse_inspect_reply(response.body, id);
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
  return parse_container_list(response.body, label_filter);
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
