// How much bulk work (a stop's signals, a reap) one loop turn takes.
#include "time_slice.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

using namespace std::chrono_literals;

TEST(TimeSlice, TakesItemsUntilItsTimeIsSpent) {
  FakeClock clock;
  TimeSlice slice(clock, 2ms);
  int items = 0;
  while (!slice.spent()) {
    ++items;
    clock.advance(300us);  // a kill(2) on a busy virtual machine
  }
  EXPECT_EQ(items, 7);  // 2.1 ms of items: the one that crosses the end is done
}

TEST(TimeSlice, AlwaysTakesOneItem) {
  FakeClock clock;
  TimeSlice slice(clock, 2ms);
  clock.advance(1s);  // the slice began late (a long callback before it)
  EXPECT_FALSE(slice.spent());
  EXPECT_TRUE(slice.spent());
}

TEST(TimeSlice, CheapItemsAllFitInOneSlice) {
  FakeClock clock;
  TimeSlice slice(clock);  // kLength
  for (int k = 0; k < 10000; ++k) {
    ASSERT_FALSE(slice.spent()) << k;
    clock.advance(100ns);  // 1 ms for all of them
  }
}

TEST(TimeSlice, ASliceEndsOnItsOwnClock) {
  // What a count of items did not: the same slice holds the loop as long
  // whether each item costs 30 µs or 300 µs.
  for (auto cost : {30us, 300us}) {
    FakeClock clock;
    const SteadyTime start = clock.steady();
    TimeSlice slice(clock);
    while (!slice.spent()) clock.advance(cost);
    EXPECT_GE(clock.steady() - start, TimeSlice::kLength);
    EXPECT_LT(clock.steady() - start, TimeSlice::kLength + cost);
  }
}

TEST(PacedGap, ACheapLookKeepsTheFloor) {
  // 500 children: their list costs the kernel ~30 µs.
  EXPECT_EQ(paced_gap(50ms, 30us, 1s), 50ms);
  EXPECT_EQ(paced_gap(50ms, 0ns, 1s), 50ms);
}

TEST(PacedGap, ACostlyLookIsSpacedByTenTimesItsCost) {
  // 10,000 children: one read of their list took 12.5 ms on the
  // development VM; a look every 50 ms would spend a quarter of the loop.
  EXPECT_EQ(paced_gap(50ms, 12500us, 1s), 125ms);
  EXPECT_EQ(paced_gap(50ms, 5ms, 1s), 50ms);  // exactly at the floor
  EXPECT_EQ(paced_gap(50ms, 6ms, 1s, 4), 50ms);
  EXPECT_EQ(paced_gap(50ms, 20ms, 1s, 4), 80ms);
}

TEST(PacedGap, OneStalledLookPutsTheNextOffNoLongerThanTheCeiling) {
  // A look preempted for 300 ms on a loaded machine.
  EXPECT_EQ(paced_gap(50ms, 300ms, 1s), 1s);
  EXPECT_EQ(paced_gap(50ms, 100ms, 1s), 1s);
  EXPECT_EQ(paced_gap(50ms, 99ms, 1s), 990ms);
}

}  // namespace
}  // namespace vigil
