#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <string>

#include "http/http.hpp"
#include "text/text.hpp"

using xqw::text::ascii_lower;

namespace xqw::http {
namespace {

// curl_global_init is not thread-safe; do it once, before the first handle exists.
void ensure_curl_global_init() {
  static const bool initialised = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)initialised;
}

struct EasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

struct TransferState {
  const BodySink* sink = nullptr;
  std::string* body = nullptr;
  Headers* headers = nullptr;
  bool stopped_by_sink = false;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* state = static_cast<TransferState*>(user);
  const size_t bytes = size * count;
  if (state->sink) {
    if (!(*state->sink)(std::string_view(data, bytes))) {
      state->stopped_by_sink = true;
      return 0;  // tells curl to abort the transfer
    }
  } else {
    state->body->append(data, bytes);
  }
  return bytes;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* state = static_cast<TransferState*>(user);
  const size_t bytes = size * count;
  std::string_view line(data, bytes);
  if (line.starts_with("HTTP/")) {
    state->headers->clear();  // a new response (after 100-continue or a redirect)
  } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
    auto trim = [](std::string_view s) {
      while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
      while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
      return std::string(s);
    };
    state->headers->emplace_back(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
  }
  return bytes;
}

class CurlTransport final : public Transport {
 public:
  explicit CurlTransport(TransportOptions options) : options_(std::move(options)) {
    ensure_curl_global_init();
    handle_.reset(curl_easy_init());
    if (!handle_) throw TransportError("libcurl: curl_easy_init failed", false);
    // The cookie engine is switched on per request in run(): libcurl 7.88 leaks a COOKIEFILE setting
    // that curl_easy_reset() drops before a transfer has read it.
  }

  Response perform(const Request& request) override {
    Response response;
    TransferState state{nullptr, &response.body, &response.headers};
    run(request, state, response);
    return response;
  }

  Response perform_streaming(const Request& request, const BodySink& sink) override {
    Response response;
    TransferState state{&sink, nullptr, &response.headers};
    run(request, state, response);
    return response;
  }

  std::optional<std::string> cookie(std::string_view name) const override {
    curl_slist* raw = nullptr;
    if (curl_easy_getinfo(handle_.get(), CURLINFO_COOKIELIST, &raw) != CURLE_OK) return std::nullopt;
    Slist cookies(raw);
    std::optional<std::string> value;
    // Netscape format: domain, flag, path, secure, expiry, name, value (tab-separated).
    for (curl_slist* item = cookies.get(); item; item = item->next) {
      std::string_view line(item->data);
      std::vector<std::string_view> fields;
      size_t start = 0;
      for (size_t tab; (tab = line.find('\t', start)) != std::string_view::npos; start = tab + 1) {
        fields.push_back(line.substr(start, tab - start));
      }
      fields.push_back(line.substr(start));
      if (fields.size() >= 7 && fields[5] == name) value = std::string(fields[6]);
    }
    return value;
  }

  void clear_cookies() override { curl_easy_setopt(handle_.get(), CURLOPT_COOKIELIST, "ALL"); }

 private:
  void run(const Request& request, TransferState& state, Response& response) {
    CURL* h = handle_.get();
    // Reset per-request options but keep the connection cache, DNS cache and cookies.
    curl_easy_reset(h);
    if (options_.cookies) curl_easy_setopt(h, CURLOPT_COOKIEFILE, "");
    curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    const auto timeout = request.timeout.count() > 0 ? request.timeout : options_.request_timeout;
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    if (!options_.unix_socket.empty()) {
      curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, options_.unix_socket.c_str());
    }
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, options_.verify_tls ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L);
    if (!options_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION,
                     request.follow_redirects.value_or(options_.follow_redirects) ? 1L : 0L);
    if (!options_.basic_auth_user.empty() && request.basic_auth) {
      curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
      curl_easy_setopt(h, CURLOPT_USERNAME, options_.basic_auth_user.c_str());
      curl_easy_setopt(h, CURLOPT_PASSWORD, options_.basic_auth_password.c_str());
    }

    if (request.method == "GET") {
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (request.method == "HEAD") {
      curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
      if (request.method == "POST" || !request.body.empty()) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      }
    }

    curl_slist* raw_headers = nullptr;
    for (const auto& [name, value] : request.headers) {
      raw_headers = curl_slist_append(raw_headers, (name + ": " + value).c_str());
    }
    // Never wait for "100 Continue" on large bodies.
    raw_headers = curl_slist_append(raw_headers, "Expect:");
    Slist header_list(raw_headers);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, header_list.get());

    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &state);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &state);

    const CURLcode code = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
    if (code == CURLE_WRITE_ERROR && state.stopped_by_sink) return;
    if (code != CURLE_OK) {
      std::string where =
          options_.unix_socket.empty() ? request.url : request.url + " via " + options_.unix_socket;
      throw TransportError(request.method + " " + where + ": " + curl_easy_strerror(code),
                           code == CURLE_OPERATION_TIMEDOUT);
    }
  }

  TransportOptions options_;
  EasyHandle handle_;
};

}  // namespace

std::optional<std::string> Response::header(std::string_view name) const {
  auto equal_ignoring_case = [](std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
      return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
    });
  };
  for (const auto& [key, value] : headers) {
    if (equal_ignoring_case(key, name)) return value;
  }
  return std::nullopt;
}

std::unique_ptr<Transport> make_curl_transport(const TransportOptions& options) {
  return std::make_unique<CurlTransport>(options);
}

namespace {

struct UrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

UrlHandle parsed_url(std::string_view url, CURLU* into = nullptr) {
  UrlHandle owned;
  if (!into) {
    ensure_curl_global_init();
    owned.reset(curl_url());
    if (!owned) throw UrlError("libcurl: curl_url failed");
    into = owned.get();
  }
  if (url.find('\0') != std::string_view::npos) throw UrlError("URL contains a NUL byte");
  const std::string text(url);
  if (const CURLUcode code = curl_url_set(into, CURLUPART_URL, text.c_str(), 0); code != CURLUE_OK) {
    throw UrlError("'" + text + "' is not a usable URL: " + curl_url_strerror(code));
  }
  return owned;
}

std::string url_part(CURLU* url, CURLUPart part, unsigned int flags, const char* what) {
  char* raw = nullptr;
  if (const CURLUcode code = curl_url_get(url, part, &raw, flags); code != CURLUE_OK) {
    throw UrlError(std::string("URL has no ") + what + ": " + curl_url_strerror(code));
  }
  std::string value(raw);
  curl_free(raw);
  return value;
}

}  // namespace

std::string resolve_url(std::string_view base, std::string_view reference) {
  auto url = parsed_url(base);
  try {
    parsed_url(reference, url.get());  // relative to what the handle holds
  } catch (const UrlError& error) {
    throw UrlError(std::string(error.what()) + " (resolved against " + std::string(base) + ")");
  }
  return url_part(url.get(), CURLUPART_URL, 0, "text");
}

UrlParts url_parts(std::string_view text) {
  auto url = parsed_url(text);
  UrlParts parts;
  parts.scheme = ascii_lower(url_part(url.get(), CURLUPART_SCHEME, 0, "scheme"));
  try {  // a file: URL has neither
    parts.host = ascii_lower(url_part(url.get(), CURLUPART_HOST, 0, "host"));
    parts.port = std::atoi(url_part(url.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT, "port").c_str());
  } catch (const UrlError&) {
  }
  return parts;
}

std::string url_escape(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
    }
  }
  return out;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out.push_back('&');
    out += url_escape(name) + "=" + url_escape(value);
  }
  return out;
}

}  // namespace xqw::http
