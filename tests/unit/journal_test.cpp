// The journal: entries survive as written, claims keep two loops off one entry, settled entries vanish.
#include "watcher/journal.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

namespace xqw::watcher {
namespace {
namespace fs = std::filesystem;

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("xqw-journal-" + std::to_string(std::random_device{}()));
  }
  void TearDown() override { fs::remove_all(dir_); }

  static xqueue::Submission submission(std::int64_t id) {
    xqueue::Submission s;
    s.queue = "q 1";
    s.submission_id = id;
    s.submission_key = "key-" + std::to_string(id);
    s.raw_header = R"({"submission_id":)" + std::to_string(id) + R"(,"submission_key":"key"})";
    s.raw_body = R"js({"student_response":"print(1)","grader_payload":"{\"grader\":\"a/grader.py\"}"})js";
    return s;
  }
  fs::path dir_;
};

TEST_F(JournalTest, RecordsReceivedAndGradedEntriesDurably) {
  Journal journal(dir_);
  auto entry = *journal.record_received(submission(7));
  EXPECT_FALSE(journal.claim(entry.id)) << "a new entry comes back claimed";
  journal.record_result(entry, {.correct = true, .score = 1, .msg = "<p>ok</p>"});
  journal.release(entry.id);

  Journal reopened(dir_);  // as after a restart
  const auto entries = reopened.entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].submission_id, 7);
  EXPECT_EQ(entries[0].raw_header, submission(7).raw_header);
  ASSERT_TRUE(entries[0].result.has_value());
  EXPECT_EQ(entries[0].result->msg, "<p>ok</p>");
  EXPECT_EQ(Journal::submission_of(entries[0]).student_response, "print(1)");
  EXPECT_EQ(reopened.backlog(), 1u);
}

TEST_F(JournalTest, ASettledEntryIsGoneForWhoeverListedItBefore) {
  Journal journal(dir_);
  auto entry = *journal.record_received(submission(8));
  const auto stale_listing = journal.entries();  // a redelivery pass reads the directory...
  journal.remove(entry.id);                      // ...the worker settles the entry...
  journal.release(entry.id);
  ASSERT_EQ(stale_listing.size(), 1u);
  EXPECT_TRUE(journal.claim(stale_listing[0].id));  // ...and the pass claims it afterwards:
  EXPECT_FALSE(journal.find(stale_listing[0].id).has_value()) << "it must not be delivered again";
  EXPECT_EQ(journal.backlog(), 0u);
}

TEST_F(JournalTest, ResubmissionsWithANewKeyAreSeparateEntries) {
  Journal journal(dir_);
  auto first = journal.record_received(submission(9));
  auto again = submission(9);
  again.submission_key = "another-key";
  auto second = journal.record_received(again);
  ASSERT_TRUE(first && second);
  EXPECT_NE(first->id, second->id);
  EXPECT_EQ(journal.backlog(), 2u);
}

// The LMS serves a stale pulled submission again with the same key: one entry, graded and posted once.
TEST_F(JournalTest, TheSameKeyServedAgainIsRefusedWhileInHandOrJournalled) {
  Journal journal(dir_);
  auto first = journal.record_received(submission(10));
  ASSERT_TRUE(first);
  EXPECT_FALSE(journal.record_received(submission(10))) << "claimed by the first worker";
  journal.record_result(*first, {.correct = true, .score = 1, .msg = ""});
  journal.release(first->id);
  EXPECT_FALSE(journal.record_received(submission(10))) << "journalled, waiting for redelivery";
  EXPECT_TRUE(journal.claim(first->id)) << "a refused record must not leave its claim behind";
  journal.release(first->id);
  journal.remove(first->id);
  EXPECT_TRUE(journal.record_received(submission(10))) << "removed unanswered: XQueue serves it again";
}

TEST_F(JournalTest, ACopyPulledJustBeforeThePostWasAnsweredIsNotGradedAgain) {
  Journal journal(dir_);
  auto first = journal.record_received(submission(11));
  ASSERT_TRUE(first);
  journal.settle(first->id);
  journal.release(first->id);
  EXPECT_EQ(journal.backlog(), 0u);
  EXPECT_FALSE(journal.record_received(submission(11))) << "settled moments ago";
  auto renewed = submission(11);
  renewed.submission_key = "new-key";
  EXPECT_TRUE(journal.record_received(renewed)) << "a new key is a new job";
}

TEST_F(JournalTest, UnreadableEntriesAreSetAside) {
  Journal journal(dir_);
  std::ofstream(dir_ / "broken.json") << "{not json";
  EXPECT_TRUE(journal.entries().empty());
  EXPECT_TRUE(fs::exists(dir_ / "broken.corrupt"));
}

}  // namespace
}  // namespace xqw::watcher
