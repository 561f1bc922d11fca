// Registry credentials for pulls: a Docker config.json's auths read, an image's registry found the way the
// docker CLI finds it, X-Registry-Auth encoded as the engine decodes it, helpers refused, no secret in a
// problem or an error; the config key and DOCKER_CONFIG resolved in one place.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "config_test_support.hpp"
#include "docker/docker.hpp"

namespace xqw::docker {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// base64url (padded) back to bytes, written independently of the code under test.
std::string base64url_decode(std::string text) {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  int buffer = 0, bits = 0;
  for (char c : text) {
    if (c == '=') break;
    const auto value = alphabet.find(c);
    EXPECT_NE(value, std::string::npos) << "not base64url: " << c;
    buffer = (buffer << 6) | static_cast<int>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return out;
}

RegistryAuths parsed(std::string_view text) {
  auto auths = parse_docker_config(text);
  if (!auths) {
    std::string all;
    for (const auto& problem : auths.error()) all += problem.key + ": " + problem.reason + "\n";
    ADD_FAILURE() << "problems:\n" << all;
    return {};
  }
  return *auths;
}

std::vector<RegistryAuthProblem> problems_of(std::string_view text) {
  auto auths = parse_docker_config(text);
  EXPECT_FALSE(auths.has_value()) << "accepted: " << text;
  return auths ? std::vector<RegistryAuthProblem>{} : auths.error();
}

std::string all_text(const std::vector<RegistryAuthProblem>& problems) {
  std::string out;
  for (const auto& problem : problems) out += problem.key + ": " + problem.reason + "\n";
  return out;
}

TEST(RegistryOf, ReadsTheFirstComponentAsTheDockerCliDoes) {
  EXPECT_EQ(registry_of("python"), "docker.io");
  EXPECT_EQ(registry_of("python:3.11"), "docker.io");
  EXPECT_EQ(registry_of("library/python:3.11"), "docker.io");
  EXPECT_EQ(registry_of("xqueue-watcher/python-grader:latest"), "docker.io");
  EXPECT_EQ(registry_of("docker.io/library/python"), "docker.io");
  EXPECT_EQ(registry_of("index.docker.io/org/img:1"), "docker.io");
  EXPECT_EQ(registry_of("ghcr.io/org/img:1"), "ghcr.io");
  EXPECT_EQ(registry_of("registry.example.org:5000/course/grader:2024"), "registry.example.org:5000");
  EXPECT_EQ(registry_of("127.0.0.1:5000/course/grader@sha256:abc"), "127.0.0.1:5000");
  EXPECT_EQ(registry_of("localhost/img"), "localhost");
  EXPECT_EQ(registry_of("localhost:5000/img:tag"), "localhost:5000");
  EXPECT_EQ(registry_of("myhost:5000/img"), "myhost:5000");  // a port makes it a host
  EXPECT_EQ(registry_of("myhost/img"), "docker.io");         // no dot, colon or localhost: a Hub org
}

TEST(RegistryKey, DropsSchemeAndPathAndFoldsDockerHubAliases) {
  EXPECT_EQ(registry_key("https://index.docker.io/v1/"), "docker.io");
  EXPECT_EQ(registry_key("index.docker.io"), "docker.io");
  EXPECT_EQ(registry_key("registry-1.docker.io"), "docker.io");
  EXPECT_EQ(registry_key("docker.io"), "docker.io");
  EXPECT_EQ(registry_key("http://127.0.0.1:5000"), "127.0.0.1:5000");
  EXPECT_EQ(registry_key("https://GHCR.io/v2/"), "ghcr.io");
}

TEST(DockerConfig, AuthUsernamePasswordAndIdentityTokenEntries) {
  // "YWxpY2U6czNjcmV0OnB3" is base64("alice:s3cret:pw"): the password keeps every ':' after the first.
  const auto auths = parsed(R"({
    "auths": {
      "https://index.docker.io/v1/": {"auth": "YWxpY2U6czNjcmV0OnB3"},
      "ghcr.io": {"username": "bob", "password": "tok"},
      "registry.example.org:5000": {"identitytoken": "refresh-token"}
    },
    "psFormat": "table {{.ID}}",
    "proxies": {"default": {}}
  })");
  ASSERT_EQ(auths.credentials.size(), 3u);

  const auto* hub = auths.find("python:3.11");
  ASSERT_NE(hub, nullptr);
  EXPECT_EQ(hub->username, "alice");
  EXPECT_EQ(hub->password, "s3cret:pw");
  EXPECT_EQ(auths.find("docker.io/org/img"), hub);

  const auto* ghcr = auths.find("ghcr.io/org/img:1");
  ASSERT_NE(ghcr, nullptr);
  EXPECT_EQ(ghcr->username, "bob");

  const auto* own = auths.find("registry.example.org:5000/course/grader");
  ASSERT_NE(own, nullptr);
  EXPECT_EQ(own->identity_token, "refresh-token");

  EXPECT_EQ(auths.find("registry.example.org/course/grader"), nullptr);  // another port is another registry
  EXPECT_EQ(auths.find("quay.io/org/img"), nullptr);
}

TEST(DockerConfig, NoAuthsMeansNoCredentials) {
  EXPECT_TRUE(parsed("{}").credentials.empty());
  EXPECT_TRUE(parsed(R"({"auths": {}})").credentials.empty());
}

TEST(DockerConfig, HelpersAreRefusedNamingTheRegistry) {
  auto problems = problems_of(R"({"credHelpers": {"123.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"},
                                  "auths": {"ghcr.io": {"auth": "Ym9iOnB3"}}})");
  ASSERT_EQ(problems.size(), 1u) << all_text(problems);
  EXPECT_EQ(problems[0].key, "credHelpers.123.dkr.ecr.us-east-1.amazonaws.com");
  EXPECT_THAT(problems[0].reason, HasSubstr("registry 123.dkr.ecr.us-east-1.amazonaws.com"));
  EXPECT_THAT(problems[0].reason, HasSubstr("credential helpers are not supported"));
  EXPECT_THAT(problems[0].reason, HasSubstr("auths"));

