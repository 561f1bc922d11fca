// The engine client against the real Docker engine started by scripts/engine (the "engine" fixture).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "engine_support.hpp"

namespace xqw::docker {
namespace {

using namespace std::chrono_literals;
using testing::kTestImage;
using testing::python_spec;
using testing::run_container;

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    try {
      client_.ping();
    } catch (const EngineError& error) {
      FAIL() << "no Docker engine answers (scripts/engine should have started one): " << error.what();
    }
    ASSERT_TRUE(client_.inspect_image(kTestImage).has_value())
        << kTestImage << " is missing: scripts/images should have bootstrapped it";
  }
  Client client_;
};

TEST_F(EngineTest, PingAndVersionReportAnApiAtLeast141) {
  const auto info = client_.version();
  EXPECT_FALSE(info.version.empty());
  ASSERT_FALSE(info.api_version.empty());
  EXPECT_GE(std::stod(info.api_version), 1.41) << info.api_version;
  EXPECT_TRUE(info.runtimes.count("runc")) << "the engine lists no runc runtime";
}

TEST_F(EngineTest, CapturesStdoutAndStderrSeparately) {
  auto run = run_container(client_, python_spec("import sys\n"
                                                "print('to stdout'); sys.stdout.flush()\n"
                                                "print('to stderr', file=sys.stderr)\n"
                                                "sys.exit(3)"));
  EXPECT_EQ(run.output.out.data, "to stdout\n");
  EXPECT_EQ(run.output.err.data, "to stderr\n");
  EXPECT_FALSE(run.output.cap_hit());
  EXPECT_FALSE(run.wait.deadline_hit);
  EXPECT_EQ(run.wait.exit_code, 3);
  EXPECT_EQ(run.state.exit_code, 3);
  EXPECT_FALSE(run.state.oom_killed);
}

TEST_F(EngineTest, ContainerPastItsDeadlineIsKilled) {
  const auto started = std::chrono::steady_clock::now();
  auto run =
      run_container(client_, python_spec("import time\nprint('begin', flush=True)\ntime.sleep(120)"), 2s);
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(run.wait.deadline_hit);
  EXPECT_EQ(run.output.out.data, "begin\n");
  EXPECT_NE(run.wait.exit_code, 0);  // 137: SIGKILL
  EXPECT_FALSE(run.state.running);
  EXPECT_LT(took, 30s) << "the deadline was not enforced";
}

TEST_F(EngineTest, MemoryLimitIsEnforcedAndOomKillReported) {
  auto spec = python_spec("data = b'x' * (512 * 1024 * 1024)\nprint(len(data))");
  spec.memory_bytes = 64 << 20;
  auto run = run_container(client_, spec);
  EXPECT_TRUE(run.state.oom_killed);
  EXPECT_EQ(run.wait.exit_code, 137);
  EXPECT_EQ(run.output.out.data, "");
}

TEST_F(EngineTest, OutputFarPastTheCapIsTruncatedAndWatcherMemoryStaysBounded) {
  const long rss_before = testing::max_rss_kib();
  // 512 MiB of output against a 64 KiB cap.
  auto run = run_container(client_,
                           python_spec("import sys\nchunk = 'y' * 65536\n"
                                       "for _ in range(8192): sys.stdout.write(chunk)\n"),
                           60s, {.stdout_bytes = 64 << 10, .stderr_bytes = 4 << 10});
  const long growth_kib = testing::max_rss_kib() - rss_before;
  EXPECT_TRUE(run.output.out.truncated);
  EXPECT_EQ(run.output.out.data.size(), 64u << 10);
  EXPECT_GT(run.output.out.total_bytes, 64u << 10);
  EXPECT_LT(run.output.out.total_bytes, 512ull << 20) << "reading did not stop at the cap";
  EXPECT_FALSE(run.state.running) << "a container over its output cap must be killed";
  EXPECT_LT(growth_kib, 16 * 1024) << "watcher memory grew by " << growth_kib << " KiB";
}

TEST_F(EngineTest, ContainerHasNoNetwork) {
  auto run = run_container(client_, python_spec("import os, socket\n"
                                                "print(sorted(os.listdir('/sys/class/net')))\n"
                                                "try:\n"
                                                "    socket.create_connection(('192.0.2.1', 80), timeout=3)\n"
                                                "    print('connected')\n"
                                                "except OSError as e:\n"
                                                "    print('failed', e.errno)\n"));
  EXPECT_EQ(run.wait.exit_code, 0) << run.output.err.data;
  EXPECT_EQ(run.output.out.data, "['lo']\nfailed 101\n");  // ENETUNREACH
}

TEST_F(EngineTest, RootFileSystemAndBindMountsAreReadOnly) {
  const auto dir = std::filesystem::temp_directory_path() / ("xqw-ro-" + testing::unique_suffix());
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "answer.py") << "secret = 42\n";
  // World-writable on the host, so only the read-only mount can refuse the writes.
  std::filesystem::permissions(dir, std::filesystem::perms::all);
  std::filesystem::permissions(dir / "answer.py", std::filesystem::perms::all);
  auto spec = python_spec(
      "import errno\n"
      "for path in ['/etc/evil', '/grader/answer.py', '/grader/new', '/tmp/ok']:\n"
      "    try:\n"
      "        open(path, 'a').write('x')\n"
      "        print(path, 'written')\n"
      "    except OSError as e:\n"
      "        print(path, errno.errorcode[e.errno])\n"
      "print(open('/grader/answer.py').read().strip())\n");
  spec.mounts = {{.source = dir.string(), .target = "/grader", .read_only = true}};
  auto run = run_container(client_, spec);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(run.output.out.data,
            "/etc/evil EROFS\n/grader/answer.py EROFS\n/grader/new EROFS\n/tmp/ok written\nsecret = 42\n")
      << run.output.err.data;
}

