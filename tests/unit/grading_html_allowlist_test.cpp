#include <gtest/gtest.h>

#include <string>

#include "grading/html_allowlist.hpp"

namespace xqw::grading {
namespace {

constexpr std::size_t kLarge = 1 << 20;

std::string clean(std::string_view html) { return sanitize_html(html, kLarge); }

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

TEST(GradingSanitize, KeepsAllowedFormattingWithClasses) {
  const std::string html =
      R"(<div class="result ok"><h4>Test 1</h4><p>Fine<br>line</p><pre><code>x = 1</code></pre>)"
      R"(<ul><li><strong>a</strong></li><li><em>b</em></li></ul>)"
      R"(<table class="grid"><thead><tr><th>in</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table></div>)";
  EXPECT_EQ(clean(html), html);
}

TEST(GradingSanitize, DropsScriptsStylesAndFramesWithTheirContent) {
  EXPECT_EQ(clean("a<script>alert(1)</script>b"), "ab");
  EXPECT_EQ(clean("a<SCRIPT type=text/javascript>alert('<p>')</ScRiPt >b"), "ab");
  EXPECT_EQ(clean("a<script/src=//evil.example>x</script>b"), "ab");
  EXPECT_EQ(clean("a<style>body{display:none}</style>b"), "ab");
  EXPECT_EQ(clean("a<iframe src=\"https://evil.example\">fallback</iframe>b"), "ab");
  EXPECT_EQ(clean("a<script>never closed <p>hidden</p>"), "a");
  EXPECT_EQ(clean("a<script>x</scripty></script>b"), "ab");
}

TEST(GradingSanitize, DropsEventHandlersStylesAndUnsafeClasses) {
  EXPECT_EQ(clean(R"x(<p onclick="alert(1)" class="note">x</p>)x"), R"(<p class="note">x</p>)");
  EXPECT_EQ(clean(R"(<div ONMOUSEOVER=alert(1) style="position:fixed">x</div>)"), "<div>x</div>");
  EXPECT_EQ(clean(R"(<span class='a" onclick="x'>y</span>)"), "<span>y</span>");
  EXPECT_EQ(clean(R"(<span class="a" class="b">y</span>)"), R"(<span class="a">y</span>)");
  EXPECT_EQ(clean(R"(<p id="main" data-x="1">x</p>)"), "<p>x</p>");
}

TEST(GradingSanitize, KeepsOnlyWebAndMailLinks) {
  EXPECT_EQ(clean(R"(<a href="https://docs.python.org/3/?a=1&amp;b=2">docs</a>)"),
            R"(<a href="https://docs.python.org/3/?a=1&amp;b=2">docs</a>)");
  EXPECT_EQ(clean(R"(<a href="mailto:staff@example.org">mail</a>)"),
            R"(<a href="mailto:staff@example.org">mail</a>)");
  for (const char* href : {"javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)",
                           "jav&#x61;script:alert(1)", "&#106;avascript:alert(1)", "java\tscript:alert(1)",
                           "java&Tab;script:alert(1)", "data:text/html,<script>alert(1)</script>",
                           "vbscript:x", "//evil.example/", "/relative", "https://"}) {
    SCOPED_TRACE(href);
    const std::string out = clean(std::string("<a href=\"") + href + "\">x</a>");
    EXPECT_EQ(out, "<a>x</a>");
  }
  // Character references are decoded before the scheme is checked, in both directions.
  EXPECT_EQ(clean(R"(<a href="https&colon;//example.org/">x</a>)"),
            R"(<a href="https://example.org/">x</a>)");
  // href only means something on links.
  EXPECT_EQ(clean(R"(<p href="https://example.org">x</p>)"), "<p>x</p>");
}

TEST(GradingSanitize, EscapesEveryOtherTagAsText) {
  EXPECT_EQ(clean(R"x(<img src=x onerror="alert(1)">)x"), "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;");
  EXPECT_EQ(clean("<svg><p>x</p></svg>"), "&lt;svg&gt;<p>x</p>&lt;/svg&gt;");
  EXPECT_EQ(clean("<form action=/x><input name=a></form>"),
            "&lt;form action=/x&gt;&lt;input name=a&gt;&lt;/form&gt;");
}

TEST(GradingSanitize, DropsCommentsAndDoctypes) {
  EXPECT_EQ(clean("<!DOCTYPE html>a<!-- <script>alert(1)</script> -->b<?xml x?>c"), "abc");
  EXPECT_EQ(clean("a<!-- never closed <p>x</p>"), "a");
}

TEST(GradingSanitize, EscapesStrayMarkupCharacters) {
  EXPECT_EQ(clean("1 < 2 && 3 > 2 \"q\" 'a'"), "1 &lt; 2 &amp;&amp; 3 &gt; 2 &quot;q&quot; &#x27;a&#x27;");
  EXPECT_EQ(clean("x <= y, <3, </ p>"), "x &lt;= y, &lt;3, &lt;/ p&gt;");
  EXPECT_EQ(clean("a&nbsp;b &#169; &#x27; &copy &;"), "a&nbsp;b &#169; &#x27; &amp;copy &amp;;");
  EXPECT_EQ(clean("<p class=\"never closed"), "&lt;p class=&quot;never closed");
  EXPECT_EQ(clean(std::string("nul\0byte", 8)), "nulbyte");
}

TEST(GradingSanitize, BalancesTags) {
  EXPECT_EQ(clean("<div><p>open"), "<div><p>open</p></div>");
  EXPECT_EQ(clean("text</div></p>more"), "textmore");
  EXPECT_EQ(clean("<b><i>x</b>y</i>"), "<b><i>x</i></b>y");
  EXPECT_EQ(clean("<ul><li>a<li>b</ul>"), "<ul><li>a<li>b</li></li></ul>");
  EXPECT_EQ(clean("<div/>x<br/>y</br>"), "<div></div>x<br>y");
}

TEST(GradingSanitize, BoundsTheOutputAndStillClosesTags) {
  std::string html = "<div class=\"report\"><pre>";
  for (int i = 0; i < 10000; ++i) html += "line \"" + std::to_string(i) + "\" & more\n";
  html += "</pre></div>";
  const std::string out = sanitize_html(html, 4096);
  EXPECT_LE(out.size(), 4096u);
  EXPECT_TRUE(out.starts_with("<div class=\"report\"><pre>line &quot;0&quot; &amp; more\n"));
  EXPECT_TRUE(out.ends_with("</pre></div>\n<p>[output truncated]</p>")) << out.substr(out.size() - 80);
  const std::string pre_text = out.substr(0, out.rfind("</pre>"));
  EXPECT_NE(pre_text.find(';', pre_text.rfind('&')), std::string::npos) << "cut inside an entity";
}

TEST(GradingSanitize, TreatsUnterminatedTagsAsText) {
  std::string hostile;
  while (hostile.size() < 64 * 1024) hostile += "<a b='";
  const std::string out = sanitize_html(hostile, kLarge);
  EXPECT_FALSE(contains(out, "<a"));
  EXPECT_TRUE(out.starts_with("&lt;a b=&#x27;"));
  // With a '>' only at the very end, each '<' looks a bounded distance ahead rather than to the end.
  const std::string out_with_end = sanitize_html(hostile + ">", kLarge);
  EXPECT_TRUE(out_with_end.starts_with("&lt;a b=&#x27;&lt;a b=&#x27;"));
  EXPECT_LE(out_with_end.size(), 8 * hostile.size());
}

}  // namespace
}  // namespace xqw::grading
