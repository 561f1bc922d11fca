// grading/verdict: turning what the engine observed about one grader run into a verdict, the grade to
// post and the student's message (limits in words, per-queue overrides); the staff reason for logs.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
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
inline std::optional<Verdict> verdict_from_label(std::string_view label) {
  return verdicts::from_label(label);
}

// What was observed about one container run: raw facts only, collected by the container grader; what
// they mean is decide()'s alone.
struct RunFacts {
  bool deadline_hit = false;        // the deadline passed and the watcher killed the container
  bool stdout_truncated = false;    // stdout reached its cap and the watcher killed the container
  bool stderr_truncated = false;    // likewise for stderr
  bool engine_oom_flag = false;     // the engine's State.OOMKilled
  std::optional<int> exit_code;     // PID 1's exit status; nullopt: the engine never reported one
  bool started_before_job = false;  // the container was started ahead of its job and sent it by signal
  std::optional<std::int64_t> refused_forks;  // forks the pids cgroup refused, as the image reported it
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

// True when the watcher ended the run itself (deadline or an output cap): its kill explains the exit.
bool stopped_by_watcher(const RunFacts& facts);

// Facts that say nothing about the submission: grade it again later (never posted as a zero).
struct GradeAgain {
  std::string reason;  // staff-facing
};

// The one place a run's facts become a verdict. Not the student's doing, so GradeAgain: PID 1 ended by
// SIGTERM the watcher did not send (the engine stopping it: daemon shutdown, `docker stop`), or a
// container started ahead ending with the image's "no job arrived" status and no output. Then, in order:
// deadline → Timeout; the engine's OOM flag, or a SIGKILL the watcher did not send (PID 1 cannot be
// SIGKILLed from inside its PID namespace: the kernel's OOM killer did it) → OutOfMemory; forks refused
// by the pids cgroup, or stderr showing a process could not be created → PidsLimit; stdout or stderr over
// its cap → OutputLimit; no exit code → InfrastructureError; another exit code than 0 → GraderError;
// exit 0 with a valid result → Graded, with anything else → InvalidOutput.
std::expected<Outcome, GradeAgain> decide(const RunFacts& facts, const LimitsForMessages& limits,
                                          const MessageOverrides& overrides,
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
