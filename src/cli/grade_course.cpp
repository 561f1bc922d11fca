// `grade --course`: runs every sample submission an expectations file lists through the same path as a
// single `grade` (one ContainerGrader per worker thread), shows progress, and ends with the table.
#include <signal.h>
#include <spdlog/fmt/fmt.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <iostream>
#include <mutex>
#include <thread>

#include "cli/course.hpp"
#include "cli/grade_setup.hpp"
#include "cli/interrupt.hpp"
#include "grading/container_grader.hpp"
#include "grading/contract.hpp"

namespace xqw::cli {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kName = "xqueue-watcher grade";

std::chrono::milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

enum class ProgressMode { Bar, Lines, Off };

ProgressMode progress_mode(const std::string& option) {
  if (option == "bar") return ProgressMode::Bar;
  if (option == "lines") return ProgressMode::Lines;
  if (option == "off") return ProgressMode::Off;
  return isatty(STDERR_FILENO) ? ProgressMode::Bar : ProgressMode::Lines;
}

std::size_t terminal_width() {
  winsize size{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 10) return size.ws_col - 1;
  return 79;
}

// Progress on stderr (stdout keeps the table or the JSON): a bar redrawn in place, or a line each.
class Progress {
 public:
  Progress(ProgressMode mode, std::size_t total) : mode_(mode), total_(total), width_(terminal_width()) {
    if (mode_ == ProgressMode::Bar) draw("");
  }
  void finished(const course::Row& row) {
    std::lock_guard lock(mutex_);
    ++done_;
    if (row.status == course::Status::Mismatch) ++mismatches_;
    if (mode_ == ProgressMode::Lines) std::cerr << course::progress_line(row, done_, total_) << std::endl;
    if (mode_ == ProgressMode::Bar) draw(row.expectation.key);
  }
  void end() {
    std::lock_guard lock(mutex_);
    if (mode_ == ProgressMode::Bar) std::cerr << "\n" << std::flush;
  }

 private:
  void draw(std::string_view last) {
    std::cerr << "\r" << course::progress_bar(done_, total_, mismatches_, last, width_) << "\033[K"
              << std::flush;
  }
  ProgressMode mode_;
  std::size_t total_;
  std::size_t width_;
  std::mutex mutex_;
  std::size_t done_ = 0, mismatches_ = 0;
};

void print_input_errors(const std::vector<course::InputError>& errors) {
  for (const auto& error : errors) std::cerr << kName << ": " << error.to_string() << "\n";
}

// The expectations, or every reason they cannot be used (already printed).
std::optional<std::vector<course::Expectation>> load_expectations(const fs::path& course_dir,
                                                                  const std::string& file) {
  std::error_code error;
  if (!fs::is_directory(course_dir, error)) {
    std::cerr << kName << ": --course " << course_dir.string()
              << (fs::exists(course_dir, error) ? " is not a directory" : ": no such directory") << "\n";
    return std::nullopt;
  }
  auto text = read_file(file);
  if (!text || fs::is_directory(file, error)) {
    print_input_errors(
        {{file, "",
          fs::exists(file, error) ? "cannot read the expectations file" : "no such expectations file"}});
    return std::nullopt;
  }
  auto expectations = course::parse_expectations(*text, file);
  if (!expectations) {
    print_input_errors(expectations.error());
    return std::nullopt;
  }
  if (auto missing = course::check_files(*expectations, course_dir, file); !missing.empty()) {
    print_input_errors(missing);
    return std::nullopt;
  }
  return std::move(*expectations);
}

grading::GradeJob job_for(const course::Expectation& expectation, std::string submission,
                          const GradeOptions& options, const std::string& queue, std::size_t index) {
  grading::GradeJob job;
  job.queue = queue;
  job.submission_id = fmt::format("course-{}", index + 1);
  job.grader = expectation.grader;
  job.grader_payload = {{"grader", expectation.grader}};
  job.student_response = std::move(submission);
  job.lang = options.lang;
  job.hide_output = options.hide_output;
  job.seed = options.seed.value_or(1);  // the seed expected.json was computed with, as in scripts/demo.py
  return job;
}

}  // namespace

