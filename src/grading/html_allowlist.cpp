#include "grading/html_allowlist.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "grading/utf8_text.hpp"
#include "text/text.hpp"

using xqw::text::ascii_lower;

namespace xqw::grading {
namespace {

// A tag longer than this is treated as text: it bounds the work per '<' so hostile input stays linear.
constexpr std::size_t kMaxTagLength = 2048;
constexpr std::size_t kMaxClassLength = 200;

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_html_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (ascii_lower(text[i]) != prefix[i]) return false;
  }
  return true;
}

bool equals_ignoring_case(std::string_view text, std::string_view lower_case) {
  return text.size() == lower_case.size() && starts_with_ignoring_case(text, lower_case);
}

// Length of a well-formed character reference at the start of text ("&amp;", "&#39;", "&#x27;"), or 0.
std::size_t character_reference_length(std::string_view text) {
  if (text.size() < 3 || text[0] != '&') return 0;
  std::size_t i = 1;
  if (text[i] == '#') {
    ++i;
    const bool hex = i < text.size() && (text[i] == 'x' || text[i] == 'X');
    if (hex) ++i;
    const std::size_t first_digit = i;
    while (i < text.size() && i - first_digit < 7 && (hex ? is_hex(text[i]) : is_digit(text[i]))) ++i;
    if (i == first_digit) return 0;
  } else {
    if (!is_alpha(text[i])) return 0;
    while (i < text.size() && i < kMaxEntityLength && is_alnum(text[i])) ++i;
  }
  return (i < text.size() && text[i] == ';') ? i + 1 : 0;
}

void append_utf8(std::string& out, std::uint32_t code_point) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

// Decodes the character references an attribute value may hide a scheme behind ("jav&#x61;script:").
// Anything the filter does not recognise makes the whole value unusable rather than guessed at.
std::optional<std::string> decode_attribute(std::string_view value) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 8> kNamed{{{"&amp;", "&"},
                                                                                        {"&lt;", "<"},
                                                                                        {"&gt;", ">"},
                                                                                        {"&quot;", "\""},
                                                                                        {"&apos;", "'"},
                                                                                        {"&colon;", ":"},
                                                                                        {"&Tab;", "\t"},
                                                                                        {"&NewLine;", "\n"}}};
  std::string decoded;
  for (std::size_t i = 0; i < value.size();) {
    if (value[i] != '&') {
      decoded += value[i++];
      continue;
    }
    const std::size_t length = character_reference_length(value.substr(i));
    if (length == 0) return std::nullopt;
    const std::string_view reference = value.substr(i, length);
    if (reference[1] == '#') {
      const bool hex = reference[2] == 'x' || reference[2] == 'X';
      const std::string digits(reference.substr(hex ? 3 : 2, length - (hex ? 4 : 3)));
      const unsigned long code_point = std::stoul(digits, nullptr, hex ? 16 : 10);
      if (code_point == 0 || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) {
        return std::nullopt;
      }
      append_utf8(decoded, static_cast<std::uint32_t>(code_point));
    } else {
      const auto* named = std::find_if(kNamed.begin(), kNamed.end(),
                                       [&](const auto& entry) { return entry.first == reference; });
      if (named == kNamed.end()) return std::nullopt;
      decoded += named->second;
    }
    i += length;
  }
  return decoded;
}

// Only absolute web and mail links: no javascript:, data:, vbscript:, relative or protocol-relative URLs.
std::optional<std::string> safe_link(std::string_view raw_value) {
  auto url = decode_attribute(raw_value);
  if (!url) return std::nullopt;
  const bool has_control_or_space = std::any_of(url->begin(), url->end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte <= 0x20 || byte == 0x7F;
  });
  if (has_control_or_space) return std::nullopt;
  for (std::string_view scheme : {"http://", "https://", "mailto:"}) {
    if (starts_with_ignoring_case(*url, scheme) && url->size() > scheme.size()) return url;
  }
  return std::nullopt;
}

bool safe_class(std::string_view value) {
  if (value.empty() || value.size() > kMaxClassLength) return false;
  return std::all_of(value.begin(), value.end(),
                     [](char c) { return is_alnum(c) || c == ' ' || c == '-' || c == '_'; });
}

enum class ElementKind { Kept, KeptVoid, DroppedWithContent, Escaped };

ElementKind classify(std::string_view name) {
  static constexpr std::array<std::string_view, 30> kKept{
      "p",  "pre",   "code",  "div",   "span",   "ul", "ol", "li", "dl",      "dt",
      "dd", "h3",    "h4",    "h5",    "strong", "em", "b",  "i",  "header",  "section",
      "a",  "table", "thead", "tbody", "tfoot",  "tr", "th", "td", "caption", "colgroup"};
  static constexpr std::array<std::string_view, 3> kKeptVoid{"br", "hr", "col"};
  // Elements whose content is raw text (or, for noscript and template, never meant to be shown).
  static constexpr std::array<std::string_view, 11> kDropped{"script",  "style",     "iframe",  "noscript",
                                                             "noembed", "noframes",  "xmp",     "textarea",
                                                             "title",   "plaintext", "template"};
  auto contains = [name](const auto& list) {
    return std::find(list.begin(), list.end(), name) != list.end();
  };
  if (contains(kKeptVoid)) return ElementKind::KeptVoid;
  if (contains(kKept)) return ElementKind::Kept;
  if (contains(kDropped)) return ElementKind::DroppedWithContent;
  return ElementKind::Escaped;
}

