#include "watcher/watcher.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <random>

#include "docker/docker.hpp"
#include "grading/container_grader.hpp"
#include "grading/render.hpp"
#include "http/http.hpp"

namespace xqw::watcher {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

http::TransportOptions xqueue_transport_options(const config::ManagerConfig& manager) {
  http::TransportOptions options;
  options.connect_timeout = std::max(manager.requests_timeout, milliseconds{1000});
  options.request_timeout = std::max(manager.requests_timeout, milliseconds{1000}) * 10;
  options.verify_tls = manager.verify_tls;
  options.ca_file = manager.ca_file;
  options.cookies = true;
  options.follow_redirects = manager.follow_client_redirects;
  if (manager.http_basic_auth) {
    options.basic_auth_user = manager.http_basic_auth->first;
    options.basic_auth_password = manager.http_basic_auth->second;
  }
  return options;
}

grading::QueueGrading queue_grading(const config::ManagerConfig& manager, const config::QueueConfig& queue,
                                    const std::string& watcher_id) {
  return grading::QueueGrading{.queue = queue.name,
                               .watcher_id = watcher_id,
                               .image = queue.image,
                               .limits = queue.limits,
                               .messages = queue.messages,
                               .grader_root = queue.grader_root,
                               .docker_host_grader_root = queue.docker_host_grader_root,
                               .work_dir = manager.work_dir,
                               .docker_host_work_dir = manager.docker_host_work_dir};
}

// Posts a result, retrying through short XQueue outages with capped exponential backoff.
void post_result(xqueue::Client& client, const xqueue::Submission& submission, const xqueue::GradeReply& reply,
                 const std::string& who) {
  milliseconds backoff{500};
  for (int attempt = 1;; ++attempt) {
    try {
      if (client.put_result(submission, reply) == xqueue::PutOutcome::IncorrectKey) {
        spdlog::warn("{} submission {}: XQueue refused the key (re-served meanwhile); result dropped", who,
                     submission.submission_id);
      }
      return;
    } catch (const xqueue::XQueueError& error) {
      if (attempt >= 8) {
        spdlog::error("{} submission {}: giving up posting the result after {} attempts: {}", who,
                      submission.submission_id, attempt, error.what());
        return;
      }
      spdlog::warn("{} submission {}: put_result failed ({}), retrying in {} ms", who, submission.submission_id,
                   error.what(), backoff.count());
      // Keep retrying during shutdown too: the result exists and must not be lost.
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, milliseconds{8000});
    }
  }
}

