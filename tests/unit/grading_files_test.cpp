// Uploaded files on grading's side: the pre-check (nothing fetched or run for a refused submission), the
// safe names and job.json listing of the job directory, and the student messages of the two file verdicts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "grading/container_grader.hpp"
#include "grading/job.hpp"
#include "grading/verdict.hpp"

namespace xqw::grading {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string message(const GradeReport& report) {
  return report.outcome.result.errors.empty() ? "" : report.outcome.result.errors.front();
}

class Precheck : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("xqw-precheck-" + std::to_string(std::random_device{}()));
    fs::create_directories(root_ / "ex1");
    std::ofstream(root_ / "ex1" / "grader.py") << "# grader\n";
    queue_.queue = "q";
    queue_.grader_root = root_;
    queue_.limits.submission_bytes = 100;
    queue_.files.max_count = 2;
    queue_.files.max_size_bytes = 10;
    queue_.files.max_total_bytes = 15;
    job_.grader = "ex1/grader.py";
    job_.grader_payload = {{"grader", "ex1/grader.py"}};
    job_.student_response = "print(1)\n";
  }
  void TearDown() override { fs::remove_all(root_); }

  std::optional<GradeReport> refusal(std::size_t listed_files = 0) {
    auto checked = precheck(queue_, ImageContract{}, job_, listed_files);
    if (!checked) return checked.error();
    return std::nullopt;
  }

  fs::path root_;
  QueueGrading queue_;
  GradeJob job_;
};

TEST_F(Precheck, AcceptsASubmissionWithinEveryLimitAndNamesItsGrader) {
  auto checked = precheck(queue_, ImageContract{}, job_, 2);
  ASSERT_TRUE(checked.has_value());
  EXPECT_EQ(checked->file_name, "grader.py");
  job_.files = {{"a.txt", "0123456789"}, {"b.txt", "01234"}};  // each at max_size, together at max_total
  EXPECT_FALSE(refusal(2)) << message(*refusal(2));
}

TEST_F(Precheck, RefusesInTheOrderTheWatcherWouldFetch) {
  // Too large and too many files at once: the submission's own size is reported, nothing else is looked at.
  job_.student_response.assign(101, 'x');
  auto report = refusal(5);
  ASSERT_TRUE(report);
  EXPECT_EQ(report->outcome.verdict, Verdict::SubmissionTooLarge);
  EXPECT_THAT(report->html, HasSubstr("ERROR"));

  job_.student_response = "";
  job_.grader = "../escape/grader.py";
  job_.grader_payload = {{"grader", "../escape/grader.py"}};
  report = refusal(5);
  ASSERT_TRUE(report);
  EXPECT_EQ(report->outcome.verdict, Verdict::GraderNotFound);

  job_.grader.reset();
  job_.grader_payload = {{"other", 1}};
  ASSERT_TRUE(refusal(0));
  EXPECT_EQ(refusal(0)->outcome.verdict, Verdict::GraderNotFound);
}

TEST_F(Precheck, ReadsTheGraderFromTheJobNeverFromThePayload) {
  // Whoever built the job set job.grader once; the payload only travels on to job.json.
  job_.grader.reset();
  auto report = refusal();
  ASSERT_TRUE(report) << "a payload naming a grader is not read again";
  EXPECT_EQ(report->outcome.verdict, Verdict::GraderNotFound);
  EXPECT_EQ(report->outcome.staff_reason, "grader_payload has no \"grader\" path");

  job_.grader = "ex1/grader.py";
  job_.grader_payload = nlohmann::json::object();
  auto checked = precheck(queue_, ImageContract{}, job_, 0);
  ASSERT_TRUE(checked.has_value());
  EXPECT_EQ(checked->problem_dir, fs::canonical(root_ / "ex1"));

  job_.grader = "";  // named, but empty: resolve_grader's own reason, as before
  report = refusal();
  ASSERT_TRUE(report);
  EXPECT_EQ(report->outcome.verdict, Verdict::GraderNotFound);
  EXPECT_EQ(report->outcome.staff_reason, "the grader_payload names an empty grader path");
}

