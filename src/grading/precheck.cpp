#include "grading/precheck.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "grading/utf8_text.hpp"

namespace xqw::grading {

std::int64_t submission_limit(const config::Limits& limits, const ImageContract& contract) {
  if (contract.kind != config::ContractKind::Upstream) return limits.submission_bytes;
  return std::min(limits.submission_bytes, kMaxEnvSubmissionBytes);
}

LimitsForMessages message_limits(const QueueGrading& queue, const ImageContract& contract) {
  const auto& limits = queue.limits;
  return LimitsForMessages{.memory_bytes = limits.memory_bytes,
                           .timeout = limits.timeout,
                           .stdout_bytes = limits.stdout_bytes,
                           .stderr_bytes = limits.stderr_bytes,
                           .pids = limits.pids,
                           .submission_bytes = submission_limit(limits, contract)};
}

std::optional<SubmissionRefusal> refuse_submission(const GradeJob& job, const config::Limits& limits,
                                                   const ImageContract& contract) {
  const auto size = static_cast<std::int64_t>(job.student_response.size());
  if (const auto limit = submission_limit(limits, contract); size > limit) {
    const bool env_bound = limit < limits.submission_bytes;
    return SubmissionRefusal{Verdict::SubmissionTooLarge,
                             "submission of " + std::to_string(size) +
                                 " bytes is over the queue's limit of " + std::to_string(limit) +
                                 (env_bound ? " (what fits in the " + std::string(kSubmissionEnv) +
                                                  " environment variable of the upstream contract)"
                                            : "")};
  }
  if (contract.kind != config::ContractKind::Upstream) return std::nullopt;
  // An environment variable is a C string, and the engine's API takes JSON text.
  if (job.student_response.find('\0') != std::string::npos) {
    return SubmissionRefusal{Verdict::GraderError, "the submission holds a NUL byte, which " +
                                                       std::string(kSubmissionEnv) + " cannot carry"};
  }
  if (first_invalid_utf8(job.student_response)) {
    return SubmissionRefusal{Verdict::GraderError, "the submission is not valid UTF-8, which " +
                                                       std::string(kSubmissionEnv) + " cannot carry"};
  }
  return std::nullopt;
}

namespace {

// The files refusal, if the attached files (or the listed count) go over the queue's caps.
std::optional<GradeReport> refuse_files(const QueueGrading& queue, const GradeJob& job,
                                        std::size_t listed_files) {
  const auto& caps = queue.files;
  const auto files = static_cast<std::int64_t>(std::max(listed_files, job.files.size()));
  if (files > caps.max_count) {
    return refusal_report(
        files_too_large(FileCap::Count, caps.max_count, files, "", queue.messages,
                        fmt::format("{} uploaded files; files.max_count is {}", files, caps.max_count)));
  }
  std::int64_t total = 0;
  for (const auto& file : job.files) {
    const auto size = static_cast<std::int64_t>(file.bytes.size());
    if (size > caps.max_size_bytes) {
      return refusal_report(
          files_too_large(FileCap::Size, caps.max_size_bytes, files, file.name, queue.messages,
                          fmt::format("uploaded file '{}' has {} bytes; files.max_size is {}", file.name,
                                      size, caps.max_size_bytes)));
    }
    total += size;
  }
  if (total > caps.max_total_bytes) {
    return refusal_report(files_too_large(
        FileCap::Total, caps.max_total_bytes, files, "", queue.messages,
        fmt::format("uploaded files total {} bytes; files.max_total is {}", total, caps.max_total_bytes)));
  }
  return std::nullopt;
}

}  // namespace

std::expected<ResolvedGrader, GradeReport> precheck(const QueueGrading& queue, const ImageContract& contract,
                                                    const GradeJob& job, std::size_t listed_files) {
  const auto limits = message_limits(queue, contract);
  auto refused = [&](Verdict verdict, std::string reason) {
    return std::unexpected(
        refusal_report(failure_outcome(verdict, limits, queue.messages, std::move(reason))));
  };
  if (auto refusal = refuse_submission(job, queue.limits, contract)) {
    return refused(refusal->verdict, std::move(refusal->reason));
  }
  if (!job.grader) return refused(Verdict::GraderNotFound, "grader_payload has no \"grader\" path");
  auto resolved = resolve_grader(queue.grader_root, *job.grader);
  if (!resolved) return refused(Verdict::GraderNotFound, resolved.error().reason);
  if (auto files_refusal = refuse_files(queue, job, listed_files))
    return std::unexpected(std::move(*files_refusal));
  return std::move(*resolved);
}

}  // namespace xqw::grading
