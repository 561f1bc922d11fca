// watcher: one worker per XQueue connection (pull, journal, grade, post), the redelivery loop for results
// XQueue has not acknowledged yet, and the manager: start-up clean-up, engine health, shutdown.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "docker/docker.hpp"
#include "grading/container_grader.hpp"
#include "grading/job.hpp"
#include "observability/health.hpp"
#include "observability/metrics.hpp"
#include "watcher/admission.hpp"
#include "watcher/journal.hpp"
#include "xqueue/xqueue.hpp"

namespace xqw::watcher {

// A stop request every loop can wait on, so no sleep outlives a shutdown.
class StopSignal {
 public:
  void request();
  bool requested() const { return requested_.load(); }
  // Sleeps up to `duration`; returns true when stop was requested meanwhile.
  bool wait_for(std::chrono::milliseconds duration);
  // The shutdown grace is over and running containers are being removed: whatever a grading in flight
  // reports from now on (a killed container looks like a crash or a memory kill) is not the student's.
  void abandon() {
    abandoned_.store(true);
    request();
  }
  bool abandoned() const { return abandoned_.load(); }

 private:
  std::atomic<bool> abandoned_{false};
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

// Configuration errors every connection would hit alike: reported once, then quietly.
class ReportOnce {
 public:
  // True the first time `what` is seen.
  bool first(const std::string& what) {
    std::lock_guard lock(mutex_);
    return seen_.insert(what).second;
  }

 private:
  std::mutex mutex_;
  std::set<std::string> seen_;
};

// Submission (XQueue's view) → GradeJob (grading's view): the seam between the two. Takes the
// submission by value: a caller done with it moves it in, so a large response is not copied. The grader
// path is read from the payload here, once (GradeJob::grader; unset when the payload names none). What
// the payload does not say (lang, hide_output) comes from the queue.
grading::GradeJob to_grade_job(xqueue::Submission submission, const config::QueueConfig& queue);

xqueue::ServerApi server_api(config::ServerApi api);

// How a put_result outcome is counted in the metrics.
observability::PostOutcome post_outcome(xqueue::PutOutcome outcome);

// How a failed XQueue request is counted in the metrics: by its error's kind, one outcome label each.
observability::XQueueOutcome xqueue_outcome(xqueue::XQueueErrorKind kind);

// True when, after an error of this kind, the session cannot be taken to be logged in (the health report).
bool loses_login(xqueue::XQueueErrorKind kind);

// What a worker does when pulling (logging in, then get_submission) failed with an error of this kind. Pure.
// `logged_in`: the session still counts as logged in after the failure (false when the login itself
// failed). A MalformedReply is answered first when it carries a submission's header (worker.cpp).
enum class PullFailure {
  PollAgain,  // a logged-in poll's passing failure (5xx, a refusal, a broken reply): poll at the queue's pace
  LogInLater,  // no login, or no reply at all: free the slot, try again after login_poll_interval
  BackOff,     // the account may not use the API (a configuration error): free the slot, back off ever longer
};
PullFailure pull_failure(xqueue::XQueueErrorKind kind, bool logged_in);

// Redelivery's wait before posting a journalled result again, after a post that failed having waited
// `previous` (zero: the first failure): 1 s, then doubling, capped at 60 s. An entry that is settled
// forgets its wait (a later failure starts at 1 s again). Pure.
std::chrono::milliseconds redelivery_backoff(std::chrono::milliseconds previous);

// The score to post: the grader's 0..1 score as is, or whole points out of the queue's `points`. Pure.
double posted_score(double fraction, const std::optional<config::ScorePoints>& points);

// What every loop of one watcher shares.
struct Shared {
  const config::ManagerConfig& manager;
  std::string watcher_id;
  std::string run_id;  // this process, on every container's labels (grading::kRunLabel)
  StopSignal& stop;
  EngineHealth& engine;
  Journal& journal;
  Admission& admission;
  observability::Metrics& metrics;
  observability::Health& health;
  ReportOnce& reported;
  // Appended to a connection's name in health: after a reload the retiring generation's loops (same
  // queue, same index) are still registered until their jobs finish.
  std::string health_suffix;
};

// One queue's XQueue session and grader, owned by one thread.
class QueueSession {
 public:
  // `precreate`: keep a container ready (workers); the redelivery loop grades too rarely to want one.
  QueueSession(const Shared& shared, const config::QueueConfig& queue, std::string name,
               bool precreate = true);
  xqueue::Client& xqueue() { return client_; }
  // get_submission (logging in first when needed), counted in the metrics.
  std::optional<xqueue::Submission> pull();
  // The grader, once its image is present (pulled per policy); nullopt while it cannot be had.
  grading::ContainerGrader* grader();
  // Grades a journalled submission the caller has claimed, posts the result and releases the claim.
  // Infrastructure failures are retried a few times, then the submission is left to XQueue's requeue
  // (or, when stopping, to the next start). `parsed`: the entry's submission when the caller has it
  // already (a fresh pull), so a large one is not parsed and held twice.
  void handle(JournalEntry entry, std::optional<xqueue::Submission> parsed = std::nullopt);
  // Posts a journalled result; returns true when the entry is settled (acknowledged or re-served).
  bool deliver(const JournalEntry& entry, int attempts);
  const std::string& name() const { return name_; }
  // This connection in the health registry: its name, told apart from a retiring generation's twin.
  std::string health_name() const { return name_ + shared_.health_suffix; }

