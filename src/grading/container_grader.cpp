#include "grading/container_grader.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "grading/render.hpp"
#include "grading/sanitize.hpp"

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


LimitsForMessages limits_for_messages(const config::Limits& limits) {
  return LimitsForMessages{.memory_bytes = limits.memory_bytes,
                           .timeout = limits.timeout,
                           .stdout_bytes = limits.stdout_bytes,
                           .stderr_bytes = limits.stderr_bytes,
                           .pids = limits.pids,
                           .submission_bytes = limits.submission_bytes};
}

// Force-removes a used container; one failure (engine busy) is tried again at once. False when it is
// still there: the caller may try later, and what remains is the start-up sweep's to find by its labels.
// The verdict never depends on this.
bool remove_container(docker::Client& engine, const std::string& id) {
  if (id.empty()) return true;
  for (int attempt = 1; attempt <= 2; ++attempt) {
    try {
      engine.remove(id);
      return true;
    } catch (const docker::EngineError& error) {
      spdlog::warn("could not remove container {} (attempt {}): {}", id, attempt, error.what());
    }
  }
  return false;
}

// A removal the engine refused (stopping, restarting): tried again every few seconds for a while.
constexpr std::chrono::seconds kRemovalRetryInterval{2};
constexpr int kRemovalRetries = 60;

}  // namespace

GradeReport refusal_report(Outcome outcome) {
  GradeReport report{.outcome = std::move(outcome)};
  report.html = render_html(report.outcome.result);
  return report;
}

ImageContract configured_contract(const QueueGrading& queue) {
  return queue.contract == config::ContractKind::Upstream ? upstream_contract() : ImageContract{};
}

std::variant<ResolvedGrader, GradeReport> precheck(const QueueGrading& queue, const ImageContract& contract,
                                                   const GradeJob& job, std::size_t listed_files) {
  const auto limits = message_limits(queue, contract);
  auto refused = [&](Verdict verdict, std::string reason) {
    return refusal_report(failure_outcome(verdict, limits, queue.messages, std::move(reason)));
  };
  if (auto refusal = refuse_submission(job, queue.limits, contract)) {
    return refused(refusal->verdict, std::move(refusal->reason));
  }
  const auto grader_path = grader_from_payload(job.grader_payload);
  if (!grader_path) return refused(Verdict::GraderNotFound, "grader_payload has no \"grader\" path");
  auto resolved = resolve_grader(queue.grader_root, *grader_path);
  if (!resolved) return refused(Verdict::GraderNotFound, resolved.error().reason);

  const auto& caps = queue.files;
  const auto files = static_cast<std::int64_t>(std::max(listed_files, job.files.size()));
  if (files > caps.max_count) {
    return refusal_report(files_too_large(
        FileCap::Count, caps.max_count, files, "", queue.messages,
        fmt::format("{} uploaded files; files.max_count is {}", files, caps.max_count)));
  }
  std::int64_t total = 0;
  for (const auto& file : job.files) {
    const auto size = static_cast<std::int64_t>(file.bytes.size());
    if (size > caps.max_size_bytes) {
      return refusal_report(files_too_large(
          FileCap::Size, caps.max_size_bytes, files, file.name, queue.messages,
          fmt::format("uploaded file '{}' has {} bytes; files.max_size is {}", file.name, size, caps.max_size_bytes)));
    }
    total += size;
  }
  if (total > caps.max_total_bytes) {
    return refusal_report(files_too_large(
        FileCap::Total, caps.max_total_bytes, files, "", queue.messages,
        fmt::format("uploaded files total {} bytes; files.max_total is {}", total, caps.max_total_bytes)));
  }
  return std::move(*resolved);
}

QueueGrading queue_grading(const config::ManagerConfig& manager, const config::QueueConfig& queue,
                           const std::string& watcher_id) {
  return QueueGrading{.queue = queue.name,
                      .watcher_id = watcher_id,
                      .image = queue.image,
                      .limits = queue.limits,
                      .messages = queue.messages,
                      .grader_root = queue.grader_root,
                      .docker_host_grader_root = queue.docker_host_grader_root,
                      .work_dir = manager.work_dir,
                      .docker_host_work_dir = manager.docker_host_work_dir,
                      .precreate = queue.precreate,
                      .files = queue.files,
                      .contract = queue.contract,
                      .contract_implied = queue.contract_implied};
}

