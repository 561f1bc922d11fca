// The floor driver's pure parts: `docker run` flags equivalent to the API's create body, the job list,
// the score in a grader's stdout, the GradeJob the watcher would build for the same job, and the true
// floor's and one-interpreter reference's containers.
#include "floor/floor.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

namespace xqw::bench {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A spec with every field set, so create_body emits every HostConfig key it knows.
docker::ContainerSpec full_spec() {
  docker::ContainerSpec spec;
  spec.image = "grader:1";
  spec.cmd = {"--fast"};
  spec.entrypoint = std::vector<std::string>{"python3", "-I", "/opt/run"};
  spec.env = {"LANG=C.UTF-8"};
  spec.working_dir = "/tmp";
  spec.user = "0:0";
  spec.labels = {{"org.openedx.xqueue-watcher.watcher", "w1"},
                 {"org.openedx.xqueue-watcher.submission", "7"}};
  spec.mounts = {{.source = "/srv/course,1", .target = "/grader", .read_only = true},
                 {.source = "/jobs/j", .target = "/job", .read_only = false}};
  spec.read_only_rootfs = true;
  spec.tmpfs = {{"/tmp", 64 << 20}};
  spec.network = false;
  spec.memory_bytes = 256 << 20;
  spec.nano_cpus = 1'500'000'000;
  spec.pids_limit = 128;
  spec.cap_add = {"SETUID", "SETGID"};
  spec.no_new_privileges = true;
  spec.ulimits = {{"nofile", 256, 256}, {"fsize", 1 << 20, 1 << 20}};
  spec.runtime = "runsc";
  spec.log_max_bytes = 2 << 20;
  return spec;
}

// The value after each occurrence of `flag`.
std::vector<std::string> values_of(const std::vector<std::string>& args, const std::string& flag) {
  std::vector<std::string> values;
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == flag) values.push_back(args[i + 1]);
  }
  return values;
}

bool has(const std::vector<std::string>& args, const std::string& word) {
  return std::find(args.begin(), args.end(), word) != args.end();
}

TEST(DockerRunArgs, CarryEveryLimitOfTheSpec) {
  const auto args = docker_run_args(full_spec(), "xqw-bench-7-1");
  EXPECT_THAT(std::vector<std::string>(args.begin(), args.begin() + 4),
              ElementsAre("run", "--rm", "--name", "xqw-bench-7-1"));
  EXPECT_THAT(values_of(args, "--network"), ElementsAre("none"));
  EXPECT_THAT(values_of(args, "--cap-drop"), ElementsAre("ALL"));
  EXPECT_THAT(values_of(args, "--cap-add"), ElementsAre("SETUID", "SETGID"));
  EXPECT_THAT(values_of(args, "--security-opt"), ElementsAre("no-new-privileges"));
  EXPECT_TRUE(has(args, "--read-only"));
  EXPECT_THAT(values_of(args, "--memory"), ElementsAre(std::to_string(256 << 20)));
  EXPECT_THAT(values_of(args, "--memory-swap"), ElementsAre(std::to_string(256 << 20)));
  EXPECT_THAT(values_of(args, "--cpus"), ElementsAre("1.5"));
  EXPECT_THAT(values_of(args, "--pids-limit"), ElementsAre("128"));
  EXPECT_THAT(values_of(args, "--runtime"), ElementsAre("runsc"));
  EXPECT_THAT(values_of(args, "--tmpfs"),
              ElementsAre("/tmp:rw,nosuid,nodev,noexec,size=" + std::to_string(64 << 20) + ",mode=1777"));
  EXPECT_THAT(values_of(args, "--ulimit"), ElementsAre("nofile=256:256", "fsize=1048576:1048576"));
  EXPECT_THAT(values_of(args, "--log-opt"), ElementsAre("max-size=" + std::to_string(2 << 20), "max-file=1"));
  EXPECT_THAT(values_of(args, "--user"), ElementsAre("0:0"));
  EXPECT_THAT(values_of(args, "--workdir"), ElementsAre("/tmp"));
  EXPECT_THAT(values_of(args, "--env"), ElementsAre("LANG=C.UTF-8"));
  EXPECT_THAT(values_of(args, "--label"), ElementsAre("org.openedx.xqueue-watcher.submission=7",
                                                      "org.openedx.xqueue-watcher.watcher=w1"));
}

