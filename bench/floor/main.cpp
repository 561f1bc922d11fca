// xqw-bench-floor: runs bench/run's job list through one floor mode, up to --concurrency jobs at once, with
// the queue's container spec from the same config root the watcher uses, and prints one JSON line per job
// (in the order the jobs end).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

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

// What the worker threads share: the jobs, the next one to take, and stdout.
struct Work {
  const std::vector<bench::FloorJob>& jobs;
  bench::FloorMode mode;
  std::atomic<std::size_t> next{0};
  std::atomic<int> failures{0};
  std::mutex output;

  // Whole lines only: several workers print at once.
  void print(const nlohmann::json& line) {
    const auto text = line.dump() + "\n";
    const std::lock_guard lock(output);
    std::cout << text << std::flush;
  }

  void fail(const bench::FloorJob& job, const std::string& reason) {
    ++failures;
    print({{"submission_id", job.submission_id}, {"kind", job.kind}, {"error", reason}});
  }
};

// One worker: its own engine connection and runner, jobs taken from the shared index until none is left.
void run_worker(Work& shared, const std::string& socket, const grading::QueueGrading& settings,
                const grading::ImageContract& contract, const std::string& docker_cli) {
  docker::Client engine(socket);
  bench::FloorRunner runner(engine, settings, contract, docker_cli);
  for (auto index = shared.next++; index < shared.jobs.size(); index = shared.next++) {
    const auto& job = shared.jobs[index];
    try {
      shared.print(bench::to_json(runner.run(shared.mode, job)));
    } catch (const std::exception& error) {
      shared.fail(job, error.what());
    }
  }
}

// A worker that cannot start leaves its share to the others (bench/run counts any job left as lost).
void worker_thread(Work& shared, const std::string& socket, const grading::QueueGrading& settings,
                   const grading::ImageContract& contract, const std::string& docker_cli) {
  try {
    run_worker(shared, socket, settings, contract, docker_cli);
  } catch (const std::exception& error) {
    ++shared.failures;
    const std::lock_guard lock(shared.output);
    std::cerr << "xqw-bench-floor: a worker stopped: " << error.what() << std::endl;
  }
}

int run(const std::string& config_root, const std::string& queue_name, bench::FloorMode mode,
        const std::string& jobs_path, const std::string& watcher_id, const std::string& docker_cli,
        int concurrency) {
  const auto loaded = config::load_config_root(config_root);
  if (!loaded.ok()) {
    for (const auto& error : loaded.errors) std::cerr << error.to_string() << "\n";
    throw std::runtime_error("the config root " + config_root + " is invalid");
  }
  const auto& queue = find_queue(*loaded.config, queue_name);
  const auto jobs = read_jobs(jobs_path);
  const auto& socket = loaded.config->manager.docker_socket;
  docker::Client engine(socket);
  const auto contract = grading::image_contract(engine.ensure_image(queue.image, queue.pull_policy, ""));
  const auto settings = bench::queue_grading(loaded.config->manager, queue, watcher_id);
  Work shared{.jobs = jobs, .mode = mode};
  {
    std::vector<std::jthread> workers;
    for (int i = 0; i < concurrency; ++i) {
      workers.emplace_back([&] { worker_thread(shared, socket, settings, contract, docker_cli); });
    }
  }  // joined here
  // Nothing of ours may outlive the run, whatever happened above.
  engine.remove_by_label(grading::orphan_filter(watcher_id));
  return shared.failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"xqw-bench-floor: the benchmark's floor (the watcher's container path without XQueue)"};
  std::string config_root, queue, mode_name = "api", jobs, watcher_id = "xqw-bench-floor",
                                  docker_cli = "docker";
  int concurrency = 1;
  app.add_option("-d,--config-root", config_root, "config root (as the watcher's -d)")->required();
  app.add_option("--queue", queue, "queue whose limits, image and grader_root apply")->required();
  std::vector<std::string> mode_names;
  for (const auto mode : bench::kFloorModes) mode_names.emplace_back(bench::to_string(mode));
  app.add_option("--mode", mode_name, "api, grader, docker-run, true or one-interpreter")
      ->check(CLI::IsMember(mode_names))
      ->capture_default_str();
  app.add_option("--concurrency", concurrency, "jobs run at once, each worker with its own engine connection")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--jobs", jobs, "job list (JSON array) written by bench/run")->required();
  app.add_option("--watcher-id", watcher_id, "label value on every container (for events and clean-up)")
      ->capture_default_str();
  app.add_option("--docker-cli", docker_cli, "docker CLI for --mode docker-run")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  spdlog::set_default_logger(spdlog::stderr_color_mt("xqw-bench-floor"));
  spdlog::set_level(spdlog::level::warn);
  try {
    return run(config_root, queue, *bench::parse_floor_mode(mode_name), jobs, watcher_id, docker_cli,
               concurrency);
  } catch (const std::exception& error) {
    std::cerr << "xqw-bench-floor: " << error.what() << "\n";
    return 2;
  }
}
