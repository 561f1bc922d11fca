#include "grading/job.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <random>
#include <set>
#include <system_error>

#include "text/text.hpp"

using xqw::text::ascii_lower;

namespace xqw::grading {
namespace fs = std::filesystem;

namespace {

bool is_within(const fs::path& root, const fs::path& candidate) {
  auto root_it = root.begin();
  auto it = candidate.begin();
  for (; root_it != root.end(); ++root_it, ++it) {
    if (root_it->empty()) continue;  // trailing separator
    if (it == candidate.end() || *it != *root_it) return false;
  }
  return true;
}

// Writes `bytes` to a new file (0644: the container's user reads it without extra capabilities).
void write_file(const fs::path& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) throw JobDirectoryError("cannot create " + path.string() + ": " + std::strerror(errno));
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string reason = std::strerror(errno);
      ::close(fd);
      throw JobDirectoryError("cannot write " + path.string() + ": " + reason);
    }
    written += static_cast<std::size_t>(n);
  }
  ::fchmod(fd, 0644);  // umask must not make it unreadable for the container
  ::close(fd);
}

std::string safe_name(const std::string& text, std::size_t max) {
  std::string out;
  for (char c : text.substr(0, max)) out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return out;
}

// The extension kept when a name is cut: ".py", ".tar.gz" is ".gz"; none when it is long or the whole name.
std::string_view short_extension(std::string_view name) {
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || name.size() - dot > 16) return {};
  return name.substr(dot);
}

std::string safe_file_name(std::string_view original) {
  std::string name;
  for (std::size_t i = 0; i < original.size(); ++i) {
    const auto c = static_cast<unsigned char>(original[i]);
    if (std::isalnum(c) || c == '.' || c == '-' || c == '_') {
      name.push_back(static_cast<char>(c));
    } else if (c < 0x80 || (c & 0xC0) == 0xC0 || name.empty() || name.back() != '_') {
      name.push_back('_');  // one per character: continuation bytes of a UTF-8 sequence add none
    }
  }
  name.erase(0, name.find_first_not_of('.'));
  if (name.empty()) name = "file";
  if (name.size() > kMaxSafeNameBytes) {
    const std::string extension(short_extension(name));
    name = name.substr(0, kMaxSafeNameBytes - extension.size()) + extension;
  }
  return name;
}

}  // namespace

std::vector<std::string> safe_file_names(const std::vector<std::string>& originals) {
  std::vector<std::string> names;
  std::set<std::string> taken;  // lower case: unique on case-insensitive file systems too
  for (const auto& original : originals) {
    std::string name = safe_file_name(original);
    if (taken.count(ascii_lower(name))) {
      const std::string extension(short_extension(name));
      const std::string stem = name.substr(0, name.size() - extension.size());
      for (int n = 2;; ++n) {
        const std::string suffix = "-" + std::to_string(n);
        std::string candidate =
            stem.substr(0, kMaxSafeNameBytes - extension.size() - suffix.size()) + suffix + extension;
        if (!taken.count(ascii_lower(candidate))) {
          name = std::move(candidate);
          break;
        }
      }
    }
    taken.insert(ascii_lower(name));
    names.push_back(std::move(name));
  }
  return names;
}

nlohmann::json files_listing(const std::vector<SubmittedFile>& files) {
  std::vector<std::string> originals;
  for (const auto& file : files) originals.push_back(file.name);
  const auto names = safe_file_names(originals);
  nlohmann::json listing = nlohmann::json::array();
  for (std::size_t i = 0; i < files.size(); ++i) {
    listing.push_back({{"name", files[i].name},
                       {"path", std::string(kFilesDir) + "/" + names[i]},
                       {"size", files[i].bytes.size()}});
  }
  return listing;
}

std::string job_directory_name(const std::string& watcher_id, const std::string& submission_id) {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  return safe_name(watcher_id, 64) + "-job-" + safe_name(submission_id, 32) + "-" + std::to_string(random());
}

int remove_stale_job_directories(const fs::path& work_dir, const std::string& watcher_id) {
  const std::string prefix = safe_name(watcher_id, 64) + "-job-";
  int removed = 0;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(work_dir, error)) {
    if (entry.path().filename().string().starts_with(prefix)) {
      fs::remove_all(entry.path(), error);
      ++removed;
    }
  }
  return removed;
}

