// The Python xqueue-watcher's own files (tests/unit/fixtures/config/upstream-*, copied unchanged).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "config_test_support.hpp"

namespace xqw::config::testing {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

TEST(ConfigUpstream, Example600LoadsUnchangedExceptForItsMissingGraderRoot) {
  const auto result = load(fixture("upstream-600"));
  // /graders/ exists only inside upstream's docker-compose set-up; everything else is accepted.
  ASSERT_EQ(result.errors.size(), 1u) << all_problems(result);
  const auto& error = result.errors[0];
  EXPECT_EQ(error.key, "test-123.HANDLERS[0].KWARGS.grader_root");
  EXPECT_THAT(error.file, HasSubstr("upstream-600/conf.d/600.json"));
  EXPECT_THAT(error.reason, HasSubstr("/graders/ does not exist"));
  EXPECT_FALSE(result.config.has_value());
  ASSERT_EQ(result.warnings.size(), 1u) << all_problems(result);
  EXPECT_THAT(result.warnings[0].file, HasSubstr("logging.json"));
  EXPECT_THAT(result.warnings[0].reason, HasSubstr("Python logging settings do not apply"));
}

TEST(ConfigUpstream, Example600ValuesWhenItsGraderRootExists) {
  TempRoot root;
  root.copy_fixture("upstream-600");
  const auto graders = root.mkdir("graders");
  auto queue_file = root.read("conf.d/600.json");
  replace_all(queue_file, "\"/graders/\"", "\"" + graders.string() + "/\"");
  root.write("conf.d/600.json", queue_file);

  const auto result = load(root.path());
  ASSERT_TRUE(result.config) << all_problems(result);
  const auto& manager = result.config->manager;
  EXPECT_EQ(manager.poll_interval, milliseconds(1000));
  EXPECT_EQ(manager.login_poll_interval, milliseconds(5000));
  EXPECT_EQ(manager.requests_timeout, milliseconds(1000));
  EXPECT_FALSE(manager.follow_client_redirects);
  EXPECT_FALSE(manager.http_basic_auth);

  ASSERT_EQ(result.config->queues.size(), 1u);
  const auto& queue = result.config->queues[0];
  EXPECT_EQ(queue.name, "test-123");
  EXPECT_EQ(queue.server.name, "default");
  EXPECT_EQ(queue.server.url, "http://xqueue-svc:18040");
  EXPECT_EQ(queue.server.username, "lms_user");
  EXPECT_EQ(queue.server.password, "s3cr3t");
  EXPECT_EQ(queue.connections, 1);
  EXPECT_EQ(queue.grader_root, std::filesystem::canonical(graders));
  EXPECT_EQ(queue.image, "grader-base:local");
  EXPECT_EQ(queue.contract, ContractKind::Upstream) << "an image built for the Python watcher's contract";
  EXPECT_TRUE(queue.contract_implied);
  EXPECT_EQ(queue.pull_policy, docker::PullPolicy::IfNotPresent);
  EXPECT_DOUBLE_EQ(queue.limits.cpus, 0.5);
  EXPECT_EQ(queue.limits.memory_bytes, 256 * MiB);
  EXPECT_EQ(queue.limits.timeout, milliseconds(20000));
  EXPECT_EQ(queue.limits.pids, Limits{}.pids);  // not in upstream's file: the strict default
  EXPECT_FALSE(queue.from_jailed_grader);
}

TEST(ConfigUpstream, KubernetesExampleWarnsThatGradingRunsOnTheDockerEngine) {
  const auto result = load(fixture("upstream-k8s"));
  ASSERT_EQ(result.errors.size(), 1u) << all_problems(result);
  EXPECT_EQ(result.errors[0].key, "my-course-queue.HANDLERS[0].KWARGS.grader_root");
  const auto* backend = with_key(result.warnings, "my-course-queue.HANDLERS[0].KWARGS.backend");
  ASSERT_NE(backend, nullptr) << all_problems(result);
  EXPECT_THAT(backend->reason, HasSubstr("Docker engine"));
  const auto* ns = with_key(result.warnings, "my-course-queue.HANDLERS[0].KWARGS.namespace");
  ASSERT_NE(ns, nullptr) << all_problems(result);
  EXPECT_THAT(ns->reason, HasSubstr("ignored"));
}

TEST(ConfigUpstream, KubernetesExampleValuesWhenItsGraderRootExists) {
  TempRoot root;
  root.copy_fixture("upstream-k8s");
  const auto graders = root.mkdir("graders/my-course");
  auto queue_file = root.read("conf.d/example-queue.json");
  replace_all(queue_file, "\"/graders/my-course/\"", "\"" + graders.string() + "\"");
  root.write("conf.d/example-queue.json", queue_file);

  const auto result = load(root.path());
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->manager.requests_timeout, milliseconds(5000));
  const auto& queue = result.config->queues.at(0);
  EXPECT_EQ(queue.server.url, "http://xqueue:18040");
  EXPECT_EQ(queue.server.username, "xqueue_user");
  EXPECT_EQ(queue.server.password, "xqueue_pass");
  EXPECT_EQ(queue.connections, 2);
  EXPECT_EQ(queue.image, "registry.example.com/my-course-grader:latest");
}

