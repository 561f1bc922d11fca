// watcher: a submission's uploaded files (xqueue_files) fetched for grading. Grading's pre-check comes
// first, so nothing is fetched for a submission that is refused anyway; then every listed URL is located
// (resolved, host allowed) before any is fetched; then each is fetched within the queue's caps.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "grading/container_grader.hpp"
#include "watcher/watcher.hpp"

namespace xqw::watcher {

// Where a queue's files may come from: files.base_url, else its XQueue server's URL; files.allowed_hosts.
xqueue::FileSource file_source(const config::QueueConfig& queue);

struct FilesOutcome {
  enum class Status {
    Ready,    // job.files holds every listed file (or none were listed); grade it
    Refused,  // answer with `refusal` (a pre-check refusal or a file problem); nothing is run
    Stopped,  // stop was requested while waiting to try a file again; leave the submission journalled
  };
  Status status = Status::Ready;
  std::optional<grading::GradeReport> refusal;
};

// Attaches the files `listed` (a Submission's `files`) to `job`, or says why the submission is answered
// without running anything. A file whose fetch fails transiently (no reply, 5xx, 408, 429) is tried again
// after 1 s and 2 s while `give_up_at` allows, then answered as unreachable: a file store that stays down
// would otherwise have XQueue serve the submission again every minute, with the student told nothing.
// `who` prefixes log lines ("[queue#1]").
FilesOutcome attach_files(xqueue::Client& client, const config::QueueConfig& queue,
                          const grading::QueueGrading& grading, const grading::ImageContract& contract,
                          grading::GradeJob& job, const nlohmann::json& listed, StopSignal& stop,
                          std::chrono::steady_clock::time_point give_up_at, const std::string& who);

}  // namespace xqw::watcher
