// Uploaded files: pre-check, locate, fetch within the caps, retry what may pass, word what did not.
#include "watcher/files.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <variant>

namespace xqw::watcher {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kFetchAttempts = 3;
constexpr milliseconds kFirstFetchBackoff{1000};

FilesOutcome refused(grading::GradeReport report) {
  return {.status = FilesOutcome::Status::Refused, .refusal = std::move(report)};
}

FilesOutcome unavailable(const grading::QueueGrading& grading, grading::FileProblem problem,
                         const std::string& name, std::string reason) {
  return refused(
      grading::refusal_report(grading::file_unavailable(problem, name, grading.messages, std::move(reason))));
}

}  // namespace

xqueue::FileSource file_source(const config::QueueConfig& queue) {
  return {.base_url = queue.files.base_url.empty() ? queue.server.url : queue.files.base_url,
          .allowed_hosts = queue.files.allowed_hosts};
}

FilesOutcome attach_files(xqueue::Client& client, const config::QueueConfig& queue,
                          const grading::QueueGrading& grading, const grading::ImageContract& contract,
                          grading::GradeJob& job, const nlohmann::json& listed, StopSignal& stop,
                          Clock::time_point give_up_at, const std::string& who) {
  const auto refs = xqueue::file_refs(listed);
  auto checked = grading::precheck(grading, contract, job, refs.size());
  if (!checked) return refused(std::move(checked.error()));
  if (refs.empty()) return {};

  const auto source = file_source(queue);
  std::vector<std::string> urls;
  for (const auto& ref : refs) {
    auto location = xqueue::locate_file(source, ref.url);
    if (!location) {
      return unavailable(grading, grading::FileProblem::NotAllowed, ref.name,
                         "file '" + ref.name + "': " + location.error().reason);
    }
    urls.push_back(std::move(*location));
  }

  const auto& caps = grading.files;
  const auto started = Clock::now();
  std::int64_t total = 0;
  std::vector<grading::SubmittedFile> files;
  for (std::size_t i = 0; i < refs.size(); ++i) {
    const auto& name = refs[i].name;
    const std::int64_t left = caps.max_total_bytes - total;
    const std::int64_t cap = std::min(caps.max_size_bytes, left);
    milliseconds backoff = kFirstFetchBackoff;
    for (int attempt = 1;; ++attempt) {
      try {
        auto fetched = client.fetch_file(urls[i], cap, caps.timeout, source);
        if (fetched.over_limit) {
          const bool each = caps.max_size_bytes <= left;
          const auto reason = fmt::format("file '{}' ({}) is over {} bytes (files.{})", name, urls[i], cap,
                                          each ? "max_size" : "max_total");
          return refused(grading::refusal_report(grading::files_too_large(
              each ? grading::FileCap::Size : grading::FileCap::Total,
              each ? caps.max_size_bytes : caps.max_total_bytes, static_cast<std::int64_t>(refs.size()), name,
              grading.messages, reason)));
        }
        total += static_cast<std::int64_t>(fetched.bytes.size());
        files.push_back({.name = name, .bytes = std::move(fetched.bytes)});
        break;
      } catch (const xqueue::FileFetchError& error) {
        if (!error.transient()) {
          const bool redirect = error.status() >= 300 && error.status() < 400;
          return unavailable(grading,
                             redirect ? grading::FileProblem::NotAllowed : grading::FileProblem::Missing,
                             name, "file '" + name + "': " + error.what());
        }
        spdlog::warn("{} submission {}: attempt {} to fetch file '{}' failed: {}", who, job.submission_id,
                     attempt, name, error.what());
        if (attempt >= kFetchAttempts || Clock::now() + backoff > give_up_at || stop.requested()) {
          if (stop.requested()) return {.status = FilesOutcome::Status::Stopped};
          return unavailable(
              grading, grading::FileProblem::Unreachable, name,
              fmt::format("file '{}': still failing after {} attempts: {}", name, attempt, error.what()));
        }
        if (stop.wait_for(backoff)) return {.status = FilesOutcome::Status::Stopped};
        backoff *= 2;
      }
    }
  }
  spdlog::info("{} submission {}: fetched {} file(s), {} bytes, in {} ms", who, job.submission_id,
               files.size(), total, std::chrono::duration_cast<milliseconds>(Clock::now() - started).count());
  job.files = std::move(files);
  return {};
}

}  // namespace xqw::watcher
