// grading/verdict: turning what the engine observed about one grader run into a verdict, the grade to
// post and the student's message (limits in words, per-queue overrides); the staff reason for logs.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "grading/result.hpp"
#include "verdicts/verdicts.hpp"

namespace xqw::grading {

// How a grading ended: the registry's type (verdicts/verdicts.hpp holds each one's label, whether a
// queue may reword it, the limit it quotes and its default student text).
using Verdict = verdicts::Verdict;

// The metric label and the key of a message override (config::kMessageVerdicts): the registry's label.
inline std::string_view verdict_label(Verdict verdict) { return verdicts::label(verdict); }
// The inverse, for validating override keys in configuration.
inline std::optional<Verdict> verdict_from_label(std::string_view label) { return verdicts::from_label(label); }

// What the engine and the watcher observed about one container run.
struct RunSignals {
  bool deadline_hit = false;
  bool oom_killed = false;
  bool pids_exhausted = false;  // set by the caller, e.g. from pids.events or stderr_shows_process_limit
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  std::optional<int> exit_code;  // nullopt: the engine never reported one
  std::string stdout_bytes;
  std::string stderr_bytes;  // staff-only: never shown to students
};

// The queue's limits that verdicts quote in student messages (the registry names which; config's
// limits table words them: "20 s", "256 MiB").
struct LimitsForMessages {
  std::int64_t memory_bytes = 0;
  std::chrono::milliseconds timeout{0};
  std::int64_t stdout_bytes = 0;
  std::int64_t stderr_bytes = 0;
  std::int64_t pids = 0;
  std::int64_t submission_bytes = 0;
};

// Per-verdict student messages keyed by verdict_label; "{limit}" becomes the human-formatted limit.
using MessageOverrides = std::map<std::string, std::string>;

struct Outcome {
  Verdict verdict = Verdict::InfrastructureError;
  // What to post: for Graded the grader's result; otherwise correct=false, score=0 and the student
  // message as its only error (render_html shows it with status ERROR).
  GraderResult result;
  std::string staff_reason;  // for logs; may quote stderr; empty when Graded
};

// Precedence follows the engine's own signals: deadline → Timeout, OOM-killed → OutOfMemory, pids
// exhausted → PidsLimit, stdout or stderr over its cap → OutputLimit; then exit 0 with a valid result
// → Graded, exit 0 with anything else → InvalidOutput, another exit code → GraderError, no exit code
// at all → InfrastructureError.
Outcome decide(const RunSignals& signals, const LimitsForMessages& limits, const MessageOverrides& overrides,
               const ParseLimits& parse_limits = {});

// The outcome for a verdict reached without a run (SubmissionTooLarge, GraderNotFound,
// InfrastructureError) or any other failure the caller detects itself.
Outcome failure_outcome(Verdict verdict, const LimitsForMessages& limits, const MessageOverrides& overrides,
                        std::string staff_reason);

// Which of a queue's file caps a submission's uploaded files went over.
enum class FileCap {
  Count,  // more files than files.max_count
  Size,   // one file over files.max_size
  Total,  // all files together over files.max_total
};
// FilesTooLarge, worded for the cap: `limit` is the cap (files or bytes), `actual` the number of files
// (Count), `file_name` the file over max_size (Size). A queue's files_too_large message replaces the
// default; its {limit} becomes "10 files", "1 MiB per file" or "4 MiB in total".
Outcome files_too_large(FileCap cap, std::int64_t limit, std::int64_t actual, std::string_view file_name,
                        const MessageOverrides& overrides, std::string staff_reason);

// Why an uploaded file could not be had.
enum class FileProblem {
  Missing,      // the server answered that it is not there (or refused it): submitting again may help
  NotAllowed,   // its URL is unusable or on a host the queue does not allow: the staff must act
  Unreachable,  // no answer or a server error, still so after retries: try again later
};
// FileUnavailable, worded for the problem, naming the file as uploaded.
Outcome file_unavailable(FileProblem problem, std::string_view file_name, const MessageOverrides& overrides,
                         std::string staff_reason);

// True when stderr shows a process or thread could not be created for lack of resources (what hitting
// the pids limit looks like from inside). Student code writes stderr too, so this only ever helps
// explain a failure; it cannot turn one into a pass.
bool stderr_shows_process_limit(std::string_view stderr_bytes);

// Limits in words for students and logs ("256 MiB", "20 s"): the one formatter, in verdicts/.
using verdicts::format_bytes;
using verdicts::format_duration;

}  // namespace xqw::grading
