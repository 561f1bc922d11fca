// Grader path resolution: every way a payload might point outside the course's grader_root.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "grading/job.hpp"

namespace xqw::grading {
namespace {
namespace fs = std::filesystem;

class GraderPaths : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() / ("xqw-paths-" + std::to_string(std::random_device{}()));
    root_ = base_ / "course";
    fs::create_directories(root_ / "ex1");
    fs::create_directories(base_ / "other");
    std::ofstream(root_ / "ex1" / "grader.py") << "# grader\n";
    std::ofstream(base_ / "other" / "answer.py") << "secret\n";
    fs::create_symlink(base_ / "other" / "answer.py", root_ / "ex1" / "escape.py");
    fs::create_symlink(base_ / "other", root_ / "linked-dir");
    fs::create_symlink(root_ / "ex1" / "grader.py", root_ / "alias.py");
  }
  void TearDown() override { fs::remove_all(base_); }

  std::string refusal(const std::string& relative) {
    auto result = resolve_grader(root_, relative);
    return result ? "" : result.error().reason;
  }

  fs::path base_, root_;
};

TEST_F(GraderPaths, ResolvesARelativeGraderToItsProblemDirectory) {
  auto result = resolve_grader(root_, "ex1/grader.py");
  ASSERT_TRUE(result.has_value()) << refusal("ex1/grader.py");
  EXPECT_EQ(result->problem_dir, fs::canonical(root_ / "ex1"));
  EXPECT_EQ(result->file_name, "grader.py");
}

TEST_F(GraderPaths, SymlinkInsideTheRootIsFollowed) {
  auto result = resolve_grader(root_, "alias.py");
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->problem_dir, fs::canonical(root_ / "ex1"));
}

TEST_F(GraderPaths, DotDotIsRefusedEvenWhenItWouldStayInside) {
  EXPECT_NE(refusal("../other/answer.py").find("'..'"), std::string::npos);
  EXPECT_NE(refusal("ex1/../ex1/grader.py").find("'..'"), std::string::npos);
}

TEST_F(GraderPaths, AbsolutePathOutsideTheRootIsRefused) {
  const auto reason = refusal((base_ / "other" / "answer.py").string());
  EXPECT_NE(reason.find("outside grader_root"), std::string::npos) << reason;
  EXPECT_NE(refusal("/etc/passwd").find("outside grader_root"), std::string::npos);
}

TEST_F(GraderPaths, AbsolutePathInsideTheRootIsAccepted) {
  auto result = resolve_grader(root_, (root_ / "ex1" / "grader.py").string());
  EXPECT_TRUE(result.has_value());
}

TEST_F(GraderPaths, SymlinksThatEscapeAreRefused) {
  EXPECT_NE(refusal("ex1/escape.py").find("outside grader_root"), std::string::npos);
  EXPECT_NE(refusal("linked-dir/answer.py").find("outside grader_root"), std::string::npos);
}

TEST_F(GraderPaths, MissingEmptyAndNonFilePathsAreRefused) {
  EXPECT_NE(refusal("ex1/nope.py").find("not found"), std::string::npos);
  EXPECT_NE(refusal("").find("empty"), std::string::npos);
  EXPECT_NE(refusal("ex1").find("not a regular file"), std::string::npos);
  EXPECT_NE(refusal(std::string("ex1/grader.py\0x", 15)).find("NUL"), std::string::npos);
}

TEST_F(GraderPaths, MissingRootIsNamed) {
  auto result = resolve_grader(base_ / "missing", "ex1/grader.py");
  ASSERT_TRUE(!result.has_value());
  EXPECT_NE(result.error().reason.find("grader_root"), std::string::npos);
}

TEST(GraderPayload, ReadsTheGraderFromObjectsAndJsonStrings) {
  EXPECT_EQ(grader_from_payload({{"grader", "ex1/grader.py"}}), "ex1/grader.py");
  EXPECT_EQ(grader_from_payload(nlohmann::json(R"({"grader": "a/b.py"})")), "a/b.py");
  EXPECT_FALSE(grader_from_payload(nlohmann::json("not json")).has_value());
  EXPECT_FALSE(grader_from_payload({{"grader", 5}}).has_value());
  EXPECT_FALSE(grader_from_payload({{"other", "x"}}).has_value());
}

TEST(JobDirectoryTest, WritesSubmissionAndJobJsonAndRemovesThem) {
  const auto work = fs::temp_directory_path() / ("xqw-work-" + std::to_string(std::random_device{}()));
  GradeJob job;
  job.grader = "ex1/grader.py";
  job.student_response = std::string("print('hi')\n\xff\x00 bytes", 21);
  job.grader_payload = {{"grader", "ex1/grader.py"}};
  job.seed = 42;
  fs::path where;
  {
    JobDirectory dir(work, "job-1", job, 20.0, "grader.py");
    where = dir.path();
    std::ifstream submission(where / "submission", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(submission)), {});
    EXPECT_EQ(bytes, job.student_response) << "the submission must arrive byte for byte";
    std::ifstream description(where / "job.json");
    auto parsed = nlohmann::json::parse(description);
    EXPECT_EQ(parsed["grader"], "grader.py") << "the path inside the container's grader mount";
    EXPECT_FALSE(fs::exists(where / "job.json.tmp")) << "job.json is renamed into place";
    EXPECT_EQ(parsed["seed"], 42);
    EXPECT_EQ(parsed["timeout_seconds"], 20.0);
    EXPECT_EQ(parsed["grader_payload"]["grader"], "ex1/grader.py");
    EXPECT_EQ(parsed["lang"], "en");
    EXPECT_EQ(parsed["hide_output"], false);
  }
  EXPECT_FALSE(fs::exists(where));
  fs::remove_all(work);
}

TEST(JobDirectoryTest, TheReadyFifoWakesOnlyAReaderThatHoldsItOpen) {
  const auto work = fs::temp_directory_path() / ("xqw-work-" + std::to_string(std::random_device{}()));
  {
    JobDirectory dir(work, "job-2");
    EXPECT_EQ(dir.wake_reader(), JobDirectory::Wake::Unavailable) << "no FIFO yet";
    ASSERT_TRUE(dir.make_ready_fifo());
    const auto fifo = dir.path() / kJobReadyFifo;
    EXPECT_TRUE(fs::is_fifo(fifo));
    const auto readable_by_others = ::geteuid() == 0 ? fs::perms::none : fs::perms::others_read;
    EXPECT_EQ(fs::status(fifo).permissions(),
              fs::perms::owner_read | fs::perms::owner_write | readable_by_others)
        << "the container's root reads it as its owner, or as others when the watcher is not root";
    EXPECT_EQ(dir.wake_reader(), JobDirectory::Wake::NoReader)
        << "nobody reads it: the supervisor has not opened it yet, or never will (the signal then)";

    const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
    ASSERT_GE(reader, 0);
    EXPECT_EQ(dir.wake_reader(), JobDirectory::Wake::Woken);
    char byte = 0;
    EXPECT_EQ(::read(reader, &byte, 1), 1) << "the wake-up is one byte in the pipe";
    ::close(reader);
    EXPECT_FALSE(dir.make_ready_fifo()) << "made once";
  }
  fs::remove_all(work);
}

}  // namespace
}  // namespace xqw::grading
