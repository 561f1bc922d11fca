// observability/metrics: family registration and the typed recording methods.
#include "observability/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <limits>

namespace xqw::observability {

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

std::string text(std::string_view view) { return std::string(view); }

}  // namespace

std::string_view phase_label(ContainerPhase phase) {
  switch (phase) {
    case ContainerPhase::Prepare:
      return "prepare";
    case ContainerPhase::Create:
      return "create";
    case ContainerPhase::Start:
      return "start";
    case ContainerPhase::Run:
      return "run";
    case ContainerPhase::Inspect:
      return "inspect";
    case ContainerPhase::Remove:
      return "remove";
  }
  return "unknown";
}

std::string_view post_outcome_label(PostOutcome outcome) {
  switch (outcome) {
    case PostOutcome::Accepted:
      return "accepted";
    case PostOutcome::IncorrectKey:
      return "incorrect_key";
    case PostOutcome::Rejected:
      return "rejected";
    case PostOutcome::Failed:
      return "failed";
  }
  return "unknown";
}

std::string_view endpoint_label(XQueueEndpoint endpoint) {
  switch (endpoint) {
    case XQueueEndpoint::Login:
      return "login";
    case XQueueEndpoint::GetSubmission:
      return "get_submission";
    case XQueueEndpoint::PutResult:
      return "put_result";
    case XQueueEndpoint::GetQueuelen:
      return "get_queuelen";
  }
  return "unknown";
}

std::string_view xqueue_outcome_label(XQueueOutcome outcome) {
  switch (outcome) {
    case XQueueOutcome::Ok:
      return "ok";
    case XQueueOutcome::Rejected:
      return "rejected";
    case XQueueOutcome::AuthFailed:
      return "auth_failed";
    case XQueueOutcome::ServerError:
      return "server_error";
    case XQueueOutcome::Unreachable:
      return "unreachable";
    case XQueueOutcome::Malformed:
      return "malformed";
    case XQueueOutcome::Forbidden:
      return "forbidden";
  }
  return "unknown";
}

const std::vector<double>& duration_buckets() {
  // Container phases take milliseconds; whole gradings take seconds up to the longest queue time-out.
  static const std::vector<double> buckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                           2.5,   5,    10,    20,   30,  60,   120};
  return buckets;
}

struct Metrics::Families {
  Family<Counter>& pulled;
  Family<Counter>& graded;
  Family<Counter>& posted;
  Family<Histogram>& grading_duration;
  Family<Histogram>& phase_duration;
  Family<Counter>& xqueue_requests;
  Family<Histogram>& xqueue_duration;
  Family<Gauge>& queue_length;
  Family<Gauge>& in_flight;
  Family<Gauge>& containers_ready;
  Family<Counter>& fractional_scores;
  Family<Counter>& served_twice;
  Gauge& journal_backlog;
  Gauge& engine_up;
};

