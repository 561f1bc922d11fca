// grading/contract: the container contract in one place — labels, environment, users, capabilities,
// mount points, exit codes, what stdout and stderr carry — and the container specs built from it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "docker/docker.hpp"
#include "grading/job.hpp"
#include "grading/queue.hpp"
#include "grading/result.hpp"

namespace xqw::grading {

// ---- the native contract: what an image built for this project declares through its labels ----
// The grader (a problem directory, or the whole grader_root for a setuid supervisor) is mounted read-only
// at grader-dir; the job directory (job.json, `submission`, files/) read-only at job-dir; the result is
// the whole of stdout (result.hpp); stderr is for staff, with at most one image report line.
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
// A container started before its job is told how long to wait for it (seconds, QueueGrading::wait_for_job).
inline constexpr std::string_view kWaitForJobEnv = "XQW_WAIT_FOR_JOB";
// The image's exit status when no job arrived in that time.
inline constexpr int kNoJobArrivedExit = 3;
// Users: the queue's limits.user, else nobody; a setuid supervisor starts as root with only these.
inline constexpr std::string_view kDefaultUser = "65534:65534";
inline constexpr std::string_view kSupervisorUser = "0:0";
ImageContract image_contract(const docker::ImageInfo& image);
// True when the image carries any of the labels above: it was built for this project (e.g. FROM the
// Python grader image).
bool declares_native_contract(const docker::ImageInfo& image);

// What the image says about its run on stderr, on one line "xqw-usage: {json}": CPU seconds of every
// process, the largest resident set, and how many forks the container's pids cgroup refused (its
// pids.events "max" count). Absent fields are unknown; the last such line counts. Only ever used to
// explain a failure or inform staff: it cannot turn a failure into a pass.
inline constexpr std::string_view kImageReportPrefix = "xqw-usage: ";
struct ImageReport {
  std::optional<double> cpu_seconds;
  std::optional<std::int64_t> max_rss_bytes;
  std::optional<std::int64_t> refused_forks;
};
ImageReport image_report(std::string_view stderr_bytes);

// ---- the upstream contract: the Python xqueue-watcher's ContainerGrader ("grader container protocol") ----
// The problem directory read-only at /graders, the image's own entrypoint run with
// [/graders/<grader file>, <seed>] in /grader, the submission in SUBMISSION_CODE, GRADER_LANGUAGE and
// HIDE_OUTPUT beside it, and the result on the last non-empty line of stdout. Nothing else is mounted: the
// whole job is in the environment and the arguments, so a job directory would hold nothing the image reads.
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

// ---- which contract a queue's containers follow ----
// The upstream one when the queue asks for it, except that a contract only implied by an upstream conf.d
// yields to an image declaring this project's labels; otherwise what the image's labels say (pure).
ImageContract queue_contract(const QueueGrading& queue, const docker::ImageInfo& image);
// The contract to check a job against before the image has been inspected: upstream when the queue asks
// for it (an implied one may still yield to the image's labels later), else native.
ImageContract configured_contract(const QueueGrading& queue);

// ---- labels on every container, so a watcher finds (and removes) its own orphans ----
inline constexpr std::string_view kManagedLabel = "org.openedx.xqueue-watcher.managed";
inline constexpr std::string_view kWatcherLabel = "org.openedx.xqueue-watcher.watcher";
inline constexpr std::string_view kQueueLabel = "org.openedx.xqueue-watcher.queue";
inline constexpr std::string_view kSubmissionLabel = "org.openedx.xqueue-watcher.submission";
inline constexpr std::string_view kRunLabel = "org.openedx.xqueue-watcher.run";
std::string orphan_filter(const std::string& watcher_id);
// The ids among a watcher's containers that an earlier run of it created (pure): any whose run label is
// not `run_id`. The start-up sweep cannot see a container whose creation the killed run had asked for
// and the engine finished later, so these are looked for again while the watcher runs.
std::vector<std::string> earlier_run_containers(const std::vector<docker::ContainerSummary>& containers,
                                                std::string_view run_id);

// ---- the specs ----
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

}  // namespace xqw::grading
