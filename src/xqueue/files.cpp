// Uploaded files: the listed URLs resolved and checked against the queue's allowed hosts (pure), and the
// client's bounded GET that fetches one through the XQueue session.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "text/text.hpp"
#include "xqueue/xqueue.hpp"

using xqw::text::ascii_lower;

namespace xqw::xqueue {
namespace {

constexpr int kMaxRedirects = 3;

// An allowed_hosts entry: "host", "host:port", "*.domain[:port]", "[v6]", "[v6]:port".
struct HostPattern {
  std::string host;  // lower case; for a wildcard the suffix with its leading '.'
  bool wildcard = false;
  int port = 0;  // 0: any
};

HostPattern host_pattern(std::string_view entry) {
  HostPattern pattern;
  std::string_view host = entry;
  std::string_view port;
  if (host.starts_with('[')) {
    const auto close = host.find(']');
    if (close != std::string_view::npos && close + 1 < host.size() && host[close + 1] == ':') {
      port = host.substr(close + 2);
      host = host.substr(0, close + 1);
    }
  } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  if (host.starts_with("*.")) {
    pattern.wildcard = true;
    host.remove_prefix(1);
  }
  pattern.host = ascii_lower(host);
  if (!port.empty()) {
    int value = 0;
    const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
    pattern.port =
        (error == std::errc() && end == port.data() + port.size()) ? value : -1;  // -1: matches nothing
  }
  return pattern;
}

bool matches(const HostPattern& pattern, const http::UrlParts& url) {
  if (pattern.port != 0 && pattern.port != url.port) return false;
  if (!pattern.wildcard) return pattern.host == url.host;
  return url.host.size() > pattern.host.size() && url.host.ends_with(pattern.host);
}

bool is_web_scheme(const std::string& scheme) { return scheme == "http" || scheme == "https"; }

bool transient_status(long status) { return status >= 500 || status == 408 || status == 429; }

}  // namespace

std::vector<FileRef> file_refs(const nlohmann::json& files) {
  std::vector<FileRef> refs;
  if (!files.is_object()) return refs;
  for (const auto& [name, url] : files.items()) {
    refs.push_back({name, url.is_string() ? url.get<std::string>() : std::string()});
  }
  return refs;
}

bool host_allowed(const FileSource& source, std::string_view absolute_url) {
  http::UrlParts url;
  try {
    url = http::url_parts(absolute_url);
  } catch (const http::UrlError&) {
    return false;
  }
  if (!is_web_scheme(url.scheme)) return false;
  try {
    if (http::url_parts(source.base_url).host == url.host) return true;
  } catch (const http::UrlError&) {
  }
  return std::any_of(source.allowed_hosts.begin(), source.allowed_hosts.end(),
                     [&](const std::string& entry) { return matches(host_pattern(entry), url); });
}

FileLocation locate_file(const FileSource& source, std::string_view listed_url) {
  auto refused = [](std::string reason) { return std::unexpected(FileRefusal{std::move(reason)}); };
  if (listed_url.empty()) return refused("the file's URL is empty or not a string");
  std::string url;
  http::UrlParts parts;
  try {
    url = http::resolve_url(source.base_url, listed_url);
    parts = http::url_parts(url);
  } catch (const http::UrlError& error) {
    return refused(fmt::format("URL '{}' cannot be used: {}", listed_url, error.what()));
  }
  if (!is_web_scheme(parts.scheme))
    return refused(fmt::format("URL '{}' is not http:// or https://", listed_url));
  if (!host_allowed(source, url)) {
    return refused(
        fmt::format("URL {} is on host {}, which is neither the base URL's ({}) nor in "
                    "files.allowed_hosts",
                    url, parts.host, source.base_url));
  }
  return url;
}

void Client::login_for_file(const std::string& url, long status) {
  try {
    login();
  } catch (const XQueueError& error) {
    throw FileFetchError(fmt::format("file {}: HTTP {} (not logged in), and logging in again failed: {}", url,
                                     status, error.what()),
                         true, status);
  }
}

FetchedFile Client::fetch_file(const std::string& first_url, std::int64_t max_bytes,
                               std::chrono::milliseconds timeout, const FileSource& source) {
  http::UrlParts xqueue_origin;
  try {
    xqueue_origin = http::url_parts(base_);
    http::url_parts(first_url);
  } catch (const http::UrlError& error) {
    throw FileFetchError(fmt::format("file {}: {}", first_url, error.what()), false);
  }
  std::string url = first_url;
  bool logged_in_again = false;
  for (int redirects = 0;;) {
    const auto target = http::url_parts(url);  // parsed before: the first above, later ones by host_allowed
    const bool xqueue_host = target.host == xqueue_origin.host;
    http::Request request;
    request.url = url;
    request.timeout = timeout;
    request.follow_redirects = false;  // each hop is checked against the allowed hosts below
    request.basic_auth =
        xqueue_host && target.port == xqueue_origin.port && target.scheme == xqueue_origin.scheme;
    FetchedFile fetched;
    const auto cap = static_cast<std::size_t>(std::max<std::int64_t>(max_bytes, 0));
    const http::BodySink sink = [&](std::string_view chunk) {
      if (fetched.bytes.size() + chunk.size() > cap) {
        fetched.over_limit = true;
        return false;  // never hold more than the cap
      }
      fetched.bytes.append(chunk);
      return true;
    };
    http::Response response;
    spdlog::debug("XQueue file GET {}", url);
    try {
      response = transport_.perform_streaming(request, sink);
    } catch (const http::TransportError& error) {
      throw FileFetchError(fmt::format("file {}: no reply: {}", url, error.what()), true);
    }
    const long status = response.status;
    spdlog::debug("XQueue file GET {} -> HTTP {} ({} bytes{})", url, status, fetched.bytes.size(),
                  fetched.over_limit ? ", over the cap" : "");
    if (status >= 200 && status < 300) {
      if (fetched.over_limit) fetched.bytes.clear();
      return fetched;
    }
    if (status >= 300 && status < 400) {
      const auto location = response.header("Location");
      if (!location || location->empty()) {
        throw FileFetchError(fmt::format("file {}: HTTP {} without a Location", url, status), false, status);
      }
      if (++redirects > kMaxRedirects) {
        throw FileFetchError(fmt::format("file {}: more than {} redirects", first_url, kMaxRedirects), false,
                             status);
      }
      std::string next;
      try {
        next = http::resolve_url(url, *location);
      } catch (const http::UrlError& error) {
        throw FileFetchError(fmt::format("file {}: unusable redirect: {}", url, error.what()), false, status);
      }
      if (next.starts_with(base_ + "/xqueue/login")) {
        // Django's @login_required: the session is not logged in (any more). Log in, ask again, once.
        if (options_.username.empty() || logged_in_again) {
          throw FileFetchError(fmt::format("file {}: the server sends this session to its login page", url),
                               false, status);
        }
        spdlog::warn("XQueue file {}: redirected to the login page; logging in again once", url);
        logged_in_again = true;
        login_for_file(url, status);
        continue;
      }
      if (!host_allowed(source, next)) {
        throw FileFetchError(
            fmt::format("file {}: redirect to {} refused: its host is not allowed (files.allowed_hosts)", url,
                        next),
            false, status);
      }
      url = std::move(next);
      continue;
    }
    if ((status == 401 || status == 403) && xqueue_host && !options_.username.empty() && !logged_in_again) {
      spdlog::warn("XQueue file {}: HTTP {}; logging in again once", url, status);
      logged_in_again = true;
      login_for_file(url, status);
      continue;
    }
    throw FileFetchError(fmt::format("file {}: HTTP {}", url, status), transient_status(status), status);
  }
}

}  // namespace xqw::xqueue
