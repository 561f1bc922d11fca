// observability/health: loop staleness bookkeeping and the readiness conditions.
#include "observability/health.hpp"

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace xqw::observability {

namespace {

long long whole_seconds(std::chrono::steady_clock::duration duration) {
  return std::chrono::duration_cast<std::chrono::seconds>(duration).count();
}

}  // namespace

std::string probe_json(std::string_view key, const ProbeResult& result) {
  nlohmann::json body;
  body[std::string(key)] = result.ok;
  body["reasons"] = result.reasons;
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

LoopRegistration::LoopRegistration(Health& health, std::string name)
    : health_(health), name_(std::move(name)) {}

LoopRegistration::~LoopRegistration() { health_.unregister_loop(name_); }

void LoopRegistration::heartbeat() { health_.heartbeat(name_); }

void LoopRegistration::busy_for(std::chrono::seconds up_to) { health_.busy_for(name_, up_to); }

Health::Health(Clock clock) : clock_(std::move(clock)) {}

std::chrono::steady_clock::time_point Health::now() const {
  return clock_ ? clock_() : std::chrono::steady_clock::now();
}

void Health::register_loop(const std::string& name, std::chrono::seconds max_staleness) {
  const auto at = now();
  std::lock_guard lock(mutex_);
  if (!loops_.emplace(name, Loop{max_staleness, at, at + max_staleness}).second) {
    throw std::invalid_argument("health: loop '" + name + "' is already registered");
  }
}

LoopRegistration Health::register_scoped_loop(const std::string& name, std::chrono::seconds max_staleness) {
  register_loop(name, max_staleness);
  return LoopRegistration(*this, name);
}

void Health::unregister_loop(const std::string& name) {
  std::lock_guard lock(mutex_);
  loops_.erase(name);
}

void Health::heartbeat(const std::string& name) {
  const auto at = now();
  std::lock_guard lock(mutex_);
  auto loop = loops_.find(name);
  if (loop == loops_.end())
    throw std::invalid_argument("health: heartbeat from unregistered loop '" + name + "'");
  loop->second.last_tick = at;
  loop->second.alive_until = at + loop->second.max_staleness;
}

void Health::busy_for(const std::string& name, std::chrono::seconds up_to) {
  const auto at = now();
  std::lock_guard lock(mutex_);
  auto loop = loops_.find(name);
  if (loop == loops_.end())
    throw std::invalid_argument("health: busy_for from unregistered loop '" + name + "'");
  loop->second.last_tick = at;
  loop->second.alive_until = at + up_to + loop->second.max_staleness;
}

ProbeResult Health::liveness() const {
  const auto at = now();
  std::lock_guard lock(mutex_);
  ProbeResult result;
  for (const auto& [name, loop] : loops_) {
    if (at <= loop.alive_until) continue;
    result.reasons.push_back("loop '" + name + "' is stuck: last tick " +
                             std::to_string(whole_seconds(at - loop.last_tick)) + " s ago, allowed " +
                             std::to_string(whole_seconds(loop.alive_until - loop.last_tick)) + " s");
  }
  result.ok = result.reasons.empty();
  return result;
}

void Health::set_config_loaded(bool loaded) {
  std::lock_guard lock(mutex_);
  config_loaded_ = loaded;
}

void Health::set_xqueue_logged_in(const std::string& connection, bool logged_in) {
  std::lock_guard lock(mutex_);
  xqueue_connections_[connection] = logged_in;
}

void Health::forget_xqueue_connection(const std::string& connection) {
  std::lock_guard lock(mutex_);
  xqueue_connections_.erase(connection);
}

void Health::set_engine_answering(bool answering, std::string detail) {
  std::lock_guard lock(mutex_);
  engine_answering_ = answering;
  engine_detail_ = answering ? std::string() : std::move(detail);
}

void Health::set_shutting_down() {
  std::lock_guard lock(mutex_);
  shutting_down_ = true;
}

ProbeResult Health::readiness() const {
  std::lock_guard lock(mutex_);
  ProbeResult result;
  if (shutting_down_) result.reasons.emplace_back("shutting down");
  if (!config_loaded_) result.reasons.emplace_back("configuration not loaded");
  std::size_t logged_in = 0;
  for (const auto& [connection, ok] : xqueue_connections_) logged_in += ok ? 1 : 0;
  if (logged_in == 0) {
    result.reasons.push_back(xqueue_connections_.empty()
                                 ? std::string("no XQueue connection started")
                                 : "no XQueue connection logged in (0 of " +
                                       std::to_string(xqueue_connections_.size()) + ")");
  }
  if (!engine_answering_) {
    result.reasons.push_back(engine_detail_.empty() ? std::string("Docker engine not answering")
                                                    : "Docker engine not answering: " + engine_detail_);
  }
  result.ok = result.reasons.empty();
  return result;
}

}  // namespace xqw::observability
