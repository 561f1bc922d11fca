// grading/sanitize: making text safe to show students — HTML escaping, UTF-8-safe truncation, and the
// allow-list filter for HTML a grader image writes itself (the {"correct","score","msg"} result shape).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace xqw::grading {

// Appended (after a newline) wherever a field or a whole message was cut to its size cap.
inline constexpr std::string_view kTruncationNote = "[output truncated]";

// Escapes & < > " ' exactly like Python's html.escape(text, quote=True).
std::string html_escape(std::string_view text);

// Offset of the first byte that is not part of a well-formed UTF-8 sequence (overlong forms, surrogates
// and code points above U+10FFFF count as ill-formed), or nullopt when the whole text is valid.
std::optional<std::size_t> first_invalid_utf8(std::string_view bytes);

// The longest prefix length <= max_bytes that does not split a UTF-8 sequence.
std::size_t utf8_prefix_length(std::string_view text, std::size_t max_bytes);

// Plain text cut to at most max_bytes in total: when it is longer, a UTF-8-safe prefix followed by
// "\n[output truncated]". Text that fits is returned unchanged.
std::string truncate_text(std::string_view text, std::size_t max_bytes);

// Like truncate_text for text that is already HTML-escaped: never cuts inside an entity such as &quot;.
std::string truncate_escaped(std::string_view escaped_html, std::size_t max_bytes);

// Filters HTML from a grader image through a strict allow-list and bounds it to max_bytes.
// Kept: formatting elements (p, pre, code, div, span, ul, ol, li, dl, dt, dd, h3-h5, strong, em, b, i,
// header, section, br, hr and table elements) with only a `class` attribute made of letters, digits,
// spaces, '-' and '_', plus `a` with an http(s) or mailto `href`. Dropped with their content: script,
// style, iframe and the other raw-text elements; comments and doctypes. Every other tag is escaped and
// shows as text. Stray end tags are dropped; elements left open are closed. Output larger than max_bytes
// stops at a tag or text boundary, closes what is open and ends with "[output truncated]".
std::string sanitize_html(std::string_view html, std::size_t max_bytes);

}  // namespace xqw::grading
