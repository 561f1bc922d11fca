#include "grading/container_grader.hpp"

#include <spdlog/spdlog.h>

#include "grading/render.hpp"

namespace xqw::grading {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::chrono::microseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
}

// The engine answered (an API error, or the container is gone) rather than not answering at all.
bool engine_answered(const docker::EngineError& error) {
  return error.kind() == docker::EngineErrorKind::ApiError ||
         error.kind() == docker::EngineErrorKind::ContainerGone;
}

fs::path canonical_or_same(const fs::path& path) {
  std::error_code ignored;
  const fs::path canonical = fs::canonical(path, ignored);
  return canonical.empty() ? path : canonical;
}

}  // namespace

ContainerGrader::ContainerGrader(docker::Client& engine, QueueGrading queue, ImageContract contract,
                                 ReadyObserver on_ready)
    : engine_(engine), queue_(std::move(queue)), contract_(std::move(contract)) {
  // The upstream contract's submission travels in the environment, fixed when the container is created:
  // none can be prepared before its submission.
  if (contract_.kind == config::ContractKind::Upstream) queue_.precreate = config::Precreate::Off;
  // Only an image whose supervisor confines grading to the problem directory can take a container
  // created before the problem is known (its mount holds the whole grader_root).
  if (queue_.precreate == config::Precreate::Off || !whole_root_mounted()) return;
  auto make = [this](docker::Client& pool_engine) {
    return prestart() ? waiting_container(pool_engine) : new_container(pool_engine, "precreated");
  };
  pool_ = std::make_unique<ContainerPool>(engine_.socket_path(), queue_.queue, std::move(make),
                                          queue_.wait_for_job * 9 / 10, std::move(on_ready));
  pool_->prepare_next();
}

ContainerGrader::~ContainerGrader() = default;

config::Precreate ContainerGrader::precreate_mode() const {
  if (!pool_) return config::Precreate::Off;
  return prestart() ? config::Precreate::Started : config::Precreate::Created;
}

GradeReport ContainerGrader::grade(const GradeJob& job) {
  auto checked = precheck(queue_, contract_, job, job.files.size());
  if (!checked) return std::move(checked.error());
  GradeReport report = run_in_container(job, *checked);
  report.html = render_html(report.outcome.result);
  return report;
}

GradingContainer ContainerGrader::new_container(docker::Client& engine, std::string_view submission_id,
                                                std::vector<std::string> env) const {
  GradingContainer container;
  container.job_dir = std::make_unique<JobDirectory>(
      queue_.work_dir, job_directory_name(queue_.watcher_id, std::string(submission_id)));
  auto spec = container_spec(queue_, contract_, canonical_or_same(queue_.grader_root),
                             container.job_dir->path(), submission_id);
  spec.env = std::move(env);
  container.id = engine.create_container(spec);
  return container;
}

GradingContainer ContainerGrader::waiting_container(docker::Client& engine) const {
  auto container = new_container(
      engine, "waiting", {std::string(kWaitForJobEnv) + "=" + std::to_string(queue_.wait_for_job.count())});
  container.job_dir->make_ready_fifo();  // without it the job signal wakes the container
  try {
    engine.start(container.id);
  } catch (...) {
    remove_container(engine, container.id);
    throw;
  }
  container.waiting = true;
  container.made = Clock::now();
  return container;
}

// With the whole root mounted the image finds the grader by its path inside it.
std::string ContainerGrader::mounted_grader(const ResolvedGrader& grader) const {
  if (!whole_root_mounted()) return grader.file_name;
  return (grader.problem_dir / grader.file_name)
      .lexically_relative(canonical_or_same(queue_.grader_root))
      .string();
}

double ContainerGrader::timeout_seconds() const {
  return std::chrono::duration<double>(queue_.limits.timeout).count();
}

bool ContainerGrader::hand_over(GradingContainer& container, const GradeJob& job,
                                const ResolvedGrader& grader, GradeReport& report) {
  auto phase = Clock::now();
  container.job_dir->write(job, timeout_seconds(), mounted_grader(grader));
  report.times.prepare = since(phase);
  if (!container.waiting) return true;
  phase = Clock::now();
  report.delivery = deliver(container);
  const bool delivered = report.delivery != JobDelivery::None;
  report.times.start = since(phase);
  if (!delivered) {
    spdlog::warn("queue {}: the container waiting for submission {} had ended; grading it in a new one",
                 queue_.queue, job.submission_id);
  }
  return delivered;
}

// Wakes a waiting container whose job directory is written: through its FIFO when the container reads
// it (no engine call), not at all when its supervisor will find the job by itself, else with the image's
// job signal. None when the container has ended.
JobDelivery ContainerGrader::deliver(const GradingContainer& container) {
  const auto wake = container.job_dir->wake_reader();
  if (wake == JobDirectory::Wake::Woken) {
    fifo_reaches_containers_ = true;
    return JobDelivery::Fifo;
  }
  // The supervisor opens its FIFO before it first looks for job.json, which is already written: once the
  // FIFO has reached this queue's containers (the image and the runtime pass it through), a running
  // container taken while its supervisor still starts needs no wake-up, and no signal (a run of the OCI
  // runtime: a third of the jobs at 4 connections on 2 busy cores). One that ended has no reader either.
  if (wake == JobDirectory::Wake::NoReader && fifo_reaches_containers_) {
    try {
      return engine_.inspect(container.id).running ? JobDelivery::JobFile : JobDelivery::None;
    } catch (const docker::ContainerGone&) {
      return JobDelivery::None;
    }
  }
  try {
    if (engine_.send_signal(container.id, contract_.job_signal)) return JobDelivery::Signal;
  } catch (const docker::ContainerGone&) {
  }
  return JobDelivery::None;
}

