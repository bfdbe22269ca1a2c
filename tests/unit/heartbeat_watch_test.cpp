// HeartbeatWatch: grace, misses per interval, reset on heartbeat, the exact
// hung time, STOPPING, early and late timers, EXTEND_TIMEOUT_USEC, reload.
// Time is a parameter: every instant is built from a fixed origin.
#include "heartbeat_watch.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

using namespace std::chrono_literals;
using Verdict = HeartbeatWatch::Verdict;

const SteadyTime kT0 = SteadyTime{} + std::chrono::hours(1000);

HeartbeatSettings settings(Duration interval = 5s, int misses = 3, Duration grace = 30s) {
  HeartbeatSettings s;
  s.interval = interval;
  s.misses = misses;
  s.grace = grace;
  return s;
}

::testing::AssertionResult is(const Verdict& v, int misses, bool hung) {
  if (v.misses == misses && v.hung == hung) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "verdict {misses " << v.misses << ", hung " << v.hung
                                       << "}, want {misses " << misses << ", hung " << hung << "}";
}

TEST(HeartbeatWatch, NothingBeforeStart) {
  HeartbeatWatch w(settings());
  EXPECT_FALSE(w.active());
  EXPECT_EQ(w.deadline(), std::nullopt);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 1h), 0, false));
  EXPECT_EQ(w.total_misses(), 0u);
}

TEST(HeartbeatWatch, FirstHeartbeatIsDueAfterGrace) {
  HeartbeatWatch w(settings(5s, 3, 30s));
  w.start(kT0);
  EXPECT_TRUE(w.active());
  EXPECT_EQ(w.deadline(), kT0 + 30s);
}

TEST(HeartbeatWatch, NoHeartbeatAtAllMissesFromGraceThenEveryInterval) {
  HeartbeatWatch w(settings(5s, 3, 30s));
  w.start(kT0);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 30s), 1, false));
  EXPECT_EQ(w.deadline(), kT0 + 35s);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 35s), 1, false));
  EXPECT_EQ(w.deadline(), kT0 + 40s);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 40s), 1, true));
  EXPECT_TRUE(w.hung());
  EXPECT_EQ(w.deadline(), std::nullopt);
  EXPECT_EQ(w.consecutive_misses(), 3);
  EXPECT_EQ(w.total_misses(), 3u);
}

TEST(HeartbeatWatch, HeartbeatSetsTheNextDeadlineAndResetsMisses) {
  HeartbeatWatch w(settings(5s, 3, 30s));
  w.start(kT0);
  w.beat(kT0 + 10s);  // inside the grace: the interval applies from now on
  EXPECT_EQ(w.deadline(), kT0 + 15s);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 15s), 1, false));
  EXPECT_TRUE(is(w.on_deadline(kT0 + 20s), 1, false));
  EXPECT_EQ(w.consecutive_misses(), 2);
  w.beat(kT0 + 21s);
  EXPECT_EQ(w.consecutive_misses(), 0);
  EXPECT_EQ(w.total_misses(), 2u);
  EXPECT_EQ(w.deadline(), kT0 + 26s);
  EXPECT_EQ(w.last_beat(), kT0 + 21s);
  EXPECT_EQ(w.total_beats(), 2u);
}

TEST(HeartbeatWatch, HungExactlyIntervalTimesMissesAfterTheLastHeartbeat) {
  HeartbeatWatch w(settings(2s, 4, 10s));
  w.start(kT0);
  SteadyTime t = kT0;
  for (int i = 0; i < 20; ++i) {  // beating at half the interval, as clients do
    t += 1s;
    w.beat(t);
    ASSERT_EQ(w.deadline(), t + 2s);
  }
  const SteadyTime hung_at = t + 2s * 4;
  // Drive the timer exactly as a shell would: at each deadline.
  int misses = 0;
  while (auto d = w.deadline()) {
    ASSERT_LE(*d, hung_at);
    EXPECT_TRUE(is(w.on_deadline(*d - 1ms), 0, false));  // a hair early: nothing
    const Verdict v = w.on_deadline(*d);
    ASSERT_EQ(v.misses, 1);
    ++misses;
    if (v.hung) {
      EXPECT_EQ(*d, hung_at);
      break;
    }
  }
  EXPECT_EQ(misses, 4);
  EXPECT_TRUE(w.hung());
}

