// Moving from the Python watcher's ContainerGrader: the queue's container contract (written, or implied by
// an upstream conf.d), its KWARGS, and its XQWATCHER_* environment settings.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config.hpp"
#include "config_test_support.hpp"

namespace xqw::config::testing {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

class ConfigContract : public ::testing::Test {
 protected:
  void SetUp() override {
    graders_ = root_.mkdir("graders").string();
    root_.write("xqueue_servers.yaml", "default: {url: 'http://x:18040', username: u, password: p}\n");
  }

  // conf.d/q.yaml with one queue "q" whose extra lines are `fields` (YAML flow-map entries).
  LoadResult load_native(const std::string& fields, std::map<std::string, std::string> env = {}) {
    root_.write("conf.d/q.yaml", "queues:\n  q: {grader_root: '" + graders_ + "'" +
                                     (fields.empty() ? "" : ", " + fields) + "}\n");
    return load(root_.path(), std::move(env));
  }

  // conf.d/q.json with one ContainerGrader queue "q" and `kwargs` beside its grader_root.
  LoadResult load_upstream(const std::string& kwargs, std::map<std::string, std::string> env = {}) {
    root_.write("conf.d/q.json",
                R"({"q": {"SERVER_REF": "default", "HANDLERS": [{"HANDLER": )"
                R"("xqueue_watcher.containergrader.ContainerGrader", "KWARGS": {"grader_root": ")" +
                    graders_ + "\"" + (kwargs.empty() ? "" : ", " + kwargs) + "}}]}}");
    return load(root_.path(), std::move(env));
  }

  TempRoot root_;
  std::string graders_;
};

// --- the contract key and the implied rule ---

TEST_F(ConfigContract, NativeIsTheDefaultAndContractTakesEitherName) {
  auto result = load_native("");
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).contract, ContractKind::Native);
  result = load_native("contract: upstream, precreate: false");
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).contract, ContractKind::Upstream);
  EXPECT_FALSE(result.config->queues.at(0).contract_implied);
  EXPECT_TRUE(result.warnings.empty()) << all_problems(result);
  result = load_native("contract: native");
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).contract, ContractKind::Native);
}

TEST_F(ConfigContract, AnUnknownContractIsAnErrorWithASuggestion) {
  const auto result = load_native("contract: upstraem");
  const auto* error = with_key(result.errors, "queues.q.contract");
  ASSERT_NE(error, nullptr) << all_problems(result);
  EXPECT_THAT(error->reason, HasSubstr("unknown contract 'upstraem' (did you mean 'upstream'?)"));
  EXPECT_FALSE(result.config);
}

TEST_F(ConfigContract, PrecreateWrittenBesideTheUpstreamContractIsWarnedAbout) {
  const auto result = load_native("contract: upstream, precreate: started");
  ASSERT_TRUE(result.config) << all_problems(result);
  const auto* warning = with_key(result.warnings, "queues.q.precreate");
  ASSERT_NE(warning, nullptr) << all_problems(result);
  EXPECT_THAT(warning->reason, HasSubstr("no container can be prepared ahead"));
}

TEST_F(ConfigContract, AnUpstreamImageInKwargsImpliesTheUpstreamContract) {
  const auto result = load_upstream(R"("image": "registry.example.com/course-grader:2024")");
  ASSERT_TRUE(result.config) << all_problems(result);
  const auto& queue = result.config->queues.at(0);
  EXPECT_EQ(queue.image, "registry.example.com/course-grader:2024");
  EXPECT_EQ(queue.contract, ContractKind::Upstream);
  EXPECT_TRUE(queue.contract_implied);
}

TEST_F(ConfigContract, ThisProjectsPythonImageOrNoImageKeepsTheNativeContract) {
  for (const std::string image : {"xqueue-watcher/python-grader:latest", "xqueue-watcher/python-grader",
                                  "ghcr.io/example/xqueue-watcher/python-grader@sha256:abc"}) {
    const auto result = load_upstream(R"("image": ")" + image + "\"");
    ASSERT_TRUE(result.config) << all_problems(result);
    EXPECT_EQ(result.config->queues.at(0).contract, ContractKind::Native) << image;
  }
  const auto result = load_upstream("");
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).contract, ContractKind::Native);
}