int run_grade_course(const GradeOptions& given, std::ostream& out) {
  if (given.jobs < 1 || given.jobs > kMaxJobs) {
    std::cerr << kName << ": -j " << given.jobs << ": must be between 1 and " << kMaxJobs << "\n";
    return 2;
  }
  GradeOptions options = given;
  options.grader_root = options.course;  // the course directory is the grader root, whatever the queue says
  if (options.watcher_id.empty()) options.watcher_id = default_watcher_id();
  const std::string file = options.expectations.empty()
                               ? (fs::path(options.course) / "expected.json").string()
                               : options.expectations;
  auto expectations = load_expectations(options.course, file);
  if (!expectations) return 2;
  auto setup = setup_for(options);
  if (!setup) {
    std::cerr << kName << ": " << setup.error() << "\n";
    return 2;
  }
  for (const auto& warning : setup->warnings)
    std::cerr << kName << ": warning: " << warning.to_string() << "\n";
  const auto& queue = setup->queue;
  const course::RunInfo info_base{.course = options.course,
                                  .expectations = file,
                                  .image = queue.image,
                                  .queue = options.config_dir.empty() ? "" : options.queue,
                                  .jobs = static_cast<unsigned>(std::min<std::size_t>(
                                      static_cast<std::size_t>(options.jobs), expectations->size()))};

  std::vector<course::Row> rows;
  for (const auto& expectation : *expectations) rows.push_back({.expectation = expectation});
  const auto started = Clock::now();
  bool interrupted = false;
  {
    // Ctrl-C: no new gradings; the containers in flight are removed (their graders then fail and clean
    // up their job directories), by this run's own watcher label so nobody else's are touched.
    InterruptWatch watch(kName, [&] { remove_run_containers(setup->docker_socket, queue.watcher_id); });
    std::optional<grading::ImageContract> contract;
    try {
      docker::Client engine(setup->docker_socket);
      contract = grading::queue_contract(
          queue, engine.ensure_image(queue.image, setup->pull_policy, setup->registry_auth_file));
    } catch (const std::exception& failure) {
      std::cerr << kName << ": could not grade: " << failure.what() << "\n";
      return 3;
    }
    Progress progress(progress_mode(options.progress), rows.size());
    std::atomic<std::size_t> next{0};
    const auto worker = [&] {
      std::optional<docker::Client> engine;
      std::optional<grading::ContainerGrader> grader;
      while (!watch.interrupted()) {
        const std::size_t index = next++;
        if (index >= rows.size()) break;
        auto& row = rows[index];
        const auto begun = Clock::now();
        try {
          if (!grader) grader.emplace(engine.emplace(setup->docker_socket), queue, *contract);
          auto submission = read_file((fs::path(options.course) / row.expectation.key).string());
          if (!submission) throw grading::GradingUnavailable(submission.error());
          const auto report =
              grader->grade(job_for(row.expectation, std::move(*submission), options, queue.queue, index));
          row = course::graded_row(row.expectation, report.outcome.result.score,
                                   std::string(grading::verdict_label(report.outcome.verdict)), since(begun));
        } catch (const std::exception& failure) {
          row = course::failed_row(
              row.expectation,
              watch.interrupted() ? course::Status::Interrupted : course::Status::Unavailable, failure.what(),
              since(begun));
        }
        progress.finished(row);
      }
    };
    std::vector<std::thread> workers;
    for (unsigned i = 0; i < info_base.jobs; ++i) workers.emplace_back(worker);
    for (auto& thread : workers) thread.join();
    progress.end();
    interrupted = watch.interrupted();
  }
  auto info = info_base;
  info.interrupted = interrupted;
  info.elapsed = since(started);
  const int code = course::exit_code(course::summarize(rows), interrupted);
  if (options.json) {
    out << course::render_json(rows, info).dump(2) << "\n";
    std::cerr << kName << ": " << course::summary_line(rows, info) << "\n";
  } else {
    const bool color = options.color == "always" || (options.color == "auto" && isatty(STDOUT_FILENO));
    out << course::render_table(rows, info, color);
  }
  out.flush();
  return code;
}

}  // namespace xqw::cli
