// Shared helpers for the engine integration tests: one full container run, test labels, RSS.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>

#include "config/config.hpp"
#include "docker/docker.hpp"

namespace xqw::testing {

// Every image the integration tests run: bootstrapped offline by scripts/images.
inline const std::string kTestImage = "python:3.12-slim";

// The engine the tests use, found as the watcher finds it without a config root (DOCKER_HOST, else the
// default socket).
inline std::string engine_socket() {
  return config::resolve_engine_socket(config::process_environment(), std::nullopt).path;
}

inline std::string unique_suffix() {
  std::random_device device;
  return std::to_string(device()) + std::to_string(device());
}

inline docker::ContainerSpec python_spec(const std::string& code) {
  docker::ContainerSpec spec;
  spec.image = kTestImage;
  spec.entrypoint = std::vector<std::string>{"python3", "-c", code};
  spec.user = "65534:65534";
  spec.labels = {{"org.openedx.xqueue-watcher.test", "integration"}};
  spec.tmpfs = {{"/tmp", 16 << 20}};
  spec.memory_bytes = 128 << 20;
  spec.pids_limit = 64;
  return spec;
}

struct Run {
  docker::CapturedOutput output;
  docker::WaitResult wait;
  docker::ContainerState state;
};

inline Run run_container(docker::Client& client, const docker::ContainerSpec& spec,
                         std::chrono::milliseconds deadline_in = std::chrono::seconds(30),
                         docker::OutputCaps caps = {}) {
  docker::ContainerGuard guard(client, client.create_container(spec));
  const auto deadline = std::chrono::steady_clock::now() + deadline_in;
  client.start(guard.id());
  Run run;
  bool deadline_hit = false;
  run.output = client.follow_output(guard.id(), caps, deadline, &deadline_hit);
  run.wait = client.wait(guard.id(), deadline);
  run.wait.deadline_hit = run.wait.deadline_hit || deadline_hit;
  run.state = client.inspect(guard.id());
  // The engine may record an OOM kill a moment after the wait returns: look again briefly.
  for (int retry = 0; retry < 5 && run.wait.exit_code == 128 + 9 && !run.state.oom_killed; ++retry) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    run.state = client.inspect(guard.id());
  }
  return run;
}

inline long max_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

}  // namespace xqw::testing
