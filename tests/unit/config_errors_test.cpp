// Each kind of configuration problem: its file, key and reason, and that all are reported at once.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "config/config.hpp"
#include "config_test_support.hpp"

namespace xqw::config::testing {
namespace {

using ::testing::HasSubstr;

class ConfigErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    root_.mkdir("course");
    root_.write("xqueue_servers.yaml",
                "default: {url: 'http://xq:18040', username: lms, password: pw}\n"
                "staging: {url: 'http://xq2:18040', username: lms, password: pw}\n");
  }

  // conf.d/q.yaml with queue `q` whose body is `body` (indented four spaces by the caller).
  LoadResult load_queue(const std::string& body) {
    root_.write("conf.d/q.yaml", "queues:\n  q:\n" + body);
    return load(root_.path());
  }

  LoadResult load_manager(const std::string& manager_yaml) {
    root_.write("xqwatcher.yaml", manager_yaml);
    return load_queue("    grader_root: ../course\n");
  }

  // The one error at `key`; fails the test when there is none.
  Problem error_at(const LoadResult& result, const std::string& key) {
    const auto* problem = with_key(result.errors, key);
    EXPECT_NE(problem, nullptr) << "no error at " << key << "\n" << all_problems(result);
    return problem ? *problem : Problem{};
  }

  TempRoot root_;
};

TEST_F(ConfigErrors, UnknownKeysSuggestTheNearestKnownOne) {
  root_.write("xqwatcher.yaml", "poll_intervall: 2s\n");
  const auto result =
      load_queue("    grader_root: ../course\n    conections: 2\n    limits: {memroy: 1Gi}\n");
  EXPECT_THAT(error_at(result, "poll_intervall").reason,
              HasSubstr("unknown key (did you mean 'poll_interval'?)"));
  EXPECT_THAT(error_at(result, "queues.q.conections").reason, HasSubstr("did you mean 'connections'?"));
  EXPECT_THAT(error_at(result, "queues.q.limits.memroy").reason, HasSubstr("did you mean 'memory'?"));
  EXPECT_FALSE(result.config.has_value());
}

TEST_F(ConfigErrors, UnknownKeyFarFromAnyKnownOneHasNoSuggestion) {
  const auto result = load_queue("    grader_root: ../course\n    colour: blue\n");
  const auto reason = error_at(result, "queues.q.colour").reason;
  EXPECT_EQ(reason, "unknown key");
}

TEST_F(ConfigErrors, WrongTypesSayWhatWasExpectedAndWhatWasFound) {
  root_.write("xqwatcher.yaml", "follow_client_redirects: maybe\npoll_interval: [1]\n");
  const auto result = load_queue("    grader_root: ../course\n    connections: two\n    limits: [1, 2]\n");
  EXPECT_THAT(error_at(result, "follow_client_redirects").reason,
              HasSubstr("expected true or false, got 'maybe'"));
  EXPECT_THAT(error_at(result, "poll_interval").reason,
              HasSubstr("expected a number or a string, got a list"));
  EXPECT_THAT(error_at(result, "queues.q.connections").reason,
              HasSubstr("expected a whole number, got 'two'"));
  EXPECT_THAT(error_at(result, "queues.q.limits").reason, HasSubstr("expected a map, got a list"));
}

TEST_F(ConfigErrors, UnparsableLimitsGiveTheParsersReason) {
  const auto result = load_queue(
      "    grader_root: ../course\n    limits: {memory: 256Q, cpus: lots, timeout: 20x, pids: 0}\n");
  EXPECT_THAT(error_at(result, "queues.q.limits.memory").reason, HasSubstr("'256Q' has an unknown unit 'Q'"));
  EXPECT_THAT(error_at(result, "queues.q.limits.cpus").reason, HasSubstr("'lots' is not a CPU count"));
  EXPECT_THAT(error_at(result, "queues.q.limits.timeout").reason, HasSubstr("unknown unit 'x'"));
  EXPECT_THAT(error_at(result, "queues.q.limits.pids").reason, HasSubstr("must be at least 1"));
}

TEST_F(ConfigErrors, MemoryBelowWhatTheEngineAcceptsIsRefused) {
  const auto result = load_queue("    grader_root: ../course\n    limits: {memory: 1Mi}\n");
  EXPECT_THAT(error_at(result, "queues.q.limits.memory").reason, HasSubstr("must be at least 6 MiB"));
}