// A submission XQueue delivered broken would be re-served forever; answer it once with an error.
void answer_malformed(xqueue::Client& client, const std::string& raw_header) {
  const grading::GraderResult result{
      .correct = false,
      .score = 0,
      .errors = {"This submission could not be graded because it reached the grader malformed. "
                 "Course staff have been told; please submit again."}};
  try {
    client.put_result(raw_header, {.correct = false, .score = 0, .msg = grading::render_html(result)});
  } catch (const xqueue::XQueueError& error) {
    spdlog::warn("could not answer a malformed submission: {}", error.what());
  }
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

grading::GradeJob to_grade_job(const xqueue::Submission& submission) {
  grading::GradeJob job;
  job.queue = submission.queue;
  job.submission_id = std::to_string(submission.submission_id);
  job.grader_payload = submission.grader_payload;
  job.student_info = submission.student_info.is_object() ? submission.student_info : nlohmann::json::object();
  job.student_response = submission.student_response;
  if (auto grader = grading::grader_from_payload(submission.grader_payload)) job.grader = *grader;
  const auto& payload = submission.grader_payload;
  if (payload.is_object()) {
    if (payload.contains("lang") && payload["lang"].is_string()) job.lang = payload["lang"].get<std::string>();
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

Worker::Worker(WorkerContext context, int index)
    : context_(context), name_("[" + context.queue.name + "#" + std::to_string(index) + "]") {
  ++context_.running;
  thread_ = std::thread([this] {
    try {
      run();
    } catch (const std::exception& error) {
      spdlog::critical("{} worker stopped by an unexpected error: {}", name_, error.what());
    }
    --context_.running;
  });
}

Worker::~Worker() { join(); }

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::run() {
  const auto& manager = context_.manager;
  const auto& queue = context_.queue;
  auto transport = xqueue::make_transport(xqueue_transport_options(manager));
  xqueue::Client client(*transport, {.base_url = queue.server.url,
                                     .username = queue.server.username,
                                     .password = queue.server.password});
  docker::Client engine(manager.docker_socket);
  std::optional<grading::ContainerGrader> grader;

  while (!context_.stop.requested()) {
    if (!context_.engine.up()) {
      context_.stop.wait_for(manager.poll_interval);
      continue;
    }
    if (!grader) {
      try {
        auto image = engine.ensure_image(queue.image, docker::parse_pull_policy(queue.pull_policy)
                                                          .value_or(docker::PullPolicy::IfNotPresent));
        grader.emplace(engine, queue_grading(manager, queue, context_.watcher_id), grading::image_contract(image));
      } catch (const docker::EngineError& error) {
        spdlog::error("{} cannot prepare image {}: {}", name_, queue.image, error.what());
        context_.stop.wait_for(manager.login_poll_interval);
        continue;
      }
    }
    std::optional<xqueue::Submission> submission;
    try {
      if (!client.logged_in()) client.login();
      submission = client.get_submission(queue.name);
    } catch (const xqueue::MalformedReply& error) {
      spdlog::error("{} malformed submission from XQueue: {}", name_, error.what());
      if (error.raw_header()) answer_malformed(client, *error.raw_header());
      context_.stop.wait_for(manager.poll_interval);
      continue;
    } catch (const xqueue::XQueueAuthError& error) {
      spdlog::error("{} login to {} failed: {}", name_, queue.server.url, error.what());
      context_.stop.wait_for(manager.login_poll_interval);
      continue;
    } catch (const xqueue::XQueueError& error) {
      spdlog::warn("{} get_submission failed: {}", name_, error.what());
      context_.stop.wait_for(manager.poll_interval);
      continue;
    }
    if (!submission) {
      context_.stop.wait_for(manager.poll_interval);
      continue;
    }
    const auto job = to_grade_job(*submission);
    spdlog::info("{} submission {}: grading with {}", name_, job.submission_id, job.grader);
    try {
      const auto report = grader->grade(job);
      spdlog::info("{} submission {}: verdict {} score {} in {} ms", name_, job.submission_id,
                   grading::verdict_label(report.outcome.verdict), report.outcome.result.score,
                   report.times.total.count() / 1000);
      if (!report.outcome.staff_reason.empty()) {
        spdlog::warn("{} submission {}: staff debug: {}", name_, job.submission_id, report.outcome.staff_reason);
      }
      post_result(client,
                  *submission,
                  {.correct = report.outcome.result.correct, .score = report.outcome.result.score, .msg = report.html},
                  name_);
    } catch (const grading::GradingUnavailable& error) {
      // Not the student's fault: post nothing, XQueue serves the submission again after its delay.
      spdlog::error("{} submission {}: not graded, left for XQueue to re-serve: {}", name_, job.submission_id,
                    error.what());
      context_.stop.wait_for(manager.poll_interval);
    }
  }
  spdlog::info("{} stopped", name_);
}

Manager::Manager(config::Config config, std::string watcher_id)
    : config_(std::move(config)), watcher_id_(std::move(watcher_id)) {}

void Manager::monitor_engine() {
  docker::Client engine(config_.manager.docker_socket);
  bool was_up = true;
  try {
    engine.ping();
  } catch (const docker::EngineError&) {
    was_up = false;
  }
  engine_.set(was_up);
}

int Manager::run() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // threads started below inherit the mask

  docker::Client engine(config_.manager.docker_socket);
  try {
    const int removed = engine.remove_by_label(grading::orphan_filter(watcher_id_));
    if (removed > 0) spdlog::warn("removed {} container(s) left by an earlier run of {}", removed, watcher_id_);
  } catch (const docker::EngineError& error) {
    spdlog::warn("could not look for orphan containers: {}", error.what());
  }
  monitor_engine();

  std::vector<std::unique_ptr<Worker>> workers;
  for (const auto& queue : config_.queues) {
    for (int index = 0; index < queue.connections; ++index) {
      workers.push_back(std::make_unique<Worker>(
          WorkerContext{config_.manager, queue, watcher_id_, stop_, engine_, running_workers_}, index));
    }
  }
  spdlog::info("watching {} queue(s) with {} connection(s)", config_.queues.size(), workers.size());

  const timespec tick{.tv_sec = 2, .tv_nsec = 0};
  while (true) {
    const int received = sigtimedwait(&signals, nullptr, &tick);
    if (received == SIGTERM || received == SIGINT) {
      spdlog::info("received {}: no new submissions; finishing those in flight", strsignal(received));
      break;
    }
    const bool before = engine_.up();
    monitor_engine();
    if (before != engine_.up()) {
      spdlog::warn("Docker engine {}", engine_.up() ? "answers again; pulling resumes" : "does not answer; pulling paused");
    }
  }
  stop_.request();
  const auto grace_end = Clock::now() + config_.manager.shutdown_grace;
  while (running_workers_.load() > 0 && Clock::now() < grace_end) {
    std::this_thread::sleep_for(milliseconds{50});
  }
  if (running_workers_.load() > 0) {
    spdlog::warn("grace period over; removing containers still running");
    try {
      engine.remove_by_label(grading::orphan_filter(watcher_id_));
    } catch (const docker::EngineError& error) {
      spdlog::error("could not remove running containers: {}", error.what());
    }
  }
  workers.clear();  // joins
  spdlog::info("stopped");
  return 0;
}

}  // namespace xqw::watcher
