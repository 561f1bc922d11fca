#include "cli/grade_command.hpp"

#include <spdlog/fmt/fmt.h>
#include <unistd.h>

#include <expected>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/course.hpp"
#include "cli/grade_setup.hpp"
#include "cli/interrupt.hpp"
#include "config/config.hpp"
#include "docker/docker.hpp"
#include "grading/container_grader.hpp"
#include "grading/queue.hpp"

namespace xqw::cli {
namespace fs = std::filesystem;

std::expected<std::string, std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected("cannot read file " + path);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

namespace {

struct Style {
  bool on = false;
  std::string paint(const std::string& text, const char* code) const {
    return on ? std::string("\033[") + code + "m" + text + "\033[0m" : text;
  }
};

}  // namespace

std::expected<GradeSetup, std::string> setup_for(const GradeOptions& options) {
  config::ManagerConfig manager;
  config::QueueConfig queue{.name = "grade-cli"};
  std::vector<config::Problem> warnings;
  if (!options.config_dir.empty()) {
    auto loaded = config::load_config_root(options.config_dir);
    if (!loaded.ok()) {
      std::string error;
      for (const auto& problem : loaded.errors) error += problem.to_string() + "\n";
      return std::unexpected(error + "the config root " + options.config_dir +
                             " is invalid (run check-config)");
    }
    const auto& queues = loaded.config->queues;
    auto found =
        std::find_if(queues.begin(), queues.end(), [&](const auto& q) { return q.name == options.queue; });
    if (found == queues.end()) {
      return std::unexpected("queue " + options.queue + " is not configured under " + options.config_dir);
    }
    manager = loaded.config->manager;
    queue = *found;
    for (auto& problem : loaded.warnings) {
      if (problem.key == "DOCKER_HOST" || problem.key == "DOCKER_CONFIG")
        warnings.push_back(std::move(problem));
    }
  } else {
    auto socket = config::resolve_engine_socket(config::process_environment(), std::nullopt);
    manager.docker_socket = std::move(socket.path);
    if (socket.warning) warnings.push_back(std::move(*socket.warning));
    auto auth = config::resolve_registry_auth_file(config::process_environment(), std::nullopt);
    if (!auth.errors.empty()) {
      std::string error;
      for (const auto& problem : auth.errors) error += problem.to_string() + "\n";
      return std::unexpected(error + "the registry credentials are unusable");
    }
    for (auto& problem : auth.warnings) warnings.push_back(std::move(problem));
    manager.registry_auth_file = std::move(auth.path);
  }
  GradeSetup setup{
      .queue = grading::queue_grading(manager, queue,
                                      options.watcher_id.empty() ? default_watcher_id() : options.watcher_id),
      .pull_policy = queue.pull_policy,
      .docker_socket = manager.docker_socket,
      .registry_auth_file = manager.registry_auth_file,
      .warnings = std::move(warnings)};
  // One submission, run now on this machine's engine: no container prepared ahead, and a private
  // scratch directory rather than the watcher's work_dir (which may belong to the service's user).
  setup.queue.precreate = config::Precreate::Off;
  setup.queue.work_dir = fs::temp_directory_path() / "xqueue-watcher-grade";
  setup.queue.docker_host_work_dir.clear();
  if (!options.image.empty()) setup.queue.image = options.image;
  if (!options.contract.empty()) {
    setup.queue.contract =
        options.contract == "upstream" ? config::ContractKind::Upstream : config::ContractKind::Native;
    setup.queue.contract_implied = false;
  }
  if (!options.grader_root.empty()) {
    setup.queue.grader_root = fs::absolute(options.grader_root);
    setup.queue.docker_host_grader_root.clear();
  }
  if (setup.queue.grader_root.empty()) {
    return std::unexpected(std::string("give -d CONFIG_ROOT --queue Q, or --grader-root DIR"));
  }
  return setup;
}

namespace {

void print_for_people(const grading::GradeReport& report, const config::Limits& limits, const Style& style,
                      std::ostream& out) {
  const auto& result = report.outcome.result;
  const std::string status =
      result.correct ? style.paint("CORRECT", "1;32") : style.paint("INCORRECT", "1;31");
  out << status << "  score " << result.score
      << "  (verdict: " << grading::verdict_label(report.outcome.verdict) << ")\n";
  for (const auto& error : result.errors) out << style.paint("error: ", "1;33") << error << "\n";
  for (const auto& test : result.tests) {
    out << (test.correct ? style.paint("  pass ", "32") : style.paint("  FAIL ", "31"))
        << test.short_description << "\n";
    if (!test.correct) {
      out << "       expected: " << test.expected_output << "\n";
      out << "       actual:   " << test.actual_output << "\n";
    }
  }
  if (!report.staff_stdout.empty()) {
    out << style.paint("staff debug (grader stdout before its result):", "2") << "\n" << report.staff_stdout;
    if (report.staff_stdout.back() != '\n') out << "\n";
  }
  if (!report.staff_stderr.empty()) {
    out << style.paint("staff debug (grader stderr):", "2") << "\n" << report.staff_stderr;
    if (report.staff_stderr.back() != '\n') out << "\n";
  }
  if (!report.outcome.staff_reason.empty())
    out << style.paint("staff debug: ", "2") << report.outcome.staff_reason << "\n";
  const auto ms = [](auto duration) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
  };
  out << "container: create " << ms(report.times.create) << " ms, start " << ms(report.times.start)
      << " ms, run " << ms(report.times.run) << " ms, remove " << ms(report.times.remove) << " ms, total "
      << ms(report.times.total) << " ms, exit code " << report.exit_code << "\n";
  const auto usage = grading::image_report(report.staff_stderr);
  if (usage.cpu_seconds || usage.max_rss_bytes) {
    out << "resources: cpu " << (usage.cpu_seconds ? fmt::format("{:.3f} s", *usage.cpu_seconds) : "unknown")
        << ", peak memory " << (usage.max_rss_bytes ? config::format_bytes(*usage.max_rss_bytes) : "unknown")
        << " (limits: " << config::format_bytes(limits.memory_bytes) << ", "
        << config::format_cpus(limits.cpus) << " cpus, " << config::format_duration_as_written(limits.timeout)
        << ")\n";
  }
}

nlohmann::json as_json(const grading::GradeReport& report) {
  const auto& result = report.outcome.result;
  nlohmann::json tests = nlohmann::json::array();
  for (const auto& test : result.tests) {
    tests.push_back({test.short_description, test.long_description, test.correct, test.expected_output,
                     test.actual_output});
  }
  const auto ms = [](auto duration) { return std::chrono::duration<double, std::milli>(duration).count(); };
  const auto usage = grading::image_report(report.staff_stderr);
  return {{"cpu_seconds", usage.cpu_seconds ? nlohmann::json(*usage.cpu_seconds) : nlohmann::json()},
          {"max_rss_bytes", usage.max_rss_bytes ? nlohmann::json(*usage.max_rss_bytes) : nlohmann::json()},
          {"verdict", grading::verdict_label(report.outcome.verdict)},
          {"correct", result.correct},
          {"score", result.score},
          {"errors", result.errors},
          {"tests", tests},
          {"msg", report.html},
          {"staff_stderr", report.staff_stderr},
          {"staff_stdout", report.staff_stdout},
          {"staff_reason", report.outcome.staff_reason},
          {"exit_code", report.exit_code},
          {"times_ms",
           {{"create", ms(report.times.create)},
            {"start", ms(report.times.start)},
            {"run", ms(report.times.run)},
            {"remove", ms(report.times.remove)},
            {"total", ms(report.times.total)}}}};
}

}  // namespace