TEST(ConfigUpstream, UnknownHandlerIsAWarningAndItsGraderRootIsStillRequired) {
  const auto result = load(fixture("upstream-testgrader"));
  const auto* handler = with_key(result.warnings, "test-pull.HANDLERS[0].HANDLER");
  ASSERT_NE(handler, nullptr) << all_problems(result);
  EXPECT_THAT(handler->reason, HasSubstr("unknown HANDLER 'xqueue_watcher.test_grader.TestGrader'"));
  ASSERT_EQ(result.errors.size(), 1u) << all_problems(result);
  EXPECT_EQ(result.errors[0].key, "test-pull.HANDLERS[0].KWARGS.grader_root");
  EXPECT_THAT(result.errors[0].reason, HasSubstr("missing"));
}

TEST(ConfigUpstream, OldYamlClientsFormMapsJailedGradersToThePythonImage) {
  const auto result = load(fixture("upstream-yaml"));
  const auto* jailed = with_key(result.warnings, "CLIENTS[0].HANDLERS[0].HANDLER");
  ASSERT_NE(jailed, nullptr) << all_problems(result);
  EXPECT_THAT(jailed->reason, HasSubstr("bundled Python grader image"));
  EXPECT_NE(with_key(result.warnings, "CLIENTS[1].HANDLERS[0].CODEJAIL"), nullptr) << all_problems(result);
  EXPECT_NE(with_key(result.warnings, "MANAGER"), nullptr) << all_problems(result);
  EXPECT_NE(with_key(result.warnings, "CLIENTS"), nullptr) << all_problems(result);  // empty.yml
  // Its grader roots are relative to conf.d/ and do not exist here.
  ASSERT_EQ(result.errors.size(), 2u) << all_problems(result);
  EXPECT_EQ(result.errors[0].key, "CLIENTS[0].HANDLERS[0].KWARGS.grader_root");
  EXPECT_THAT(result.errors[0].reason, HasSubstr("upstream-yaml/data/MITx-7.QBWx/graders/ does not exist"));
  EXPECT_EQ(result.errors[0].line, 14);
}

TEST(ConfigUpstream, ReadmeExampleIsMalformedJsonAndTheErrorSaysWhere) {
  const auto result = load(fixture("upstream-readme"));
  ASSERT_EQ(result.errors.size(), 1u) << all_problems(result);
  EXPECT_THAT(result.errors[0].file, HasSubstr("conf.d/my-course.json"));
  EXPECT_EQ(result.errors[0].line, 11);
  EXPECT_THAT(result.errors[0].reason, HasSubstr("malformed JSON at line 11"));
}

// --- upstream keys, one at a time ---

class ConfigUpstreamQueue : public ::testing::Test {
 protected:
  void SetUp() override { graders_ = root_.mkdir("graders").string(); }

  // A conf.d JSON queue "q" with `fields` spliced in, and a container handler with `kwargs`.
  LoadResult load_queue(const std::string& fields, const std::string& kwargs = "",
                        std::map<std::string, std::string> env = {}) {
    root_.write("conf.d/q.json",
                "{\"q\": {" + fields + (fields.empty() ? "" : ", ") +
                    "\"HANDLERS\": [{\"HANDLER\": \"xqueue_watcher.containergrader.ContainerGrader\","
                    " \"KWARGS\": {\"grader_root\": \"" +
                    graders_ + "\"" + (kwargs.empty() ? "" : ", " + kwargs) + "}}]}}");
    return load(root_.path(), std::move(env));
  }

  TempRoot root_;
  std::string graders_;
};