// Views into the input: parsing a tag allocates nothing but its lower-cased name.
struct Attribute {
  std::string_view name;  // as written; compare with equals_ignoring_case
  std::string_view value;
};

struct Tag {
  std::string name;  // lower-cased
  bool is_end = false;
  bool self_closing = false;
  std::vector<Attribute> attributes;
  std::size_t end = 0;  // offset just past '>'
};

std::size_t skip_spaces(std::string_view in, std::size_t i) {
  while (i < in.size() && is_html_space(in[i])) ++i;
  return i;
}

// Reads one start or end tag at `at` (which holds '<'), the way an HTML tokenizer would; nullopt when
// the '<' does not open a complete tag and is therefore text.
std::optional<Tag> parse_tag(std::string_view whole, std::size_t at) {
  const std::string_view in = whole.substr(0, std::min(whole.size(), at + kMaxTagLength));
  std::size_t i = at + 1;
  Tag tag;
  if (i < in.size() && in[i] == '/') {
    tag.is_end = true;
    ++i;
  }
  if (i >= in.size() || !is_alpha(in[i])) return std::nullopt;
  const std::size_t name_start = i;
  while (i < in.size() && !is_html_space(in[i]) && in[i] != '/' && in[i] != '>') ++i;
  tag.name = ascii_lower(in.substr(name_start, i - name_start));
  for (;;) {
    while (i < in.size() && (is_html_space(in[i]) || in[i] == '/')) {
      if (in[i] == '/' && i + 1 < in.size() && in[i + 1] == '>') tag.self_closing = true;
      ++i;
    }
    if (i >= in.size()) return std::nullopt;
    if (in[i] == '>') {
      tag.end = i + 1;
      return tag;
    }
    Attribute attribute;
    const std::size_t name_start = i++;
    while (i < in.size() && !is_html_space(in[i]) && in[i] != '/' && in[i] != '>' && in[i] != '=') ++i;
    attribute.name = in.substr(name_start, i - name_start);
    std::size_t j = skip_spaces(in, i);
    if (j < in.size() && in[j] == '=') {
      j = skip_spaces(in, j + 1);
      if (j >= in.size()) return std::nullopt;
      if (in[j] == '"' || in[j] == '\'') {
        const std::size_t close = in.find(in[j], j + 1);
        if (close == std::string_view::npos) return std::nullopt;
        attribute.value = in.substr(j + 1, close - j - 1);
        i = close + 1;
      } else {
        const std::size_t start = j;
        while (j < in.size() && !is_html_space(in[j]) && in[j] != '>') ++j;
        attribute.value = in.substr(start, j - start);
        i = j;
      }
    }
    tag.attributes.push_back(std::move(attribute));
  }
}

// Escapes text for HTML, keeping well-formed character references the author wrote (&nbsp;, &#169;):
// a reference only ever decodes to a character, never to markup.
std::string escape_text_keeping_references(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '&') {
      const std::size_t length = character_reference_length(text.substr(i, kMaxEntityLength + 2));
      if (length > 0) {
        out += text.substr(i, length);
        i += length;
        continue;
      }
      out += "&amp;";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (c == '"') {
      out += "&quot;";
    } else if (c == '\'') {
      out += "&#x27;";
    } else if (c != '\0') {
      out += c;
    }
    ++i;
  }
  return out;
}

class Sanitizer {
 public:
  Sanitizer(std::string_view in, std::size_t max_bytes)
      : in_(in),
        limit_(max_bytes > kNote.size() ? max_bytes - kNote.size() : 0),
        next_closing_bracket_(in.find('>')) {}

  std::string run() {
    while (pos_ < in_.size() && !truncated_) step();
    while (!open_.empty()) close_top();
    if (truncated_) out_ += kNote;
    return std::move(out_);
  }

 private:
  static constexpr std::string_view kNote = "\n<p>[output truncated]</p>";

  void step() {
    const std::size_t lt = in_.find('<', pos_);
    if (lt != pos_) {
      const std::size_t end = lt == std::string_view::npos ? in_.size() : lt;
      emit_text(in_.substr(pos_, end - pos_));
      pos_ = end;
      return;
    }
    const std::string_view rest = in_.substr(pos_);
    if (rest.starts_with("<!--")) {
      pos_ = skip_past(in_.find("-->", pos_ + 4), 3);
    } else if (rest.starts_with("<!") || rest.starts_with("<?")) {
      pos_ = skip_past(in_.find('>', pos_ + 2), 1);
    } else if (auto tag = closing_bracket_ahead() ? parse_tag(in_, pos_) : std::nullopt) {
      handle_tag(*tag);
    } else {
      emit_text("<");
      ++pos_;
    }
  }

