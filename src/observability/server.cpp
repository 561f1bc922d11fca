// observability/server: routes, bind (port 0 included), the listener thread and an orderly stop.
#include "observability/server.hpp"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace xqw::observability {

namespace {

constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kJsonContentType = "application/json";
// Connections are served by a small pool so a slow scrape never delays a kubelet probe.
constexpr std::size_t kHandlerThreads = 2;

void answer_probe(httplib::Response& response, std::string_view key, const ProbeResult& result) {
  response.status = result.ok ? 200 : 503;
  response.set_content(probe_json(key, result), kJsonContentType);
}

}  // namespace

struct ObservabilityServer::State {
  httplib::Server server;
  std::string address;
  int port = 0;
  std::atomic<bool> listener_done{false};
  std::thread listener;
};

ObservabilityServer::ObservabilityServer(const ServerOptions& options, const Metrics& metrics,
                                         const Health& health)
    : state_(std::make_unique<State>()) {
  auto& server = state_->server;
  // httplib takes ownership of the raw pointer this factory returns (its API, not ours).
  server.new_task_queue = [] { return new httplib::ThreadPool(kHandlerThreads); };
  // One request per connection and at most 1 s for an idle one to speak, so stopping never waits long.
  server.set_keep_alive_max_count(1);
  server.set_keep_alive_timeout(1);
  // httplib's default also sets SO_REUSEPORT, which would let a second watcher share (and split) the port.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server.set_read_timeout(std::chrono::seconds(5));
  server.set_write_timeout(std::chrono::seconds(5));
  server.Get("/metrics", [&metrics](const httplib::Request&, httplib::Response& response) {
    response.set_content(metrics.exposition(), kMetricsContentType);
  });
  server.Get("/healthz", [&health](const httplib::Request&, httplib::Response& response) {
    answer_probe(response, "alive", health.liveness());
  });
  server.Get("/readyz", [&health](const httplib::Request&, httplib::Response& response) {
    answer_probe(response, "ready", health.readiness());
  });

  state_->address = options.address;
  if (options.port == 0) {
    state_->port = server.bind_to_any_port(options.address);
  } else if (server.bind_to_port(options.address, options.port)) {
    state_->port = options.port;
  } else {
    state_->port = -1;
  }
  if (state_->port <= 0) {
    throw ServerError("observability server: cannot listen on " + options.address + ":" +
                      std::to_string(options.port) + " (port in use, address not local, or not permitted)");
  }

  State& state = *state_;
  state.listener = std::thread([&state] {
    state.server.listen_after_bind();
    state.listener_done = true;
  });
  // httplib's stop() is a no-op until the accept loop runs, so wait for it before anyone can stop us.
  while (!server.is_running() && !state.listener_done)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (state.listener_done) {
    state.listener.join();
    throw ServerError("observability server: the listener on " + options.address + ":" +
                      std::to_string(state_->port) + " stopped as soon as it started");
  }
}

ObservabilityServer::~ObservabilityServer() {
  state_->server.stop();
  if (state_->listener.joinable()) state_->listener.join();
}

int ObservabilityServer::port() const { return state_->port; }

const std::string& ObservabilityServer::address() const { return state_->address; }

}  // namespace xqw::observability
