#include "grading/utf8_text.hpp"

#include <cstdint>

namespace xqw::grading {

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#x27;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::optional<std::size_t> first_invalid_utf8(std::string_view bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto lead = static_cast<unsigned char>(bytes[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    unsigned char second_min = 0x80;
    unsigned char second_max = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) second_min = 0xA0;  // overlong
      if (lead == 0xED) second_max = 0x9F;  // UTF-16 surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) second_min = 0x90;  // overlong
      if (lead == 0xF4) second_max = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + length > bytes.size()) return i;
    const auto second = static_cast<unsigned char>(bytes[i + 1]);
    if (second < second_min || second > second_max) return i;
    for (std::size_t k = 2; k < length; ++k) {
      if ((static_cast<unsigned char>(bytes[i + k]) & 0xC0) != 0x80) return i;
    }
    i += length;
  }
  return std::nullopt;
}

std::size_t utf8_prefix_length(std::string_view text, std::size_t max_bytes) {
  if (max_bytes >= text.size()) return text.size();
  std::size_t length = max_bytes;
  // text[length] is the first byte left out; if it continues a sequence, leave out that whole sequence.
  while (length > 0 && (static_cast<unsigned char>(text[length]) & 0xC0) == 0x80) --length;
  return length;
}

std::size_t escaped_prefix_length(std::string_view escaped, std::size_t max_bytes) {
  std::size_t length = utf8_prefix_length(escaped, max_bytes);
  const std::size_t lookback = kMaxEntityLength + 2;
  const std::size_t lookback_start = length > lookback ? length - lookback : 0;
  for (std::size_t i = length; i > lookback_start; --i) {
    if (escaped[i - 1] == ';') break;
    if (escaped[i - 1] == '&') return i - 1;
  }
  return length;
}

namespace {

template <typename PrefixLength>
std::string truncate_with_note(std::string_view text, std::size_t max_bytes, PrefixLength prefix_length) {
  if (text.size() <= max_bytes) return std::string(text);
  const std::size_t note_size = kTruncationNote.size() + 1;
  if (max_bytes < note_size) return std::string(text.substr(0, prefix_length(text, max_bytes)));
  std::string out(text.substr(0, prefix_length(text, max_bytes - note_size)));
  out += '\n';
  out += kTruncationNote;
  return out;
}
}  // namespace

std::string truncate_text(std::string_view text, std::size_t max_bytes) {
  return truncate_with_note(text, max_bytes, utf8_prefix_length);
}

std::string truncate_escaped(std::string_view escaped_html, std::size_t max_bytes) {
  return truncate_with_note(escaped_html, max_bytes, escaped_prefix_length);
}

}  // namespace xqw::grading
