// cli/interrupt: Ctrl-C (SIGINT) and SIGTERM for `grade`: taken by a thread of their own so the grading
// threads can stop cleanly and the run's containers can be removed by its watcher label.
#pragma once

#include <signal.h>

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

namespace xqw::cli {

// `grade-HOST-PID`: labels one `grade` run's containers, so only they are removed when it is interrupted.
std::string default_watcher_id();

// Force-removes every container labelled with `watcher_id` on the engine; a failure is printed, not thrown.
void remove_run_containers(const std::string& docker_socket, const std::string& watcher_id);

// SIGINT and SIGTERM, blocked in this thread and every thread started after it, are taken by a thread of
// their own: from the first one on, `on_interrupt` runs there every quarter second until this object
// ends (so a container created meanwhile goes too). The previous signal mask comes back at the end.
class InterruptWatch {
 public:
  InterruptWatch(std::string_view name, std::function<void()> on_interrupt);
  ~InterruptWatch();
  InterruptWatch(const InterruptWatch&) = delete;
  InterruptWatch& operator=(const InterruptWatch&) = delete;
  bool interrupted() const { return interrupted_; }

 private:
  void loop();

  std::string name_;  // the command, for the message
  std::function<void()> on_interrupt_;
  sigset_t signals_{};
  sigset_t previous_{};
  std::atomic<bool> done_{false};
  std::atomic<bool> interrupted_{false};
  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace xqw::cli
