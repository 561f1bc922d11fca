// observability/server: the operator's HTTP endpoint: GET /metrics (Prometheus text), /healthz, /readyz.
// Owns the cpp-httplib server, its listener thread and its lifetime (started in the constructor, stopped
// and joined in the destructor). No other paths are served.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include "observability/health.hpp"
#include "observability/metrics.hpp"

namespace xqw::observability {

struct ServerOptions {
  std::string address = "0.0.0.0";  // "127.0.0.1" to keep it local
  int port = 9090;                  // 0: the kernel picks a free port; ObservabilityServer::port() says which
};

// The address could not be bound (in use, not local, no permission).
class ServerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// /metrics  200 text/plain; version=0.0.4 (metrics.exposition())
// /healthz  200 when health.liveness() is ok, else 503; body probe_json("alive", ...)
// /readyz   200 when health.readiness() is ok, else 503; body probe_json("ready", ...)
// `metrics` and `health` must outlive the server. Listening has begun when the constructor returns.
class ObservabilityServer {
 public:
  ObservabilityServer(const ServerOptions& options, const Metrics& metrics, const Health& health);
  ~ObservabilityServer();
  ObservabilityServer(const ObservabilityServer&) = delete;
  ObservabilityServer& operator=(const ObservabilityServer&) = delete;

  int port() const;
  const std::string& address() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace xqw::observability