std::expected<ResolvedGrader, GraderPathError> resolve_grader(const fs::path& grader_root,
                                                              const std::string& relative) {
  auto refused = [](std::string reason) { return std::unexpected(GraderPathError{std::move(reason)}); };
  if (relative.empty()) return refused("the grader_payload names an empty grader path");
  if (relative.find('\0') != std::string::npos) return refused("the grader path contains a NUL byte");
  const fs::path requested(relative);
  for (const auto& part : requested) {
    if (part == "..") return refused("grader path " + relative + " contains '..'");
  }
  std::error_code error;
  const fs::path root = fs::canonical(grader_root, error);
  if (error) return refused("grader_root " + grader_root.string() + " is not usable: " + error.message());
  const fs::path joined = requested.is_absolute() ? requested : root / requested;
  const fs::path resolved = fs::canonical(joined, error);
  if (error) return refused("grader " + relative + " not found under " + root.string());
  if (!is_within(root, resolved)) {
    return refused("grader " + relative + " resolves to " + resolved.string() + ", outside grader_root " +
                   root.string());
  }
  if (!fs::is_regular_file(resolved, error)) return refused("grader " + relative + " is not a regular file");
  return ResolvedGrader{resolved.parent_path(), resolved.filename().string()};
}

std::optional<std::string> grader_from_payload(const nlohmann::json& payload) {
  if (payload.is_string()) {
    auto decoded = nlohmann::json::parse(payload.get<std::string>(), nullptr, false);
    if (decoded.is_discarded() || decoded.is_string()) return std::nullopt;
    return grader_from_payload(decoded);
  }
  if (!payload.is_object() || !payload.contains("grader") || !payload["grader"].is_string())
    return std::nullopt;
  return payload["grader"].get<std::string>();
}

JobDirectory::JobDirectory(const fs::path& work_dir, const std::string& name) {
  std::error_code error;
  fs::create_directories(work_dir, error);
  if (error) throw JobDirectoryError("cannot create work_dir " + work_dir.string() + ": " + error.message());
  // The work directory keeps other local users out; the job directory itself must be readable by the
  // container's user (which has no CAP_DAC_OVERRIDE), and the image decides who inside may reach it.
  ::chmod(work_dir.c_str(), 0711);
  path_ = work_dir / name;
  if (::mkdir(path_.c_str(), 0755) != 0) {
    throw JobDirectoryError("cannot create job directory " + path_.string() + ": " + std::strerror(errno));
  }
  ::chmod(path_.c_str(), 0755);  // whatever the umask
}

JobDirectory::JobDirectory(const fs::path& work_dir, const std::string& name, const GradeJob& job,
                           double timeout_seconds, const std::string& grader)
    : JobDirectory(work_dir, name) {
  try {
    write(job, timeout_seconds, grader);
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
    throw;
  }
}

void JobDirectory::write(const GradeJob& job, double timeout_seconds, const std::string& grader) {
  const nlohmann::json files = files_listing(job.files);
  if (!job.files.empty()) {
    const auto dir = path_ / kFilesDir;
    if (::mkdir(dir.c_str(), 0755) != 0) {
      throw JobDirectoryError("cannot create " + dir.string() + ": " + std::strerror(errno));
    }
    ::chmod(dir.c_str(), 0755);  // whatever the umask
    for (std::size_t i = 0; i < job.files.size(); ++i) {
      write_file(path_ / files[i]["path"].get<std::string>(), job.files[i].bytes);
    }
  }
  write_file(path_ / "submission", job.student_response);
  const nlohmann::json description = {
      {"grader", grader},
      {"seed", job.seed},
      {"grader_payload", job.grader_payload},
      {"student_info", job.student_info},
      {"lang", job.lang},
      {"hide_output", job.hide_output},
      {"timeout_seconds", timeout_seconds},
      {"files", files},
  };
  // job.json appears whole, last: a container already waiting for its job takes it as the job's arrival.
  const auto staged = path_ / "job.json.tmp";
  write_file(staged, description.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  if (::rename(staged.c_str(), (path_ / "job.json").c_str()) != 0) {
    throw JobDirectoryError("cannot rename " + staged.string() + " to job.json: " + std::strerror(errno));
  }
}

bool JobDirectory::make_ready_fifo() {
  const auto fifo = path_ / kJobReadyFifo;
  // The container's root opens it without CAP_DAC_OVERRIDE: as its owner when the watcher runs as root,
  // else through the bits for others (read only: nobody else can wake the container).
  const mode_t mode = ::geteuid() == 0 ? 0600 : 0604;
  if (::mkfifo(fifo.c_str(), mode) != 0) return false;
  ::chmod(fifo.c_str(), mode);  // whatever the umask
  return true;
}

JobDirectory::Wake JobDirectory::wake_reader() const {
  // Non-blocking: opening for writing fails at once (ENXIO) when no reader holds the FIFO open.
  const int fd = ::open((path_ / kJobReadyFifo).c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return errno == ENXIO ? Wake::NoReader : Wake::Unavailable;
  const char wake = '\n';
  ssize_t written;
  do {
    written = ::write(fd, &wake, 1);
  } while (written < 0 && errno == EINTR);
  ::close(fd);
  return written == 1 ? Wake::Woken : Wake::Unavailable;
}

JobDirectory::~JobDirectory() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

}  // namespace xqw::grading
