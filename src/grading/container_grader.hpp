// grading: runs one GradeJob in a fresh container per the queue's limits and the image's contract,
// and turns what the engine saw into a verdict and the student's HTML (see DESIGN.md section 6).
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <memory>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "docker/docker.hpp"
#include "grading/job.hpp"
#include "grading/verdict.hpp"

namespace xqw::grading {

// How the containers of one queue are built and read. Native: what an image declares through its labels
// (images without them get the plain contract). Upstream: the Python watcher's ContainerGrader contract,
// all of it in upstream_contract().
struct ImageContract {
  config::ContractKind kind = config::ContractKind::Native;
  std::string grader_dir = "/grader";
  std::string job_dir = "/job";    // empty: no job directory (the upstream contract has none)
  bool setuid_supervisor = false;  // PID 1 needs root with only SETUID/SETGID to drop to the student uid
  std::string job_signal;          // non-empty: can be started before its job and sent it with this signal
  ResultFraming framing = ResultFraming::WholeStdout;
};
inline constexpr std::string_view kGraderDirLabel = "org.openedx.xqueue-watcher.grader-dir";
inline constexpr std::string_view kJobDirLabel = "org.openedx.xqueue-watcher.job-dir";
inline constexpr std::string_view kSupervisorLabel = "org.openedx.xqueue-watcher.supervisor";
inline constexpr std::string_view kJobSignalLabel = "org.openedx.xqueue-watcher.job-signal";
// A container started before its job is told how long to wait for it (seconds); the watcher replaces a
// waiting container after 90 % of that, so the wait only ends on its own when the watcher is gone.
inline constexpr std::string_view kWaitForJobEnv = "XQW_WAIT_FOR_JOB";
inline constexpr std::chrono::seconds kWaitForJob{600};
// The image's exit status when no job arrived in that time.
inline constexpr int kNoJobArrivedExit = 3;
ImageContract image_contract(const docker::ImageInfo& image);
// True when the image carries any of the labels above: it was built for this project (e.g. FROM the
// Python grader image).
bool declares_native_contract(const docker::ImageInfo& image);

// The Python xqueue-watcher's ContainerGrader contract (its "grader container protocol"): the problem
// directory read-only at /graders, the image's own entrypoint run with [/graders/<grader file>, <seed>]
// in /grader, the submission in SUBMISSION_CODE, GRADER_LANGUAGE and HIDE_OUTPUT beside it, and the
// result on the last non-empty line of stdout. Nothing else is mounted: the whole job is in the
// environment and the arguments, so a job directory would hold nothing the image reads.
inline constexpr std::string_view kUpstreamGraderDir = "/graders";
inline constexpr std::string_view kUpstreamWorkingDir = "/grader";
inline constexpr std::string_view kSubmissionEnv = "SUBMISSION_CODE";
inline constexpr std::string_view kLanguageEnv = "GRADER_LANGUAGE";
inline constexpr std::string_view kHideOutputEnv = "HIDE_OUTPUT";
// Linux refuses an execve whose single "NAME=value" string, NUL included, is longer than MAX_ARG_STRLEN
// (32 pages); the rest of the environment and the arguments are small beside ARG_MAX (a quarter of the
// 8 MiB default stack).
inline constexpr std::int64_t kMaxArgStrlen = 131072;
inline constexpr std::int64_t kMaxEnvSubmissionBytes =
    kMaxArgStrlen - static_cast<std::int64_t>(kSubmissionEnv.size()) - 2;  // "=" and the NUL
ImageContract upstream_contract();
// Labels on every container, so a watcher finds (and removes) its own orphans.
inline constexpr std::string_view kManagedLabel = "org.openedx.xqueue-watcher.managed";
inline constexpr std::string_view kWatcherLabel = "org.openedx.xqueue-watcher.watcher";
inline constexpr std::string_view kQueueLabel = "org.openedx.xqueue-watcher.queue";
inline constexpr std::string_view kSubmissionLabel = "org.openedx.xqueue-watcher.submission";
std::string orphan_filter(const std::string& watcher_id);

// Everything grading needs to know about one queue.
struct QueueGrading {
  std::string queue;
  std::string watcher_id;  // this watcher's instance (label value)
  std::string image;
  config::Limits limits;
  std::map<std::string, std::string> messages;
  std::filesystem::path grader_root;
  std::filesystem::path docker_host_grader_root;  // empty: same as grader_root
  std::filesystem::path work_dir;
  std::filesystem::path docker_host_work_dir;     // empty: same as work_dir
  config::Precreate precreate = config::Precreate::Off;  // images with a supervisor only
  std::chrono::seconds wait_for_job = kWaitForJob;        // how long a container started ahead waits
  config::FilesConfig files;                              // caps on uploaded files (the numbers only matter here)
  config::ContractKind contract = config::ContractKind::Native;
  bool contract_implied = false;  // by an upstream conf.d's KWARGS.image (config::QueueConfig)
};

// A configured queue as grading sees it (pre-create as configured).
QueueGrading queue_grading(const config::ManagerConfig& manager, const config::QueueConfig& queue,
                           const std::string& watcher_id);

// The contract the queue's containers follow (pure): the upstream one when the queue asks for it, except
// that a contract only implied by an upstream conf.d yields to an image declaring this project's labels;
// otherwise what the image's labels say.
ImageContract queue_contract(const QueueGrading& queue, const docker::ImageInfo& image);

// The largest submission the queue grades: limits.submission, and under the upstream contract no more
// than fits in SUBMISSION_CODE.
std::int64_t submission_limit(const config::Limits& limits, const ImageContract& contract);
// The limits a student message may name: the queue's, with the submission limit this contract applies.
LimitsForMessages message_limits(const QueueGrading& queue, const ImageContract& contract);

// Why a submission cannot be passed to the container at all (pure): too large (the effective limit), or
// for the upstream contract bytes an environment variable cannot carry (NUL, invalid UTF-8).
struct SubmissionRefusal {
  Verdict verdict;
  std::string reason;  // staff-facing
};
std::optional<SubmissionRefusal> refuse_submission(const GradeJob& job, const config::Limits& limits,
                                                   const ImageContract& contract);

// True for runtimes that give each container its own kernel (gVisor's runsc, Kata), where RLIMIT_NPROC
// counts processes per sandbox rather than per host.
bool runtime_has_own_kernel(std::string_view runtime);

// The container for one job (pure): limits, read-only mounts at the image's paths, labels.
// `grader_source` is mounted at the image's grader directory: the problem's own directory, or for an
// image whose supervisor confines grading to the problem directory, the whole grader_root.
docker::ContainerSpec container_spec(const QueueGrading& queue, const ImageContract& contract,
                                     const std::filesystem::path& grader_source,
                                     const std::filesystem::path& job_dir, std::string_view submission_id);
// The container for one job under the upstream contract (pure): the same limits, hardening and labels,
// the problem directory read-only at /graders, Cmd [/graders/<file>, <seed>] after the image's own
// entrypoint, working directory /grader, the job in the environment; our size-capped tmpfs at /tmp
// stands in for the image's VOLUME /tmp (the engine then makes no anonymous volume there).
docker::ContainerSpec upstream_container_spec(const QueueGrading& queue, const ResolvedGrader& grader,
                                              const GradeJob& job);

// A path on this host as the engine's host sees it (the watcher may itself run in a container).
std::filesystem::path engine_path(const std::filesystem::path& local, const std::filesystem::path& local_root,
                                  const std::filesystem::path& engine_root);

struct PhaseTimes {
  std::chrono::microseconds prepare{0}, create{0}, start{0}, run{0}, inspect{0}, remove{0}, total{0};
};

struct GradeReport {
  Outcome outcome;      // verdict, score, student-facing result
  std::string html;     // the rendered msg to post
  std::string staff_stderr;
  std::string staff_stdout;  // what an upstream-contract grader printed before its result line
  PhaseTimes times;
  int exit_code = 0;
  std::string container_id;  // the container that ran it (for logs: one container per submission)
};

// The engine, the image or the job directory failed: not the student's fault, never posted as a zero.
class GradingUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The refusals decided before anything is fetched or run, in this order: a response the contract cannot
// take (refuse_submission: over limits.submission, or what an environment variable carries under the
// upstream contract); no grader, or one outside grader_root (GraderNotFound); more
// files than files.max_count (FilesTooLarge); and for the files already attached, one over files.max_size
// or all together over files.max_total (FilesTooLarge). `listed_files` is how many files the submission
// lists (the watcher asks before fetching any, when job.files is still empty). Looks the grader up under
// grader_root and changes nothing. Returns the grader to run, or the refusal's report (html rendered).
std::variant<ResolvedGrader, GradeReport> precheck(const QueueGrading& queue, const ImageContract& contract,
                                                   const GradeJob& job, std::size_t listed_files);
// The contract to check a job against before the image has been inspected: upstream when the queue asks
// for it (an implied one may still yield to the image's labels later), else native.
ImageContract configured_contract(const QueueGrading& queue);
// The report for a refusal decided without a container (html rendered), e.g. a file that could not be fetched.
GradeReport refusal_report(Outcome outcome);

class ContainerGrader {
 public:
  ContainerGrader(docker::Client& engine, QueueGrading queue, ImageContract contract);
  ~ContainerGrader();
  ContainerGrader(const ContainerGrader&) = delete;
  ContainerGrader& operator=(const ContainerGrader&) = delete;
  // Throws GradingUnavailable on infrastructure failure; every student-caused end is a report.
  GradeReport grade(const GradeJob& job);
  const QueueGrading& queue() const { return queue_; }
  const ImageContract& contract() const { return contract_; }
  // What is prepared ahead for this queue: `precreate` as the image allows it.
  config::Precreate precreate_mode() const;

