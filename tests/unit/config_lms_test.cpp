// The LMS's XQueue API in the config: a server's `api`, a queue's course defaults and integer points.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "config_test_support.hpp"
#include "watcher/watcher.hpp"

namespace xqw::config::testing {
namespace {

using ::testing::HasSubstr;

class ConfigLms : public ::testing::Test {
 protected:
  void SetUp() override {
    root_.mkdir("course");
    root_.write("xqueue_servers.yaml",
                "default: {url: 'http://lms:8000', api: lms, username: xq, password: pw}\n"
                "old: {url: 'http://xq:18040', username: lms, password: pw}\n");
  }
  LoadResult load_queue(const std::string& body) {
    root_.write("conf.d/q.yaml", "queues:\n  q:\n    grader_root: ../course\n" + body);
    return load(root_.path());
  }
  TempRoot root_;
};

TEST_F(ConfigLms, ServerApiDefaultsToXQueueAndReadsLms) {
  const auto lms =
      load_queue("    points: 3\n    points_rounding: down\n    lang: fr\n    hide_output: true\n");
  ASSERT_TRUE(lms.config) << all_problems(lms);
  const auto& queue = lms.config->queues.at(0);
  EXPECT_EQ(queue.server.api, ServerApi::Lms);
  ASSERT_TRUE(queue.points);
  EXPECT_EQ(queue.points->points, 3);
  EXPECT_EQ(queue.points->rounding, PointsRounding::Down);
  EXPECT_EQ(queue.lang, "fr");
  EXPECT_TRUE(queue.hide_output);
  EXPECT_TRUE(lms.warnings.empty()) << all_problems(lms);

  const auto old = load_queue("    server: old\n");
  ASSERT_TRUE(old.config) << all_problems(old);
  EXPECT_EQ(old.config->queues.at(0).server.api, ServerApi::XQueue);
  EXPECT_FALSE(old.config->queues.at(0).points);
  EXPECT_EQ(old.config->queues.at(0).lang, "en");
}

TEST_F(ConfigLms, AnLmsQueueWithoutPointsIsWarnedAboutFractionalScores) {
  const auto result = load_queue("");
  ASSERT_TRUE(result.config) << all_problems(result);
  const auto* warning = with_key(result.warnings, "queues.q.points");
  ASSERT_NE(warning, nullptr) << all_problems(result);
  EXPECT_THAT(warning->reason, HasSubstr("whole points"));
}

TEST_F(ConfigLms, BadValuesNameTheKeyAndTheChoices) {
  root_.write("xqueue_servers.yaml",
              "default: {url: 'http://lms:8000', api: edx, username: xq, password: pw}\n");
  const auto result = load_queue("    points: 0\n    points_rounding: banker\n");
  EXPECT_FALSE(result.config);
  const auto* api = with_key(result.errors, "default.api");
  ASSERT_NE(api, nullptr) << all_problems(result);
  EXPECT_THAT(api->reason, HasSubstr("expected one of xqueue, lms, got 'edx'"));
  ASSERT_NE(with_key(result.errors, "queues.q.points"), nullptr) << all_problems(result);
}

TEST_F(ConfigLms, RoundingWithoutPointsIsAnError) {
  const auto result = load_queue("    points_rounding: up\n");
  const auto* error = with_key(result.errors, "queues.q.points_rounding");
  ASSERT_NE(error, nullptr) << all_problems(result);
  EXPECT_THAT(error->reason, HasSubstr("without points"));
}

TEST(PostedScore, FractionOrWholePointsRoundedAsConfigured) {
  using watcher::posted_score;
  EXPECT_DOUBLE_EQ(posted_score(0.333, std::nullopt), 0.333);
  EXPECT_EQ(posted_score(0.333, ScorePoints{.points = 1}), 0);
  EXPECT_EQ(posted_score(0.5, ScorePoints{.points = 1}), 1);  // half rounds up
  EXPECT_EQ(posted_score(2.0 / 3.0, ScorePoints{.points = 3, .rounding = PointsRounding::Down}), 2);
  EXPECT_EQ(posted_score(0.34, ScorePoints{.points = 3, .rounding = PointsRounding::Down}), 1);
  EXPECT_EQ(posted_score(0.34, ScorePoints{.points = 3, .rounding = PointsRounding::Up}), 2);
  EXPECT_EQ(posted_score(1.0, ScorePoints{.points = 3, .rounding = PointsRounding::Up}), 3);
  EXPECT_EQ(posted_score(1.7, ScorePoints{.points = 2}), 2) << "clamped to the problem's points";
  EXPECT_EQ(posted_score(std::nan(""), ScorePoints{.points = 2}), 0);
}

}  // namespace
}  // namespace xqw::config::testing
