// `grade --course`'s pure parts: the expectations file, key -> grader, comparison, exit codes, and the
// progress, table and JSON renderings.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "cli/course.hpp"

namespace xqw::cli::course {
namespace {
namespace fs = std::filesystem;
using std::chrono::milliseconds;

std::vector<InputError> errors_of(std::string_view text) {
  auto parsed = parse_expectations(text, "course/expected.json");
  EXPECT_FALSE(parsed.has_value());
  return parsed ? std::vector<InputError>{} : parsed.error();
}

std::string only_error(std::string_view text) {
  const auto errors = errors_of(text);
  EXPECT_EQ(errors.size(), 1u);
  return errors.empty() ? "" : errors.front().to_string();
}

TEST(CourseGraderFor, TheGraderSitsNextToTheSubmissionsDirectory) {
  EXPECT_EQ(grader_for("01-average/submissions/right.py").value(), "01-average/grader.py");
  EXPECT_EQ(grader_for("week1/ex1/submissions/a.py").value(), "week1/ex1/grader.py");
  EXPECT_EQ(grader_for("ex/submissions/edge/cases/a.py").value(), "ex/grader.py");
  EXPECT_EQ(grader_for("submissions/a.py").value(), "grader.py");
}

TEST(CourseGraderFor, AKeyOutsideASubmissionsDirectoryHasNone) {
  EXPECT_FALSE(grader_for("01-average/right.py"));
  EXPECT_FALSE(grader_for("01-average/submissions"));
  EXPECT_NE(grader_for("x.py").error().find("PROBLEM/submissions/FILE"), std::string::npos);
}

TEST(CourseExpectations, ParsesTheDemoCourseForm) {
  auto parsed = parse_expectations(
      R"({"02-b/submissions/wrong.py": 0.3333333333333333, "01-a/submissions/right.py": 1, "01-a/submissions/error.py": 0.0})",
      "expected.json");
  ASSERT_TRUE(parsed.has_value());
  ASSERT_EQ(parsed->size(), 3u);
  EXPECT_EQ((*parsed)[0].key, "01-a/submissions/error.py");  // sorted by key
  EXPECT_EQ((*parsed)[1].grader, "01-a/grader.py");
  EXPECT_DOUBLE_EQ((*parsed)[1].score, 1.0);
  EXPECT_EQ((*parsed)[2].grader, "02-b/grader.py");
  EXPECT_DOUBLE_EQ((*parsed)[2].score, 1.0 / 3);
}

TEST(CourseExpectations, NotJsonNamesTheFileAndWhere) {
  const auto error = only_error("{\"a/submissions/x.py\": 1,\n}");
  EXPECT_NE(error.find("course/expected.json: is not JSON: "), std::string::npos) << error;
  EXPECT_NE(error.find("line 2"), std::string::npos) << error;
  EXPECT_EQ(error.find("json.exception"), std::string::npos) << error;
}

TEST(CourseExpectations, TheDocumentMustBeAnObjectWithEntries) {
  EXPECT_NE(only_error("[1, 2]").find("must be a JSON object"), std::string::npos);
  EXPECT_NE(only_error("[1, 2]").find("not an array"), std::string::npos);
  EXPECT_NE(only_error("{}").find("lists no submissions"), std::string::npos);
}

TEST(CourseExpectations, AScoreThatIsNotANumberNamesTheKey) {
  const auto error = only_error(R"({"a/submissions/x.py": "1.0"})");
  EXPECT_EQ(error,
            "course/expected.json: key \"a/submissions/x.py\": the expected score must be a number, "
            "not a string (\"1.0\")");
  EXPECT_NE(only_error(R"({"a/submissions/x.py": true})").find("not a boolean"), std::string::npos);
  EXPECT_NE(only_error(R"({"a/submissions/x.py": null})").find("not a null"), std::string::npos);
}

TEST(CourseExpectations, AScoreOutsideZeroToOneIsRefused) {
  EXPECT_NE(only_error(R"({"a/submissions/x.py": 2})").find("2 is outside 0..1"), std::string::npos);
  EXPECT_NE(only_error(R"({"a/submissions/x.py": -0.5})").find("outside 0..1"), std::string::npos);
}

TEST(CourseExpectations, KeysMustStayInTheCourseAndNameASubmission) {
  EXPECT_NE(only_error(R"({"/etc/submissions/passwd": 1})").find("must be relative"), std::string::npos);
  EXPECT_NE(only_error(R"({"../x/submissions/a.py": 1})").find("'..'"), std::string::npos);
  EXPECT_NE(only_error(R"({"a/x.py": 1})").find("key \"a/x.py\": is not in a problem's submissions"),
            std::string::npos);
  EXPECT_NE(only_error(R"({"": 1})").find("is empty"), std::string::npos);
}

TEST(CourseExpectations, EveryProblemIsReportedNotOnlyTheFirst) {
  const auto errors = errors_of(R"({"a/submissions/x.py": "1", "b/y.py": 1, "c/submissions/z.py": 1})");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].key, "a/submissions/x.py");
  EXPECT_EQ(errors[1].key, "b/y.py");
}

class CourseFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    course_ = fs::temp_directory_path() / ("xqw-course-" + std::to_string(std::random_device{}()));
    fs::create_directories(course_ / "ex1" / "submissions" / "dir.py");
    fs::create_directories(course_ / "ex2" / "submissions");
    std::ofstream(course_ / "ex1" / "grader.py") << "# grader\n";
    std::ofstream(course_ / "ex1" / "submissions" / "right.py") << "x = 1\n";
    std::ofstream(course_ / "ex2" / "submissions" / "right.py") << "x = 1\n";
  }
  void TearDown() override { fs::remove_all(course_); }
  std::vector<InputError> check(const std::string& key) {
    return check_files({{.key = key, .grader = grader_for(key).value(), .score = 1}}, course_, "exp.json");
  }
  fs::path course_;
};

TEST_F(CourseFiles, AListedSubmissionWithItsGraderPasses) {
  EXPECT_TRUE(check("ex1/submissions/right.py").empty());
}

TEST_F(CourseFiles, AMissingSubmissionIsNamedWithItsPath) {
  const auto errors = check("ex1/submissions/gone.py");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].to_string(), "exp.json: key \"ex1/submissions/gone.py\": no such file " +
                                       (course_ / "ex1/submissions/gone.py").string());
}

TEST_F(CourseFiles, ADirectoryIsNotASubmission) {
  const auto errors = check("ex1/submissions/dir.py");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].reason.find("is not a regular file"), std::string::npos);
}

TEST_F(CourseFiles, AMissingGraderIsNamed) {
  const auto errors = check("ex2/submissions/right.py");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].reason.find("its grader " + (course_ / "ex2/grader.py").string() + " does not exist"),
            std::string::npos);
}

Expectation expecting(const std::string& key, double score) {
  return {.key = key, .grader = grader_for(key).value(), .score = score};
}

TEST(CourseComparison, ScoresMatchWithinTheTolerance) {
  EXPECT_TRUE(matches(1.0 / 3, 0.3333333333333333));
  EXPECT_TRUE(matches(0.333333, 0.3333333));
  EXPECT_FALSE(matches(0.33, 1.0 / 3));
  EXPECT_FALSE(matches(1, 0));
  EXPECT_EQ(graded_row(expecting("a/submissions/x.py", 1), 1, "graded", milliseconds(5)).status, Status::Ok);
  EXPECT_EQ(graded_row(expecting("a/submissions/x.py", 1), 0.5, "graded", milliseconds(5)).status,
            Status::Mismatch);
}

std::vector<Row> sample_rows() {
  return {
      graded_row(expecting("01-average/submissions/right.py", 1), 1, "graded", milliseconds(612)),
      graded_row(expecting("01-average/submissions/wrong.py", 0.5), 1.0 / 3, "graded", milliseconds(1500)),
      failed_row(expecting("02-rect/submissions/error.py", 0), Status::Unavailable,
                 "Docker engine: connection refused", milliseconds(3))};
}

TEST(CourseExitCode, EachOutcomeHasItsCode) {
  Summary all_ok{.total = 2, .ok = 2};
  EXPECT_EQ(exit_code(all_ok, false), 0);
  EXPECT_EQ(exit_code(Summary{.total = 2, .ok = 1, .mismatches = 1}, false), 1);
  EXPECT_EQ(exit_code(summarize(sample_rows()), false), 3);  // unavailable wins over a mismatch
  EXPECT_EQ(exit_code(all_ok, true), 130);
}

TEST(CourseSummary, CountsEveryStatus) {
  auto rows = sample_rows();
  rows.push_back({.expectation = expecting("03/submissions/a.py", 1)});
  rows.push_back(
      failed_row(expecting("03/submissions/b.py", 1), Status::Interrupted, "gone", milliseconds(1)));
  const auto summary = summarize(rows);
  EXPECT_EQ(summary.total, 5u);
  EXPECT_EQ(summary.ok, 1u);
  EXPECT_EQ(summary.mismatches, 1u);
  EXPECT_EQ(summary.unavailable, 1u);
  EXPECT_EQ(summary.not_run, 1u);
  EXPECT_EQ(summary.interrupted, 1u);
}