TEST(PythonGraderImage, OnlyThatRepositoryWhateverTheRegistryTagOrDigest) {
  EXPECT_TRUE(is_python_grader_image("xqueue-watcher/python-grader"));
  EXPECT_TRUE(is_python_grader_image("xqueue-watcher/python-grader:1.2"));
  EXPECT_TRUE(is_python_grader_image("registry:5000/xqueue-watcher/python-grader:1.2"));
  EXPECT_TRUE(is_python_grader_image("xqueue-watcher/python-grader@sha256:0123"));
  EXPECT_FALSE(is_python_grader_image("xqueue-watcher/python-grader-fork:1"));
  EXPECT_FALSE(is_python_grader_image("myxqueue-watcher/python-grader"));
  EXPECT_FALSE(is_python_grader_image("grader-base:local"));
  EXPECT_FALSE(is_python_grader_image("registry:5000/python-grader"));
}

// --- every ContainerGrader KWARG the brief names: honoured or refused, never ignored silently ---

TEST_F(ConfigContract, KwargsLimitsImageAndHostRootAreHonoured) {
  const auto result = load_upstream(R"("image": "course:1", "backend": "docker", "cpu_limit": "500m",
      "memory_limit": "128Mi", "timeout": 7, "docker_host_grader_root": "/host/graders")");
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_TRUE(result.warnings.empty()) << all_problems(result);
  const auto& queue = result.config->queues.at(0);
  EXPECT_EQ(queue.image, "course:1");
  EXPECT_DOUBLE_EQ(queue.limits.cpus, 0.5);
  EXPECT_EQ(queue.limits.memory_bytes, 128 * MiB);
  EXPECT_EQ(queue.limits.timeout, milliseconds(7000));
  EXPECT_EQ(queue.docker_host_grader_root, "/host/graders");
}

TEST_F(ConfigContract, KwargsTheEngineCannotHonourAreWarningsOrErrors) {
  auto result =
      load_upstream(R"("backend": "kubernetes", "namespace": "grading", "digest_poll_interval": 60)");
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_NE(with_key(result.warnings, "q.HANDLERS[0].KWARGS.backend"), nullptr) << all_problems(result);
  EXPECT_NE(with_key(result.warnings, "q.HANDLERS[0].KWARGS.namespace"), nullptr) << all_problems(result);
  EXPECT_NE(with_key(result.warnings, "q.HANDLERS[0].KWARGS.digest_poll_interval"), nullptr)
      << all_problems(result);
  result = load_upstream(R"("backend": "podman", "memory_limit": "512m", "docker_host_grader_root": "host")");
  EXPECT_THAT(with_key(result.errors, "q.HANDLERS[0].KWARGS.backend")->reason,
              HasSubstr("unsupported backend"));
  EXPECT_THAT(with_key(result.errors, "q.HANDLERS[0].KWARGS.memory_limit")->reason, HasSubstr("milli"));
  EXPECT_THAT(with_key(result.errors, "q.HANDLERS[0].KWARGS.docker_host_grader_root")->reason,
              HasSubstr("must be an absolute path"));
}

// --- XQWATCHER_* environment settings ---

TEST_F(ConfigContract, ManagerVariablesMapOntoTheirSettings) {
  const auto result = load_native("", {{"XQWATCHER_POLL_INTERVAL", "3"},
                                       {"XQWATCHER_LOGIN_POLL_INTERVAL", "15"},
                                       {"XQWATCHER_REQUESTS_TIMEOUT", "4"},
                                       {"XQWATCHER_FOLLOW_CLIENT_REDIRECTS", "1"},
                                       {"XQWATCHER_VERIFY_TLS", "false"},
                                       {"XQWATCHER_HTTP_BASIC_AUTH", "edx:s3:cret"}});
  ASSERT_TRUE(result.config) << all_problems(result);
  const auto& manager = result.config->manager;
  EXPECT_EQ(manager.poll_interval, milliseconds(3000));
  EXPECT_EQ(manager.login_poll_interval, milliseconds(15000));
  EXPECT_EQ(manager.requests_timeout, milliseconds(4000));
  EXPECT_TRUE(manager.follow_client_redirects);
  EXPECT_FALSE(manager.verify_tls);
  EXPECT_EQ(manager.http_basic_auth, std::make_pair(std::string("edx"), std::string("s3:cret")));
  const auto* tls = with_key(result.warnings, "XQWATCHER_VERIFY_TLS");
  ASSERT_NE(tls, nullptr) << all_problems(result);
  EXPECT_EQ(tls->file, "environment");
  EXPECT_THAT(tls->reason, HasSubstr("never do this in production"));
}

