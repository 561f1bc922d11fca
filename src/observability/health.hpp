// observability/health: liveness (every registered loop ticked recently) and readiness (config loaded,
// XQueue logged in, engine answering), each with the reasons an operator reads in the probe's body.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace xqw::observability {

// One probe's answer. ok == reasons.empty().
struct ProbeResult {
  bool ok = true;
  std::vector<std::string> reasons;
};

// {"<key>": ok, "reasons": [...]}, e.g. {"ready": false, "reasons": ["Docker engine not answering"]}.
std::string probe_json(std::string_view key, const ProbeResult& result);

class Health;

// A registered loop; unregisters on destruction, so a loop that ends (shutdown) never reads as stuck.
class [[nodiscard]] LoopRegistration {
 public:
  LoopRegistration(Health& health, std::string name);
  ~LoopRegistration();
  LoopRegistration(const LoopRegistration&) = delete;
  LoopRegistration& operator=(const LoopRegistration&) = delete;

  void heartbeat();
  void busy_for(std::chrono::seconds up_to);
  const std::string& name() const { return name_; }

 private:
  Health& health_;
  std::string name_;
};

// Thread-safe. Loops live on their own threads; the HTTP server reads from its own.
class Health {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // `clock` is injectable for tests; the default is std::chrono::steady_clock::now.
  explicit Health(Clock clock = {});

  // --- liveness ---------------------------------------------------------------------------------------
  // A loop that must tick at least every `max_staleness` (counts as ticked now). Throws
  // std::invalid_argument when the name is already registered.
  void register_loop(const std::string& name, std::chrono::seconds max_staleness);
  // The same, unregistered when the returned handle is destroyed.
  LoopRegistration register_scoped_loop(const std::string& name, std::chrono::seconds max_staleness);
  void unregister_loop(const std::string& name);
  // Marks the loop alive now. Throws std::invalid_argument for an unregistered name (a wiring bug).
  void heartbeat(const std::string& name);
  // The loop is legitimately busy (e.g. waiting for a container) for up to `up_to`: it stays alive until
  // now + up_to + its max_staleness. Its next heartbeat returns it to the normal allowance.
  void busy_for(const std::string& name, std::chrono::seconds up_to);
  ProbeResult liveness() const;

  // --- readiness --------------------------------------------------------------------------------------
  void set_config_loaded(bool loaded);
  // One entry per XQueue connection (e.g. "queue#0"); ready needs at least one logged in.
  void set_xqueue_logged_in(const std::string& connection, bool logged_in);
  void forget_xqueue_connection(const std::string& connection);
  // `detail` (e.g. the engine error) is appended to the reason while the engine is down.
  void set_engine_answering(bool answering, std::string detail = {});
  // Not ready from now on: a stopping watcher takes no new work.
  void set_shutting_down();
  ProbeResult readiness() const;

 private:
  struct Loop {
    std::chrono::seconds max_staleness;
    std::chrono::steady_clock::time_point last_tick;
    std::chrono::steady_clock::time_point alive_until;
  };
  std::chrono::steady_clock::time_point now() const;

  Clock clock_;
  mutable std::mutex mutex_;
  std::map<std::string, Loop> loops_;
  bool config_loaded_ = false;
  std::map<std::string, bool> xqueue_connections_;
  bool engine_answering_ = false;
  std::string engine_detail_;
  bool shutting_down_ = false;
};

}  // namespace xqw::observability
