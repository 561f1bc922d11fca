// watcher: the on-disk journal that makes sure no pulled submission is lost: each is recorded before
// its container starts, its result before put_result, and the entry is deleted once XQueue acknowledges.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "xqueue/xqueue.hpp"

namespace xqw::watcher {

class JournalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct JournalEntry {
  std::string id;  // file name stem: unique per pulled submission (queue, id, key)
  std::string queue;
  std::string raw_header;
  std::string raw_body;
  std::string raw_files;
  std::int64_t submission_id = 0;
  std::optional<xqueue::GradeReply> result;  // set once graded; then only put_result is left
  int attempts = 0;                          // grading attempts that failed for infrastructure reasons
};

// A directory of JSON files, each written to a temporary name, fsynced and renamed into place, so a
// crash leaves either the old or the new entry, never half of one. Safe to share between threads.
class Journal {
 public:
  explicit Journal(std::filesystem::path dir);

  // Before grading: the submission as received; the new entry comes back claimed by the caller.
  // nullopt when this very submission (same queue, id and key) is already here, in a worker's hands or
  // waiting for redelivery: the LMS serves a stale pulled submission again with the same key, and it
  // must be graded and posted once.
  std::optional<JournalEntry> record_received(const xqueue::Submission& submission);
  // Before put_result: the result that will be posted (also after a restart).
  void record_result(JournalEntry& entry, const xqueue::GradeReply& result);
  void record_attempt(JournalEntry& entry);
  // Removes an entry (e.g. left for XQueue to serve again).
  void remove(const std::string& id);
  // XQueue answered the post (acknowledged, or refused it for good): removed, and remembered for a while
  // so that a copy pulled just before the answer is not graded again.
  void settle(const std::string& id);
  // Every entry on disk, oldest first; unreadable files are set aside as *.corrupt and skipped.
  std::vector<JournalEntry> entries() const;
  // The entry as it is on disk now; nullopt once it is settled (removed).
  std::optional<JournalEntry> find(const std::string& id) const;
  std::size_t backlog() const;

  // An entry a worker is handling right now is not redelivered by anyone else.
  bool claim(const std::string& id);
  void release(const std::string& id);

  // The submission an entry holds, as XQueue delivered it.
  static xqueue::Submission submission_of(const JournalEntry& entry);

 private:
  void write(const JournalEntry& entry) const;
  bool recently_settled(const std::string& id) const;
  std::filesystem::path dir_;
  mutable std::mutex mutex_;
  std::set<std::string> claimed_;
  std::map<std::string, std::chrono::steady_clock::time_point> settled_;  // id -> when; pruned as it goes
};

}  // namespace xqw::watcher
