#include "grading/verdict.hpp"

#include <algorithm>

#include "config/config.hpp"
#include "grading/contract.hpp"
#include "grading/utf8_text.hpp"

namespace xqw::grading {
namespace {

// How much of stderr a staff reason quotes (its end, where tracebacks finish).
constexpr std::size_t kStderrTailBytes = 2048;

// The queue limit a verdict quotes (its registry row names it), in words; empty when it quotes none or
// the limit is not known. LimitsForMessages carries every limit a verdict quotes.
std::string limit_in_words(Verdict verdict, const LimitsForMessages& limits, bool stderr_over_cap) {
  const auto* info = verdicts::find(verdict);
  if (!info) return "";
  const std::string_view key = stderr_over_cap && info->limit == "stdout" ? "stderr" : info->limit;
  const config::Limits quoted{.memory_bytes = limits.memory_bytes,
                              .pids = limits.pids,
                              .timeout = limits.timeout,
                              .stdout_bytes = limits.stdout_bytes,
                              .stderr_bytes = limits.stderr_bytes,
                              .submission_bytes = limits.submission_bytes};
  return config::quote_limit(quoted, key);
}

Outcome failure(Verdict verdict, const std::string& limit, std::string_view detail,
                const MessageOverrides& overrides, std::string staff_reason) {
  const auto custom = overrides.find(std::string(verdict_label(verdict)));
  std::string message = (custom != overrides.end() && !custom->second.empty())
                            ? verdicts::replace_all(custom->second, "{limit}", limit)
                            : verdicts::student_text(verdict, limit, detail);
  Outcome outcome;
  outcome.verdict = verdict;
  outcome.result.correct = false;
  outcome.result.score = 0.0;
  outcome.result.errors.push_back(std::move(message));
  outcome.staff_reason = std::move(staff_reason);
  return outcome;
}

std::string with_stderr_tail(std::string reason, const RunFacts& signals) {
  const std::string_view err = signals.stderr_bytes;
  if (err.empty()) return reason;
  std::size_t start = err.size() > kStderrTailBytes ? err.size() - kStderrTailBytes : 0;
  while (start < err.size() && (static_cast<unsigned char>(err[start]) & 0xC0) == 0x80) ++start;
  reason += start > 0 || signals.stderr_truncated ? "; stderr (excerpt): " : "; stderr: ";
  reason += err.substr(start);
  return reason;
}

// Exit statuses of PID 1 killed by a signal (128 + the signal's number).
constexpr int kKilledBySigkill = 128 + 9;
constexpr int kStoppedBySigterm = 128 + 15;

// Facts that say the run tells nothing about the submission.
std::optional<GradeAgain> grade_again(const RunFacts& facts) {
  if (stopped_by_watcher(facts)) return std::nullopt;
  // Nothing in a grading container sends its PID 1 SIGTERM: the engine stopping it did.
  if (facts.exit_code == kStoppedBySigterm) {
    return GradeAgain{"the container was stopped from outside (SIGTERM) while grading"};
  }
  if (facts.started_before_job && facts.exit_code == kNoJobArrivedExit && facts.stdout_bytes.empty()) {
    return GradeAgain{"the container stopped waiting before its job arrived"};
  }
  return std::nullopt;
}

std::string pids_reason(const RunFacts& facts, std::int64_t pids) {
  std::string reason = "the process limit (" + std::to_string(pids) + ") was reached";
  if (facts.refused_forks.value_or(0) > 0) {
    reason += " (the pids cgroup refused " + std::to_string(*facts.refused_forks) + " forks)";
  }
  return reason;
}

}  // namespace

bool stopped_by_watcher(const RunFacts& facts) {
  return facts.deadline_hit || facts.stdout_truncated || facts.stderr_truncated;
}

std::expected<Outcome, GradeAgain> decide(const RunFacts& facts, const LimitsForMessages& limits,
                                          const MessageOverrides& overrides,
                                          const ParseLimits& parse_limits) {
  if (auto again = grade_again(facts)) return std::unexpected(std::move(*again));
  auto fail = [&](Verdict verdict, std::string_view detail, const std::string& reason,
                  bool stderr_cap = false) {
    return failure(verdict, limit_in_words(verdict, limits, stderr_cap), detail, overrides,
                   with_stderr_tail(reason, facts));
  };
  if (facts.deadline_hit) {
    return fail(
        Verdict::Timeout, "",
        "wall-clock deadline of " + format_duration(limits.timeout) + " reached; the container was killed");
  }
  if (facts.engine_oom_flag || (!stopped_by_watcher(facts) && facts.exit_code == kKilledBySigkill)) {
    return fail(Verdict::OutOfMemory, "",
                "the container was OOM-killed (memory limit " + format_bytes(limits.memory_bytes) + ")");
  }
  if (facts.refused_forks.value_or(0) > 0 || stderr_shows_process_limit(facts.stderr_bytes)) {
    return fail(Verdict::PidsLimit, "", pids_reason(facts, limits.pids));
  }
  if (facts.stdout_truncated || facts.stderr_truncated) {
    const bool stderr_over = !facts.stdout_truncated;
    const std::string stream = stderr_over ? "stderr" : "stdout";
    const std::int64_t cap = stderr_over ? limits.stderr_bytes : limits.stdout_bytes;
    return fail(Verdict::OutputLimit, "", stream + " exceeded its " + format_bytes(cap) + " cap",
                stderr_over);
  }
  if (!facts.exit_code) return fail(Verdict::InfrastructureError, "", "the engine reported no exit code");
  if (*facts.exit_code != 0) {
    const std::string code = "exit code " + std::to_string(*facts.exit_code);
    return fail(Verdict::GraderError, code, "the grader failed with " + code);
  }
  ParsedOutput parsed = parse_grader_output(facts.stdout_bytes, parse_limits);
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
  while (!shown.empty() && name.size() > kShown &&
         (static_cast<unsigned char>(shown.back()) & 0xC0) == 0x80) {
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
                     : "You submitted " + std::to_string(actual) + " files; this problem accepts at most " +
                           files + ".";
      return worded_failure(Verdict::FilesTooLarge, message, files, overrides, std::move(staff_reason));
    }
    case FileCap::Size:
      return worded_failure(Verdict::FilesTooLarge,
                            "Your file " + quoted_name(file_name) + " is larger than the " +
                                format_bytes(limit) + " this problem accepts for each file.",
                            format_bytes(limit) + " per file", overrides, std::move(staff_reason));
    case FileCap::Total:
      break;
  }
  return worded_failure(
      Verdict::FilesTooLarge,
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

}  // namespace xqw::grading
