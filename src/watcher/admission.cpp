#include "watcher/admission.hpp"

#include <chrono>

#include "watcher/watcher.hpp"

namespace xqw::watcher {

bool Admission::is_next(const Waiter& me) const {
  auto cap_reached = [this](const std::string& queue) {
    const auto cap = queue_caps_.find(queue);
    const auto running = running_.find(queue);
    return cap != queue_caps_.end() && cap->second > 0 && running != running_.end() &&
           running->second >= cap->second;
  };
  if (total_ >= capacity_ || cap_reached(me.queue)) return false;
  // Weighted fairness: the queue with the smallest running/weight goes first; ties by arrival.
  auto share = [this](const Waiter& waiter) {
    const auto running = running_.find(waiter.queue);
    return static_cast<double>(running == running_.end() ? 0 : running->second) / waiter.weight;
  };
  for (const auto& [ticket, other] : waiting_) {
    if (ticket == me.ticket || other.queue == me.queue || cap_reached(other.queue)) continue;
    const double theirs = share(other), mine = share(me);
    if (theirs < mine || (theirs == mine && other.ticket < me.ticket)) return false;
  }
  // Within one queue, first come first served.
  for (const auto& [ticket, other] : waiting_) {
    if (other.queue == me.queue && ticket < me.ticket) return false;
  }
  return true;
}

std::optional<Admission::Slot> Admission::acquire(const std::string& queue, int weight, int queue_cap,
                                                  const StopSignal& stop) {
  std::unique_lock lock(mutex_);
  queue_caps_[queue] = queue_cap;
  const Waiter me{queue, weight > 0 ? weight : 1, next_ticket_++};
  waiting_.emplace(me.ticket, me);
  // No timed wake-ups while idle: whoever requests a stop calls wake() after it.
  changed_.wait(lock, [&] { return stop.requested() || is_next(me); });
  waiting_.erase(me.ticket);
  changed_.notify_all();  // the order among the others may have changed
  if (stop.requested()) return std::nullopt;
  ++total_;
  ++running_[queue];
  return Slot(*this, queue);
}

void Admission::release(const std::string& queue) {
  {
    std::lock_guard lock(mutex_);
    --total_;
    --running_[queue];
  }
  changed_.notify_all();
}

void Admission::wake() {
  // Under the lock: a waiter that has just seen no stop request is then already waiting.
  std::lock_guard lock(mutex_);
  changed_.notify_all();
}

int Admission::running() const {
  std::lock_guard lock(mutex_);
  return total_;
}

int Admission::waiting() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(waiting_.size());
}

std::optional<std::uint64_t> PollPacer::wait_turn(const StopSignal& stop) {
  std::unique_lock lock(mutex_);
  while (!stop.requested() && Clock::now() < next_poll_) {
    changed_.wait_until(lock, next_poll_);  // wake() ends it early on a stop request
  }
  if (stop.requested()) return std::nullopt;
  // The queue was empty last time: this connection polls for everyone until it reports.
  if (last_empty_) next_poll_ = Clock::now() + interval_;
  return epoch_;
}

bool PollPacer::still_my_turn(std::uint64_t epoch) {
  std::lock_guard lock(mutex_);
  if (epoch == epoch_ || !last_empty_) return true;
  if (Clock::now() < next_poll_) return false;
  next_poll_ = Clock::now() + interval_;
  return true;
}

void PollPacer::wake() {
  std::lock_guard lock(mutex_);
  changed_.notify_all();
}

void PollPacer::report(bool found_work) {
  {
    std::lock_guard lock(mutex_);
    ++epoch_;
    last_empty_ = !found_work;
    next_poll_ = found_work ? Clock::now() : Clock::now() + interval_;
  }
  changed_.notify_all();
}

}  // namespace xqw::watcher