TEST(HeartbeatWatch, EarlyTimerCountsNothingAndKeepsTheDeadline) {
  HeartbeatWatch w(settings(5s, 3, 30s));
  w.start(kT0);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 29999ms), 0, false));
  EXPECT_EQ(w.deadline(), kT0 + 30s);
  EXPECT_EQ(w.total_misses(), 0u);
}

TEST(HeartbeatWatch, LateTimerCountsEveryIntervalThatPassed) {
  HeartbeatWatch w(settings(5s, 5, 30s));
  w.start(kT0);
  // Misses were due at 30s, 35s and 40s; the timer only runs at 41s.
  EXPECT_TRUE(is(w.on_deadline(kT0 + 41s), 3, false));
  EXPECT_EQ(w.consecutive_misses(), 3);
  // The schedule keeps its phase: the next miss is at 45s, not 46s.
  EXPECT_EQ(w.deadline(), kT0 + 45s);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 45s), 1, false));
  EXPECT_TRUE(is(w.on_deadline(kT0 + 50s), 1, true));
}

TEST(HeartbeatWatch, VeryLateTimerCountsOnlyUpToHung) {
  HeartbeatWatch w(settings(5s, 3, 30s));
  w.start(kT0);
  w.beat(kT0 + 1s);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 1h), 3, true));
  EXPECT_EQ(w.total_misses(), 3u);
  EXPECT_EQ(w.deadline(), std::nullopt);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 2h), 0, true));  // a stray call changes nothing
  EXPECT_EQ(w.total_misses(), 3u);
}

TEST(HeartbeatWatch, HungStaysUntilTheNextStart) {
  HeartbeatWatch w(settings(1s, 1, 1s));
  w.start(kT0);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 1s), 1, true));
  w.beat(kT0 + 1500ms);  // too late: the verdict stands
  EXPECT_TRUE(w.hung());
  EXPECT_EQ(w.deadline(), std::nullopt);
  EXPECT_EQ(w.last_beat(), kT0 + 1500ms);

  w.start(kT0 + 10s);  // the restarted process
  EXPECT_FALSE(w.hung());
  EXPECT_EQ(w.consecutive_misses(), 0);
  EXPECT_EQ(w.total_misses(), 1u);  // over the instance's life
  EXPECT_EQ(w.last_beat(), std::nullopt);
  EXPECT_EQ(w.deadline(), kT0 + 11s);
}

TEST(HeartbeatWatch, StoppingEndsDetection) {
  HeartbeatWatch w(settings(5s, 3, 30s));
  w.start(kT0);
  w.beat(kT0 + 1s);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 6s), 1, false));
  w.stop();
  EXPECT_FALSE(w.active());
  EXPECT_EQ(w.deadline(), std::nullopt);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 1h), 0, false));
  w.beat(kT0 + 2h);  // still recorded, still no deadline
  EXPECT_EQ(w.last_beat(), kT0 + 2h);
  EXPECT_EQ(w.deadline(), std::nullopt);
  w.extend(kT0 + 2h, 10s);
  EXPECT_EQ(w.deadline(), std::nullopt);
  EXPECT_EQ(w.total_misses(), 1u);
}

TEST(HeartbeatWatch, ExtendPushesTheDeadlineOutNeverIn) {
  HeartbeatWatch w(settings(5s, 3, 30s));
  w.start(kT0);
  w.extend(kT0 + 1s, std::chrono::microseconds(60'000'000));
  EXPECT_EQ(w.deadline(), kT0 + 61s);
  w.extend(kT0 + 2s, 10s);  // shorter than what is granted: no change
  EXPECT_EQ(w.deadline(), kT0 + 61s);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 40s), 0, false));  // the grace alone would have missed here
  EXPECT_TRUE(is(w.on_deadline(kT0 + 61s), 1, false));
  EXPECT_EQ(w.deadline(), kT0 + 66s);  // then the interval again
}

