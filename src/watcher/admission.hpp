// watcher: admission control: a cap on containers running at once (all queues) and per queue, shared
// fairly between the queues that want capacity (weighted), so one busy course cannot starve another.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace xqw::watcher {

class StopSignal;

class Admission {
 public:
  class Slot {
   public:
    Slot(Admission& owner, std::string queue) : owner_(&owner), queue_(std::move(queue)) {}
    Slot(Slot&& other) noexcept
        : owner_(std::exchange(other.owner_, nullptr)), queue_(std::move(other.queue_)) {}
    Slot& operator=(Slot&&) = delete;
    Slot(const Slot&) = delete;
    ~Slot() {
      if (owner_) owner_->release(queue_);
    }

   private:
    Admission* owner_;
    std::string queue_;
  };

  explicit Admission(int capacity) : capacity_(capacity > 0 ? capacity : 1) {}
  // Waits until `queue` may run one more container: total below capacity, the queue below its own cap
  // (0: none), and no waiting queue with a smaller share of running containers per unit of weight.
  // Returns nullopt when stop is requested while waiting.
  std::optional<Slot> acquire(const std::string& queue, int weight, int queue_cap, const StopSignal& stop);
  // Wakes waiters so they see a stop request.
  void wake();
  int running() const;
  int waiting() const;  // connections waiting for capacity
  int capacity() const { return capacity_; }

 private:
  struct Waiter {
    std::string queue;
    int weight;
    std::uint64_t ticket;
  };
  bool is_next(const Waiter& me) const;
  void release(const std::string& queue);

  const int capacity_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  int total_ = 0;
  std::map<std::string, int> running_;
  std::map<std::uint64_t, Waiter> waiting_;
  std::map<std::string, int> queue_caps_;
  std::uint64_t next_ticket_ = 0;
};

// Paces one queue's connections: while the queue is empty, XQueue sees at most one poll of it per
// poll interval (one connection polls, the others wait for what it finds); when it has work, every
// connection polls again at once.
class PollPacer {
 public:
  explicit PollPacer(std::chrono::milliseconds interval) : interval_(interval) {}
  // Waits until this connection may poll; returns the turn's epoch (nullopt: stop requested).
  std::optional<std::uint64_t> wait_turn(const StopSignal& stop);
  // After a wait elsewhere (for capacity): is the turn still this connection's? False when another
  // connection has found the queue empty since, and the interval has not passed yet.
  bool still_my_turn(std::uint64_t epoch);
  void report(bool found_work);
  // Call after requesting a stop: waits end at once (there are no timed wake-ups to notice it).
  void wake();

 private:
  using Clock = std::chrono::steady_clock;
  const std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable changed_;
  Clock::time_point next_poll_{};
  bool last_empty_ = true;   // unknown counts as empty: one connection looks first
  std::uint64_t epoch_ = 0;  // reports so far
};

}  // namespace xqw::watcher
