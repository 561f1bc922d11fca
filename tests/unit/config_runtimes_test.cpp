// check-config's runtime check: a queue's limits.runtime must be one the Docker engine offers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "config/config.hpp"
#include "config_test_support.hpp"

namespace xqw::config::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Config two_queues(const std::string& runtime) {
  Config config;
  config.manager.docker_socket = "/run/engine.sock";
  QueueConfig plain;
  plain.name = "plain";
  plain.source = "conf.d/plain.yaml";
  QueueConfig sandboxed;
  sandboxed.name = "sandboxed";
  sandboxed.source = "conf.d/sandboxed.yaml";
  sandboxed.limits.runtime = runtime;
  config.queues = {plain, sandboxed};
  return config;
}

TEST(UnknownRuntimes, AcceptsOfferedRuntimesAndTheDefault) {
  EXPECT_TRUE(unknown_runtimes(two_queues("runsc"), {"runc", "runsc"}).empty());
  EXPECT_TRUE(unknown_runtimes(two_queues(""), {"runc"}).empty());
}

TEST(UnknownRuntimes, NamesTheQueueTheRuntimeAndWhatTheEngineOffers) {
  const auto problems = unknown_runtimes(two_queues("kata"), {"runc", "runsc"});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].file, "conf.d/sandboxed.yaml");
  EXPECT_EQ(problems[0].key, "queues.sandboxed.limits.runtime");
  EXPECT_THAT(problems[0].reason, HasSubstr("runtime 'kata' is not registered with the Docker engine at "
                                            "/run/engine.sock (it offers: runc, runsc)"));
}

class CheckConfigRuntimes : public ::testing::Test {
 protected:
  void SetUp() override {
    root_.mkdir("course");
    root_.write("xqueue_servers.yaml", "default: {url: 'http://xq:18040', username: lms, password: pw}\n");
  }

  int check(const std::string& limits, EngineRuntimes engine) {
    root_.write("conf.d/q.yaml", "queues:\n  q:\n    grader_root: ../course\n    limits: " + limits + "\n");
    LoadOptions options;
    options.env = env_of({});
    options.runtimes = [this, engine](const std::string& socket) {
      ++asked_;
      asked_socket_ = socket;
      return engine;
    };
    return check_config(root_.path(), out_, options);
  }

  TempRoot root_;
  std::ostringstream out_;
  int asked_ = 0;
  std::string asked_socket_;
};

TEST_F(CheckConfigRuntimes, UnknownRuntimeIsAnErrorWhenTheEngineAnswers) {
  EXPECT_EQ(check("{runtime: no-such-runtime}", EngineRuntimes(std::vector<std::string>{"runc", "runsc"})),
            1);
  EXPECT_THAT(out_.str(), HasSubstr("queues.q.limits.runtime: runtime 'no-such-runtime' is not registered"));
  EXPECT_THAT(out_.str(), HasSubstr("invalid configuration, 1 error"));
  EXPECT_EQ(asked_socket_, "/var/run/docker.sock");
}

TEST_F(CheckConfigRuntimes, OfferedRuntimeIsFine) {
  EXPECT_EQ(check("{runtime: runsc}", EngineRuntimes(std::vector<std::string>{"runc", "runsc"})), 0)
      << out_.str();
  EXPECT_THAT(out_.str(), HasSubstr("configuration OK"));
}

TEST_F(CheckConfigRuntimes, SilentEngineGivesAWarningNotAnError) {
  EXPECT_EQ(check("{runtime: runsc}", std::unexpected(RuntimesUnknown{"connection refused"})), 0)
      << out_.str();
  EXPECT_THAT(out_.str(), HasSubstr("warning: /var/run/docker.sock: runtimes not checked: the Docker engine "
                                    "does not answer (connection refused)"));
}

TEST_F(CheckConfigRuntimes, EngineIsNotAskedWhenNoQueueNamesARuntime) {
  EXPECT_EQ(check("{memory: 128Mi}", std::unexpected(RuntimesUnknown{"should not be asked"})), 0)
      << out_.str();
  EXPECT_EQ(asked_, 0);
  EXPECT_THAT(out_.str(), Not(HasSubstr("runtimes not checked")));
}

}  // namespace
}  // namespace xqw::config::testing