TEST(HeartbeatWatch, ExtendIsNotAHeartbeat) {
  HeartbeatWatch w(settings(5s, 3, 0s));
  w.start(kT0);
  EXPECT_TRUE(is(w.on_deadline(kT0), 1, false));
  w.extend(kT0 + 1s, 20s);
  EXPECT_EQ(w.consecutive_misses(), 1);
  EXPECT_EQ(w.last_beat(), std::nullopt);
  EXPECT_EQ(w.deadline(), kT0 + 21s);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 21s), 1, false));
  EXPECT_TRUE(is(w.on_deadline(kT0 + 26s), 1, true));
}

TEST(HeartbeatWatch, HeartbeatEndsAnExtension) {
  HeartbeatWatch w(settings(5s, 3, 30s));
  w.start(kT0);
  w.extend(kT0, 1h);
  w.beat(kT0 + 2s);
  EXPECT_EQ(w.deadline(), kT0 + 7s);
}

TEST(HeartbeatWatch, ExtendIsClampedToADay) {
  HeartbeatWatch w(settings(5s, 3, 30s));
  w.start(kT0);
  w.extend(kT0, std::chrono::microseconds::max());
  EXPECT_EQ(w.deadline(), kT0 + 24h);
  w.extend(kT0, std::chrono::microseconds(-5));
  EXPECT_EQ(w.deadline(), kT0 + 24h);
}

TEST(HeartbeatWatch, UpdateReDerivesTheDeadlineAndKeepsTheCounts) {
  HeartbeatWatch w(settings(5s, 3, 30s));
  w.start(kT0);
  w.update(settings(5s, 3, 60s));  // still in the grace: start + the new grace
  EXPECT_EQ(w.deadline(), kT0 + 60s);
  w.beat(kT0 + 1s);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 6s), 1, false));
  w.update(settings(20s, 3, 60s));  // last miss at 6s + the new interval
  EXPECT_EQ(w.deadline(), kT0 + 26s);
  EXPECT_EQ(w.consecutive_misses(), 1);
  EXPECT_EQ(w.total_misses(), 1u);
  EXPECT_EQ(w.last_beat(), kT0 + 1s);
  w.update(settings(2s, 3, 60s));
  EXPECT_EQ(w.deadline(), kT0 + 8s);
}

TEST(HeartbeatWatch, UpdateToFewerMissesThanAlreadyCountedHangsAtTheNextDeadline) {
  HeartbeatWatch w(settings(5s, 5, 0s));
  w.start(kT0);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 10s), 3, false));
  w.update(settings(5s, 2, 0s));
  EXPECT_FALSE(w.hung());
  EXPECT_TRUE(is(w.on_deadline(kT0 + 15s), 1, true));
  EXPECT_EQ(w.total_misses(), 4u);
}

TEST(HeartbeatWatch, SettingsFromTheConfig) {
  HeartbeatConfig c;
  c.interval = 2s;
  c.misses = 7;
  c.grace = 9s;
  const auto s = HeartbeatSettings::from(c);
  EXPECT_EQ(s.interval, 2s);
  EXPECT_EQ(s.misses, 7);
  EXPECT_EQ(s.grace, 9s);
}

TEST(HeartbeatWatch, DegenerateSettingsAreMadeSafe) {
  HeartbeatWatch w(settings(0s, 0, -5s));
  EXPECT_EQ(w.settings().interval, 1ms);
  EXPECT_EQ(w.settings().misses, 1);
  EXPECT_EQ(w.settings().grace, 0s);
  w.start(kT0);
  EXPECT_EQ(w.deadline(), kT0);
  EXPECT_TRUE(is(w.on_deadline(kT0 + 1h), 1, true));
}

}  // namespace
}  // namespace vigil
