// cli/grade_setup: what `grade` (one submission or a whole course) runs with: the queue as the watcher
// would grade it, the engine it reaches and the pull policy for the queue's image.
#pragma once

#include <expected>
#include <string>
#include <vector>

#include "cli/grade_command.hpp"
#include "config/config.hpp"
#include "docker/docker.hpp"
#include "grading/queue.hpp"

namespace xqw::cli {

struct GradeSetup {
  grading::QueueGrading queue;
  docker::PullPolicy pull_policy = docker::PullPolicy::IfNotPresent;
  std::string docker_socket;
  std::string registry_auth_file;         // empty: anonymous pulls
  std::vector<config::Problem> warnings;  // about the engine endpoint (DOCKER_HOST) and DOCKER_CONFIG
};

// From the config root (the queue, docker_socket), or built from --image/--grader-root with the built-in
// defaults and DOCKER_HOST: either way through the watcher's own config::resolve_engine_socket and
// grading::queue_grading.
std::expected<GradeSetup, std::string> setup_for(const GradeOptions& options);

// The file's bytes, or why they cannot be had.
std::expected<std::string, std::string> read_file(const std::string& path);

// `grade --course`: every sample submission of a course against its expectations file.
int run_grade_course(const GradeOptions& options, std::ostream& out);

}  // namespace xqw::cli
