#include <gtest/gtest.h>

#include <string>

#include "grading/render.hpp"
#include "grading/verdict.hpp"
#include "verdict_test_support.hpp"

namespace xqw::grading {
namespace {

using std::chrono::milliseconds;

constexpr std::int64_t kMiB = 1024 * 1024;

const std::string kValidStdout =
    R"({"correct": true, "score": 1, "errors": [], "tests": [["Test 1", "", true, "1", "1"]]})";

LimitsForMessages queue_limits() {
  return {.memory_bytes = 256 * kMiB,
          .timeout = milliseconds(20000),
          .stdout_bytes = kMiB,
          .stderr_bytes = 512 * 1024,
          .pids = 64,
          .submission_bytes = kMiB};
}

RunFacts finished(int exit_code, std::string stdout_bytes = kValidStdout, std::string stderr_bytes = "") {
  RunFacts signals;
  signals.exit_code = exit_code;
  signals.stdout_bytes = std::move(stdout_bytes);
  signals.stderr_bytes = std::move(stderr_bytes);
  return signals;
}

std::string student_message(const Outcome& outcome) {
  EXPECT_EQ(outcome.result.errors.size(), 1u);
  return outcome.result.errors.empty() ? "" : outcome.result.errors.front();
}

void expect_failed(const Outcome& outcome, Verdict verdict) {
  EXPECT_EQ(outcome.verdict, verdict) << verdict_label(outcome.verdict);
  EXPECT_FALSE(outcome.result.correct);
  EXPECT_EQ(outcome.result.score, 0.0);
  EXPECT_TRUE(outcome.result.tests.empty());
  EXPECT_FALSE(outcome.result.html_msg.has_value());
  EXPECT_FALSE(outcome.staff_reason.empty());
}

TEST(GradingVerdict, LabelsRoundTrip) {
  const std::vector<std::pair<Verdict, std::string>> labels = {
      {Verdict::Graded, "graded"},
      {Verdict::Timeout, "timeout"},
      {Verdict::OutOfMemory, "out_of_memory"},
      {Verdict::PidsLimit, "pids_limit"},
      {Verdict::OutputLimit, "output_too_large"},
      {Verdict::GraderError, "grader_error"},
      {Verdict::InvalidOutput, "invalid_output"},
      {Verdict::SubmissionTooLarge, "submission_too_large"},
      {Verdict::GraderNotFound, "grader_not_found"},
      {Verdict::InfrastructureError, "infrastructure"},
  };
  for (const auto& [verdict, label] : labels) {
    EXPECT_EQ(verdict_label(verdict), label);
    EXPECT_EQ(verdict_from_label(label), verdict);
  }
  EXPECT_FALSE(verdict_from_label("Timeout").has_value());
}

TEST(GradingFormat, BytesInBinaryUnits) {
  EXPECT_EQ(format_bytes(256 * kMiB), "256 MiB");
  EXPECT_EQ(format_bytes(kMiB), "1 MiB");
  EXPECT_EQ(format_bytes(512 * 1024), "512 KiB");
  EXPECT_EQ(format_bytes(3 * kMiB * 512), "1.5 GiB");
  EXPECT_EQ(format_bytes(1024), "1 KiB");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(1000), "1000 bytes");
  EXPECT_EQ(format_bytes(1), "1 byte");
  EXPECT_EQ(format_bytes(0), "0 bytes");
  EXPECT_EQ(format_bytes(1280 * 1024), "1.25 MiB");
  EXPECT_EQ(format_bytes(2 * 1024 * 1024 * kMiB), "2 TiB");
  EXPECT_EQ(format_bytes(-2048), "-2 KiB");
}

TEST(GradingFormat, DurationsInWords) {
  EXPECT_EQ(format_duration(milliseconds(20000)), "20 s");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1.5 s");
  EXPECT_EQ(format_duration(milliseconds(500)), "500 ms");
  EXPECT_EQ(format_duration(milliseconds(1000)), "1 s");
  EXPECT_EQ(format_duration(milliseconds(90000)), "90 s");
  EXPECT_EQ(format_duration(milliseconds(300000)), "5 min");
  EXPECT_EQ(format_duration(milliseconds(0)), "0 ms");
}

TEST(GradingDecide, ExitZeroWithAValidResultIsGraded) {
  const Outcome outcome = decided(finished(0), queue_limits(), {});
  EXPECT_EQ(outcome.verdict, Verdict::Graded);
  EXPECT_TRUE(outcome.result.correct);
  EXPECT_EQ(outcome.result.score, 1.0);
  ASSERT_EQ(outcome.result.tests.size(), 1u);
  EXPECT_EQ(outcome.result.tests[0].short_description, "Test 1");
  EXPECT_TRUE(outcome.staff_reason.empty());
}

TEST(GradingDecide, EachLimitHasAPlainMessage) {
  RunFacts timeout = finished(137);
  timeout.deadline_hit = true;
  const Outcome timed_out = decided(timeout, queue_limits(), {});
  expect_failed(timed_out, Verdict::Timeout);
  EXPECT_EQ(student_message(timed_out), "Your code did not finish within 20 s.");

  RunFacts oom = finished(137);
  oom.engine_oom_flag = true;
  const Outcome out_of_memory = decided(oom, queue_limits(), {});
  expect_failed(out_of_memory, Verdict::OutOfMemory);
  EXPECT_EQ(student_message(out_of_memory), "Your code used more than 256 MiB of memory.");

  RunFacts pids = finished(1);
  pids.refused_forks = 3;
  const Outcome too_many = decided(pids, queue_limits(), {});
  expect_failed(too_many, Verdict::PidsLimit);
  EXPECT_EQ(student_message(too_many), "Your code started too many processes (limit: 64).");

  RunFacts chatty = finished(0);
  chatty.stdout_truncated = true;
  const Outcome printed = decided(chatty, queue_limits(), {});
  expect_failed(printed, Verdict::OutputLimit);
  EXPECT_EQ(student_message(printed), "Your code printed more than 1 MiB.");

  RunFacts noisy = finished(0);
  noisy.stderr_truncated = true;
  const Outcome printed_errors = decided(noisy, queue_limits(), {});
  expect_failed(printed_errors, Verdict::OutputLimit);
  EXPECT_EQ(student_message(printed_errors), "Your code printed more than 512 KiB.");
  EXPECT_NE(printed_errors.staff_reason.find("stderr exceeded its 512 KiB cap"), std::string::npos);
}

TEST(GradingDecide, EngineSignalsTakePrecedenceInOrder) {
  RunFacts signals = finished(0);  // a valid result does not outweigh any engine signal
  signals.deadline_hit = signals.engine_oom_flag = signals.stdout_truncated = true;
  signals.refused_forks = 3;
  EXPECT_EQ(decided(signals, queue_limits(), {}).verdict, Verdict::Timeout);
  signals.deadline_hit = false;
  EXPECT_EQ(decided(signals, queue_limits(), {}).verdict, Verdict::OutOfMemory);
  signals.engine_oom_flag = false;
  EXPECT_EQ(decided(signals, queue_limits(), {}).verdict, Verdict::PidsLimit);
  signals.refused_forks.reset();
  EXPECT_EQ(decided(signals, queue_limits(), {}).verdict, Verdict::OutputLimit);
  signals.stdout_truncated = false;
  EXPECT_EQ(decided(signals, queue_limits(), {}).verdict, Verdict::Graded);
  signals.exit_code = 3;
  EXPECT_EQ(decided(signals, queue_limits(), {}).verdict, Verdict::GraderError);
  signals.exit_code.reset();
  EXPECT_EQ(decided(signals, queue_limits(), {}).verdict, Verdict::InfrastructureError);
}

TEST(GradingDecide, InvalidOutputKeepsTheReasonForStaffOnly) {
  const Outcome outcome = decided(finished(0, "Traceback: secret_answer = 42\n"), queue_limits(), {});
  expect_failed(outcome, Verdict::InvalidOutput);
  EXPECT_EQ(student_message(outcome),
            "There was a problem running your code (Staff debug: invalid grader output).");
  EXPECT_NE(outcome.staff_reason.find("stdout does not start with a JSON object"), std::string::npos);
}

TEST(GradingDecide, GraderFailureNeverShowsStderrToStudents) {
  const Outcome outcome =
      decided(finished(1, "", "Traceback ...\nAssertionError: answer is 42 SECRET"), queue_limits(), {});
  expect_failed(outcome, Verdict::GraderError);
  EXPECT_EQ(student_message(outcome), "There was a problem running your code (Staff debug: exit code 1).");
  EXPECT_EQ(render_html(outcome.result).find("SECRET"), std::string::npos);
  EXPECT_NE(outcome.staff_reason.find("exit code 1"), std::string::npos);
  EXPECT_NE(outcome.staff_reason.find("AssertionError: answer is 42 SECRET"), std::string::npos);
}

TEST(GradingDecide, NoVerdictQuotesStderrToStudents) {
  for (int variant = 0; variant < 6; ++variant) {
    RunFacts signals = finished(variant == 5 ? 0 : 1, variant == 5 ? "bad" : "", "SECRET stderr");
    signals.deadline_hit = variant == 0;
    signals.engine_oom_flag = variant == 1;
    if (variant == 2) signals.refused_forks = 3;
    signals.stderr_truncated = variant == 3;
    const Outcome outcome = decided(signals, queue_limits(), {});
    EXPECT_EQ(student_message(outcome).find("SECRET"), std::string::npos) << verdict_label(outcome.verdict);
    EXPECT_NE(outcome.staff_reason.find("SECRET stderr"), std::string::npos)
        << verdict_label(outcome.verdict);
  }
}

TEST(GradingDecide, StaffReasonQuotesOnlyTheEndOfALongStderr) {
  const std::string stderr_bytes = std::string(100 * 1024, 'x') + "\nValueError: the real cause";
  const Outcome outcome = decided(finished(2, "", stderr_bytes), queue_limits(), {});
  EXPECT_LT(outcome.staff_reason.size(), 3000u);
  EXPECT_TRUE(outcome.staff_reason.ends_with("ValueError: the real cause"));
  EXPECT_NE(outcome.staff_reason.find("stderr (excerpt)"), std::string::npos);
}

TEST(GradingDecide, MissingExitCodeIsAnInfrastructureError) {
  RunFacts signals;
  const Outcome outcome = decided(signals, queue_limits(), {});
  expect_failed(outcome, Verdict::InfrastructureError);
  EXPECT_NE(student_message(outcome).find("Please try again later"), std::string::npos);
}

TEST(GradingDecide, OverridesReplaceTheMessageAndFillInTheLimit) {
  RunFacts signals = finished(137);
  signals.deadline_hit = true;
  const MessageOverrides overrides = {{"timeout", "Too slow: {limit} max ({limit})."},
                                      {"out_of_memory", "Memory! {limit}"}};
  EXPECT_EQ(student_message(decided(signals, queue_limits(), overrides)), "Too slow: 20 s max (20 s).");
  signals.deadline_hit = false;
  signals.engine_oom_flag = true;
  EXPECT_EQ(student_message(decided(signals, queue_limits(), overrides)), "Memory! 256 MiB");
  signals.engine_oom_flag = false;
  signals.exit_code = 1;  // a SIGKILL the watcher did not send is the OOM killer's
  signals.refused_forks = 3;
  EXPECT_EQ(student_message(decided(signals, queue_limits(), overrides)),
            "Your code started too many processes (limit: 64).");
  EXPECT_EQ(student_message(decided(finished(9), queue_limits(), {{"grader_error", "Broken{limit}."}})),
            "Broken.");
  EXPECT_EQ(student_message(decided(finished(9), queue_limits(), {{"grader_error", ""}})),
            "There was a problem running your code (Staff debug: exit code 9).");
}

TEST(GradingDecide, UnknownLimitsGiveLimitFreeWording) {
  RunFacts signals = finished(137);
  signals.deadline_hit = true;
  EXPECT_EQ(student_message(decided(signals, LimitsForMessages{}, {})), "Your code did not finish in time.");
  signals.deadline_hit = false;
  signals.engine_oom_flag = true;
  EXPECT_EQ(student_message(decided(signals, LimitsForMessages{}, {})), "Your code used too much memory.");
}

TEST(GradingDecide, FailuresFoundBeforeARunUseTheSameMessages) {
  const Outcome too_large =
      failure_outcome(Verdict::SubmissionTooLarge, queue_limits(), {}, "3 MiB received");
  expect_failed(too_large, Verdict::SubmissionTooLarge);
  EXPECT_EQ(student_message(too_large), "Your submission is larger than the 1 MiB this problem accepts.");
  EXPECT_EQ(too_large.staff_reason, "3 MiB received");

  const Outcome not_found =
      failure_outcome(Verdict::GraderNotFound, queue_limits(), {}, "ps1/grader.py missing");
  expect_failed(not_found, Verdict::GraderNotFound);
  EXPECT_NE(student_message(not_found).find("Staff debug: grader not found"), std::string::npos);

  const Outcome custom = failure_outcome(Verdict::SubmissionTooLarge, queue_limits(),
                                         {{"submission_too_large", "Max {limit}."}}, "x");
  EXPECT_EQ(student_message(custom), "Max 1 MiB.");
  EXPECT_NE(render_html(custom.result).find("<li><pre>Max 1 MiB.</pre></li>"), std::string::npos);
}

TEST(GradingDecide, FailureMessagesRenderAsErrors) {
  RunFacts signals = finished(137);
  signals.engine_oom_flag = true;
  const std::string html =
      render_html(decided(signals, queue_limits(), {{"out_of_memory", "<b>{limit}</b> & more"}}).result);
  EXPECT_NE(html.find("    ERROR\n"), std::string::npos);
  EXPECT_NE(html.find("<li><pre>&lt;b&gt;256 MiB&lt;/b&gt; &amp; more</pre></li>"), std::string::npos);
}

TEST(GradingVerdict, RecognisesProcessLimitOnStderr) {
  EXPECT_TRUE(stderr_shows_process_limit("sh: fork: Resource temporarily unavailable"));
  EXPECT_TRUE(stderr_shows_process_limit("bash: fork: retry: Resource temporarily unavailable"));
  EXPECT_TRUE(stderr_shows_process_limit("RuntimeError: can't start new thread"));
  EXPECT_TRUE(stderr_shows_process_limit(
      "  File \"x.py\", line 3, in <module>\n    os.fork()\nBlockingIOError: [Errno 11] Resource temporarily "
      "unavailable"));
  EXPECT_FALSE(stderr_shows_process_limit("MemoryError"));
  EXPECT_FALSE(stderr_shows_process_limit("read: Resource temporarily unavailable"));
  EXPECT_FALSE(stderr_shows_process_limit(""));
}

TEST(GradingDecide, ASigkillTheWatcherDidNotSendIsTheOomKiller) {
  // PID 1 cannot be SIGKILLed from inside its PID namespace, and nothing else kills it but the watcher.
  EXPECT_EQ(decided(finished(137), queue_limits(), {}).verdict, Verdict::OutOfMemory);
  RunFacts by_deadline = finished(137);
  by_deadline.deadline_hit = true;
  EXPECT_EQ(decided(by_deadline, queue_limits(), {}).verdict, Verdict::Timeout);
  RunFacts by_output_cap = finished(137);
  by_output_cap.stdout_truncated = true;
  EXPECT_EQ(decided(by_output_cap, queue_limits(), {}).verdict, Verdict::OutputLimit);
}

TEST(GradingDecide, ASigtermFromOutsideIsGradedAgainNotPosted) {
  const auto stopped = decide(finished(143, ""), queue_limits(), {});
  ASSERT_FALSE(stopped.has_value());
  EXPECT_NE(stopped.error().reason.find("stopped from outside (SIGTERM)"), std::string::npos);
  RunFacts after_deadline = finished(143);
  after_deadline.deadline_hit = true;  // the watcher's own kill: the student's time-out
  EXPECT_EQ(decided(after_deadline, queue_limits(), {}).verdict, Verdict::Timeout);
}

TEST(GradingDecide, AContainerStartedAheadThatGotNoJobIsGradedAgain) {
  RunFacts waited = finished(3, "");
  waited.started_before_job = true;
  const auto again = decide(waited, queue_limits(), {});
  ASSERT_FALSE(again.has_value());
  EXPECT_NE(again.error().reason.find("before its job arrived"), std::string::npos);
  // The same status from a container that had its job, or with output, is the grader's.
  EXPECT_EQ(decided(finished(3, ""), queue_limits(), {}).verdict, Verdict::GraderError);
  waited.stdout_bytes = "partial";
  EXPECT_EQ(decided(waited, queue_limits(), {}).verdict, Verdict::GraderError);
}

TEST(GradingDecide, ForksRefusedByThePidsCgroupNameTheProcessLimitWhateverTheCodeDidWithTheErrors) {
  // A fork bomb that swallows every fork() failure runs until the image stops it for time and reports a
  // graded "took too long" result; the pids cgroup's count says what really stopped it.
  const std::string took_too_long =
      R"({"correct": false, "score": 0, "errors": ["Your code took too long to run"], "tests": []})";
  RunFacts bomb = finished(0, took_too_long, "xqw-usage: {\"refused_forks\": 12873}\n");
  bomb.refused_forks = 12873;
  const Outcome outcome = decided(bomb, queue_limits(), {});
  expect_failed(outcome, Verdict::PidsLimit);
  EXPECT_EQ(student_message(outcome), "Your code started too many processes (limit: 64).");
  EXPECT_NE(outcome.staff_reason.find("refused 12873 forks"), std::string::npos);
  bomb.refused_forks = 0;  // the image looked and nothing was refused
  EXPECT_EQ(decided(bomb, queue_limits(), {}).verdict, Verdict::Graded);
}

}  // namespace
}  // namespace xqw::grading
