// grading/report: what grading one submission yields — the outcome, the HTML to post, what staff may
// read and the time each phase took — and the one failure that is never the student's.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>

#include "grading/verdict.hpp"

namespace xqw::grading {

struct PhaseTimes {
  std::chrono::microseconds prepare{0}, create{0}, start{0}, run{0}, inspect{0}, remove{0}, total{0};
};

// How a container started before its job was told that the job is there.
enum class JobDelivery {
  None,    // not told: the container was started with its job, or the waiting one had ended
  Fifo,    // a byte into the job directory's FIFO: no engine call
  Signal,  // the image's job signal through the engine (nobody read the FIFO: e.g. gVisor, an older image)
  // None needed: the container's supervisor had not yet opened its FIFO, and it looks for job.json right
  // after it does (the FIFO has reached this queue's containers before, so it will).
  JobFile,
};
std::string_view to_string(JobDelivery delivery);

struct GradeReport {
  Outcome outcome;   // verdict, score, student-facing result
  std::string html;  // the rendered msg to post
  std::string staff_stderr;
  std::string staff_stdout;  // what an upstream-contract grader printed before its result line
  PhaseTimes times;
  int exit_code = 0;
  std::string container_id;  // the container that ran it (for logs: one container per submission)
  JobDelivery delivery = JobDelivery::None;
};

// The report for an outcome decided without a container (html rendered), e.g. a refusal.
GradeReport refusal_report(Outcome outcome);

// The engine, the image or the job directory failed: not the student's fault, never posted as a zero.
class GradingUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace xqw::grading