  // What `docker login` writes with a store: empty auths entries, the secret elsewhere.
  problems = problems_of(R"({"auths": {"ghcr.io": {}}, "credsStore": "desktop"})");
  ASSERT_EQ(problems.size(), 1u) << all_text(problems);
  EXPECT_EQ(problems[0].key, "credsStore");
  EXPECT_THAT(problems[0].reason, HasSubstr("credential helpers are not supported"));
  EXPECT_THAT(problems[0].reason, HasSubstr("ghcr.io"));
}

TEST(DockerConfig, MalformedEntriesNameTheKeyAndNeverTheSecret) {
  const struct {
    const char* text;
    const char* key;
    const char* reason;
  } cases[] = {
      {"not json", "", "is not JSON"},
      {"[]", "", "expected a JSON object"},
      {R"({"auths": []})", "auths", "expected an object"},
      {R"({"auths": {"ghcr.io": "c2VjcmV0"}})", "auths.ghcr.io", "expected an object"},
      {R"({"auths": {"ghcr.io": {"auth": "!!not-base64-s3cret!!"}}})", "auths.ghcr.io.auth", "is not base64"},
      {R"({"auths": {"ghcr.io": {"auth": "bm9jb2xvbg=="}}})", "auths.ghcr.io.auth", "user:password"},
      {R"({"auths": {"ghcr.io": {"auth": 12}}})", "auths.ghcr.io.auth", "expected a string"},
      {R"({"auths": {"ghcr.io": {"username": "bob"}}})", "auths.ghcr.io",
       "needs both a username and a password"},
      {R"({"auths": {"ghcr.io": {}}})", "auths.ghcr.io", "has no credentials"},
      {R"({"auths": {"ghcr.io": {"auth": "Ym9iOnB3"}, "https://GHCR.io": {"auth": "Ym9iOnMzY3JldA=="}}})",
       "auths.https://GHCR.io", "listed twice"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    const auto problems = problems_of(c.text);
    ASSERT_EQ(problems.size(), 1u) << all_text(problems);
    EXPECT_EQ(problems[0].key, c.key);
    EXPECT_THAT(problems[0].reason, HasSubstr(c.reason));
    for (const char* secret : {"s3cret", "c2VjcmV0", "Ym9iOnMzY3JldA", "bm9jb2xvbg", "nocolon"}) {
      EXPECT_THAT(all_text(problems), Not(HasSubstr(secret)));
    }
  }
}

TEST(DockerConfig, TheSameCredentialsUnderTwoNamesOfOneRegistryAreOne) {
  const auto auths = parsed(
      R"({"auths": {"docker.io": {"auth": "Ym9iOnB3"}, "https://index.docker.io/v1/": {"auth": "Ym9iOnB3"}}})");
  EXPECT_EQ(auths.credentials.size(), 1u);
}

TEST(RegistryAuthHeader, IsPaddedBase64UrlOfTheEnginesJson) {
  const RegistryCredential local{.registry = "127.0.0.1:5000", .username = "alice", .password = "p?>>~"};
  const auto header = registry_auth_header(local);
  EXPECT_EQ(header.find_first_of("+/"), std::string::npos) << header;
  EXPECT_EQ(header.size() % 4, 0u) << header;
  EXPECT_EQ(
      nlohmann::json::parse(base64url_decode(header)),
      (nlohmann::json{{"username", "alice"}, {"password", "p?>>~"}, {"serveraddress", "127.0.0.1:5000"}}));

  const RegistryCredential hub{.registry = "docker.io", .identity_token = "tok"};
  EXPECT_EQ(nlohmann::json::parse(base64url_decode(registry_auth_header(hub))),
            (nlohmann::json{{"identitytoken", "tok"}, {"serveraddress", "https://index.docker.io/v1/"}}));
}

// ---- the pull over a scripted transport: the header goes with the registry's pull only
// ---------------------

class RecordingEngine final : public http::Transport {
 public:
  http::Response reply{.status = 200, .body = "{\"status\":\"Pulling\"}\n"};
  std::vector<http::Request> requests;
  http::Response perform(const http::Request& request) override {
    requests.push_back(request);
    return reply;
  }
  http::Response perform_streaming(const http::Request& request, const http::BodySink&) override {
    return perform(request);
  }
  std::optional<std::string> cookie(std::string_view) const override { return std::nullopt; }
  void clear_cookies() override {}
};

std::optional<std::string> auth_header(const http::Request& request) {
  for (const auto& [name, value] : request.headers) {
    if (name == "X-Registry-Auth") return value;
  }
  return std::nullopt;
}

class RegistryPull : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ =
        root_.write("docker/config.json", R"({"auths": {"127.0.0.1:5000": {"auth": "YWxpY2U6czNjcmV0"}}})");
  }
  config::testing::TempRoot root_;
  std::filesystem::path config_;
  std::unique_ptr<RecordingEngine> owned_ = std::make_unique<RecordingEngine>();
  RecordingEngine* engine_ = owned_.get();
  Client client_{std::move(owned_), "/fake.sock"};
};

