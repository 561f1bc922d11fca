// http: HTTP requests and replies as plain data, and the transport seam every client talks through.
// Owns libcurl: RAII easy handles (reused, keep-alive), TCP/TLS or a unix socket, cookies, time-outs.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xqw::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method = "GET";
  std::string url;
  Headers headers;
  std::string body;
  // Zero means "the transport's default".
  std::chrono::milliseconds timeout{0};
  // Per-request overrides of the transport's options: nullopt follows TransportOptions::follow_redirects;
  // false keeps the transport's HTTP basic auth off this request (a host other than the one it is for).
  std::optional<bool> follow_redirects;
  bool basic_auth = true;
};

struct Response {
  long status = 0;
  std::string body;
  Headers headers;
  std::optional<std::string> header(std::string_view name) const;
};

// The request never got an HTTP reply: connection refused, DNS, TLS, time-out, socket missing.
class TransportError : public std::runtime_error {
 public:
  TransportError(const std::string& what, bool timed_out) : std::runtime_error(what), timed_out_(timed_out) {}
  bool timed_out() const { return timed_out_; }

 private:
  bool timed_out_;
};

// Receives body bytes as they arrive; return false to stop the transfer early.
using BodySink = std::function<bool(std::string_view chunk)>;

// What clients (XQueue, Docker) depend on; tests substitute a fake.
class Transport {
 public:
  virtual ~Transport() = default;
  // Whole reply body in memory.
  virtual Response perform(const Request& request) = 0;
  // Body streamed to `sink`; the returned Response carries status and headers only.
  // A sink that returns false ends the transfer without an error.
  virtual Response perform_streaming(const Request& request, const BodySink& sink) = 0;
  // Value of a cookie the server set, if any (cookie engine must be on).
  virtual std::optional<std::string> cookie(std::string_view name) const = 0;
  virtual void clear_cookies() = 0;
};

struct TransportOptions {
  std::string unix_socket;  // when set, every request goes over this socket
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};
  bool verify_tls = true;
  std::string ca_file;  // empty: the system store
  bool cookies = false;
  bool follow_redirects = false;
  std::string basic_auth_user;  // empty: no HTTP basic auth
  std::string basic_auth_password;
};

// One libcurl easy handle, reused across requests so connections stay alive.
// Not thread-safe: one per worker thread.
std::unique_ptr<Transport> make_curl_transport(const TransportOptions& options);

// ---- URLs (libcurl's URL parser; pure) ----

// A URL that cannot be parsed or resolved; what() names the URL and the reason.
class UrlError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct UrlParts {
  std::string scheme;  // lower case: "http", "https", ...
  std::string host;    // lower case; an IPv6 address keeps its brackets; empty when there is none (file:)
  int port = 0;        // as written, else the scheme's default; 0 when unknown
};

// `reference` resolved against the absolute URL `base` (RFC 3986): "/media/q/x" keeps only the base's
// scheme and authority, "x" replaces the base's last path segment, an absolute URL stays as it is.
// Throws UrlError when either cannot be parsed.
std::string resolve_url(std::string_view base, std::string_view reference);
// The scheme, host and port of an absolute URL. Throws UrlError (no scheme: not absolute).
UrlParts url_parts(std::string_view url);

// Form encoding (application/x-www-form-urlencoded) and URL query escaping.
std::string url_escape(std::string_view text);
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace xqw::http
