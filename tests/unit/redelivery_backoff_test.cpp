// Redelivery's schedule (docs/reliability.md: capped exponential backoff, 1 s to 60 s): a pure function.
#include <gtest/gtest.h>

#include <vector>

#include "watcher/watcher.hpp"

namespace xqw::watcher {
namespace {

using std::chrono::milliseconds;

TEST(RedeliveryBackoff, StartsAtOneSecondAndDoublesUpToSixty) {
  std::vector<long> waits;
  milliseconds wait{0};
  for (int failure = 0; failure < 9; ++failure) {
    wait = redelivery_backoff(wait);
    waits.push_back(wait.count());
  }
  EXPECT_EQ(waits, (std::vector<long>{1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000}));
}

TEST(RedeliveryBackoff, NeverExceedsTheCapWhateverItIsGiven) {
  EXPECT_EQ(redelivery_backoff(milliseconds{59000}), milliseconds{60000});
  EXPECT_EQ(redelivery_backoff(milliseconds{60000}), milliseconds{60000});
  EXPECT_EQ(redelivery_backoff(milliseconds{3600000}), milliseconds{60000});
}

// A settled entry's wait is forgotten (Redelivery::pass erases it): its next failure starts from zero.
TEST(RedeliveryBackoff, AFreshStartWaitsOneSecondAgain) {
  EXPECT_EQ(redelivery_backoff(milliseconds{0}), milliseconds{1000});
  EXPECT_EQ(redelivery_backoff(milliseconds{-5}), milliseconds{1000});
}

}  // namespace
}  // namespace xqw::watcher