TEST(CourseTable, ListsEveryRowAlignedWithTheMismatchNamed) {
  const RunInfo run{.jobs = 2, .elapsed = milliseconds(2150)};
  const auto table = render_table(sample_rows(), run, false);
  EXPECT_EQ(table,
            "submission                          score  expected  verdict  result         time\n"
            "-------------------------------  --------  --------  -------  -----------  ------\n"
            "01-average/submissions/right.py         1         1  graded   ok           0.61 s\n"
            "01-average/submissions/wrong.py  0.333333       0.5  graded   MISMATCH     1.50 s\n"
            "02-rect/submissions/error.py            -         0  -        unavailable  0.00 s\n"
            "MISMATCH 01-average/submissions/wrong.py: scored 0.333333, expected 0.5 (verdict graded)\n"
            "unavailable 02-rect/submissions/error.py: Docker engine: connection refused\n"
            "3 submissions: 1 ok, 1 MISMATCH, 1 could not be graded in 2.1 s with 2 at once\n")
      << table;
}

TEST(CourseTable, ColorPaintsOnlyTheResultColumn) {
  const auto table = render_table(sample_rows(), RunInfo{}, true);
  EXPECT_NE(table.find("\033[32mok         \033[0m"), std::string::npos) << table;
  EXPECT_NE(table.find("\033[1;31mMISMATCH   \033[0m"), std::string::npos) << table;
  EXPECT_EQ(render_table(sample_rows(), RunInfo{}, false).find('\033'), std::string::npos);
}

TEST(CourseTable, AnInterruptedRunSaysSo) {
  std::vector<Row> rows{graded_row(expecting("a/submissions/x.py", 1), 1, "graded", milliseconds(10)),
                        {.expectation = expecting("a/submissions/y.py", 1)}};
  const auto table = render_table(rows, RunInfo{.interrupted = true}, false);
  EXPECT_NE(table.find("a/submissions/y.py      -         1  -        not run       -\n"), std::string::npos)
      << table;
  EXPECT_NE(table.find("2 submissions: 1 ok, interrupted (1 not graded)"), std::string::npos) << table;
}

TEST(CourseJson, TheWholeReportWithEverySubmission) {
  const RunInfo run{.course = "course",
                    .expectations = "course/expected.json",
                    .image = "img:1",
                    .jobs = 2,
                    .elapsed = milliseconds(1500)};
  const auto report = render_json(sample_rows(), run);
  EXPECT_EQ(report["course"], "course");
  EXPECT_TRUE(report["queue"].is_null());
  EXPECT_EQ(report["exit_code"], 3);
  EXPECT_EQ(report["summary"]["mismatches"], 1);
  EXPECT_DOUBLE_EQ(report["seconds"].get<double>(), 1.5);
  ASSERT_EQ(report["submissions"].size(), 3u);
  const auto& wrong = report["submissions"][1];
  EXPECT_EQ(wrong["submission"], "01-average/submissions/wrong.py");
  EXPECT_EQ(wrong["grader"], "01-average/grader.py");
  EXPECT_EQ(wrong["result"], "MISMATCH");
  EXPECT_EQ(wrong["ok"], false);
  EXPECT_DOUBLE_EQ(wrong["score"].get<double>(), 1.0 / 3);
  EXPECT_DOUBLE_EQ(wrong["expected"].get<double>(), 0.5);
  const auto& error = report["submissions"][2];
  EXPECT_TRUE(error["score"].is_null());
  EXPECT_TRUE(error["verdict"].is_null());
  EXPECT_EQ(error["error"], "Docker engine: connection refused");
  EXPECT_FALSE(report["submissions"][0].contains("error"));
}

TEST(CourseProgress, OneLinePerSubmission) {
  const auto rows = sample_rows();
  EXPECT_EQ(progress_line(rows[0], 3, 21),
            "[ 3/21] ok          01-average/submissions/right.py  score 1, expected 1, graded in 0.61 s");
  EXPECT_EQ(
      progress_line(rows[1], 12, 21),
      "[12/21] MISMATCH    01-average/submissions/wrong.py  score 0.333333, expected 0.5, graded in 1.50 s");
  EXPECT_EQ(progress_line(rows[2], 4, 9),
            "[4/9] unavailable 02-rect/submissions/error.py: Docker engine: connection refused");
}

TEST(CourseProgress, TheBarFillsAndFitsTheTerminal) {
  EXPECT_EQ(progress_bar(0, 21, 0, "", 80), "[------------------------]  0/21");
  EXPECT_EQ(progress_bar(7, 21, 1, "a/submissions/x.py", 80),
            "[########----------------]  7/21  1 mismatch  a/submissions/x.py");
  EXPECT_EQ(progress_bar(21, 21, 2, "", 80), "[########################] 21/21  2 mismatches");
  EXPECT_EQ(progress_bar(7, 21, 0, "a/very/long/submissions/name.py", 40).size(), 40u);
}

}  // namespace
}  // namespace xqw::cli::course