TEST_F(ConfigErrors, GraderRootMissingAbsentOrNotADirectory) {
  auto result = load_queue("    connections: 1\n");
  EXPECT_THAT(error_at(result, "queues.q.grader_root").reason, HasSubstr("missing"));

  result = load_queue("    grader_root: ../no-such-course\n");
  EXPECT_THAT(error_at(result, "queues.q.grader_root").reason,
              HasSubstr((root_.path() / "no-such-course").string() + " does not exist"));

  root_.write("course.txt", "not a directory");
  result = load_queue("    grader_root: ../course.txt\n");
  EXPECT_THAT(error_at(result, "queues.q.grader_root").reason, HasSubstr("is not a directory"));
}

TEST_F(ConfigErrors, UnknownServerListsTheKnownOnes) {
  const auto result = load_queue("    grader_root: ../course\n    server: stagin\n");
  const auto error = error_at(result, "queues.q.server");
  EXPECT_THAT(error.reason, HasSubstr("unknown server 'stagin' (did you mean 'staging'?)"));
  EXPECT_THAT(error.reason, HasSubstr("xqueue_servers defines: default, staging"));
  EXPECT_THAT(error.file, HasSubstr("conf.d/q.yaml"));
  EXPECT_EQ(error.line, 4);
}

TEST_F(ConfigErrors, EmptyServerName) {
  const auto result = load_queue("    grader_root: ../course\n    server: ''\n");
  EXPECT_THAT(error_at(result, "queues.q.server").reason, HasSubstr("the server name is empty"));
}

TEST_F(ConfigErrors, TurningTlsVerificationOffIsAWarningNotAnError) {
  const auto result = load_manager("verify_tls: false\n");
  ASSERT_TRUE(result.config) << all_problems(result);
  const auto* warning = with_key(result.warnings, "verify_tls");
  ASSERT_NE(warning, nullptr) << all_problems(result);
  EXPECT_THAT(warning->reason, HasSubstr("never do this in production"));
}

TEST_F(ConfigErrors, EmptyQueueFileAndNoQueuesAreWarnings) {
  root_.write("conf.d/empty.yaml", "# nothing yet\n");
  const auto result = load(root_.path());
  ASSERT_TRUE(result.config) << all_problems(result);
  ASSERT_EQ(result.warnings.size(), 2u) << all_problems(result);
  EXPECT_THAT(result.warnings[0].reason, HasSubstr("the file is empty"));
  EXPECT_THAT(result.warnings[1].reason, HasSubstr("no queues configured"));
}

TEST_F(ConfigErrors, NoServerNamedAndNoDefaultServer) {
  root_.write("xqueue_servers.yaml", "staging: {url: 'http://xq2:18040', username: lms, password: pw}\n");
  const auto result = load_queue("    grader_root: ../course\n");
  EXPECT_THAT(error_at(result, "queues.q.server").reason,
              HasSubstr("no server given and xqueue_servers has no 'default' (name one of: staging)"));
}

TEST_F(ConfigErrors, ServerReferenceWithoutAnyServersFile) {
  std::filesystem::remove(root_.path() / "xqueue_servers.yaml");
  const auto result = load_queue("    grader_root: ../course\n    server: prod\n");
  EXPECT_THAT(error_at(result, "queues.q.server").reason, HasSubstr("there is no xqueue_servers.yaml"));
}

TEST_F(ConfigErrors, DuplicateQueueNamesAcrossFilesNameTheFirstFile) {
  root_.write("conf.d/a.yaml", "queues:\n  q: {grader_root: ../course}\n");
  root_.write("conf.d/b.json", R"({"other": {"SERVER_REF": "default", "NAME_OVERRIDE": "q",
    "HANDLERS": [{"HANDLER": "xqueue_watcher.containergrader.ContainerGrader", "KWARGS": {"grader_root": "../course"}}]}})");
  const auto result = load(root_.path());
  const auto error = error_at(result, "other");
  EXPECT_THAT(error.file, HasSubstr("b.json"));
  EXPECT_THAT(error.reason, HasSubstr("duplicate queue 'q': already defined in " +
                                      (root_.path() / "conf.d/a.yaml").string() + " (queues.q)"));
}

TEST_F(ConfigErrors, MalformedYamlGivesLineAndColumn) {
  root_.write("conf.d/q.yaml", "queues:\n  q:\n    grader_root: ../course\n    limits: {memory: 1Gi\n");
  const auto result = load(root_.path());
  ASSERT_EQ(result.errors.size(), 1u) << all_problems(result);
  EXPECT_THAT(result.errors[0].reason, HasSubstr("malformed YAML at line"));
  EXPECT_GT(result.errors[0].line, 3);
}

