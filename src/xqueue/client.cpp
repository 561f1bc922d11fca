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

// What Django answers when the session is not logged in: @login_required redirects (302; 301 when a
// trailing slash is appended first), and auth middleware or a proxy in front may say 401/403.
bool is_auth_status(long status) { return status == 301 || status == 302 || status == 401 || status == 403; }

// Throws for anything but 200; auth statuses are handled by the caller before this.
void require_ok_status(const std::string& url, const http::Response& response) {
  if (response.status == 200) return;
  if (response.status >= 500) {
    throw XQueueServerError(fmt::format("XQueue {}: server error HTTP {}", url, response.status),
                            response.status);
  }
  throw XQueueServerError(fmt::format("XQueue {}: unexpected HTTP {}", url, response.status),
                          response.status);
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
  const auto token = transport_.cookie("csrftoken");
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
  if (response.status >= 500) require_ok_status(url, response);
  if (response.status != 200) {
    throw XQueueAuthError(
        fmt::format("XQueue {}: login as '{}' failed with HTTP {}{}", url, options_.username, response.status,
                    response.status == 403 ? " (CSRF check or HTTP basic auth refused)" : ""));
  }
  const Reply reply = parse_reply(response.body, "XQueue " + url);
  if (!reply.ok()) {
    throw XQueueAuthError(fmt::format("XQueue {}: login as '{}' refused: {}", url, options_.username,
                                      reason_text(reply.content)));
  }
  logged_in_ = true;
  spdlog::debug("XQueue {}: logged in as '{}'", base_, options_.username);
}

Reply Client::call(const std::function<http::Request()>& make_request) {
  if (!logged_in_) login();
  // nullopt: the server says this session is not logged in.
  auto attempt = [&](http::Request request, long& status) -> std::optional<Reply> {
    const http::Response response = send(request);
    status = response.status;
    if (is_auth_status(response.status)) return std::nullopt;
    require_ok_status(request.url, response);
    Reply reply = parse_reply(response.body, "XQueue " + request.url);
    if (says_login_required(reply)) return std::nullopt;
    return reply;
  };

  long status = 0;
  // Built per attempt: a re-login may rotate the CSRF cookie the request echoes.
  http::Request request = make_request();
  if (auto reply = attempt(request, status)) return *reply;

  logged_in_ = false;
  if (options_.username.empty()) {
    throw XQueueAuthError(fmt::format(
        "XQueue {}: not logged in (HTTP {}) and no XQueue username is configured", request.url, status));
  }
  spdlog::warn("XQueue {}: not logged in (HTTP {}); logging in again once", request.url, status);
  login();
  request = make_request();
  if (auto reply = attempt(request, status)) return *reply;

  logged_in_ = false;
  throw XQueueAuthError(fmt::format(
      "XQueue {}: still not logged in (HTTP {}) after logging in again as '{}'; check the XQueue credentials "
      "and any HTTP basic auth in front of it",
      request.url, status, options_.username));
}

std::optional<Submission> Client::get_submission(const std::string& queue) {
  const std::string url = get_submission_url(queue);
  const Reply reply = call([&] {
    http::Request request;
    request.url = url;
    return request;
  });
  try {
    return submission_from_reply(reply, queue, "XQueue " + url, options_.grader_payload);
  } catch (const MalformedReply& error) {
    const auto id = error.submission_id();
    spdlog::error("XQueue queue '{}': malformed submission {}: {}", queue,
                  id ? std::to_string(*id) : std::string("(id unknown)"), error.what());
    throw;
  }
}

PutOutcome Client::put_result(const Submission& submission, const GradeReply& reply) {
  return put_result(submission.raw_header, reply);
}

PutOutcome Client::put_result(std::string_view raw_header, const GradeReply& grade) {
  const std::string url = put_result_url();
  const std::string body = http::form_encode(
      {{"xqueue_header", std::string(raw_header)}, {"xqueue_body", encode_grade_reply(grade)}});
  // put_result is CSRF-exempt upstream; echoing the token costs nothing and suits servers that are not.
  const Reply reply = call([&] { return form_post(url, csrf_headers(url), body); });
  if (reply.ok()) return PutOutcome::Accepted;

  const std::string reason = reason_text(reply.content);
  if (reason.find("Incorrect key") != std::string::npos) {  // XQueue: "Incorrect key for submission"
    spdlog::warn("XQueue {}: {} was served again meanwhile; this result was not recorded", url,
                 describe_header(raw_header));
    return PutOutcome::IncorrectKey;
  }
  throw XQueueRejected(
      fmt::format("XQueue {}: put_result for {} refused: {}", url, describe_header(raw_header), reason),
      reason);
}

std::int64_t Client::get_queuelen(const std::string& queue) {
  const std::string url = get_queuelen_url(queue);
  const Reply reply = call([&] {
    http::Request request;
    request.url = url;
    return request;
  });
  if (!reply.ok()) {
    const std::string reason = reason_text(reply.content);
    throw XQueueRejected(
        fmt::format("XQueue {}: get_queuelen for queue '{}' refused: {}", url, queue, reason), reason);
  }
  return queue_length_of(reply.content, url, queue);
}

}  // namespace xqw::xqueue
