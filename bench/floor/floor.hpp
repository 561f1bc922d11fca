// bench/floor: the benchmark's floor — the same jobs, the same container spec and image, run without
// XQueue (one at a time, or a few at once): straight through the Engine API, through the watcher's
// ContainerGrader, or with `docker run --rm` from the CLI; and two references in the same container: the
// engine's own cost (/bin/true) and the grading done by one python3 process. bench/run compares the watcher
// against these.
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
  // The api floor's calls and container with /bin/true as its program: what the engine alone costs per
  // container. It grades nothing, so it has no score.
  TrueProgram,
  // The api floor's calls and container with one python3 running the grader, the answer and the submission
  // in-process (one_interpreter.py): the reference grading costs when the interpreter is paid once.
  OneInterpreter,
};
// The names bench/run passes: api, grader, docker-run, true, one-interpreter.
std::optional<FloorMode> parse_floor_mode(std::string_view text);
std::string_view to_string(FloorMode mode);
// Every mode, in the order above (for --help and the tests).
inline constexpr FloorMode kFloorModes[] = {FloorMode::Api, FloorMode::Grader, FloorMode::DockerRun,
                                            FloorMode::TrueProgram, FloorMode::OneInterpreter};

// bench/floor/one_interpreter.py, embedded at build time (bench/CMakeLists.txt): run with `python3 -c`.
std::string_view one_interpreter_script();

// The container a mode driven through the api floor's calls runs for a job (pure). `api_spec` is the api
// floor's (grading::container_spec: limits, mounts, user, labels); the true floor and the one-interpreter
// reference change only its program (entrypoint and cmd), so the engine does the same work for each.
// The one-interpreter program is told the image's grader and job directories as its arguments.
docker::ContainerSpec floor_spec(FloorMode mode, docker::ContainerSpec api_spec,
                                 const grading::ImageContract& contract);

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

// Runs jobs in one mode, one per run() call; every container it makes is removed before run() returns.
// One runner per thread: it drives its own engine connection.
class FloorRunner {
 public:
  FloorRunner(docker::Client& engine, grading::QueueGrading queue, grading::ImageContract contract,
              std::string docker_cli = "docker");
  // Throws grading::GradingUnavailable (engine, job directory) or std::runtime_error (CLI) with the reason.
  JobRecord run(FloorMode mode, const FloorJob& job);

 private:
  struct Prepared;
  // The api floor's engine calls on the container floor_spec(mode, ...) gives.
  JobRecord run_engine_calls(FloorMode mode, const FloorJob& job);
  JobRecord run_grader(const FloorJob& job);
  JobRecord run_docker_cli(const FloorJob& job);

  docker::Client& engine_;
  grading::QueueGrading queue_;
  grading::ImageContract contract_;
  grading::ContainerGrader grader_;
  std::string docker_cli_;
};

}  // namespace xqw::bench
