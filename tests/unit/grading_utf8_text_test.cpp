#include <gtest/gtest.h>

#include <string>

#include "grading/utf8_text.hpp"

namespace xqw::grading {
namespace {

TEST(GradingEscape, EscapesLikePythonHtmlEscape) {
  EXPECT_EQ(html_escape(R"(<a href="x">Tom & 'Jerry'</a>)"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#x27;Jerry&#x27;&lt;/a&gt;");
  EXPECT_EQ(html_escape("plain \xE2\x98\x83 text"), "plain \xE2\x98\x83 text");
}

TEST(GradingUtf8, FindsTheFirstIllFormedSequence) {
  EXPECT_FALSE(first_invalid_utf8("ascii, \xC3\xA9, \xE2\x98\x83, \xF0\x9F\x98\x80").has_value());
  EXPECT_EQ(first_invalid_utf8("ab\xFF"), 2u);
  EXPECT_EQ(first_invalid_utf8("a\xC0\x80"), 1u);          // overlong NUL
  EXPECT_EQ(first_invalid_utf8("a\xED\xA0\x80"), 1u);      // UTF-16 surrogate
  EXPECT_EQ(first_invalid_utf8("a\xF4\x90\x80\x80"), 1u);  // above U+10FFFF
  EXPECT_EQ(first_invalid_utf8("ok\xE2\x98"), 2u);         // cut short
  EXPECT_EQ(first_invalid_utf8("\x80"), 0u);               // stray continuation byte
}

TEST(GradingTruncate, CutsOnCharacterAndEntityBoundaries) {
  EXPECT_EQ(utf8_prefix_length("a\xE2\x98\x83", 2), 1u);
  EXPECT_EQ(utf8_prefix_length("a\xE2\x98\x83", 4), 4u);
  EXPECT_EQ(truncate_text("short", 100), "short");

  const std::string text(200, 'z');
  const std::string cut = truncate_text(text, 50);
  EXPECT_EQ(cut, std::string(50 - 19, 'z') + "\n[output truncated]");

  std::string quotes;
  for (int i = 0; i < 40; ++i) quotes += "&quot;";
  for (std::size_t cap = 30; cap < 60; ++cap) {
    const std::string escaped = truncate_escaped(quotes, cap);
    ASSERT_LE(escaped.size(), cap);
    const std::string kept = escaped.substr(0, escaped.find('\n'));
    EXPECT_EQ(kept.size() % 6, 0u) << "cut inside an entity at cap " << cap << ": " << kept;
  }
}

}  // namespace
}  // namespace xqw::grading
