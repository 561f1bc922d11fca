// The native YAML form: the fixture root, secrets, limits and bounds, and the repository's demo config.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "config/config.hpp"
#include "config_test_support.hpp"

namespace xqw::config::testing {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

const std::map<std::string, std::string> kFixtureEnv = {{"XQUEUE_PASSWORD", "from-env"},
                                                        {"BASIC_AUTH_PASSWORD", "basic-secret"}};

TEST(ConfigNative, FixtureRootLoadsEveryManagerKey) {
  const auto result = load(fixture("native"), kFixtureEnv);
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_TRUE(result.warnings.empty()) << all_problems(result);
  const auto& manager = result.config->manager;
  EXPECT_EQ(manager.poll_interval, milliseconds(2000));
  EXPECT_EQ(manager.login_poll_interval, milliseconds(10000));
  EXPECT_EQ(manager.requests_timeout, milliseconds(1500));
  EXPECT_TRUE(manager.follow_client_redirects);
  EXPECT_EQ(manager.http_basic_auth, std::make_pair(std::string("edx"), std::string("basic-secret")));
  EXPECT_EQ(manager.docker_socket, "/run/test-docker.sock");
  // Relative paths resolve against the directory of the file that names them.
  EXPECT_EQ(manager.work_dir,
            (std::filesystem::absolute(fixture("native")) / "state/jobs").lexically_normal());
  EXPECT_EQ(manager.journal_dir, "/var/tmp/xqw-journal");
  EXPECT_EQ(manager.docker_host_work_dir, "/srv/xqw/jobs");
  EXPECT_EQ(manager.shutdown_grace, milliseconds(45000));
  EXPECT_EQ(manager.metrics_port, 0);
  EXPECT_EQ(manager.default_image, "registry.example.com/course-base:1");
  EXPECT_EQ(manager.default_limits.memory_bytes, 128 * MiB);
  EXPECT_EQ(manager.default_limits.timeout, milliseconds(10000));
  EXPECT_EQ(manager.bounds.memory_bytes, 1 * GiB);
  EXPECT_EQ(manager.bounds.cpus, 2.0);
  EXPECT_EQ(manager.bounds.timeout, milliseconds(60000));
  EXPECT_TRUE(manager.bounds.network_allowed);
  EXPECT_EQ(manager.bounds.allowed_runtimes, (std::vector<std::string>{"runc", "runsc"}));
  EXPECT_FALSE(manager.bounds.pids.has_value());
}

TEST(ConfigNative, FixtureRootLoadsEveryQueueKey) {
  const auto result = load(fixture("native"), kFixtureEnv);
  ASSERT_TRUE(result.config) << all_problems(result);
  ASSERT_EQ(result.config->queues.size(), 2u);

  const auto& demo = result.config->queues[0];
  EXPECT_EQ(demo.name, "demo-course");
  EXPECT_THAT(demo.source, HasSubstr("conf.d/10-demo.yaml"));
  EXPECT_EQ(demo.server.name, "default");                // no server named: "default"
  EXPECT_EQ(demo.server.url, "http://127.0.0.1:18040");  // trailing slash dropped
  EXPECT_EQ(demo.server.username, "lms");
  EXPECT_EQ(demo.server.password, "from-env");
  EXPECT_EQ(demo.connections, 2);
  EXPECT_EQ(demo.grader_root, std::filesystem::canonical(fixture("native/graders/demo")));
  EXPECT_EQ(demo.docker_host_grader_root, "/srv/courses/demo");
  EXPECT_EQ(demo.image, "registry.example.com/course-base:1");  // from defaults
  EXPECT_EQ(demo.pull_policy, docker::PullPolicy::Always);      // from defaults
  EXPECT_EQ(demo.limits.memory_bytes, 256 * MiB);               // written as a bare number
  EXPECT_DOUBLE_EQ(demo.limits.cpus, 0.5);
  EXPECT_EQ(demo.limits.pids, 64);
  EXPECT_EQ(demo.limits.timeout, milliseconds(20000));
  EXPECT_EQ(demo.limits.stdout_bytes, 2 * MiB);
  EXPECT_EQ(demo.limits.stderr_bytes, 64 * KiB);
  EXPECT_EQ(demo.limits.tmpfs_bytes, 32 * MiB);
  EXPECT_EQ(demo.limits.nofile, 128);
  EXPECT_EQ(demo.limits.fsize_bytes, 16 * MiB);
  EXPECT_EQ(demo.limits.submission_bytes, 512 * KiB);
  EXPECT_TRUE(demo.limits.network);
  EXPECT_EQ(demo.limits.runtime, "runsc");
  EXPECT_EQ(demo.limits.user, "1000:1000");
  EXPECT_EQ(demo.messages.at("timeout"), "Too slow: {limit}.");  // from defaults
  EXPECT_EQ(demo.messages.at("out_of_memory"), "More than {limit} of memory.");

  const auto& algebra = result.config->queues[1];
  EXPECT_EQ(algebra.name, "algebra-2024");
  EXPECT_EQ(algebra.server.name, "staging");
  EXPECT_EQ(algebra.server.password, "from-a-file");  // password_file, newline dropped
  EXPECT_EQ(algebra.image, "registry.example.com/algebra:2024");
  EXPECT_EQ(algebra.pull_policy, docker::PullPolicy::Never);
  EXPECT_DOUBLE_EQ(algebra.limits.cpus, 2.0);
  EXPECT_EQ(algebra.limits.memory_bytes, 128 * MiB);  // from defaults
  EXPECT_FALSE(algebra.limits.network);
}

TEST(ConfigNative, UnsetEnvironmentVariableIsAnErrorNamingIt) {
  const auto result = load(fixture("native"), {{"BASIC_AUTH_PASSWORD", "x"}});
  const auto* error = with_key(result.errors, "default.password");
  ASSERT_NE(error, nullptr) << all_problems(result);
  EXPECT_THAT(error->reason, HasSubstr("environment variable XQUEUE_PASSWORD is not set"));
  EXPECT_THAT(error->file, HasSubstr("xqueue_servers.yaml"));
  EXPECT_EQ(error->line, 4);
}

class ConfigNativeRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    root_.mkdir("course");
    root_.write("xqueue_servers.yaml", "default: {url: 'http://xq:18040', username: lms, password: pw}\n");
  }
  LoadResult load_queue(const std::string& queue_body, std::map<std::string, std::string> env = {}) {
    root_.write("conf.d/q.yaml", "queues:\n  q:\n    grader_root: ../course\n" + queue_body);
    return load(root_.path(), std::move(env));
  }
  TempRoot root_;
};

