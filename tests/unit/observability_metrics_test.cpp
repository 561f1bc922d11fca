#include <gtest/gtest.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <thread>
#include <vector>

#include "observability/metrics.hpp"

namespace xqw::observability {
namespace {

using namespace std::chrono_literals;
using Labels = std::vector<std::pair<std::string, std::string>>;

std::optional<prometheus::MetricFamily> family(const Metrics& metrics, const std::string& name) {
  for (auto& collected : metrics.registry().Collect()) {
    if (collected.name == name) return collected;
  }
  return std::nullopt;
}

bool labels_match(const prometheus::ClientMetric& metric, const Labels& labels) {
  if (metric.label.size() != labels.size()) return false;
  for (const auto& [name, value] : labels) {
    auto found = std::find_if(metric.label.begin(), metric.label.end(),
                              [&](const auto& label) { return label.name == name && label.value == value; });
    if (found == metric.label.end()) return false;
  }
  return true;
}

// The series with exactly `labels` in family `name`; fails the test when either is missing.
prometheus::ClientMetric series(const Metrics& metrics, const std::string& name, const Labels& labels) {
  auto collected = family(metrics, name);
  if (!collected) {
    ADD_FAILURE() << "no family " << name;
    return {};
  }
  for (const auto& metric : collected->metric) {
    if (labels_match(metric, labels)) return metric;
  }
  ADD_FAILURE() << "family " << name << " has no series with the given labels";
  return {};
}

bool has_series(const Metrics& metrics, const std::string& name, const Labels& labels) {
  auto collected = family(metrics, name);
  if (!collected) return false;
  return std::any_of(collected->metric.begin(), collected->metric.end(),
                     [&](const auto& metric) { return labels_match(metric, labels); });
}

std::uint64_t bucket_count(const prometheus::ClientMetric& metric, double upper_bound) {
  for (const auto& bucket : metric.histogram.bucket) {
    if (bucket.upper_bound == upper_bound) return bucket.cumulative_count;
  }
  ADD_FAILURE() << "no bucket le=" << upper_bound;
  return 0;
}

TEST(Metrics, EveryMethodFeedsItsPrefixedFamily) {
  Metrics metrics("1.2.3");
  metrics.submission_pulled("py");
  metrics.submission_graded("py", "graded", 1s);
  metrics.submission_posted("py", PostOutcome::Accepted);
  metrics.container_phase(ContainerPhase::Run, 1s);
  metrics.xqueue_request(XQueueEndpoint::Login, XQueueOutcome::Ok, 1ms);
  metrics.set_queue_length("py", 1);
  metrics.job_started("py");
  metrics.containers_ready_changed("py", +1);
  metrics.set_journal_backlog(0);
  metrics.set_engine_up(true);
  metrics.fractional_score_posted("py");
  metrics.submission_served_twice("py");
  std::vector<std::string> names;
  for (const auto& collected : metrics.registry().Collect()) {
    EXPECT_FALSE(collected.help.empty()) << collected.name;
    names.push_back(collected.name);
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{
                       "xqueue_watcher_build_info",
                       "xqueue_watcher_container_phase_duration_seconds",
                       "xqueue_watcher_containers_ready",
                       "xqueue_watcher_engine_up",
                       "xqueue_watcher_fractional_scores_total",
                       "xqueue_watcher_grading_duration_seconds",
                       "xqueue_watcher_jobs_in_flight",
                       "xqueue_watcher_journal_backlog",
                       "xqueue_watcher_queue_length",
                       "xqueue_watcher_submissions_graded_total",
                       "xqueue_watcher_submissions_posted_total",
                       "xqueue_watcher_submissions_pulled_total",
                       "xqueue_watcher_submissions_served_twice_total",
                       "xqueue_watcher_xqueue_request_duration_seconds",
                       "xqueue_watcher_xqueue_requests_total",
                   }));
}

TEST(Metrics, BuildInfoCarriesTheVersion) {
  Metrics metrics("1.2.3");
  auto info = series(metrics, "xqueue_watcher_build_info", {{"version", "1.2.3"}});
  EXPECT_EQ(info.gauge.value, 1);
  EXPECT_EQ(family(metrics, "xqueue_watcher_build_info")->type, prometheus::MetricType::Gauge);
}

TEST(Metrics, EngineUpAndJournalBacklogExistFromTheStart) {
  Metrics metrics("0");
  EXPECT_EQ(series(metrics, "xqueue_watcher_engine_up", {}).gauge.value, 0);
  EXPECT_EQ(series(metrics, "xqueue_watcher_journal_backlog", {}).gauge.value, 0);
}

TEST(Metrics, DeclaredQueueShowsZeroSeriesBeforeAnyJob) {
  Metrics metrics("0");
  EXPECT_FALSE(has_series(metrics, "xqueue_watcher_submissions_pulled_total", {{"queue", "py"}}));
  metrics.declare_queue("py");
  EXPECT_EQ(series(metrics, "xqueue_watcher_submissions_pulled_total", {{"queue", "py"}}).counter.value, 0);
  for (const char* outcome : {"accepted", "incorrect_key", "rejected", "failed"}) {
    EXPECT_TRUE(has_series(metrics, "xqueue_watcher_submissions_posted_total",
                           {{"queue", "py"}, {"outcome", outcome}}))
        << outcome;
  }
  EXPECT_TRUE(has_series(metrics, "xqueue_watcher_queue_length", {{"queue", "py"}}));
  EXPECT_TRUE(has_series(metrics, "xqueue_watcher_jobs_in_flight", {{"queue", "py"}}));
  EXPECT_EQ(series(metrics, "xqueue_watcher_containers_ready", {{"queue", "py"}}).gauge.value, 0);
  EXPECT_TRUE(has_series(metrics, "xqueue_watcher_grading_duration_seconds", {{"queue", "py"}}));
  EXPECT_EQ(series(metrics, "xqueue_watcher_fractional_scores_total", {{"queue", "py"}}).counter.value, 0);
  EXPECT_EQ(series(metrics, "xqueue_watcher_submissions_served_twice_total", {{"queue", "py"}}).counter.value,
            0);
}

// The LMS's API has no get_queuelen: the gauge says "unknown" (NaN), never a misleading 0.
TEST(Metrics, QueueLengthOfAServerWithoutOneIsNaN) {
  Metrics metrics("0");
  metrics.declare_queue("lms");
  metrics.set_queue_length_unknown("lms");
  EXPECT_TRUE(std::isnan(series(metrics, "xqueue_watcher_queue_length", {{"queue", "lms"}}).gauge.value));
  EXPECT_NE(metrics.exposition().find("xqueue_watcher_queue_length{queue=\"lms\"} Nan"), std::string::npos)
      << metrics.exposition();
}

TEST(Metrics, CountsPulledGradedAndPostedByQueueVerdictAndOutcome) {
  Metrics metrics("0");
  metrics.submission_pulled("py");
  metrics.submission_pulled("py");
  metrics.submission_pulled("java");
  metrics.submission_graded("py", "graded", 1s);
  metrics.submission_graded("py", "timeout", 10s);
  metrics.submission_graded("py", "graded", 2s);
  metrics.submission_posted("py", PostOutcome::Accepted);
  metrics.submission_posted("py", PostOutcome::IncorrectKey);
  metrics.submission_posted("java", PostOutcome::Failed);

  EXPECT_EQ(series(metrics, "xqueue_watcher_submissions_pulled_total", {{"queue", "py"}}).counter.value, 2);
  EXPECT_EQ(series(metrics, "xqueue_watcher_submissions_pulled_total", {{"queue", "java"}}).counter.value, 1);
  EXPECT_EQ(
      series(metrics, "xqueue_watcher_submissions_graded_total", {{"queue", "py"}, {"verdict", "graded"}})
          .counter.value,
      2);
  EXPECT_EQ(
      series(metrics, "xqueue_watcher_submissions_graded_total", {{"queue", "py"}, {"verdict", "timeout"}})
          .counter.value,
      1);
  EXPECT_EQ(
      series(metrics, "xqueue_watcher_submissions_posted_total", {{"queue", "py"}, {"outcome", "accepted"}})
          .counter.value,
      1);
  EXPECT_EQ(series(metrics, "xqueue_watcher_submissions_posted_total",
                   {{"queue", "py"}, {"outcome", "incorrect_key"}})
                .counter.value,
            1);
  EXPECT_EQ(
      series(metrics, "xqueue_watcher_submissions_posted_total", {{"queue", "java"}, {"outcome", "failed"}})
          .counter.value,
      1);
  EXPECT_EQ(family(metrics, "xqueue_watcher_submissions_graded_total")->type,
            prometheus::MetricType::Counter);
}

TEST(Metrics, MalformedSubmissionsCountAsTheirOwnVerdictWithoutADuration) {
  Metrics metrics("0");
  metrics.submission_malformed("py");
  metrics.submission_malformed("py");
  EXPECT_EQ(
      series(metrics, "xqueue_watcher_submissions_graded_total", {{"queue", "py"}, {"verdict", "malformed"}})
          .counter.value,
      2);
  const auto durations = family(metrics, "xqueue_watcher_grading_duration_seconds");
  if (durations) {  // no series at all is fine too
    for (const auto& metric : durations->metric) EXPECT_EQ(metric.histogram.sample_count, 0u);
  }
}

TEST(Metrics, GradingDurationHistogramSpansMillisecondsToTwoMinutes) {
  Metrics metrics("0");
  metrics.submission_graded("py", "graded", 3ms);
  metrics.submission_graded("py", "graded", 7s);
  metrics.submission_graded("py", "timeout", 200s);
  auto histogram = series(metrics, "xqueue_watcher_grading_duration_seconds", {{"queue", "py"}});
  EXPECT_EQ(histogram.histogram.sample_count, 3u);
  EXPECT_NEAR(histogram.histogram.sample_sum, 207.003, 1e-9);
  EXPECT_EQ(bucket_count(histogram, 0.005), 1u);
  EXPECT_EQ(bucket_count(histogram, 5), 1u);
  EXPECT_EQ(bucket_count(histogram, 10), 2u);
  EXPECT_EQ(bucket_count(histogram, 120), 2u);
  EXPECT_EQ(duration_buckets().front(), 0.005);
  EXPECT_EQ(duration_buckets().back(), 120);
  EXPECT_TRUE(std::is_sorted(duration_buckets().begin(), duration_buckets().end()));
}

TEST(Metrics, ContainerPhasesAreAllPresentAndObservedSeparately) {
  Metrics metrics("0");
  for (const char* phase : {"prepare", "create", "start", "run", "inspect", "remove"}) {
    EXPECT_TRUE(has_series(metrics, "xqueue_watcher_container_phase_duration_seconds", {{"phase", phase}}))
        << phase;
  }
  metrics.container_phase(ContainerPhase::Run, 1500ms);
  metrics.container_phase(ContainerPhase::Create, std::chrono::microseconds(40'000));
  auto run = series(metrics, "xqueue_watcher_container_phase_duration_seconds", {{"phase", "run"}});
  EXPECT_EQ(run.histogram.sample_count, 1u);
  EXPECT_DOUBLE_EQ(run.histogram.sample_sum, 1.5);
  auto create = series(metrics, "xqueue_watcher_container_phase_duration_seconds", {{"phase", "create"}});
  EXPECT_EQ(bucket_count(create, 0.025), 0u);
  EXPECT_EQ(bucket_count(create, 0.05), 1u);
  EXPECT_EQ(series(metrics, "xqueue_watcher_container_phase_duration_seconds", {{"phase", "remove"}})
                .histogram.sample_count,
            0u);
}

TEST(Metrics, XQueueRequestsByEndpointAndOutcome) {
  Metrics metrics("0");
  metrics.xqueue_request(XQueueEndpoint::GetSubmission, XQueueOutcome::Ok, 20ms);
  metrics.xqueue_request(XQueueEndpoint::GetSubmission, XQueueOutcome::Unreachable, 5s);
  metrics.xqueue_request(XQueueEndpoint::Login, XQueueOutcome::AuthFailed, 30ms);
  metrics.xqueue_request(XQueueEndpoint::PutResult, XQueueOutcome::Ok, 40ms);
  EXPECT_EQ(series(metrics, "xqueue_watcher_xqueue_requests_total",
                   {{"endpoint", "get_submission"}, {"outcome", "ok"}})
                .counter.value,
            1);
  EXPECT_EQ(series(metrics, "xqueue_watcher_xqueue_requests_total",
                   {{"endpoint", "get_submission"}, {"outcome", "unreachable"}})
                .counter.value,
            1);
  EXPECT_EQ(series(metrics, "xqueue_watcher_xqueue_requests_total",
                   {{"endpoint", "login"}, {"outcome", "auth_failed"}})
                .counter.value,
            1);
  auto latency =
      series(metrics, "xqueue_watcher_xqueue_request_duration_seconds", {{"endpoint", "get_submission"}});
  EXPECT_EQ(latency.histogram.sample_count, 2u);
  EXPECT_NEAR(latency.histogram.sample_sum, 5.02, 1e-9);
}

TEST(Metrics, LabelsForEveryEnumValueAreDistinct) {
  std::vector<std::string_view> outcomes;
  for (auto outcome :
       {XQueueOutcome::Ok, XQueueOutcome::Rejected, XQueueOutcome::AuthFailed, XQueueOutcome::ServerError,
        XQueueOutcome::Unreachable, XQueueOutcome::Malformed, XQueueOutcome::Forbidden}) {
    outcomes.push_back(xqueue_outcome_label(outcome));
  }
  std::sort(outcomes.begin(), outcomes.end());
  EXPECT_EQ(std::adjacent_find(outcomes.begin(), outcomes.end()), outcomes.end());
  EXPECT_EQ(std::count(outcomes.begin(), outcomes.end(), "unknown"), 0);
  EXPECT_EQ(endpoint_label(XQueueEndpoint::GetQueuelen), "get_queuelen");
  EXPECT_EQ(post_outcome_label(PostOutcome::IncorrectKey), "incorrect_key");
  EXPECT_EQ(phase_label(ContainerPhase::Inspect), "inspect");
}

TEST(Metrics, GaugesFollowTheLatestValue) {
  Metrics metrics("0");
  metrics.set_queue_length("py", 17);
  metrics.set_queue_length("py", 4);
  metrics.set_journal_backlog(3);
  metrics.set_engine_up(true);
  EXPECT_EQ(series(metrics, "xqueue_watcher_queue_length", {{"queue", "py"}}).gauge.value, 4);
  EXPECT_EQ(series(metrics, "xqueue_watcher_journal_backlog", {}).gauge.value, 3);
  EXPECT_EQ(series(metrics, "xqueue_watcher_engine_up", {}).gauge.value, 1);
  metrics.set_engine_up(false);
  EXPECT_EQ(series(metrics, "xqueue_watcher_engine_up", {}).gauge.value, 0);
}

TEST(Metrics, InFlightJobCountsWhileAlive) {
  Metrics metrics("0");
  {
    auto first = metrics.track_job("py");
    auto second = metrics.track_job("py");
    EXPECT_EQ(series(metrics, "xqueue_watcher_jobs_in_flight", {{"queue", "py"}}).gauge.value, 2);
  }
  EXPECT_EQ(series(metrics, "xqueue_watcher_jobs_in_flight", {{"queue", "py"}}).gauge.value, 0);
}

TEST(Metrics, ContainersReadyFollowsWhatPoolsReport) {
  Metrics metrics("0");
  metrics.containers_ready_changed("py", +1);
  metrics.containers_ready_changed("py", +1);
  metrics.containers_ready_changed("py", -1);
  EXPECT_EQ(series(metrics, "xqueue_watcher_containers_ready", {{"queue", "py"}}).gauge.value, 1);
  EXPECT_FALSE(has_series(metrics, "xqueue_watcher_containers_ready", {{"queue", "other"}}));
}

TEST(Metrics, ConcurrentRecordingLosesNothing) {
  Metrics metrics("0");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&metrics, t] {
      for (int i = 0; i < 1000; ++i) {
        metrics.submission_pulled(t % 2 ? "odd" : "even");
        metrics.container_phase(ContainerPhase::Start, 1ms);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(series(metrics, "xqueue_watcher_submissions_pulled_total", {{"queue", "odd"}}).counter.value,
            2000);
  EXPECT_EQ(series(metrics, "xqueue_watcher_submissions_pulled_total", {{"queue", "even"}}).counter.value,
            2000);
  EXPECT_EQ(series(metrics, "xqueue_watcher_container_phase_duration_seconds", {{"phase", "start"}})
                .histogram.sample_count,
            4000u);
}

TEST(Metrics, ExpositionIsPrometheusText) {
  Metrics metrics("9.9.9");
  metrics.submission_pulled("py");
  const std::string text = metrics.exposition();
  EXPECT_NE(text.find("# TYPE xqueue_watcher_submissions_pulled_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("xqueue_watcher_submissions_pulled_total{queue=\"py\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("xqueue_watcher_build_info{version=\"9.9.9\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE xqueue_watcher_container_phase_duration_seconds histogram\n"),
            std::string::npos);
  EXPECT_NE(text.find("xqueue_watcher_container_phase_duration_seconds_bucket{phase=\"run\",le=\"120\"} 0"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace xqw::observability
