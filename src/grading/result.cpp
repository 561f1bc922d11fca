#include "grading/result.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "grading/utf8_text.hpp"

namespace xqw::grading {
namespace {

using nlohmann::json;

// Reasons go to staff logs; keep them readable even when they quote hostile output.
constexpr std::size_t kMaxReasonBytes = 300;
constexpr std::size_t kMaxQuotedKeyBytes = 64;

constexpr std::array<std::string_view, 4> kUpstreamKeys{"correct", "score", "errors", "tests"};
constexpr std::array<std::string_view, 3> kMessageKeys{"correct", "score", "msg"};

std::unexpected<InvalidOutput> invalid(std::string reason) {
  if (reason.size() > kMaxReasonBytes) reason = truncate_text(reason, kMaxReasonBytes);
  return std::unexpected(InvalidOutput{std::move(reason)});
}

bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::size_t skip_json_space(std::string_view text, std::size_t i) {
  while (i < text.size() && is_json_space(text[i])) ++i;
  return i;
}

std::string describe_byte(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (byte >= 0x20 && byte < 0x7F) return std::string("'") + c + "'";
  static constexpr std::string_view kHex = "0123456789abcdef";
  return std::string("byte 0x") + kHex[byte >> 4] + kHex[byte & 0xF];
}

std::string quote_key(std::string_view key) { return "\"" + truncate_text(key, kMaxQuotedKeyBytes) + "\""; }

std::string format_number(double value) {
  std::array<char, 32> buffer{};
  const auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  return ec == std::errc() ? std::string(buffer.data(), end) : std::string("?");
}

// Offset just past the '}' that closes the object opening at `start`, or nullopt if the text ends first.
// Brackets inside strings do not count; whether the text between is valid JSON is the parser's business.
std::optional<std::size_t> end_of_object(std::string_view text, std::size_t start) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (std::size_t i = start; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return std::nullopt;
}

std::string describe(const json& value) {
  switch (value.type()) {
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "a number";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    case json::value_t::null:
      return "null";
    default:
      return "an unsupported value";
  }
}

std::string type_error(const std::string& path, const json& value, std::string_view expected) {
  return path + " is " + describe(value) + ", expected " + std::string(expected);
}

std::string without_exception_prefix(std::string_view what) {
  // "[json.exception.parse_error.101] parse error at line 1, column 9: syntax error ..."
  const std::size_t close = what.find("] ");
  return std::string(what.starts_with("[json.exception.") && close != std::string_view::npos
                         ? what.substr(close + 2)
                         : what);
}

// Parses strictly: the document, or why it is not one, naming the first key repeated within one object
// (nlohmann would keep the last). `name` names the text in reasons ("stdout").
std::expected<json, std::string> parse_rejecting_duplicates(std::string_view text, const std::string& name) {
  std::optional<std::string> duplicate_key;
  std::vector<std::set<std::string>> keys_per_open_object;
  auto on_event = [&](int /*depth*/, json::parse_event_t event, json& value) {
    if (event == json::parse_event_t::object_start) {
      keys_per_open_object.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      keys_per_open_object.pop_back();
    } else if (event == json::parse_event_t::key) {
      auto key = value.get<std::string>();
      if (!keys_per_open_object.back().insert(key).second && !duplicate_key) duplicate_key = std::move(key);
    }
    return true;
  };
  json document;
  try {
    document = json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& error) {
    return std::unexpected(name + " is not valid JSON: " + without_exception_prefix(error.what()));
  }
  if (duplicate_key) return std::unexpected("duplicate key " + quote_key(*duplicate_key) + " in the result");
  return document;
}

class ShapeValidator {
 public:
  explicit ShapeValidator(const ParseLimits& limits) : limits_(limits) {}

  ParsedOutput validate(const json& document) {
    if (!document.is_object()) return invalid(type_error("the result", document, "an object"));
    // The Python watcher's contract knows only the first shape: there "msg" is an unexpected key.
    const bool message_shape = limits_.framing == ResultFraming::WholeStdout && document.contains("msg");
    if (auto problem = check_keys(document, message_shape)) return invalid(*problem);

    GraderResult result;
    const json& correct = document["correct"];
    if (!correct.is_boolean()) return invalid(type_error("correct", correct, "boolean"));
    result.correct = correct.get<bool>();
    if (auto problem = read_score(document["score"], result.score)) return invalid(*problem);

    if (message_shape) {
      const json& message = document["msg"];
      if (!message.is_string()) return invalid(type_error("msg", message, "string"));
      result.html_msg = truncate_text(message.get_ref<const std::string&>(), limits_.field_bytes);
      return result;
    }
    if (auto problem = read_errors(document["errors"], result.errors)) return invalid(*problem);
    if (auto problem = read_tests(document["tests"], result.tests)) return invalid(*problem);
    return result;
  }

 private:
  static std::optional<std::string> check_keys(const json& document, bool message_shape) {
    const auto expected = message_shape
                              ? std::vector<std::string_view>(kMessageKeys.begin(), kMessageKeys.end())
                              : std::vector<std::string_view>(kUpstreamKeys.begin(), kUpstreamKeys.end());
    for (const auto& item : document.items()) {
      const std::string& key = item.key();
      if (std::find(expected.begin(), expected.end(), key) != expected.end()) continue;
      if (message_shape && (key == "errors" || key == "tests")) {
        return "the result has both \"msg\" and " + quote_key(key) + "; use either msg or errors and tests";
      }
      return "unexpected key " + quote_key(key) + " in the result (expected " +
             (message_shape ? "correct, score, msg)" : "correct, score, errors, tests)");
    }
    for (std::string_view key : expected) {
      if (!document.contains(key)) return "missing key " + quote_key(key) + " in the result";
    }
    return std::nullopt;
  }

