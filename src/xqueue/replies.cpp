// Pure parsing of XQueue replies and encoding of put_result bodies (no transport, no logging).
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>

#include "xqueue/xqueue.hpp"

namespace xqw::xqueue {
namespace {

using nlohmann::json;

// Dumps never throw: invalid UTF-8 (student output, odd headers) is replaced rather than rejected.
std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

std::optional<json> decode(std::string_view text) {
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return std::nullopt;
  return value;
}

std::optional<std::int64_t> digits_to_int(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// Builds MalformedReply messages; once the header is read, every error carries the submission id and header.
class SubmissionErrors {
 public:
  SubmissionErrors(std::string_view where, std::string_view queue)
      : prefix_(fmt::format("{}: queue '{}'", where, queue)) {}

  void identify(std::int64_t submission_id, const std::string& raw_header) {
    submission_id_ = submission_id;
    raw_header_ = raw_header;
    prefix_ += fmt::format(", submission {}", submission_id);
  }

  [[noreturn]] void fail(std::string_view reason) const {
    throw MalformedReply(fmt::format("{}: malformed submission: {}", prefix_, reason), submission_id_,
                         raw_header_);
  }

 private:
  std::string prefix_;
  std::optional<std::int64_t> submission_id_;
  std::optional<std::string> raw_header_;
};

// A nested JSON field that XQueue sends as a JSON-encoded string; an already-decoded object is accepted too.
// Returns the decoded object and stores the text as received (or the object's dump) in `raw`.
json nested_object(const json& parent, const char* field, std::string& raw, const SubmissionErrors& errors) {
  const auto it = parent.find(field);
  if (it == parent.end()) errors.fail(fmt::format("{} is missing", field));
  json decoded;
  if (it->is_string()) {
    raw = it->get<std::string>();
    auto parsed = decode(raw);
    if (!parsed) errors.fail(fmt::format("{} is not JSON", field));
    decoded = std::move(*parsed);
  } else if (it->is_object()) {
    raw = dump(*it);
    decoded = *it;
  } else {
    errors.fail(fmt::format("{} is a {}, expected a JSON string", field, it->type_name()));
  }
  if (!decoded.is_object())
    errors.fail(fmt::format("{} is a JSON {}, expected an object", field, decoded.type_name()));
  return decoded;
}

std::int64_t submission_id_of(const json& header, const SubmissionErrors& errors) {
  const auto it = header.find("submission_id");
  if (it != header.end()) {
    if (it->is_number_integer()) return it->get<std::int64_t>();
    // XQueue itself accepts int("42") on put_result, so a numeric string is tolerated here as well.
    if (it->is_string()) {
      if (auto value = digits_to_int(it->get_ref<const std::string&>())) return *value;
    }
  }
  errors.fail("xqueue_header has no integer submission_id");
}

std::string submission_key_of(const json& header, const SubmissionErrors& errors) {
  const auto it = header.find("submission_key");
  if (it == header.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
    errors.fail("xqueue_header has no submission_key string");
  }
  return it->get<std::string>();
}

// Upstream's Grader json.loads the payload and raises when it is not JSON; graders configure by keys, so
// only a JSON object counts as JSON here (a payload of "1" is text).
void read_grader_payload(const json& body, Submission& submission, GraderPayloadPolicy policy,
                         const SubmissionErrors& errors) {
  const auto it = body.find("grader_payload");
  std::string text;
  std::string why;
  if (it == body.end() || it->is_null()) {
    why = "grader_payload is missing";
  } else if (it->is_object()) {
    submission.grader_payload = *it;
    submission.grader_payload_is_json = true;
    return;
  } else if (it->is_string()) {
    text = it->get<std::string>();
    auto parsed = decode(text);
    if (parsed && parsed->is_object()) {
      submission.grader_payload = std::move(*parsed);
      submission.grader_payload_is_json = true;
      return;
    }
    why = parsed ? fmt::format("grader_payload is a JSON {}, not an object", parsed->type_name())
                 : "grader_payload is not JSON";
  } else {
    text = dump(*it);
    why = fmt::format("grader_payload is a {}, expected a JSON string", it->type_name());
  }
  if (policy == GraderPayloadPolicy::RequireJson) errors.fail(why);
  submission.grader_payload = std::move(text);
  submission.grader_payload_is_json = false;
}

// student_info is informational (upstream never reads it), so an unusable one is not worth a lost grade.
json student_info_of(const json& body) {
  const auto it = body.find("student_info");
  if (it == body.end()) return json::object();
  if (it->is_object()) return *it;
  if (it->is_string()) {
    if (auto parsed = decode(it->get_ref<const std::string&>()); parsed && parsed->is_object())
      return *parsed;
  }
  return json::object();
}

json files_of(const json& content, const SubmissionErrors& errors) {
  const auto it = content.find("xqueue_files");
  if (it == content.end() || it->is_null()) return json::object();
  if (it->is_object()) return *it;
  if (!it->is_string())
    errors.fail(fmt::format("xqueue_files is a {}, expected a JSON string", it->type_name()));
  const auto& text = it->get_ref<const std::string&>();
  if (text.empty()) return json::object();  // XQueue stores "" when nothing was uploaded
  auto parsed = decode(text);
  if (!parsed) errors.fail("xqueue_files is not JSON");
  if (parsed->is_null()) return json::object();
  if (!parsed->is_object())
    errors.fail(fmt::format("xqueue_files is a JSON {}, expected an object", parsed->type_name()));
  return std::move(*parsed);
}

json outer_content(const json& content, const SubmissionErrors& errors) {
  if (content.is_object()) return content;
  if (!content.is_string())
    errors.fail(fmt::format("content is a {}, expected a JSON string", content.type_name()));
  auto parsed = decode(content.get_ref<const std::string&>());
  if (!parsed) errors.fail("content is not JSON");
  if (!parsed->is_object())
    errors.fail(fmt::format("content is a JSON {}, expected an object", parsed->type_name()));
  return std::move(*parsed);
}

Submission parse_submission_content(const json& content, std::string_view queue, std::string_view where,
                                    GraderPayloadPolicy policy) {
  SubmissionErrors errors(where, queue);
  const json outer = outer_content(content, errors);

  Submission submission;
  submission.queue = std::string(queue);
  const json header = nested_object(outer, "xqueue_header", submission.raw_header, errors);
  submission.submission_id = submission_id_of(header, errors);
  errors.identify(submission.submission_id, submission.raw_header);
  submission.submission_key = submission_key_of(header, errors);

  const json body = nested_object(outer, "xqueue_body", submission.raw_body, errors);
  const auto response = body.find("student_response");
  if (response == body.end()) errors.fail("xqueue_body has no student_response");
  if (!response->is_string()) {
    errors.fail(fmt::format("student_response is a {}, expected a string", response->type_name()));
  }
  submission.student_response = response->get<std::string>();
  read_grader_payload(body, submission, policy, errors);
  submission.student_info = student_info_of(body);
  submission.files = files_of(outer, errors);
  return submission;
}

bool says_queue_empty(const Reply& reply) {
  // XQueue: "Queue '<name>' is empty".
  return !reply.ok() && std::string_view(reason_text(reply.content)).ends_with(" is empty");
}

}  // namespace

std::string_view to_string(XQueueErrorKind kind) {
  switch (kind) {
    case XQueueErrorKind::Unreachable:
      return "unreachable";
    case XQueueErrorKind::ServerError:
      return "server_error";
    case XQueueErrorKind::AuthFailed:
      return "auth_failed";
    case XQueueErrorKind::Forbidden:
      return "forbidden";
    case XQueueErrorKind::Rejected:
      return "rejected";
    case XQueueErrorKind::Malformed:
      return "malformed";
    case XQueueErrorKind::FileFetch:
      return "file_fetch";
  }
  return "unknown";
}

Reply parse_reply(std::string_view body, std::string_view endpoint) {
  json reply;
  try {
    reply = json::parse(body);
  } catch (const json::parse_error& error) {
    throw MalformedReply(
        fmt::format("{}: reply is not JSON ({} bytes): {}", endpoint, body.size(), error.what()));
  }
  if (!reply.is_object()) {
    throw MalformedReply(
        fmt::format("{}: reply is a JSON {}, expected an object", endpoint, reply.type_name()));
  }
  if (const auto code = reply.find("return_code"); code != reply.end()) {
    if (!code->is_number_integer()) {
      throw MalformedReply(
          fmt::format("{}: return_code is a {}, expected an integer", endpoint, code->type_name()));
    }
    const auto content = reply.find("content");
    if (content == reply.end())
      throw MalformedReply(fmt::format("{}: reply has return_code but no content", endpoint));
    // Upstream treats any non-zero code as failure.
    return Reply{code->get<std::int64_t>() == 0 ? 0 : 1, *content};
  }
  if (const auto success = reply.find("success"); success != reply.end()) {
    // Upstream accepts True/False (and so 1/0, which compare equal in Python).
    bool ok = false;
    if (success->is_boolean()) {
      ok = success->get<bool>();
    } else if (success->is_number_integer() && (*success == 0 || *success == 1)) {
      ok = *success == 1;
    } else {
      throw MalformedReply(
          fmt::format("{}: success is a {}, expected a boolean", endpoint, success->type_name()));
    }
    return Reply{ok ? 0 : 1, std::move(reply)};
  }
  throw MalformedReply(fmt::format("{}: reply has neither return_code nor success", endpoint));
}

std::optional<Submission> submission_from_reply(const Reply& reply, std::string_view queue,
                                                std::string_view where, GraderPayloadPolicy policy) {
  if (says_queue_empty(reply)) return std::nullopt;
  if (!reply.ok()) {
    const std::string reason = reason_text(reply.content);
    throw XQueueRejected(fmt::format("{}: queue '{}': get_submission refused: {}", where, queue, reason),
                         reason);
  }
  return parse_submission_content(reply.content, queue, where, policy);
}

std::optional<Submission> parse_submission_reply(std::string_view body, std::string_view queue,
                                                 GraderPayloadPolicy policy) {
  const Reply reply = parse_reply(body, "get_submission");
  return submission_from_reply(reply, queue, "get_submission", policy);
}

std::string encode_grade_reply(const GradeReply& reply) {
  nlohmann::ordered_json body;
  body["correct"] = reply.correct;
  const double score = std::isfinite(reply.score) ? reply.score : 0.0;  // NaN would dump as null
  // Whole numbers go out as integers: a server that stores points (the LMS) wants 1, not 1.0.
  if (score == std::trunc(score) && std::abs(score) < 1e15) {
    body["score"] = static_cast<std::int64_t>(score);
  } else {
    body["score"] = score;
  }
  body["msg"] = reply.msg;
  return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

bool says_login_required(const Reply& reply) {
  // What XQueue's login view answers to a GET, i.e. where a followed 302 from @login_required lands.
  return !reply.ok() && reason_text(reply.content) == "login_required";
}

std::string reason_text(const nlohmann::json& content) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_object()) {
    for (const char* key : {"content", "detail", "error", "message"}) {
      if (const auto it = content.find(key); it != content.end() && it->is_string())
        return it->get<std::string>();
    }
  }
  return dump(content);
}

namespace {

constexpr std::size_t kReasonCap = 300;

// The LMS's API (Django REST framework) says "log in" with these 403 details; anything else is a refusal.
bool detail_means_login(std::string_view detail) {
  return detail == "Authentication credentials were not provided." || detail.starts_with("CSRF Failed");
}

std::optional<std::string> detail_of(std::string_view body) {
  const auto parsed = json::parse(body, nullptr, false);
  if (!parsed.is_object()) return std::nullopt;
  const auto it = parsed.find("detail");
  if (it == parsed.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

bool has_return_code(std::string_view body) {
  const auto parsed = json::parse(body, nullptr, false);
  return parsed.is_object() && parsed.contains("return_code");
}

std::string capped(std::string text) {
  if (text.size() > kReasonCap) text = text.substr(0, kReasonCap) + "...";
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return text;
}

}  // namespace

std::string error_reason(std::string_view body) {
  if (body.empty()) return "empty body";
  const auto parsed = json::parse(body, nullptr, false);
  if (!parsed.is_discarded()) return capped(reason_text(parsed));
  return capped("body: " + std::string(body.substr(0, kReasonCap + 1)));
}

StatusMeaning status_meaning(ServerApi api, long status, std::string_view body) {
  if (status == 200) return StatusMeaning::Reply;
  if (api == ServerApi::XQueue) {
    // Django's @login_required redirects (302; 301 when a trailing slash is appended first); auth
    // middleware or a proxy in front may say 401/403.
    if (status == 301 || status == 302 || status == 401 || status == 403) return StatusMeaning::LoginRequired;
    return status >= 500 ? StatusMeaning::ServerError : StatusMeaning::Unexpected;
  }
  if (status == 401) return StatusMeaning::LoginRequired;
  if (status == 403) {
    if (const auto detail = detail_of(body)) {
      return detail_means_login(*detail) ? StatusMeaning::LoginRequired : StatusMeaning::PermissionDenied;
    }
    // The view's own 403 ("Incorrect key for submission") is a reply; a bare 403 (a proxy) asks for login.
    return has_return_code(body) ? StatusMeaning::Reply : StatusMeaning::LoginRequired;
  }
  if ((status == 400 || status == 404) && has_return_code(body)) return StatusMeaning::Reply;
  if (status == 409 || status >= 500) return StatusMeaning::ServerError;
  return StatusMeaning::Unexpected;
}

void require_reply(StatusMeaning meaning, std::string_view where, long status, std::string_view body,
                   const std::optional<std::string>& location) {
  switch (meaning) {
    case StatusMeaning::Reply:
      return;
    case StatusMeaning::ServerError:
      throw XQueueServerError(fmt::format("{}: server error HTTP {}: {}", where, status, error_reason(body)),
                              status);
    default:
      throw XQueueServerError(fmt::format("{}: unexpected HTTP {}{}: {}; check the server url", where, status,
                                          location ? " to " + *location : "", error_reason(body)),
                              status);
  }
}

PutResult put_result_outcome(ServerApi api, long status, std::string_view body, std::string_view where) {
  if (api == ServerApi::Lms && status == 500) {
    // The LMS records the first result and fails on any later one: a retried post whose first answer was
    // lost lands here. Posting again cannot change that.
    return {PutOutcome::Refused,
            "HTTP 500, which the LMS answers for a submission that already has a result (" +
                error_reason(body) + ")",
            status};
  }
  require_reply(status_meaning(api, status, body), where, status, body);
  const Reply reply = parse_reply(body, where);
  if (reply.ok()) return {PutOutcome::Accepted, "", status};
  std::string reason = reason_text(reply.content);
  // XQueue and the LMS: "Incorrect key for submission" (200 from XQueue, 403 from the LMS).
  const auto outcome =
      reason.find("Incorrect key") != std::string::npos ? PutOutcome::IncorrectKey : PutOutcome::Refused;
  return {outcome, capped(std::move(reason)), status};
}

}  // namespace xqw::xqueue
