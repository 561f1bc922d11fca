// observability/logging: spdlog set-up (level; text or JSON lines on stderr) and structured fields, so
// every grading line carries queue, submission id, verdict and durations in either format.
//
// What may be logged (every module follows this):
//   - Never, at any level: XQueue passwords, session cookies, CSRF tokens, HTTP basic-auth credentials.
//   - Never at info or above: student code (student_response, submitted files), the grader's stdout or
//     stderr, the HTML sent to the student. At debug/trace only, and then truncated.
//   - Info lines name things by id: queue, submission id, container id, verdict, durations.
#pragma once

#include <spdlog/common.h>
#include <spdlog/formatter.h>
#include <spdlog/logger.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xqw::observability {

enum class LogFormat { Text, Json };

// "text" or "json"; nullopt otherwise.
std::optional<LogFormat> parse_log_format(std::string_view name);
// "trace", "debug", "info", "warn"/"warning", "error", "critical", "off"; nullopt otherwise.
std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name);

// Structured fields attached to one line. Empty strings and absent ids are left out.
struct LogFields {
  std::string queue;
  std::optional<std::int64_t> submission_id;
  std::string verdict;
  std::optional<double> score;  // the grade posted, 0..1
  // Named durations, written in milliseconds: JSON {"durations_ms": {"total": 812.5, ...}},
  // text "total_ms=812.5".
  std::vector<std::pair<std::string, std::chrono::duration<double>>> durations;
  // Other short identifiers (e.g. {"container", "3f2a..."}). A key that collides with a standard one
  // (time, level, message, thread, queue, submission_id, verdict, score, durations_ms) is dropped in JSON.
  std::vector<std::pair<std::string, std::string>> extra;
};

// The formatters configure_logging installs, exposed so tests (or other sinks) can use them.
// Text:  2024-05-01 12:00:00.123 INFO  message queue=q submission_id=42 verdict=graded total_ms=812.5
// Json:  {"time":"2024-05-01T12:00:00.123Z","level":"info","thread":1234,"message":"...","queue":"q",...}
// Every JSON line is one valid JSON object (any byte in the message is escaped; invalid UTF-8 becomes
// U+FFFD).
std::unique_ptr<spdlog::formatter> make_formatter(LogFormat format);

// A logger writing to `sink` with the formatter for `format`.
std::shared_ptr<spdlog::logger> make_logger(std::string name, LogFormat format, spdlog::sink_ptr sink,
                                            spdlog::level::level_enum level = spdlog::level::info);

// Makes the default spdlog logger ("xqueue-watcher", on stderr) use `level` and `format`; safe to call
// again. Throws std::invalid_argument naming the bad value.
void configure_logging(std::string_view level, std::string_view format);

// Logs `message` verbatim (no fmt substitution) with `fields` attached.
void log_event(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view message,
               const LogFields& fields);
void log_event(spdlog::level::level_enum level, std::string_view message, const LogFields& fields);

// One finished grading, the line every submission gets at info.
struct GradingLogLine {
  std::string queue;
  std::int64_t submission_id = 0;
  std::string verdict;          // grading::verdict_label(...)
  std::optional<double> score;  // the posted score, when known
  std::chrono::duration<double> total{0};
  // Per-phase times (e.g. {"create", ...}, {"run", ...}); "total" is added from `total`.
  std::vector<std::pair<std::string, std::chrono::duration<double>>> phases;
  std::string container_id;  // empty: not logged
  // How a container started ahead got its job ("fifo", "signal"); empty: not logged.
  std::string job_delivery;
};
// "graded submission 42 in queue q: graded in 812.5 ms" with the fields above.
void log_grading(spdlog::logger& logger, const GradingLogLine& line);
void log_grading(const GradingLogLine& line);

}  // namespace xqw::observability
