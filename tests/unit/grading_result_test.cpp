#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "grading/result.hpp"
#include "grading/utf8_text.hpp"

namespace xqw::grading {
namespace {

// Why the output is not a result; empty when it is one.
std::string invalid_reason(const ParsedOutput& parsed) {
  return parsed ? std::string() : parsed.error().reason;
}

std::string upstream(const std::string& tests, const std::string& errors = "[]") {
  return R"({"correct": false, "score": 0.5, "errors": )" + errors + R"(, "tests": )" + tests + "}";
}

TEST(GradingParse, ReadsTheUpstreamShape) {
  const auto parsed = parse_grader_output(
      R"({"correct": true, "score": 1, "errors": ["warn"],
          "tests": [["Test 1", "adds numbers", true, "3\n", "3\n"], ["Test 2", "", false, "a", "b"]]})"
      "\n");
  ASSERT_TRUE(parsed.has_value()) << invalid_reason(parsed);
  const GraderResult& result = *parsed;
  EXPECT_TRUE(result.correct);
  EXPECT_DOUBLE_EQ(result.score, 1.0);
  EXPECT_EQ(result.errors, std::vector<std::string>{"warn"});
  ASSERT_EQ(result.tests.size(), 2u);
  EXPECT_EQ(result.tests[0].short_description, "Test 1");
  EXPECT_EQ(result.tests[0].long_description, "adds numbers");
  EXPECT_TRUE(result.tests[0].correct);
  EXPECT_EQ(result.tests[0].expected_output, "3\n");
  EXPECT_EQ(result.tests[0].actual_output, "3\n");
  EXPECT_FALSE(result.tests[1].correct);
  EXPECT_EQ(result.tests[1].expected_output, "a");
  EXPECT_EQ(result.tests[1].actual_output, "b");
  EXPECT_FALSE(result.html_msg.has_value());
}

TEST(GradingParse, ReadsTheMessageShape) {
  const auto parsed = parse_grader_output(R"(  {"correct": false, "score": 0.25, "msg": "<p>2 of 8</p>"}  )");
  ASSERT_TRUE(parsed.has_value()) << invalid_reason(parsed);
  EXPECT_FALSE(parsed->correct);
  EXPECT_DOUBLE_EQ(parsed->score, 0.25);
  EXPECT_EQ(parsed->html_msg, "<p>2 of 8</p>");
  EXPECT_TRUE(parsed->tests.empty());
  EXPECT_TRUE(parsed->errors.empty());
}

TEST(GradingParse, AcceptsScoreBoundsAndUnicode) {
  for (const char* score : {"0", "1", "0.0", "1.0", "1e-3"}) {
    SCOPED_TRACE(score);
    EXPECT_TRUE(parse_grader_output(std::string(R"({"correct":false,"score":)") + score +
                                    R"(,"errors":[],"tests":[]})")
                    .has_value());
  }
  const auto parsed = parse_grader_output(upstream(R"([["Tëst \u2603", "", true, "日本", "\ud83d\ude00"]])"));
  ASSERT_TRUE(parsed.has_value()) << invalid_reason(parsed);
  EXPECT_EQ(parsed->tests[0].short_description, "Tëst \xE2\x98\x83");
  EXPECT_EQ(parsed->tests[0].actual_output, "\xF0\x9F\x98\x80");
}

struct InvalidCase {
  std::string output;
  std::string reason;
};

