// xqw-bench-floor: runs bench/run's job list one job at a time through one floor mode, with the queue's
// container spec from the same config root the watcher uses, and prints one JSON line per job.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>

#include "floor/floor.hpp"

namespace {

using namespace xqw;

const config::QueueConfig& find_queue(const config::Config& config, const std::string& name) {
  for (const auto& queue : config.queues) {
    if (queue.name == name) return queue;
  }
  throw std::runtime_error("no queue named " + name + " in the config root");
}

std::vector<bench::FloorJob> read_jobs(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read the job list " + path);
  const auto parsed = nlohmann::json::parse(in, nullptr, false);
  if (parsed.is_discarded()) throw std::runtime_error("the job list " + path + " is not JSON");
  return bench::parse_jobs(parsed);
}

int run(const std::string& config_root, const std::string& queue_name, bench::FloorMode mode,
        const std::string& jobs_path, const std::string& watcher_id, const std::string& docker_cli) {
  const auto loaded = config::load_config_root(config_root);
  if (!loaded.ok()) {
    for (const auto& error : loaded.errors) std::cerr << error.to_string() << "\n";
    throw std::runtime_error("the config root " + config_root + " is invalid");
  }
  const auto& queue = find_queue(*loaded.config, queue_name);
  const auto jobs = read_jobs(jobs_path);
  docker::Client engine(loaded.config->manager.docker_socket);
  const auto image = engine.ensure_image(queue.image, queue.pull_policy);
  bench::FloorRunner runner(engine, bench::queue_grading(loaded.config->manager, queue, watcher_id),
                            grading::image_contract(image), docker_cli);
  int failures = 0;
  for (const auto& job : jobs) {
    try {
      std::cout << bench::to_json(runner.run(mode, job)).dump() << std::endl;
    } catch (const std::exception& error) {
      ++failures;
      std::cout << nlohmann::json{{"submission_id", job.submission_id},
                                  {"kind", job.kind},
                                  {"error", error.what()}}
                       .dump()
                << std::endl;
    }
  }
  // Nothing of ours may outlive the run, whatever happened above.
  engine.remove_by_label(grading::orphan_filter(watcher_id));
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"xqw-bench-floor: the benchmark's floor (the watcher's container path without XQueue)"};
  std::string config_root, queue, mode_name = "api", jobs, watcher_id = "xqw-bench-floor",
                                  docker_cli = "docker";
  app.add_option("-d,--config-root", config_root, "config root (as the watcher's -d)")->required();
  app.add_option("--queue", queue, "queue whose limits, image and grader_root apply")->required();
  app.add_option("--mode", mode_name, "api, grader or docker-run")
      ->check(CLI::IsMember({"api", "grader", "docker-run"}))
      ->capture_default_str();
  app.add_option("--jobs", jobs, "job list (JSON array) written by bench/run")->required();
  app.add_option("--watcher-id", watcher_id, "label value on every container (for events and clean-up)")
      ->capture_default_str();
  app.add_option("--docker-cli", docker_cli, "docker CLI for --mode docker-run")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  spdlog::set_default_logger(spdlog::stderr_color_mt("xqw-bench-floor"));
  spdlog::set_level(spdlog::level::warn);
  try {
    return run(config_root, queue, *bench::parse_floor_mode(mode_name), jobs, watcher_id, docker_cli);
  } catch (const std::exception& error) {
    std::cerr << "xqw-bench-floor: " << error.what() << "\n";
    return 2;
  }
}