namespace {

Family<Counter>& counter(prometheus::Registry& registry, const std::string& name, const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

Family<Gauge>& gauge(prometheus::Registry& registry, const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

Family<Histogram>& histogram(prometheus::Registry& registry, const std::string& name,
                             const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(registry);
}

}  // namespace

Metrics::Metrics(std::string_view version) : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  families_ = std::make_unique<Families>(Families{
      counter(r, "xqueue_watcher_submissions_pulled_total", "Submissions received from XQueue, by queue."),
      counter(r, "xqueue_watcher_submissions_graded_total", "Submissions graded, by queue and verdict."),
      counter(r, "xqueue_watcher_submissions_posted_total",
              "Results posted to XQueue, by queue and outcome (accepted, incorrect_key, rejected, failed)."),
      histogram(r, "xqueue_watcher_grading_duration_seconds",
                "Time from pulling a submission to its verdict, by queue."),
      histogram(r, "xqueue_watcher_container_phase_duration_seconds",
                "Latency of each grading container phase (prepare, create, start, run, inspect, remove)."),
      counter(r, "xqueue_watcher_xqueue_requests_total", "Requests to XQueue, by endpoint and outcome."),
      histogram(r, "xqueue_watcher_xqueue_request_duration_seconds",
                "Latency of XQueue requests, by endpoint."),
      gauge(r, "xqueue_watcher_queue_length",
            "Submissions waiting in each queue (last get_queuelen answer; NaN when the server has none)."),
      gauge(r, "xqueue_watcher_jobs_in_flight", "Submissions pulled and not yet posted, by queue."),
      gauge(r, "xqueue_watcher_containers_ready",
            "Containers prepared ahead (created, or started and waiting for a job) and not yet used, by "
            "queue."),
      counter(r, "xqueue_watcher_fractional_scores_total",
              "Fractional scores posted to a server that stores only whole points (lost there), by queue."),
      counter(r, "xqueue_watcher_submissions_served_twice_total",
              "Submissions served again with the key of one in flight here (graded once), by queue."),
      gauge(r, "xqueue_watcher_journal_backlog", "Results in the journal not yet posted to XQueue.").Add({}),
      gauge(r, "xqueue_watcher_engine_up", "1 while the Docker engine answers, else 0.").Add({}),
  });
  gauge(r, "xqueue_watcher_build_info", "Always 1; the version label names the running build.")
      .Add({{"version", text(version)}})
      .Set(1);
  for (auto phase : {ContainerPhase::Prepare, ContainerPhase::Create, ContainerPhase::Start,
                     ContainerPhase::Run, ContainerPhase::Inspect, ContainerPhase::Remove}) {
    families_->phase_duration.Add({{"phase", text(phase_label(phase))}}, duration_buckets());
  }
}

Metrics::~Metrics() = default;

void Metrics::declare_queue(std::string_view queue) {
  const std::string name = text(queue);
  families_->pulled.Add({{"queue", name}});
  families_->grading_duration.Add({{"queue", name}}, duration_buckets());
  for (auto outcome :
       {PostOutcome::Accepted, PostOutcome::IncorrectKey, PostOutcome::Rejected, PostOutcome::Failed}) {
    families_->posted.Add({{"queue", name}, {"outcome", text(post_outcome_label(outcome))}});
  }
  families_->queue_length.Add({{"queue", name}});
  families_->in_flight.Add({{"queue", name}});
  families_->containers_ready.Add({{"queue", name}});
  families_->fractional_scores.Add({{"queue", name}});
  families_->served_twice.Add({{"queue", name}});
}

void Metrics::submission_pulled(std::string_view queue) {
  families_->pulled.Add({{"queue", text(queue)}}).Increment();
}

void Metrics::submission_graded(std::string_view queue, std::string_view verdict, Seconds duration) {
  families_->graded.Add({{"queue", text(queue)}, {"verdict", text(verdict)}}).Increment();
  families_->grading_duration.Add({{"queue", text(queue)}}, duration_buckets()).Observe(duration.count());
}

void Metrics::submission_malformed(std::string_view queue) {
  families_->graded.Add({{"queue", text(queue)}, {"verdict", "malformed"}}).Increment();
}

void Metrics::submission_posted(std::string_view queue, PostOutcome outcome) {
  families_->posted.Add({{"queue", text(queue)}, {"outcome", text(post_outcome_label(outcome))}}).Increment();
}

void Metrics::container_phase(ContainerPhase phase, Seconds duration) {
  families_->phase_duration.Add({{"phase", text(phase_label(phase))}}, duration_buckets())
      .Observe(duration.count());
}

void Metrics::xqueue_request(XQueueEndpoint endpoint, XQueueOutcome outcome, Seconds duration) {
  const std::string endpoint_name = text(endpoint_label(endpoint));
  families_->xqueue_requests
      .Add({{"endpoint", endpoint_name}, {"outcome", text(xqueue_outcome_label(outcome))}})
      .Increment();
  families_->xqueue_duration.Add({{"endpoint", endpoint_name}}, duration_buckets()).Observe(duration.count());
}

void Metrics::set_queue_length(std::string_view queue, std::int64_t length) {
  families_->queue_length.Add({{"queue", text(queue)}}).Set(static_cast<double>(length));
}

void Metrics::set_queue_length_unknown(std::string_view queue) {
  families_->queue_length.Add({{"queue", text(queue)}}).Set(std::numeric_limits<double>::quiet_NaN());
}

void Metrics::fractional_score_posted(std::string_view queue) {
  families_->fractional_scores.Add({{"queue", text(queue)}}).Increment();
}

void Metrics::submission_served_twice(std::string_view queue) {
  families_->served_twice.Add({{"queue", text(queue)}}).Increment();
}

void Metrics::job_started(std::string_view queue) {
  families_->in_flight.Add({{"queue", text(queue)}}).Increment();
}

void Metrics::job_finished(std::string_view queue) {
  families_->in_flight.Add({{"queue", text(queue)}}).Decrement();
}

void Metrics::containers_ready_changed(std::string_view queue, int delta) {
  families_->containers_ready.Add({{"queue", text(queue)}}).Increment(delta);
}

InFlightJob Metrics::track_job(std::string_view queue) { return InFlightJob(*this, text(queue)); }

void Metrics::set_journal_backlog(std::int64_t entries) {
  families_->journal_backlog.Set(static_cast<double>(entries));
}

void Metrics::set_engine_up(bool up) { families_->engine_up.Set(up ? 1 : 0); }

std::string Metrics::exposition() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

const prometheus::Registry& Metrics::registry() const { return *registry_; }

InFlightJob::InFlightJob(Metrics& metrics, std::string queue) : metrics_(metrics), queue_(std::move(queue)) {
  metrics_.job_started(queue_);
}

InFlightJob::~InFlightJob() { metrics_.job_finished(queue_); }

}  // namespace xqw::observability
