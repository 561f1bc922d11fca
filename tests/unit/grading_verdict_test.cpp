#include <gtest/gtest.h>

#include <string>

#include "grading/render.hpp"
#include "grading/verdict.hpp"

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

RunSignals finished(int exit_code, std::string stdout_bytes = kValidStdout, std::string stderr_bytes = "") {
  RunSignals signals;
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
  const Outcome outcome = decide(finished(0), queue_limits(), {});
  EXPECT_EQ(outcome.verdict, Verdict::Graded);
  EXPECT_TRUE(outcome.result.correct);
  EXPECT_EQ(outcome.result.score, 1.0);
  ASSERT_EQ(outcome.result.tests.size(), 1u);
  EXPECT_EQ(outcome.result.tests[0].short_description, "Test 1");
  EXPECT_TRUE(outcome.staff_reason.empty());
}

TEST(GradingDecide, EachLimitHasAPlainMessage) {
  RunSignals timeout = finished(137);
  timeout.deadline_hit = true;
  const Outcome timed_out = decide(timeout, queue_limits(), {});
  expect_failed(timed_out, Verdict::Timeout);
  EXPECT_EQ(student_message(timed_out), "Your code did not finish within 20 s.");

  RunSignals oom = finished(137);
  oom.oom_killed = true;
  const Outcome out_of_memory = decide(oom, queue_limits(), {});
  expect_failed(out_of_memory, Verdict::OutOfMemory);
  EXPECT_EQ(student_message(out_of_memory), "Your code used more than 256 MiB of memory.");

  RunSignals pids = finished(1);
  pids.pids_exhausted = true;
  const Outcome too_many = decide(pids, queue_limits(), {});
  expect_failed(too_many, Verdict::PidsLimit);
  EXPECT_EQ(student_message(too_many), "Your code started too many processes (limit: 64).");

  RunSignals chatty = finished(0);
  chatty.stdout_truncated = true;
  const Outcome printed = decide(chatty, queue_limits(), {});
  expect_failed(printed, Verdict::OutputLimit);
  EXPECT_EQ(student_message(printed), "Your code printed more than 1 MiB.");

  RunSignals noisy = finished(0);
  noisy.stderr_truncated = true;
  const Outcome printed_errors = decide(noisy, queue_limits(), {});
  expect_failed(printed_errors, Verdict::OutputLimit);
  EXPECT_EQ(student_message(printed_errors), "Your code printed more than 512 KiB.");
  EXPECT_NE(printed_errors.staff_reason.find("stderr exceeded its 512 KiB cap"), std::string::npos);
}

TEST(GradingDecide, EngineSignalsTakePrecedenceInOrder) {
  RunSignals signals = finished(0);  // a valid result does not outweigh any engine signal
  signals.deadline_hit = signals.oom_killed = signals.pids_exhausted = signals.stdout_truncated = true;
  EXPECT_EQ(decide(signals, queue_limits(), {}).verdict, Verdict::Timeout);
  signals.deadline_hit = false;
  EXPECT_EQ(decide(signals, queue_limits(), {}).verdict, Verdict::OutOfMemory);
  signals.oom_killed = false;
  EXPECT_EQ(decide(signals, queue_limits(), {}).verdict, Verdict::PidsLimit);
  signals.pids_exhausted = false;
  EXPECT_EQ(decide(signals, queue_limits(), {}).verdict, Verdict::OutputLimit);
  signals.stdout_truncated = false;
  EXPECT_EQ(decide(signals, queue_limits(), {}).verdict, Verdict::Graded);
  signals.exit_code = 3;
  EXPECT_EQ(decide(signals, queue_limits(), {}).verdict, Verdict::GraderError);
  signals.exit_code.reset();
  EXPECT_EQ(decide(signals, queue_limits(), {}).verdict, Verdict::InfrastructureError);
}

TEST(GradingDecide, InvalidOutputKeepsTheReasonForStaffOnly) {
  const Outcome outcome = decide(finished(0, "Traceback: secret_answer = 42\n"), queue_limits(), {});
  expect_failed(outcome, Verdict::InvalidOutput);
  EXPECT_EQ(student_message(outcome),
            "There was a problem running your code (Staff debug: invalid grader output).");
  EXPECT_NE(outcome.staff_reason.find("stdout does not start with a JSON object"), std::string::npos);
}

