#include "grading/container_grader.hpp"

#include <spdlog/spdlog.h>

#include <random>

#include "grading/render.hpp"

namespace xqw::grading {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::chrono::microseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
}

std::string label_or(const docker::ImageInfo& image, std::string_view key, std::string fallback) {
  auto it = image.labels.find(std::string(key));
  return it == image.labels.end() || it->second.empty() ? fallback : it->second;
}

std::string job_directory_name(const GradeJob& job) {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  std::string safe_id;
  for (char c : job.submission_id.substr(0, 32)) safe_id.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return "job-" + safe_id + "-" + std::to_string(random());
}

LimitsForMessages limits_for_messages(const config::Limits& limits) {
  return LimitsForMessages{.memory_bytes = limits.memory_bytes,
                           .timeout = limits.timeout,
                           .stdout_bytes = limits.stdout_bytes,
                           .stderr_bytes = limits.stderr_bytes,
                           .pids = limits.pids,
                           .submission_bytes = limits.submission_bytes};
}

}  // namespace

bool runtime_has_own_kernel(std::string_view runtime) {
  return runtime.starts_with("runsc") || runtime.starts_with("kata");
}

ImageContract image_contract(const docker::ImageInfo& image) {
  ImageContract contract;
  contract.grader_dir = label_or(image, kGraderDirLabel, contract.grader_dir);
  contract.job_dir = label_or(image, kJobDirLabel, contract.job_dir);
  contract.setuid_supervisor = label_or(image, kSupervisorLabel, "") == "setuid";
  return contract;
}

std::string orphan_filter(const std::string& watcher_id) {
  return std::string(kWatcherLabel) + "=" + watcher_id;
}

fs::path engine_path(const fs::path& local, const fs::path& local_root, const fs::path& engine_root) {
  if (engine_root.empty()) return local;
  return engine_root / local.lexically_relative(local_root);
}

docker::ContainerSpec container_spec(const QueueGrading& queue, const ImageContract& contract,
                                     const fs::path& problem_dir, const fs::path& job_dir, const GradeJob& job) {
  const auto& limits = queue.limits;
  docker::ContainerSpec spec;
  spec.image = queue.image;
  if (!limits.user.empty()) {
    spec.user = limits.user;
  } else if (contract.setuid_supervisor) {
    spec.user = "0:0";
    spec.cap_add = {"SETUID", "SETGID"};  // the supervisor's only privileges: dropping to the student uid
  } else {
    spec.user = "65534:65534";
  }
  spec.labels = {{std::string(kManagedLabel), "true"},
                 {std::string(kWatcherLabel), queue.watcher_id},
                 {std::string(kQueueLabel), queue.queue},
                 {std::string(kSubmissionLabel), job.submission_id}};
  spec.mounts = {
      {.source = engine_path(problem_dir, queue.grader_root, queue.docker_host_grader_root).string(),
       .target = contract.grader_dir,
       .read_only = true},
      {.source = engine_path(job_dir, queue.work_dir, queue.docker_host_work_dir).string(),
       .target = contract.job_dir,
       .read_only = true},
  };
  spec.read_only_rootfs = true;
  spec.tmpfs = {{"/tmp", limits.tmpfs_bytes}};
  spec.network = limits.network;
  spec.memory_bytes = limits.memory_bytes;
  spec.nano_cpus = static_cast<std::int64_t>(limits.cpus * 1e9);
  spec.pids_limit = limits.pids;
  spec.no_new_privileges = true;
  spec.ulimits = {{"nofile", limits.nofile, limits.nofile}, {"fsize", limits.fsize_bytes, limits.fsize_bytes}};
  if (runtime_has_own_kernel(limits.runtime)) {
    // Such a runtime may not apply the pids cgroup (runsc --ignore-cgroups on a hybrid-cgroup host), and
    // an unbounded fork bomb there eats host memory and makes the sandbox unkillable. Its kernel counts
    // RLIMIT_NPROC per uid inside the sandbox only, so the pids limit can be applied that way too. (Under
    // runc, RLIMIT_NPROC would count the uid's processes across the whole host: not set there.)
    spec.ulimits.push_back({"nproc", limits.pids, limits.pids});
  }
  spec.runtime = limits.runtime;
  spec.log_max_bytes = limits.stdout_bytes + limits.stderr_bytes + 64 * 1024;
  return spec;
}