TEST_F(ConfigNativeRoot, PasswordFallbackSyntaxAndLiteralDollar) {
  root_.write("xqueue_servers.yaml",
              "default: {url: 'http://xq:18040', username: '$${not-a-var}', password: '${PW:-demo}'}\n");
  auto result = load_queue("");
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).server.password, "demo");
  EXPECT_EQ(result.config->queues.at(0).server.username, "${not-a-var}");
  result = load_queue("", {{"PW", "real"}});
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).server.password, "real");
}

TEST_F(ConfigNativeRoot, SecretFileProblemsNameTheFile) {
  root_.write("xqueue_servers.yaml",
              "default: {url: 'http://xq:18040', username: lms, password_file: nope.txt}\n");
  auto result = load_queue("");
  const auto* error = with_key(result.errors, "default.password_file");
  ASSERT_NE(error, nullptr) << all_problems(result);
  EXPECT_THAT(error->reason, HasSubstr("cannot read " + (root_.path() / "nope.txt").string()));

  root_.write("xqueue_servers.yaml",
              "default: {url: 'http://xq:18040', username: lms, password: a, password_file: b}\n");
  result = load_queue("");
  error = with_key(result.errors, "default.password_file");
  ASSERT_NE(error, nullptr) << all_problems(result);
  EXPECT_THAT(error->reason, HasSubstr("set password or password_file, not both"));
}

TEST_F(ConfigNativeRoot, MissingCredentialsAreErrors) {
  root_.write("xqueue_servers.yaml", "default: {url: 'http://xq:18040'}\n");
  const auto result = load_queue("");
  const auto* username = with_key(result.errors, "default.username");
  const auto* password = with_key(result.errors, "default.password");
  ASSERT_NE(username, nullptr) << all_problems(result);
  ASSERT_NE(password, nullptr) << all_problems(result);
  EXPECT_THAT(password->reason, HasSubstr("missing credentials"));
}

TEST_F(ConfigNativeRoot, InlineServerNeedsNoServersFile) {
  std::filesystem::remove(root_.path() / "xqueue_servers.yaml");
  const auto result = load_queue(
      "    server: {url: 'https://xq.example.com', username: u, password: '${P}'}\n", {{"P", "p"}});
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).server.url, "https://xq.example.com");
  EXPECT_EQ(result.config->queues.at(0).server.password, "p");
}

