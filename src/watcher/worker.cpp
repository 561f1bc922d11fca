// Worker: one XQueue connection's loop: log in, poll, journal, grade, post; idle only when the queue is
// empty.
#include <spdlog/spdlog.h>

#include "grading/render.hpp"
#include "watcher/watcher.hpp"

namespace xqw::watcher {
namespace {

// A submission XQueue delivered broken would be re-served forever; answer it once with an error.
observability::PostOutcome answer_malformed(xqueue::Client& client, const std::string& raw_header,
                                            const std::string& who) {
  const grading::GraderResult result{
      .correct = false,
      .score = 0,
      .errors = {"This submission could not be graded because it reached the grader malformed. "
                 "Course staff have been told; please submit again."}};
  try {
    return post_outcome(
        client.put_result(raw_header, {.correct = false, .score = 0, .msg = grading::render_html(result)})
            .outcome);
  } catch (const xqueue::XQueueError& error) {
    spdlog::warn("{} could not answer a malformed submission: {}", who, error.what());
    return observability::PostOutcome::Failed;
  }
}

// A permission refusal does not pass by itself: retried ever more slowly, up to this.
constexpr std::chrono::milliseconds kMaxForbiddenBackoff{300000};

}  // namespace

Worker::Worker(const Shared& shared, const config::QueueConfig& queue, int index, PollPacer& pacer,
               std::atomic<int>& running)
    : shared_(shared),
      queue_(queue),
      name_("[" + queue.name + "#" + std::to_string(index) + "]"),
      pacer_(pacer),
      running_(running) {
  ++running_;
  thread_ = std::thread([this] {
    try {
      run();
    } catch (const std::exception& error) {
      spdlog::critical("{} worker stopped by an unexpected error: {}", name_, error.what());
    }
    --running_;
  });
}

Worker::~Worker() { join(); }

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::run() {
  const auto& manager = shared_.manager;
  QueueSession session(shared_, queue_, name_);
  // Alive while it ticks at least this often when idle (slow XQueue calls included).
  const auto idle_allowance = std::chrono::duration_cast<std::chrono::seconds>(
      std::max(manager.poll_interval, manager.login_poll_interval) + 3 * manager.requests_timeout +
      std::chrono::seconds(30));
  // Busy spells: waiting for capacity, then a container run and its retries.
  const auto busy_allowance =
      std::chrono::duration_cast<std::chrono::seconds>(4 * queue_.limits.timeout + std::chrono::seconds(60));
  auto loop = shared_.health.register_scoped_loop("worker " + session.health_name(), idle_allowance);
  auto forbidden_backoff = manager.login_poll_interval;
  std::int64_t last_served_twice = -1;  // logged at warning once per submission, then at debug
  while (!shared_.stop.requested()) {
    loop.heartbeat();
    // Never pull a submission that cannot be graded now: XQueue keeps it safer than we could.
    if (!shared_.engine.up()) {
      shared_.stop.wait_for(manager.poll_interval);
      continue;
    }
    if (!session.grader()) {
      shared_.stop.wait_for(manager.login_poll_interval);
      continue;
    }
    // Pull only when this queue's turn has come and a container may run now.
    const auto turn = pacer_.wait_turn(shared_.stop);
    if (!turn) break;
    loop.busy_for(busy_allowance);
    auto slot = shared_.admission.acquire(queue_.name, queue_.weight, queue_.max_running, shared_.stop);
    if (!slot) break;
    if (!pacer_.still_my_turn(*turn)) continue;  // another connection found it empty meanwhile
    std::optional<xqueue::Submission> submission;
    try {
      submission = session.pull();
    } catch (const xqueue::MalformedReply& error) {
      spdlog::error("{} malformed submission from XQueue: {}", name_, error.what());
      if (error.raw_header()) {  // a submission, not a broken reply: count and answer it
        shared_.metrics.submission_pulled(queue_.name);
        shared_.metrics.submission_malformed(queue_.name);
        shared_.metrics.submission_posted(queue_.name,
                                          answer_malformed(session.xqueue(), *error.raw_header(), name_));
      }
      pacer_.report(true);  // there may be more behind it
      continue;
    } catch (const xqueue::XQueueError& error) {
      pacer_.report(false);
      const bool logged_in = session.xqueue().logged_in();
      switch (pull_failure(error.kind(), logged_in)) {
        case PullFailure::PollAgain:
          spdlog::warn("{} get_submission failed: {}", name_, error.what());
          break;
        case PullFailure::LogInLater:
          spdlog::error("{} {} {} failed: {}; trying again in {} ms (login_poll_interval)", name_,
                        logged_in ? "get_submission from" : "login to", queue_.server.url, error.what(),
                        manager.login_poll_interval.count());
          slot.reset();
          shared_.stop.wait_for(manager.login_poll_interval);
          break;
        case PullFailure::BackOff:
          if (shared_.reported.first("forbidden " + queue_.server.url + " " + queue_.server.username)) {
            spdlog::error(
                "{} configuration error: {}. Pulling backs off (up to every {} s) until it is fixed", name_,
                error.what(), kMaxForbiddenBackoff.count() / 1000);
          } else {
            spdlog::debug("{} still refused: {}", name_, error.what());
          }
          slot.reset();
          shared_.stop.wait_for(forbidden_backoff);
          forbidden_backoff = std::min(forbidden_backoff * 2, kMaxForbiddenBackoff);
          break;
      }
      continue;
    }
    forbidden_backoff = manager.login_poll_interval;
    if (!submission) {
      pacer_.report(false);
      continue;
    }
    try {
      auto in_flight = shared_.metrics.track_job(queue_.name);
      loop.busy_for(busy_allowance);
      auto entry = shared_.journal.record_received(*submission);
      // A copy of one in hand is no work found: the queue is polled at its pace, not at once again.
      pacer_.report(entry.has_value());
      if (!entry) {
        shared_.metrics.submission_served_twice(queue_.name);
        const auto log_level =
            std::exchange(last_served_twice, submission->submission_id) == submission->submission_id
                ? spdlog::level::debug
                : spdlog::level::warn;
        spdlog::log(
            log_level,
            "{} submission {}: served again with the same key while it is in hand here (or just posted); "
            "it is graded and posted once",
            name_, submission->submission_id);
        continue;
      }
      submission->raw_body = std::string();  // journalled; grading needs only the parsed fields
      session.handle(std::move(*entry), std::move(submission));
    } catch (const JournalError& error) {
      pacer_.report(true);
      // Without the journal a crash could lose it; XQueue's requeue is the safer keeper.
      spdlog::error("{} submission {}: not graded, the journal is unusable: {}", name_,
                    submission->submission_id, error.what());
      shared_.stop.wait_for(manager.login_poll_interval);
    }
  }
  shared_.health.forget_xqueue_connection(session.health_name());
  spdlog::info("{} stopped", name_);
}

}  // namespace xqw::watcher
