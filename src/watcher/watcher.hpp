// watcher: one worker per XQueue connection (pull, grade, post), the manager that runs them, and the
// shutdown path (stop pulling, finish in-flight jobs within a grace period, remove containers).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "grading/job.hpp"
#include "xqueue/xqueue.hpp"

namespace xqw::watcher {

// A stop request every loop can wait on, so no sleep outlives a shutdown.
class StopSignal {
 public:
  void request();
  bool requested() const { return requested_.load(); }
  // Sleeps up to `duration`; returns true when stop was requested meanwhile.
  bool wait_for(std::chrono::milliseconds duration);

 private:
  std::atomic<bool> requested_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
};

// Engine health as the workers see it: they do not pull while the engine does not answer.
class EngineHealth {
 public:
  void set(bool up) { up_.store(up); }
  bool up() const { return up_.load(); }

 private:
  std::atomic<bool> up_{true};
};

// Submission (XQueue's view) → GradeJob (grading's view): the seam between the two.
grading::GradeJob to_grade_job(const xqueue::Submission& submission);

struct WorkerContext {
  const config::ManagerConfig& manager;
  const config::QueueConfig& queue;
  std::string watcher_id;
  StopSignal& stop;
  EngineHealth& engine;
  std::atomic<int>& running;  // live workers, so shutdown knows when in-flight jobs are done
};

// Runs one connection's loop on its own thread until stop is requested and its job is done.
class Worker {
 public:
  Worker(WorkerContext context, int index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  void join();

 private:
  void run();
  WorkerContext context_;
  std::string name_;
  std::thread thread_;
};

// Runs every queue's workers; returns the process exit code once stopped.
class Manager {
 public:
  Manager(config::Config config, std::string watcher_id);
  // Blocks until SIGTERM/SIGINT (handled here), then shuts down within the grace period.
  int run();

 private:
  void monitor_engine();
  config::Config config_;
  std::string watcher_id_;
  StopSignal stop_;
  EngineHealth engine_;
  std::atomic<int> running_workers_{0};
};

}  // namespace xqw::watcher
