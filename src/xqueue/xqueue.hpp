// xqueue: the XQueue pull protocol (login, get_submission, put_result, get_queuelen) and its replies, as
// served by the old XQueue server and by the LMS itself (edx-submissions' XQueueViewSet). Owns reply
// parsing and status meanings (pure), the CSRF login and the re-login-once policy; talks HTTP via
// http::Transport.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "http/http.hpp"

namespace xqw::xqueue {

// ---------------------------------------------------------------------------------------------------------
// Plain data
// ---------------------------------------------------------------------------------------------------------

// One pulled submission.
struct Submission {
  std::string queue;
  std::string raw_header;  // xqueue_header exactly as received; sent back verbatim by put_result
  std::int64_t submission_id = 0;
  std::string submission_key;
  std::string raw_body;           // xqueue_body as received
  nlohmann::json student_info;    // decoded object; {} when absent or unusable (it is informational only)
  nlohmann::json grader_payload;  // decoded object when it is a JSON object, else the raw text
  bool grader_payload_is_json = false;
  std::string student_response;
  nlohmann::json files;  // decoded xqueue_files: {name: url}; {} when empty
};

// The put_result body.
struct GradeReply {
  bool correct = false;
  double score = 0.0;
  std::string msg;  // HTML shown to the student
};

// Which server speaks the protocol: they share paths and reply bodies, not status codes (DESIGN.md 5a).
enum class ServerApi {
  XQueue,  // openedx/xqueue: HTTP 200 with return_code 1 for refusals, 302 when logged out, get_queuelen
  Lms,     // the LMS's /xqueue/ (edx-submissions): 4xx/5xx statuses, 403 {"detail"} when logged out,
           // no get_queuelen
};

enum class PutOutcome {
  Accepted,
  IncorrectKey,  // the submission was re-served meanwhile (its key changed); the result was not recorded
  Refused,       // a permanent refusal (unknown submission, bad format, already answered): never retried
};

// What became of a put_result; `reason` is the server's text (or what its status means) unless Accepted.
struct PutResult {
  PutOutcome outcome = PutOutcome::Accepted;
  std::string reason;
  long status = 200;
};

// A reply normalised from either shape the Python watcher accepts:
//   {"return_code": 0|1, "content": ...}   -> as is
//   {"success": true|false, ...}            -> return_code 0|1, content = the whole object
struct Reply {
  int return_code = 1;
  nlohmann::json content;
  bool ok() const { return return_code == 0; }
};

// What to do with a grader_payload that is not a JSON object (upstream's Grader raises on it).
enum class GraderPayloadPolicy {
  RequireJson,  // MalformedReply carrying the submission id and header (the default, as upstream)
  AllowText,    // keep the raw text, grader_payload_is_json = false, for handlers that take plain text
};

// ---------------------------------------------------------------------------------------------------------
// Errors: every message names the server URL or endpoint, the queue / submission when known, and the reason.
// ---------------------------------------------------------------------------------------------------------

// Every XQueueError is one of these; kind() says which, so a caller maps an error to a metric label or a
// decision with one switch (or table) instead of a catch per subtype. One value per subtype below.
enum class XQueueErrorKind {
  Unreachable,  // XQueueUnreachable
  ServerError,  // XQueueServerError
  AuthFailed,   // XQueueAuthError
  Forbidden,    // XQueuePermissionDenied
  Rejected,     // XQueueRejected
  Malformed,    // MalformedReply
  FileFetch,    // FileFetchError
};
// "unreachable", "server_error", "auth_failed", "forbidden", "rejected", "malformed", "file_fetch"
std::string_view to_string(XQueueErrorKind kind);

class XQueueError : public std::runtime_error {
 public:
  XQueueErrorKind kind() const { return kind_; }

 protected:
  XQueueError(XQueueErrorKind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}

 private:
  XQueueErrorKind kind_;
};

// No HTTP reply at all: refused, DNS, TLS, time-out.
class XQueueUnreachable : public XQueueError {
 public:
  XQueueUnreachable(const std::string& what, bool timed_out)
      : XQueueError(XQueueErrorKind::Unreachable, what), timed_out_(timed_out) {}
  bool timed_out() const { return timed_out_; }

 private:
  bool timed_out_;
};

// 5xx or another status the protocol does not use.
class XQueueServerError : public XQueueError {
 public:
  XQueueServerError(const std::string& what, long status)
      : XQueueError(XQueueErrorKind::ServerError, what), status_(status) {}
  long status() const { return status_; }