TEST_F(Precheck, TooManyListedFilesAreRefusedBeforeAnyIsFetched) {
  const auto report = refusal(3);
  ASSERT_TRUE(report);
  EXPECT_EQ(report->outcome.verdict, Verdict::FilesTooLarge);
  EXPECT_EQ(message(*report), "You submitted 3 files; this problem accepts at most 2 files.");
  EXPECT_THAT(report->outcome.staff_reason, HasSubstr("files.max_count is 2"));
  EXPECT_EQ(report->outcome.result.score, 0.0);
  EXPECT_THAT(report->html, HasSubstr("You submitted 3 files"));

  queue_.files.max_count = 0;
  EXPECT_EQ(message(*refusal(1)),
            "This problem does not accept uploaded files; please submit your answer as text.");
  EXPECT_FALSE(refusal(0)) << "no files, nothing to refuse";
}

TEST_F(Precheck, AttachedFilesAreHeldToTheSizeCaps) {
  job_.files = {{"ok.txt", "12345"}, {"big <b>.txt", std::string(11, 'x')}};
  auto report = refusal(2);
  ASSERT_TRUE(report);
  EXPECT_EQ(report->outcome.verdict, Verdict::FilesTooLarge);
  EXPECT_EQ(message(*report),
            "Your file \"big <b>.txt\" is larger than the 10 bytes this problem accepts for each file.");
  EXPECT_THAT(report->html, HasSubstr("big &lt;b&gt;.txt")) << "the file name is the student's: escaped";

  job_.files = {{"a", "0123456789"}, {"b", "012345"}};
  report = refusal(2);
  ASSERT_TRUE(report);
  EXPECT_EQ(message(*report), "Your files together are larger than the 15 bytes this problem accepts.");
  EXPECT_THAT(report->outcome.staff_reason, HasSubstr("total 16 bytes; files.max_total is 15"));
}

TEST_F(Precheck, QueueMessagesReplaceTheWordingWithTheCapInLimit) {
  queue_.messages["files_too_large"] = "Too much: {limit}.";
  EXPECT_EQ(message(*refusal(3)), "Too much: 2 files.");
  job_.files = {{"a", std::string(11, 'x')}};
  EXPECT_EQ(message(*refusal(1)), "Too much: 10 bytes per file.");
  queue_.files.max_size_bytes = 1100;
  queue_.files.max_total_bytes = 2048;
  job_.files = {{"a", std::string(1024, 'x')}, {"b", std::string(1025, 'x')}};
  EXPECT_EQ(message(*refusal(2)), "Too much: 2 KiB in total.");
}

TEST(FileVerdicts, LabelsAndMessages) {
  EXPECT_EQ(verdict_label(Verdict::FilesTooLarge), "files_too_large");
  EXPECT_EQ(verdict_label(Verdict::FileUnavailable), "file_unavailable");
  EXPECT_EQ(verdict_from_label("file_unavailable"), Verdict::FileUnavailable);

  const MessageOverrides none;
  auto outcome = file_unavailable(FileProblem::Missing, "data.csv", none, "file 'data.csv': HTTP 404");
  EXPECT_EQ(outcome.verdict, Verdict::FileUnavailable);
  EXPECT_FALSE(outcome.result.correct);
  EXPECT_EQ(outcome.result.errors,
            std::vector<std::string>{
                "Your file \"data.csv\" could not be retrieved for grading. Please submit it again."});
  EXPECT_EQ(outcome.staff_reason, "file 'data.csv': HTTP 404");
  EXPECT_THAT(file_unavailable(FileProblem::Unreachable, "a", none, "x").result.errors.front(),
              HasSubstr("just now. Please submit again in a few minutes."));
  EXPECT_THAT(file_unavailable(FileProblem::NotAllowed, "a", none, "x").result.errors.front(),
              HasSubstr("(Staff debug: file location not allowed). Please contact the course staff."));
  const std::string long_name(300, 'n');
  EXPECT_THAT(file_unavailable(FileProblem::Missing, long_name, none, "x").result.errors.front(),
              HasSubstr("\"" + std::string(80, 'n') + "...\""));
  EXPECT_EQ(
      file_unavailable(FileProblem::Missing, "a", {{"file_unavailable", "Gone."}}, "x").result.errors.front(),
      "Gone.");
  // Reached without the worded helpers (failure_outcome), the verdicts still have a message.
  EXPECT_FALSE(failure_outcome(Verdict::FileUnavailable, {}, none, "x").result.errors.front().empty());
  EXPECT_FALSE(failure_outcome(Verdict::FilesTooLarge, {}, none, "x").result.errors.front().empty());
}