TEST_F(ConfigContract, GraderVariablesAreTheDefaultLimitsThatKwargsOverride) {
  const std::map<std::string, std::string> env = {{"XQWATCHER_GRADER_TIMEOUT", "30"},
                                                  {"XQWATCHER_GRADER_CPU_LIMIT", "250m"},
                                                  {"XQWATCHER_GRADER_MEMORY_LIMIT", "128Mi"},
                                                  {"XQWATCHER_SUBMISSION_SIZE_LIMIT", "65536"}};
  auto result = load_upstream(R"("timeout": 5)", env);
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_TRUE(result.warnings.empty()) << all_problems(result);
  const auto& limits = result.config->queues.at(0).limits;
  EXPECT_EQ(limits.timeout, milliseconds(5000)) << "KWARGS win, as upstream";
  EXPECT_DOUBLE_EQ(limits.cpus, 0.25);
  EXPECT_EQ(limits.memory_bytes, 128 * MiB);
  EXPECT_EQ(limits.submission_bytes, 64 * KiB);
  EXPECT_EQ(result.config->manager.default_limits.timeout, milliseconds(30000));
}

TEST_F(ConfigContract, TheFilesWinOverTheEnvironmentAndSaySo) {
  root_.write("xqwatcher.yaml", "poll_interval: 2s\ndefaults:\n  limits:\n    timeout: 10s\n");
  const auto result = load_native("", {{"XQWATCHER_POLL_INTERVAL", "3"},
                                       {"XQWATCHER_GRADER_TIMEOUT", "30"},
                                       {"XQWATCHER_REQUESTS_TIMEOUT", "4"}});
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->manager.poll_interval, milliseconds(2000));
  EXPECT_EQ(result.config->queues.at(0).limits.timeout, milliseconds(10000));
  EXPECT_EQ(result.config->manager.requests_timeout, milliseconds(4000)) << "not in the file: the variable";
  const auto* poll = with_key(result.warnings, "XQWATCHER_POLL_INTERVAL");
  ASSERT_NE(poll, nullptr) << all_problems(result);
  EXPECT_THAT(poll->reason, HasSubstr("ignored: xqwatcher.yaml sets poll_interval"));
  const auto* timeout = with_key(result.warnings, "XQWATCHER_GRADER_TIMEOUT");
  ASSERT_NE(timeout, nullptr) << all_problems(result);
  EXPECT_THAT(timeout->reason, HasSubstr("xqwatcher.yaml sets defaults.limits.timeout"));
}

TEST_F(ConfigContract, TheUpstreamManagerFileWinsToo) {
  root_.write("xqwatcher.json", R"({"POLL_INTERVAL": 2})");
  const auto result = load_native("", {{"XQWATCHER_POLL_INTERVAL", "3"}, {"XQWATCHER_GRADER_TIMEOUT", "30"}});
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->manager.poll_interval, milliseconds(2000));
  EXPECT_THAT(with_key(result.warnings, "XQWATCHER_POLL_INTERVAL")->reason,
              HasSubstr("xqwatcher.json sets POLL_INTERVAL"));
  EXPECT_EQ(result.config->queues.at(0).limits.timeout, milliseconds(30000))
      << "xqwatcher.json has no limits";
}