 private:
  long status_;
};

// Login refused, or still unauthenticated after logging in again once.
class XQueueAuthError : public XQueueError {
 public:
  explicit XQueueAuthError(const std::string& what) : XQueueError(XQueueErrorKind::AuthFailed, what) {}
};

// Logged in, but the account may not use the API (the LMS: a user outside the group `xqueue`). Logging
// in again cannot help: a configuration error for the operator.
class XQueuePermissionDenied : public XQueueError {
 public:
  explicit XQueuePermissionDenied(const std::string& what) : XQueueError(XQueueErrorKind::Forbidden, what) {}
};

// A well-formed reply with return_code 1 that is not one of the expected outcomes
// (queue not found, "Submission does not exist", "Incorrect reply format", ...). reason() is the server's
// text.
class XQueueRejected : public XQueueError {
 public:
  XQueueRejected(const std::string& what, std::string reason)
      : XQueueError(XQueueErrorKind::Rejected, what), reason_(std::move(reason)) {}
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
};

// The reply is not the documented shape: not JSON, wrong types, nested JSON broken, fields missing.
// When the header could be read, submission_id() and raw_header() let the caller still answer the
// submission (e.g. with an error message) so XQueue does not re-serve it forever.
class MalformedReply : public XQueueError {
 public:
  MalformedReply(const std::string& what, std::optional<std::int64_t> submission_id = std::nullopt,
                 std::optional<std::string> raw_header = std::nullopt)
      : XQueueError(XQueueErrorKind::Malformed, what),
        submission_id_(submission_id),
        raw_header_(std::move(raw_header)) {}
  std::optional<std::int64_t> submission_id() const { return submission_id_; }
  const std::optional<std::string>& raw_header() const { return raw_header_; }

 private:
  std::optional<std::int64_t> submission_id_;
  std::optional<std::string> raw_header_;
};

// ---------------------------------------------------------------------------------------------------------
// Pure parsing (no transport)
// ---------------------------------------------------------------------------------------------------------

// `endpoint` only names the source in error messages. Throws MalformedReply.
Reply parse_reply(std::string_view body, std::string_view endpoint);

// A get_submission reply body. nullopt: the queue is empty. Throws MalformedReply (with the submission id
// once the header is readable) or XQueueRejected (any other return_code 1, e.g. "Queue 'q' not found").
std::optional<Submission> parse_submission_reply(
    std::string_view body, std::string_view queue,
    GraderPayloadPolicy policy = GraderPayloadPolicy::RequireJson);

// The submission in an already-parsed get_submission reply (same rules as parse_submission_reply);
// `where` names the source (endpoint or URL) in error messages.
std::optional<Submission> submission_from_reply(
    const Reply& reply, std::string_view queue, std::string_view where,
    GraderPayloadPolicy policy = GraderPayloadPolicy::RequireJson);

// The put_result xqueue_body: {"correct":bool,"score":number,"msg":str}. Invalid UTF-8 in msg is replaced,
// a non-finite score becomes 0, so the result is always valid JSON.
std::string encode_grade_reply(const GradeReply& reply);

// True when a reply says the session is not logged in (what a followed redirect to the login page gives).
bool says_login_required(const Reply& reply);

// The server's text from a reply's content (a string, or an object's "content"/"detail"/"error"/"message").
std::string reason_text(const nlohmann::json& content);

// The reason an error reply gives, for logs: its JSON text when it has one, else the start of the body
// (an HTML error page), else "empty body". Never longer than about 300 characters.
std::string error_reason(std::string_view body);

// What an HTTP status (with its body) means before the body is read as a Reply. Pure.
enum class StatusMeaning {
  Reply,             // read the body as a Reply (200; the LMS's own refusals with a return_code body)
  LoginRequired,     // not logged in (or a stale CSRF token): log in again once, then retry
  PermissionDenied,  // logged in, but the account may not use the API
  ServerError,       // a failure worth retrying later (5xx, 409, ...)
  Unexpected,        // a status the protocol does not use (the URL is probably wrong)
};
StatusMeaning status_meaning(ServerApi api, long status, std::string_view body);

// Returns when `meaning` is Reply; else throws XQueueServerError naming `where`, the status, the body's
// reason and, for a redirect, where it led (`location`).
void require_reply(StatusMeaning meaning, std::string_view where, long status, std::string_view body,
                   const std::optional<std::string>& location = std::nullopt);

// A put_result answer (status and body) as an outcome. Pure. Throws XQueueServerError for a transient
// failure (retry later) and MalformedReply for a 200 that is not a reply.
PutResult put_result_outcome(ServerApi api, long status, std::string_view body, std::string_view where);

// ---------------------------------------------------------------------------------------------------------
// Uploaded files (xqueue_files: {original name: URL}): where they may come from (pure), and fetching them
// ---------------------------------------------------------------------------------------------------------

struct FileRef {
  std::string name;  // the original file name as uploaded (untrusted)
  std::string url;   // as listed: absolute, or relative ("/media/<queue>/<uuid>"); empty when not a string
};
// The entries of a Submission's `files`, in name order.
std::vector<FileRef> file_refs(const nlohmann::json& files);

// Where a queue's files may be fetched from.
struct FileSource {
  std::string base_url;                    // relative URLs resolve against it; its host is always allowed
  std::vector<std::string> allowed_hosts;  // more hosts: "host" (any port), "host:port", "*.example.org"
};

// Why a listed URL may not be fetched; `reason` names the URL and why: unparsable, not http(s), host not
// allowed.
struct FileRefusal {
  std::string reason;
};
// A listed URL made absolute against the base URL, or why it may not be fetched.
using FileLocation = std::expected<std::string, FileRefusal>;
FileLocation locate_file(const FileSource& source, std::string_view listed_url);
// True when an absolute http(s) URL is on the base URL's host (any port) or matches an allowed_hosts
// entry ("*.example.org" matches every name below example.org, not example.org itself).
bool host_allowed(const FileSource& source, std::string_view absolute_url);

// A file could not be fetched. transient(): no reply, a time-out, 5xx, 408 or 429 (trying again later may
// help); otherwise the server said no (404, 403, ...) or a redirect led somewhere not allowed.
class FileFetchError : public XQueueError {
 public:
  FileFetchError(const std::string& what, bool transient, long status = 0)
      : XQueueError(XQueueErrorKind::FileFetch, what), transient_(transient), status_(status) {}
  bool transient() const { return transient_; }
  long status() const { return status_; }  // 0 when there was no HTTP reply

