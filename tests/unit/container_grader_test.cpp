// ContainerGrader against a scripted engine: the verdict when the engine misbehaves after the watcher
// has stopped a run itself, and that the job directory goes whatever happens.
#include "grading/container_grader.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "docker/docker.hpp"

namespace xqw::grading {
namespace {

namespace fs = std::filesystem;

// Answers each engine call with the handler registered for its method and path (after the API version).
class ScriptedEngine final : public http::Transport {
 public:
  using Handler = std::function<http::Response(const http::Request&)>;
  void on(std::string method, std::string path_prefix, Handler handler) {
    handlers_.push_back({std::move(method), std::move(path_prefix), std::move(handler)});
  }
  http::Response perform(const http::Request& request) override {
    calls.push_back(request.method + " " + path_of(request));
    bodies.push_back(request.body);
    for (const auto& [method, prefix, handler] : handlers_) {
      if (method == request.method && path_of(request).starts_with(prefix)) return handler(request);
    }
    ADD_FAILURE() << "unscripted engine call: " << calls.back();
    throw http::TransportError("no script", false);
  }
  http::Response perform_streaming(const http::Request& request, const http::BodySink& sink) override {
    auto response = perform(request);
    sink(response.body);
    response.body.clear();
    return response;
  }
  std::optional<std::string> cookie(std::string_view) const override { return std::nullopt; }
  void clear_cookies() override {}

  int count(const std::string& call_prefix) const {
    int n = 0;
    for (const auto& call : calls) n += call.starts_with(call_prefix);
    return n;
  }
  std::vector<std::string> calls;
  std::vector<std::string> bodies;  // of each call, in order

 private:
  static std::string path_of(const http::Request& request) {
    const auto at = request.url.find(docker::kApiVersion);
    return request.url.substr(at + docker::kApiVersion.size());
  }
  struct Route {
    std::string method, prefix;
    Handler handler;
  };
  std::vector<Route> handlers_;
};

http::Response reply(long status, std::string body = "") {
  return {.status = status, .body = std::move(body)};
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "xqw-grader-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

class ContainerGraderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(root_.path() / "course" / "ex1");
    std::ofstream(root_.path() / "course" / "ex1" / "grader.py") << "# grader\n";
    engine_->on("POST", "/containers/create", [](const auto&) { return reply(201, R"({"Id":"c1"})"); });
    engine_->on("POST", "/containers/c1/start", [](const auto&) { return reply(204); });
  }

  GradeReport grade() {
    QueueGrading queue{.queue = "q",
                       .watcher_id = "w",
                       .image = "img",
                       .grader_root = root_.path() / "course",
                       .work_dir = root_.path() / "jobs"};
    queue.limits.timeout = std::chrono::milliseconds(50);
    ContainerGrader grader(client_, queue, ImageContract{});
    GradeJob job{.queue = "q",
                 .submission_id = "7",
                 .grader = "ex1/grader.py",
                 .grader_payload = {{"grader", "ex1/grader.py"}},
                 .student_response = "print(1)\n"};
    return grader.grade(job);
  }

  bool job_directories_left() const {
    return fs::exists(root_.path() / "jobs") && !fs::is_empty(root_.path() / "jobs");
  }

