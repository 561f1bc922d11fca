#include "watcher/journal.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>

namespace xqw::watcher {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Longer than the LMS's re-serve delay (5 minutes) plus a grading: a copy pulled before the post was
// answered has been seen by then.
constexpr std::chrono::minutes kSettledMemory{15};

void write_all(int fd, const std::string& bytes, const fs::path& path) {
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw JournalError("journal: cannot write " + path.string() + ": " + std::strerror(errno));
    written += static_cast<std::size_t>(n);
  }
}

void fsync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

std::string entry_id(const xqueue::Submission& submission) {
  // The key makes a re-served submission (new key) a separate entry from the stale one.
  const auto key_hash = std::hash<std::string>{}(submission.submission_key);
  std::string queue;
  for (char c : submission.queue) queue.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return queue.substr(0, 64) + "-" + std::to_string(submission.submission_id) + "-" +
         std::to_string(key_hash % 1000000007);
}

json to_json(const JournalEntry& entry) {
  json out = {
      {"queue", entry.queue},         {"raw_header", entry.raw_header},       {"raw_body", entry.raw_body},
      {"raw_files", entry.raw_files}, {"submission_id", entry.submission_id}, {"attempts", entry.attempts}};
  if (entry.result) {
    out["result"] = {
        {"correct", entry.result->correct}, {"score", entry.result->score}, {"msg", entry.result->msg}};
  }
  return out;
}

JournalEntry from_json(const std::string& id, const json& in) {
  JournalEntry entry;
  entry.id = id;
  entry.queue = in.at("queue").get<std::string>();
  entry.raw_header = in.at("raw_header").get<std::string>();
  entry.raw_body = in.at("raw_body").get<std::string>();
  entry.raw_files = in.value("raw_files", "");
  entry.submission_id = in.at("submission_id").get<std::int64_t>();
  entry.attempts = in.value("attempts", 0);
  if (in.contains("result")) {
    const auto& result = in["result"];
    entry.result = xqueue::GradeReply{.correct = result.at("correct").get<bool>(),
                                      .score = result.at("score").get<double>(),
                                      .msg = result.at("msg").get<std::string>()};
  }
  return entry;
}

}  // namespace

Journal::Journal(fs::path dir) : dir_(std::move(dir)) {
  std::error_code error;
  fs::create_directories(dir_, error);
  if (error) throw JournalError("journal: cannot create " + dir_.string() + ": " + error.message());
  ::chmod(dir_.c_str(), 0700);  // it holds student code and results
  if (::access(dir_.c_str(), W_OK) != 0) throw JournalError("journal: " + dir_.string() + " is not writable");
}

void Journal::write(const JournalEntry& entry) const {
  const fs::path final_path = dir_ / (entry.id + ".json");
  const fs::path temporary = dir_ / ("." + entry.id + ".tmp");
  const std::string bytes = to_json(entry).dump(-1, ' ', false, json::error_handler_t::replace);
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    throw JournalError("journal: cannot create " + temporary.string() + ": " + std::strerror(errno));
  try {
    write_all(fd, bytes, temporary);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    throw JournalError("journal: cannot fsync " + temporary.string() + ": " + std::strerror(errno));
  }
  ::close(fd);
  if (::rename(temporary.c_str(), final_path.c_str()) != 0) {
    throw JournalError("journal: cannot rename into " + final_path.string() + ": " + std::strerror(errno));
  }
  fsync_directory(dir_);
}

std::optional<JournalEntry> Journal::record_received(const xqueue::Submission& submission) {
  JournalEntry entry{.id = entry_id(submission),
                     .queue = submission.queue,
                     .raw_header = submission.raw_header,
                     .raw_body = submission.raw_body,
                     .raw_files = submission.files.dump(),
                     .submission_id = submission.submission_id};
  if (recently_settled(entry.id) || !claim(entry.id)) return std::nullopt;
  std::error_code error;
  if (fs::exists(dir_ / (entry.id + ".json"), error)) {
    release(entry.id);
    return std::nullopt;
  }
  try {
    write(entry);
  } catch (...) {
    release(entry.id);
    throw;
  }
  return entry;
}

void Journal::record_result(JournalEntry& entry, const xqueue::GradeReply& result) {
  entry.result = result;
  write(entry);
}

void Journal::record_attempt(JournalEntry& entry) {
  ++entry.attempts;
  write(entry);
}

void Journal::remove(const std::string& id) {
  std::error_code error;
  fs::remove(dir_ / (id + ".json"), error);
  if (error) spdlog::error("journal: cannot remove entry {}: {}", id, error.message());
  fsync_directory(dir_);
}

void Journal::settle(const std::string& id) {
  remove(id);
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(settled_, [&](const auto& item) { return now - item.second > kSettledMemory; });
  settled_[id] = now;
}

bool Journal::recently_settled(const std::string& id) const {
  std::lock_guard lock(mutex_);
  const auto it = settled_.find(id);
  return it != settled_.end() && std::chrono::steady_clock::now() - it->second <= kSettledMemory;
}

std::vector<JournalEntry> Journal::entries() const {
  std::vector<std::pair<fs::file_time_type, JournalEntry>> found;
  std::error_code error;
  for (const auto& file : fs::directory_iterator(dir_, error)) {
    const auto& path = file.path();
    if (path.extension() != ".json" || path.filename().string().starts_with(".")) continue;
    try {
      std::ifstream in(path);
      const auto entry = from_json(path.stem().string(), json::parse(in));
      found.emplace_back(file.last_write_time(error), entry);
    } catch (const std::exception& failure) {
      spdlog::error("journal: entry {} is unreadable ({}); set aside as .corrupt", path.string(),
                    failure.what());
      fs::rename(path, fs::path(path).replace_extension(".corrupt"), error);
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<JournalEntry> out;
  for (auto& [time, entry] : found) out.push_back(std::move(entry));
  return out;
}

std::optional<JournalEntry> Journal::find(const std::string& id) const {
  std::ifstream in(dir_ / (id + ".json"));
  if (!in) return std::nullopt;
  try {
    return from_json(id, json::parse(in));
  } catch (const std::exception& failure) {
    spdlog::error("journal: entry {} is unreadable: {}", id, failure.what());
    return std::nullopt;
  }
}

std::size_t Journal::backlog() const {
  std::size_t count = 0;
  std::error_code error;
  for (const auto& file : fs::directory_iterator(dir_, error)) {
    if (file.path().extension() == ".json" && !file.path().filename().string().starts_with(".")) ++count;
  }
  return count;
}

bool Journal::claim(const std::string& id) {
  std::lock_guard lock(mutex_);
  return claimed_.insert(id).second;
}

void Journal::release(const std::string& id) {
  std::lock_guard lock(mutex_);
  claimed_.erase(id);
}

xqueue::Submission Journal::submission_of(const JournalEntry& entry) {
  const json content = {{"xqueue_header", entry.raw_header},
                        {"xqueue_body", entry.raw_body},
                        {"xqueue_files", entry.raw_files}};
  auto submission =
      xqueue::submission_from_reply(xqueue::Reply{.return_code = 0, .content = content}, entry.queue,
                                    "journal entry " + entry.id, xqueue::GraderPayloadPolicy::RequireJson);
  if (!submission) throw JournalError("journal entry " + entry.id + " holds no submission");
  return *submission;
}

}  // namespace xqw::watcher
