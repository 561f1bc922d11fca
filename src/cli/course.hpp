// cli/course: the pure parts of `grade --course` — reading an expectations file, the grader each sample
// submission maps to, comparing scores, and the progress lines, bar, table and JSON report.
#pragma once

#include <chrono>
#include <cstddef>
#include <expected>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xqw::cli::course {

// One sample submission and the score it must get: `"01-average/submissions/right.py": 1.0`.
struct Expectation {
  std::string key;     // as written: the submission's path relative to the course directory
  std::string grader;  // relative to the course directory: grader.py next to its `submissions` directory
  double score = 0;
};

// A bad input: the file, the key it is about (empty: the whole file) and why.
struct InputError {
  std::string file;
  std::string key;
  std::string reason;
  std::string to_string() const;
};

// The grader for a key: `grader.py` in the directory holding the key's `submissions` directory
// (`week1/ex1/submissions/a.py` -> `week1/ex1/grader.py`); an error says why a key has none.
std::expected<std::string, std::string> grader_for(std::string_view key);

// An expectations file's text: one JSON object of key -> score in 0..1. Every problem is reported, not
// only the first. Expectations come back sorted by key.
std::expected<std::vector<Expectation>, std::vector<InputError>> parse_expectations(std::string_view text,
                                                                                    const std::string& file);

// Every key names a regular file under `course`, and its grader exists there.
std::vector<InputError> check_files(const std::vector<Expectation>& expectations,
                                    const std::filesystem::path& course, const std::string& file);

// Scores are compared to within this (expected.json holds repr() of Python floats).
inline constexpr double kScoreTolerance = 1e-6;
bool matches(double score, double expected);

enum class Status {
  NotRun,       // never started (the run was interrupted first)
  Ok,           // graded, score as expected
  Mismatch,     // graded, score differs
  Unavailable,  // could not be graded: the engine, the image or the job directory failed
  Interrupted,  // stopped by Ctrl-C while grading
};
std::string_view status_label(Status status);  // ok, MISMATCH, unavailable, interrupted, not run

struct Row {
  Expectation expectation;
  Status status = Status::NotRun;
  std::optional<double> score;  // set when graded
  std::string verdict;          // verdict label, when graded
  std::string error;            // why it was not graded
  std::chrono::milliseconds time{0};
};

Row graded_row(Expectation expectation, double score, std::string verdict, std::chrono::milliseconds time);
Row failed_row(Expectation expectation, Status status, std::string error, std::chrono::milliseconds time);

struct Summary {
  std::size_t total = 0, ok = 0, mismatches = 0, unavailable = 0, interrupted = 0, not_run = 0;
};
Summary summarize(const std::vector<Row>& rows);
// 130 interrupted (as a shell reports SIGINT), 3 any submission could not be graded, 1 any mismatch, 0.
int exit_code(const Summary& summary, bool interrupted);

// The run around the rows, for the report.
struct RunInfo {
  std::string course;
  std::string expectations;
  std::string image;
  std::string queue;  // empty: --image/--grader-root mode
  unsigned jobs = 1;
  bool interrupted = false;
  std::chrono::milliseconds elapsed{0};
};

// "21 submissions: 20 ok, 1 MISMATCH (a/submissions/x.py) in 12.3 s" and the like.
std::string summary_line(const std::vector<Row>& rows, const RunInfo& run);
// The table course staff read at the end: submission, score, expected, verdict, result, time; the
// summary line under it. `color` paints the result column.
std::string render_table(const std::vector<Row>& rows, const RunInfo& run, bool color);
// The whole report, machine-readable.
nlohmann::json render_json(const std::vector<Row>& rows, const RunInfo& run);

// One line per finished submission, for logs: "[ 3/21] ok        a/submissions/x.py  score 1 ...".
std::string progress_line(const Row& row, std::size_t done, std::size_t total);
// The bar redrawn on a terminal, at most `width` columns:
// "[#######-------]  7/21  1 mismatch  a/submissions/x.py".
std::string progress_bar(std::size_t done, std::size_t total, std::size_t mismatches, std::string_view last,
                         std::size_t width);

// How a score prints: up to six significant digits (1, 0.333333).
std::string format_score(double score);

}  // namespace xqw::cli::course