  TempDir root_;
  std::unique_ptr<ScriptedEngine> owned_engine_ = std::make_unique<ScriptedEngine>();
  ScriptedEngine* engine_ = owned_engine_.get();  // the client below owns it
  docker::Client client_{std::move(owned_engine_), "/fake.sock"};
};

TEST_F(ContainerGraderTest, DeadlineStaysATimeoutWhenTheEngineCannotKillOrRemoveTheContainer) {
  engine_->on("GET", "/containers/c1/logs",
              [](const auto&) -> http::Response { throw http::TransportError("Operation timed out", true); });
  const auto zombie = [](const auto&) {
    return reply(500, R"({"message":"Cannot kill container: c1: PID 42 is zombie and can not be killed"})");
  };
  engine_->on("POST", "/containers/c1/kill", zombie);
  engine_->on("POST", "/containers/c1/wait",
              [](const auto&) -> http::Response { throw http::TransportError("Operation timed out", true); });
  engine_->on("DELETE", "/containers/c1", [](const auto&) { return reply(500, R"({"message":"busy"})"); });

  const auto report = grade();
  EXPECT_EQ(report.outcome.verdict, Verdict::Timeout);
  EXPECT_NE(report.html.find("did not finish within 50 ms"), std::string::npos) << report.html;
  EXPECT_GE(engine_->count("DELETE /containers/c1"), 2) << "the guard retries the removal";
  EXPECT_FALSE(job_directories_left());
}

TEST_F(ContainerGraderTest, EngineErrorsOnANormalRunAreStillInfrastructure) {
  engine_->on("GET", "/containers/c1/logs", [](const auto&) { return reply(200); });
  engine_->on("POST", "/containers/c1/wait", [](const auto&) { return reply(500, R"({"message":"boom"})"); });
  engine_->on("DELETE", "/containers/c1", [](const auto&) { return reply(204); });
  EXPECT_THROW(grade(), GradingUnavailable);
  EXPECT_EQ(engine_->count("DELETE /containers/c1"), 1);
  EXPECT_FALSE(job_directories_left());
}

TEST_F(ContainerGraderTest, AFailedRemovalDoesNotCostTheVerdict) {
  const std::string result = R"({"correct":true,"score":1,"msg":"<p>ok</p>"})";
  engine_->on("GET", "/containers/c1/logs", [&](const auto&) {
    std::string frame = {1, 0, 0, 0, 0, 0, 0, static_cast<char>(result.size())};
    return reply(200, frame + result);
  });
  engine_->on("POST", "/containers/c1/wait", [](const auto&) { return reply(200, R"({"StatusCode":0})"); });
  engine_->on("GET", "/containers/c1/json", [](const auto&) {
    return reply(200, R"({"State":{"Status":"exited","OOMKilled":false,"ExitCode":0}})");
  });
  engine_->on("DELETE", "/containers/c1", [](const auto&) { return reply(500, R"({"message":"busy"})"); });
  const auto report = grade();
  EXPECT_EQ(report.outcome.verdict, Verdict::Graded);
  EXPECT_EQ(report.outcome.result.score, 1.0);
  EXPECT_FALSE(job_directories_left());
}

// --- the Python watcher's ContainerGrader contract ---

class UpstreamGraderTest : public ContainerGraderTest {
 protected:
  GradeReport grade_upstream(std::string response) {
    QueueGrading queue{.queue = "q",
                       .watcher_id = "w",
                       .image = "img",
                       .grader_root = root_.path() / "course",
                       .work_dir = root_.path() / "jobs",
                       .precreate = config::Precreate::Started,
                       .contract = config::ContractKind::Upstream};
    ContainerGrader grader(client_, queue, upstream_contract());
    EXPECT_EQ(grader.precreate_mode(), config::Precreate::Off) << "the submission is fixed at create time";
    GradeJob job{.queue = "q",
                 .submission_id = "8",
                 .grader = "ex1/grader.py",
                 .grader_payload = {{"grader", "ex1/grader.py"}},
                 .student_response = std::move(response),
                 .seed = 99};
    return grader.grade(job);
  }
};

TEST_F(UpstreamGraderTest, CreatesPerTheContractAndReadsTheResultFromTheLastLine) {
  const std::string output =
      "loading /graders/grader.py\n{\"correct\": true, \"score\": 1, \"errors\": [], \"tests\": []}\n";
  engine_->on("GET", "/containers/c1/logs", [&](const auto&) {
    std::string frame = {1, 0, 0, 0, 0, 0, 0, static_cast<char>(output.size())};
    return reply(200, frame + output);
  });
  engine_->on("POST", "/containers/c1/wait", [](const auto&) { return reply(200, R"({"StatusCode":0})"); });
  engine_->on("GET", "/containers/c1/json", [](const auto&) {
    return reply(200, R"({"State":{"Status":"exited","OOMKilled":false,"ExitCode":0}})");
  });
  engine_->on("DELETE", "/containers/c1", [](const auto&) { return reply(204); });

  const auto report = grade_upstream("print(1)\n");
  EXPECT_EQ(report.outcome.verdict, Verdict::Graded) << report.outcome.staff_reason;
  EXPECT_EQ(report.outcome.result.score, 1.0);
  EXPECT_EQ(report.staff_stdout, "loading /graders/grader.py\n");
  ASSERT_EQ(engine_->calls.at(0), "POST /containers/create");
  const auto created = nlohmann::json::parse(engine_->bodies.at(0));
  EXPECT_EQ(created["Cmd"], nlohmann::json::array({"/graders/grader.py", "99"}));
  EXPECT_EQ(created["WorkingDir"], "/grader");
  EXPECT_EQ(created["Env"][0], "SUBMISSION_CODE=print(1)\n");
  EXPECT_EQ(created["HostConfig"]["Mounts"].size(), 1u);
  EXPECT_EQ(created["HostConfig"]["Mounts"][0]["Target"], "/graders");
  EXPECT_EQ(engine_->count("DELETE /containers/c1"), 1);
  EXPECT_FALSE(fs::exists(root_.path() / "jobs")) << "no job directory under this contract";
}

TEST_F(UpstreamGraderTest, ASubmissionTooLargeForTheVariableCreatesNothing) {
  const auto report = grade_upstream(std::string(kMaxEnvSubmissionBytes + 1, 'x'));
  EXPECT_EQ(report.outcome.verdict, Verdict::SubmissionTooLarge);
  EXPECT_TRUE(engine_->calls.empty()) << "the engine was asked: " << engine_->calls.front();
  EXPECT_NE(report.html.find("larger than the 127.98 KiB"), std::string::npos) << report.html;
}

}  // namespace
}  // namespace xqw::grading