TEST_F(ConfigUpstreamQueue, WithoutXqwatcherJsonTheManagerDefaultsAreUpstreamOnes) {
  const auto result = load_queue(R"("SERVER": "http://x:18040", "AUTH": ["u", "p"])");
  ASSERT_TRUE(result.config) << all_problems(result);
  const auto& manager = result.config->manager;
  EXPECT_EQ(manager.poll_interval, milliseconds(1000));
  EXPECT_EQ(manager.login_poll_interval, milliseconds(5000));
  EXPECT_EQ(manager.requests_timeout, milliseconds(1000));
  EXPECT_FALSE(manager.follow_client_redirects);
  EXPECT_FALSE(manager.http_basic_auth.has_value());
}

TEST_F(ConfigUpstreamQueue, XqwatcherJsonSetsManagerValues) {
  root_.write("xqwatcher.json", R"({"POLL_INTERVAL": 2, "LOGIN_POLL_INTERVAL": 0.5, "REQUESTS_TIMEOUT": 3,
    "FOLLOW_CLIENT_REDIRECTS": true, "HTTP_BASIC_AUTH": ["edx", "edx-pass"], "POLL_TIME": 10})");
  const auto result = load_queue(R"("SERVER": "http://x:18040", "AUTH": ["u", "p"])");
  ASSERT_TRUE(result.config) << all_problems(result);
  const auto& manager = result.config->manager;
  EXPECT_EQ(manager.poll_interval, milliseconds(2000));
  EXPECT_EQ(manager.login_poll_interval, milliseconds(500));
  EXPECT_EQ(manager.requests_timeout, milliseconds(3000));
  EXPECT_TRUE(manager.follow_client_redirects);
  EXPECT_EQ(manager.http_basic_auth, std::make_pair(std::string("edx"), std::string("edx-pass")));
}

TEST_F(ConfigUpstreamQueue, NameOverrideIsTheQueueNameAtXQueue) {
  const auto result =
      load_queue(R"("SERVER": "http://x:18040", "AUTH": ["u", "p"], "NAME_OVERRIDE": "real-q")");
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).name, "real-q");
}

TEST_F(ConfigUpstreamQueue, ServerRefAndServerAreMutuallyExclusive) {
  const auto result = load_queue(R"("SERVER_REF": "default", "SERVER": "http://x:18040")");
  const auto* error = with_key(result.errors, "q.SERVER_REF");
  ASSERT_NE(error, nullptr) << all_problems(result);
  EXPECT_THAT(error->reason, HasSubstr("mutually exclusive"));
}

TEST_F(ConfigUpstreamQueue, InlineServerWithoutAuthIsMissingCredentials) {
  const auto result = load_queue(R"("SERVER": "http://x:18040")");
  const auto* error = with_key(result.errors, "q.AUTH");
  ASSERT_NE(error, nullptr) << all_problems(result);
  EXPECT_THAT(error->reason, HasSubstr("missing credentials"));
}

TEST_F(ConfigUpstreamQueue, NoServerAtAllUsesUpstreamsLocalhostDefaultWithAWarning) {
  const auto result = load_queue(R"("AUTH": ["u", "p"])");
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).server.url, "http://localhost:18040");
  EXPECT_NE(with_key(result.warnings, "q.SERVER"), nullptr) << all_problems(result);
}

TEST_F(ConfigUpstreamQueue, AuthMayReferToTheEnvironment) {
  const auto result = load_queue(R"("SERVER": "http://x:18040", "AUTH": ["lms", "${XQ_PASS}"])", "",
                                 {{"XQ_PASS", "from-env"}});
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).server.password, "from-env");
}

TEST_F(ConfigUpstreamQueue, ImagePullPolicyIsReadInKubernetesSpelling) {
  auto result =
      load_queue(R"("SERVER": "http://x:18040", "AUTH": ["u", "p"])", R"("image_pull_policy": "Always")");
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).pull_policy, docker::PullPolicy::Always);

  result =
      load_queue(R"("SERVER": "http://x:18040", "AUTH": ["u", "p"])", R"("image_pull_policy": "Sometimes")");
  const auto* error = with_key(result.errors, "q.HANDLERS[0].KWARGS.image_pull_policy");
  ASSERT_NE(error, nullptr) << all_problems(result);
  EXPECT_THAT(error->reason, HasSubstr("unknown pull policy 'Sometimes'"));
}

TEST_F(ConfigUpstreamQueue, ImagePullPolicyIsTypedInAnyCaseAndErrorsNameFileKeyAndValue) {
  for (const auto& [text, policy] :
       {std::pair{"Always", docker::PullPolicy::Always},
        std::pair{"IfNotPresent", docker::PullPolicy::IfNotPresent},
        std::pair{"ifnotpresent", docker::PullPolicy::IfNotPresent},
        std::pair{"Never", docker::PullPolicy::Never}, std::pair{"NEVER", docker::PullPolicy::Never}}) {
    SCOPED_TRACE(text);
    const auto result = load_queue(R"("SERVER": "http://x:18040", "AUTH": ["u", "p"])",
                                   std::string(R"("image_pull_policy": ")") + text + "\"");
    ASSERT_TRUE(result.config) << all_problems(result);
    EXPECT_EQ(result.config->queues.at(0).pull_policy, policy);
  }
  // The native spelling is not Kubernetes': refused, naming the file, the key and the value.
  const auto result = load_queue(R"("SERVER": "http://x:18040", "AUTH": ["u", "p"])",
                                 R"("image_pull_policy": "if-not-present")");
  const auto* error = with_key(result.errors, "q.HANDLERS[0].KWARGS.image_pull_policy");
  ASSERT_NE(error, nullptr) << all_problems(result);
  EXPECT_THAT(error->file, HasSubstr("conf.d/q.json"));
  EXPECT_THAT(error->reason,
              HasSubstr("unknown pull policy 'if-not-present' (use Always, IfNotPresent or Never)"));
  EXPECT_FALSE(result.config);
}

