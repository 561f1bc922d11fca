// The XQueue client: URLs, the CSRF login handshake, re-login once on an unauthenticated reply, typed errors.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <functional>
#include <stdexcept>

#include "xqueue/xqueue.hpp"

namespace xqw::xqueue {
namespace {

constexpr const char* kFormContentType = "application/x-www-form-urlencoded";

// Throws for an answer that is not a reply; `meaning` is status_meaning's for it.
void require_reply(StatusMeaning meaning, const std::string& url, const http::Response& response) {
  xqueue::require_reply(meaning, "XQueue " + url, response.status, response.body,
                        response.header("Location"));
}

// For messages about a put_result given only its header: the id, never the key.
std::string describe_header(std::string_view raw_header) {
  auto header = nlohmann::json::parse(raw_header, nullptr, false);
  if (header.is_object()) {
    const auto id = header.find("submission_id");
    if (id != header.end() && (id->is_number_integer() || id->is_string())) {
      return fmt::format("submission {}",
                         id->is_string() ? id->get<std::string>() : std::to_string(id->get<std::int64_t>()));
    }
  }
  return "submission (header without submission_id)";
}

std::int64_t queue_length_of(const nlohmann::json& content, const std::string& url,
                             const std::string& queue) {
  if (content.is_number_integer() && content.get<std::int64_t>() >= 0) return content.get<std::int64_t>();
  if (content.is_string()) {
    const auto& text = content.get_ref<const std::string&>();
    std::int64_t value = -1;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error == std::errc() && end == text.data() + text.size() && value >= 0) return value;
  }
  throw MalformedReply(
      fmt::format("XQueue {}: queue '{}': queue length is a {}, expected a non-negative integer", url, queue,
                  content.type_name()));
}

std::string without_trailing_slashes(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

}  // namespace

std::unique_ptr<http::Transport> make_transport(http::TransportOptions options) {
  options.cookies = true;  // the Django session (and CSRF) cookies
  options.unix_socket.clear();
  if (!options.verify_tls) spdlog::warn("XQueue: TLS certificate verification is disabled");
  return http::make_curl_transport(options);
}

Client::Client(http::Transport& transport, ClientOptions options)
    : transport_(transport),
      options_(std::move(options)),
      base_(without_trailing_slashes(options_.base_url)) {
  if (base_.empty()) throw std::invalid_argument("XQueue client: base_url is empty");
}

std::string Client::login_url() const { return base_ + "/xqueue/login/"; }
std::string Client::put_result_url() const { return base_ + "/xqueue/put_result/"; }
std::string Client::get_submission_url(std::string_view queue) const {
  return base_ + "/xqueue/get_submission/?queue_name=" + http::url_escape(queue);
}
std::string Client::get_queuelen_url(std::string_view queue) const {
  return base_ + "/xqueue/get_queuelen/?queue_name=" + http::url_escape(queue);
}

http::Response Client::send(const http::Request& request) {
  spdlog::debug("XQueue {} {}", request.method, request.url);  // never the body: it holds passwords and code
  try {
    http::Response response = transport_.perform(request);
    spdlog::debug("XQueue {} {} -> HTTP {} ({} bytes)", request.method, request.url, response.status,
                  response.body.size());
    return response;
  } catch (const http::TransportError& error) {
    throw XQueueUnreachable(fmt::format("XQueue unreachable: {}", error.what()), error.timed_out());
  }
}

http::Headers Client::csrf_headers(const std::string& referer) const {
  // Django's CSRF check wants the cookie's token echoed in a header and, over HTTPS, a same-origin Referer.
  // Open edX names the cookie edx-csrftoken where CSRF_COOKIE_NAME says so.
  auto token = transport_.cookie("csrftoken");
  if (!token || token->empty()) token = transport_.cookie("edx-csrftoken");
  if (!token || token->empty()) return {};
  return {{"X-CSRFToken", *token}, {"Referer", referer}};
}

http::Request Client::form_post(const std::string& url, const http::Headers& extra_headers,
                                std::string body) const {
  http::Request request;
  request.method = "POST";
  request.url = url;
  request.headers = extra_headers;
  request.headers.emplace_back("Content-Type", kFormContentType);
  request.body = std::move(body);
  return request;
}

void Client::login() {
  logged_in_ = false;
  if (options_.username.empty()) {
    logged_in_ = true;  // as upstream: no credentials, no login
    return;
  }
  const std::string url = login_url();
  // The GET only collects the csrftoken cookie from servers that set one; its reply says "login_required".
  http::Request page;
  page.url = url;
  send(page);

  const http::Response response =
      send(form_post(url, csrf_headers(url),
                     http::form_encode({{"username", options_.username}, {"password", options_.password}})));
  if (response.status >= 500) require_reply(StatusMeaning::ServerError, url, response);
  if (response.status != 200) {
    throw XQueueAuthError(
        fmt::format("XQueue {}: login as '{}' failed with HTTP {}{}: {}", url, options_.username,
                    response.status, response.status == 403 ? " (CSRF check or HTTP basic auth refused)" : "",
                    error_reason(response.body)));
  }
  const Reply reply = parse_reply(response.body, "XQueue " + url);
  if (!reply.ok()) {
    throw XQueueAuthError(fmt::format("XQueue {}: login as '{}' refused: {}", url, options_.username,
                                      reason_text(reply.content)));
  }
  logged_in_ = true;
  spdlog::debug("XQueue {}: logged in as '{}'", base_, options_.username);
}

http::Response Client::call(const std::function<http::Request()>& make_request) {
  if (!logged_in_) login();
  // nullopt: the server says this session is not logged in.
  auto attempt = [&](const http::Request& request, long& status) -> std::optional<http::Response> {
    http::Response response = send(request);
    status = response.status;
    const auto meaning = status_meaning(options_.api, response.status, response.body);
    if (meaning == StatusMeaning::LoginRequired) return std::nullopt;
    if (meaning == StatusMeaning::PermissionDenied) {
      throw XQueuePermissionDenied(fmt::format(
          "XQueue {}: the account '{}' may not use the XQueue API (HTTP {}: {}); on the LMS, add it to the "
          "Django group 'xqueue' (LMS admin: Authentication and Authorization > Groups)",
          request.url, options_.username, response.status, error_reason(response.body)));
    }
    // What a followed redirect to the login page gives; small, so a large submission is not parsed twice.
    constexpr std::size_t kLoginPageReplyCap = 256;
    if (response.status == 200 && response.body.size() < kLoginPageReplyCap &&
        says_login_required(parse_reply(response.body, "XQueue " + request.url))) {
      return std::nullopt;
    }
    return response;
  };

  long status = 0;
  // Built per attempt: a re-login may rotate the CSRF cookie the request echoes.
  http::Request request = make_request();
  if (auto response = attempt(request, status)) return std::move(*response);

  logged_in_ = false;
  if (options_.username.empty()) {
    throw XQueueAuthError(fmt::format(
        "XQueue {}: not logged in (HTTP {}) and no XQueue username is configured", request.url, status));
  }
  spdlog::warn("XQueue {}: not logged in (HTTP {}); logging in again once", request.url, status);
  login();
  request = make_request();
  if (auto response = attempt(request, status)) return std::move(*response);

  logged_in_ = false;
  throw XQueueAuthError(fmt::format(
      "XQueue {}: still not logged in (HTTP {}) after logging in again as '{}'; check the XQueue credentials "
      "and any HTTP basic auth in front of it",
      request.url, status, options_.username));
}

http::Response Client::get(const std::string& url) {
  return call([&] {
    http::Request request;
    request.url = url;
    return request;
  });
}

Reply Client::get_reply(const std::string& url) {
  const http::Response response = get(url);
  require_reply(status_meaning(options_.api, response.status, response.body), url, response);
  return parse_reply(response.body, "XQueue " + url);
}

std::optional<Submission> Client::get_submission(const std::string& queue) {
  const std::string url = get_submission_url(queue);
  const Reply reply = get_reply(url);
  try {
    return submission_from_reply(reply, queue, "XQueue " + url, options_.grader_payload);
  } catch (const MalformedReply& error) {
    const auto id = error.submission_id();
    spdlog::error("XQueue queue '{}': malformed submission {}: {}", queue,
                  id ? std::to_string(*id) : std::string("(id unknown)"), error.what());
    throw;
  }
}

PutResult Client::put_result(const Submission& submission, const GradeReply& reply) {
  return put_result(submission.raw_header, reply);
}

PutResult Client::put_result(std::string_view raw_header, const GradeReply& grade) {
  const std::string url = put_result_url();
  const std::string body = http::form_encode(
      {{"xqueue_header", std::string(raw_header)}, {"xqueue_body", encode_grade_reply(grade)}});
  // put_result is CSRF-exempt on XQueue; the LMS wants the token (as rotated by the login) echoed.
  const http::Response response = call([&] { return form_post(url, csrf_headers(url), body); });
  PutResult result = put_result_outcome(options_.api, response.status, response.body, "XQueue " + url);
  if (result.outcome == PutOutcome::IncorrectKey) {
    spdlog::warn("XQueue {}: {} was served again meanwhile; this result was not recorded", url,
                 describe_header(raw_header));
  } else if (result.outcome == PutOutcome::Refused) {
    spdlog::error("XQueue {}: put_result for {} refused (HTTP {}): {}", url, describe_header(raw_header),
                  result.status, result.reason);
  }
  return result;
}

std::optional<std::int64_t> Client::get_queuelen(const std::string& queue) {
  if (options_.api == ServerApi::Lms || !has_queue_length_) return std::nullopt;
  const std::string url = get_queuelen_url(queue);
  const http::Response response = get(url);
  if (response.status == 404) {
    has_queue_length_ = false;
    spdlog::warn(
        "XQueue {}: the server has no get_queuelen (HTTP 404); the queue length is unknown. If this "
        "server is the LMS, set `api: lms` on it",
        url);
    return std::nullopt;
  }
  require_reply(status_meaning(options_.api, response.status, response.body), url, response);
  const Reply reply = parse_reply(response.body, "XQueue " + url);
  if (!reply.ok()) {
    const std::string reason = reason_text(reply.content);
    throw XQueueRejected(
        fmt::format("XQueue {}: get_queuelen for queue '{}' refused: {}", url, queue, reason), reason);
  }
  return queue_length_of(reply.content, url, queue);
}

}  // namespace xqw::xqueue