bool runtime_has_own_kernel(std::string_view runtime) {
  return runtime.starts_with("runsc") || runtime.starts_with("kata");
}

ImageContract image_contract(const docker::ImageInfo& image) {
  ImageContract contract;
  contract.grader_dir = label_or(image, kGraderDirLabel, contract.grader_dir);
  contract.job_dir = label_or(image, kJobDirLabel, contract.job_dir);
  contract.setuid_supervisor = label_or(image, kSupervisorLabel, "") == "setuid";
  contract.job_signal = label_or(image, kJobSignalLabel, "");
  return contract;
}

bool declares_native_contract(const docker::ImageInfo& image) {
  for (const auto label : {kGraderDirLabel, kJobDirLabel, kSupervisorLabel, kJobSignalLabel}) {
    if (image.labels.count(std::string(label))) return true;
  }
  return false;
}

ImageContract upstream_contract() {
  return ImageContract{.kind = config::ContractKind::Upstream,
                       .grader_dir = std::string(kUpstreamGraderDir),
                       .job_dir = "",
                       .setuid_supervisor = false,
                       .job_signal = "",
                       .framing = ResultFraming::LastLine};
}

ImageContract queue_contract(const QueueGrading& queue, const docker::ImageInfo& image) {
  const bool upstream = queue.contract == config::ContractKind::Upstream &&
                        !(queue.contract_implied && declares_native_contract(image));
  return upstream ? upstream_contract() : image_contract(image);
}

std::int64_t submission_limit(const config::Limits& limits, const ImageContract& contract) {
  if (contract.kind != config::ContractKind::Upstream) return limits.submission_bytes;
  return std::min(limits.submission_bytes, kMaxEnvSubmissionBytes);
}

LimitsForMessages message_limits(const QueueGrading& queue, const ImageContract& contract) {
  auto limits = limits_for_messages(queue.limits);
  limits.submission_bytes = submission_limit(queue.limits, contract);
  return limits;
}

std::optional<SubmissionRefusal> refuse_submission(const GradeJob& job, const config::Limits& limits,
                                                   const ImageContract& contract) {
  const auto size = static_cast<std::int64_t>(job.student_response.size());
  if (const auto limit = submission_limit(limits, contract); size > limit) {
    const bool env_bound = limit < limits.submission_bytes;
    return SubmissionRefusal{Verdict::SubmissionTooLarge,
                             "submission of " + std::to_string(size) +
                                 " bytes is over the queue's limit of " + std::to_string(limit) +
                                 (env_bound ? " (what fits in the " + std::string(kSubmissionEnv) +
                                                  " environment variable of the upstream contract)"
                                            : "")};
  }
  if (contract.kind != config::ContractKind::Upstream) return std::nullopt;
  // An environment variable is a C string, and the engine's API takes JSON text.
  if (job.student_response.find('\0') != std::string::npos) {
    return SubmissionRefusal{Verdict::GraderError, "the submission holds a NUL byte, which " +
                                                       std::string(kSubmissionEnv) + " cannot carry"};
  }
  if (first_invalid_utf8(job.student_response)) {
    return SubmissionRefusal{Verdict::GraderError, "the submission is not valid UTF-8, which " +
                                                       std::string(kSubmissionEnv) + " cannot carry"};
  }
  return std::nullopt;
}

std::string orphan_filter(const std::string& watcher_id) {
  return std::string(kWatcherLabel) + "=" + watcher_id;
}

fs::path engine_path(const fs::path& local, const fs::path& local_root, const fs::path& engine_root) {
  if (engine_root.empty()) return local;
  return engine_root / local.lexically_relative(local_root);
}