TEST(DockerRunArgs, QuoteMountFieldsThatHoldCommasAndKeepReadOnlyPerMount) {
  const auto mounts = values_of(docker_run_args(full_spec(), "n"), "--mount");
  EXPECT_THAT(
      mounts,
      ElementsAre("type=bind,\"source=/srv/course,1\",target=/grader,readonly,bind-propagation=rprivate",
                  "type=bind,source=/jobs/j,target=/job,bind-propagation=rprivate"));
}

TEST(DockerRunArgs, SplitTheEntrypointAsTheCliWantsIt) {
  const auto args = docker_run_args(full_spec(), "n");
  EXPECT_THAT(values_of(args, "--entrypoint"), ElementsAre("python3"));
  const auto image = std::find(args.begin(), args.end(), "grader:1");
  ASSERT_NE(image, args.end());
  EXPECT_THAT(std::vector<std::string>(image + 1, args.end()), ElementsAre("-I", "/opt/run", "--fast"));
}

TEST(DockerRunArgs, LeaveImageDefaultsAlone) {
  docker::ContainerSpec spec;
  spec.image = "plain:1";
  spec.read_only_rootfs = false;
  spec.no_new_privileges = false;
  const auto args = docker_run_args(spec, "n");
  for (const char* flag : {"--entrypoint", "--user", "--workdir", "--memory", "--cpus", "--pids-limit",
                           "--runtime", "--read-only", "--security-opt"}) {
    EXPECT_FALSE(has(args, flag)) << flag;
  }
  EXPECT_EQ(args.back(), "plain:1");
}

// When create_body learns a new HostConfig setting, the CLI floor must learn it too, or it would
// measure a different container.
TEST(DockerRunArgs, CoverEveryHostConfigKeyTheApiSets) {
  const std::map<std::string, std::string> flag_for = {
      {"NetworkMode", "--network"},
      {"ReadonlyRootfs", "--read-only"},
      {"CapDrop", "--cap-drop"},
      {"CapAdd", "--cap-add"},
      {"SecurityOpt", "--security-opt"},
      {"LogConfig", "--log-opt"},
      {"Memory", "--memory"},
      {"MemorySwap", "--memory-swap"},
      {"NanoCpus", "--cpus"},
      {"PidsLimit", "--pids-limit"},
      {"Runtime", "--runtime"},
      {"Mounts", "--mount"},
      {"Tmpfs", "--tmpfs"},
      {"Ulimits", "--ulimit"},
      // The API container is removed by its caller; the CLI's --rm does the same.
      {"AutoRemove", "--rm"},
      {"Privileged", "--cap-drop"},
  };
  const auto spec = full_spec();
  const auto args = docker_run_args(spec, "n");
  const auto body = docker::create_body(spec);  // named: a temporary would die before the loop body
  for (const auto& [key, value] : body["HostConfig"].items()) {
    const auto known = flag_for.find(key);
    ASSERT_NE(known, flag_for.end()) << "create_body sets HostConfig." << key
                                     << "; docker_run_args has no equivalent";
    EXPECT_TRUE(has(args, known->second)) << key << " -> " << known->second;
  }
}

TEST(ParseJobs, ReadsTheListBenchRunWrites) {
  const auto jobs = parse_jobs(nlohmann::json::parse(
      R"([{"submission_id": 3, "grader": "01-average/grader.py", "student_response": "x = 1", "seed": 9,
           "kind": "01-average/right"}])"));
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].submission_id, 3);
  EXPECT_EQ(jobs[0].grader, "01-average/grader.py");
  EXPECT_EQ(jobs[0].student_response, "x = 1");
  EXPECT_EQ(jobs[0].seed, 9);
  EXPECT_EQ(jobs[0].kind, "01-average/right");
}

TEST(ParseJobs, NamesTheEntryAndFieldThatIsWrong) {
  try {
    parse_jobs(
        nlohmann::json::parse(R"([{"submission_id": 1, "grader": "g", "student_response": "", "seed": 1},
                                          {"submission_id": "2", "grader": "g", "student_response": "", "seed": 1}])"));
    FAIL() << "a string submission_id was accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_THAT(error.what(), HasSubstr("job 1"));
    EXPECT_THAT(error.what(), HasSubstr("submission_id"));
  }
  EXPECT_THROW(parse_jobs(nlohmann::json::parse(R"([{"submission_id": 1, "grader": "g", "seed": 1}])")),
               std::invalid_argument);
  EXPECT_THROW(parse_jobs(nlohmann::json::object()), std::invalid_argument);
}

