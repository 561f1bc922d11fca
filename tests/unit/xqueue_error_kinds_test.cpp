// XQueue errors say their kind, and the watcher maps a kind to a metric outcome and a decision in one place.
#include <gtest/gtest.h>

#include "watcher/watcher.hpp"
#include "xqueue/xqueue.hpp"

namespace xqw::watcher {
namespace {

using observability::XQueueOutcome;
using xqueue::XQueueErrorKind;

TEST(XQueueErrorKinds, EverySubtypeSaysWhichItIs) {
  EXPECT_EQ(xqueue::XQueueUnreachable("x", true).kind(), XQueueErrorKind::Unreachable);
  EXPECT_EQ(xqueue::XQueueServerError("x", 502).kind(), XQueueErrorKind::ServerError);
  EXPECT_EQ(xqueue::XQueueAuthError("x").kind(), XQueueErrorKind::AuthFailed);
  EXPECT_EQ(xqueue::XQueuePermissionDenied("x").kind(), XQueueErrorKind::Forbidden);
  EXPECT_EQ(xqueue::XQueueRejected("x", "Queue 'q' not found").kind(), XQueueErrorKind::Rejected);
  EXPECT_EQ(xqueue::MalformedReply("x").kind(), XQueueErrorKind::Malformed);
  EXPECT_EQ(xqueue::FileFetchError("x", false, 404).kind(), XQueueErrorKind::FileFetch);
  EXPECT_EQ(xqueue::to_string(XQueueErrorKind::AuthFailed), "auth_failed");
  EXPECT_EQ(xqueue::to_string(XQueueErrorKind::FileFetch), "file_fetch");
}

// The outcome labels the metrics had when each subtype was caught on its own.
TEST(XQueueErrorKinds, EachKindIsCountedUnderItsOwnOutcome) {
  EXPECT_EQ(xqueue_outcome(XQueueErrorKind::Unreachable), XQueueOutcome::Unreachable);
  EXPECT_EQ(xqueue_outcome(XQueueErrorKind::ServerError), XQueueOutcome::ServerError);
  EXPECT_EQ(xqueue_outcome(XQueueErrorKind::AuthFailed), XQueueOutcome::AuthFailed);
  EXPECT_EQ(xqueue_outcome(XQueueErrorKind::Forbidden), XQueueOutcome::Forbidden);
  EXPECT_EQ(xqueue_outcome(XQueueErrorKind::Rejected), XQueueOutcome::Rejected);
  EXPECT_EQ(xqueue_outcome(XQueueErrorKind::Malformed), XQueueOutcome::Malformed);
}

TEST(XQueueErrorKinds, OnlyALoginProblemOrNoReplyEndsTheSessionsLoggedInState) {
  EXPECT_TRUE(loses_login(XQueueErrorKind::AuthFailed));
  EXPECT_TRUE(loses_login(XQueueErrorKind::Forbidden));
  EXPECT_TRUE(loses_login(XQueueErrorKind::Unreachable));
  EXPECT_FALSE(loses_login(XQueueErrorKind::ServerError));
  EXPECT_FALSE(loses_login(XQueueErrorKind::Rejected));
  EXPECT_FALSE(loses_login(XQueueErrorKind::Malformed));
}

TEST(XQueueErrorKinds, APullFailureIsRetriedAsItsKindDeserves) {
  for (bool logged_in : {true, false}) {
    EXPECT_EQ(pull_failure(XQueueErrorKind::AuthFailed, logged_in), PullFailure::LogInLater);
    EXPECT_EQ(pull_failure(XQueueErrorKind::Forbidden, logged_in), PullFailure::BackOff);
  }
  for (auto kind : {XQueueErrorKind::ServerError, XQueueErrorKind::Rejected, XQueueErrorKind::Malformed}) {
    EXPECT_EQ(pull_failure(kind, true), PullFailure::PollAgain) << xqueue::to_string(kind);
  }
}

// docs/operators.md: login_poll_interval is the wait before logging in again; an unreachable server is
// not asked again at the (much shorter) poll_interval.
TEST(XQueueErrorKinds, AServerThatDoesNotAnswerOrLetUsInIsAskedAgainAtTheLoginPace) {
  for (bool logged_in : {true, false}) {
    EXPECT_EQ(pull_failure(XQueueErrorKind::Unreachable, logged_in), PullFailure::LogInLater) << logged_in;
  }
  for (auto kind : {XQueueErrorKind::ServerError, XQueueErrorKind::Rejected, XQueueErrorKind::Malformed}) {
    EXPECT_EQ(pull_failure(kind, false), PullFailure::LogInLater)
        << xqueue::to_string(kind) << ": the login itself failed";
  }
}

}  // namespace
}  // namespace xqw::watcher