void add_grade_options(CLI::App& command, GradeOptions& options) {
  command.add_option("-d,--config-root", options.config_dir, "config root holding the queue");
  command.add_option("--queue", options.queue, "queue whose image, grader_root and limits apply");
  command.add_option("--image", options.image,
                     "grader image (overrides the queue's; pulled per the queue's pull_policy)");
  auto* grader_root = command.add_option("--grader-root", options.grader_root,
                                         "course grader directory (overrides the queue's)");
  command
      .add_option("--contract", options.contract,
                  "native, or upstream for an image built for the Python watcher's ContainerGrader")
      ->check(CLI::IsMember({"native", "upstream"}));
  auto* grader = command.add_option("--grader", options.grader,
                                    "grader path relative to the grader root, e.g. ex1/grader.py");
  auto* submission =
      command.add_option("submission", options.submission_file, "file holding the student's submission")
          ->check(CLI::ExistingFile);
  auto* files =
      command
          .add_option(
              "--file", options.files,
              "a file uploaded with the submission (repeatable; the grader sees it under its base name)")
          ->check(CLI::ExistingFile);
  command.add_option("--seed", options.seed, "random seed given to both the staff and the student run")
      ->default_str("1");
  command.add_option("--lang", options.lang, "language for the grader's messages")->capture_default_str();
  command.add_flag("--hide-output", options.hide_output, "grade as a hide_output problem");
  command.add_flag("--json", options.json, "print the raw result (with --course: the whole report) as JSON");
  auto* expect =
      command.add_option("--expect", options.expect, "exit 1 unless the score equals this (for course CI)");
  command.add_option("--color", options.color, "auto, always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}));
  auto* course = command.add_option(
      "--course", options.course,
      "grade every sample submission the course directory's expectations file lists (the grader root is "
      "the course directory); exit 1 on any mismatch");
  command
      .add_option(
          "--expectations", options.expectations,
          "JSON object of \"PROBLEM/submissions/FILE\": expected score (default: COURSE/expected.json)")
      ->needs(course);
  command
      .add_option(
          "-j,--jobs", options.jobs,
          "with --course: how many submissions to grade at once (1.." + std::to_string(kMaxJobs) + ")")
      ->capture_default_str()
      ->needs(course);
  command
      .add_option("--progress", options.progress,
                  "with --course: auto (a bar on a terminal, else a line per submission), bar, lines or off")
      ->check(CLI::IsMember({"auto", "bar", "lines", "off"}))
      ->capture_default_str()
      ->needs(course);
  course->excludes(grader_root)->excludes(grader)->excludes(submission)->excludes(files)->excludes(expect);
  command.callback([&options] {
    if (!options.config_dir.empty() && options.queue.empty()) {
      throw CLI::ValidationError("--queue", "is required with -d");
    }
    if (options.course.empty()) {
      if (options.grader.empty()) throw CLI::RequiredError("--grader (or --course DIR)");
      if (options.submission_file.empty()) throw CLI::RequiredError("submission (or --course DIR)");
    }
  });
}

int run_grade(const GradeOptions& given, std::ostream& out) {
  if (!given.course.empty()) return run_grade_course(given, out);
  GradeOptions options = given;
  if (options.watcher_id.empty()) options.watcher_id = default_watcher_id();
  auto setup = setup_for(options);
  if (!setup) {
    std::cerr << "xqueue-watcher grade: " << setup.error() << "\n";
    return 2;
  }
  for (const auto& warning : setup->warnings) {
    std::cerr << "xqueue-watcher grade: warning: " << warning.to_string() << "\n";
  }
  const auto& queue = setup->queue;
  auto submission = read_file(options.submission_file);
  if (!submission) {
    std::cerr << "xqueue-watcher grade: " << submission.error() << "\n";
    return 2;
  }
  grading::GradeJob job;
  job.queue = queue.queue;
  job.submission_id = "local";
  job.grader = options.grader;  // set once, here; the payload only carries it into job.json
  job.grader_payload = {{"grader", options.grader}};
  job.student_response = *submission;
  job.lang = options.lang;
  job.hide_output = options.hide_output;
  job.seed = options.seed.value_or(1);
  for (const auto& path : options.files) {
    auto bytes = read_file(path);
    if (!bytes) {
      std::cerr << "xqueue-watcher grade: " << bytes.error() << "\n";
      return 2;
    }
    job.files.push_back({.name = fs::path(path).filename().string(), .bytes = std::move(*bytes)});
  }
  // Ctrl-C: the container in flight is removed (by this run's watcher label), exit 130.
  InterruptWatch watch("xqueue-watcher grade",
                       [&] { remove_run_containers(setup->docker_socket, queue.watcher_id); });
  try {
    docker::Client engine(setup->docker_socket);
    const auto image = engine.ensure_image(queue.image, setup->pull_policy, setup->registry_auth_file);
    grading::ContainerGrader grader(engine, queue, grading::queue_contract(queue, image));
    const auto report = grader.grade(job);
    if (watch.interrupted()) return 130;
    if (options.json) {
      out << as_json(report).dump(2) << "\n";
    } else {
      Style style{options.color == "always" || (options.color == "auto" && isatty(STDOUT_FILENO))};
      print_for_people(report, queue.limits, style, out);
    }
    if (options.expect && !course::matches(report.outcome.result.score, *options.expect)) {
      std::cerr << "xqueue-watcher grade: score " << report.outcome.result.score << " differs from --expect "
                << *options.expect << "\n";
      return 1;
    }
    return 0;
  } catch (const std::exception& failure) {
    if (watch.interrupted()) return 130;
    std::cerr << "xqueue-watcher grade: could not grade: " << failure.what() << "\n";
    return 3;
  }
}

}  // namespace xqw::cli