TEST_F(ConfigErrors, MalformedJsonGivesLineAndColumn) {
  root_.write("conf.d/q.json", "{\n  \"q\": {\n    \"CONNECTIONS\": 1,,\n  }\n}\n");
  const auto result = load(root_.path());
  ASSERT_EQ(result.errors.size(), 1u) << all_problems(result);
  EXPECT_EQ(result.errors[0].line, 3);
  EXPECT_THAT(result.errors[0].reason, HasSubstr("malformed JSON at line 3, column 22"));
}

TEST_F(ConfigErrors, DuplicateKeysInOneFile) {
  root_.write("conf.d/q.yaml",
              "queues:\n  q:\n    grader_root: ../course\n    connections: 1\n    connections: 2\n");
  const auto result = load(root_.path());
  const auto error = error_at(result, "queues.q.connections");
  EXPECT_THAT(error.reason, HasSubstr("duplicate key"));
  EXPECT_EQ(error.line, 5);
}

TEST_F(ConfigErrors, UnknownPullPolicy) {
  const auto result = load_queue("    grader_root: ../course\n    pull_policy: sometimes\n");
  EXPECT_THAT(error_at(result, "queues.q.pull_policy").reason,
              HasSubstr("unknown pull policy 'sometimes' (use never, if-not-present or always)"));
}

TEST_F(ConfigErrors, PullPolicyErrorsNameTheFileKeyLineAndBadValue) {
  auto result = load_queue("    grader_root: ../course\n    pull_policy: Always\n");
  auto error = error_at(result, "queues.q.pull_policy");
  EXPECT_THAT(error.file, HasSubstr("conf.d/q.yaml"));
  EXPECT_EQ(error.line, 4);
  EXPECT_THAT(error.reason,
              HasSubstr("unknown pull policy 'Always'"));  // Kubernetes' spelling is upstream's only

  result = load_manager("defaults:\n  pull_policy: IfNotPresent\n");
  error = error_at(result, "defaults.pull_policy");
  EXPECT_THAT(error.file, HasSubstr("xqwatcher.yaml"));
  EXPECT_EQ(error.line, 2);
  EXPECT_THAT(error.reason,
              HasSubstr("unknown pull policy 'IfNotPresent' (use never, if-not-present or always)"));
  EXPECT_FALSE(result.config);

  result = load_queue("    grader_root: ../course\n    pull_policy: [always]\n");
  EXPECT_FALSE(error_at(result, "queues.q.pull_policy").reason.empty());
}

TEST_F(ConfigErrors, ConnectionsBelowOne) {
  const auto result = load_queue("    grader_root: ../course\n    connections: 0\n");
  EXPECT_THAT(error_at(result, "queues.q.connections").reason, HasSubstr("must be at least 1, got 0"));
}

TEST_F(ConfigErrors, MessagesOnlyForKnownVerdictsAndOnlyTheLimitPlaceholder) {
  const auto result = load_queue(
      "    grader_root: ../course\n    messages: {time_out: 'x', timeout: 'Took longer than {limt}.'}\n");
  EXPECT_THAT(error_at(result, "queues.q.messages.time_out").reason,
              HasSubstr("unknown verdict (did you mean 'timeout'?)"));
  EXPECT_THAT(error_at(result, "queues.q.messages.timeout").reason,
              HasSubstr("unknown placeholder '{limt}' (only {limit} is replaced)"));
}

TEST_F(ConfigErrors, RootUserIsRefused) {
  const auto result = load_queue("    grader_root: ../course\n    limits: {user: 'root'}\n");
  EXPECT_THAT(error_at(result, "queues.q.limits.user").reason, HasSubstr("never run as root"));
}

TEST_F(ConfigErrors, EngineHostPathsMustBeAbsolute) {
  const auto result = load_queue("    grader_root: ../course\n    docker_host_grader_root: srv/course\n");
  EXPECT_THAT(error_at(result, "queues.q.docker_host_grader_root").reason,
              HasSubstr("must be an absolute path on the engine's host"));
}

TEST_F(ConfigErrors, ServerUrlMustBeHttp) {
  root_.write("xqueue_servers.yaml", "default: {url: 'xq:18040', username: lms, password: pw}\n");
  const auto result = load_queue("    grader_root: ../course\n");
  EXPECT_THAT(error_at(result, "default.url").reason, HasSubstr("is not an http:// or https:// URL"));
}