namespace {

// What every container gets whatever its contract: limits, hardening, labels, no capabilities, and a
// non-root user (the queue's, else nobody).
docker::ContainerSpec hardened_spec(const QueueGrading& queue, std::string_view submission_id) {
  const auto& limits = queue.limits;
  docker::ContainerSpec spec;
  spec.image = queue.image;
  spec.user = limits.user.empty() ? "65534:65534" : limits.user;
  spec.labels = {{std::string(kManagedLabel), "true"},
                 {std::string(kWatcherLabel), queue.watcher_id},
                 {std::string(kQueueLabel), queue.queue},
                 {std::string(kSubmissionLabel), std::string(submission_id)}};
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

docker::BindMount grader_mount(const QueueGrading& queue, const fs::path& source, const std::string& target) {
  return {.source = engine_path(source, queue.grader_root, queue.docker_host_grader_root).string(),
          .target = target,
          .read_only = true};
}

}  // namespace

docker::ContainerSpec container_spec(const QueueGrading& queue, const ImageContract& contract,
                                     const fs::path& grader_source, const fs::path& job_dir,
                                     std::string_view submission_id) {
  auto spec = hardened_spec(queue, submission_id);
  if (queue.limits.user.empty() && contract.setuid_supervisor) {
    spec.user = "0:0";
    spec.cap_add = {"SETUID", "SETGID"};  // the supervisor's only privileges: dropping to the student uid
  }
  spec.mounts = {
      grader_mount(queue, grader_source, contract.grader_dir),
      {.source = engine_path(job_dir, queue.work_dir, queue.docker_host_work_dir).string(),
       .target = contract.job_dir,
       .read_only = true},
  };
  return spec;
}

docker::ContainerSpec upstream_container_spec(const QueueGrading& queue, const ResolvedGrader& grader,
                                              const GradeJob& job) {
  auto spec = hardened_spec(queue, job.submission_id);
  const std::string grader_dir(kUpstreamGraderDir);
  spec.mounts = {grader_mount(queue, grader.problem_dir, grader_dir)};
  spec.cmd = {grader_dir + "/" + grader.file_name, std::to_string(job.seed)};
  spec.working_dir = std::string(kUpstreamWorkingDir);
  spec.env = {std::string(kSubmissionEnv) + "=" + job.student_response,
              std::string(kLanguageEnv) + "=" + job.lang,
              std::string(kHideOutputEnv) + "=" + (job.hide_output ? "1" : "0")};
  return spec;
}

GradeReport ContainerGrader::grade(const GradeJob& job) {
  GradeReport report = prepare_and_run(job);
  report.html = render_html(report.outcome.result);
  return report;
}

LimitsForMessages ContainerGrader::message_limits() const { return grading::message_limits(queue_, contract_); }

GradeReport ContainerGrader::prepare_and_run(const GradeJob& job) {
  auto checked = precheck(queue_, contract_, job, job.files.size());
  if (auto* refused = std::get_if<GradeReport>(&checked)) return std::move(*refused);
  return run_in_container(job, std::get<ResolvedGrader>(checked));
}

// A created container and the job directory mounted in it.
struct ContainerGrader::Container {
  std::string id;
  std::unique_ptr<JobDirectory> job_dir;
  bool waiting = false;  // started before its job, waiting for the job signal
  Clock::time_point made = Clock::now();
};

// Works off the critical path with its own engine connection: creates the next container before a
// submission needs it, and removes used containers and job directories after their results are out.
class ContainerGrader::Housekeeper {
 public:
  Housekeeper(const ContainerGrader& owner, const std::string& socket)
      : owner_(owner), engine_(socket), thread_([this] { loop(); }) {}

  ~Housekeeper() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
    if (prepared_) remove(std::move(*prepared_), kRemovalRetries);  // last chance: nobody retries now
  }

