// bench/floor: the benchmark's floor — the same jobs, the same container spec and image, run one after
// another without XQueue: straight through the Engine API, through the watcher's ContainerGrader, or
// with `docker run --rm` from the CLI. bench/run compares the watcher against these.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "docker/docker.hpp"
#include "grading/container_grader.hpp"

namespace xqw::bench {

enum class FloorMode {
  Api,        // create, start, wait, read output, remove: the fewest engine calls that grade a job
  Grader,     // grading::ContainerGrader::grade: the watcher's own path minus XQueue
  DockerRun,  // `docker run --rm` with flags equivalent to the spec, killed at the deadline
};
std::optional<FloorMode> parse_floor_mode(std::string_view text);
std::string_view to_string(FloorMode mode);

// One job as bench/run writes it: the same fields the stand-in serves the watcher.
struct FloorJob {
  std::int64_t submission_id = 0;
  std::string grader;  // relative to the queue's grader_root, as in the grader_payload
  std::string student_response;
  std::int64_t seed = 1;
  std::string kind;  // what bench/run calls it ("01-average/right", "timeout", ...), echoed back
};

// The job list: a JSON array of {"submission_id", "grader", "student_response", "seed", "kind"}.
// Throws std::invalid_argument naming the entry and the field.
std::vector<FloorJob> parse_jobs(const nlohmann::json& list);

// The GradeJob the watcher would build for this job had XQueue served it (same payload, same seed).
grading::GradeJob grade_job(const std::string& queue, const FloorJob& job);

// The queue's grading settings exactly as the watcher derives them from the config.
grading::QueueGrading queue_grading(const config::ManagerConfig& manager, const config::QueueConfig& queue,
                                    const std::string& watcher_id);

// `docker run` arguments (after the program name) that create the same container as `spec` through
// the API, named `name`, removed on exit (pure).
std::vector<std::string> docker_run_args(const docker::ContainerSpec& spec, const std::string& name);

// The score in a grader's stdout result, when it is a JSON object with a numeric "score".
std::optional<double> score_from_stdout(std::string_view stdout_bytes);

// What one job cost and gave. Times are microseconds; begin/end are wall-clock (the engine's events
// use the same clock, so bench/run can line them up).
struct JobRecord {
  std::int64_t submission_id = 0;
  std::string kind;
  std::int64_t begin_unix_us = 0;
  std::int64_t end_unix_us = 0;
  std::vector<std::pair<std::string, std::int64_t>> phases_us;  // in order
  std::optional<int> exit_code;
  std::optional<double> score;
  std::string verdict;  // Grader mode: the watcher's verdict label; others: "exited", "deadline", "cap"
  std::uint64_t stdout_bytes = 0;
  std::uint64_t stderr_bytes = 0;
};
nlohmann::json to_json(const JobRecord& record);

// Runs jobs one at a time in one mode; every container it makes is removed before run() returns.
class FloorRunner {
 public:
  FloorRunner(docker::Client& engine, grading::QueueGrading queue, grading::ImageContract contract,
              std::string docker_cli = "docker");
  // Throws grading::GradingUnavailable (engine, job directory) or std::runtime_error (CLI) with the reason.
  JobRecord run(FloorMode mode, const FloorJob& job);

 private:
  struct Prepared;
  JobRecord run_api(const FloorJob& job);
  JobRecord run_grader(const FloorJob& job);
  JobRecord run_docker_cli(const FloorJob& job);

  docker::Client& engine_;
  grading::QueueGrading queue_;
  grading::ImageContract contract_;
  grading::ContainerGrader grader_;
  std::string docker_cli_;
};

}  // namespace xqw::bench