  static std::optional<std::string> read_score(const json& value, double& score) {
    if (!value.is_number()) return type_error("score", value, "a number between 0 and 1");
    score = value.get<double>();
    if (!std::isfinite(score)) return "score is not a finite number";
    if (score < 0.0 || score > 1.0)
      return "score is " + format_number(score) + ", expected a number between 0 and 1";
    return std::nullopt;
  }

  std::optional<std::string> read_string(const json& value, const std::string& path, std::string& out) const {
    if (!value.is_string()) return type_error(path, value, "string");
    out = truncate_text(value.get_ref<const std::string&>(), limits_.field_bytes);
    return std::nullopt;
  }

  std::optional<std::string> read_errors(const json& value, std::vector<std::string>& errors) const {
    if (!value.is_array()) return type_error("errors", value, "an array of strings");
    errors.resize(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (auto problem = read_string(value[i], "errors[" + std::to_string(i) + "]", errors[i]))
        return problem;
    }
    return std::nullopt;
  }

  std::optional<std::string> read_tests(const json& value, std::vector<TestResult>& tests) const {
    if (!value.is_array()) return type_error("tests", value, "an array of tests");
    tests.resize(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (auto problem = read_test(value[i], "tests[" + std::to_string(i) + "]", tests[i])) return problem;
    }
    return std::nullopt;
  }

  std::optional<std::string> read_test(const json& value, const std::string& path, TestResult& test) const {
    static constexpr std::string_view kShape = "[short, long, correct, expected, actual]";
    if (!value.is_array()) return type_error(path, value, "an array " + std::string(kShape));
    if (value.size() != 5) {
      return path + " has " + std::to_string(value.size()) + " items, expected 5 " + std::string(kShape);
    }
    auto item = [&](std::size_t index) { return path + "[" + std::to_string(index) + "]"; };
    if (auto problem = read_string(value[0], item(0), test.short_description)) return problem;
    if (auto problem = read_string(value[1], item(1), test.long_description)) return problem;
    if (!value[2].is_boolean()) return type_error(item(2), value[2], "boolean");
    test.correct = value[2].get<bool>();
    if (auto problem = read_string(value[3], item(3), test.expected_output)) return problem;
    if (auto problem = read_string(value[4], item(4), test.actual_output)) return problem;
    return std::nullopt;
  }

  const ParseLimits& limits_;
};

// How the text holding the result is named in reasons, and what it was expected to hold.
struct Subject {
  std::string_view name;           // "stdout", "the last line of stdout"
  std::string_view only_result;    // hint when something else comes first
  std::string_view single_result;  // hint when something follows the object
};

constexpr Subject kWholeStdout{"stdout", "the grader must print nothing but its result",
                               "the grader must print only one result"};
constexpr Subject kLastLine{"the last line of stdout", "it must be the result object",
                            "the result must be alone on its line"};

ParsedOutput parse_object(std::string_view text, const Subject& subject, const ParseLimits& limits) {
  const std::string name(subject.name);
  if (auto offset = first_invalid_utf8(text)) {
    return invalid(name + " is not valid UTF-8 (" + describe_byte(text[*offset]) + " at offset " +
                   std::to_string(*offset) + ")");
  }
  const std::size_t start = skip_json_space(text, 0);
  if (start == text.size()) return invalid(name + " holds only whitespace");
  if (text[start] != '{') {
    return invalid(name + " does not start with a JSON object: " + describe_byte(text[start]) +
                   " at offset " + std::to_string(start) + " (" + std::string(subject.only_result) + ")");
  }
  const auto end = end_of_object(text, start);
  if (!end) return invalid(name + " ends before the JSON object is complete (output cut short?)");
  const std::size_t trailing = skip_json_space(text, *end);
  if (trailing != text.size()) {
    return invalid("unexpected " + describe_byte(text[trailing]) + " at offset " + std::to_string(trailing) +
                   " after the JSON object (" + std::string(subject.single_result) + ")");
  }

  const auto parsed = parse_rejecting_duplicates(text.substr(0, *end), name);
  if (!parsed) return invalid(parsed.error());
  return ShapeValidator(limits).validate(*parsed);
}

}  // namespace

FramedOutput split_last_line(std::string_view stdout_bytes) {
  std::size_t end = stdout_bytes.size();
  while (end > 0 && is_json_space(stdout_bytes[end - 1])) --end;
  const auto newline = stdout_bytes.rfind('\n', end == 0 ? 0 : end - 1);
  const std::size_t begin = (newline == std::string_view::npos || end == 0) ? 0 : newline + 1;
  return {stdout_bytes.substr(0, begin), stdout_bytes.substr(begin, end - begin)};
}

ParsedOutput parse_grader_output(std::string_view stdout_bytes, const ParseLimits& limits) {
  if (stdout_bytes.empty()) return invalid("stdout is empty");
  if (limits.framing == ResultFraming::WholeStdout) return parse_object(stdout_bytes, kWholeStdout, limits);
  const auto framed = split_last_line(stdout_bytes);
  if (framed.result.empty())
    return invalid("stdout has no non-empty line (the result must be its last line)");
  return parse_object(framed.result, kLastLine, limits);
}

}  // namespace xqw::grading
