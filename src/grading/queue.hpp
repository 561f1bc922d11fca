// grading/queue: everything grading needs to know about one configured queue (image, limits, messages,
// where graders and job directories live), taken from the configuration once.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>

#include "config/config.hpp"

namespace xqw::grading {

// A container started before its job is told how long to wait for it; the pool replaces a waiting
// container after 90 % of that, so the wait only ends on its own when the watcher is gone.
inline constexpr std::chrono::seconds kWaitForJob{600};

struct QueueGrading {
  std::string queue;
  std::string watcher_id;  // this watcher's instance (label value), the same across restarts
  std::string run_id;      // this process of it (label value); empty: no run label (the grade command)
  std::string image;
  config::Limits limits;
  std::map<std::string, std::string> messages;
  std::filesystem::path grader_root;
  std::filesystem::path docker_host_grader_root;  // empty: same as grader_root
  std::filesystem::path work_dir;
  std::filesystem::path docker_host_work_dir;            // empty: same as work_dir
  config::Precreate precreate = config::Precreate::Off;  // images with a supervisor only
  std::chrono::seconds wait_for_job = kWaitForJob;       // how long a container started ahead waits
  config::FilesConfig files;  // caps on uploaded files (the numbers only matter here)
  config::ContractKind contract = config::ContractKind::Native;
  bool contract_implied = false;  // by an upstream conf.d's KWARGS.image (config::QueueConfig)
};

// A configured queue as grading sees it (pre-create as configured).
QueueGrading queue_grading(const config::ManagerConfig& manager, const config::QueueConfig& queue,
                           const std::string& watcher_id, const std::string& run_id = {});

}  // namespace xqw::grading