TEST_F(ConfigNativeRoot, LimitsAcceptNumbersOrStrings) {
  const auto result =
      load_queue("    limits: {memory: 134217728, cpus: 0.25, timeout: 5, pids: '32', tmpfs: \"16Mi\"}\n");
  ASSERT_TRUE(result.config) << all_problems(result);
  const auto& limits = result.config->queues.at(0).limits;
  EXPECT_EQ(limits.memory_bytes, 128 * MiB);
  EXPECT_DOUBLE_EQ(limits.cpus, 0.25);
  EXPECT_EQ(limits.timeout, milliseconds(5000));
  EXPECT_EQ(limits.pids, 32);
  EXPECT_EQ(limits.tmpfs_bytes, 16 * MiB);
}

TEST_F(ConfigNativeRoot, PrecreateIsStartedByDefaultAndTakesEachSpelling) {
  auto result = load_queue("");
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).precreate, Precreate::Started);
  const std::vector<std::pair<std::string, Precreate>> spellings = {
      {"true", Precreate::Started},    {"started", Precreate::Started}, {"'started'", Precreate::Started},
      {"created", Precreate::Created}, {"Created", Precreate::Created}, {"false", Precreate::Off},
      {"off", Precreate::Off}};
  for (const auto& [text, expected] : spellings) {
    result = load_queue("    precreate: " + text + "\n");
    ASSERT_TRUE(result.config) << text << ": " << all_problems(result);
    EXPECT_EQ(result.config->queues.at(0).precreate, expected) << text;
  }
  for (const std::string bad : {"sometimes", "1", "[started]"}) {
    result = load_queue("    precreate: " + bad + "\n");
    const auto* error = with_key(result.errors, "queues.q.precreate");
    ASSERT_NE(error, nullptr) << bad << ": " << all_problems(result);
    EXPECT_THAT(error->reason, HasSubstr("expected started (or true), created, or false (or off)")) << bad;
  }
  EXPECT_EQ(precreate_name(Precreate::Created), "created");
}

TEST_F(ConfigNativeRoot, WithoutAnyManagerFileTheStrictDefaultsApply) {
  const auto result = load_queue("");
  ASSERT_TRUE(result.config) << all_problems(result);
  const auto& queue = result.config->queues.at(0);
  EXPECT_EQ(queue.limits, Limits{});
  EXPECT_EQ(queue.image, std::string(kDefaultImage));
  EXPECT_EQ(queue.pull_policy, docker::PullPolicy::IfNotPresent);
  EXPECT_EQ(queue.connections, 1);
  EXPECT_FALSE(queue.limits.network);
}

TEST_F(ConfigNativeRoot, EveryLimitIsHeldToItsBound) {
  root_.write(
      "xqwatcher.yaml",
      "bounds: {memory: 512Mi, cpus: 1, pids: 200, timeout: 30s, stdout: 2Mi, stderr: 1Mi, tmpfs: 128Mi,\n"
      "         nofile: 300, fsize: 100Mi, submission: 2Mi, runtimes: [runc]}\n");
  const auto result = load_queue(
      "    limits: {memory: 1Gi, cpus: 1500m, pids: 201, timeout: 31s, stdout: 3Mi, stderr: 2Mi, tmpfs: "
      "256Mi,\n"
      "             nofile: 301, fsize: 101Mi, submission: 3Mi, network: true, runtime: kata}\n");
  const std::map<std::string, std::string> expected = {
      {"memory", "1 GiB is above the operator's bound of 512 MiB (bounds.memory in xqwatcher.yaml)"},
      {"cpus", "1.5 CPUs is above the operator's bound of 1 CPUs"},
      {"pids", "201 is above the operator's bound of 200"},
      {"timeout", "31s is above the operator's bound of 30s"},
      {"stdout", "3 MiB is above the operator's bound of 2 MiB"},
      {"stderr", "2 MiB is above the operator's bound of 1 MiB"},
      {"tmpfs", "256 MiB is above the operator's bound of 128 MiB"},
      {"nofile", "301 is above the operator's bound of 300"},
      {"fsize", "101 MiB is above the operator's bound of 100 MiB"},
      {"submission", "3 MiB is above the operator's bound of 2 MiB"},
      {"network", "network access is not allowed by the operator"},
      {"runtime", "runtime 'kata' is not one the operator allows (bounds.runtimes: runc)"},
  };
  for (const auto& [field, reason] : expected) {
    const auto* error = with_key(result.errors, "queues.q.limits." + field);
    ASSERT_NE(error, nullptr) << field << "\n" << all_problems(result);
    EXPECT_THAT(error->reason, HasSubstr(reason)) << field;
  }
  EXPECT_EQ(result.errors.size(), expected.size()) << all_problems(result);
}

