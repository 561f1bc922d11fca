// main: the xqueue-watcher command line: run the watcher (-d DIR), check-config, grade (one or a course).
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/grade_command.hpp"
#include "config/config.hpp"
#include "observability/health.hpp"
#include "observability/logging.hpp"
#include "observability/metrics.hpp"
#include "observability/server.hpp"
#include "watcher/watcher.hpp"

namespace fs = std::filesystem;

namespace {

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "xqueue-watcher";
  return name;
}

// Checks the config root before loading, so a typo gets a plain sentence rather than a list of misses.
bool config_root_usable(const fs::path& dir) {
  std::error_code error;
  if (!fs::exists(dir, error)) {
    std::cerr << "xqueue-watcher: config root " << dir << " does not exist\n";
    return false;
  }
  if (!fs::is_directory(dir, error)) {
    std::cerr << "xqueue-watcher: config root " << dir << " is not a directory\n";
    return false;
  }
  if (access(dir.c_str(), R_OK | X_OK) != 0) {
    std::cerr << "xqueue-watcher: config root " << dir << " is not readable\n";
    return false;
  }
  return true;
}

struct MetricsEndpoint {
  std::string address = "0.0.0.0";
  std::optional<int> port;  // unset: metrics_port from xqwatcher.yaml
};

int run_watcher(const fs::path& dir, const std::string& watcher_id, const MetricsEndpoint& endpoint) {
  // From the first instruction: a SIGHUP or SIGTERM during start-up waits for the manager to handle it
  // instead of killing the process with its default action.
  sigset_t signals;
  sigemptyset(&signals);
  for (int signal_number : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, signal_number);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (!config_root_usable(dir)) return 2;
  auto loaded = xqw::config::load_config_root(dir);
  for (const auto& warning : loaded.warnings) spdlog::warn("config: {}", warning.to_string());
  if (!loaded.ok()) {
    for (const auto& error : loaded.errors) std::cerr << error.to_string() << "\n";
    std::cerr << "xqueue-watcher: refusing to start: " << loaded.errors.size() << " problem(s) in " << dir
              << "\n";
    return 2;
  }
  if (loaded.config->queues.empty()) {
    std::cerr << "xqueue-watcher: no queues configured under " << (dir / "conf.d") << "\n";
    return 2;
  }
  spdlog::info("xqueue-watcher {} starting as {} with config root {}", XQW_VERSION, watcher_id, dir.string());
  xqw::observability::Metrics metrics(XQW_VERSION);
  xqw::observability::Health health;
  health.set_config_loaded(true);
  const int port = endpoint.port.value_or(loaded.config->manager.metrics_port);
  std::optional<xqw::observability::ObservabilityServer> server;
  if (port > 0 || endpoint.port) {
    try {
      server.emplace(xqw::observability::ServerOptions{.address = endpoint.address, .port = port}, metrics,
                     health);
      spdlog::info("serving /metrics, /healthz and /readyz on {}:{}", endpoint.address, server->port());
    } catch (const std::exception& error) {
      std::cerr << "xqueue-watcher: cannot serve metrics: " << error.what() << "\n";
      return 2;
    }
  }
  xqw::watcher::Manager manager(dir, std::move(*loaded.config), watcher_id, metrics, health);
  return manager.run();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"xqueue-watcher: grades Open edX code submissions in locked-down Docker containers"};
  app.set_version_flag("--version", std::string("xqueue-watcher ") + XQW_VERSION);
  app.require_subcommand(0, 1);

  std::string config_dir;
  std::string log_level = "info";
  std::string log_format = "text";
  std::string watcher_id = host_name();
  app.add_option("-d,--config-root", config_dir,
                 "config root: xqwatcher.{yaml,json}, xqueue_servers.{yaml,json}, conf.d/")
      ->check(CLI::ExistingDirectory);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_option("--log-format", log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  auto* watcher_id_option = app.add_option(
      "--watcher-id", watcher_id,
      "this instance's name, labelled on its containers (default: host name; grade: grade-HOST-PID)");
  MetricsEndpoint metrics_endpoint;
  app.add_option("--metrics-address", metrics_endpoint.address, "address of /metrics, /healthz, /readyz")
      ->capture_default_str();
  app.add_option(
      "--metrics-port", metrics_endpoint.port,
      "port of /metrics, /healthz, /readyz (default: metrics_port in xqwatcher.yaml; 0 picks a free one)");

  auto* check = app.add_subcommand("check-config",
                                   "validate a config root; prints every problem with file, key, reason");
  std::string check_dir;
  check->add_option("-d,--config-root", check_dir, "config root to check")->required();

  xqw::cli::GradeOptions grade_options;
  auto* grade = app.add_subcommand(
      "grade",
      "grade one submission file, or with --course every sample submission of a course against its "
      "expected scores, through the production path (for course staff and their CI)");
  xqw::cli::add_grade_options(*grade, grade_options);

  CLI11_PARSE(app, argc, argv);
  xqw::observability::configure_logging(log_level, log_format);

  if (check->parsed()) {
    if (!config_root_usable(check_dir)) return 2;
    return xqw::config::check_config(check_dir, std::cout);
  }
  if (grade->parsed()) {
    if (watcher_id_option->count() > 0) grade_options.watcher_id = watcher_id;
    return xqw::cli::run_grade(grade_options, std::cout);
  }
  if (config_dir.empty()) {
    std::cerr << app.help() << "\nxqueue-watcher: -d CONFIG_ROOT is required to run the watcher\n";
    return 2;
  }
  return run_watcher(config_dir, watcher_id, metrics_endpoint);
}
