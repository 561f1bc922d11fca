// grading/container_pool: one queue's containers off the critical path — the next one prepared before a
// submission needs it, used ones (and their job directories) removed after — on its own engine connection.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "docker/docker.hpp"
#include "grading/job.hpp"

namespace xqw::grading {

// A created container and the job directory mounted in it (none under the upstream contract).
struct GradingContainer {
  std::string id;
  std::unique_ptr<JobDirectory> job_dir;
  bool waiting = false;  // started before its job, waiting for the job signal
  std::chrono::steady_clock::time_point made = std::chrono::steady_clock::now();
};

// Told how many prepared containers (created, or started and waiting for a job) came or went: +1 or -1.
using ReadyObserver = std::function<void(int delta)>;

// Force-removes a container; one failure (engine busy) is tried again at once. False when it is still
// there: the caller may try later, and what remains is the start-up sweep's to find by its labels.
bool remove_container(docker::Client& engine, const std::string& id);

class ContainerPool {
 public:
  // Makes the next container on the pool's engine connection (created, or started and waiting).
  using Factory = std::function<GradingContainer(docker::Client&)>;
  // A waiting container is replaced once it has waited `replace_waiting_after`, before it would end itself.
  // `on_ready` hears +1 when a prepared container becomes ready and -1 when it is taken or dropped.
  ContainerPool(const std::string& engine_socket, std::string queue, Factory make,
                std::chrono::milliseconds replace_waiting_after, ReadyObserver on_ready = {});
  ~ContainerPool();  // removes everything it holds, retrying refused removals a while
  ContainerPool(const ContainerPool&) = delete;
  ContainerPool& operator=(const ContainerPool&) = delete;

  // The prepared container, once any preparation in progress has finished (nullopt if it failed); the
  // next one is prepared at once, so it is ready by the time this one's submission is done.
  std::optional<GradingContainer> take();
  void prepare_next();
  // Removes a used container and its job directory in the background.
  void dispose(GradingContainer used);

 private:
  using Clock = std::chrono::steady_clock;
  struct Retry {
    GradingContainer container;
    int attempts;
    Clock::time_point next;
  };
  void loop();
  bool step(std::unique_lock<std::mutex>& lock);  // one piece of work; false when the loop should end
  Clock::time_point replace_at(const GradingContainer& waiting) const;
  std::optional<Clock::time_point> next_timer() const;
  std::optional<GradingContainer> create();
  void remove(GradingContainer used, int attempts = 0);
  // Takes the prepared container out (if any), telling the observer.
  std::optional<GradingContainer> take_prepared();

  std::string queue_;
  Factory make_;
  std::chrono::milliseconds replace_waiting_after_;
  ReadyObserver on_ready_;
  docker::Client engine_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool stopping_ = false;
  bool want_prepare_ = false;
  bool preparing_ = false;
  std::optional<GradingContainer> prepared_;
  std::deque<GradingContainer> disposals_;
  std::deque<Retry> retries_;  // in order of their next attempt (all wait the same interval)
  std::thread thread_;         // last: starts once everything above exists
};

}  // namespace xqw::grading