TEST(GradingDecide, GraderFailureNeverShowsStderrToStudents) {
  const Outcome outcome =
      decide(finished(1, "", "Traceback ...\nAssertionError: answer is 42 SECRET"), queue_limits(), {});
  expect_failed(outcome, Verdict::GraderError);
  EXPECT_EQ(student_message(outcome), "There was a problem running your code (Staff debug: exit code 1).");
  EXPECT_EQ(render_html(outcome.result).find("SECRET"), std::string::npos);
  EXPECT_NE(outcome.staff_reason.find("exit code 1"), std::string::npos);
  EXPECT_NE(outcome.staff_reason.find("AssertionError: answer is 42 SECRET"), std::string::npos);
}

TEST(GradingDecide, NoVerdictQuotesStderrToStudents) {
  for (int variant = 0; variant < 6; ++variant) {
    RunSignals signals = finished(variant == 5 ? 0 : 1, variant == 5 ? "bad" : "", "SECRET stderr");
    signals.deadline_hit = variant == 0;
    signals.oom_killed = variant == 1;
    signals.pids_exhausted = variant == 2;
    signals.stderr_truncated = variant == 3;
    const Outcome outcome = decide(signals, queue_limits(), {});
    EXPECT_EQ(student_message(outcome).find("SECRET"), std::string::npos) << verdict_label(outcome.verdict);
    EXPECT_NE(outcome.staff_reason.find("SECRET stderr"), std::string::npos)
        << verdict_label(outcome.verdict);
  }
}

TEST(GradingDecide, StaffReasonQuotesOnlyTheEndOfALongStderr) {
  const std::string stderr_bytes = std::string(100 * 1024, 'x') + "\nValueError: the real cause";
  const Outcome outcome = decide(finished(2, "", stderr_bytes), queue_limits(), {});
  EXPECT_LT(outcome.staff_reason.size(), 3000u);
  EXPECT_TRUE(outcome.staff_reason.ends_with("ValueError: the real cause"));
  EXPECT_NE(outcome.staff_reason.find("stderr (excerpt)"), std::string::npos);
}

TEST(GradingDecide, MissingExitCodeIsAnInfrastructureError) {
  RunSignals signals;
  const Outcome outcome = decide(signals, queue_limits(), {});
  expect_failed(outcome, Verdict::InfrastructureError);
  EXPECT_NE(student_message(outcome).find("Please try again later"), std::string::npos);
}

TEST(GradingDecide, OverridesReplaceTheMessageAndFillInTheLimit) {
  RunSignals signals = finished(137);
  signals.deadline_hit = true;
  const MessageOverrides overrides = {{"timeout", "Too slow: {limit} max ({limit})."},
                                      {"out_of_memory", "Memory! {limit}"}};
  EXPECT_EQ(student_message(decide(signals, queue_limits(), overrides)), "Too slow: 20 s max (20 s).");
  signals.deadline_hit = false;
  signals.oom_killed = true;
  EXPECT_EQ(student_message(decide(signals, queue_limits(), overrides)), "Memory! 256 MiB");
  signals.oom_killed = false;
  signals.pids_exhausted = true;
  EXPECT_EQ(student_message(decide(signals, queue_limits(), overrides)),
            "Your code started too many processes (limit: 64).");
  EXPECT_EQ(student_message(decide(finished(9), queue_limits(), {{"grader_error", "Broken{limit}."}})),
            "Broken.");
  EXPECT_EQ(student_message(decide(finished(9), queue_limits(), {{"grader_error", ""}})),
            "There was a problem running your code (Staff debug: exit code 9).");
}

TEST(GradingDecide, UnknownLimitsGiveLimitFreeWording) {
  RunSignals signals = finished(137);
  signals.deadline_hit = true;
  EXPECT_EQ(student_message(decide(signals, LimitsForMessages{}, {})), "Your code did not finish in time.");
  signals.deadline_hit = false;
  signals.oom_killed = true;
  EXPECT_EQ(student_message(decide(signals, LimitsForMessages{}, {})), "Your code used too much memory.");
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

  const Outcome custom =
      failure_outcome(Verdict::SubmissionTooLarge, queue_limits(), {{"submission_too_large", "Max {limit}."}}, "x");
  EXPECT_EQ(student_message(custom), "Max 1 MiB.");
  EXPECT_NE(render_html(custom.result).find("<li><pre>Max 1 MiB.</pre></li>"), std::string::npos);
}

TEST(GradingDecide, FailureMessagesRenderAsErrors) {
  RunSignals signals = finished(137);
  signals.oom_killed = true;
  const std::string html =
      render_html(decide(signals, queue_limits(), {{"out_of_memory", "<b>{limit}</b> & more"}}).result);
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

}  // namespace
}  // namespace xqw::grading