GradingContainer ContainerGrader::container_for(const GradeJob& job, const ResolvedGrader& grader,
                                                GradeReport& report) {
  const auto phase = Clock::now();
  GradingContainer container;
  if (contract_.kind == config::ContractKind::Upstream) {
    // No job directory: the job is in the container's environment and arguments.
    container.id = engine_.create_container(upstream_container_spec(queue_, grader, job));
  } else if (whole_root_mounted()) {
    container = new_container(engine_, job.submission_id);
    container.job_dir->write(job, timeout_seconds(), mounted_grader(grader));
  } else {
    container.job_dir = std::make_unique<JobDirectory>(
        queue_.work_dir, job_directory_name(queue_.watcher_id, job.submission_id), job, timeout_seconds(),
        mounted_grader(grader));
    report.times.prepare = since(phase);
    const auto created = Clock::now();
    container.id = engine_.create_container(
        container_spec(queue_, contract_, grader.problem_dir, container.job_dir->path(), job.submission_id));
    report.times.create = since(created);
    return container;
  }
  report.times.create = since(phase);
  return container;
}

GradeReport ContainerGrader::run_in_container(const GradeJob& job, const ResolvedGrader& grader) {
  GradeReport report;
  const auto started = Clock::now();
  std::optional<GradingContainer> container;
  try {
    if (pool_) container = pool_->take();
    if (container && !hand_over(*container, job, grader, report)) {
      pool_->dispose(std::move(*std::exchange(container, std::nullopt)));
    }
    if (!container) container = container_for(job, grader, report);
    report.container_id = container->id;
    const auto facts = run_container(*container, report);
    report.staff_stderr = facts.stderr_bytes;
    if (contract_.framing == ResultFraming::LastLine) {
      report.staff_stdout = std::string(split_last_line(facts.stdout_bytes).prints);
    }
    auto decided = decide(facts, message_limits(queue_, contract_), queue_.messages,
                          ParseLimits{.framing = contract_.framing});
    if (!decided) throw GradingUnavailable("container " + container->id + ": " + decided.error().reason);
    report.outcome = std::move(*decided);
  } catch (const docker::EngineError& error) {
    finish(std::move(container));
    throw GradingUnavailable(std::string("Docker engine: ") + error.what());
  } catch (const JobDirectoryError& error) {
    finish(std::move(container));
    throw GradingUnavailable(error.what());
  } catch (const GradingUnavailable&) {
    finish(std::move(container));
    throw;
  }
  finish(std::move(container));
  report.times.total = since(started);
  return report;
}

RunFacts ContainerGrader::run_container(const GradingContainer& container, GradeReport& report) {
  auto phase = Clock::now();
  const auto deadline = Clock::now() + queue_.limits.timeout;  // a waiting container: counted from its job
  if (!container.waiting) {
    engine_.start(container.id);
    report.times.start = since(phase);
  }
  phase = Clock::now();
  bool deadline_hit = false;
  auto output = engine_.follow_output(
      container.id, {.stdout_bytes = queue_.limits.stdout_bytes, .stderr_bytes = queue_.limits.stderr_bytes},
      deadline, &deadline_hit);
  RunFacts facts{.deadline_hit = deadline_hit,
                 .stdout_truncated = output.out.truncated,
                 .stderr_truncated = output.err.truncated,
                 .started_before_job = container.waiting,
                 .refused_forks = image_report(output.err.data).refused_forks,
                 .stdout_bytes = std::move(output.out.data),
                 .stderr_bytes = std::move(output.err.data)};
  collect_exit(container.id, deadline, facts, report);
  report.times.run = since(phase) - report.times.inspect;
  return facts;
}

void ContainerGrader::collect_exit(const std::string& id, Clock::time_point deadline, RunFacts& facts,
                                   GradeReport& report) {
  // When the watcher itself ended the run (deadline or output cap) its own facts decide the verdict, so
  // an engine that cannot kill or report the container (it answers an error) does not turn a student's
  // time-out into an infrastructure failure. An engine that does not answer at all still does.
  const bool watcher_stopped_it = stopped_by_watcher(facts);
  try {
    const auto waited = engine_.wait(id, deadline);
    const auto phase = Clock::now();
    const auto state = engine_.inspect(id);
    report.times.inspect = since(phase);
    facts.deadline_hit = facts.deadline_hit || waited.deadline_hit;
    facts.engine_oom_flag = state.oom_killed;
    facts.exit_code = waited.exit_code;
    report.exit_code = waited.exit_code;
  } catch (const docker::EngineError& error) {
    if (!watcher_stopped_it || !engine_answered(error)) throw;
    spdlog::warn("container {}: no exit status after the watcher stopped it: {}", id, error.what());
  }
}

// Removes the container and its job directory: off the critical path when a pool runs, right here
// otherwise.
void ContainerGrader::finish(std::optional<GradingContainer> container) {
  if (!container) return;
  if (pool_) {
    pool_->dispose(std::move(*container));
    return;
  }
  remove_container(engine_, container->id);
}

}  // namespace xqw::grading
