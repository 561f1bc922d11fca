#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "observability/logging.hpp"

namespace xqw::observability {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

// True when `text` has the shape of `pattern`, where '9' stands for any digit and other characters for
// themselves.
bool has_shape(std::string_view text, std::string_view pattern) {
  if (text.size() != pattern.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool digit_expected = pattern[i] == '9';
    if (digit_expected ? !std::isdigit(static_cast<unsigned char>(text[i])) : text[i] != pattern[i])
      return false;
  }
  return true;
}

// A logger writing into a string, with the formatter configure_logging would install.
struct CapturedLog {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> logger;
  explicit CapturedLog(LogFormat format, spdlog::level::level_enum level = spdlog::level::info)
      : logger(make_logger("test", format, std::make_shared<spdlog::sinks::ostream_sink_st>(out), level)) {}

  std::vector<std::string> lines() const {
    std::vector<std::string> result;
    std::istringstream in(out.str());
    for (std::string line; std::getline(in, line);) result.push_back(line);
    return result;
  }
  std::vector<nlohmann::json> json_lines() const {
    std::vector<nlohmann::json> result;
    for (const auto& line : lines()) result.push_back(nlohmann::json::parse(line));  // throws if invalid
    return result;
  }
};

TEST(JsonLogs, EachLineIsAnObjectWithTimeLevelAndMessage) {
  CapturedLog log(LogFormat::Json);
  log.logger->info("watcher {} starting", "w1");
  log.logger->warn("engine slow");
  auto lines = log.json_lines();
  ASSERT_THAT(lines, SizeIs(2));
  EXPECT_EQ(lines[0]["message"], "watcher w1 starting");
  EXPECT_EQ(lines[0]["level"], "info");
  EXPECT_EQ(lines[1]["level"], "warning");
  EXPECT_TRUE(lines[0]["thread"].is_number());
  const std::string time = lines[0]["time"];
  EXPECT_TRUE(has_shape(time, "9999-99-99T99:99:99.999Z")) << time;
  EXPECT_FALSE(lines[0].contains("queue"));
}

TEST(JsonLogs, EscapesQuotesNewlinesBackslashesAndControlCharacters) {
  CapturedLog log(LogFormat::Json);
  const std::string nasty =
      std::string("say \"hi\"\nsecond line\r\tback\\slash {} \x01\x1f end") + '\0' + "nul";
  log_event(*log.logger, spdlog::level::info, nasty, {});
  auto lines = log.json_lines();
  ASSERT_THAT(lines, SizeIs(1)) << log.out.str();
  EXPECT_EQ(lines[0]["message"], nasty);
}

TEST(JsonLogs, InvalidUtf8StillGivesValidJson) {
  CapturedLog log(LogFormat::Json);
  log_event(*log.logger, spdlog::level::info, "bad \xff\xfe bytes", LogFields{.queue = "q\xc3"});
  auto lines = log.json_lines();
  ASSERT_THAT(lines, SizeIs(1));
  EXPECT_EQ(lines[0]["message"], "bad \xEF\xBF\xBD\xEF\xBF\xBD bytes");
  EXPECT_EQ(lines[0]["queue"], "q\xEF\xBF\xBD");
}

TEST(JsonLogs, StructuredFieldsAreTopLevelKeys) {
  CapturedLog log(LogFormat::Json);
  LogFields fields;
  fields.queue = "python-3";
  fields.submission_id = 42;
  fields.verdict = "timeout";
  fields.score = 0.5;
  fields.durations = {{"total", 1500ms}, {"run", std::chrono::microseconds(1234)}};
  fields.extra = {{"container", "3f2a"}, {"message", "must not replace the message"}};
  log_event(*log.logger, spdlog::level::info, "done", fields);
  auto line = log.json_lines().at(0);
  EXPECT_EQ(line["message"], "done");
  EXPECT_EQ(line["queue"], "python-3");
  EXPECT_EQ(line["submission_id"], 42);
  EXPECT_EQ(line["verdict"], "timeout");
  EXPECT_EQ(line["score"], 0.5);
  EXPECT_EQ(line["durations_ms"]["total"], 1500.0);
  EXPECT_EQ(line["durations_ms"]["run"], 1.234);
  EXPECT_EQ(line["container"], "3f2a");
}

TEST(JsonLogs, FieldsBelongToOneLineOnly) {
  CapturedLog log(LogFormat::Json);
  log_event(*log.logger, spdlog::level::info, "with", LogFields{.queue = "q"});
  log.logger->info("without");
  auto lines = log.json_lines();
  ASSERT_THAT(lines, SizeIs(2));
  EXPECT_EQ(lines[0]["queue"], "q");
  EXPECT_FALSE(lines[1].contains("queue"));
}

TEST(JsonLogs, GradingLineCarriesQueueSubmissionVerdictAndDurations) {
  CapturedLog log(LogFormat::Json);
  GradingLogLine grading;
  grading.queue = "py";
  grading.submission_id = 7;
  grading.verdict = "graded";
  grading.score = 1.0;
  grading.total = 812500us;
  grading.phases = {{"create", 20ms}, {"run", 700ms}};
  grading.container_id = "abc123";
  grading.job_delivery = "fifo";
  log_grading(*log.logger, grading);
  auto line = log.json_lines().at(0);
  EXPECT_EQ(line["level"], "info");
  EXPECT_EQ(line["message"], "graded submission 7 in queue py: graded in 812.5 ms");
  EXPECT_EQ(line["queue"], "py");
  EXPECT_EQ(line["submission_id"], 7);
  EXPECT_EQ(line["verdict"], "graded");
  EXPECT_EQ(line["score"], 1.0);
  EXPECT_EQ(line["durations_ms"], nlohmann::json({{"total", 812.5}, {"create", 20.0}, {"run", 700.0}}));
  EXPECT_EQ(line["container"], "abc123");
  EXPECT_EQ(line["job_delivery"], "fifo");
}

TEST(TextLogs, FieldsFollowTheMessageAsKeyValuePairs) {
  CapturedLog log(LogFormat::Text);
  GradingLogLine grading;
  grading.queue = "py";
  grading.submission_id = 7;
  grading.verdict = "out_of_memory";
  grading.total = 2s;
  grading.phases = {{"run", 1500ms}};
  log_grading(*log.logger, grading);
  auto lines = log.lines();
  ASSERT_THAT(lines, SizeIs(1));
  EXPECT_TRUE(has_shape(lines[0].substr(0, 29), "9999-99-99 99:99:99.999 info ")) << lines[0];
  EXPECT_THAT(lines[0], HasSubstr("graded submission 7 in queue py: out_of_memory in 2000 ms queue=py "
                                  "submission_id=7 verdict=out_of_memory total_ms=2000 run_ms=1500"));
}

TEST(TextLogs, ValuesWithSpacesOrQuotesAreQuoted) {
  CapturedLog log(LogFormat::Text);
  log_event(*log.logger, spdlog::level::warn, "odd",
            LogFields{.queue = "my queue", .extra = {{"k", "a\"b"}}});
  EXPECT_THAT(log.out.str(), HasSubstr(R"(odd queue="my queue" k="a\"b")"));
}

TEST(TextLogs, PlainLinesHaveNoTrailingFields) {
  CapturedLog log(LogFormat::Text);
  log.logger->info("hello");
  auto lines = log.lines();
  ASSERT_THAT(lines, SizeIs(1));
  EXPECT_EQ(lines[0].substr(lines[0].size() - 6), " hello");
}

TEST(Logs, LinesBelowTheLevelAreDropped) {
  CapturedLog log(LogFormat::Json, spdlog::level::info);
  log_event(*log.logger, spdlog::level::debug, "student code here", LogFields{.queue = "q"});
  log.logger->debug("more detail");
  EXPECT_EQ(log.out.str(), "");
  log_event(*log.logger, spdlog::level::err, "failed", LogFields{.queue = "q"});
  EXPECT_THAT(log.json_lines(), SizeIs(1));
}

TEST(Logs, LevelAndFormatNamesAreValidated) {
  EXPECT_EQ(parse_log_format("json"), LogFormat::Json);
  EXPECT_EQ(parse_log_format("text"), LogFormat::Text);
  EXPECT_FALSE(parse_log_format("xml"));
  EXPECT_EQ(parse_log_level("warn"), spdlog::level::warn);
  EXPECT_EQ(parse_log_level("error"), spdlog::level::err);
  EXPECT_FALSE(parse_log_level("verbose"));
  try {
    configure_logging("info", "xml");
    FAIL() << "an unknown format was accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_THAT(error.what(), HasSubstr("'xml'"));
  }
  EXPECT_THROW(configure_logging("loud", "text"), std::invalid_argument);
}

TEST(Logs, ConfigureLoggingReplacesTheDefaultLogger) {
  auto previous = spdlog::default_logger();
  configure_logging("debug", "json");
  EXPECT_EQ(spdlog::default_logger()->name(), "xqueue-watcher");
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::debug);
  EXPECT_NO_THROW(configure_logging("warn", "text"));  // again: no "logger already exists"
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::warn);
  spdlog::set_default_logger(previous);
}

}  // namespace
}  // namespace xqw::observability