  // The prepared container, once any preparation in progress has finished (nullopt if it failed); the
  // next one is prepared at once, so it is ready by the time this one's submission is done.
  std::optional<Container> take() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return !preparing_ && !want_prepare_; });
    auto taken = std::exchange(prepared_, std::nullopt);
    want_prepare_ = true;
    changed_.notify_all();
    return taken;
  }

  void prepare_next() {
    {
      std::lock_guard lock(mutex_);
      want_prepare_ = true;
    }
    changed_.notify_all();
  }

  void dispose(Container used) {
    {
      std::lock_guard lock(mutex_);
      disposals_.push_back(std::move(used));
    }
    changed_.notify_all();
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    const auto work = [this] { return stopping_ || want_prepare_ || !disposals_.empty(); };
    while (true) {
      if (const auto wake_at = next_timer()) {
        changed_.wait_until(lock, *wake_at, work);
      } else {
        changed_.wait(lock, work);
      }
      // A waiting container ends itself after wait_for_job: replace it before, so none is found ended.
      if (prepared_ && prepared_->waiting && Clock::now() >= replace_at(*prepared_)) {
        disposals_.push_back(std::move(*std::exchange(prepared_, std::nullopt)));
        want_prepare_ = true;
      }
      if (!retries_.empty() && Clock::now() >= retries_.front().next && !stopping_) {
        auto retry = std::move(retries_.front());
        retries_.pop_front();
        lock.unlock();
        remove(std::move(retry.container), retry.attempts + 1);
        lock.lock();
        continue;
      }
      if (want_prepare_ && (stopping_ || prepared_)) {  // nothing to do: a take() may be waiting on it
        want_prepare_ = false;
        changed_.notify_all();
      }
      if (want_prepare_) {  // first: the next submission may be waiting for it
        want_prepare_ = false;
        preparing_ = true;
        lock.unlock();
        auto created = create();
        lock.lock();
        prepared_ = std::move(created);
        preparing_ = false;
        changed_.notify_all();
        continue;
      }
      if (!disposals_.empty()) {
        auto used = std::move(disposals_.front());
        disposals_.pop_front();
        lock.unlock();
        remove(std::move(used));
        lock.lock();
        continue;
      }
      if (stopping_) break;
    }
    while (!disposals_.empty()) {  // nothing is left behind at shutdown
      remove(std::move(disposals_.front()), kRemovalRetries);
      disposals_.pop_front();
    }
    for (auto& retry : retries_) remove(std::move(retry.container), kRemovalRetries);
    retries_.clear();
  }

  Clock::time_point replace_at(const Container& waiting) const {
    return waiting.made + owner_.queue_.wait_for_job * 9 / 10;
  }

  // The next time the loop has something to do without being asked (under the lock).
  std::optional<Clock::time_point> next_timer() const {
    std::optional<Clock::time_point> at;
    if (prepared_ && prepared_->waiting) at = replace_at(*prepared_);
    if (!retries_.empty() && (!at || retries_.front().next < *at)) at = retries_.front().next;
    return at;
  }

  std::optional<Container> create() {
    try {
      return owner_.prestart() ? owner_.waiting_container(engine_) : owner_.new_container(engine_, "precreated");
    } catch (const std::exception& error) {
      spdlog::warn("queue {}: could not pre-create a container: {}", owner_.queue_.queue, error.what());
      return std::nullopt;
    }
  }

  // Removes a used container and its job directory; a removal the engine refuses is queued to be tried
  // again later (`attempts` so far), until kRemovalRetries.
  void remove(Container used, int attempts = 0) {
    const bool removed = remove_container(engine_, used.id);
    if (removed || attempts >= kRemovalRetries) {
      if (!removed) {
        spdlog::error("queue {}: container {} could not be removed; the next start-up sweep removes it",
                      owner_.queue_.queue, used.id);
      }
      used.job_dir.reset();
      return;
    }
    std::lock_guard lock(mutex_);
    retries_.push_back({std::move(used), attempts, Clock::now() + kRemovalRetryInterval});
  }

  struct Retry {
    Container container;
    int attempts;
    Clock::time_point next;
  };

  const ContainerGrader& owner_;
  docker::Client engine_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool stopping_ = false;
  bool want_prepare_ = false;
  bool preparing_ = false;
  std::optional<Container> prepared_;
  std::deque<Container> disposals_;
  std::deque<Retry> retries_;  // in order of their next attempt (all wait the same interval)
  std::thread thread_;
};