void ContainerGrader::collect_exit(const std::string& id, Clock::time_point deadline, RunSignals& signals,
                                   GradeReport& report) {
  // When the watcher itself ended the run (deadline or output cap) its own signals decide the verdict,
  // so an engine that cannot kill or report the container (it answers an error) does not turn a
  // student's time-out into an infrastructure failure. An engine that does not answer at all still does.
  const bool stopped_by_watcher = signals.deadline_hit || signals.stdout_truncated || signals.stderr_truncated;
  try {
    const auto waited = engine_.wait(id, deadline);
    const auto phase = Clock::now();
    const auto state = engine_.inspect(id);
    report.times.inspect = since(phase);
    signals.deadline_hit = signals.deadline_hit || waited.deadline_hit;
    signals.oom_killed = state.oom_killed;
    signals.exit_code = waited.exit_code;
    report.exit_code = waited.exit_code;
  } catch (const docker::EngineError& error) {
    const bool engine_answered = dynamic_cast<const docker::EngineApiError*>(&error) != nullptr ||
                                 dynamic_cast<const docker::ContainerGone*>(&error) != nullptr;
    if (!stopped_by_watcher || !engine_answered) throw;
    spdlog::warn("container {}: no exit status after the watcher stopped it: {}", id, error.what());
  }
}

GradeReport ContainerGrader::grade(const GradeJob& job) {
  GradeReport report = prepare_and_run(job);
  report.html = render_html(report.outcome.result);
  return report;
}

GradeReport ContainerGrader::prepare_and_run(const GradeJob& job) {
  const auto limits = limits_for_messages(queue_.limits);
  auto refused = [&](Verdict verdict, std::string reason) {
    return GradeReport{.outcome = failure_outcome(verdict, limits, queue_.messages, std::move(reason))};
  };
  if (static_cast<std::int64_t>(job.student_response.size()) > queue_.limits.submission_bytes) {
    return refused(Verdict::SubmissionTooLarge, "submission of " + std::to_string(job.student_response.size()) +
                                                    " bytes is over the queue's limit");
  }
  const auto grader_path = grader_from_payload(job.grader_payload);
  if (!grader_path) return refused(Verdict::GraderNotFound, "grader_payload has no \"grader\" path");
  auto resolved = resolve_grader(queue_.grader_root, *grader_path);
  if (auto* error = std::get_if<GraderPathError>(&resolved)) return refused(Verdict::GraderNotFound, error->reason);
  return run_in_container(job, std::get<ResolvedGrader>(resolved));
}

GradeReport ContainerGrader::run_in_container(const GradeJob& job, const ResolvedGrader& grader) {
  GradeReport report;
  const auto started = Clock::now();
  GradeJob contained = job;
  contained.grader = grader.file_name;
  const double timeout_seconds = std::chrono::duration<double>(queue_.limits.timeout).count();
  try {
    auto phase = Clock::now();
    JobDirectory job_dir(queue_.work_dir, job_directory_name(job), contained, timeout_seconds);
    const auto spec = container_spec(queue_, contract_, grader.problem_dir, job_dir.path(), contained);
    report.times.prepare = since(phase);

    phase = Clock::now();
    docker::ContainerGuard container(engine_, engine_.create_container(spec));
    report.times.create = since(phase);

    phase = Clock::now();
    const auto deadline = Clock::now() + queue_.limits.timeout;
    engine_.start(container.id());
    report.times.start = since(phase);

    phase = Clock::now();
    bool deadline_hit = false;
    auto output = engine_.follow_output(
        container.id(), {.stdout_bytes = queue_.limits.stdout_bytes, .stderr_bytes = queue_.limits.stderr_bytes},
        deadline, &deadline_hit);
    RunSignals signals{.deadline_hit = deadline_hit,
                       .pids_exhausted = stderr_shows_process_limit(output.err.data),
                       .stdout_truncated = output.out.truncated,
                       .stderr_truncated = output.err.truncated,
                       .stdout_bytes = std::move(output.out.data),
                       .stderr_bytes = std::move(output.err.data)};
    collect_exit(container.id(), deadline, signals, report);
    report.times.run = since(phase) - report.times.inspect;
    report.staff_stderr = signals.stderr_bytes;
    report.outcome = decide(signals, limits_for_messages(queue_.limits), queue_.messages);

    phase = Clock::now();
    try {
      engine_.remove(container.id());
      container.release();
    } catch (const docker::EngineError& error) {
      // The verdict stands; the guard tries again, and the start-up sweep finds it by its labels.
      spdlog::warn("submission {}: could not remove container {}: {}", job.submission_id, container.id(),
                   error.what());
    }
    report.times.remove = since(phase);
  } catch (const docker::EngineError& error) {
    throw GradingUnavailable(std::string("Docker engine: ") + error.what());
  } catch (const JobDirectoryError& error) {
    throw GradingUnavailable(error.what());
  }
  report.times.total = since(started);
  return report;
}

}  // namespace xqw::grading
