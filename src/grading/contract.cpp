#include "grading/contract.hpp"

#include <nlohmann/json.hpp>

namespace xqw::grading {
namespace fs = std::filesystem;

namespace {

std::string label_or(const docker::ImageInfo& image, std::string_view key, std::string fallback) {
  auto it = image.labels.find(std::string(key));
  return it == image.labels.end() || it->second.empty() ? fallback : it->second;
}

}  // namespace

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

ImageReport image_report(std::string_view stderr_bytes) {
  ImageReport report;
  std::size_t start = 0;
  while (start < stderr_bytes.size()) {
    const auto end = std::min(stderr_bytes.find('\n', start), stderr_bytes.size());
    const auto line = stderr_bytes.substr(start, end - start);
    start = end + 1;
    if (!line.starts_with(kImageReportPrefix)) continue;
    const auto parsed = nlohmann::json::parse(line.substr(kImageReportPrefix.size()), nullptr, false);
    if (!parsed.is_object()) continue;
    report = {};
    if (auto it = parsed.find("cpu_seconds"); it != parsed.end() && it->is_number()) {
      report.cpu_seconds = it->get<double>();
    }
    if (auto it = parsed.find("max_rss_bytes"); it != parsed.end() && it->is_number_integer()) {
      report.max_rss_bytes = it->get<std::int64_t>();
    }
    if (auto it = parsed.find("refused_forks"); it != parsed.end() && it->is_number_integer()) {
      report.refused_forks = it->get<std::int64_t>();
    }
  }
  return report;
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

ImageContract configured_contract(const QueueGrading& queue) {
  return queue.contract == config::ContractKind::Upstream ? upstream_contract() : ImageContract{};
}

std::string orphan_filter(const std::string& watcher_id) {
  return std::string(kWatcherLabel) + "=" + watcher_id;
}

std::vector<std::string> earlier_run_containers(const std::vector<docker::ContainerSummary>& containers,
                                                std::string_view run_id) {
  std::vector<std::string> earlier;
  for (const auto& container : containers) {
    const auto run = container.labels.find(std::string(kRunLabel));
    if (run == container.labels.end() || run->second != run_id) earlier.push_back(container.id);
  }
  return earlier;
}

bool runtime_has_own_kernel(std::string_view runtime) {
  return runtime.starts_with("runsc") || runtime.starts_with("kata");
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
  spec.user = limits.user.empty() ? std::string(kDefaultUser) : limits.user;
  spec.labels = {{std::string(kManagedLabel), "true"},
                 {std::string(kWatcherLabel), queue.watcher_id},
                 {std::string(kQueueLabel), queue.queue},
                 {std::string(kSubmissionLabel), std::string(submission_id)}};
  if (!queue.run_id.empty()) spec.labels[std::string(kRunLabel)] = queue.run_id;
  spec.read_only_rootfs = true;
  spec.tmpfs = {{"/tmp", limits.tmpfs_bytes}};
  spec.network = limits.network;
  spec.memory_bytes = limits.memory_bytes;
  spec.nano_cpus = static_cast<std::int64_t>(limits.cpus * 1e9);
  spec.pids_limit = limits.pids;
  spec.no_new_privileges = true;
  spec.ulimits = {{"nofile", limits.nofile, limits.nofile},
                  {"fsize", limits.fsize_bytes, limits.fsize_bytes}};
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
    spec.user = std::string(kSupervisorUser);
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

}  // namespace xqw::grading