 private:
  bool transient_;
  long status_;
};

struct FetchedFile {
  std::string bytes;        // the whole body, unless over_limit
  bool over_limit = false;  // the body went past max_bytes: the transfer was stopped there and bytes is empty
};

// ---------------------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------------------

struct ClientOptions {
  std::string base_url;  // e.g. https://xqueue.example.org (a trailing '/' and a path prefix are fine)
  std::string username;  // empty: never log in (as upstream with no credentials)
  std::string password;
  GraderPayloadPolicy grader_payload = GraderPayloadPolicy::RequireJson;
  ServerApi api = ServerApi::XQueue;
};

// The transport an XQueue client needs: `options` as given (time-outs, HTTP basic auth, TLS verification
// — on unless verify_tls is false —, ca_file, follow_redirects) with the cookie engine forced on and
// no unix socket. One per worker: a libcurl easy handle is reused across calls and is not thread-safe.
std::unique_ptr<http::Transport> make_transport(http::TransportOptions options);

// One XQueue session over one transport. Not thread-safe: one per worker.
// Logs in lazily on the first call. A call the server answers "not logged in" (status_meaning) logs in
// again once and is retried once; still unauthenticated -> XQueueAuthError. So one call makes at most two
// login attempts, never a loop. A permission refusal is XQueuePermissionDenied at once, without a login.
class Client {
 public:
  Client(http::Transport& transport, ClientOptions options);

  // GET the login page (CSRF cookie), then POST username/password. Throws XQueueAuthError with the
  // server's reason, XQueueUnreachable, XQueueServerError or MalformedReply.
  void login();
  // nullopt when the queue is empty. A malformed submission is logged with its id and thrown as
  // MalformedReply.
  std::optional<Submission> get_submission(const std::string& queue);
  PutResult put_result(const Submission& submission, const GradeReply& reply);
  PutResult put_result(std::string_view raw_header, const GradeReply& reply);
  // nullopt when the server has no get_queuelen (the LMS's API: never asked; an old server answering
  // 404: asked once). Other failures throw.
  std::optional<std::int64_t> get_queuelen(const std::string& queue);
  bool has_queue_length() const { return has_queue_length_; }
  // GET one uploaded file (an absolute URL, see locate_file) through this session: its cookies go where the
  // server set them, HTTP basic auth only to the XQueue server's own scheme, host and port. Never holds
  // more than max_bytes of the body. Follows at most 3 redirects, each only to a URL `source` allows;
  // 401/403 from the XQueue server's host, or a redirect to its login page, logs in again once (not at
  // all without a username). Throws FileFetchError.
  FetchedFile fetch_file(const std::string& url, std::int64_t max_bytes, std::chrono::milliseconds timeout,
                         const FileSource& source);
  bool logged_in() const { return logged_in_; }
  ServerApi api() const { return options_.api; }

  // URLs, exposed for logs and tests.
  std::string login_url() const;
  std::string get_submission_url(std::string_view queue) const;
  std::string put_result_url() const;
  std::string get_queuelen_url(std::string_view queue) const;

 private:
  // One request with the re-login-once policy; the request is rebuilt for the retry. Returns the answer
  // once it is not "not logged in"; throws for a permission refusal.
  http::Response call(const std::function<http::Request()>& make_request);
  http::Response get(const std::string& url);
  // get(), then the body as a Reply (status_meaning decides what else throws).
  Reply get_reply(const std::string& url);
  http::Response send(const http::Request& request);
  http::Request form_post(const std::string& url, const http::Headers& extra_headers, std::string body) const;
  http::Headers csrf_headers(const std::string& referer) const;
  // login() for fetch_file: a failure is a transient FileFetchError naming the file.
  void login_for_file(const std::string& url, long status);

  http::Transport& transport_;
  ClientOptions options_;
  std::string base_;  // base_url without trailing '/'
  bool logged_in_ = false;
  bool has_queue_length_ = true;
};

}  // namespace xqw::xqueue