TEST_F(RegistryPull, SendsTheImagesRegistryCredentialsOnly) {
  client_.pull_image("127.0.0.1:5000/course/grader:t1", config_.string());
  client_.pull_image("ghcr.io/org/img:1", config_.string());
  client_.pull_image("127.0.0.1:5000/course/grader:t1");
  ASSERT_EQ(engine_->requests.size(), 3u);
  const auto header = auth_header(engine_->requests[0]);
  ASSERT_TRUE(header);
  EXPECT_EQ(
      nlohmann::json::parse(base64url_decode(*header)),
      (nlohmann::json{{"username", "alice"}, {"password", "s3cret"}, {"serveraddress", "127.0.0.1:5000"}}));
  EXPECT_THAT(engine_->requests[0].url,
              HasSubstr("/images/create?fromImage=127.0.0.1%3A5000%2Fcourse%2Fgrader&tag=t1"));
  EXPECT_FALSE(auth_header(engine_->requests[1]));
  EXPECT_FALSE(auth_header(engine_->requests[2]));
}

TEST_F(RegistryPull, AnAuthFailureNamesRegistryImageAndReasonButNoSecret) {
  engine_->reply = {.status = 500, .body = R"({"message":"unauthorized: authentication required"})"};
  try {
    client_.pull_image("127.0.0.1:5000/course/grader:t1", config_.string());
    FAIL() << "no error";
  } catch (const ImageMissing& error) {
    const std::string what = error.what();
    EXPECT_THAT(what, HasSubstr("image 127.0.0.1:5000/course/grader:t1"));
    EXPECT_THAT(what, HasSubstr("registry 127.0.0.1:5000"));
    EXPECT_THAT(what, HasSubstr(config_.string()));
    EXPECT_THAT(what, HasSubstr("unauthorized: authentication required"));
    EXPECT_THAT(what, Not(HasSubstr("s3cret")));
    EXPECT_THAT(what, Not(HasSubstr("YWxpY2U6czNjcmV0")));
  }
  // The same reason inside the progress stream (a 200 reply).
  engine_->reply = {.status = 200,
                    .body = "{\"status\":\"Pulling\"}\n{\"error\":\"denied: access forbidden\"}\n"};
  try {
    client_.pull_image("127.0.0.1:5000/course/grader:t1");
    FAIL() << "no error";
  } catch (const ImageMissing& error) {
    EXPECT_THAT(error.what(), HasSubstr("registry 127.0.0.1:5000 anonymously failed"));
    EXPECT_THAT(error.what(), HasSubstr("denied: access forbidden"));
  }
}

TEST_F(RegistryPull, AnUnusableFileFailsThePullNamingTheFileAndKey) {
  root_.write("docker/config.json", R"({"credHelpers": {"127.0.0.1:5000": "pass"}})");
  try {
    client_.pull_image("127.0.0.1:5000/course/grader:t1", config_.string());
    FAIL() << "no error";
  } catch (const ImageMissing& error) {
    EXPECT_THAT(error.what(), HasSubstr(config_.string() + ": credHelpers.127.0.0.1:5000"));
  }
  EXPECT_TRUE(engine_->requests.empty());
}

}  // namespace
}  // namespace xqw::docker

