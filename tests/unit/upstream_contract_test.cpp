// The Python watcher's ContainerGrader contract (pure parts): which queues follow it, their container,
// the submissions it cannot carry, and its result on the last line of stdout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "grading/container_grader.hpp"
#include "verdict_test_support.hpp"

namespace xqw::grading {
namespace {

using ::testing::HasSubstr;

QueueGrading upstream_queue() {
  QueueGrading queue;
  queue.queue = "legacy";
  queue.watcher_id = "w1";
  queue.image = "course-grader:1";
  queue.grader_root = "/srv/courses/legacy";
  queue.work_dir = "/var/lib/xqueue-watcher/jobs";
  queue.contract = config::ContractKind::Upstream;
  queue.limits.memory_bytes = 128 << 20;
  queue.limits.cpus = 0.5;
  queue.limits.pids = 32;
  queue.limits.tmpfs_bytes = 8 << 20;
  queue.limits.nofile = 64;
  queue.limits.fsize_bytes = 1 << 20;
  return queue;
}

GradeJob job(std::string response = "def square(x):\n    return x * x\n") {
  return GradeJob{.queue = "legacy",
                  .submission_id = "17",
                  .grader = "ex1/grader.py",
                  .grader_payload = {{"grader", "ex1/grader.py"}},
                  .student_response = std::move(response),
                  .lang = "fr",
                  .hide_output = true,
                  .seed = 4242};
}

const ResolvedGrader kGrader{.problem_dir = "/srv/courses/legacy/ex1", .file_name = "grader.py"};

// --- which contract ---

docker::ImageInfo labelled(std::map<std::string, std::string> labels = {}) {
  docker::ImageInfo image;
  image.labels = std::move(labels);
  return image;
}

TEST(QueueContract, TheUpstreamContractIsOnePlaceWithEverythingItNeeds) {
  const auto contract = upstream_contract();
  EXPECT_EQ(contract.kind, config::ContractKind::Upstream);
  EXPECT_EQ(contract.grader_dir, "/graders");
  EXPECT_TRUE(contract.job_dir.empty());
  EXPECT_TRUE(contract.job_signal.empty()) << "nothing can be prepared ahead";
  EXPECT_FALSE(contract.setuid_supervisor);
  EXPECT_EQ(contract.framing, ResultFraming::LastLine);
}

TEST(QueueContract, AQueueAskingForItGetsItWhateverTheImageSays) {
  auto queue = upstream_queue();
  EXPECT_EQ(queue_contract(queue, labelled()).kind, config::ContractKind::Upstream);
  EXPECT_EQ(queue_contract(queue, labelled({{std::string(kSupervisorLabel), "setuid"}})).kind,
            config::ContractKind::Upstream);
}

TEST(QueueContract, AnImpliedOneYieldsToAnImageDeclaringThisProjectsLabels) {
  auto queue = upstream_queue();
  queue.contract_implied = true;
  EXPECT_EQ(queue_contract(queue, labelled()).kind, config::ContractKind::Upstream);
  const auto course_image = labelled(
      {{std::string(kSupervisorLabel), "setuid"}, {std::string(kGraderDirLabel), "/xqw/private/grader"}});
  const auto contract = queue_contract(queue, course_image);
  EXPECT_EQ(contract.kind, config::ContractKind::Native);
  EXPECT_EQ(contract.grader_dir, "/xqw/private/grader");
  EXPECT_TRUE(contract.setuid_supervisor);
}

TEST(QueueContract, NativeQueuesFollowTheImagesLabels) {
  auto queue = upstream_queue();
  queue.contract = config::ContractKind::Native;
  const auto contract = queue_contract(queue, labelled({{std::string(kJobDirLabel), "/j"}}));
  EXPECT_EQ(contract.kind, config::ContractKind::Native);
  EXPECT_EQ(contract.job_dir, "/j");
  EXPECT_EQ(contract.framing, ResultFraming::WholeStdout);
}

// --- the container ---

TEST(UpstreamContainerSpec, MountsTheProblemAtGradersAndPassesTheJobInArgumentsAndEnvironment) {
  const auto spec = upstream_container_spec(upstream_queue(), kGrader, job());
  ASSERT_EQ(spec.mounts.size(), 1u) << "no job directory: nothing in it would be read";
  EXPECT_EQ(spec.mounts[0].source, "/srv/courses/legacy/ex1");
  EXPECT_EQ(spec.mounts[0].target, "/graders");
  EXPECT_TRUE(spec.mounts[0].read_only);
  EXPECT_EQ(spec.cmd, (std::vector<std::string>{"/graders/grader.py", "4242"}));
  EXPECT_FALSE(spec.entrypoint.has_value()) << "the image's own entrypoint runs";
  EXPECT_EQ(spec.working_dir, "/grader");
  EXPECT_EQ(spec.env, (std::vector<std::string>{"SUBMISSION_CODE=def square(x):\n    return x * x\n",
                                                "GRADER_LANGUAGE=fr", "HIDE_OUTPUT=1"}));
  auto shown = job();
  shown.hide_output = false;
  EXPECT_EQ(upstream_container_spec(upstream_queue(), kGrader, shown).env.back(), "HIDE_OUTPUT=0");
}

TEST(UpstreamContainerSpec, KeepsEveryLimitAndHardeningOfTheNativeContract) {
  const auto queue = upstream_queue();
  const auto spec = upstream_container_spec(queue, kGrader, job());
  EXPECT_EQ(spec.image, "course-grader:1");
  EXPECT_EQ(spec.user, "65534:65534");
  EXPECT_TRUE(spec.cap_add.empty());
  EXPECT_TRUE(spec.no_new_privileges);
  EXPECT_TRUE(spec.read_only_rootfs);
  EXPECT_FALSE(spec.network);
  EXPECT_EQ(spec.tmpfs.at("/tmp"), 8 << 20) << "our capped tmpfs stands in for the image's VOLUME /tmp";
  EXPECT_EQ(spec.memory_bytes, 128 << 20);
  EXPECT_EQ(spec.nano_cpus, 500'000'000);
  EXPECT_EQ(spec.pids_limit, 32);
  EXPECT_EQ(spec.labels.at(std::string(kSubmissionLabel)), "17");
  EXPECT_EQ(spec.labels.at(std::string(kQueueLabel)), "legacy");
  // Everything but what the contract itself decides is what the native contract's container gets.
  auto native = container_spec(queue, ImageContract{}, kGrader.problem_dir, "/jobs/j", "17");
  EXPECT_EQ(spec.ulimits.size(), native.ulimits.size());
  EXPECT_EQ(spec.tmpfs, native.tmpfs);
  EXPECT_EQ(spec.labels, native.labels);
  EXPECT_EQ(spec.log_max_bytes, native.log_max_bytes);
  EXPECT_EQ(spec.runtime, native.runtime);
}

TEST(UpstreamContainerSpec, TheQueuesUserAndHostPathWin) {
  auto queue = upstream_queue();
  queue.limits.user = "1000:1000";
  queue.docker_host_grader_root = "/mnt/host/legacy";
  const auto spec = upstream_container_spec(queue, kGrader, job());
  EXPECT_EQ(spec.user, "1000:1000");
  EXPECT_EQ(spec.mounts[0].source, "/mnt/host/legacy/ex1");
}

// --- submissions the environment cannot carry ---

TEST(SubmissionLimit, TheUpstreamContractCapsItAtWhatFitsInSubmissionCode) {
  config::Limits limits;
  limits.submission_bytes = 1 << 20;
  EXPECT_EQ(submission_limit(limits, ImageContract{}), 1 << 20);
  EXPECT_EQ(submission_limit(limits, upstream_contract()), 131072 - 17);  // "SUBMISSION_CODE=" and NUL
  limits.submission_bytes = 1000;
  EXPECT_EQ(submission_limit(limits, upstream_contract()), 1000);
}

TEST(SubmissionLimit, TooLargeForTheVariableIsSubmissionTooLargeAtTheBoundary) {
  config::Limits limits;
  const auto contract = upstream_contract();
  EXPECT_FALSE(refuse_submission(job(std::string(kMaxEnvSubmissionBytes, 'x')), limits, contract));
  const auto refusal = refuse_submission(job(std::string(kMaxEnvSubmissionBytes + 1, 'x')), limits, contract);
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->verdict, Verdict::SubmissionTooLarge);
  EXPECT_THAT(refusal->reason, HasSubstr("SUBMISSION_CODE"));
  EXPECT_FALSE(refuse_submission(job(std::string(kMaxEnvSubmissionBytes + 1, 'x')), limits, ImageContract{}));
}

TEST(SubmissionLimit, TheStudentIsToldTheLimitInWords) {
  LimitsForMessages limits{.submission_bytes = submission_limit(config::Limits{}, upstream_contract())};
  const auto outcome = failure_outcome(Verdict::SubmissionTooLarge, limits, {}, "");
  ASSERT_EQ(outcome.result.errors.size(), 1u);
  EXPECT_EQ(outcome.result.errors[0], "Your submission is larger than the 127.98 KiB this problem accepts.");
}

TEST(SubmissionLimit, BytesAnEnvironmentVariableCannotCarryAreRefusedUnderTheUpstreamContractOnly) {
  config::Limits limits;
  const auto with_nul = job(std::string("print(1)\0", 9));
  ASSERT_TRUE(refuse_submission(with_nul, limits, upstream_contract()));
  EXPECT_THAT(refuse_submission(with_nul, limits, upstream_contract())->reason, HasSubstr("NUL"));
  EXPECT_FALSE(refuse_submission(with_nul, limits, ImageContract{}));
  EXPECT_THAT(refuse_submission(job("x = '\xff'"), limits, upstream_contract())->reason, HasSubstr("UTF-8"));
}

// --- the result on the last line ---

TEST(LastLineResult, SplitsThePrintsFromTheLastNonEmptyLine) {
  auto framed = split_last_line("debug 1\ndebug 2\n{\"a\": 1}\n\n  \r\n");
  EXPECT_EQ(framed.prints, "debug 1\ndebug 2\n");
  EXPECT_EQ(framed.result, "{\"a\": 1}");
  framed = split_last_line("{}");
  EXPECT_EQ(framed.prints, "");
  EXPECT_EQ(framed.result, "{}");
  EXPECT_EQ(split_last_line(" \n\n").result, "");
}

// Why the output is not a result; empty when it is one.
std::string invalid_reason(const ParsedOutput& parsed) {
  return parsed ? std::string() : parsed.error().reason;
}

constexpr ParseLimits kLastLine{.framing = ResultFraming::LastLine};

TEST(LastLineResult, ParsesTheUpstreamShapeAfterTheGradersPrints) {
  const auto parsed = parse_grader_output(
      "loading grader\n{\"not\": \"this\"}\n"
      R"({"correct": false, "score": 0.5, "errors": [], "tests": [["t1", "long", true, "4", "4"], )"
      R"(["t2", "long", false, "9", "6"]]})"
      "\n",
      kLastLine);
  ASSERT_TRUE(parsed.has_value()) << invalid_reason(parsed);
  EXPECT_DOUBLE_EQ(parsed->score, 0.5);
  ASSERT_EQ(parsed->tests.size(), 2u);
  EXPECT_EQ(parsed->tests[1].actual_output, "6");
}

TEST(LastLineResult, ReasonsNameTheLastLine) {
  EXPECT_EQ(invalid_reason(parse_grader_output("", kLastLine)), "stdout is empty");
  EXPECT_THAT(invalid_reason(parse_grader_output("\n \n", kLastLine)), HasSubstr("no non-empty line"));
  EXPECT_THAT(invalid_reason(parse_grader_output("{\"correct\": true}\nTraceback: boom\n", kLastLine)),
              HasSubstr("the last line of stdout does not start with a JSON object"));
  EXPECT_THAT(invalid_reason(parse_grader_output(
                  "{\"correct\": true, \"score\": 1, \"errors\": [], \"tests\": []} x", kLastLine)),
              HasSubstr("alone on its line"));
}

TEST(LastLineResult, OnlyTheUpstreamShapeCounts) {
  const auto parsed = parse_grader_output(R"({"correct": true, "score": 1, "msg": "<p>hi</p>"})", kLastLine);
  ASSERT_FALSE(parsed.has_value());
  EXPECT_THAT(invalid_reason(parsed), HasSubstr("unexpected key \"msg\""));
  EXPECT_TRUE(parse_grader_output(R"({"correct": true, "score": 1, "msg": "<p>hi</p>"})").has_value());
}

TEST(LastLineResult, TheWholeStdoutContractStillRefusesPrintsBeforeTheResult) {
  const std::string output = "hello\n{\"correct\": true, \"score\": 1, \"errors\": [], \"tests\": []}\n";
  EXPECT_FALSE(parse_grader_output(output).has_value());
  EXPECT_TRUE(parse_grader_output(output, kLastLine).has_value());
}

TEST(LastLineResult, VerdictsAreDecidedAsToday) {
  RunFacts signals{
      .exit_code = 0,
      .stdout_bytes = "debug\n{\"correct\": true, \"score\": 1, \"errors\": [], \"tests\": []}\n"};
  EXPECT_EQ(decided(signals, {}, {}, kLastLine).verdict, Verdict::Graded);
  EXPECT_EQ(decided(signals, {}, {}).verdict, Verdict::InvalidOutput);
  signals.exit_code = 1;
  EXPECT_EQ(decided(signals, {}, {}, kLastLine).verdict, Verdict::GraderError);
  signals.exit_code = 0;
  signals.stdout_truncated = true;
  EXPECT_EQ(decided(signals, {}, {}, kLastLine).verdict, Verdict::OutputLimit);
}

}  // namespace
}  // namespace xqw::grading
