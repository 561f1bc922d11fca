// QueueSession: one thread's XQueue client and grader for one queue; grading and delivering a
// journalled submission, shared by the workers and the redelivery loop.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <type_traits>

#include "grading/render.hpp"
#include "observability/logging.hpp"
#include "watcher/files.hpp"
#include "watcher/watcher.hpp"

namespace xqw::watcher {
namespace {

using std::chrono::milliseconds;

// Grading retries for infrastructure failures stay well inside XQueue's processing delay (60 s).
constexpr std::chrono::seconds kGradingRetryBudget{40};
constexpr milliseconds kFirstGradingBackoff{1000};
constexpr milliseconds kMaxGradingBackoff{8000};

http::TransportOptions xqueue_transport_options(const config::ManagerConfig& manager) {
  http::TransportOptions options;
  // As upstream: REQUESTS_TIMEOUT bounds each request to XQueue.
  options.connect_timeout = manager.requests_timeout;
  options.request_timeout = manager.requests_timeout;
  options.verify_tls = manager.verify_tls;
  options.ca_file = manager.ca_file;
  options.follow_redirects = manager.follow_client_redirects;
  if (manager.http_basic_auth) {
    options.basic_auth_user = manager.http_basic_auth->first;
    options.basic_auth_password = manager.http_basic_auth->second;
  }
  return options;
}

}  // namespace

void StopSignal::request() {
  {
    std::lock_guard lock(mutex_);
    requested_.store(true);
  }
  changed_.notify_all();
}

bool StopSignal::wait_for(milliseconds duration) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, duration, [this] { return requested_.load(); });
}

xqueue::ServerApi server_api(config::ServerApi api) {
  return api == config::ServerApi::Lms ? xqueue::ServerApi::Lms : xqueue::ServerApi::XQueue;
}

observability::PostOutcome post_outcome(xqueue::PutOutcome outcome) {
  switch (outcome) {
    case xqueue::PutOutcome::IncorrectKey:
      return observability::PostOutcome::IncorrectKey;
    case xqueue::PutOutcome::Refused:
      return observability::PostOutcome::Rejected;
    case xqueue::PutOutcome::Accepted:
      break;
  }
  return observability::PostOutcome::Accepted;
}

observability::XQueueOutcome xqueue_outcome(xqueue::XQueueErrorKind kind) {
  using observability::XQueueOutcome;
  switch (kind) {
    case xqueue::XQueueErrorKind::Unreachable:
      return XQueueOutcome::Unreachable;
    case xqueue::XQueueErrorKind::ServerError:
      return XQueueOutcome::ServerError;
    case xqueue::XQueueErrorKind::AuthFailed:
      return XQueueOutcome::AuthFailed;
    case xqueue::XQueueErrorKind::Forbidden:
      return XQueueOutcome::Forbidden;
    case xqueue::XQueueErrorKind::Rejected:
      return XQueueOutcome::Rejected;
    case xqueue::XQueueErrorKind::Malformed:
      return XQueueOutcome::Malformed;
    case xqueue::XQueueErrorKind::FileFetch:
      break;  // fetching a file is not one of the timed endpoints; counted as a server error should it be
  }
  return XQueueOutcome::ServerError;
}

bool loses_login(xqueue::XQueueErrorKind kind) {
  switch (kind) {
    case xqueue::XQueueErrorKind::AuthFailed:
    case xqueue::XQueueErrorKind::Forbidden:
    case xqueue::XQueueErrorKind::Unreachable:
      return true;
    case xqueue::XQueueErrorKind::ServerError:
    case xqueue::XQueueErrorKind::Rejected:
    case xqueue::XQueueErrorKind::Malformed:
    case xqueue::XQueueErrorKind::FileFetch:
      break;
  }
  return false;
}

PullFailure pull_failure(xqueue::XQueueErrorKind kind, bool logged_in) {
  switch (kind) {
    case xqueue::XQueueErrorKind::Forbidden:
      return PullFailure::BackOff;
    case xqueue::XQueueErrorKind::AuthFailed:
    case xqueue::XQueueErrorKind::Unreachable:  // down, or not answering in time: no use asking sooner
      return PullFailure::LogInLater;
    case xqueue::XQueueErrorKind::ServerError:
    case xqueue::XQueueErrorKind::Rejected:
    case xqueue::XQueueErrorKind::Malformed:
    case xqueue::XQueueErrorKind::FileFetch:
      break;
  }
  // A login answered with a 5xx or a reply that is no login's: the server is not ready for us yet.
  return logged_in ? PullFailure::PollAgain : PullFailure::LogInLater;
}

