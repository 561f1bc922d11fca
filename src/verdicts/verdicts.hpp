// verdicts: the one registry of how a grading can end (label, whether a queue may reword it, the limit it
// quotes, the student's default text) and the one way sizes and durations are written. Depends on nothing.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace xqw::verdicts {

// How one grading ended. Every enumerator has its row in kVerdicts, in this order.
enum class Verdict {
  Graded,
  Timeout,
  OutOfMemory,
  PidsLimit,
  OutputLimit,
  GraderError,
  InvalidOutput,
  SubmissionTooLarge,
  GraderNotFound,
  InfrastructureError,
  FilesTooLarge,    // uploaded files over a queue's files caps; nothing fetched further, nothing run
  FileUnavailable,  // an uploaded file could not be fetched; nothing run
};

struct VerdictInfo {
  Verdict verdict;
  std::string_view label;  // the metric label, the log word, the key of a queue's `messages:` override
  bool overridable;        // a queue's `messages:` may replace the student text (config accepts the key)
  // The queue limit "{limit}" quotes: a `limits:` key ("stdout": stderr's cap when stderr overflowed), or
  // "files" (the `files:` cap that was hit, worded by grading); empty: none.
  std::string_view limit;
  // The default student text: "{limit}" becomes the limit in words, "{detail}" what the caller adds.
  std::string_view text;
  std::string_view text_unquoted;  // when a placeholder of `text` has nothing to fill it; empty: `text`
};

// A new verdict is its enumerator above and its row here (and the tests in verdicts_registry_test.cpp).
inline constexpr std::array kVerdicts = std::to_array<VerdictInfo>({
    {Verdict::Graded, "graded", false, "", "", ""},
    {Verdict::Timeout, "timeout", true, "timeout",  //
     "Your code did not finish within {limit}.", "Your code did not finish in time."},
    {Verdict::OutOfMemory, "out_of_memory", true, "memory",  //
     "Your code used more than {limit} of memory.", "Your code used too much memory."},
    {Verdict::PidsLimit, "pids_limit", true, "pids",  //
     "Your code started too many processes (limit: {limit}).", "Your code started too many processes."},
    {Verdict::OutputLimit, "output_too_large", true, "stdout",  //
     "Your code printed more than {limit}.", "Your code printed too much output."},
    {Verdict::GraderError, "grader_error", true, "",  //
     "There was a problem running your code (Staff debug: {detail}).",
     "There was a problem running your code (Staff debug: grader error)."},
    {Verdict::InvalidOutput, "invalid_output", true, "",  //
     "There was a problem running your code (Staff debug: invalid grader output).", ""},
    {Verdict::SubmissionTooLarge, "submission_too_large", true, "submission",
     "Your submission is larger than the {limit} this problem accepts.",
     "Your submission is too large for this problem."},
    {Verdict::GraderNotFound, "grader_not_found", true, "",
     "There was a problem running your code (Staff debug: grader not found). Please contact the course "
     "staff.",
     ""},
    {Verdict::InfrastructureError, "infrastructure", false, "",
     "There was a problem grading your submission (Staff debug: infrastructure error). Please try again "
     "later.",
     ""},
    {Verdict::FilesTooLarge, "files_too_large", true, "files",  //
     "Your files are larger than the {limit} this problem accepts.",
     "Your files are larger than this problem accepts."},
    {Verdict::FileUnavailable, "file_unavailable", true, "",  //
     "A file you uploaded could not be retrieved for grading. Please submit again.", ""},
});

namespace detail {
constexpr bool rows_follow_the_enum() {
  for (std::size_t i = 0; i < kVerdicts.size(); ++i) {
    if (static_cast<std::size_t>(kVerdicts[i].verdict) != i) return false;
  }
  return true;
}
constexpr bool labels_are_unique() {
  for (std::size_t i = 0; i < kVerdicts.size(); ++i) {
    for (std::size_t j = i + 1; j < kVerdicts.size(); ++j) {
      if (kVerdicts[i].label == kVerdicts[j].label) return false;
    }
  }
  return true;
}
}  // namespace detail
static_assert(detail::rows_follow_the_enum(), "kVerdicts: one row per Verdict, in the enum's order");
static_assert(detail::labels_are_unique(), "kVerdicts: every label once");

// The row of `verdict`; nullptr for a value outside the enum.
constexpr const VerdictInfo* find(Verdict verdict) {
  const auto index = static_cast<std::size_t>(verdict);
  return index < kVerdicts.size() ? &kVerdicts[index] : nullptr;
}
// "timeout", "out_of_memory", ...; "unknown" for a value outside the enum.
constexpr std::string_view label(Verdict verdict) {
  const auto* info = find(verdict);
  return info ? info->label : "unknown";
}
constexpr std::optional<Verdict> from_label(std::string_view label) {
  for (const auto& info : kVerdicts) {
    if (info.label == label) return info.verdict;
  }
  return std::nullopt;
}

// The labels a queue's `messages:` may use, in registry order.
inline constexpr std::size_t kOverridableCount = static_cast<std::size_t>(std::count_if(
    kVerdicts.begin(), kVerdicts.end(), [](const VerdictInfo& info) { return info.overridable; }));
inline constexpr std::array<std::string_view, kOverridableCount> kOverridableLabels = [] {
  std::array<std::string_view, kOverridableCount> labels{};
  std::size_t next = 0;
  for (const auto& info : kVerdicts) {
    if (info.overridable) labels[next++] = info.label;
  }
  return labels;
}();

// The default student text of `verdict`: its text with {limit} and {detail} filled in, or its unquoted
// text when a placeholder the text holds would stay empty. Empty for Graded (the grader's result speaks).
std::string student_text(Verdict verdict, std::string_view limit, std::string_view detail = {});

// Every occurrence of `from` in `text` replaced by `to`.
std::string replace_all(std::string text, std::string_view from, std::string_view to);

// ---- sizes and durations in words: the one formatter config and grading share ----
// "256 MiB", "1 MiB", "512 KiB", "1.5 GiB", "1000 bytes", "1 byte", "-2 KiB" (powers of 1024, at most two
// decimals). config's parse_bytes reads it back.
std::string format_bytes(std::int64_t bytes);
// For students and logs: "20 s", "1.5 s", "500 ms", "90 s", "5 min".
std::string format_duration(std::chrono::milliseconds duration);
// As an operator writes it in YAML, which config's parse_duration reads back: "20s", "1m30s", "500ms", "1h".
std::string format_duration_as_written(std::chrono::milliseconds duration);
// A CPU count: "0.5", "2", "1.25" (at most three decimals).
std::string format_cpus(double cpus);

}  // namespace xqw::verdicts
