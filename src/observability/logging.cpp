// observability/logging: the text and JSON-lines formatters and the structured-field helpers.
#include "observability/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace xqw::observability {

namespace {

// spdlog hands a formatter only the message text, so log_event lends its fields to the formatters
// through this pointer for the duration of one synchronous log call on this thread.
thread_local const LogFields* lent_fields = nullptr;

class LendFields {
 public:
  explicit LendFields(const LogFields& fields) : previous_(lent_fields) { lent_fields = &fields; }
  ~LendFields() { lent_fields = previous_; }
  LendFields(const LendFields&) = delete;
  LendFields& operator=(const LendFields&) = delete;

 private:
  const LogFields* previous_;
};

double milliseconds(std::chrono::duration<double> duration) {
  return std::round(duration.count() * 1e6) / 1e3;  // to the microsecond
}

std::string json_text(const nlohmann::ordered_json& value) {
  return value.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// A bare token when it is one, else a JSON string literal, so text lines stay splittable on spaces.
std::string text_value(std::string_view value) {
  bool bare = !value.empty();
  for (unsigned char c : value) {
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) bare = false;
  }
  return bare ? std::string(value) : json_text(std::string(value));
}

std::string text_fields(const LogFields& fields) {
  std::string out;
  auto add = [&out](std::string_view key, const std::string& value) {
    out += ' ';
    out += key;
    out += '=';
    out += value;
  };
  if (!fields.queue.empty()) add("queue", text_value(fields.queue));
  if (fields.submission_id) add("submission_id", std::to_string(*fields.submission_id));
  if (!fields.verdict.empty()) add("verdict", text_value(fields.verdict));
  if (fields.score) add("score", fmt::format("{}", *fields.score));
  for (const auto& [name, duration] : fields.durations) {
    add(text_value(name + "_ms"), fmt::format("{}", milliseconds(duration)));
  }
  for (const auto& [key, value] : fields.extra) add(text_value(key), text_value(value));
  return out;
}

std::string utc_timestamp(spdlog::log_clock::time_point time) {
  const auto since_epoch = time.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - seconds).count();
  const std::time_t whole = seconds.count();
  std::tm utc{};
  gmtime_r(&whole, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03}Z", text, millis);
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    nlohmann::ordered_json line;
    line["time"] = utc_timestamp(msg.time);
    const auto level = spdlog::level::to_string_view(msg.level);
    line["level"] = std::string(level.data(), level.size());
    line["thread"] = msg.thread_id;
    line["message"] = std::string(msg.payload.data(), msg.payload.size());
    if (lent_fields) add_fields(line, *lent_fields);
    const std::string text = json_text(line) + "\n";
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonFormatter>(); }

 private:
  static void add_fields(nlohmann::ordered_json& line, const LogFields& fields) {
    if (!fields.queue.empty()) line["queue"] = fields.queue;
    if (fields.submission_id) line["submission_id"] = *fields.submission_id;
    if (!fields.verdict.empty()) line["verdict"] = fields.verdict;
    if (fields.score) line["score"] = *fields.score;
    if (!fields.durations.empty()) {
      auto& durations = line["durations_ms"] = nlohmann::ordered_json::object();
      for (const auto& [name, duration] : fields.durations) durations[name] = milliseconds(duration);
    }
    for (const auto& [key, value] : fields.extra) {
      if (!line.contains(key) && !is_standard_key(key)) line[key] = value;
    }
  }
  static bool is_standard_key(std::string_view key) {
    for (std::string_view standard : {"time", "level", "thread", "message", "queue", "submission_id",
                                      "verdict", "score", "durations_ms"}) {
      if (key == standard) return true;
    }
    return false;
  }
};

class TextFormatter final : public spdlog::formatter {
 public:
  TextFormatter()
      : pattern_("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v", spdlog::pattern_time_type::local, std::string()) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    pattern_.format(msg, dest);
    std::string tail = lent_fields ? text_fields(*lent_fields) : std::string();
    tail += '\n';
    dest.append(tail.data(), tail.data() + tail.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<TextFormatter>(); }

 private:
  spdlog::pattern_formatter pattern_;
};

}  // namespace

std::optional<LogFormat> parse_log_format(std::string_view name) {
  if (name == "text") return LogFormat::Text;
  if (name == "json") return LogFormat::Json;
  return std::nullopt;
}

std::optional<spdlog::level::level_enum> parse_log_level(std::string_view name) {
  using spdlog::level::level_enum;
  if (name == "trace") return level_enum::trace;
  if (name == "debug") return level_enum::debug;
  if (name == "info") return level_enum::info;
  if (name == "warn" || name == "warning") return level_enum::warn;
  if (name == "error") return level_enum::err;
  if (name == "critical") return level_enum::critical;
  if (name == "off") return level_enum::off;
  return std::nullopt;
}

std::unique_ptr<spdlog::formatter> make_formatter(LogFormat format) {
  if (format == LogFormat::Json) return std::make_unique<JsonFormatter>();
  return std::make_unique<TextFormatter>();
}

std::shared_ptr<spdlog::logger> make_logger(std::string name, LogFormat format, spdlog::sink_ptr sink,
                                            spdlog::level::level_enum level) {
  auto logger = std::make_shared<spdlog::logger>(std::move(name), std::move(sink));
  logger->set_formatter(make_formatter(format));
  logger->set_level(level);
  return logger;
}

void configure_logging(std::string_view level_name, std::string_view format_name) {
  const auto level = parse_log_level(level_name);
  if (!level)
    throw std::invalid_argument("log level '" + std::string(level_name) +
                                "' is not one of trace, debug, info, warn, error, critical, off");
  const auto format = parse_log_format(format_name);
  if (!format)
    throw std::invalid_argument("log format '" + std::string(format_name) + "' is not text or json");
  // JSON lines must stay machine-readable, so no colour codes; text gets colour only on a terminal.
  spdlog::sink_ptr sink;
  if (*format == LogFormat::Json) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  }
  spdlog::set_default_logger(make_logger("xqueue-watcher", *format, std::move(sink), *level));
}

void log_event(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view message,
               const LogFields& fields) {
  if (!logger.should_log(level)) return;
  LendFields lend(fields);
  logger.log(level, spdlog::string_view_t(message.data(), message.size()));
}

void log_event(spdlog::level::level_enum level, std::string_view message, const LogFields& fields) {
  log_event(*spdlog::default_logger_raw(), level, message, fields);
}

void log_grading(spdlog::logger& logger, const GradingLogLine& line) {
  LogFields fields;
  fields.queue = line.queue;
  fields.submission_id = line.submission_id;
  fields.verdict = line.verdict;
  fields.durations.emplace_back("total", line.total);
  fields.durations.insert(fields.durations.end(), line.phases.begin(), line.phases.end());
  fields.score = line.score;
  if (!line.container_id.empty()) fields.extra.emplace_back("container", line.container_id);
  if (!line.job_delivery.empty()) fields.extra.emplace_back("job_delivery", line.job_delivery);
  const std::string message = fmt::format("graded submission {} in queue {}: {} in {} ms", line.submission_id,
                                          line.queue, line.verdict, milliseconds(line.total));
  log_event(logger, spdlog::level::info, message, fields);
}

void log_grading(const GradingLogLine& line) { log_grading(*spdlog::default_logger_raw(), line); }

}  // namespace xqw::observability
