// cli: sub-commands beyond running the watcher; here `grade`, which lets course staff run one submission,
// or every sample submission of a course, through the exact production path on the local engine.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace xqw::cli {

struct GradeOptions {
  std::string
      config_dir;  // with queue: that queue's image, pull_policy, grader_root and limits, and docker_socket
  std::string queue;
  std::string image;  // without a config: try an image and grader root directly
  std::string grader_root;
  std::string contract;  // native | upstream; empty: the queue's (native without a config)
  std::string grader;    // path relative to grader_root, as in grader_payload
  std::string submission_file;
  std::vector<std::string> files;  // uploaded files (--file), named by their base names
  std::optional<std::int64_t> seed;
  std::string lang = "en";
  bool hide_output = false;
  bool json = false;
  std::optional<double> expect;
  std::string color = "auto";  // auto | always | never
  std::string watcher_id;      // labels the run's containers; empty: grade-HOST-PID
  // --course: every submission its expectations file lists (then no --grader, submission or --expect).
  std::string course;
  std::string expectations;       // empty: COURSE/expected.json
  int jobs = 1;                   // gradings at once, 1..kMaxJobs
  std::string progress = "auto";  // auto (bar on a terminal, else lines) | bar | lines | off
};

inline constexpr int kMaxJobs = 32;

void add_grade_options(CLI::App& command, GradeOptions& options);
// Returns the exit code: 0 graded (and matched --expect; with --course: every score as expected), 1 a
// score differs, 2 bad input, 3 grading unavailable (engine, image), 130 interrupted (Ctrl-C, SIGTERM).
int run_grade(const GradeOptions& options, std::ostream& out);

}  // namespace xqw::cli
