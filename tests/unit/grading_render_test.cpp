#include <gtest/gtest.h>

#include <string>

#include "grading/render.hpp"
#include "grading/utf8_text.hpp"

namespace xqw::grading {
namespace {

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::size_t count(std::string_view haystack, std::string_view needle) {
  std::size_t n = 0;
  for (std::size_t at = haystack.find(needle); at != std::string_view::npos;
       at = haystack.find(needle, at + 1))
    ++n;
  return n;
}

TestResult test_result(std::string short_description, bool correct, std::string expected, std::string actual,
                       std::string long_description = "") {
  return {std::move(short_description), std::move(long_description), correct, std::move(expected),
          std::move(actual)};
}

// The exact bytes the Python watcher renders for this result (checked against its templates).
TEST(GradingRender, MatchesThePythonWatcherByteForByte) {
  GraderResult result;
  result.correct = true;
  result.score = 1.0;
  result.tests = {test_result("Test 1", true, "3\n", "3\n", "adds 1 & 2")};
  const std::string expected = R"(
<div class="test">
<header>Test results</header>
  <section>
    <div class="shortform">
    CORRECT
    </div>
    <div class="longform">
      
      
  <div class="result-output result-correct">
    <h4>Test 1</h4>
    <pre><p>adds 1 &amp; 2</p></pre>
    <dl>
    <dt>Output:</dt>
    <dd class="result-actual-output">
       <pre>3
</pre>
       </dd>
    </dl>
  </div>

    </div>
  </section>
</div>
)";
  EXPECT_EQ(render_html(result), expected);
}

TEST(GradingRender, ShowsIncorrectTestsWithBothOutputs) {
  GraderResult result;
  result.score = 0.5;
  result.tests = {test_result("Test 1", true, "ok", "ok"), test_result("Test 2", false, "42", "41")};
  const std::string html = render_html(result);
  EXPECT_TRUE(contains(html, "<div class=\"shortform\">\n    INCORRECT\n    </div>"));
  EXPECT_EQ(count(html, "result-output result-correct"), 1u);
  EXPECT_TRUE(
      contains(html,
               "  <div class=\"result-output result-incorrect\">\n    <h4>Test 2</h4>\n    <pre></pre>\n"
               "    <dl>\n    <dt>Your output:</dt>\n"
               "    <dd class=\"result-actual-output\"><pre>41</pre></dd>\n"
               "    <dt>Correct output:</dt>\n    <dd><pre>42</pre></dd>\n    </dl>\n  </div>\n"));
  EXPECT_LT(html.find("Test 1"), html.find("Test 2"));
  EXPECT_FALSE(contains(html, "result-errors"));
}

TEST(GradingRender, ErrorsMakeTheStatusErrorEvenWhenCorrect) {
  GraderResult result;
  result.correct = true;
  result.errors = {"first", "second"};
  const std::string html = render_html(result);
  EXPECT_TRUE(contains(html, "    ERROR\n"));
  EXPECT_TRUE(contains(html,
                       "<div class=\"result-errors\"><ul>\n<li><pre>first</pre></li>\n\n"
                       "<li><pre>second</pre></li>\n</ul>\n</div>"));
}

TEST(GradingRender, HiddenOutputMeansNoTestBlocks) {
  GraderResult result;  // hide_output: the image reports no tests, only the grade
  result.correct = true;
  result.score = 1.0;
  const std::string html = render_html(result);
  EXPECT_TRUE(contains(html, "    CORRECT\n"));
  EXPECT_FALSE(contains(html, "result-output"));
  EXPECT_FALSE(contains(html, "result-errors"));
}

TEST(GradingRender, EscapesEveryGraderProvidedString) {
  const std::string hostile = R"(<script>alert("x")</script> & 'q')";
  const std::string escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;q&#x27;";
  GraderResult result;
  result.errors = {hostile};
  result.tests = {test_result(hostile, false, hostile, hostile, hostile),
                  test_result(hostile, true, "", hostile)};
  const std::string html = render_html(result);
  EXPECT_FALSE(contains(html, "<script"));
  EXPECT_FALSE(contains(html, "'q'"));
  EXPECT_FALSE(contains(html, "\"x\""));
  // errors, short (2), long, expected, actual (2)
  EXPECT_EQ(count(html, escaped), 7u);
}

TEST(GradingRender, NeverExpandsPlaceholdersInsideValues) {
  GraderResult result;
  result.tests = {test_result("{status} {errors}", false, "{expected-output}", "{results}")};
  const std::string html = render_html(result);
  EXPECT_TRUE(contains(html, "<h4>{status} {errors}</h4>"));
  EXPECT_TRUE(contains(html, "<pre>{results}</pre>"));
  EXPECT_TRUE(contains(html, "<pre>{expected-output}</pre>"));
}

TEST(GradingRender, SanitisesTheImagesOwnHtml) {
  GraderResult result;
  result.html_msg = R"html(<div class="summary" onclick="steal()">2/3<script>alert(1)</script></div>)html";
  EXPECT_EQ(render_html(result), R"(<div class="summary">2/3</div>)");
}

TEST(GradingRender, LeavesOutTestsBeyondTheMessageCap) {
  GraderResult result;
  for (int i = 0; i < 100; ++i) {
    result.tests.push_back(test_result("Test " + std::to_string(i), false, std::string(5000, 'e'), "a"));
  }
  const RenderLimits limits{.html_bytes = 64 * 1024, .field_bytes = 64 * 1024};
  const std::string html = render_html(result, limits);
  EXPECT_LE(html.size(), limits.html_bytes);
  EXPECT_TRUE(contains(html, "<h4>Test 0</h4>"));
  EXPECT_FALSE(contains(html, "<h4>Test 99</h4>"));
  EXPECT_TRUE(contains(html, "<p>[output truncated]</p>"));
  EXPECT_TRUE(html.ends_with("    </div>\n  </section>\n</div>\n"));
  EXPECT_EQ(count(html, "<div"), count(html, "</div>"));
}

TEST(GradingRender, SqueezesASingleHugeTestIntoTheCap) {
  GraderResult result;
  result.tests = {test_result("Test 1", false, std::string(60000, '"'), std::string(60000, '<'), "long")};
  const RenderLimits limits{.html_bytes = 8 * 1024, .field_bytes = 64 * 1024};
  const std::string html = render_html(result, limits);
  EXPECT_LE(html.size(), limits.html_bytes);
  EXPECT_TRUE(contains(html, "<h4>Test 1</h4>"));
  EXPECT_TRUE(contains(html, "&quot;&quot;\n[output truncated]</pre>"));
  EXPECT_TRUE(contains(html, "&lt;&lt;\n[output truncated]</pre>"));
  EXPECT_FALSE(first_invalid_utf8(html).has_value());
}

TEST(GradingRender, CapsEachFieldAndErrorList) {
  GraderResult result;
  result.errors = std::vector<std::string>(50, std::string(1000, 'r'));
  const RenderLimits limits{.html_bytes = 10 * 1024, .field_bytes = 512};
  const std::string html = render_html(result, limits);
  EXPECT_LE(html.size(), limits.html_bytes);
  EXPECT_FALSE(contains(html, std::string(600, 'r')));
  EXPECT_GT(count(html, "<li><pre>"), 5u);
  EXPECT_LT(count(html, "<li><pre>"), 50u);
  EXPECT_TRUE(contains(html, "<p>[output truncated]</p>"));
  EXPECT_TRUE(contains(html, "</ul>\n</div>"));
}

}  // namespace
}  // namespace xqw::grading
