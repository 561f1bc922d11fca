// The shared text helpers (pure).
#include "text/text.hpp"

#include <gtest/gtest.h>

namespace xqw::text {
namespace {

TEST(AsciiLower, FoldsOnlyAsciiLetters) {
  EXPECT_EQ(ascii_lower("IfNotPresent"), "ifnotpresent");
  EXPECT_EQ(ascii_lower("Content-TYPE: 1"), "content-type: 1");
  EXPECT_EQ(ascii_lower(""), "");
  // UTF-8 bytes (here "É") are left as they are, never folded by a locale.
  EXPECT_EQ(ascii_lower("\xC3\x89T\xC3\xA9"), "\xC3\x89t\xC3\xA9");
  EXPECT_EQ(ascii_lower('Z'), 'z');
  EXPECT_EQ(ascii_lower('@'), '@');
  EXPECT_EQ(ascii_lower('['), '[');
}

}  // namespace
}  // namespace xqw::text
