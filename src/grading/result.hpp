// grading/result: what a grader container reports, and the strict parser for the JSON it prints on
// stdout (the container contract, DESIGN.md s.6). Pure: bytes in, a result or a staff-facing reason out.
#pragma once

#include <cstddef>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xqw::grading {

// One entry of "tests": [short, long, correct, expected, actual].
struct TestResult {
  std::string short_description;
  std::string long_description;
  bool correct = false;
  std::string expected_output;
  std::string actual_output;
};

struct GraderResult {
  bool correct = false;
  double score = 0.0;
  std::vector<std::string> errors;
  std::vector<TestResult> tests;
  // Set for the {"correct","score","msg"} shape: the image's own HTML, sanitised when rendered.
  std::optional<std::string> html_msg;
};

// Where a grader's result is in its stdout: all of it (this project's contract), or its last non-empty
// line, after whatever the grader printed (the Python watcher's ContainerGrader contract, whose result
// is always the {"correct","score","errors","tests"} shape).
enum class ResultFraming { WholeStdout, LastLine };

struct ParseLimits {
  // Cap on each string field (msg, every error, every test field), "[output truncated]" note included.
  std::size_t field_bytes = 64 * 1024;
  ResultFraming framing = ResultFraming::WholeStdout;
};

// Stdout under ResultFraming::LastLine: the grader's prints, then its last non-empty line (without the
// line break and whitespace that end it). Pure; views into `stdout_bytes`.
struct FramedOutput {
  std::string_view prints;  // everything before the result line (staff debug)
  std::string_view result;  // empty: stdout has no non-empty line
};
FramedOutput split_last_line(std::string_view stdout_bytes);

// Why a grader's stdout is not a valid result; `reason` is staff-facing (at most 300 bytes), e.g.
// "tests[2][2] is a string, expected boolean".
struct InvalidOutput {
  std::string reason;
};

// The result a grader printed, or why its output is not one.
using ParsedOutput = std::expected<GraderResult, InvalidOutput>;

// Accepts exactly one JSON object (surrounding JSON whitespace allowed) in one of the two shapes:
//   {"correct": bool, "score": 0..1, "errors": [str], "tests": [[str, str, bool, str, str]]}
//   {"correct": bool, "score": 0..1, "msg": str}
// Anything else - empty output, text before or after the object, invalid UTF-8 or JSON, a missing,
// unknown or duplicated key, a wrong type, a score outside [0,1] - yields a reason naming the problem,
// e.g. "tests[2][2] is a string, expected boolean". Oversized strings are truncated, not rejected.
// Under ResultFraming::LastLine only the last non-empty line is the result, and only in the first shape.
ParsedOutput parse_grader_output(std::string_view stdout_bytes, const ParseLimits& limits = {});

}  // namespace xqw::grading
