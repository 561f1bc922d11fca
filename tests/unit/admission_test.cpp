// Admission control and poll pacing: caps, weighted fairness, one poll per interval on an empty queue.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "watcher/watcher.hpp"

namespace xqw::watcher {
namespace {
using namespace std::chrono_literals;

TEST(AdmissionTest, NeverRunsMoreThanItsCapacity) {
  Admission admission(2);
  StopSignal stop;
  std::atomic<int> inside{0}, most{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      auto slot = admission.acquire("q", 1, 0, stop);
      ASSERT_TRUE(slot.has_value());
      const int now = ++inside;
      int seen = most.load();
      while (now > seen && !most.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(20ms);
      --inside;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(most.load(), 2);
  EXPECT_EQ(admission.running(), 0);
}

TEST(AdmissionTest, PerQueueCapHoldsWhileOtherQueuesUseTheRest) {
  Admission admission(3);
  StopSignal stop;
  auto first = admission.acquire("busy", 1, 1, stop);
  ASSERT_TRUE(first);
  std::atomic<bool> second_busy{false};
  std::thread blocked([&] {
    auto slot = admission.acquire("busy", 1, 1, stop);
    second_busy = slot.has_value();
  });
  while (admission.waiting() < 1) std::this_thread::sleep_for(1ms);
  auto other = admission.acquire("other", 1, 0, stop);  // not held up by the busy queue's waiter
  ASSERT_TRUE(other);
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(second_busy.load()) << "the busy queue went over its own cap";
  first.reset();
  blocked.join();
  EXPECT_TRUE(second_busy.load());
}

// Capacity 3: "a" and "b" each run one, a third slot is briefly taken; then one waiter of each queue.
std::vector<std::string> grant_order(int weight_a, int weight_b, bool a_waits_first) {
  Admission admission(3);
  StopSignal stop;
  auto running_a = admission.acquire("a", weight_a, 0, stop);
  auto running_b = admission.acquire("b", weight_b, 0, stop);
  auto temporary = admission.acquire("x", 1, 0, stop);
  std::vector<std::string> order;
  std::mutex order_mutex;
  auto waiter = [&](std::string queue, int weight) {
    return std::thread([&, queue, weight] {
      auto slot = admission.acquire(queue, weight, 0, stop);
      std::lock_guard lock(order_mutex);
      order.push_back(queue);
      std::this_thread::sleep_for(20ms);
    });
  };
  auto until_waiting = [&](int count) {
    while (admission.waiting() < count) std::this_thread::sleep_for(1ms);
  };
  auto first = waiter(a_waits_first ? "a" : "b", a_waits_first ? weight_a : weight_b);
  until_waiting(1);
  auto second = waiter(a_waits_first ? "b" : "a", a_waits_first ? weight_b : weight_a);
  until_waiting(2);
  temporary.reset();  // one slot frees up: who gets it?
  while (admission.waiting() > 1) std::this_thread::sleep_for(1ms);
  running_a.reset();
  first.join();
  second.join();
  return order;
}

TEST(AdmissionTest, EqualWeightsAndSharesGoInArrivalOrder) {
  EXPECT_EQ(grant_order(1, 1, true), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(grant_order(1, 1, false), (std::vector<std::string>{"b", "a"}));
}

TEST(AdmissionTest, TheQueueWithTheSmallerShareForItsWeightGoesFirst) {
  // Both run one; "a" weighs 3, so its share (1/3) is below "b"'s (1/1) although "b" waited first.
  EXPECT_EQ(grant_order(3, 1, false), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(grant_order(1, 3, true), (std::vector<std::string>{"b", "a"}));
}

TEST(AdmissionTest, StopReleasesWaiters) {
  Admission admission(1);
  StopSignal stop;
  auto holder = admission.acquire("q", 1, 0, stop);
  std::atomic<bool> returned_empty{false};
  std::thread waiter([&] { returned_empty = !admission.acquire("q", 1, 0, stop).has_value(); });
  while (admission.waiting() < 1) std::this_thread::sleep_for(1ms);
  stop.request();
  admission.wake();
  waiter.join();
  EXPECT_TRUE(returned_empty.load());
}

TEST(PollPacerTest, WakeEndsAWaitAtOnceOnStop) {
  PollPacer pacer(1h);  // only a wake-up can end this wait in time
  StopSignal stop;
  ASSERT_TRUE(pacer.wait_turn(stop));
  pacer.report(false);
  std::atomic<bool> returned_empty{false};
  std::thread connection([&] { returned_empty = !pacer.wait_turn(stop).has_value(); });
  std::this_thread::sleep_for(20ms);
  const auto asked = std::chrono::steady_clock::now();
  stop.request();
  pacer.wake();
  connection.join();
  EXPECT_TRUE(returned_empty.load());
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 10s);
}

TEST(PollPacerTest, AnEmptyQueueIsPolledOncePerIntervalWhateverTheConnections) {
  PollPacer pacer(200ms);
  StopSignal stop;
  std::atomic<int> polls{0};
  const auto end = std::chrono::steady_clock::now() + 1000ms;
  std::vector<std::thread> connections;
  for (int i = 0; i < 4; ++i) {
    connections.emplace_back([&] {
      while (std::chrono::steady_clock::now() < end) {
        if (!pacer.wait_turn(stop)) return;
        if (std::chrono::steady_clock::now() >= end) return;
        ++polls;
        pacer.report(false);
      }
    });
  }
  for (auto& thread : connections) thread.join();
  // 1 s at one poll per 200 ms: the first poll and at most four more (five unpaced connections would poll
  // thousands of times). A busy machine can only make it fewer; two means the pacing let polls through.
  EXPECT_GE(polls.load(), 2);
  EXPECT_LE(polls.load(), 5);
}

TEST(PollPacerTest, WorkFoundLetsEveryConnectionPollAtOnce) {
  PollPacer pacer(10s);
  StopSignal stop;
  ASSERT_TRUE(pacer.wait_turn(stop));
  pacer.report(true);
  const auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE(pacer.wait_turn(stop));
  ASSERT_TRUE(pacer.wait_turn(stop));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 1s);
}

}  // namespace
}  // namespace xqw::watcher

namespace xqw::watcher {
namespace {
using namespace std::chrono_literals;

TEST(PollPacerTest, ATurnTakenBeforeAnEmptyReportIsWithdrawnUntilTheIntervalPasses) {
  PollPacer pacer(300ms);
  StopSignal stop;
  pacer.report(true);  // work was found: every connection may poll
  const auto mine = pacer.wait_turn(stop);
  ASSERT_TRUE(mine);
  pacer.report(false);  // meanwhile another connection found the queue empty
  EXPECT_FALSE(pacer.still_my_turn(*mine));
  std::this_thread::sleep_for(350ms);
  EXPECT_TRUE(pacer.still_my_turn(*mine));
  const auto fresh = pacer.wait_turn(stop);  // nobody reported since: the turn stands
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(pacer.still_my_turn(*fresh));
}

}  // namespace
}  // namespace xqw::watcher
