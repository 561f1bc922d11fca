// grading: runs one GradeJob in a fresh container per the queue's limits and the image's contract,
// collects what the run did and lets decide() say what it means (see DESIGN.md section 6).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "docker/docker.hpp"
#include "grading/container_pool.hpp"
#include "grading/contract.hpp"
#include "grading/job.hpp"
#include "grading/precheck.hpp"
#include "grading/queue.hpp"
#include "grading/report.hpp"
#include "grading/verdict.hpp"

namespace xqw::grading {

class ContainerGrader {
 public:
  // `on_ready` hears how many containers prepared ahead (see ContainerPool) came or went.
  ContainerGrader(docker::Client& engine, QueueGrading queue, ImageContract contract,
                  ReadyObserver on_ready = {});
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
  GradeReport run_in_container(const GradeJob& job, const ResolvedGrader& grader);
  // A container for the job, from the pool or made now; fills the report's preparation times.
  GradingContainer container_for(const GradeJob& job, const ResolvedGrader& grader, GradeReport& report);
  GradingContainer new_container(docker::Client& engine, std::string_view submission_id,
                                 std::vector<std::string> env = {}) const;
  // A container started before its job, waiting for it (pre-start).
  GradingContainer waiting_container(docker::Client& engine) const;
  // The job written into a container the pool prepared; false when a waiting one has ended.
  bool hand_over(GradingContainer& container, const GradeJob& job, const ResolvedGrader& grader,
                 GradeReport& report);
  JobDelivery deliver(const GradingContainer& container);
  // Runs the container to its end and records what happened; nothing here decides what it means.
  RunFacts run_container(const GradingContainer& container, GradeReport& report);
  // Exit code and the engine's OOM flag once the output has ended.
  void collect_exit(const std::string& id, std::chrono::steady_clock::time_point deadline, RunFacts& facts,
                    GradeReport& report);
  void finish(std::optional<GradingContainer> container);
  std::string mounted_grader(const ResolvedGrader& grader) const;
  double timeout_seconds() const;
  bool whole_root_mounted() const { return contract_.setuid_supervisor; }
  bool prestart() const {
    return queue_.precreate == config::Precreate::Started && !contract_.job_signal.empty();
  }

  docker::Client& engine_;
  QueueGrading queue_;
  ImageContract contract_;
  std::unique_ptr<ContainerPool> pool_;   // pre-creates the next container, removes used ones
  bool fifo_reaches_containers_ = false;  // a job was delivered through a waiting container's FIFO
};

}  // namespace xqw::grading
