// to_grade_job: the seam between XQueue's view and grading's, where the grader path is read, once.
#include <gtest/gtest.h>

#include "watcher/watcher.hpp"

namespace xqw::watcher {
namespace {

xqueue::Submission submission_with(nlohmann::json payload) {
  xqueue::Submission submission;
  submission.queue = "q";
  submission.submission_id = 7;
  submission.grader_payload = std::move(payload);
  submission.student_response = "print(1)\n";
  submission.student_info = {{"random_seed", 5}};
  return submission;
}

TEST(ToGradeJob, SetsTheGraderPathOnceFromThePayload) {
  const config::QueueConfig queue;
  auto job = to_grade_job(submission_with({{"grader", "ex1/grader.py"}, {"lang", "fr"}}), queue);
  EXPECT_EQ(job.grader, "ex1/grader.py");
  EXPECT_EQ(job.grader_payload, nlohmann::json({{"grader", "ex1/grader.py"}, {"lang", "fr"}}));
  EXPECT_EQ(job.submission_id, "7");
  EXPECT_EQ(job.lang, "fr");
  EXPECT_EQ(job.seed, 5);

  // Text that holds the object (a payload kept as text) names it too.
  job = to_grade_job(submission_with(R"({"grader": "a/b.py"})"), queue);
  EXPECT_EQ(job.grader, "a/b.py");
}

TEST(ToGradeJob, APayloadNamingNoGraderLeavesItUnset) {
  const config::QueueConfig queue;
  for (const auto& payload : {nlohmann::json::object(), nlohmann::json({{"grader", 5}}),
                              nlohmann::json("not json"), nlohmann::json({{"other", "x"}})}) {
    EXPECT_FALSE(to_grade_job(submission_with(payload), queue).grader.has_value()) << payload.dump();
  }
  // Named but empty is still named: resolve_grader refuses it with its own reason.
  EXPECT_EQ(to_grade_job(submission_with({{"grader", ""}}), queue).grader, "");
}

}  // namespace
}  // namespace xqw::watcher
