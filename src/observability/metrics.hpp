// observability/metrics: the watcher's Prometheus metrics, as typed named methods over one registry.
// Owns every metric name (prefix xqueue_watcher_), label and bucket; callers never see prometheus types.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
class Registry;
}

namespace xqw::observability {

// One container lifecycle step, as grading::PhaseTimes measures it.
enum class ContainerPhase { Prepare, Create, Start, Run, Inspect, Remove };
std::string_view phase_label(ContainerPhase phase);  // "prepare", "create", ...

// What became of a put_result.
enum class PostOutcome {
  Accepted,      // XQueue recorded the grade
  IncorrectKey,  // the submission was re-served meanwhile; the grade was not recorded
  Rejected,      // refused for good (unknown submission, bad format, already answered): settled, not retried
  Failed,        // gave up for now: XQueue unreachable or the retries ran out (the journal keeps it)
};
// "accepted", "incorrect_key", "rejected", "failed"
std::string_view post_outcome_label(PostOutcome outcome);

enum class XQueueEndpoint { Login, GetSubmission, PutResult, GetQueuelen };
std::string_view endpoint_label(XQueueEndpoint endpoint);  // "login", "get_submission", ...

// How one XQueue request ended: Ok, or one value per kind of xqueue error (watcher::xqueue_outcome maps
// them).
enum class XQueueOutcome {
  Ok,           // return_code 0, or an expected answer such as "queue empty" / "incorrect key"
  Rejected,     // xqueue::XQueueRejected
  AuthFailed,   // xqueue::XQueueAuthError
  ServerError,  // xqueue::XQueueServerError
  Unreachable,  // xqueue::XQueueUnreachable
  Malformed,    // xqueue::MalformedReply
  Forbidden,    // xqueue::XQueuePermissionDenied
};
// "ok", "rejected", "auth_failed", "server_error", "unreachable", "malformed", "forbidden"
std::string_view xqueue_outcome_label(XQueueOutcome outcome);

using Seconds = std::chrono::duration<double>;  // any std::chrono duration converts to it implicitly

// Histogram bucket upper bounds in seconds, 5 ms .. 120 s (roughly 1-2.5-5 per decade).
const std::vector<double>& duration_buckets();

class Metrics;

// Counts one job in the in-flight gauge for as long as it lives.
class [[nodiscard]] InFlightJob {
 public:
  InFlightJob(Metrics& metrics, std::string queue);
  ~InFlightJob();
  InFlightJob(const InFlightJob&) = delete;
  InFlightJob& operator=(const InFlightJob&) = delete;

 private:
  Metrics& metrics_;
  std::string queue_;
};

// Every method is thread-safe (prometheus-cpp families lock; values are atomics) and cheap enough to call
// once per request or job. Label values are free text (queue names, verdict labels).
class Metrics {
 public:
  // Registers every family and sets xqueue_watcher_build_info{version} to 1.
  explicit Metrics(std::string_view version);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Creates the queue's series at zero, so dashboards and rate() see the queue before its first job.
  void declare_queue(std::string_view queue);

  // xqueue_watcher_submissions_pulled_total{queue}: get_submission returned a submission.
  void submission_pulled(std::string_view queue);
  // xqueue_watcher_submissions_graded_total{queue,verdict} and
  // xqueue_watcher_grading_duration_seconds{queue} (pull to grade, without the post).
  // `verdict` is grading::verdict_label(...).
  void submission_graded(std::string_view queue, std::string_view verdict, Seconds duration);
  // xqueue_watcher_submissions_graded_total{queue,verdict="malformed"}: XQueue delivered a submission
  // the watcher cannot read (answered with an error, never graded).
  void submission_malformed(std::string_view queue);
  // xqueue_watcher_submissions_posted_total{queue,outcome}.
  void submission_posted(std::string_view queue, PostOutcome outcome);

  // xqueue_watcher_container_phase_duration_seconds{phase}.
  void container_phase(ContainerPhase phase, Seconds duration);

  // xqueue_watcher_xqueue_requests_total{endpoint,outcome} and
  // xqueue_watcher_xqueue_request_duration_seconds{endpoint} (including a re-login the call triggered).
  void xqueue_request(XQueueEndpoint endpoint, XQueueOutcome outcome, Seconds duration);

  // xqueue_watcher_queue_length{queue}: the last get_queuelen answer.
  void set_queue_length(std::string_view queue, std::int64_t length);
  // The same gauge as NaN: the server has no get_queuelen (the LMS's API), so the length is unknown.
  void set_queue_length_unknown(std::string_view queue);
  // xqueue_watcher_fractional_scores_total{queue}: a score that is not whole points posted to a server
  // that stores only points (the LMS): the student will not get it.
  void fractional_score_posted(std::string_view queue);
  // xqueue_watcher_submissions_served_twice_total{queue}: a submission served again with the key of one
  // still in flight or journalled here; not graded twice.
  void submission_served_twice(std::string_view queue);
  // xqueue_watcher_jobs_in_flight{queue}: pulled and not yet posted. Prefer track_job().
  void job_started(std::string_view queue);
  void job_finished(std::string_view queue);
  InFlightJob track_job(std::string_view queue);
  // xqueue_watcher_containers_ready{queue}: containers prepared ahead and not yet given a job; `delta` is
  // +1 when one is ready, -1 when it is taken or dropped.
  void containers_ready_changed(std::string_view queue, int delta);
  // xqueue_watcher_journal_backlog: results written to the journal and not yet posted.
  void set_journal_backlog(std::int64_t entries);
  // xqueue_watcher_engine_up: 1 while the Docker engine answers.
  void set_engine_up(bool up);

  // The whole registry in the Prometheus text exposition format (version 0.0.4).
  std::string exposition() const;
  // For the exposition server and tests only.
  const prometheus::Registry& registry() const;

 private:
  struct Families;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> families_;
};

}  // namespace xqw::observability
