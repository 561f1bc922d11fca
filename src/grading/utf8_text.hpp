// grading/utf8_text: text made safe to show students — UTF-8 validity, cuts that never split a character
// or an entity, HTML escaping — for everything the watcher writes into a message itself.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace xqw::grading {

// Appended (after a newline) wherever a field or a whole message was cut to its size cap.
inline constexpr std::string_view kTruncationNote = "[output truncated]";
// Longest character reference copied through as-is (e.g. "&CounterClockwiseContourIntegral;" is 33).
inline constexpr std::size_t kMaxEntityLength = 40;

// Escapes & < > " ' exactly like Python's html.escape(text, quote=True).
std::string html_escape(std::string_view text);

// Offset of the first byte that is not part of a well-formed UTF-8 sequence (overlong forms, surrogates
// and code points above U+10FFFF count as ill-formed), or nullopt when the whole text is valid.
std::optional<std::size_t> first_invalid_utf8(std::string_view bytes);

// The longest prefix length <= max_bytes that does not split a UTF-8 sequence.
std::size_t utf8_prefix_length(std::string_view text, std::size_t max_bytes);

// The longest prefix length <= max_bytes of escaped HTML text (no tags) that ends neither inside a UTF-8
// sequence nor inside a character reference.
std::size_t escaped_prefix_length(std::string_view escaped, std::size_t max_bytes);

// Plain text cut to at most max_bytes in total: when it is longer, a UTF-8-safe prefix followed by
// "\n[output truncated]". Text that fits is returned unchanged.
std::string truncate_text(std::string_view text, std::size_t max_bytes);

// Like truncate_text for text that is already HTML-escaped: never cuts inside an entity such as &quot;.
std::string truncate_escaped(std::string_view escaped_html, std::size_t max_bytes);

}  // namespace xqw::grading
