// Manager: start-up (journal, orphan containers, images), generations of workers (SIGHUP reloads the
// config without dropping jobs in flight), engine health, and the shutdown path.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <map>
#include <optional>
#include <random>

#include "watcher/watcher.hpp"

namespace xqw::watcher {
namespace {
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
// The autoscaler's signal; XQueue's get_queuelen is cheap, but nobody needs it every second.
constexpr milliseconds kQueueLengthInterval{15000};
// A killed run's last container creation may finish after the start-up sweep; it is found by this.
constexpr milliseconds kEarlierRunSweepInterval{10000};

// Tells this process's containers from those of an earlier run with the same watcher id.
std::string new_run_id() {
  std::random_device random;
  return fmt::format("{:08x}{:08x}", random(), random());
}

// The configured cap, else the engine host's CPU count (grading is CPU-bound), else 2.
int container_capacity(const config::ManagerConfig& manager) {
  if (manager.max_running_containers > 0) return manager.max_running_containers;
  try {
    const int cpus = docker::Client(manager.docker_socket).version().cpus;
    if (cpus > 0) return cpus;
  } catch (const docker::EngineError& error) {
    spdlog::warn("could not ask the engine for its CPU count: {}", error.what());
  }
  return 2;
}

// Says which contract a queue's containers follow when it is not what the image's labels say (once per
// queue and configuration): the upstream contract also means nothing is prepared ahead.
void log_contract(const config::QueueConfig& queue, const grading::ImageContract& contract) {
  if (contract.kind == config::ContractKind::Upstream) {
    spdlog::info(
        "queue {}: image {} is graded under the Python watcher's ContainerGrader contract ({}); precreate: "
        "off "
        "(the submission travels in the container's environment, fixed when it is created)",
        queue.name, queue.image, queue.contract_implied ? "implied by KWARGS.image" : "contract: upstream");
  } else if (queue.contract == config::ContractKind::Upstream) {
    spdlog::info(
        "queue {}: image {} declares this project's container contract: graded with it, not the upstream one "
        "KWARGS.image implied",
        queue.name, queue.image);
  }
}

}  // namespace

Generation::Generation(int number, config::Config loaded, const std::string& watcher_id,
                       const std::string& run_id, EngineHealth& engine, Journal& journal,
                       Admission& admission, observability::Metrics& metrics, observability::Health& health)
    : config(std::move(loaded)),
      shared{config.manager,
             watcher_id,
             run_id,
             stop,
             engine,
             journal,
             admission,
             metrics,
             health,
             reported,
             number > 1 ? " (config " + std::to_string(number) + ")" : ""} {}

void Generation::start() {
  for (const auto& queue : config.queues) {
    shared.metrics.declare_queue(queue.name);
    auto& pacer = pacers[queue.name];
    pacer = std::make_unique<PollPacer>(config.manager.poll_interval);
    for (int index = 0; index < queue.connections; ++index) {
      workers.push_back(std::make_unique<Worker>(shared, queue, index, *pacer, running));
    }
  }
  redelivery = std::make_unique<Redelivery>(shared, config.queues);
  queue_lengths = std::make_unique<QueueLengths>(shared, config.queues);
  spdlog::info("watching {} queue(s) with {} connection(s)", config.queues.size(), workers.size());
}

QueueLengths::QueueLengths(const Shared& shared, const std::vector<config::QueueConfig>& queues) {
  thread_ = std::thread([&shared, &queues] {
    std::vector<std::pair<std::unique_ptr<QueueSession>, std::string>> sessions;
    for (const auto& queue : queues) {
      if (queue.server.api == config::ServerApi::Lms) {
        // The LMS's API has no get_queuelen: nothing to ask, and no login to spend on it.
        shared.metrics.set_queue_length_unknown(queue.name);
        continue;
      }
      sessions.emplace_back(
          std::make_unique<QueueSession>(shared, queue, "[" + queue.name + "#length]", false), queue.name);
    }
    do {
      for (auto& [session, name] : sessions) {
        auto& client = session->xqueue();
        if (!client.has_queue_length()) continue;
        try {
          if (!client.logged_in()) client.login();
          if (const auto length = client.get_queuelen(name)) {
            shared.metrics.set_queue_length(name, *length);
          } else {
            shared.metrics.set_queue_length_unknown(name);
          }
        } catch (const xqueue::XQueueError& error) {
          spdlog::debug("queue length of {}: {}", name, error.what());
        }
      }
    } while (!shared.stop.wait_for(kQueueLengthInterval));
  });
}

QueueLengths::~QueueLengths() {
  if (thread_.joinable()) thread_.join();
}

Manager::Manager(std::filesystem::path config_root, config::Config config, std::string watcher_id,
                 observability::Metrics& metrics, observability::Health& health)
    : config_root_(std::move(config_root)),
      initial_(std::move(config)),
      watcher_id_(std::move(watcher_id)),
      run_id_(new_run_id()),
      metrics_(metrics),
      health_(health) {}

const std::string& Manager::engine_socket() const {
  return generations_.empty() ? initial_.manager.docker_socket
                              : generations_.back()->config.manager.docker_socket;
}

void Manager::sweep_earlier_runs() {
  try {
    docker::Client engine(engine_socket());
    const auto earlier =
        grading::earlier_run_containers(engine.list_by_label(grading::orphan_filter(watcher_id_)), run_id_);
    for (const auto& id : earlier) engine.remove(id);
    if (!earlier.empty())
      spdlog::warn("removed {} container(s) left by an earlier run of {}", earlier.size(), watcher_id_);
  } catch (const docker::EngineError& error) {
    spdlog::warn("could not look for containers left by an earlier run of {}: {}", watcher_id_, error.what());
  }
}

void Manager::check_engine() {
  const auto& socket = engine_socket();
  bool up = true;
  std::string detail;
  try {
    docker::Client(socket).ping();
  } catch (const docker::EngineError& error) {
    up = false;
    detail = error.what();
  }
  metrics_.set_engine_up(up);
  health_.set_engine_answering(up, detail);
  if (up != engine_.up()) {
    spdlog::warn("Docker engine at {} {}", socket,
                 up ? "answers again; pulling resumes" : "does not answer; pulling paused");
  }
  engine_.set(up);
}

// Images are pulled (or found) before their queues start pulling, never on a student's critical path.
void Manager::prepare_images(const config::Config& config) {
  docker::Client engine(config.manager.docker_socket);
  std::map<std::string, std::optional<docker::ImageInfo>> images;
  for (const auto& queue : config.queues) {
    auto [image, first] = images.try_emplace(queue.image);
    if (first) {
      try {
        image->second =
            engine.ensure_image(queue.image, queue.pull_policy, config.manager.registry_auth_file);
      } catch (const docker::EngineError& error) {
        spdlog::error("queue {}: {}; its workers wait until the image can be had", queue.name, error.what());
      }
    }
    if (image->second) {
      log_contract(queue, grading::queue_contract(grading::queue_grading(config.manager, queue, watcher_id_),
                                                  *image->second));
    }
  }
}

void Manager::reload() {
  spdlog::info("SIGHUP: reloading the configuration from {}", config_root_.string());
  auto loaded = config::load_config_root(config_root_);
  for (const auto& warning : loaded.warnings) spdlog::warn("config: {}", warning.to_string());
  if (!loaded.ok()) {
    for (const auto& error : loaded.errors) spdlog::error("config: {}", error.to_string());
    spdlog::error("reload refused: {} problem(s); the running configuration stays", loaded.errors.size());
    return;
  }
  const auto& current = generations_.back()->config.manager;
  if (loaded.config->manager.journal_dir != current.journal_dir ||
      loaded.config->manager.work_dir != current.work_dir) {
    spdlog::warn("journal_dir and work_dir changes take effect at the next start, not on reload");
    loaded.config->manager.journal_dir = current.journal_dir;
    loaded.config->manager.work_dir = current.work_dir;
  }
  prepare_images(*loaded.config);
  generations_.back()->retire();  // finishes its in-flight jobs, pulls nothing new
  admission_->wake();
  generations_.push_back(std::make_unique<Generation>(++generation_count_, std::move(*loaded.config),
                                                      watcher_id_, run_id_, engine_, *journal_, *admission_,
                                                      metrics_, health_));
  generations_.back()->start();
}

void Manager::shut_down() {
  health_.set_shutting_down();
  for (auto& generation : generations_) generation->retire();
  admission_->wake();
  const auto grace = generations_.back()->config.manager.shutdown_grace;
  const auto grace_end = Clock::now() + grace;
  auto all_finished = [this] {
    return std::all_of(generations_.begin(), generations_.end(), [](const auto& g) { return g->finished(); });
  };
  while (!all_finished() && Clock::now() < grace_end) std::this_thread::sleep_for(milliseconds{50});
  if (!all_finished()) {
    // Their submissions stay journalled; the next start grades and posts them.
    spdlog::warn("grace period over; removing the containers still running");
    for (auto& generation : generations_) generation->stop.abandon();
    try {
      docker::Client(engine_socket()).remove_by_label(grading::orphan_filter(watcher_id_));
    } catch (const docker::EngineError& error) {
      spdlog::error("could not remove running containers: {}", error.what());
    }
  }
  generations_.clear();  // joins every worker and redelivery loop
  const auto left = journal_->backlog();
  spdlog::info("stopped{}", left ? fmt::format("; {} journal entr{} left for the next start", left,
                                               left == 1 ? "y" : "ies")
                                 : std::string());
}

int Manager::run() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // threads started below inherit the mask