double posted_score(double fraction, const std::optional<config::ScorePoints>& points) {
  if (!points) return fraction;
  if (!std::isfinite(fraction)) fraction = 0;
  const double scaled = std::clamp(fraction, 0.0, 1.0) * points->points;
  // A grader's 2/3 * 3 may land a hair under 2: that noise is no lost point.
  constexpr double kNoise = 1e-9;
  switch (points->rounding) {
    case config::PointsRounding::Down:
      return std::floor(scaled + kNoise);
    case config::PointsRounding::Up:
      return std::ceil(scaled - kNoise);
    case config::PointsRounding::Nearest:
      break;
  }
  return std::round(scaled);
}

grading::GradeJob to_grade_job(xqueue::Submission submission, const config::QueueConfig& queue) {
  grading::GradeJob job;
  job.queue = submission.queue;
  job.submission_id = std::to_string(submission.submission_id);
  job.grader_payload = submission.grader_payload;
  job.student_info = submission.student_info.is_object() ? submission.student_info : nlohmann::json::object();
  job.student_response = std::move(submission.student_response);
  job.grader = grading::grader_from_payload(submission.grader_payload);  // the one place it is read
  job.lang = queue.lang;
  job.hide_output = queue.hide_output;
  const auto& payload = submission.grader_payload;
  if (payload.is_object()) {
    if (payload.contains("lang") && payload["lang"].is_string())
      job.lang = payload["lang"].get<std::string>();
    if (payload.contains("hide_output") && payload["hide_output"].is_boolean()) {
      job.hide_output = payload["hide_output"].get<bool>();
    }
  }
  // The LMS sends the problem instance's seed; the staff and student runs must share it.
  if (job.student_info.contains("random_seed") && job.student_info["random_seed"].is_number_integer()) {
    job.seed = job.student_info["random_seed"].get<std::int64_t>();
  } else {
    static thread_local std::mt19937 random{std::random_device{}()};
    job.seed = std::uniform_int_distribution<std::int64_t>(0, 20000)(random);
  }
  return job;
}

QueueSession::QueueSession(const Shared& shared, const config::QueueConfig& queue, std::string name,
                           bool precreate)
    : shared_(shared),
      queue_(queue),
      name_(std::move(name)),
      transport_(xqueue::make_transport(xqueue_transport_options(shared.manager))),
      client_(*transport_, {.base_url = queue.server.url,
                            .username = queue.server.username,
                            .password = queue.server.password,
                            .api = server_api(queue.server.api)}),
      engine_(shared.manager.docker_socket),
      precreate_(precreate) {}

template <typename Call>
auto QueueSession::timed(observability::XQueueEndpoint endpoint, Call&& call) -> decltype(call()) {
  const auto started = std::chrono::steady_clock::now();
  auto record = [&](observability::XQueueOutcome outcome) {
    shared_.metrics.xqueue_request(endpoint, outcome, std::chrono::steady_clock::now() - started);
  };
  try {
    if constexpr (std::is_void_v<decltype(call())>) {
      call();
      record(observability::XQueueOutcome::Ok);
    } else {
      auto result = call();
      record(observability::XQueueOutcome::Ok);
      return result;
    }
  } catch (const xqueue::XQueueError& error) {
    record(xqueue_outcome(error.kind()));
    throw;
  }
}

std::optional<xqueue::Submission> QueueSession::pull() {
  using observability::XQueueEndpoint;
  try {
    if (!client_.logged_in()) timed(XQueueEndpoint::Login, [&] { client_.login(); });
    auto submission =
        timed(XQueueEndpoint::GetSubmission, [&] { return client_.get_submission(queue_.name); });
    shared_.health.set_xqueue_logged_in(health_name(), true);
    if (submission) shared_.metrics.submission_pulled(queue_.name);
    return submission;
  } catch (const xqueue::XQueueError& error) {
    if (loses_login(error.kind())) shared_.health.set_xqueue_logged_in(health_name(), false);
    throw;
  }
}

