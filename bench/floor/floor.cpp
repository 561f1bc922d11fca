#include "floor/floor.hpp"

#include <algorithm>
#include <random>
#include <stdexcept>

#include "floor/child_process.hpp"
#include "watcher/watcher.hpp"
#include "xqueue/xqueue.hpp"

namespace xqw::bench {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::microseconds;

namespace {

std::int64_t unix_now_us() {
  return std::chrono::duration_cast<microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t us_since(Clock::time_point start) {
  return std::chrono::duration_cast<microseconds>(Clock::now() - start).count();
}

// The --mount value is CSV: a field holding a comma or a quote is quoted, quotes doubled.
std::string csv_field(const std::string& field) {
  if (field.find_first_of(",\"") == std::string::npos) return field;
  std::string quoted = "\"";
  for (char c : field) quoted += (c == '"') ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::string cpus_text(std::int64_t nano_cpus) {
  std::string text = std::to_string(nano_cpus / 1'000'000'000);
  if (const auto fraction = nano_cpus % 1'000'000'000; fraction != 0) {
    std::string digits = std::to_string(fraction);
    digits.insert(0, 9 - digits.size(), '0');
    digits.erase(digits.find_last_not_of('0') + 1);
    text += "." + digits;
  }
  return text;
}

docker::OutputCaps output_caps(const config::Limits& limits) {
  return {.stdout_bytes = limits.stdout_bytes, .stderr_bytes = limits.stderr_bytes};
}

std::string container_name(const FloorJob& job) {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  return "xqw-bench-" + std::to_string(job.submission_id) + "-" + std::to_string(random() % 1'000'000'000);
}

std::string job_dir_name(const FloorJob& job) { return "bench-job-" + container_name(job).substr(10); }

}  // namespace

std::optional<FloorMode> parse_floor_mode(std::string_view text) {
  for (const auto mode : kFloorModes) {
    if (text == to_string(mode)) return mode;
  }
  return std::nullopt;
}

std::string_view to_string(FloorMode mode) {
  switch (mode) {
    case FloorMode::Api:
      return "api";
    case FloorMode::Grader:
      return "grader";
    case FloorMode::DockerRun:
      return "docker-run";
    case FloorMode::TrueProgram:
      return "true";
    case FloorMode::OneInterpreter:
      return "one-interpreter";
  }
  return "unknown";
}

docker::ContainerSpec floor_spec(FloorMode mode, docker::ContainerSpec api_spec,
                                 const grading::ImageContract& contract) {
  switch (mode) {
    case FloorMode::TrueProgram:
      api_spec.entrypoint = std::vector<std::string>{"/bin/true"};
      api_spec.cmd.clear();
      break;
    case FloorMode::OneInterpreter:
      // As the image's own entrypoint starts its interpreters: isolated, no bytecode written.
      api_spec.entrypoint =
          std::vector<std::string>{"python3", "-I", "-B", "-c", std::string(one_interpreter_script())};
      api_spec.cmd = {contract.grader_dir, contract.job_dir};
      break;
    case FloorMode::Api:
    case FloorMode::Grader:
    case FloorMode::DockerRun:
      break;
  }
  return api_spec;
}

std::vector<FloorJob> parse_jobs(const nlohmann::json& list) {
  if (!list.is_array()) throw std::invalid_argument("the job list is not a JSON array");
  std::vector<FloorJob> jobs;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const auto& entry = list[i];
    const std::string where = "job " + std::to_string(i);
    if (!entry.is_object()) throw std::invalid_argument(where + " is not an object");
    auto field = [&](const char* name, nlohmann::json::value_t type) -> const nlohmann::json& {
      if (!entry.contains(name)) throw std::invalid_argument(where + ": missing \"" + name + "\"");
      const auto& value = entry[name];
      const bool number = type == nlohmann::json::value_t::number_integer;
      if (number ? !value.is_number_integer() : value.type() != type) {
        throw std::invalid_argument(where + ": \"" + name + "\" must be " +
                                    (number ? "an integer" : "a string"));
      }
      return value;
    };
    FloorJob job;
    job.submission_id = field("submission_id", nlohmann::json::value_t::number_integer).get<std::int64_t>();
    job.grader = field("grader", nlohmann::json::value_t::string).get<std::string>();
    job.student_response = field("student_response", nlohmann::json::value_t::string).get<std::string>();
    job.seed = field("seed", nlohmann::json::value_t::number_integer).get<std::int64_t>();
    if (entry.contains("kind") && entry["kind"].is_string()) job.kind = entry["kind"].get<std::string>();
    jobs.push_back(std::move(job));
  }
  return jobs;
}

grading::GradeJob grade_job(const std::string& queue, const FloorJob& job) {
  xqueue::Submission submission;
  submission.queue = queue;
  submission.submission_id = job.submission_id;
  submission.grader_payload = nlohmann::json{{"grader", job.grader}};
  submission.grader_payload_is_json = true;
  submission.student_info = nlohmann::json{
      {"anonymous_student_id", "bench-" + std::to_string(job.submission_id)}, {"random_seed", job.seed}};
  submission.student_response = job.student_response;
  return watcher::to_grade_job(std::move(submission), config::QueueConfig{.name = queue});
}

grading::QueueGrading queue_grading(const config::ManagerConfig& manager, const config::QueueConfig& queue,
                                    const std::string& watcher_id) {
  auto settings = grading::queue_grading(manager, queue, watcher_id);
  settings.precreate = config::Precreate::Off;  // the floor creates each container on the critical path
  return settings;
}

std::vector<std::string> docker_run_args(const docker::ContainerSpec& spec, const std::string& name) {
  std::vector<std::string> args = {
      "run", "--rm", "--name", name, "--network", spec.network ? "bridge" : "none", "--cap-drop", "ALL"};
  auto add = [&](std::string flag, std::string value) {
    args.push_back(std::move(flag));
    args.push_back(std::move(value));
  };
  for (const auto& cap : spec.cap_add) add("--cap-add", cap);
  if (spec.no_new_privileges) add("--security-opt", "no-new-privileges");
  if (spec.read_only_rootfs) args.push_back("--read-only");
  add("--log-driver", "json-file");
  add("--log-opt", "max-size=" + std::to_string(std::max<std::int64_t>(spec.log_max_bytes, 4096)));
  add("--log-opt", "max-file=1");
  if (spec.memory_bytes > 0) {
    add("--memory", std::to_string(spec.memory_bytes));
    add("--memory-swap", std::to_string(spec.memory_bytes));
  }
  if (spec.nano_cpus > 0) add("--cpus", cpus_text(spec.nano_cpus));
  if (spec.pids_limit > 0) add("--pids-limit", std::to_string(spec.pids_limit));
  if (!spec.runtime.empty()) add("--runtime", spec.runtime);
  for (const auto& mount : spec.mounts) {
    add("--mount", "type=bind," + csv_field("source=" + mount.source) + "," +
                       csv_field("target=" + mount.target) + (mount.read_only ? ",readonly" : "") +
                       ",bind-propagation=rprivate");
  }
  for (const auto& [path, size] : spec.tmpfs) {
    add("--tmpfs", path + ":rw,nosuid,nodev,noexec,size=" + std::to_string(size) + ",mode=1777");
  }
  for (const auto& limit : spec.ulimits) {
    add("--ulimit", limit.name + "=" + std::to_string(limit.soft) + ":" + std::to_string(limit.hard));
  }
  for (const auto& [key, value] : spec.labels) add("--label", key + "=" + value);
  for (const auto& variable : spec.env) add("--env", variable);
  if (!spec.working_dir.empty()) add("--workdir", spec.working_dir);
  if (!spec.user.empty()) add("--user", spec.user);
  std::vector<std::string> command = spec.cmd;
  if (spec.entrypoint) {
    // The CLI takes one entrypoint word; the rest of the API's Entrypoint array precedes the command.
    add("--entrypoint", spec.entrypoint->empty() ? "" : spec.entrypoint->front());
    if (spec.entrypoint->size() > 1)
      command.insert(command.begin(), spec.entrypoint->begin() + 1, spec.entrypoint->end());
  }
  args.push_back(spec.image);
  args.insert(args.end(), command.begin(), command.end());
  return args;
}

std::optional<double> score_from_stdout(std::string_view stdout_bytes) {
  const auto parsed = nlohmann::json::parse(stdout_bytes, nullptr, false);
  if (!parsed.is_object() || !parsed.contains("score") || !parsed["score"].is_number()) return std::nullopt;
  return parsed["score"].get<double>();
}

nlohmann::json to_json(const JobRecord& record) {
  nlohmann::json phases = nlohmann::json::array();  // [[name, us], ...] keeps the calls in order
  for (const auto& [name, us] : record.phases_us) phases.push_back({name, us});
  return {{"submission_id", record.submission_id},
          {"kind", record.kind},
          {"begin_unix_us", record.begin_unix_us},
          {"end_unix_us", record.end_unix_us},
          {"phases_us", phases},
          {"exit_code", record.exit_code ? nlohmann::json(*record.exit_code) : nlohmann::json()},
          {"score", record.score ? nlohmann::json(*record.score) : nlohmann::json()},
          {"verdict", record.verdict},
          {"stdout_bytes", record.stdout_bytes},
          {"stderr_bytes", record.stderr_bytes}};
}

// The per-job set-up every mode shares with ContainerGrader: grader path, job directory, container spec.
struct FloorRunner::Prepared {
  grading::GradeJob job;
  std::optional<grading::JobDirectory> dir;
  docker::ContainerSpec spec;
};

FloorRunner::FloorRunner(docker::Client& engine, grading::QueueGrading queue, grading::ImageContract contract,
                         std::string docker_cli)
    : engine_(engine),
      queue_(std::move(queue)),
      contract_(std::move(contract)),
      grader_(engine_, queue_, contract_),
      docker_cli_(std::move(docker_cli)) {}

JobRecord FloorRunner::run(FloorMode mode, const FloorJob& job) {
  switch (mode) {
    case FloorMode::Api:
    case FloorMode::TrueProgram:
    case FloorMode::OneInterpreter:
      return run_engine_calls(mode, job);
    case FloorMode::Grader:
      return run_grader(job);
    case FloorMode::DockerRun:
      return run_docker_cli(job);
  }
  throw std::invalid_argument("unknown floor mode");
}

namespace {

// Mirrors ContainerGrader: the job's grader path (set by to_grade_job) resolved in the queue's root, the job
// directory written.
void prepare(const grading::QueueGrading& queue, const grading::ImageContract& contract, const FloorJob& job,
             grading::GradeJob& grade, std::optional<grading::JobDirectory>& dir,
             docker::ContainerSpec& spec) {
  const auto where = "job " + std::to_string(job.submission_id) + ": ";
  if (!grade.grader) throw std::runtime_error(where + "grader_payload has no \"grader\" path");
  auto resolved = grading::resolve_grader(queue.grader_root, *grade.grader);
  if (!resolved) throw std::runtime_error(where + resolved.error().reason);
  const auto& grader = *resolved;
  const double timeout_seconds = std::chrono::duration<double>(queue.limits.timeout).count();
  try {
    dir.emplace(queue.work_dir, job_dir_name(job), grade, timeout_seconds, grader.file_name);
  } catch (const grading::JobDirectoryError& error) {
    throw grading::GradingUnavailable(error.what());
  }
  spec = grading::container_spec(queue, contract, grader.problem_dir, dir->path(), grade.submission_id);
}

}  // namespace

JobRecord FloorRunner::run_engine_calls(FloorMode mode, const FloorJob& job) {
  JobRecord record{.submission_id = job.submission_id, .kind = job.kind, .begin_unix_us = unix_now_us()};
  const auto started = Clock::now();
  Prepared prepared{.job = grade_job(queue_.queue, job)};
  try {
    auto phase = Clock::now();
    prepare(queue_, contract_, job, prepared.job, prepared.dir, prepared.spec);
    prepared.spec = floor_spec(mode, std::move(prepared.spec), contract_);
    record.phases_us.emplace_back("prepare", us_since(phase));

    phase = Clock::now();
    docker::ContainerGuard container(engine_, engine_.create_container(prepared.spec));
    record.phases_us.emplace_back("create", us_since(phase));

    phase = Clock::now();
    const auto deadline = Clock::now() + queue_.limits.timeout;
    engine_.start(container.id());
    record.phases_us.emplace_back("start", us_since(phase));

    phase = Clock::now();
    const auto waited = engine_.wait(container.id(), deadline);
    record.phases_us.emplace_back("wait", us_since(phase));

    phase = Clock::now();
    bool unused = false;
    const auto output = engine_.follow_output(container.id(), output_caps(queue_.limits),
                                              Clock::now() + std::chrono::seconds(30), &unused);
    record.phases_us.emplace_back("logs", us_since(phase));

    phase = Clock::now();
    engine_.remove(container.release());
    record.phases_us.emplace_back("remove", us_since(phase));

    record.exit_code = waited.exit_code;
    record.verdict = waited.deadline_hit ? "deadline" : output.cap_hit() ? "cap" : "exited";
    record.score = score_from_stdout(output.out.data);
    record.stdout_bytes = output.out.total_bytes;
    record.stderr_bytes = output.err.total_bytes;
  } catch (const docker::EngineError& error) {
    throw grading::GradingUnavailable(std::string("Docker engine: ") + error.what());
  }
  prepared.dir.reset();  // ContainerGrader also removes the job directory inside its timed region
  record.phases_us.emplace_back("total", us_since(started));
  record.end_unix_us = unix_now_us();
  return record;
}

JobRecord FloorRunner::run_grader(const FloorJob& job) {
  JobRecord record{.submission_id = job.submission_id, .kind = job.kind, .begin_unix_us = unix_now_us()};
  const auto started = Clock::now();
  const auto report = grader_.grade(grade_job(queue_.queue, job));
  const auto& times = report.times;
  record.phases_us = {{"prepare", times.prepare.count()}, {"create", times.create.count()},
                      {"start", times.start.count()},     {"run", times.run.count()},
                      {"inspect", times.inspect.count()}, {"remove", times.remove.count()},
                      {"total", us_since(started)}};
  record.exit_code = report.exit_code;
  record.verdict = std::string(grading::verdict_label(report.outcome.verdict));
  if (report.outcome.verdict == grading::Verdict::Graded) record.score = report.outcome.result.score;
  record.end_unix_us = unix_now_us();
  return record;
}

JobRecord FloorRunner::run_docker_cli(const FloorJob& job) {
  JobRecord record{.submission_id = job.submission_id, .kind = job.kind, .begin_unix_us = unix_now_us()};
  const auto started = Clock::now();
  Prepared prepared{.job = grade_job(queue_.queue, job)};
  auto phase = Clock::now();
  prepare(queue_, contract_, job, prepared.job, prepared.dir, prepared.spec);
  record.phases_us.emplace_back("prepare", us_since(phase));

  phase = Clock::now();
  const std::string name = container_name(job);
  auto argv = docker_run_args(prepared.spec, name);
  argv.insert(argv.begin(), docker_cli_);
  ChildProcess cli(argv);
  const auto end = cli.read_until(Clock::now() + queue_.limits.timeout, output_caps(queue_.limits));
  bool killed = false;
  if (end != ChildProcess::ReadEnd::Closed) {
    // What a script around `docker run` has to do: kill the container by name; --rm then removes it.
    try {
      engine_.kill(name);
      killed = true;
    } catch (const docker::ContainerGone&) {
    }
    cli.read_until(Clock::now() + std::chrono::seconds(30), output_caps(queue_.limits));
  }
  const int exit_code = cli.wait();
  record.phases_us.emplace_back("docker_run", us_since(phase));
  prepared.dir.reset();
  record.phases_us.emplace_back("total", us_since(started));
  record.end_unix_us = unix_now_us();

  if (killed || exit_code != 0) engine_.remove(name);  // a 404 (already removed by --rm) is fine
  record.exit_code = exit_code;
  record.verdict = end == ChildProcess::ReadEnd::Deadline ? "deadline"
                   : end == ChildProcess::ReadEnd::Cap    ? "cap"
                                                          : "exited";
  record.score = score_from_stdout(cli.output().out.data);
  record.stdout_bytes = cli.output().out.total_bytes;
  record.stderr_bytes = cli.output().err.total_bytes;
  if (exit_code == 125) {
    throw std::runtime_error("docker run refused the container: " + cli.output().err.data.substr(0, 2000));
  }
  return record;
}

}  // namespace xqw::bench