  const auto& manager = initial_.manager;
  try {
    journal_.emplace(manager.journal_dir);
  } catch (const JournalError& error) {
    spdlog::critical("{}", error.what());
    return 2;
  }
  spdlog::info("journal at {} holds {} entr{}", manager.journal_dir.string(), journal_->backlog(),
               journal_->backlog() == 1 ? "y" : "ies");
  sweep_earlier_runs();
  if (const int stale = grading::remove_stale_job_directories(manager.work_dir, watcher_id_); stale > 0) {
    spdlog::warn("removed {} job director{} left by an earlier run of {}", stale, stale == 1 ? "y" : "ies",
                 watcher_id_);
  }
  check_engine();
  admission_ = std::make_unique<Admission>(container_capacity(manager));
  spdlog::info("at most {} grading container(s) run at once", admission_->capacity());
  prepare_images(initial_);
  generations_.push_back(std::make_unique<Generation>(++generation_count_, std::move(initial_), watcher_id_,
                                                      run_id_, engine_, *journal_, *admission_, metrics_,
                                                      health_));
  generations_.back()->start();

  const timespec tick{.tv_sec = 2, .tv_nsec = 0};
  auto next_sweep = Clock::now() + kEarlierRunSweepInterval;
  while (true) {
    const int received = sigtimedwait(&signals, nullptr, &tick);
    if (received == SIGTERM || received == SIGINT) {
      spdlog::info("received {}: no new submissions; finishing those in flight", strsignal(received));
      break;
    }
    if (received == SIGHUP) reload();
    check_engine();
    if (Clock::now() >= next_sweep) {
      sweep_earlier_runs();
      next_sweep = Clock::now() + kEarlierRunSweepInterval;
    }
    metrics_.set_journal_backlog(static_cast<std::int64_t>(journal_->backlog()));
    // Retired generations whose jobs are done are joined here, never the current one.
    const Generation* current = generations_.back().get();
    std::erase_if(generations_, [current](const auto& g) { return g.get() != current && g->finished(); });
  }
  shut_down();
  return 0;
}

}  // namespace xqw::watcher