TEST_F(ConfigErrors, BothYamlAndJsonManagerFiles) {
  root_.write("xqwatcher.json", "{}");
  const auto result = load_manager("poll_interval: 1s\n");
  ASSERT_FALSE(result.errors.empty());
  EXPECT_THAT(result.errors[0].reason, HasSubstr("xqwatcher.yaml and xqwatcher.json both exist; keep one"));
}

TEST_F(ConfigErrors, ManagerValuesOutOfRange) {
  const auto result = load_manager("poll_interval: 0s\nmetrics_port: 70000\ndocker_socket: tcp://x:2375\n");
  EXPECT_THAT(error_at(result, "poll_interval").reason, HasSubstr("must be more than 0"));
  EXPECT_THAT(error_at(result, "metrics_port").reason, HasSubstr("must be at most 65535"));
  EXPECT_THAT(error_at(result, "docker_socket").reason, HasSubstr("is not a unix socket path"));
}

TEST_F(ConfigErrors, UpstreamShapedQueueInAYamlFileGetsAHint) {
  root_.write("conf.d/q.yaml", "my-queue:\n  SERVER_REF: default\n  HANDLERS: []\n");
  const auto result = load(root_.path());
  EXPECT_THAT(error_at(result, "my-queue").reason, HasSubstr("looks like an upstream queue"));
}

TEST_F(ConfigErrors, MissingConfdAndMissingRoot) {
  auto result = load(root_.path());
  ASSERT_EQ(result.errors.size(), 1u) << all_problems(result);
  EXPECT_THAT(result.errors[0].file, HasSubstr("conf.d"));
  EXPECT_THAT(result.errors[0].reason, HasSubstr("not found"));

  result = load(root_.path() / "nowhere");
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_THAT(result.errors[0].reason, HasSubstr("config root does not exist"));
}

TEST_F(ConfigErrors, EveryProblemIsReportedInOnePass) {
  root_.write("xqwatcher.yaml", "bounds: {memory: 1Gi}\nshutdown_grace: soon\n");
  root_.write("conf.d/a.yaml",
              "queues:\n  a: {grader_root: ../course, limits: {memory: 2Gi}, server: nope}\n");
  root_.write("conf.d/b.yaml", "queues:\n  b: {grader_root: ../missing, connections: -1}\n");
  const auto result = load(root_.path());
  EXPECT_EQ(result.errors.size(), 5u) << all_problems(result);
  error_at(result, "shutdown_grace");
  error_at(result, "queues.a.limits.memory");
  error_at(result, "queues.a.server");
  error_at(result, "queues.b.grader_root");
  error_at(result, "queues.b.connections");
}

TEST(ConfigProblem, PrintsFileLineKeyAndReason) {
  EXPECT_EQ((Problem{"conf.d/q.yaml", "queues.q.limits.memory", "too big", 7}).to_string(),
            "conf.d/q.yaml:7: queues.q.limits.memory: too big");
  EXPECT_EQ((Problem{"conf.d/q.json", "q.AUTH", "missing", 0}).to_string(), "conf.d/q.json: q.AUTH: missing");
  EXPECT_EQ((Problem{"conf.d", "", "not found", 0}).to_string(), "conf.d: not found");
}

TEST(ConfigCheck, PrintsEveryProblemAndExitsNonZeroOnAny) {
  TempRoot root;
  root.write("conf.d/q.yaml", "queues:\n  q: {grader_root: ../missing, pull_policy: sometimes}\n");
  std::ostringstream out;
  LoadOptions options;
  options.env = env_of({});
  EXPECT_EQ(check_config(root.path(), out, options), 1);
  EXPECT_THAT(out.str(),
              HasSubstr("error: " + (root.path() / "conf.d/q.yaml").string() + ":2: queues.q.grader_root: "));
  EXPECT_THAT(out.str(), HasSubstr("queues.q.pull_policy: unknown pull policy 'sometimes'"));
  EXPECT_THAT(out.str(), HasSubstr("invalid configuration, 3 errors"));  // and the unknown server
}

TEST(ConfigCheck, ValidConfigExitsZeroAndSummarises) {
  std::ostringstream out;
  LoadOptions options;
  options.env = env_of({{"XQUEUE_PASSWORD", "x"}, {"BASIC_AUTH_PASSWORD", "y"}});
  EXPECT_EQ(check_config(fixture("native"), out, options), 0) << out.str();
  EXPECT_THAT(out.str(), HasSubstr("configuration OK, 2 queues, 3 connections"));
}

}  // namespace
}  // namespace xqw::config::testing