namespace xqw::config::testing {
namespace {

class RegistryAuthConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    root_.mkdir("course");
    root_.write("xqueue_servers.yaml", "default: {url: 'http://xq:18040', username: lms, password: pw}\n");
    root_.write("conf.d/q.yaml", "queues:\n  q:\n    grader_root: ../course\n");
  }
  TempRoot root_;
};

TEST_F(RegistryAuthConfig, TheFileKeyWinsOverDockerConfigWhichWinsOverNothing) {
  auto result = load(root_.path());
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->manager.registry_auth_file, "");  // never ~/.docker implicitly

  const auto from_env =
      root_.write("env-docker/config.json", R"({"auths": {"ghcr.io": {"auth": "Ym9iOnB3"}}})");
  result = load(root_.path(), {{"DOCKER_CONFIG", (root_.path() / "env-docker").string()}});
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->manager.registry_auth_file, from_env.string());

  const auto named = root_.write("secrets/registry.json", R"({"auths": {"ghcr.io": {"auth": "Ym9iOnB3"}}})");
  root_.write("xqwatcher.yaml", "registry_auth_file: secrets/registry.json\n");
  result = load(root_.path(), {{"DOCKER_CONFIG", (root_.path() / "env-docker").string()}});
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->manager.registry_auth_file, named.string());

  // check-config says which file and which registries, never a secret.
  std::ostringstream out;
  LoadOptions options;
  options.env = env_of({});
  options.env_names = env_names_of({});
  EXPECT_EQ(check_config(root_.path(), out, options), 0) << out.str();
  EXPECT_THAT(out.str(), ::testing::HasSubstr("image pulls: registry credentials from " + named.string() +
                                              " for ghcr.io\n"));
  EXPECT_THAT(out.str(), ::testing::Not(::testing::HasSubstr("Ym9iOnB3")));
}

TEST_F(RegistryAuthConfig, ProblemsNameTheFileTheKeyAndTheReason) {
  root_.write("xqwatcher.yaml", "registry_auth_file: missing.json\n");
  auto result = load(root_.path());
  auto* error = with_key(result.errors, "registry_auth_file");
  ASSERT_NE(error, nullptr) << all_problems(result);
  EXPECT_EQ(error->file, (root_.path() / "xqwatcher.yaml").string());
  EXPECT_EQ(error->line, 1);
  EXPECT_THAT(error->reason, ::testing::HasSubstr("missing.json is not a readable file"));

  const auto file = root_.write("registry.json", R"({"credHelpers": {"ghcr.io": "gh"},
    "auths": {"quay.io": {"username": "bob", "password": ""}}})");
  root_.write("xqwatcher.yaml", "registry_auth_file: registry.json\n");
  result = load(root_.path());
  EXPECT_FALSE(result.ok());
  error = with_key(result.errors, "credHelpers.ghcr.io");
  ASSERT_NE(error, nullptr) << all_problems(result);
  EXPECT_EQ(error->file, file.string());
  EXPECT_THAT(error->reason, ::testing::HasSubstr("credential helpers are not supported"));
  ASSERT_NE(with_key(result.errors, "auths.quay.io"), nullptr) << all_problems(result);
}

TEST_F(RegistryAuthConfig, ADockerConfigWithoutAFileOrWithoutCredentialsIsAWarning) {
  root_.mkdir("empty-docker");
  auto result = load(root_.path(), {{"DOCKER_CONFIG", (root_.path() / "empty-docker").string()}});
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->manager.registry_auth_file, "");
  ASSERT_NE(with_key(result.warnings, "DOCKER_CONFIG"), nullptr) << all_problems(result);

  root_.write("empty-docker/config.json", "{}");
  result = load(root_.path(), {{"DOCKER_CONFIG", (root_.path() / "empty-docker").string()}});
  ASSERT_TRUE(result.config) << all_problems(result);
  ASSERT_NE(with_key(result.warnings, "auths"), nullptr) << all_problems(result);

  root_.write("empty-docker/config.json", R"({"credsStore": "secretservice"})");
  result = load(root_.path(), {{"DOCKER_CONFIG", (root_.path() / "empty-docker").string()}});
  const auto* error = with_key(result.errors, "credsStore");
  ASSERT_NE(error, nullptr) << all_problems(result);
  EXPECT_EQ(error->file, (root_.path() / "empty-docker/config.json").string());
}

}  // namespace
}  // namespace xqw::config::testing