 private:
  // Runs one XQueue call, counting it by endpoint and outcome.
  template <typename Call>
  auto timed(observability::XQueueEndpoint endpoint, Call&& call) -> decltype(call());
  // `listed_files`: the submission's xqueue_files, fetched onto `job` after grading's pre-check.
  std::optional<xqueue::GradeReply> grade_with_retries(JournalEntry& entry, std::int64_t submission_id,
                                                       grading::GradeJob& job,
                                                       const nlohmann::json& listed_files);
  void warn_if_fractional(const JournalEntry& entry);
  // Counts and logs what became of a post, and removes the journal entry: it is settled.
  void settle(const JournalEntry& entry, const xqueue::PutResult& posted);
  void log_graded(const grading::GradeReport& report, std::int64_t submission_id);
  const Shared& shared_;
  const config::QueueConfig& queue_;
  std::string name_;
  std::unique_ptr<http::Transport> transport_;
  xqueue::Client client_;
  docker::Client engine_;
  std::optional<grading::ContainerGrader> grader_;
  bool precreate_;
};

// Runs one connection's loop on its own thread until stop is requested and its job is done.
class Worker {
 public:
  Worker(const Shared& shared, const config::QueueConfig& queue, int index, PollPacer& pacer,
         std::atomic<int>& running);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  void join();

 private:
  void run();
  const Shared& shared_;
  const config::QueueConfig& queue_;
  std::string name_;
  PollPacer& pacer_;
  std::atomic<int>& running_;
  std::thread thread_;
};

// Posts journalled results XQueue has not acknowledged (capped exponential backoff per entry) and
// finishes submissions an earlier run journalled but did not grade.
class Redelivery {
 public:
  Redelivery(const Shared& shared, const std::vector<config::QueueConfig>& queues);
  ~Redelivery();
  Redelivery(const Redelivery&) = delete;
  Redelivery& operator=(const Redelivery&) = delete;
  // One pass over the journal (also run once more at shutdown).
  void pass();

 private:
  QueueSession* session_for(const std::string& queue);
  const Shared& shared_;
  const std::vector<config::QueueConfig>& queues_;
  std::map<std::string, std::unique_ptr<QueueSession>> sessions_;
  std::map<std::string, std::pair<std::chrono::steady_clock::time_point, std::chrono::milliseconds>> backoff_;
  std::thread thread_;
};

// Refreshes the queue-length gauge of every queue from get_queuelen, on its own thread.
class QueueLengths {
 public:
  QueueLengths(const Shared& shared, const std::vector<config::QueueConfig>& queues);
  ~QueueLengths();
  QueueLengths(const QueueLengths&) = delete;
  QueueLengths& operator=(const QueueLengths&) = delete;

 private:
  std::thread thread_;
};

// One loaded configuration and everything running for it; a reload starts a new generation and lets
// the old one finish its in-flight jobs.
struct Generation {
  // `number`: 1 for the configuration loaded at start, then one more per reload.
  Generation(int number, config::Config loaded, const std::string& watcher_id, const std::string& run_id,
             EngineHealth& engine, Journal& journal, Admission& admission, observability::Metrics& metrics,
             observability::Health& health);
  void start();
  // Stops pulling (in-flight jobs finish); the caller wakes the shared Admission.
  void retire() {
    stop.request();
    for (auto& [queue, pacer] : pacers) pacer->wake();
  }
  bool finished() const { return running.load() == 0; }
  config::Config config;
  StopSignal stop;
  ReportOnce reported;
  Shared shared;
  std::atomic<int> running{0};
  std::map<std::string, std::unique_ptr<PollPacer>> pacers;  // per queue
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<Redelivery> redelivery;
  std::unique_ptr<QueueLengths> queue_lengths;
};

// Runs every queue's workers; returns the process exit code once stopped.
class Manager {
 public:
  Manager(std::filesystem::path config_root, config::Config config, std::string watcher_id,
          observability::Metrics& metrics, observability::Health& health);
  // Blocks until SIGTERM/SIGINT (handled here), then shuts down within the grace period. SIGHUP reloads.
  int run();

 private:
  // The current configuration's engine socket (the loaded one before the first generation starts).
  const std::string& engine_socket() const;
  void check_engine();
  // Removes the containers an earlier run of this watcher left (see grading::earlier_run_containers).
  void sweep_earlier_runs();
  void prepare_images(const config::Config& config);
  void reload();
  void shut_down();
  std::filesystem::path config_root_;
  config::Config initial_;
  std::string watcher_id_;
  std::string run_id_;
  EngineHealth engine_;
  std::optional<Journal> journal_;
  std::unique_ptr<Admission> admission_;
  observability::Metrics& metrics_;
  observability::Health& health_;
  std::vector<std::unique_ptr<Generation>> generations_;  // the last one is current
  int generation_count_ = 0;
};

}  // namespace xqw::watcher
