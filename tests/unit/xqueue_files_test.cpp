// Uploaded files on XQueue's side: listed URLs resolved and held to the allowed hosts (pure), and the
// client's bounded GET through its session against a scripted transport (caps, redirects, auth, errors).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "xqueue/xqueue.hpp"

namespace xqw::xqueue {
namespace {

using ::testing::HasSubstr;

TEST(Urls, RelativeReferencesResolveAgainstTheBase) {
  EXPECT_EQ(http::resolve_url("https://lms.example.org", "/media/q/5f1e"),
            "https://lms.example.org/media/q/5f1e");
  EXPECT_EQ(http::resolve_url("https://lms.example.org/prefix/", "/media/q/5f1e"),
            "https://lms.example.org/media/q/5f1e");
  EXPECT_EQ(http::resolve_url("https://lms.example.org/prefix/", "media/x"),
            "https://lms.example.org/prefix/media/x");
  EXPECT_EQ(http::resolve_url("http://127.0.0.1:18040", "https://bucket.s3.amazonaws.com/a?X-Sig=1"),
            "https://bucket.s3.amazonaws.com/a?X-Sig=1");
  EXPECT_EQ(http::resolve_url("http://xq:1/a/b", "//other.example.org/c"), "http://other.example.org/c");
  EXPECT_THROW(http::resolve_url("not a url", "/x"), http::UrlError);
}

TEST(Urls, PartsAreLowerCaseWithTheDefaultPort) {
  auto parts = http::url_parts("HTTPS://Files.Example.ORG/x");
  EXPECT_EQ(parts.scheme, "https");
  EXPECT_EQ(parts.host, "files.example.org");
  EXPECT_EQ(parts.port, 443);
  EXPECT_EQ(http::url_parts("http://127.0.0.1:8000/").port, 8000);
  EXPECT_EQ(http::url_parts("http://[::1]:9/").host, "[::1]");
  EXPECT_THROW(http::url_parts("/media/only/a/path"), http::UrlError);
}

TEST(FileRefs, OneEntryPerListedFileInNameOrder) {
  const auto refs =
      file_refs(nlohmann::json::parse(R"({"b.py": "/media/q/2", "a.txt": "http://x/1", "odd": 5})"));
  ASSERT_EQ(refs.size(), 3u);
  EXPECT_EQ(refs[0].name, "a.txt");
  EXPECT_EQ(refs[0].url, "http://x/1");
  EXPECT_EQ(refs[1].name, "b.py");
  EXPECT_EQ(refs[2].url, "") << "a URL that is not a string is kept empty, and refused later";
  EXPECT_TRUE(file_refs(nlohmann::json::object()).empty());
  EXPECT_TRUE(file_refs(nlohmann::json()).empty());
}

const FileSource kSource{
    .base_url = "https://lms.example.org",
    .allowed_hosts = {"storage.example.net", "files.example.com:8443", "*.s3.amazonaws.com", "[::1]:9000"}};

TEST(FileHosts, TheBaseHostAndListedHostsAreAllowed) {
  EXPECT_TRUE(host_allowed(kSource, "https://lms.example.org/media/q/1"));
  EXPECT_TRUE(host_allowed(kSource, "http://LMS.example.org:8000/media/q/1"))
      << "the base URL's host, any port";
  EXPECT_TRUE(host_allowed(kSource, "https://storage.example.net:4443/x"))
      << "an entry without a port: any port";
  EXPECT_TRUE(host_allowed(kSource, "https://files.example.com:8443/x"));
  EXPECT_FALSE(host_allowed(kSource, "https://files.example.com/x"))
      << "an entry with a port: that port only";
  EXPECT_TRUE(host_allowed(kSource, "https://course-bucket.s3.amazonaws.com/x"));
  EXPECT_TRUE(host_allowed(kSource, "https://a.b.s3.amazonaws.com/x"));
  EXPECT_FALSE(host_allowed(kSource, "https://s3.amazonaws.com/x")) << "*.domain is below the domain only";
  EXPECT_FALSE(host_allowed(kSource, "https://evils3.amazonaws.com/x"));
  EXPECT_TRUE(host_allowed(kSource, "http://[::1]:9000/x"));
  EXPECT_FALSE(host_allowed(kSource, "https://lms.example.org.evil.net/x"));
  EXPECT_FALSE(host_allowed(kSource, "https://169.254.169.254/latest/meta-data"));
  EXPECT_FALSE(host_allowed(kSource, "ftp://lms.example.org/x")) << "http and https only";
  EXPECT_FALSE(host_allowed(kSource, "not a url"));
}

// The located URL, or "" when refused; the refusal's reason, or "" when located.
std::string url_of(const FileLocation& location) { return location ? *location : std::string(); }
std::string refusal_of(const FileLocation& location) {
  return location ? std::string() : location.error().reason;
}

TEST(FileHosts, LocateResolvesRelativeUrlsAndNamesEveryRefusal) {
  auto location = locate_file(kSource, "/media/q/5f1e0c");
  EXPECT_EQ(url_of(location), "https://lms.example.org/media/q/5f1e0c");
  EXPECT_EQ(refusal_of(location), "");

  location = locate_file(kSource, "https://other.example.org/a.py");
  EXPECT_EQ(url_of(location), "");
  EXPECT_THAT(refusal_of(location), HasSubstr("is on host other.example.org, which is neither the base URL's "
                                              "(https://lms.example.org) nor in files.allowed_hosts"));
  EXPECT_THAT(refusal_of(locate_file(kSource, "file:///etc/passwd")),
              HasSubstr("is not http:// or https://"));
  EXPECT_THAT(refusal_of(locate_file(kSource, "")), HasSubstr("empty or not a string"));
  EXPECT_THAT(refusal_of(locate_file(kSource, "http://bad host/x")), HasSubstr("cannot be used"));
}

// One scripted answer per request, in order; the body is streamed in small chunks, as libcurl would.
struct Step {
  long status = 200;
  std::string body;
  http::Headers headers;
  bool fail = false;  // no reply at all
};

class FakeTransport final : public http::Transport {
 public:
  explicit FakeTransport(std::vector<Step> script) : script_(script.begin(), script.end()) {}
  http::Response perform(const http::Request& request) override {
    requests.push_back(request);
    Step step = next(request);
    return {step.status, step.body, step.headers};
  }
  http::Response perform_streaming(const http::Request& request, const http::BodySink& sink) override {
    requests.push_back(request);
    Step step = next(request);
    for (std::size_t at = 0; at < step.body.size(); at += 4) {
      ++chunks_offered;
      if (!sink(std::string_view(step.body).substr(at, 4))) break;  // the transfer stops here
    }
    return {step.status, "", step.headers};
  }
  std::optional<std::string> cookie(std::string_view) const override { return std::nullopt; }
  void clear_cookies() override {}
  bool done() const { return script_.empty(); }

  std::vector<http::Request> requests;
  int chunks_offered = 0;

 private:
  Step next(const http::Request& request) {
    if (script_.empty()) {
      ADD_FAILURE() << "unscripted request: " << request.method << " " << request.url;
      throw http::TransportError("no script", false);
    }
    Step step = std::move(script_.front());
    script_.pop_front();
    if (step.fail) throw http::TransportError("GET " + request.url + ": Couldn't connect to server", false);
    return step;
  }
  std::deque<Step> script_;
};

const std::string kBase = "https://lms.example.org";
constexpr std::chrono::milliseconds kTimeout{7000};

std::string login_reply() { return R"({"return_code": 0, "content": "Logged in"})"; }

TEST(FetchFile, GetsTheWholeFileWithTheRequestedTimeoutAndNoRedirectFollowing) {
  FakeTransport transport({{200, "print('hello')\n"}});
  Client client(transport, {kBase, "", "", GraderPayloadPolicy::RequireJson});
  const auto fetched = client.fetch_file(kBase + "/media/q/1", 100, kTimeout, kSource);
  EXPECT_EQ(fetched.bytes, "print('hello')\n");
  EXPECT_FALSE(fetched.over_limit);
  ASSERT_EQ(transport.requests.size(), 1u);
  const auto& request = transport.requests[0];
  EXPECT_EQ(request.method, "GET");
  EXPECT_EQ(request.url, kBase + "/media/q/1");
  EXPECT_EQ(request.timeout, kTimeout);
  EXPECT_EQ(request.follow_redirects, false);
  EXPECT_TRUE(request.basic_auth) << "the XQueue server's own origin";
}

TEST(FetchFile, StopsTheTransferAtTheCapAndKeepsNothing) {
  FakeTransport transport({{200, std::string(1000, 'x')}, {200, std::string(8, 'y')}});
  Client client(transport, {kBase, "", "", GraderPayloadPolicy::RequireJson});
  auto fetched = client.fetch_file(kBase + "/media/q/1", 10, kTimeout, kSource);
  EXPECT_TRUE(fetched.over_limit);
  EXPECT_EQ(fetched.bytes, "");
  EXPECT_EQ(transport.chunks_offered, 3) << "the sink refuses the chunk that would pass 10 bytes";
  fetched = client.fetch_file(kBase + "/media/q/2", 8, kTimeout, kSource);
  EXPECT_FALSE(fetched.over_limit) << "exactly at the cap is fine";
  EXPECT_EQ(fetched.bytes, "yyyyyyyy");
}

TEST(FetchFile, BasicAuthGoesOnlyToTheXQueueOrigin) {
  FakeTransport transport({{200, "a"}, {200, "b"}});
  Client client(transport, {kBase, "", "", GraderPayloadPolicy::RequireJson});
  client.fetch_file("https://bucket.s3.amazonaws.com/a", 10, kTimeout, kSource);
  client.fetch_file("http://lms.example.org/a", 10, kTimeout, kSource);
  EXPECT_FALSE(transport.requests[0].basic_auth);
  EXPECT_FALSE(transport.requests[1].basic_auth) << "same host, but another scheme and port";
}

TEST(FetchFile, FollowsRedirectsOnlyToAllowedHosts) {
  FakeTransport transport({{302, "", {{"Location", "https://course.s3.amazonaws.com/f?sig=1"}}},
                           {200, "content"},
                           {302, "", {{"Location", "http://169.254.169.254/latest"}}}});
  Client client(transport, {kBase, "", "", GraderPayloadPolicy::RequireJson});
  EXPECT_EQ(client.fetch_file(kBase + "/media/q/1", 100, kTimeout, kSource).bytes, "content");
  EXPECT_EQ(transport.requests[1].url, "https://course.s3.amazonaws.com/f?sig=1");
  EXPECT_FALSE(transport.requests[1].basic_auth);
  try {
    client.fetch_file(kBase + "/media/q/2", 100, kTimeout, kSource);
    FAIL() << "a redirect to a host that is not allowed must fail";
  } catch (const FileFetchError& error) {
    EXPECT_FALSE(error.transient());
    EXPECT_EQ(error.status(), 302);
    EXPECT_THAT(error.what(), HasSubstr("redirect to http://169.254.169.254/latest refused"));
  }
  EXPECT_TRUE(transport.done()) << "the refused location is never requested";
}

TEST(FetchFile, RedirectLoopsEnd) {
  std::vector<Step> loop(4, Step{302, "", {{"Location", "/media/q/again"}}});
  FakeTransport transport(loop);
  Client client(transport, {kBase, "", "", GraderPayloadPolicy::RequireJson});
  try {
    client.fetch_file(kBase + "/media/q/1", 100, kTimeout, kSource);
    FAIL() << "expected FileFetchError";
  } catch (const FileFetchError& error) {
    EXPECT_THAT(error.what(), HasSubstr("more than 3 redirects"));
  }
  EXPECT_EQ(transport.requests.size(), 4u);
}

TEST(FetchFile, ErrorsSayWhetherTryingAgainMayHelp) {
  FakeTransport transport(
      {{404, "<h1>Not Found</h1>"}, {503, "busy"}, {429, ""}, {Step{.fail = true}}, {410, ""}});
  Client client(transport, {kBase, "", "", GraderPayloadPolicy::RequireJson});
  const std::vector<std::pair<long, bool>> expected = {
      {404, false}, {503, true}, {429, true}, {0, true}, {410, false}};
  for (const auto& [status, transient] : expected) {
    try {
      client.fetch_file(kBase + "/media/q/1", 100, kTimeout, kSource);
      ADD_FAILURE() << "expected FileFetchError for " << status;
    } catch (const FileFetchError& error) {
      EXPECT_EQ(error.status(), status);
      EXPECT_EQ(error.transient(), transient) << status;
      EXPECT_THAT(error.what(), HasSubstr(kBase + "/media/q/1"));
    }
  }
}

TEST(FetchFile, ForbiddenByTheXQueueHostLogsInAgainOnce) {
  FakeTransport transport({{403, ""},
                           {200, R"({"return_code": 1, "content": "login_required"})"},
                           {200, login_reply()},
                           {200, "file"},
                           {403, ""},
                           {200, R"({"return_code": 1, "content": "login_required"})"},
                           {200, login_reply()},
                           {403, ""},
                           {403, ""}});
  Client client(transport, {kBase, "lms", "pw", GraderPayloadPolicy::RequireJson});
  EXPECT_EQ(client.fetch_file(kBase + "/media/q/1", 100, kTimeout, kSource).bytes, "file");
  EXPECT_EQ(transport.requests[2].url, kBase + "/xqueue/login/");
  EXPECT_THROW(client.fetch_file(kBase + "/media/q/2", 100, kTimeout, kSource), FileFetchError)
      << "still forbidden after logging in again: no loop";
  EXPECT_THROW(client.fetch_file("https://storage.example.net/x", 100, kTimeout, kSource), FileFetchError)
      << "another host's 403 is not about our session";
  EXPECT_TRUE(transport.done());
}

TEST(FetchFile, ARedirectToTheLoginPageLogsInAgainOnce) {
  const Step to_login{302, "", {{"Location", "/xqueue/login?next=/media/q/1"}}};
  FakeTransport transport({to_login,
                           {200, R"({"return_code": 1, "content": "login_required"})"},
                           {200, login_reply()},
                           {200, "file"},
                           to_login,
                           {200, R"({"return_code": 1, "content": "login_required"})"},
                           {200, login_reply()},
                           to_login});
  Client client(transport, {kBase, "lms", "pw", GraderPayloadPolicy::RequireJson});
  EXPECT_EQ(client.fetch_file(kBase + "/media/q/1", 100, kTimeout, kSource).bytes, "file");
  try {
    client.fetch_file(kBase + "/media/q/1", 100, kTimeout, kSource);
    FAIL() << "a login page is never taken for the file";
  } catch (const FileFetchError& error) {
    EXPECT_THAT(error.what(), HasSubstr("sends this session to its login page"));
  }
  EXPECT_TRUE(transport.done());
}

}  // namespace
}  // namespace xqw::xqueue
