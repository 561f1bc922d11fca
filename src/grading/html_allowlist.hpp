// grading/html_allowlist: HTML a grader image writes itself (the {"correct","score","msg"} result shape)
// filtered through a strict allow-list and bounded in size, so it can be posted to students as is.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace xqw::grading {

// Kept: formatting elements (p, pre, code, div, span, ul, ol, li, dl, dt, dd, h3-h5, strong, em, b, i,
// header, section, br, hr and table elements) with only a `class` attribute made of letters, digits,
// spaces, '-' and '_', plus `a` with an http(s) or mailto `href`. Dropped with their content: script,
// style, iframe and the other raw-text elements; comments and doctypes. Every other tag is escaped and
// shows as text. Stray end tags are dropped; elements left open are closed. Output larger than max_bytes
// stops at a tag or text boundary, closes what is open and ends with "[output truncated]".
std::string sanitize_html(std::string_view html, std::size_t max_bytes);

}  // namespace xqw::grading
