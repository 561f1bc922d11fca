#include <gtest/gtest.h>

#include <string>

#include "grading/contract.hpp"

namespace xqw::grading {
namespace {

TEST(ImageReport, ReadsTheLastReportLineOnStderr) {
  const auto report = image_report(
      "staff log line\n"
      "xqw-usage: {\"cpu_seconds\": 0.5, \"max_rss_bytes\": 1000, \"refused_forks\": 1}\n"
      "more staff text\n"
      "xqw-usage: {\"cpu_seconds\": 1.25, \"max_rss_bytes\": 2048, \"refused_forks\": 7}");
  EXPECT_EQ(report.cpu_seconds, 1.25);
  EXPECT_EQ(report.max_rss_bytes, 2048);
  EXPECT_EQ(report.refused_forks, 7);
}

TEST(ImageReport, AbsentOrMalformedFieldsAreUnknown) {
  EXPECT_FALSE(image_report("").refused_forks.has_value());
  EXPECT_FALSE(image_report("Traceback: xqw-usage: {\"refused_forks\": 3}\n").refused_forks.has_value())
      << "only a line that starts with the prefix is a report";
  const auto report = image_report("xqw-usage: {\"cpu_seconds\": \"lots\", \"refused_forks\": 2.5}\n");
  EXPECT_FALSE(report.cpu_seconds.has_value());
  EXPECT_FALSE(report.refused_forks.has_value());
  EXPECT_FALSE(image_report("xqw-usage: not json\n").max_rss_bytes.has_value());
  EXPECT_FALSE(image_report("xqw-usage: [1, 2]\n").max_rss_bytes.has_value());
}

}  // namespace
}  // namespace xqw::grading
