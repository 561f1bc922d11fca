#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "observability/health.hpp"

namespace xqw::observability {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// A clock the test moves by hand.
struct FakeClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  Health::Clock function() {
    return [this] { return now; };
  }
};

TEST(Liveness, AliveWithNoLoops) {
  FakeClock clock;
  Health health(clock.function());
  EXPECT_TRUE(health.liveness().ok);
  EXPECT_THAT(health.liveness().reasons, IsEmpty());
}

TEST(Liveness, LoopGoesStaleAfterItsAllowanceAndHeartbeatRevivesIt) {
  FakeClock clock;
  Health health(clock.function());
  health.register_loop("worker py#0", 30s);
  clock.now += 30s;
  EXPECT_TRUE(health.liveness().ok);
  clock.now += 1s;
  auto stuck = health.liveness();
  EXPECT_FALSE(stuck.ok);
  ASSERT_THAT(stuck.reasons, SizeIs(1));
  EXPECT_THAT(stuck.reasons[0], HasSubstr("worker py#0"));
  EXPECT_THAT(stuck.reasons[0], HasSubstr("31 s ago"));
  health.heartbeat("worker py#0");
  EXPECT_TRUE(health.liveness().ok);
}

TEST(Liveness, OnlyTheStaleLoopIsNamed) {
  FakeClock clock;
  Health health(clock.function());
  health.register_loop("poller", 10s);
  health.register_loop("queue-length", 60s);
  clock.now += 20s;
  auto result = health.liveness();
  ASSERT_THAT(result.reasons, SizeIs(1));
  EXPECT_THAT(result.reasons[0], HasSubstr("'poller'"));
}

TEST(Liveness, BusyLoopMayBeSilentForItsBusyTimePlusAllowance) {
  FakeClock clock;
  Health health(clock.function());
  health.register_loop("worker py#0", 30s);
  health.busy_for("worker py#0", 120s);
  clock.now += 150s;
  EXPECT_TRUE(health.liveness().ok);
  clock.now += 1s;
  EXPECT_FALSE(health.liveness().ok);
  // Back to normal: the next heartbeat ends the busy allowance.
  health.heartbeat("worker py#0");
  clock.now += 31s;
  EXPECT_FALSE(health.liveness().ok);
}

TEST(Liveness, ScopedLoopUnregistersSoAFinishedLoopIsNotStuck) {
  FakeClock clock;
  Health health(clock.function());
  {
    auto loop = health.register_scoped_loop("worker py#0", 5s);
    EXPECT_EQ(loop.name(), "worker py#0");
    clock.now += 4s;
    loop.heartbeat();
    clock.now += 5s;
    EXPECT_TRUE(health.liveness().ok);
    clock.now += 1s;
    EXPECT_FALSE(health.liveness().ok);
  }
  EXPECT_TRUE(health.liveness().ok);
  // The name is free again.
  EXPECT_NO_THROW(health.register_loop("worker py#0", 5s));
}

TEST(Liveness, WiringMistakesAreReportedByName) {
  Health health;
  health.register_loop("poller", 5s);
  EXPECT_THROW(health.register_loop("poller", 5s), std::invalid_argument);
  try {
    health.heartbeat("typo");
    FAIL() << "heartbeat from an unregistered loop was accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_THAT(error.what(), HasSubstr("'typo'"));
  }
  EXPECT_THROW(health.busy_for("typo", 1s), std::invalid_argument);
}

TEST(Readiness, NotReadyAtStartWithEveryReason) {
  Health health;
  auto result = health.readiness();
  EXPECT_FALSE(result.ok);
  EXPECT_THAT(result.reasons, ElementsAre("configuration not loaded", "no XQueue connection started",
                                          "Docker engine not answering"));
}

TEST(Readiness, ReadyOnceConfigLoadedOneConnectionLoggedInAndEngineAnswers) {
  Health health;
  health.set_config_loaded(true);
  health.set_xqueue_logged_in("py#0", false);
  health.set_xqueue_logged_in("py#1", false);
  health.set_engine_answering(false, "connect to /var/run/docker.sock: no such file");
  EXPECT_THAT(health.readiness().reasons,
              ElementsAre("no XQueue connection logged in (0 of 2)",
                          "Docker engine not answering: connect to /var/run/docker.sock: no such file"));
  health.set_xqueue_logged_in("py#1", true);
  health.set_engine_answering(true);
  EXPECT_TRUE(health.readiness().ok);
  EXPECT_THAT(health.readiness().reasons, IsEmpty());
  health.forget_xqueue_connection("py#1");
  EXPECT_THAT(health.readiness().reasons, ElementsAre("no XQueue connection logged in (0 of 1)"));
}

TEST(Readiness, EngineDetailIsDroppedOnceItAnswersAgain) {
  Health health;
  health.set_config_loaded(true);
  health.set_xqueue_logged_in("py#0", true);
  health.set_engine_answering(false, "timed out");
  health.set_engine_answering(true, "ignored");
  health.set_engine_answering(false);
  EXPECT_THAT(health.readiness().reasons, ElementsAre("Docker engine not answering"));
}

TEST(Readiness, ShuttingDownIsNeverReady) {
  Health health;
  health.set_config_loaded(true);
  health.set_xqueue_logged_in("py#0", true);
  health.set_engine_answering(true);
  ASSERT_TRUE(health.readiness().ok);
  health.set_shutting_down();
  EXPECT_THAT(health.readiness().reasons, ElementsAre("shutting down"));
}

TEST(ProbeJson, CarriesTheVerdictAndReasons) {
  auto ready = nlohmann::json::parse(probe_json("ready", ProbeResult{false, {"a \"quoted\" reason", "two"}}));
  EXPECT_EQ(ready["ready"], false);
  EXPECT_EQ(ready["reasons"], nlohmann::json({"a \"quoted\" reason", "two"}));
  auto alive = nlohmann::json::parse(probe_json("alive", ProbeResult{}));
  EXPECT_EQ(alive["alive"], true);
  EXPECT_TRUE(alive["reasons"].is_array());
  EXPECT_TRUE(alive["reasons"].empty());
}

}  // namespace
}  // namespace xqw::observability
