#include "grading/verdict.hpp"

#include <algorithm>
#include <array>
#include <cstdio>

#include "grading/sanitize.hpp"

namespace xqw::grading {
namespace {

constexpr std::array<std::pair<Verdict, std::string_view>, 12> kLabels{{
    {Verdict::Graded, "graded"},
    {Verdict::Timeout, "timeout"},
    {Verdict::OutOfMemory, "out_of_memory"},
    {Verdict::PidsLimit, "pids_limit"},
    {Verdict::OutputLimit, "output_too_large"},
    {Verdict::GraderError, "grader_error"},
    {Verdict::InvalidOutput, "invalid_output"},
    {Verdict::SubmissionTooLarge, "submission_too_large"},
    {Verdict::GraderNotFound, "grader_not_found"},
    {Verdict::InfrastructureError, "infrastructure"},
    {Verdict::FilesTooLarge, "files_too_large"},
    {Verdict::FileUnavailable, "file_unavailable"},
}};

// How much of stderr a staff reason quotes (its end, where tracebacks finish).
constexpr std::size_t kStderrTailBytes = 2048;

// "1.50" -> "1.5", "256.00" -> "256".
std::string decimal(double value) {
  std::array<char, 64> buffer{};
  std::snprintf(buffer.data(), buffer.size(), "%.2f", value);
  std::string text(buffer.data());
  text.erase(text.find_last_not_of('0') + 1);
  if (text.back() == '.') text.pop_back();
  return text;
}

std::string format_unsigned_bytes(std::uint64_t bytes) {
  static constexpr std::array<std::string_view, 4> kUnits{"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
  double value = static_cast<double>(bytes) / 1024.0;
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  return decimal(value) + " " + std::string(kUnits[unit]);
}

std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// The queue limit a verdict is about, in words; empty when the verdict has none or it is not known.
std::string limit_in_words(Verdict verdict, const LimitsForMessages& limits, bool stderr_over_cap) {
  auto bytes_if_known = [](std::int64_t bytes) { return bytes > 0 ? format_bytes(bytes) : std::string(); };
  switch (verdict) {
    case Verdict::Timeout:
      return limits.timeout.count() > 0 ? format_duration(limits.timeout) : "";
    case Verdict::OutOfMemory:
      return bytes_if_known(limits.memory_bytes);
    case Verdict::PidsLimit:
      return limits.pids > 0 ? std::to_string(limits.pids) : "";
    case Verdict::OutputLimit:
      return bytes_if_known(stderr_over_cap ? limits.stderr_bytes : limits.stdout_bytes);
    case Verdict::SubmissionTooLarge:
      return bytes_if_known(limits.submission_bytes);
    default:
      return "";
  }
}

std::string staff_debug(std::string_view detail) {
  return "There was a problem running your code (Staff debug: " + std::string(detail) + ").";
}

std::string default_message(Verdict verdict, const std::string& limit, std::string_view detail) {
  const bool known = !limit.empty();
  switch (verdict) {
    case Verdict::Timeout:
      return known ? "Your code did not finish within " + limit + "." : "Your code did not finish in time.";
    case Verdict::OutOfMemory:
      return known ? "Your code used more than " + limit + " of memory." : "Your code used too much memory.";
    case Verdict::PidsLimit:
      return known ? "Your code started too many processes (limit: " + limit + ")."
                   : "Your code started too many processes.";
    case Verdict::OutputLimit:
      return known ? "Your code printed more than " + limit + "." : "Your code printed too much output.";
    case Verdict::SubmissionTooLarge:
      return known ? "Your submission is larger than the " + limit + " this problem accepts."
                   : "Your submission is too large for this problem.";
    case Verdict::GraderError:
      return staff_debug(detail.empty() ? "grader error" : detail);
    case Verdict::InvalidOutput:
      return staff_debug("invalid grader output");
    case Verdict::GraderNotFound:
      return staff_debug("grader not found") + " Please contact the course staff.";
    case Verdict::InfrastructureError:
      return "There was a problem grading your submission (Staff debug: infrastructure error). "
             "Please try again later.";
    case Verdict::FilesTooLarge:
      return known ? "Your files are larger than the " + limit + " this problem accepts."
                   : "Your files are larger than this problem accepts.";
    case Verdict::FileUnavailable:
      return "A file you uploaded could not be retrieved for grading. Please submit again.";
    case Verdict::Graded:
      return "";
  }
  return "";
}

Outcome failure(Verdict verdict, const std::string& limit, std::string_view detail,
                const MessageOverrides& overrides, std::string staff_reason) {
  const auto custom = overrides.find(std::string(verdict_label(verdict)));
  std::string message = (custom != overrides.end() && !custom->second.empty())
                            ? replace_all(custom->second, "{limit}", limit)
                            : default_message(verdict, limit, detail);
  Outcome outcome;
  outcome.verdict = verdict;
  outcome.result.correct = false;
  outcome.result.score = 0.0;
  outcome.result.errors.push_back(std::move(message));
  outcome.staff_reason = std::move(staff_reason);
  return outcome;
}

std::string with_stderr_tail(std::string reason, const RunSignals& signals) {
  const std::string_view err = signals.stderr_bytes;
  if (err.empty()) return reason;
  std::size_t start = err.size() > kStderrTailBytes ? err.size() - kStderrTailBytes : 0;
  while (start < err.size() && (static_cast<unsigned char>(err[start]) & 0xC0) == 0x80) ++start;
  reason += start > 0 || signals.stderr_truncated ? "; stderr (excerpt): " : "; stderr: ";
  reason += err.substr(start);
  return reason;
}

}  // namespace

std::string_view verdict_label(Verdict verdict) {
  for (const auto& [candidate, label] : kLabels) {
    if (candidate == verdict) return label;
  }
  return "unknown";
}

std::optional<Verdict> verdict_from_label(std::string_view label) {
  for (const auto& [verdict, candidate] : kLabels) {
    if (candidate == label) return verdict;
  }
  return std::nullopt;
}

Outcome decide(const RunSignals& signals, const LimitsForMessages& limits, const MessageOverrides& overrides,
               const ParseLimits& parse_limits) {
  auto fail = [&](Verdict verdict, std::string_view detail, const std::string& reason,
                  bool stderr_cap = false) {
    return failure(verdict, limit_in_words(verdict, limits, stderr_cap), detail, overrides,
                   with_stderr_tail(reason, signals));
  };
  if (signals.deadline_hit) {
    return fail(
        Verdict::Timeout, "",
        "wall-clock deadline of " + format_duration(limits.timeout) + " reached; the container was killed");
  }
  if (signals.oom_killed) {
    return fail(Verdict::OutOfMemory, "",
                "the container was OOM-killed (memory limit " + format_bytes(limits.memory_bytes) + ")");
  }
  if (signals.pids_exhausted) {
    return fail(Verdict::PidsLimit, "",
                "the process limit (" + std::to_string(limits.pids) + ") was reached");
  }
  if (signals.stdout_truncated || signals.stderr_truncated) {
    const bool stderr_over = !signals.stdout_truncated;
    const std::string stream = stderr_over ? "stderr" : "stdout";
    const std::int64_t cap = stderr_over ? limits.stderr_bytes : limits.stdout_bytes;
    return fail(Verdict::OutputLimit, "", stream + " exceeded its " + format_bytes(cap) + " cap",
                stderr_over);
  }
  if (!signals.exit_code) return fail(Verdict::InfrastructureError, "", "the engine reported no exit code");
  if (*signals.exit_code != 0) {
    const std::string code = "exit code " + std::to_string(*signals.exit_code);
    return fail(Verdict::GraderError, code, "the grader failed with " + code);
  }
  ParsedOutput parsed = parse_grader_output(signals.stdout_bytes, parse_limits);
  if (!parsed) {
    return fail(Verdict::InvalidOutput, "",
                "exit code 0 but stdout is not a valid result: " + parsed.error().reason);
  }
  Outcome outcome;
  outcome.verdict = Verdict::Graded;
  outcome.result = std::move(*parsed);
  return outcome;
}

Outcome failure_outcome(Verdict verdict, const LimitsForMessages& limits, const MessageOverrides& overrides,
                        std::string staff_reason) {
  return failure(verdict, limit_in_words(verdict, limits, false), "", overrides, std::move(staff_reason));
}

namespace {

// A file name as students see it in a message: as uploaded, cut to a readable length.
std::string quoted_name(std::string_view name) {
  constexpr std::size_t kShown = 80;
  std::string shown(name.substr(0, kShown));
  while (!shown.empty() && name.size() > kShown && (static_cast<unsigned char>(shown.back()) & 0xC0) == 0x80) {
    shown.pop_back();  // never half a UTF-8 character
  }
  if (name.size() > kShown) shown += "...";
  return "\"" + shown + "\"";
}

Outcome worded_failure(Verdict verdict, std::string message, const std::string& limit,
                       const MessageOverrides& overrides, std::string staff_reason) {
  Outcome outcome = failure(verdict, limit, "", overrides, std::move(staff_reason));
  const auto custom = overrides.find(std::string(verdict_label(verdict)));
  if (custom == overrides.end() || custom->second.empty()) outcome.result.errors.front() = std::move(message);
  return outcome;
}

}  // namespace

Outcome files_too_large(FileCap cap, std::int64_t limit, std::int64_t actual, std::string_view file_name,
                        const MessageOverrides& overrides, std::string staff_reason) {
  switch (cap) {
    case FileCap::Count: {
      const std::string files = std::to_string(limit) + (limit == 1 ? " file" : " files");
      const std::string message =
          limit == 0 ? "This problem does not accept uploaded files; please submit your answer as text."
                     : "You submitted " + std::to_string(actual) + " files; this problem accepts at most " + files + ".";
      return worded_failure(Verdict::FilesTooLarge, message, files, overrides, std::move(staff_reason));
    }
    case FileCap::Size:
      return worded_failure(Verdict::FilesTooLarge,
                            "Your file " + quoted_name(file_name) + " is larger than the " + format_bytes(limit) +
                                " this problem accepts for each file.",
                            format_bytes(limit) + " per file", overrides, std::move(staff_reason));
    case FileCap::Total:
      break;
  }
  return worded_failure(Verdict::FilesTooLarge,
                        "Your files together are larger than the " + format_bytes(limit) + " this problem accepts.",
                        format_bytes(limit) + " in total", overrides, std::move(staff_reason));
}

Outcome file_unavailable(FileProblem problem, std::string_view file_name, const MessageOverrides& overrides,
                         std::string staff_reason) {
  const std::string file = "Your file " + quoted_name(file_name) + " could not be retrieved for grading";
  std::string message;
  switch (problem) {
    case FileProblem::Missing:
      message = file + ". Please submit it again.";
      break;
    case FileProblem::NotAllowed:
      message = file + " (Staff debug: file location not allowed). Please contact the course staff.";
      break;
    case FileProblem::Unreachable:
      message = file + " just now. Please submit again in a few minutes.";
      break;
  }
  return worded_failure(Verdict::FileUnavailable, std::move(message), "", overrides, std::move(staff_reason));
}

bool stderr_shows_process_limit(std::string_view stderr_bytes) {
  std::string text(stderr_bytes);
  std::transform(text.begin(), text.end(), text.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
  auto has = [&](std::string_view needle) { return text.find(needle) != std::string::npos; };
  if (has("can't start new thread") || has("cannot start new thread")) return true;
  return has("resource temporarily unavailable") &&
         (has("fork") || has("thread") || has("spawn") || has("clone"));
}

std::string format_bytes(std::int64_t bytes) {
  if (bytes >= 0) return format_unsigned_bytes(static_cast<std::uint64_t>(bytes));
  return "-" + format_unsigned_bytes(0 - static_cast<std::uint64_t>(bytes));
}

std::string format_duration(std::chrono::milliseconds duration) {
  const std::int64_t ms = duration.count();
  if (ms < 0) return "-" + format_duration(std::chrono::milliseconds(0 - ms));
  if (ms < 1000) return std::to_string(ms) + " ms";
  if (ms % 60000 == 0) return std::to_string(ms / 60000) + " min";
  return decimal(static_cast<double>(ms) / 1000.0) + " s";
}

}  // namespace xqw::grading