TEST_F(ConfigContract, BadValuesAreErrorsNamingTheVariable) {
  root_.write("xqwatcher.yaml", "bounds:\n  timeout: 1m\n");
  const auto result = load_native("", {{"XQWATCHER_POLL_INTERVAL", "soon"},
                                       {"XQWATCHER_VERIFY_TLS", "maybe"},
                                       {"XQWATCHER_GRADER_TIMEOUT", "300"},
                                       {"XQWATCHER_HTTP_BASIC_AUTH", "nopassword"},
                                       {"XQWATCHER_GRADER_BACKEND", "podman"},
                                       {"XQWATCHER_DOCKER_HOST_GRADER_ROOT", "relative/path"}});
  EXPECT_FALSE(result.config);
  for (const auto* variable :
       {"XQWATCHER_POLL_INTERVAL", "XQWATCHER_VERIFY_TLS", "XQWATCHER_GRADER_TIMEOUT",
        "XQWATCHER_HTTP_BASIC_AUTH", "XQWATCHER_GRADER_BACKEND", "XQWATCHER_DOCKER_HOST_GRADER_ROOT"}) {
    const auto* error = with_key(result.errors, variable);
    ASSERT_NE(error, nullptr) << variable << "\n" << all_problems(result);
    EXPECT_EQ(error->file, "environment");
  }
  EXPECT_THAT(with_key(result.errors, "XQWATCHER_GRADER_TIMEOUT")->reason,
              HasSubstr("above the operator's bound of 1m"));
  EXPECT_THAT(with_key(result.errors, "XQWATCHER_VERIFY_TLS")->reason, HasSubstr("got 'maybe'"));
}

TEST_F(ConfigContract, VariablesWithoutAnEquivalentAreWarnedAboutWithWhatToDoInstead) {
  const auto result = load_native("", {{"XQWATCHER_LOG_LEVEL", "DEBUG"},
                                       {"XQWATCHER_POLL_TIME", "10"},
                                       {"XQWATCHER_GRADER_NAMESPACE", "grading"},
                                       {"XQWATCHER_GRADER_BACKEND", "kubernetes"},
                                       {"XQWATCHER_POLL_INTERVALL", "3"},
                                       {"XQWATCHER_FROBNICATE", "1"},
                                       {"XQWATCHER_REQUESTS_TIMEOUT", ""}});
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.warnings.size(), 7u) << all_problems(result);
  EXPECT_THAT(with_key(result.warnings, "XQWATCHER_LOG_LEVEL")->reason, HasSubstr("--log-level debug"));
  EXPECT_THAT(with_key(result.warnings, "XQWATCHER_POLL_TIME")->reason, HasSubstr("no effect"));
  EXPECT_THAT(with_key(result.warnings, "XQWATCHER_GRADER_NAMESPACE")->reason, HasSubstr("ignored"));
  EXPECT_THAT(with_key(result.warnings, "XQWATCHER_GRADER_BACKEND")->reason, HasSubstr("Docker engine"));
  EXPECT_THAT(with_key(result.warnings, "XQWATCHER_POLL_INTERVALL")->reason,
              HasSubstr("(did you mean XQWATCHER_POLL_INTERVAL?)"));
  EXPECT_THAT(with_key(result.warnings, "XQWATCHER_FROBNICATE")->reason,
              HasSubstr("unknown XQWATCHER_ variable: not a setting of this watcher"));
  EXPECT_THAT(with_key(result.warnings, "XQWATCHER_FROBNICATE")->reason, HasSubstr("xqwatcher.yaml"));
  EXPECT_THAT(with_key(result.warnings, "XQWATCHER_REQUESTS_TIMEOUT")->reason, HasSubstr("empty"));
  EXPECT_EQ(result.config->manager.requests_timeout, ManagerConfig{}.requests_timeout);
}

TEST_F(ConfigContract, TheHostGraderRootVariableIsEveryQueuesUnlessItSetsItsOwn) {
  const std::map<std::string, std::string> env = {{"XQWATCHER_DOCKER_HOST_GRADER_ROOT", "/host/graders"}};
  auto result = load_upstream("", env);
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).docker_host_grader_root, "/host/graders");
  result = load_upstream(R"("docker_host_grader_root": "/elsewhere")", env);
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).docker_host_grader_root, "/elsewhere");

  const auto other = root_.mkdir("other").string();
  root_.write("conf.d/r.yaml", "queues:\n  r: {grader_root: '" + other + "'}\n");
  result = load_upstream("", env);
  const auto* error = with_key(result.errors, "XQWATCHER_DOCKER_HOST_GRADER_ROOT");
  ASSERT_NE(error, nullptr) << all_problems(result);
  EXPECT_THAT(error->reason, HasSubstr("set docker_host_grader_root on each queue instead"));
}

}  // namespace
}  // namespace xqw::config::testing