TEST_F(ConfigNativeRoot, LimitsAtTheirBoundsAreAccepted) {
  root_.write("xqwatcher.yaml",
              "bounds: {memory: 512Mi, cpus: 1, timeout: 30s, network: true, runtimes: [runsc]}\n");
  const auto result =
      load_queue("    limits: {memory: 512Mi, cpus: 1000m, timeout: 30s, network: true, runtime: runsc}\n");
  ASSERT_TRUE(result.config) << all_problems(result);
}

TEST_F(ConfigNativeRoot, DefaultsAreHeldToTheBoundsToo) {
  root_.write("xqwatcher.yaml",
              "bounds: {memory: 128Mi, timeout: 10s}\ndefaults: {limits: {timeout: 15s}}\n");
  const auto result = load_queue("");
  const auto* memory = with_key(result.errors, "defaults.limits.memory");  // the built-in 256Mi
  ASSERT_NE(memory, nullptr) << all_problems(result);
  EXPECT_THAT(memory->reason, HasSubstr("256 MiB is above the operator's bound of 128 MiB"));
  const auto* timeout = with_key(result.errors, "defaults.limits.timeout");
  ASSERT_NE(timeout, nullptr) << all_problems(result);
  EXPECT_THAT(timeout->reason, HasSubstr("15s is above the operator's bound of 10s"));
}

TEST_F(ConfigNativeRoot, RelativeGraderRootResolvesAgainstTheQueueFile) {
  root_.mkdir("conf.d/local-course");
  root_.write("conf.d/q.yaml", "queues:\n  q: {grader_root: local-course}\n");
  const auto result = load(root_.path());
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).grader_root,
            std::filesystem::canonical(root_.path() / "conf.d/local-course"));
}

TEST_F(ConfigNativeRoot, DockerHostSocketIsUsedUnlessTheFileNamesOne) {
  auto result = load_queue("", {{"DOCKER_HOST", "unix:///run/user/1000/docker.sock"}});
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->manager.docker_socket, "/run/user/1000/docker.sock");

  result = load_queue("", {{"DOCKER_HOST", "tcp://10.0.0.1:2375"}});
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->manager.docker_socket, "/var/run/docker.sock");
  EXPECT_NE(with_key(result.warnings, "DOCKER_HOST"), nullptr) << all_problems(result);

  root_.write("xqwatcher.yaml", "docker_socket: /srv/docker.sock\n");
  result = load_queue("", {{"DOCKER_HOST", "unix:///run/user/1000/docker.sock"}});
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->manager.docker_socket, "/srv/docker.sock");
}

TEST_F(ConfigNativeRoot, PullPolicyIsParsedOnceIntoItsTypedValue) {
  for (const auto& [text, policy] : {std::pair{"never", docker::PullPolicy::Never},
                                     std::pair{"if-not-present", docker::PullPolicy::IfNotPresent},
                                     std::pair{"always", docker::PullPolicy::Always}}) {
    SCOPED_TRACE(text);
    auto result = load_queue(std::string("    pull_policy: ") + text + "\n");
    ASSERT_TRUE(result.config) << all_problems(result);
    EXPECT_EQ(result.config->queues.at(0).pull_policy, policy);
  }
  // A queue that names none takes defaults.pull_policy; one that does keeps its own.
  root_.write("xqwatcher.yaml", "defaults:\n  pull_policy: never\n");
  root_.write("conf.d/r.yaml", "queues:\n  r: {grader_root: ../course, pull_policy: always}\n");
  const auto result = load_queue("");
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->manager.default_pull_policy, docker::PullPolicy::Never);
  ASSERT_EQ(result.config->queues.size(), 2u);
  for (const auto& queue : result.config->queues) {
    EXPECT_EQ(queue.pull_policy, queue.name == "q" ? docker::PullPolicy::Never : docker::PullPolicy::Always)
        << queue.name;
  }
}