ContainerGrader::ContainerGrader(docker::Client& engine, QueueGrading queue, ImageContract contract)
    : engine_(engine), queue_(std::move(queue)), contract_(std::move(contract)) {
  // The upstream contract's submission travels in the environment, fixed when the container is created:
  // none can be prepared before its submission.
  if (contract_.kind == config::ContractKind::Upstream) queue_.precreate = config::Precreate::Off;
  // Only an image whose supervisor confines grading to the problem directory can take a container
  // created before the problem is known (its mount holds the whole grader_root).
  if (queue_.precreate != config::Precreate::Off && whole_root_mounted()) {
    housekeeper_ = std::make_unique<Housekeeper>(*this, engine_.socket_path());
    housekeeper_->prepare_next();
  }
}

ContainerGrader::~ContainerGrader() = default;

config::Precreate ContainerGrader::precreate_mode() const {
  if (!housekeeper_) return config::Precreate::Off;
  return prestart() ? config::Precreate::Started : config::Precreate::Created;
}

ContainerGrader::Container ContainerGrader::new_container(docker::Client& engine, std::string_view submission_id,
                                                          std::vector<std::string> env) const {
  Container container;
  container.job_dir = std::make_unique<JobDirectory>(queue_.work_dir,
                                                     job_directory_name(queue_.watcher_id, std::string(submission_id)));
  std::error_code ignored;
  const fs::path root = fs::canonical(queue_.grader_root, ignored);
  auto spec = container_spec(queue_, contract_, root.empty() ? queue_.grader_root : root, container.job_dir->path(),
                             submission_id);
  spec.env = std::move(env);
  container.id = engine.create_container(spec);
  return container;
}