TEST_F(ConfigUpstreamQueue, UnknownKwargSuggestsTheKnownOne) {
  const auto result =
      load_queue(R"("SERVER": "http://x:18040", "AUTH": ["u", "p"])", R"("memroy_limit": "1Gi")");
  const auto* error = with_key(result.errors, "q.HANDLERS[0].KWARGS.memroy_limit");
  ASSERT_NE(error, nullptr) << all_problems(result);
  EXPECT_THAT(error->reason, HasSubstr("did you mean 'memory_limit'?"));
}

TEST_F(ConfigUpstreamQueue, MoreThanOneHandlerIsRefused) {
  root_.write("conf.d/q.json", R"({"q": {"SERVER": "http://x:18040", "AUTH": ["u", "p"], "HANDLERS": [
      {"HANDLER": "xqueue_watcher.containergrader.ContainerGrader", "KWARGS": {"grader_root": "/"}},
      {"HANDLER": "xqueue_watcher.containergrader.ContainerGrader", "KWARGS": {"grader_root": "/"}}]}})");
  const auto result = load(root_.path());
  const auto* error = with_key(result.errors, "q.HANDLERS");
  ASSERT_NE(error, nullptr) << all_problems(result);
  EXPECT_THAT(error->reason, HasSubstr("only one handler per queue"));
}

TEST_F(ConfigUpstreamQueue, JailedGraderRunsInThePythonImage) {
  root_.write("conf.d/q.json", R"({"q": {"SERVER": "http://x:18040", "AUTH": ["u", "p"], "HANDLERS": [
      {"HANDLER": "xqueue_watcher.jailedgrader.JailedGrader",
       "CODEJAIL": {"name": "python", "bin_path": "/venv/bin/python", "user": "sandbox"},
       "KWARGS": {"grader_root": "graders/"}}]}})");
  root_.mkdir("conf.d/graders");
  const auto result = load(root_.path());
  ASSERT_TRUE(result.config) << all_problems(result);
  const auto& queue = result.config->queues.at(0);
  EXPECT_TRUE(queue.from_jailed_grader);
  EXPECT_EQ(queue.image, std::string(kDefaultImage));
  EXPECT_EQ(queue.grader_root, std::filesystem::canonical(root_.path() / "conf.d/graders"));
  const auto* warning = with_key(result.warnings, "q.HANDLERS[0].HANDLER");
  ASSERT_NE(warning, nullptr) << all_problems(result);
  EXPECT_THAT(warning->reason, HasSubstr("JailedGrader runs in the bundled Python grader image"));
}

TEST_F(ConfigUpstreamQueue, UpstreamLimitsAreHeldToTheOperatorsBounds) {
  root_.write("xqwatcher.yaml", "bounds: {memory: 512Mi}\n");
  const auto result =
      load_queue(R"("SERVER": "http://x:18040", "AUTH": ["u", "p"])", R"("memory_limit": "1Gi")");
  const auto* error = with_key(result.errors, "q.HANDLERS[0].KWARGS.memory_limit");
  ASSERT_NE(error, nullptr) << all_problems(result);
  EXPECT_THAT(error->reason, HasSubstr("1 GiB is above the operator's bound of 512 MiB"));
}

TEST_F(ConfigUpstreamQueue, ServersFileEntriesNeedServerAndAuth) {
  root_.write("xqueue_servers.json", R"({"bad": {"AUTH": ["u", "p"]}, "worse": {"SERVER": "http://x"}})");
  const auto result = load_queue(R"("SERVER_REF": "bad")");
  const auto* server = with_key(result.errors, "bad.SERVER");
  ASSERT_NE(server, nullptr) << all_problems(result);
  EXPECT_THAT(server->reason, HasSubstr("missing"));
  const auto* auth = with_key(result.errors, "worse.AUTH");
  ASSERT_NE(auth, nullptr) << all_problems(result);
  EXPECT_THAT(auth->reason, HasSubstr("missing credentials"));
}

}  // namespace
}  // namespace xqw::config::testing
