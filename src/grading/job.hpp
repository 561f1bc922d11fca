// grading: one submission → one locked-down container → a verdict and the student's HTML.
// This header: the plain job data, grader path resolution and the private per-job directory.
#pragma once

#include <cstdint>
#include <expected>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace xqw::grading {

// A file uploaded with the submission, as the watcher fetched it (grading never learns where from).
struct SubmittedFile {
  std::string name;  // the original file name as uploaded: untrusted, never used as a path
  std::string bytes;
};

// What the watcher hands to grading; nothing here knows XQueue or HTTP.
struct GradeJob {
  std::string queue;
  std::string submission_id;
  // The grader's path relative to the queue's grader_root, set once where the job is built (from the
  // grader_payload by the watcher, from --grader by `grade`); unset when the payload names none. Grading
  // reads it here, never from the payload.
  std::optional<std::string> grader;
  nlohmann::json grader_payload;  // decoded payload (object or string), passed on to job.json
  nlohmann::json student_info = nlohmann::json::object();
  std::string student_response;  // bytes exactly as received
  std::string lang = "en";
  bool hide_output = false;
  std::int64_t seed = 1;
  std::vector<SubmittedFile> files;  // uploaded files, in the order XQueue listed them
};

// Where the job directory keeps uploaded files, and the names it gives them (pure): each original name
// with every byte outside [A-Za-z0-9._-] replaced by '_' (one per UTF-8 character), leading dots dropped
// ("file" when nothing is left), cut to kMaxSafeNameBytes keeping a short extension, and made unique by
// "-2", "-3", ... before the extension (compared ignoring case). So no name holds a path separator, NUL or
// "..", and none starts with '.'. job.json keeps the original names.
inline constexpr std::string_view kFilesDir = "files";
// A FIFO in the job directory of a container started before its job: one byte written into it after
// job.json wakes the image's waiting supervisor without an engine call (images/README.md).
inline constexpr std::string_view kJobReadyFifo = "job-ready";
inline constexpr std::size_t kMaxSafeNameBytes = 100;
std::vector<std::string> safe_file_names(const std::vector<std::string>& originals);
// job.json's "files": [{"name": original, "path": "files/<safe name>", "size": bytes}, ...] (pure).
nlohmann::json files_listing(const std::vector<SubmittedFile>& files);

struct ResolvedGrader {
  std::filesystem::path problem_dir;  // canonical directory holding the grader (mounted read-only)
  std::string file_name;              // the grader's file name inside it
};

// A grader path refused or not found; `reason` is staff-facing (names the path and why).
struct GraderPathError {
  std::string reason;
};

// Resolves `relative` inside `grader_root`: refuses empty paths, `..`, absolute paths and symlinks
// that lead outside the root, and anything that is not a regular file.
std::expected<ResolvedGrader, GraderPathError> resolve_grader(const std::filesystem::path& grader_root,
                                                              const std::string& relative);

// The grader path a payload names: {"grader": "..."} (a JSON string holding that object also works).
// For whoever builds a GradeJob (GradeJob::grader); grading itself reads job.grader.
std::optional<std::string> grader_from_payload(const nlohmann::json& payload);

// A private directory for one job: `submission` and `job.json` inside, removed with the object.
class JobDirectory {
 public:
  // An empty directory, so a container can be created with it mounted before the job is known.
  JobDirectory(const std::filesystem::path& work_dir, const std::string& name);
  JobDirectory(const std::filesystem::path& work_dir, const std::string& name, const GradeJob& job,
               double timeout_seconds, const std::string& grader);
  // Writes the uploaded files under files/, `submission`, then `job.json` by rename (once). `grader` is the
  // grader's path as the container sees it inside its grader mount (job.grader is relative to the queue's
  // grader_root).
  void write(const GradeJob& job, double timeout_seconds, const std::string& grader);
  // Makes the kJobReadyFifo FIFO for the container's root to read: mode 0600 when the watcher runs as root,
  // 0604 otherwise. False when it cannot be made; the job signal then wakes the image.
  bool make_ready_fifo();
  // One byte into the FIFO. Woken: a reader held it open and so will wake. NoReader: the FIFO is there
  // and nobody holds it open (the supervisor has not opened it yet, or never will: an image or a runtime
  // such as gVisor that does not pass it through). Unavailable: no FIFO, or it cannot be opened.
  enum class Wake { Woken, NoReader, Unavailable };
  Wake wake_reader() const;
  JobDirectory(const JobDirectory&) = delete;
  JobDirectory& operator=(const JobDirectory&) = delete;
  ~JobDirectory();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A job directory's name: the watcher's id first, so a restart finds what its predecessor left.
std::string job_directory_name(const std::string& watcher_id, const std::string& submission_id);
// Removes job directories an earlier run of `watcher_id` left in `work_dir` (killed mid-job); returns how
// many.
int remove_stale_job_directories(const std::filesystem::path& work_dir, const std::string& watcher_id);

// The job directory could not be prepared (disk full, permissions): an infrastructure failure.
class JobDirectoryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace xqw::grading
