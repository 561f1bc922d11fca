// grading/render: the student-facing HTML for a grader result, the same markup and CSS classes the
// Python xqueue-watcher produced (test, shortform, longform, result-output, result-correct, ...).
#pragma once

#include <cstddef>
#include <string>

#include "grading/result.hpp"

namespace xqw::grading {

struct RenderLimits {
  // Cap on the whole message posted to XQueue, truncation note included.
  std::size_t html_bytes = 256 * 1024;
  // Cap on each escaped field (an error, a description, an output).
  std::size_t field_bytes = 64 * 1024;
};

// For the upstream shape: a "Test results" block whose status is ERROR when there are errors, else
// CORRECT or INCORRECT, then the errors and one block per test. Every grader-provided string is
// HTML-escaped. Tests or errors that do not fit html_bytes are left out and a "[output truncated]"
// note says so. For the {"msg"} shape: the image's HTML through sanitize_html.
std::string render_html(const GraderResult& result, const RenderLimits& limits = {});

}  // namespace xqw::grading