  // Whether any '>' follows; without one no tag can end, so every remaining '<' is text.
  bool closing_bracket_ahead() {
    if (next_closing_bracket_ != std::string_view::npos && next_closing_bracket_ < pos_) {
      next_closing_bracket_ = in_.find('>', pos_);
    }
    return next_closing_bracket_ != std::string_view::npos;
  }

  std::size_t skip_past(std::size_t found, std::size_t marker_length) const {
    return found == std::string_view::npos ? in_.size() : found + marker_length;
  }

  void handle_tag(const Tag& tag) {
    const std::string_view raw = in_.substr(pos_, tag.end - pos_);
    pos_ = tag.end;
    switch (classify(tag.name)) {
      case ElementKind::DroppedWithContent:
        if (!tag.is_end) pos_ = end_of_raw_text(tag.name);
        return;
      case ElementKind::Escaped:
        emit_text(raw);
        return;
      case ElementKind::KeptVoid:
        if (!tag.is_end) emit_markup("<" + tag.name + kept_attributes(tag) + ">", "");
        return;
      case ElementKind::Kept:
        if (tag.is_end) {
          close_through(tag.name);
        } else {
          emit_markup("<" + tag.name + kept_attributes(tag) + ">", tag.name);
          if (tag.self_closing) close_top();
        }
        return;
    }
  }

  // Offset just past the end tag that closes a raw-text element, or the end of input if it never closes.
  std::size_t end_of_raw_text(const std::string& name) const {
    for (std::size_t at = in_.find("</", pos_); at != std::string_view::npos; at = in_.find("</", at + 2)) {
      const std::string_view candidate = in_.substr(at + 2);
      if (!starts_with_ignoring_case(candidate, name)) continue;
      const std::size_t after_name = at + 2 + name.size();
      if (after_name < in_.size() && !is_html_space(in_[after_name]) && in_[after_name] != '/' &&
          in_[after_name] != '>') {
        continue;
      }
      return skip_past(in_.find('>', after_name), 1);
    }
    return in_.size();
  }

  static std::string kept_attributes(const Tag& tag) {
    std::string out;
    bool seen_class = false;
    bool seen_href = false;
    // Like a browser, only the first occurrence of an attribute counts.
    for (const Attribute& attribute : tag.attributes) {
      if (equals_ignoring_case(attribute.name, "class") && !seen_class) {
        seen_class = true;
        if (safe_class(attribute.value)) out += " class=\"" + std::string(attribute.value) + "\"";
      } else if (equals_ignoring_case(attribute.name, "href") && tag.name == "a" && !seen_href) {
        seen_href = true;
        if (auto link = safe_link(attribute.value)) out += " href=\"" + html_escape(*link) + "\"";
      }
    }
    return out;
  }

  bool fits(std::size_t extra) const { return out_.size() + extra + closing_bytes_ <= limit_; }

  void emit_markup(const std::string& start_tag, const std::string& pushed_name) {
    const std::size_t closing = pushed_name.empty() ? 0 : pushed_name.size() + 3;
    if (!fits(start_tag.size() + closing)) {
      truncated_ = true;
      return;
    }
    out_ += start_tag;
    if (!pushed_name.empty()) {
      open_.push_back(pushed_name);
      closing_bytes_ += closing;
    }
  }

  void emit_text(std::string_view text) {
    const std::string escaped = escape_text_keeping_references(text);
    if (fits(escaped.size())) {
      out_ += escaped;
      return;
    }
    const std::size_t used = out_.size() + closing_bytes_;
    const std::size_t room = limit_ > used ? limit_ - used : 0;
    out_ += std::string_view(escaped).substr(0, escaped_prefix_length(escaped, room));
    truncated_ = true;
  }

  void close_top() {
    out_ += "</" + open_.back() + ">";
    closing_bytes_ -= open_.back().size() + 3;
    open_.pop_back();
  }

  // An end tag closes its element and whatever was left open inside it; a stray one is dropped.
  void close_through(const std::string& name) {
    const auto found = std::find(open_.rbegin(), open_.rend(), name);
    if (found == open_.rend()) return;
    const std::size_t depth = static_cast<std::size_t>(found - open_.rbegin()) + 1;
    for (std::size_t i = 0; i < depth; ++i) close_top();
  }

  std::string_view in_;
  std::size_t limit_;
  std::size_t pos_ = 0;
  std::string out_;
  std::vector<std::string> open_;
  std::size_t closing_bytes_ = 0;  // bytes the end tags of open_ will take; reserved in the budget
  bool truncated_ = false;
  std::size_t next_closing_bracket_;  // offset of the next '>' at or after pos_, or npos
};

}  // namespace

std::string sanitize_html(std::string_view html, std::size_t max_bytes) {
  return Sanitizer(html, max_bytes).run();
}

}  // namespace xqw::grading