TEST_F(EngineTest, RunsAsTheRequestedUserWithNoCapabilities) {
  auto run = run_container(
      client_,
      python_spec("import os\n"
                  "print(os.getuid(), os.getgid())\n"
                  "status = open('/proc/self/status').read().split('\\n')\n"
                  "print([l.split()[1] for l in status if l.startswith(('CapEff', 'NoNewPrivs'))])\n"));
  EXPECT_EQ(run.output.out.data, "65534 65534\n['0000000000000000', '1']\n") << run.output.err.data;
}

TEST_F(EngineTest, PidsLimitStopsAForkBomb) {
  auto spec = python_spec(
      "import os, time\n"
      "count = 0\n"
      "try:\n"
      "    while True:\n"
      "        if os.fork() == 0:\n"
      "            time.sleep(30); os._exit(0)\n"
      "        count += 1\n"
      "except OSError as e:\n"
      "    print('fork failed after', count >= 10, e.errno)\n");
  spec.pids_limit = 32;
  auto run = run_container(client_, spec, 20s);
  EXPECT_EQ(run.output.out.data, "fork failed after True 11\n") << run.output.err.data;  // EAGAIN
}

TEST_F(EngineTest, UlimitsAreApplied) {
  auto spec = python_spec(
      "import resource\n"
      "print(resource.getrlimit(resource.RLIMIT_NOFILE), resource.getrlimit(resource.RLIMIT_FSIZE))\n");
  spec.ulimits = {{"nofile", 64, 64}, {"fsize", 1 << 20, 1 << 20}};
  auto run = run_container(client_, spec);
  EXPECT_EQ(run.output.out.data, "(64, 64) (1048576, 1048576)\n") << run.output.err.data;
}

TEST_F(EngineTest, OrphansAreRemovedByLabel) {
  const std::string label = "org.openedx.xqueue-watcher.test-run=" + testing::unique_suffix();
  auto spec = python_spec("print(1)");
  spec.labels["org.openedx.xqueue-watcher.test-run"] = label.substr(label.find('=') + 1);
  const auto first = client_.create_container(spec);
  const auto second = client_.create_container(spec);
  client_.start(second);
  auto listed = client_.list_by_label(label);
  EXPECT_EQ(listed.size(), 2u);
  EXPECT_EQ(client_.remove_by_label(label), 2);
  EXPECT_TRUE(client_.list_by_label(label).empty());
  EXPECT_THROW(client_.inspect(first), ContainerGone);
}

TEST_F(EngineTest, MissingImageIsATypedErrorNamingTheImage) {
  const std::string image = "xqueue-watcher/no-such-image:" + testing::unique_suffix();
  EXPECT_FALSE(client_.inspect_image(image).has_value());
  try {
    client_.ensure_image(image, PullPolicy::Never, "");
    FAIL() << "expected ImageMissing";
  } catch (const ImageMissing& error) {
    EXPECT_EQ(error.image(), image);
    EXPECT_NE(std::string(error.what()).find(image), std::string::npos) << error.what();
  }
  // No registry is reachable here, so if-not-present fails to pull and still names the image.
  EXPECT_THROW(client_.ensure_image(image, PullPolicy::IfNotPresent, ""), ImageMissing);
  // always falls back to the engine's copy only when there is one (test_behaviours.PullPolicyAlwaysTest).
  EXPECT_THROW(client_.ensure_image(image, PullPolicy::Always, ""), ImageMissing);
  auto spec = python_spec("print(1)");
  spec.image = image;
  EXPECT_THROW(client_.create_container(spec), ImageMissing);
}

TEST_F(EngineTest, PresentImageIsNotPulledUnderIfNotPresent) {
  const auto info = client_.ensure_image(kTestImage, PullPolicy::IfNotPresent, "");
  EXPECT_FALSE(info.id.empty());
}

TEST_F(EngineTest, VanishedContainerIsContainerGone) {
  const auto id = client_.create_container(python_spec("print(1)"));
  client_.remove(id);
  EXPECT_THROW(client_.start(id), ContainerGone);
  EXPECT_NO_THROW(client_.remove(id));  // removing twice is fine
}

TEST(EngineUnreachable, MissingSocketIsATypedError) {
  Client client("/nonexistent/docker.sock");
  EXPECT_THROW(client.ping(), EngineUnreachable);
}

TEST_F(EngineTest, EngineApiErrorCarriesTheEnginesMessage) {
  auto spec = python_spec("print(1)");
  spec.runtime = "no-such-runtime";
  try {
    client_.create_container(spec);
    FAIL() << "expected EngineApiError";
  } catch (const EngineApiError& error) {
    EXPECT_GE(error.status(), 400);
    EXPECT_NE(error.engine_message().find("no-such-runtime"), std::string::npos) << error.engine_message();
  }
}

}  // namespace
}  // namespace xqw::docker