TEST_F(ConfigNativeRoot, EngineSocketIsResolvedOnceDockerSocketFirst) {
  const auto resolve = [](std::map<std::string, std::string> env, std::optional<std::string> configured) {
    return resolve_engine_socket(env_of(std::move(env)), configured);
  };
  EXPECT_EQ(resolve({}, std::nullopt).path, "/var/run/docker.sock");
  EXPECT_FALSE(resolve({}, std::nullopt).warning);
  EXPECT_EQ(resolve({{"DOCKER_HOST", ""}}, std::nullopt).path, "/var/run/docker.sock");
  EXPECT_EQ(resolve({{"DOCKER_HOST", "unix:///run/user/1000/docker.sock"}}, std::nullopt).path,
            "/run/user/1000/docker.sock");
  // docker_socket wins over DOCKER_HOST, whatever DOCKER_HOST says.
  for (const std::string host : {"unix:///run/user/1000/docker.sock", "tcp://10.0.0.1:2375"}) {
    const auto socket = resolve({{"DOCKER_HOST", host}}, "/srv/docker.sock");
    EXPECT_EQ(socket.path, "/srv/docker.sock") << host;
    EXPECT_FALSE(socket.warning) << host;
  }
  // An unsupported DOCKER_HOST is never guessed at: named, with why, and the default socket is used.
  for (const std::string host : {"tcp://10.0.0.1:2375", "ssh://me@engine", "unix://",
                                 "unix://run/docker.sock", "/var/run/docker.sock"}) {
    const auto socket = resolve({{"DOCKER_HOST", host}}, std::nullopt);
    EXPECT_EQ(socket.path, "/var/run/docker.sock") << host;
    ASSERT_TRUE(socket.warning) << host;
    EXPECT_EQ(socket.warning->key, "DOCKER_HOST");
    EXPECT_THAT(socket.warning->to_string(), HasSubstr("'" + host + "' is not supported: "));
    EXPECT_THAT(socket.warning->reason, HasSubstr("using /var/run/docker.sock"));
  }
  EXPECT_THAT(resolve({{"DOCKER_HOST", "tcp://10.0.0.1:2375"}}, std::nullopt).warning->reason,
              HasSubstr("unix socket only, not tcp://"));
}

TEST_F(ConfigNativeRoot, DockerSocketInTheFileSilencesAnUnusableDockerHost) {
  root_.write("xqwatcher.yaml", "docker_socket: unix:///srv/docker.sock\n");
  const auto result = load_queue("", {{"DOCKER_HOST", "tcp://10.0.0.1:2375"}});
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->manager.docker_socket, "/srv/docker.sock");
  EXPECT_EQ(with_key(result.warnings, "DOCKER_HOST"), nullptr) << all_problems(result);
}

TEST_F(ConfigNativeRoot, EmptyManagerFileMeansDefaults) {
  root_.write("xqwatcher.yaml", "# nothing set\n");
  const auto result = load_queue("");
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->manager.poll_interval, milliseconds(1000));
  EXPECT_EQ(result.config->manager.work_dir, "/var/lib/xqueue-watcher/jobs");
}

// --- the repository's own demo configuration (xqwatcher.yaml, xqueue_servers.yaml, conf.d/) ---

TEST(ConfigDemo, RepositoryRootConfigIsValid) {
  const std::filesystem::path repo(XQW_SOURCE_DIR);
  auto result = load(repo);
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_TRUE(result.warnings.empty()) << all_problems(result);
  const auto& queue = result.config->queues.at(0);
  EXPECT_EQ(queue.name, "demo-course");
  EXPECT_EQ(queue.server.url, "http://127.0.0.1:18040");
  EXPECT_EQ(queue.server.username, "lms");
  EXPECT_EQ(queue.server.password, "lms");  // the documented demo default
  EXPECT_EQ(queue.grader_root, std::filesystem::canonical(repo / "examples/demo-course"));

  result = load(repo, {{"XQUEUE_PASSWORD", "changed"}});
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_EQ(result.config->queues.at(0).server.password, "changed");
}

TEST(ConfigDemo, RepositoryRootConfigHasNoProblemButTheCourseItNeeds) {
  // Holds whether or not the sibling demo course is present: nothing else may be wrong.
  TempRoot root;
  const std::filesystem::path repo(XQW_SOURCE_DIR);
  for (const char* file : {"xqwatcher.yaml", "xqueue_servers.yaml", "conf.d/demo-course.yaml"}) {
    std::filesystem::create_directories((root.path() / file).parent_path());
    std::filesystem::copy_file(repo / file, root.path() / file);
  }
  root.mkdir("examples/demo-course");
  const auto result = load(root.path());
  ASSERT_TRUE(result.config) << all_problems(result);
  EXPECT_TRUE(result.warnings.empty()) << all_problems(result);
  const auto& queue = result.config->queues.at(0);
  EXPECT_EQ(queue.connections, 2);
  EXPECT_DOUBLE_EQ(queue.limits.cpus, 0.5);
  EXPECT_EQ(queue.messages.count("timeout"), 1u);
  EXPECT_EQ(result.config->manager.work_dir, "/tmp/xqueue-watcher-demo/jobs");
}

}  // namespace
}  // namespace xqw::config::testing
