// Redelivery: the journal's background loop: results XQueue has not acknowledged are posted again with
// capped exponential backoff, and submissions an earlier run journalled but never graded are finished.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "watcher/watcher.hpp"

namespace xqw::watcher {
namespace {
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
constexpr milliseconds kPassInterval{1000};
constexpr milliseconds kFirstBackoff{1000};
constexpr milliseconds kMaxBackoff{60000};
}  // namespace

milliseconds redelivery_backoff(milliseconds previous) {
  if (previous.count() <= 0) return kFirstBackoff;
  return std::min(previous * 2, kMaxBackoff);
}

Redelivery::Redelivery(const Shared& shared, const std::vector<config::QueueConfig>& queues)
    : shared_(shared), queues_(queues) {
  thread_ = std::thread([this] {
    while (!shared_.stop.wait_for(kPassInterval)) {
      try {
        pass();
      } catch (const std::exception& error) {
        spdlog::error("[redelivery] pass failed: {}", error.what());
      }
    }
  });
}

Redelivery::~Redelivery() {
  if (thread_.joinable()) thread_.join();
}

QueueSession* Redelivery::session_for(const std::string& queue) {
  if (auto it = sessions_.find(queue); it != sessions_.end()) return it->second.get();
  for (const auto& candidate : queues_) {
    if (candidate.name == queue) {
      auto session = std::make_unique<QueueSession>(shared_, candidate, "[" + queue + "#redelivery]", false);
      return sessions_.emplace(queue, std::move(session)).first->second.get();
    }
  }
  return nullptr;
}

void Redelivery::pass() {
  const auto now = Clock::now();
  for (auto& entry : shared_.journal.entries()) {
    auto& [next_try, backoff] = backoff_[entry.id];
    if (now < next_try) continue;
    auto* session = session_for(entry.queue);
    if (!session) {
      spdlog::error(
          "[redelivery] journal entry {} is for queue {}, which is no longer configured; dropped "
          "(XQueue re-serves it)",
          entry.id, entry.queue);
      shared_.journal.remove(entry.id);
      continue;
    }
    if (!shared_.journal.claim(entry.id)) continue;  // a worker is on it
    // The listing may predate a worker settling this entry and releasing it: only what is still on
    // disk now, under our claim, is ours to deliver (else a result would be posted twice).
    auto current = shared_.journal.find(entry.id);
    if (!current) {
      shared_.journal.release(entry.id);
      backoff_.erase(entry.id);
      continue;
    }
    entry = std::move(*current);
    bool settled = false;
    if (entry.result) {
      settled = session->deliver(entry, 1);
      shared_.journal.release(entry.id);
    } else {
      if (!shared_.engine.up()) {
        shared_.journal.release(entry.id);
        continue;
      }
      spdlog::info("[redelivery] finishing submission {} journalled by an earlier run", entry.submission_id);
      session->handle(entry);
      settled = true;  // handle() settles or re-journals it by itself
    }
    if (settled) {
      backoff_.erase(entry.id);
    } else {
      backoff = redelivery_backoff(backoff);
      next_try = now + backoff;
    }
  }
}

}  // namespace xqw::watcher