 private:
  struct Container;
  class Housekeeper;
  GradeReport prepare_and_run(const GradeJob& job);
  GradeReport run_in_container(const GradeJob& job, const ResolvedGrader& grader);
  Container new_container(docker::Client& engine, std::string_view submission_id,
                          std::vector<std::string> env = {}) const;
  // A container started before its job, waiting for it (pre-start).
  Container waiting_container(docker::Client& engine) const;
  // The job written into a container the housekeeper prepared; false when a waiting one has ended.
  bool hand_over(Container& container, const GradeJob& job, const std::string& mounted_grader, double timeout_seconds,
                 GradeReport& report);
  void run_container(const Container& container, GradeReport& report);
  // Exit code and engine state after the output ended; fills `signals` and the report's exit code.
  void collect_exit(const std::string& id, std::chrono::steady_clock::time_point deadline, RunSignals& signals,
                    GradeReport& report);
  void finish(std::optional<Container> container);
  bool whole_root_mounted() const { return contract_.setuid_supervisor; }
  LimitsForMessages message_limits() const;
  bool prestart() const {
    return queue_.precreate == config::Precreate::Started && !contract_.job_signal.empty();
  }
  docker::Client& engine_;
  QueueGrading queue_;
  ImageContract contract_;
  std::unique_ptr<Housekeeper> housekeeper_;  // pre-creates the next container, removes used ones
};

}  // namespace xqw::grading