void QueueSession::log_graded(const grading::GradeReport& report, std::int64_t submission_id) {
  using observability::ContainerPhase;
  const auto& times = report.times;
  const auto label = grading::verdict_label(report.outcome.verdict);
  shared_.metrics.submission_graded(queue_.name, label, times.total);
  for (const auto& [phase, duration] :
       {std::pair{ContainerPhase::Prepare, times.prepare}, std::pair{ContainerPhase::Create, times.create},
        std::pair{ContainerPhase::Start, times.start}, std::pair{ContainerPhase::Run, times.run},
        std::pair{ContainerPhase::Inspect, times.inspect}, std::pair{ContainerPhase::Remove, times.remove}}) {
    if (duration.count() > 0) shared_.metrics.container_phase(phase, duration);
  }
  observability::log_grading({.queue = queue_.name,
                              .submission_id = submission_id,
                              .verdict = std::string(label),
                              .score = report.outcome.result.score,
                              .total = times.total,
                              .phases = {{"prepare", times.prepare},
                                         {"create", times.create},
                                         {"start", times.start},
                                         {"run", times.run},
                                         {"inspect", times.inspect}},
                              .container_id = report.container_id.substr(0, 12),
                              .job_delivery = report.delivery == grading::JobDelivery::None
                                                  ? std::string()
                                                  : std::string(grading::to_string(report.delivery))});
  if (!report.outcome.staff_reason.empty()) {
    spdlog::warn("{} submission {}: staff debug: {}", name_, submission_id, report.outcome.staff_reason);
  }
}

grading::ContainerGrader* QueueSession::grader() {
  if (grader_) return &*grader_;
  try {
    // A runtime the engine does not offer would fail every container: do not pull until it does.
    if (const auto& runtime = queue_.limits.runtime;
        !runtime.empty() && !engine_.version().runtimes.count(runtime)) {
      spdlog::error("{} the Docker engine has no runtime '{}'; not pulling submissions until it has", name_,
                    runtime);
      return nullptr;
    }
    const auto image =
        engine_.ensure_image(queue_.image, queue_.pull_policy, shared_.manager.registry_auth_file);
    auto settings = grading::queue_grading(shared_.manager, queue_, shared_.watcher_id, shared_.run_id);
    if (!precreate_) settings.precreate = config::Precreate::Off;
    const auto wanted = settings.precreate;
    auto contract = grading::queue_contract(settings, image);
    // The upstream contract's precreate: off is logged with the contract, once per queue (Manager).
    const bool upstream = contract.kind == config::ContractKind::Upstream;
    auto ready = [&metrics = shared_.metrics, queue = queue_.name](int delta) {
      metrics.containers_ready_changed(queue, delta);
    };
    grader_.emplace(engine_, std::move(settings), std::move(contract), std::move(ready));
    if (grader_->precreate_mode() != wanted && !upstream) {
      spdlog::info("{} precreate: {} (image {} allows no more than that; wanted {})", name_,
                   config::precreate_name(grader_->precreate_mode()), queue_.image,
                   config::precreate_name(wanted));
    }
    return &*grader_;
  } catch (const docker::EngineError& error) {
    spdlog::error("{} cannot prepare image {}: {}; not pulling submissions until it can", name_, queue_.image,
                  error.what());
    return nullptr;
  }
}

std::optional<xqueue::GradeReply> QueueSession::grade_with_retries(JournalEntry& entry,
                                                                   std::int64_t submission_id,
                                                                   grading::GradeJob& job,
                                                                   const nlohmann::json& listed_files) {
  const auto give_up_at = std::chrono::steady_clock::now() + kGradingRetryBudget;
  // Uploaded files (none for most submissions), after grading's pre-check: see watcher/files.hpp.
  const auto settings = grading::queue_grading(shared_.manager, queue_, shared_.watcher_id, shared_.run_id);
  const auto* ready = this->grader();
  const auto contract = ready ? ready->contract() : grading::configured_contract(settings);
  auto files =
      attach_files(client_, queue_, settings, contract, job, listed_files, shared_.stop, give_up_at, name_);
  if (files.status == FilesOutcome::Status::Stopped) return std::nullopt;
  if (files.refusal) {
    log_graded(*files.refusal, submission_id);
    return xqueue::GradeReply{.correct = false, .score = 0, .msg = files.refusal->html};
  }
  milliseconds backoff = kFirstGradingBackoff;
  for (int attempt = 1;; ++attempt) {
    auto* grader = this->grader();
    try {
      if (!grader) throw grading::GradingUnavailable("image " + queue_.image + " is not available");
      const auto report = grader->grade(job);
      log_graded(report, submission_id);
      return xqueue::GradeReply{.correct = report.outcome.result.correct,
                                .score = posted_score(report.outcome.result.score, queue_.points),
                                .msg = report.html};
    } catch (const grading::GradingUnavailable& error) {
      spdlog::error("{} submission {}: attempt {} could not grade: {}", name_, job.submission_id, attempt,
                    error.what());
      shared_.journal.record_attempt(entry);
      // Whatever failed (engine restart, image gone) is looked at again on the next attempt.
      grader_.reset();
      if (shared_.stop.requested() || std::chrono::steady_clock::now() + backoff > give_up_at) break;
      shared_.stop.wait_for(backoff);
      backoff = std::min(backoff * 2, kMaxGradingBackoff);
    }
  }
  return std::nullopt;
}