TEST(ScoreFromStdout, TakesTheScoreOfAResultObjectOnly) {
  EXPECT_EQ(score_from_stdout(R"({"correct": false, "score": 0.25, "errors": [], "tests": []})"), 0.25);
  EXPECT_EQ(score_from_stdout(""), std::nullopt);
  EXPECT_EQ(score_from_stdout(R"({"score": "1"})"), std::nullopt);
  EXPECT_EQ(score_from_stdout("[1]"), std::nullopt);
}

TEST(GradeJob, IsWhatTheWatcherBuildsFromTheSameSubmission) {
  const auto job = grade_job("bench-0", {.submission_id = 12,
                                         .grader = "01-average/grader.py",
                                         .student_response = "def average(x): pass",
                                         .seed = 4242});
  EXPECT_EQ(job.queue, "bench-0");
  EXPECT_EQ(job.submission_id, "12");
  EXPECT_EQ(job.grader, "01-average/grader.py");
  EXPECT_EQ(job.seed, 4242);
  EXPECT_EQ(job.student_response, "def average(x): pass");
  EXPECT_EQ(job.grader_payload, nlohmann::json({{"grader", "01-average/grader.py"}}));
}

TEST(FloorMode, ParsesTheNamesBenchRunPasses) {
  for (auto mode : kFloorModes) {
    EXPECT_EQ(parse_floor_mode(to_string(mode)), mode);
  }
  EXPECT_EQ(parse_floor_mode("true"), FloorMode::TrueProgram);
  EXPECT_EQ(parse_floor_mode("one-interpreter"), FloorMode::OneInterpreter);
  EXPECT_EQ(parse_floor_mode("cli"), std::nullopt);
  EXPECT_EQ(parse_floor_mode(""), std::nullopt);
}

grading::ImageContract python_image_contract() {
  return {.grader_dir = "/xqw/private/grader", .job_dir = "/xqw/private/job", .setuid_supervisor = true};
}

// The create body without the program: what must stay the api floor's for a reference to be comparable.
nlohmann::json body_without_program(const docker::ContainerSpec& spec) {
  auto body = docker::create_body(spec);
  body.erase("Entrypoint");
  body.erase("Cmd");
  return body;
}

TEST(FloorSpec, TheApiFloorsModesKeepItsContainer) {
  for (auto mode : {FloorMode::Api, FloorMode::Grader, FloorMode::DockerRun}) {
    EXPECT_EQ(docker::create_body(floor_spec(mode, full_spec(), python_image_contract())),
              docker::create_body(full_spec()))
        << to_string(mode);
  }
}

TEST(FloorSpec, TheTrueFloorChangesOnlyTheProgram) {
  const auto spec = floor_spec(FloorMode::TrueProgram, full_spec(), python_image_contract());
  EXPECT_EQ(body_without_program(spec), body_without_program(full_spec()));
  ASSERT_TRUE(spec.entrypoint.has_value());
  EXPECT_THAT(*spec.entrypoint, ElementsAre("/bin/true"));
  EXPECT_TRUE(spec.cmd.empty());
  EXPECT_FALSE(docker::create_body(spec).contains("Cmd"));
}

TEST(FloorSpec, TheOneInterpreterReferenceChangesOnlyTheProgram) {
  const auto spec = floor_spec(FloorMode::OneInterpreter, full_spec(), python_image_contract());
  EXPECT_EQ(body_without_program(spec), body_without_program(full_spec()));
  ASSERT_TRUE(spec.entrypoint.has_value());
  EXPECT_THAT(*spec.entrypoint,
              ElementsAre("python3", "-I", "-B", "-c", std::string(one_interpreter_script())));
  // The image's labelled directories, where the api floor's spec mounts the grader and the job.
  EXPECT_THAT(spec.cmd, ElementsAre("/xqw/private/grader", "/xqw/private/job"));
}

TEST(OneInterpreterScript, IsTheWholePythonFileCompiledIn) {
  const auto script = one_interpreter_script();
  EXPECT_THAT(std::string(script), HasSubstr("from grader_support import"));
  EXPECT_THAT(std::string(script), HasSubstr("gradelib.rand"));
  EXPECT_THAT(std::string(script),
              HasSubstr("if __name__ == \"__main__\":\n    sys.exit(main(sys.argv[1:]))"));
}

}  // namespace
}  // namespace xqw::bench
