// grading/precheck: the refusals decided before anything is fetched or run — a submission the contract
// cannot take, a grader that is not there, uploaded files over the queue's caps — and the limits quoted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>

#include "grading/contract.hpp"
#include "grading/job.hpp"
#include "grading/queue.hpp"
#include "grading/report.hpp"

namespace xqw::grading {

// The largest submission the queue grades: limits.submission, and under the upstream contract no more
// than fits in SUBMISSION_CODE.
std::int64_t submission_limit(const config::Limits& limits, const ImageContract& contract);
// The limits a student message may name: the queue's, with the submission limit this contract applies.
LimitsForMessages message_limits(const QueueGrading& queue, const ImageContract& contract);

// Why a submission cannot be passed to the container at all (pure): too large (the effective limit), or
// for the upstream contract bytes an environment variable cannot carry (NUL, invalid UTF-8).
struct SubmissionRefusal {
  Verdict verdict;
  std::string reason;  // staff-facing
};
std::optional<SubmissionRefusal> refuse_submission(const GradeJob& job, const config::Limits& limits,
                                                   const ImageContract& contract);

// The refusals in this order: a response the contract cannot take (refuse_submission); no grader (job.grader
// unset), or one outside grader_root (GraderNotFound); more files than files.max_count (FilesTooLarge); and
// for the files already attached, one over files.max_size or all together over files.max_total
// (FilesTooLarge). `listed_files` is how many files the submission lists (the watcher asks before fetching
// any, when job.files is still empty). Looks the grader up under grader_root and changes nothing. Returns the
// grader to run, or the refusal's report (html rendered).
std::expected<ResolvedGrader, GradeReport> precheck(const QueueGrading& queue, const ImageContract& contract,
                                                    const GradeJob& job, std::size_t listed_files);

}  // namespace xqw::grading