TEST(SafeFileNames, KeepSafeNamesAndMakeTheRestSafe) {
  EXPECT_EQ(safe_file_names({"solution.py", "data-1_final.CSV"}),
            (std::vector<std::string>{"solution.py", "data-1_final.CSV"}));
  const auto names = safe_file_names({"../../etc/passwd", "a/b\\c.py", "..", ".", ".hidden", "",
                                      std::string("x\0y", 3), "my file (1).py", "café.py", "日本.txt"});
  EXPECT_EQ(names, (std::vector<std::string>{"_.._etc_passwd", "a_b_c.py", "file", "file-2", "hidden",
                                             "file-3", "x_y", "my_file__1_.py", "caf_.py", "__.txt"}));
  for (const auto& name : names) {
    EXPECT_EQ(name.find('/'), std::string::npos);
    EXPECT_EQ(name.find('\\'), std::string::npos);
    EXPECT_EQ(name.find('\0'), std::string::npos);
    EXPECT_NE(name.front(), '.');
    EXPECT_NE(name, "..");
  }
}

TEST(SafeFileNames, LongNamesAreCutKeepingTheExtensionAndDuplicatesGetANumber) {
  const auto names = safe_file_names({std::string(300, 'a') + ".py", std::string(300, 'a') + ".py", "A.py",
                                      "a.py", "a_py", "a?py", "a-2.py"});
  ASSERT_EQ(names.size(), 7u);
  EXPECT_EQ(names[0], std::string(kMaxSafeNameBytes - 3, 'a') + ".py");
  EXPECT_EQ(names[1], std::string(kMaxSafeNameBytes - 5, 'a') + "-2.py");
  EXPECT_EQ(names[2], "A.py");
  EXPECT_EQ(names[3], "a-2.py") << "unique ignoring case";
  EXPECT_EQ(names[4], "a_py");
  EXPECT_EQ(names[5], "a_py-2");
  EXPECT_EQ(names[6], "a-2-2.py");
  std::set<std::string> distinct(names.begin(), names.end());
  EXPECT_EQ(distinct.size(), names.size());
  for (const auto& name : names) EXPECT_LE(name.size(), kMaxSafeNameBytes);
}

TEST(FilesListing, NamesPathsAndSizes) {
  const auto listing = files_listing({{"../x.py", "print(1)\n"}, {"x.py", ""}});
  EXPECT_EQ(listing, nlohmann::json::parse(R"([
      {"name": "../x.py", "path": "files/_x.py", "size": 9},
      {"name": "x.py", "path": "files/x.py", "size": 0}])"));
  EXPECT_EQ(files_listing({}), nlohmann::json::array());
}

TEST(JobDirectoryFiles, WritesFilesUnderFilesAndListsThemInJobJson) {
  const auto work = fs::temp_directory_path() / ("xqw-work-" + std::to_string(std::random_device{}()));
  GradeJob job;
  job.grader_payload = {{"grader", "ex1/grader.py"}};
  job.files = {{"../../answer.py", std::string("binary\0\xff", 8)}, {"notes.txt", "hello"}};
  fs::path where;
  {
    JobDirectory dir(work, "job-files", job, 20.0, "grader.py");
    where = dir.path();
    std::ifstream description(where / "job.json");
    const auto parsed = nlohmann::json::parse(description);
    ASSERT_EQ(parsed["files"].size(), 2u);
    EXPECT_EQ(parsed["files"][0]["name"], "../../answer.py");
    EXPECT_EQ(parsed["files"][0]["path"], "files/_.._answer.py");
    EXPECT_EQ(parsed["files"][0]["size"], 8);
    EXPECT_EQ(parsed["files"][1]["path"], "files/notes.txt");
    std::ifstream first(where / "files" / "_.._answer.py", std::ios::binary);
    EXPECT_EQ(std::string((std::istreambuf_iterator<char>(first)), {}), job.files[0].bytes);
    EXPECT_FALSE(fs::exists(work / "answer.py"));
    struct stat info {};
    ASSERT_EQ(::stat((where / "files").c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0755u);
    ASSERT_EQ(::stat((where / "files" / "notes.txt").c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0644u) << "readable by the container's user";
  }
  EXPECT_FALSE(fs::exists(where));

  job.files.clear();
  {
    JobDirectory dir(work, "job-none", job, 20.0, "grader.py");
    std::ifstream description(dir.path() / "job.json");
    EXPECT_EQ(nlohmann::json::parse(description)["files"], nlohmann::json::array());
    EXPECT_FALSE(fs::exists(dir.path() / "files")) << "no files directory without files";
  }
  fs::remove_all(work);
}

}  // namespace
}  // namespace xqw::grading
