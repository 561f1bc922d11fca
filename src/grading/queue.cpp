#include "grading/queue.hpp"

namespace xqw::grading {

QueueGrading queue_grading(const config::ManagerConfig& manager, const config::QueueConfig& queue,
                           const std::string& watcher_id, const std::string& run_id) {
  return QueueGrading{.queue = queue.name,
                      .watcher_id = watcher_id,
                      .run_id = run_id,
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

}  // namespace xqw::grading