void QueueSession::handle(JournalEntry entry, std::optional<xqueue::Submission> parsed) {
  struct Release {  // the caller claimed the entry; it is free again however this ends
    Journal& journal;
    std::string id;
    ~Release() { journal.release(id); }
  } release{shared_.journal, entry.id};

  if (!entry.result) {
    xqueue::Submission submission = parsed ? std::move(*parsed) : Journal::submission_of(entry);
    parsed.reset();
    const auto submission_id = submission.submission_id;
    const auto listed_files = std::move(submission.files);
    auto job = to_grade_job(std::move(submission), queue_);
    spdlog::info("{} submission {}: grading with {}", name_, entry.submission_id,
                 job.grader.value_or("(no grader)"));
    auto reply = grade_with_retries(entry, submission_id, job, listed_files);
    if (reply && shared_.stop.abandoned()) {
      // Its container may have been removed under it: that outcome says nothing about the submission.
      spdlog::warn(
          "{} submission {}: still grading when shutdown_grace ended; killed, journalled for the "
          "next start",
          name_, entry.submission_id);
      return;
    }
    if (!reply) {
      if (shared_.stop.requested()) {
        spdlog::warn("{} submission {}: shutting down before it was graded; journalled for the next start",
                     name_, entry.submission_id);
      } else {
        // Never a student's zero: XQueue serves it again after its processing delay.
        spdlog::error("{} submission {}: not graded within {} s; left for XQueue to re-serve", name_,
                      entry.submission_id, kGradingRetryBudget.count());
        shared_.journal.remove(entry.id);
      }
      return;
    }
    shared_.journal.record_result(entry, *reply);
  }
  deliver(entry, 3);
}

// The LMS stores whole points only: anything else is acknowledged there and then lost.
void QueueSession::warn_if_fractional(const JournalEntry& entry) {
  const double score = entry.result->score;
  if (queue_.server.api != config::ServerApi::Lms || score == std::trunc(score)) return;
  shared_.metrics.fractional_score_posted(queue_.name);
  spdlog::warn(
      "{} submission {}: posting the fractional score {} to an LMS, which stores only whole points: "
      "the student will not get it; set `points` on queue {} (the problem's points_possible)",
      name_, entry.submission_id, score, queue_.name);
}

bool QueueSession::deliver(const JournalEntry& entry, int attempts) {
  using observability::PostOutcome;
  warn_if_fractional(entry);
  milliseconds backoff{500};
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    try {
      const auto posted = timed(observability::XQueueEndpoint::PutResult,
                                [&] { return client_.put_result(entry.raw_header, *entry.result); });
      settle(entry, posted);
      return true;
    } catch (const xqueue::XQueueError& error) {
      spdlog::warn("{} submission {}: put_result failed: {}", name_, entry.submission_id, error.what());
      if (attempt < attempts) {
        std::this_thread::sleep_for(backoff);
        backoff *= 2;
      }
    }
  }
  shared_.metrics.submission_posted(queue_.name, PostOutcome::Failed);
  spdlog::warn("{} submission {}: result kept in the journal; redelivery continues in the background", name_,
               entry.submission_id);
  return false;
}

void QueueSession::settle(const JournalEntry& entry, const xqueue::PutResult& posted) {
  switch (posted.outcome) {
    case xqueue::PutOutcome::Accepted:
      spdlog::info("{} submission {}: result posted", name_, entry.submission_id);
      break;
    case xqueue::PutOutcome::IncorrectKey:
      spdlog::warn("{} submission {}: XQueue refused the key (re-served meanwhile); result dropped", name_,
                   entry.submission_id);
      break;
    case xqueue::PutOutcome::Refused:
      // Posting it again cannot change a permanent refusal; XQueue keeps (or re-serves) the submission.
      spdlog::error("{} submission {}: result refused for good (HTTP {}: {}); dropped from the journal",
                    name_, entry.submission_id, posted.status, posted.reason);
      break;
  }
  shared_.metrics.submission_posted(queue_.name, post_outcome(posted.outcome));
  shared_.journal.settle(entry.id);
}

}  // namespace xqw::watcher
