#include "grading/container_pool.hpp"

#include <spdlog/spdlog.h>

namespace xqw::grading {

namespace {

// A removal the engine refused (stopping, restarting): tried again every few seconds for a while.
constexpr std::chrono::seconds kRemovalRetryInterval{2};
constexpr int kRemovalRetries = 60;

}  // namespace

bool remove_container(docker::Client& engine, const std::string& id) {
  if (id.empty()) return true;
  for (int attempt = 1; attempt <= 2; ++attempt) {
    try {
      engine.remove(id);
      return true;
    } catch (const docker::EngineError& error) {
      spdlog::warn("could not remove container {} (attempt {}): {}", id, attempt, error.what());
    }
  }
  return false;
}

ContainerPool::ContainerPool(const std::string& engine_socket, std::string queue, Factory make,
                             std::chrono::milliseconds replace_waiting_after, ReadyObserver on_ready)
    : queue_(std::move(queue)),
      make_(std::move(make)),
      replace_waiting_after_(replace_waiting_after),
      on_ready_(std::move(on_ready)),
      engine_(engine_socket),
      thread_([this] { loop(); }) {}

ContainerPool::~ContainerPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
  if (auto left = take_prepared())
    remove(std::move(*left), kRemovalRetries);  // last chance: nobody retries now
}

std::optional<GradingContainer> ContainerPool::take_prepared() {
  auto taken = std::exchange(prepared_, std::nullopt);
  if (taken && on_ready_) on_ready_(-1);
  return taken;
}

std::optional<GradingContainer> ContainerPool::take() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return !preparing_ && !want_prepare_; });
  auto taken = take_prepared();
  want_prepare_ = true;
  changed_.notify_all();
  return taken;
}

void ContainerPool::prepare_next() {
  {
    std::lock_guard lock(mutex_);
    want_prepare_ = true;
  }
  changed_.notify_all();
}

void ContainerPool::dispose(GradingContainer used) {
  {
    std::lock_guard lock(mutex_);
    disposals_.push_back(std::move(used));
  }
  changed_.notify_all();
}

void ContainerPool::loop() {
  std::unique_lock lock(mutex_);
  const auto work = [this] { return stopping_ || want_prepare_ || !disposals_.empty(); };
  do {
    if (const auto wake_at = next_timer()) {
      changed_.wait_until(lock, *wake_at, work);
    } else {
      changed_.wait(lock, work);
    }
  } while (step(lock));
  while (!disposals_.empty()) {  // nothing is left behind at shutdown
    remove(std::move(disposals_.front()), kRemovalRetries);
    disposals_.pop_front();
  }
  for (auto& retry : retries_) remove(std::move(retry.container), kRemovalRetries);
  retries_.clear();
}

bool ContainerPool::step(std::unique_lock<std::mutex>& lock) {
  // A waiting container ends itself after its wait: replace it before, so none is found ended.
  if (prepared_ && prepared_->waiting && Clock::now() >= replace_at(*prepared_)) {
    disposals_.push_back(std::move(*take_prepared()));
    want_prepare_ = true;
  }
  if (!retries_.empty() && Clock::now() >= retries_.front().next && !stopping_) {
    auto retry = std::move(retries_.front());
    retries_.pop_front();
    lock.unlock();
    remove(std::move(retry.container), retry.attempts + 1);
    lock.lock();
    return true;
  }
  if (want_prepare_ && (stopping_ || prepared_)) {  // nothing to do: a take() may be waiting on it
    want_prepare_ = false;
    changed_.notify_all();
  }
  if (want_prepare_) {  // first: the next submission may be waiting for it
    want_prepare_ = false;
    preparing_ = true;
    lock.unlock();
    auto created = create();
    lock.lock();
    prepared_ = std::move(created);
    if (prepared_ && on_ready_) on_ready_(+1);
    preparing_ = false;
    changed_.notify_all();
    return true;
  }
  if (!disposals_.empty()) {
    auto used = std::move(disposals_.front());
    disposals_.pop_front();
    lock.unlock();
    remove(std::move(used));
    lock.lock();
    return true;
  }
  return !stopping_;
}

ContainerPool::Clock::time_point ContainerPool::replace_at(const GradingContainer& waiting) const {
  return waiting.made + replace_waiting_after_;
}

// The next time the loop has something to do without being asked (under the lock).
std::optional<ContainerPool::Clock::time_point> ContainerPool::next_timer() const {
  std::optional<Clock::time_point> at;
  if (prepared_ && prepared_->waiting) at = replace_at(*prepared_);
  if (!retries_.empty() && (!at || retries_.front().next < *at)) at = retries_.front().next;
  return at;
}

std::optional<GradingContainer> ContainerPool::create() {
  try {
    return make_(engine_);
  } catch (const std::exception& error) {
    spdlog::warn("queue {}: could not pre-create a container: {}", queue_, error.what());
    return std::nullopt;
  }
}

// Removes a used container and its job directory; a removal the engine refuses is queued to be tried
// again later (`attempts` so far), until kRemovalRetries.
void ContainerPool::remove(GradingContainer used, int attempts) {
  const bool removed = remove_container(engine_, used.id);
  if (removed || attempts >= kRemovalRetries) {
    if (!removed) {
      spdlog::error("queue {}: container {} could not be removed; the next start-up sweep removes it", queue_,
                    used.id);
    }
    used.job_dir.reset();
    return;
  }
  std::lock_guard lock(mutex_);
  retries_.push_back({std::move(used), attempts, Clock::now() + kRemovalRetryInterval});
}

}  // namespace xqw::grading
