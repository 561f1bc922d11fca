#include "cli/course.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>

namespace xqw::cli::course {
namespace fs = std::filesystem;

std::string InputError::to_string() const {
  return file + ": " + (key.empty() ? "" : "key \"" + key + "\": ") + reason;
}

std::expected<std::string, std::string> grader_for(std::string_view key) {
  std::vector<std::string> parts;
  for (const auto& part : fs::path(key)) parts.push_back(part.string());
  // The last `submissions` with a file after it: the problem directory is everything before it.
  for (std::size_t i = parts.size(); i-- > 0;) {
    if (parts[i] != "submissions" || i + 1 == parts.size()) continue;
    std::string grader;
    for (std::size_t j = 0; j < i; ++j) grader += parts[j] + "/";
    return grader + "grader.py";
  }
  return std::unexpected(
      std::string("is not in a problem's submissions directory (expected PROBLEM/submissions/FILE, graded by "
                  "PROBLEM/grader.py)"));
}

namespace {

std::optional<std::string> key_problem(const std::string& key) {
  if (key.empty()) return "is empty";
  const fs::path path(key);
  if (path.is_absolute()) return "must be relative to the course directory";
  for (const auto& part : path) {
    if (part == "..") return "must not contain '..'";
  }
  auto grader = grader_for(key);
  if (!grader) return grader.error();
  return std::nullopt;
}

// "[json.exception.parse_error.101] parse error at line 2, ..." -> "parse error at line 2, ...".
std::string without_exception_tag(std::string what) {
  if (!what.empty() && what.front() == '[') {
    const auto end = what.find("] ");
    if (end != std::string::npos) what.erase(0, end + 2);
  }
  return what;
}

double seconds(std::chrono::milliseconds time) { return static_cast<double>(time.count()) / 1000.0; }

std::size_t count_digits(std::size_t n) { return std::to_string(n).size(); }

}  // namespace

std::expected<std::vector<Expectation>, std::vector<InputError>> parse_expectations(std::string_view text,
                                                                                    const std::string& file) {
  nlohmann::json document;
  try {
    document = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& error) {
    return std::unexpected(
        std::vector<InputError>{{file, "", "is not JSON: " + without_exception_tag(error.what())}});
  }
  if (!document.is_object()) {
    return std::unexpected(std::vector<InputError>{
        {file, "",
         std::string("must be a JSON object mapping each sample submission to its expected score, not ") +
             (document.is_array() ? "an " : "a ") + document.type_name()}});
  }
  if (document.empty()) return std::unexpected(std::vector<InputError>{{file, "", "lists no submissions"}});
  std::vector<Expectation> expectations;
  std::vector<InputError> errors;
  for (const auto& [key, value] : document.items()) {
    if (auto problem = key_problem(key)) {
      errors.push_back({file, key, *problem});
      continue;
    }
    if (!value.is_number()) {
      errors.push_back({file, key,
                        std::string("the expected score must be a number, not ") +
                            (value.is_array() || value.is_object() ? "an " : "a ") + value.type_name() +
                            " (" + value.dump() + ")"});
      continue;
    }
    const double score = value.get<double>();
    if (!std::isfinite(score) || score < 0 || score > 1) {
      errors.push_back({file, key, "the expected score " + value.dump() + " is outside 0..1"});
      continue;
    }
    expectations.push_back({.key = key, .grader = *grader_for(key), .score = score});
  }
  if (!errors.empty()) return std::unexpected(std::move(errors));
  std::sort(expectations.begin(), expectations.end(),
            [](const auto& a, const auto& b) { return a.key < b.key; });
  return expectations;
}

std::vector<InputError> check_files(const std::vector<Expectation>& expectations, const fs::path& course,
                                    const std::string& file) {
  std::vector<InputError> errors;
  for (const auto& expectation : expectations) {
    std::error_code error;
    const fs::path submission = course / expectation.key;
    const auto status = fs::status(submission, error);
    if (!fs::exists(status)) {
      errors.push_back({file, expectation.key, "no such file " + submission.string()});
    } else if (!fs::is_regular_file(status)) {
      errors.push_back({file, expectation.key, submission.string() + " is not a regular file"});
    } else if (!fs::is_regular_file(course / expectation.grader, error)) {
      errors.push_back({file, expectation.key,
                        "its grader " + (course / expectation.grader).string() + " does not exist"});
    }
  }
  return errors;
}

bool matches(double score, double expected) { return std::fabs(score - expected) <= kScoreTolerance; }

std::string_view status_label(Status status) {
  switch (status) {
    case Status::NotRun:
      return "not run";
    case Status::Ok:
      return "ok";
    case Status::Mismatch:
      return "MISMATCH";
    case Status::Unavailable:
      return "unavailable";
    case Status::Interrupted:
      return "interrupted";
  }
  return "unknown";
}

Row graded_row(Expectation expectation, double score, std::string verdict, std::chrono::milliseconds time) {
  const Status status = matches(score, expectation.score) ? Status::Ok : Status::Mismatch;
  return {.expectation = std::move(expectation),
          .status = status,
          .score = score,
          .verdict = std::move(verdict),
          .time = time};
}

Row failed_row(Expectation expectation, Status status, std::string error, std::chrono::milliseconds time) {
  return {.expectation = std::move(expectation), .status = status, .error = std::move(error), .time = time};
}

Summary summarize(const std::vector<Row>& rows) {
  Summary summary{.total = rows.size()};
  for (const auto& row : rows) {
    switch (row.status) {
      case Status::Ok:
        ++summary.ok;
        break;
      case Status::Mismatch:
        ++summary.mismatches;
        break;
      case Status::Unavailable:
        ++summary.unavailable;
        break;
      case Status::Interrupted:
        ++summary.interrupted;
        break;
      case Status::NotRun:
        ++summary.not_run;
        break;
    }
  }
  return summary;
}

int exit_code(const Summary& summary, bool interrupted) {
  if (interrupted) return 130;
  if (summary.unavailable > 0 || summary.interrupted > 0 || summary.not_run > 0) return 3;
  if (summary.mismatches > 0) return 1;
  return 0;
}

std::string format_score(double score) { return fmt::format("{:.6g}", score); }

std::string summary_line(const std::vector<Row>& rows, const RunInfo& run) {
  const auto summary = summarize(rows);
  std::string line =
      fmt::format("{} submission{}: {} ok", summary.total, summary.total == 1 ? "" : "s", summary.ok);
  if (summary.mismatches) line += fmt::format(", {} MISMATCH", summary.mismatches);
  if (summary.unavailable) line += fmt::format(", {} could not be graded", summary.unavailable);
  if (run.interrupted) {
    line += fmt::format(", interrupted ({} not graded)", summary.interrupted + summary.not_run);
  }
  return line + fmt::format(" in {:.1f} s with {} at once", seconds(run.elapsed), run.jobs);
}

std::string render_table(const std::vector<Row>& rows, const RunInfo& run, bool color) {
  const std::vector<std::string> header{"submission", "score", "expected", "verdict", "result", "time"};
  std::vector<std::vector<std::string>> cells;
  for (const auto& row : rows) {
    cells.push_back({row.expectation.key, row.score ? format_score(*row.score) : "-",
                     format_score(row.expectation.score), row.verdict.empty() ? "-" : row.verdict,
                     std::string(status_label(row.status)),
                     row.status == Status::NotRun ? "-" : fmt::format("{:.2f} s", seconds(row.time))});
  }
  std::vector<std::size_t> widths(header.size());
  for (std::size_t i = 0; i < header.size(); ++i) {
    widths[i] = header[i].size();
    for (const auto& line : cells) widths[i] = std::max(widths[i], line[i].size());
  }
  constexpr std::size_t kResult = 4;
  const auto paint = [color](const std::string& padded, Status status) {
    if (!color) return padded;
    const char* code = status == Status::Ok ? "32" : status == Status::Mismatch ? "1;31" : "33";
    return std::string("\033[") + code + "m" + padded + "\033[0m";
  };
  const auto format_line = [&](const std::vector<std::string>& line, std::optional<Status> status) {
    std::string text;
    for (std::size_t i = 0; i < line.size(); ++i) {
      const bool numeric = i == 1 || i == 2 || i == 5;
      std::string cell =
          numeric ? fmt::format("{:>{}}", line[i], widths[i]) : fmt::format("{:<{}}", line[i], widths[i]);
      if (i == kResult && status) cell = paint(cell, *status);
      text += cell + (i + 1 < line.size() ? "  " : "");
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    return text + "\n";
  };
  std::string out = format_line(header, std::nullopt);
  std::vector<std::string> rules;
  for (const auto width : widths) rules.emplace_back(width, '-');
  out += format_line(rules, std::nullopt);
  for (std::size_t i = 0; i < rows.size(); ++i) out += format_line(cells[i], rows[i].status);
  for (const auto& row : rows) {
    if (row.status == Status::Mismatch) {
      out += fmt::format("MISMATCH {}: scored {}, expected {} (verdict {})\n", row.expectation.key,
                         format_score(*row.score), format_score(row.expectation.score), row.verdict);
    } else if (row.status == Status::Unavailable || row.status == Status::Interrupted) {
      out += fmt::format("{} {}: {}\n", status_label(row.status), row.expectation.key, row.error);
    }
  }
  return out + summary_line(rows, run) + "\n";
}

nlohmann::json render_json(const std::vector<Row>& rows, const RunInfo& run) {
  nlohmann::json submissions = nlohmann::json::array();
  for (const auto& row : rows) {
    nlohmann::json entry = {{"submission", row.expectation.key},
                            {"grader", row.expectation.grader},
                            {"expected", row.expectation.score},
                            {"score", row.score ? nlohmann::json(*row.score) : nlohmann::json()},
                            {"verdict", row.verdict.empty() ? nlohmann::json() : nlohmann::json(row.verdict)},
                            {"result", std::string(status_label(row.status))},
                            {"ok", row.status == Status::Ok},
                            {"seconds", seconds(row.time)}};
    if (!row.error.empty()) entry["error"] = row.error;
    submissions.push_back(std::move(entry));
  }
  const auto summary = summarize(rows);
  return {{"course", run.course},
          {"expectations", run.expectations},
          {"image", run.image},
          {"queue", run.queue.empty() ? nlohmann::json() : nlohmann::json(run.queue)},
          {"jobs", run.jobs},
          {"interrupted", run.interrupted},
          {"exit_code", exit_code(summary, run.interrupted)},
          {"seconds", seconds(run.elapsed)},
          {"summary",
           {{"total", summary.total},
            {"ok", summary.ok},
            {"mismatches", summary.mismatches},
            {"unavailable", summary.unavailable},
            {"interrupted", summary.interrupted},
            {"not_run", summary.not_run}}},
          {"submissions", std::move(submissions)}};
}

std::string progress_line(const Row& row, std::size_t done, std::size_t total) {
  const auto counter = fmt::format("[{:>{}}/{}]", done, count_digits(total), total);
  if (!row.score) {
    return fmt::format("{} {:<11} {}: {}", counter, status_label(row.status), row.expectation.key, row.error);
  }
  return fmt::format("{} {:<11} {}  score {}, expected {}, {} in {:.2f} s", counter, status_label(row.status),
                     row.expectation.key, format_score(*row.score), format_score(row.expectation.score),
                     row.verdict, seconds(row.time));
}

std::string progress_bar(std::size_t done, std::size_t total, std::size_t mismatches, std::string_view last,
                         std::size_t width) {
  constexpr std::size_t kBar = 24;
  const std::size_t filled = total == 0 ? kBar : std::min(kBar, done * kBar / total);
  std::string line = "[" + std::string(filled, '#') + std::string(kBar - filled, '-') + "] " +
                     fmt::format("{:>{}}/{}", done, count_digits(total), total);
  if (mismatches) line += fmt::format("  {} mismatch{}", mismatches, mismatches == 1 ? "" : "es");
  if (!last.empty()) line += "  " + std::string(last);
  if (line.size() > width) line.resize(width);
  return line;
}

}  // namespace xqw::cli::course