ContainerGrader::Container ContainerGrader::waiting_container(docker::Client& engine) const {
  auto container = new_container(engine, "waiting",
                                 {std::string(kWaitForJobEnv) + "=" + std::to_string(queue_.wait_for_job.count())});
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

bool ContainerGrader::hand_over(Container& container, const GradeJob& job, const std::string& mounted_grader,
                                double timeout_seconds, GradeReport& report) {
  auto phase = Clock::now();
  container.job_dir->write(job, timeout_seconds, mounted_grader);
  report.times.prepare = since(phase);
  if (!container.waiting) return true;
  phase = Clock::now();
  bool delivered = false;
  try {
    delivered = engine_.send_signal(container.id, contract_.job_signal);
  } catch (const docker::ContainerGone&) {
  }
  report.times.start = since(phase);
  if (!delivered) {
    spdlog::warn("queue {}: the container waiting for submission {} had ended; grading it in a new one",
                 queue_.queue, job.submission_id);
  }
  return delivered;
}

GradeReport ContainerGrader::run_in_container(const GradeJob& job, const ResolvedGrader& grader) {
  GradeReport report;
  const auto started = Clock::now();
  std::error_code ignored;
  const fs::path root = fs::canonical(queue_.grader_root, ignored);
  // With the whole root mounted the image finds the grader by its path inside it.
  const std::string mounted_grader = whole_root_mounted()
                                         ? (grader.problem_dir / grader.file_name).lexically_relative(root).string()
                                         : grader.file_name;
  const double timeout_seconds = std::chrono::duration<double>(queue_.limits.timeout).count();
  std::optional<Container> container;
  try {
    if (housekeeper_) container = housekeeper_->take();
    if (container && !hand_over(*container, job, mounted_grader, timeout_seconds, report)) {
      housekeeper_->dispose(std::move(*std::exchange(container, std::nullopt)));
    }
    auto phase = Clock::now();
    if (container) {
      // prepared by the housekeeper: created, or started and now sent its job
    } else if (contract_.kind == config::ContractKind::Upstream) {
      container.emplace();  // no job directory: the job is in the container's environment and arguments
      container->id = engine_.create_container(upstream_container_spec(queue_, grader, job));
      report.times.create = since(phase);
    } else if (whole_root_mounted()) {
      container = new_container(engine_, job.submission_id);
      container->job_dir->write(job, timeout_seconds, mounted_grader);
      report.times.create = since(phase);
    } else {
      container.emplace();
      container->job_dir = std::make_unique<JobDirectory>(
          queue_.work_dir, job_directory_name(queue_.watcher_id, job.submission_id), job, timeout_seconds,
          mounted_grader);
      report.times.prepare = since(phase);
      phase = Clock::now();
      container->id = engine_.create_container(
          container_spec(queue_, contract_, grader.problem_dir, container->job_dir->path(), job.submission_id));
      report.times.create = since(phase);
    }
    report.container_id = container->id;
    run_container(*container, report);
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

void ContainerGrader::run_container(const Container& container, GradeReport& report) {
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
  RunSignals signals{.deadline_hit = deadline_hit,
                     .pids_exhausted = stderr_shows_process_limit(output.err.data),
                     .stdout_truncated = output.out.truncated,
                     .stderr_truncated = output.err.truncated,
                     .stdout_bytes = std::move(output.out.data),
                     .stderr_bytes = std::move(output.err.data)};
  collect_exit(container.id, deadline, signals, report);
  report.times.run = since(phase) - report.times.inspect;
  if (container.waiting && report.exit_code == kNoJobArrivedExit && signals.stdout_bytes.empty()) {
    throw GradingUnavailable("container " + container.id + " stopped waiting before its job arrived");
  }
  report.staff_stderr = signals.stderr_bytes;
  if (contract_.framing == ResultFraming::LastLine) {
    report.staff_stdout = std::string(split_last_line(signals.stdout_bytes).prints);
  }
  report.outcome =
      decide(signals, message_limits(), queue_.messages, ParseLimits{.framing = contract_.framing});
}

void ContainerGrader::collect_exit(const std::string& id, Clock::time_point deadline, RunSignals& signals,
                                   GradeReport& report) {
  // When the watcher itself ended the run (deadline or output cap) its own signals decide the verdict,
  // so an engine that cannot kill or report the container (it answers an error) does not turn a
  // student's time-out into an infrastructure failure. An engine that does not answer at all still does.
  const bool stopped_by_watcher = signals.deadline_hit || signals.stdout_truncated || signals.stderr_truncated;
  try {
    const auto waited = engine_.wait(id, deadline);
    const bool killed_by_us = stopped_by_watcher || waited.deadline_hit;
    // Nothing in a grading container sends its PID 1 SIGTERM: the engine stopping it (daemon shutdown,
    // an operator's `docker stop`) did. Not the student's doing: grade again.
    constexpr int kStoppedBySigterm = 128 + 15;
    if (!killed_by_us && waited.exit_code == kStoppedBySigterm) {
      throw docker::EngineUnreachable("container " + id + " was stopped from outside (SIGTERM) while grading");
    }
    const auto phase = Clock::now();
    const auto state = killed_by_us ? engine_.inspect(id) : engine_.inspect_exited(id, waited.exit_code);
    report.times.inspect = since(phase);
    // PID 1 cannot be SIGKILLed from inside its own PID namespace: a SIGKILL exit we did not cause is the
    // kernel's OOM killer even when the engine has not (yet) recorded it.
    constexpr int kKilledBySigkill = 128 + 9;
    signals.deadline_hit = signals.deadline_hit || waited.deadline_hit;
    signals.oom_killed = state.oom_killed || (!killed_by_us && waited.exit_code == kKilledBySigkill);
    signals.exit_code = waited.exit_code;
    report.exit_code = waited.exit_code;
  } catch (const docker::EngineError& error) {
    const bool engine_answered = dynamic_cast<const docker::EngineApiError*>(&error) != nullptr ||
                                 dynamic_cast<const docker::ContainerGone*>(&error) != nullptr;
    if (!stopped_by_watcher || !engine_answered) throw;
    spdlog::warn("container {}: no exit status after the watcher stopped it: {}", id, error.what());
  }
}

// Removes the container and its job directory: off the critical path when a housekeeper runs, right
// here otherwise.
void ContainerGrader::finish(std::optional<Container> container) {
  if (housekeeper_) {
    if (container) housekeeper_->dispose(std::move(*container));
    return;
  }
  if (container) remove_container(engine_, container->id);
}

}  // namespace xqw::grading