TEST(GradingParse, RejectsEveryMalformedOutputWithAPreciseReason) {
  const std::vector<InvalidCase> cases = {
      {"", "stdout is empty"},
      {" \n\t", "stdout holds only whitespace"},
      {"Hello\n" + upstream("[]"), "stdout does not start with a JSON object: 'H' at offset 0"},
      {"[1, 2]", "stdout does not start with a JSON object: '[' at offset 0"},
      {"\"text\"", "stdout does not start with a JSON object: '\"' at offset 0"},
      {upstream("[]") + "\nextra", "unexpected 'e' at offset 60 after the JSON object"},
      {upstream("[]") + upstream("[]"), "unexpected '{' at offset 59 after the JSON object"},
      {R"({"correct": true, "score": 1, "err)", "stdout ends before the JSON object is complete"},
      {"{\"correct\": true, \"score\": 1, \"errors\": [\"\xC3\x28\"], \"tests\": []}",
       "stdout is not valid UTF-8 (byte 0xc3 at offset 42)"},
      {R"({"correct": true, "score": 1, "errors": ["\ud800"], "tests": []})", "surrogate"},
      {R"({"correct": true, "score": NaN, "errors": [], "tests": []})",
       "stdout is not valid JSON: parse error"},
      {R"({"correct": true, "score": 1e999, "errors": [], "tests": []})", "number overflow"},
      {R"({"correct": true, "score": 1, "errors": [], "tests": [],})", "stdout is not valid JSON"},
      {R"({"score": 1, "errors": [], "tests": []})", "missing key \"correct\" in the result"},
      {R"({"correct": true, "errors": [], "tests": []})", "missing key \"score\" in the result"},
      {R"({"correct": true, "score": 1, "tests": []})", "missing key \"errors\" in the result"},
      {R"({"correct": true, "score": 1, "errors": []})", "missing key \"tests\" in the result"},
      {R"({"correct": true, "score": 1})", "missing key \"errors\" in the result"},
      {R"({"correct": true, "msg": "x"})", "missing key \"score\" in the result"},
      {R"({"correct": true, "score": 1, "errors": [], "tests": [], "extra": 1})",
       "unexpected key \"extra\" in the result (expected correct, score, errors, tests)"},
      {R"({"correct": true, "score": 1, "msg": "x", "tests": []})",
       "the result has both \"msg\" and \"tests\""},
      {R"({"correct": true, "score": 1, "errors": [], "tests": [], "score": 0})", "duplicate key \"score\""},
      {R"({"correct": "yes", "score": 1, "errors": [], "tests": []})",
       "correct is a string, expected boolean"},
      {R"({"correct": 1, "score": 1, "errors": [], "tests": []})", "correct is a number, expected boolean"},
      {R"({"correct": true, "score": "1", "errors": [], "tests": []})",
       "score is a string, expected a number between 0 and 1"},
      {R"({"correct": true, "score": null, "errors": [], "tests": []})", "score is null, expected a number"},
      {R"({"correct": true, "score": 1.5, "errors": [], "tests": []})",
       "score is 1.5, expected a number between 0 and 1"},
      {R"({"correct": false, "score": -0.25, "errors": [], "tests": []})", "score is -0.25, expected"},
      {R"({"correct": false, "score": 0, "errors": "boom", "tests": []})",
       "errors is a string, expected an array of strings"},
      {upstream("[]", R"(["ok", 2])"), "errors[1] is a number, expected string"},
      {upstream("{}"), "tests is an object, expected an array of tests"},
      {upstream(R"([{"short": "a"}])"), "tests[0] is an object, expected an array [short, long, correct"},
      {upstream(R"([["a", "b", true, "c", "d"], ["a", "b", true, "c"]])"),
       "tests[1] has 4 items, expected 5"},
      {upstream(R"([["a", "b", true, "c", "d", "e"]])"), "tests[0] has 6 items, expected 5"},
      {upstream(R"([["a", "b", true, "c", "d"], ["a", "b", true, "c", "d"], ["a", "b", "true", "c", "d"]])"),
       "tests[2][2] is a string, expected boolean"},
      {upstream(R"([[null, "b", true, "c", "d"]])"), "tests[0][0] is null, expected string"},
      {upstream(R"([["a", ["b"], true, "c", "d"]])"), "tests[0][1] is an array, expected string"},
      {upstream(R"([["a", "b", false, 3, "d"]])"), "tests[0][3] is a number, expected string"},
      {upstream(R"([["a", "b", false, "c", {}]])"), "tests[0][4] is an object, expected string"},
      {R"({"correct": true, "score": 1, "msg": 5})", "msg is a number, expected string"},
  };
  for (const InvalidCase& invalid_case : cases) {
    SCOPED_TRACE(invalid_case.output);
    const auto parsed = parse_grader_output(invalid_case.output);
    EXPECT_FALSE(parsed.has_value());
    EXPECT_NE(invalid_reason(parsed).find(invalid_case.reason), std::string::npos)
        << "reason was: " << invalid_reason(parsed);
  }
}

TEST(GradingParse, KeepsReasonsShortEvenForHostileKeys) {
  const std::string key(5000, 'k');
  const auto parsed =
      parse_grader_output(R"({"correct": true, "score": 1, "errors": [], "tests": [], ")" + key + R"(": 1})");
  ASSERT_FALSE(parsed.has_value());
  EXPECT_LE(invalid_reason(parsed).size(), 300u);
  EXPECT_NE(invalid_reason(parsed).find("unexpected key \"kkk"), std::string::npos);
}

TEST(GradingParse, TruncatesOversizedFieldsInsteadOfRejecting) {
  const std::string big(100 * 1024, 'x');
  const auto parsed = parse_grader_output(
      upstream(R"([["short", "long", false, ")" + big + R"(", ")" + big + R"("]])", R"([")" + big + R"("])"),
      ParseLimits{.field_bytes = 1024});
  ASSERT_TRUE(parsed.has_value()) << invalid_reason(parsed);
  for (const std::string* field :
       {&parsed->tests[0].expected_output, &parsed->tests[0].actual_output, &parsed->errors[0]}) {
    EXPECT_LE(field->size(), 1024u);
    EXPECT_EQ(field->substr(0, 100), big.substr(0, 100));
    EXPECT_TRUE(field->ends_with("\n[output truncated]")) << field->substr(field->size() - 30);
  }
  EXPECT_EQ(parsed->tests[0].short_description, "short");
}

TEST(GradingParse, TruncatesTheMessageShapeWithoutSplittingCharacters) {
  std::string snowmen;
  for (int i = 0; i < 2000; ++i) snowmen += "\xE2\x98\x83";
  const auto parsed = parse_grader_output(R"({"correct": true, "score": 1, "msg": ")" + snowmen + R"("})",
                                          ParseLimits{.field_bytes = 1000});
  ASSERT_TRUE(parsed.has_value()) << invalid_reason(parsed);
  const std::string& message = *parsed->html_msg;
  EXPECT_LE(message.size(), 1000u);
  EXPECT_FALSE(first_invalid_utf8(message).has_value());
  EXPECT_TRUE(message.ends_with("[output truncated]"));
}

TEST(GradingParse, LeavesFieldsAtTheCapUntouched) {
  const std::string exact(64, 'y');
  const auto parsed = parse_grader_output(upstream(R"([["s", "l", true, "e", ")" + exact + R"("]])"),
                                          ParseLimits{.field_bytes = 64});
  ASSERT_TRUE(parsed.has_value()) << invalid_reason(parsed);
  EXPECT_EQ(parsed->tests[0].actual_output, exact);
}

}  // namespace
}  // namespace xqw::grading
