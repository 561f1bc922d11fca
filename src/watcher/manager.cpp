// Manager: start-up (journal, orphan containers), the workers and the redelivery loop, engine health,
// and the shutdown path (stop pulling, finish in-flight jobs within the grace period, exit 0).
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstring>

#include "watcher/watcher.hpp"

namespace xqw::watcher {
namespace {
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
}  // namespace

Manager::Manager(config::Config config, std::string watcher_id)
    : config_(std::move(config)), watcher_id_(std::move(watcher_id)) {}

void Manager::check_engine() {
  bool up = true;
  try {
    docker::Client(config_.manager.docker_socket).ping();
  } catch (const docker::EngineError&) {
    up = false;
  }
  if (up != engine_.up()) {
    spdlog::warn("Docker engine at {} {}", config_.manager.docker_socket,
                 up ? "answers again; pulling resumes" : "does not answer; pulling paused");
  }
  engine_.set(up);
}

int Manager::run() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // threads started below inherit the mask

  std::optional<Journal> journal;
  try {
    journal.emplace(config_.manager.journal_dir);
  } catch (const JournalError& error) {
    spdlog::critical("{}", error.what());
    return 2;
  }
  spdlog::info("journal at {} holds {} entr{}", config_.manager.journal_dir.string(), journal->backlog(),
               journal->backlog() == 1 ? "y" : "ies");

  docker::Client engine(config_.manager.docker_socket);
  try {
    const int removed = engine.remove_by_label(grading::orphan_filter(watcher_id_));
    if (removed > 0) spdlog::warn("removed {} container(s) left by an earlier run of {}", removed, watcher_id_);
  } catch (const docker::EngineError& error) {
    spdlog::warn("could not look for orphan containers: {}", error.what());
  }
  if (const int stale = grading::remove_stale_job_directories(config_.manager.work_dir, watcher_id_); stale > 0) {
    spdlog::warn("removed {} job director{} left by an earlier run of {}", stale, stale == 1 ? "y" : "ies",
                 watcher_id_);
  }
  check_engine();

  const Shared shared{config_.manager, watcher_id_, stop_, engine_, *journal};
  std::vector<std::unique_ptr<Worker>> workers;
  for (const auto& queue : config_.queues) {
    for (int index = 0; index < queue.connections; ++index) {
      workers.push_back(std::make_unique<Worker>(shared, queue, index, running_workers_));
    }
  }
  auto redelivery = std::make_unique<Redelivery>(shared, config_.queues);
  spdlog::info("watching {} queue(s) with {} connection(s)", config_.queues.size(), workers.size());

  const timespec tick{.tv_sec = 2, .tv_nsec = 0};
  while (true) {
    const int received = sigtimedwait(&signals, nullptr, &tick);
    if (received == SIGTERM || received == SIGINT) {
      spdlog::info("received {}: no new submissions; finishing those in flight", strsignal(received));
      break;
    }
    check_engine();
  }
  stop_.request();
  const auto grace_end = Clock::now() + config_.manager.shutdown_grace;
  while (running_workers_.load() > 0 && Clock::now() < grace_end) std::this_thread::sleep_for(milliseconds{50});
  if (running_workers_.load() > 0) {
    // Their submissions stay journalled; the next start grades and posts them.
    spdlog::warn("grace period over; removing the containers still running");
    try {
      engine.remove_by_label(grading::orphan_filter(watcher_id_));
    } catch (const docker::EngineError& error) {
      spdlog::error("could not remove running containers: {}", error.what());
    }
  }
  workers.clear();     // joins
  redelivery.reset();  // joins
  const auto left = journal->backlog();
  spdlog::info("stopped{}", left ? fmt::format("; {} journal entr{} left for the next start", left, left == 1 ? "y" : "ies")
                                 : std::string());
  return 0;
}

}  // namespace xqw::watcher
