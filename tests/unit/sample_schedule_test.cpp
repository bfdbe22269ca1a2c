// When an instance's process tree is read from /proc again.
#include "sample_schedule.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

using namespace std::chrono_literals;

constexpr Duration kInterval = 1000ms;
const SteadyTime kT0 = SteadyTime{} + std::chrono::hours(1);
const TreeUsage kIdle{4u << 20, 7, 1};

TEST(SampleSchedule, ANewProcessIsDueAtOnceAndStale) {
  SampleSchedule s;
  EXPECT_TRUE(s.due(kT0, kInterval));
  EXPECT_TRUE(s.stale(kT0, kInterval));
  EXPECT_EQ(s.stride(), 1);
}

TEST(SampleSchedule, ATreeThatMovesIsReadEveryInterval) {
  SampleSchedule s;
  TreeUsage u = kIdle;
  for (int k = 0; k < 10; ++k) {
    const SteadyTime at = kT0 + k * kInterval;
    ASSERT_TRUE(s.due(at, kInterval)) << k;
    u.cpu_ticks += 1;
    s.sampled(at, u, false, kInterval);
    EXPECT_EQ(s.stride(), 1);
    EXPECT_EQ(s.next_at(), at + kInterval);
  }
}

TEST(SampleSchedule, AStillTreeIsReadOnceInIdleStride) {
  SampleSchedule s;
  s.sampled(kT0, kIdle, false, kInterval);
  EXPECT_EQ(s.stride(), 1) << "the first read has nothing to compare with";
  s.sampled(kT0 + kInterval, kIdle, false, kInterval);
  EXPECT_EQ(s.stride(), kIdleSampleStride);
  const SteadyTime next = kT0 + kInterval + kIdleSampleStride * kInterval;
  EXPECT_EQ(s.next_at(), next);
  EXPECT_FALSE(s.due(kT0 + 2 * kInterval, kInterval));
  EXPECT_FALSE(s.due(next - kInterval, kInterval));
  EXPECT_TRUE(s.due(next, kInterval));
  // A tick a little early (timer drift) still reads it.
  EXPECT_TRUE(s.due(next - kInterval / 4, kInterval));
}

TEST(SampleSchedule, AStillTreeThatMovesAgainIsReadEveryIntervalAgain) {
  SampleSchedule s;
  s.sampled(kT0, kIdle, false, kInterval);
  s.sampled(kT0 + kInterval, kIdle, false, kInterval);
  ASSERT_EQ(s.stride(), kIdleSampleStride);
  TreeUsage grown = kIdle;
  grown.rss_bytes += 4096;
  const SteadyTime at = kT0 + (kIdleSampleStride + 1) * kInterval;
  s.sampled(at, grown, false, kInterval);
  EXPECT_EQ(s.stride(), 1);
  EXPECT_EQ(s.next_at(), at + kInterval);
  // A new child counts as a move too.
  TreeUsage forked = grown;
  ++forked.processes;
  s.sampled(at + kInterval, grown, false, kInterval);
  ASSERT_EQ(s.stride(), kIdleSampleStride);
  s.sampled(at + 2 * kInterval, forked, false, kInterval);
  EXPECT_EQ(s.stride(), 1);
}

TEST(SampleSchedule, UnderAMemoryLimitATreeIsReadEveryIntervalEvenWhenStill) {
  SampleSchedule s;
  for (int k = 0; k < 5; ++k) {
    const SteadyTime at = kT0 + k * kInterval;
    ASSERT_TRUE(s.due(at, kInterval));
    s.sampled(at, kIdle, true, kInterval);
    EXPECT_EQ(s.stride(), 1);
  }
}

TEST(SampleSchedule, AScrapeReadsWhatIsOlderThanOneInterval) {
  SampleSchedule s;
  s.sampled(kT0, kIdle, false, kInterval);
  s.sampled(kT0 + kInterval, kIdle, false, kInterval);
  EXPECT_FALSE(s.stale(kT0 + kInterval + kInterval / 2, kInterval));
  EXPECT_TRUE(s.stale(kT0 + 2 * kInterval, kInterval));
  // The scrape's read makes the figures fresh; still ones keep the pace.
  const SteadyTime next = s.next_at();
  s.refreshed(kT0 + 5 * kInterval, kIdle, kInterval);
  EXPECT_FALSE(s.stale(kT0 + 5 * kInterval, kInterval));
  EXPECT_EQ(s.next_at(), next);
  EXPECT_EQ(s.stride(), kIdleSampleStride);
  // Moved ones are read every interval from then on.
  TreeUsage grown = kIdle;
  grown.cpu_ticks += 3;
  s.refreshed(kT0 + 7 * kInterval, grown, kInterval);
  EXPECT_EQ(s.stride(), 1);
  EXPECT_EQ(s.next_at(), kT0 + 8 * kInterval);
}

// A status page polls the API every 2 s: reading every still tree for it
// would undo their once-a-minute pace. It takes a still tree's figures as
// the last periodic read left them, and reads only what the schedule
// reads every interval (moving, under a limit, never read) when late.
TEST(SampleSchedule, TheApiLeavesAStillTreeToItsPeriodicRead) {
  SampleSchedule s;
  s.sampled(kT0, kIdle, false, kInterval);
  s.sampled(kT0 + kInterval, kIdle, false, kInterval);
  ASSERT_EQ(s.stride(), kIdleSampleStride);
  for (int k = 2; k < kIdleSampleStride + 1; ++k) {
    const SteadyTime at = kT0 + k * kInterval;
    EXPECT_FALSE(s.stale(at, kInterval, Freshness::schedule)) << k;
    EXPECT_TRUE(s.stale(at, kInterval, Freshness::interval)) << k;
  }
  // Nor after a scrape that found it still.
  s.refreshed(kT0 + 10 * kInterval, kIdle, kInterval);
  EXPECT_FALSE(s.stale(kT0 + 12 * kInterval, kInterval, Freshness::schedule));
  // A scrape that found it moving puts it back on every interval, and
  // then the API reads it when late, as a scrape does.
  TreeUsage grown = kIdle;
  grown.rss_bytes += 4096;
  s.refreshed(kT0 + 20 * kInterval, grown, kInterval);
  EXPECT_FALSE(s.stale(kT0 + 20 * kInterval + kInterval / 2, kInterval, Freshness::schedule));
  EXPECT_TRUE(s.stale(kT0 + 21 * kInterval, kInterval, Freshness::schedule));
}

TEST(SampleSchedule, TheApiReadsANewOrMovingOrLimitedTreeWhenLate) {
  SampleSchedule s;
  EXPECT_TRUE(s.stale(kT0, kInterval, Freshness::schedule)) << "never read";
  s.sampled(kT0, kIdle, false, kInterval);
  EXPECT_FALSE(s.stale(kT0 + kInterval / 2, kInterval, Freshness::schedule));
  EXPECT_TRUE(s.stale(kT0 + kInterval, kInterval, Freshness::schedule)) << "first read: nothing to compare";
  TreeUsage moving = kIdle;
  moving.cpu_ticks += 5;
  s.sampled(kT0 + kInterval, moving, false, kInterval);
  ASSERT_EQ(s.stride(), 1);
  EXPECT_FALSE(s.stale(kT0 + kInterval + kInterval / 2, kInterval, Freshness::schedule));
  EXPECT_TRUE(s.stale(kT0 + 2 * kInterval, kInterval, Freshness::schedule));

  SampleSchedule limited;
  limited.sampled(kT0, kIdle, true, kInterval);
  limited.sampled(kT0 + kInterval, kIdle, true, kInterval);
  ASSERT_EQ(limited.stride(), 1);
  EXPECT_TRUE(limited.stale(kT0 + 2 * kInterval, kInterval, Freshness::schedule));

  s.restart();
  EXPECT_TRUE(s.stale(kT0 + 2 * kInterval, kInterval, Freshness::schedule)) << "a new process";
}

TEST(SampleSchedule, AScrapeDoesNotDelayTheLimitsPeriodicRead) {
  SampleSchedule s;
  s.sampled(kT0, kIdle, true, kInterval);
  s.refreshed(kT0 + kInterval / 2, kIdle, kInterval);
  EXPECT_EQ(s.next_at(), kT0 + kInterval);
  EXPECT_TRUE(s.due(kT0 + kInterval, kInterval));
}

TEST(SampleSchedule, RestartForgetsTheOldProcess) {
  SampleSchedule s;
  s.sampled(kT0, kIdle, false, kInterval);
  s.sampled(kT0 + kInterval, kIdle, false, kInterval);
  ASSERT_FALSE(s.due(kT0 + 2 * kInterval, kInterval));
  s.restart();
  EXPECT_TRUE(s.due(kT0 + 2 * kInterval, kInterval));
  EXPECT_TRUE(s.stale(kT0 + 2 * kInterval, kInterval));
  EXPECT_EQ(s.stride(), 1);
  // Its first read compares with nothing: no jump to the idle pace.
  s.sampled(kT0 + 2 * kInterval, kIdle, false, kInterval);
  EXPECT_EQ(s.stride(), 1);
}

TEST(ScrapeRhythm, TwoScrapesSetTheRhythm) {
  ScrapeRhythm r;
  EXPECT_FALSE(r.next_expected());
  r.scraped(kT0);
  EXPECT_FALSE(r.next_expected()) << "one scrape says nothing of the next";
  r.scraped(kT0 + 15s);
  ASSERT_TRUE(r.next_expected());
  EXPECT_EQ(*r.next_expected(), kT0 + 30s);
  // Read ahead half an interval before it.
  EXPECT_EQ(*r.read_ahead_at(kT0 + 15s, kInterval), kT0 + 30s - kInterval / 2);
  // The rhythm follows the latest gap.
  r.scraped(kT0 + 25s);
  EXPECT_EQ(*r.next_expected(), kT0 + 35s);
}

TEST(ScrapeRhythm, ScrapesCloserThanHalfAnIntervalReadAheadAtOnce) {
  ScrapeRhythm r;
  r.scraped(kT0);
  r.scraped(kT0 + 200ms);
  EXPECT_EQ(*r.read_ahead_at(kT0 + 200ms, kInterval), kT0 + 200ms);
}

TEST(ScrapeRhythm, ScrapesFarApartAreNoRhythm) {
  ScrapeRhythm r;
  r.scraped(kT0);
  r.scraped(kT0 + kMaxScrapeGap + 1s);
  EXPECT_FALSE(r.next_expected());
  EXPECT_FALSE(r.read_ahead_at(kT0 + kMaxScrapeGap + 1s, kInterval));
  r.scraped(kT0 + kMaxScrapeGap + 2s);
  EXPECT_TRUE(r.next_expected());
  // Two at the same instant (two scrapers at once): no rhythm from them.
  r.scraped(kT0 + kMaxScrapeGap + 2s);
  EXPECT_FALSE(r.next_expected());
}

// What the read ahead does: a still tree read half an interval before the
// expected scrape is not stale at it, where the scrape itself would have
// had to read it.
TEST(ScrapeRhythm, ATreeReadAheadIsFreshAtTheScrape) {
  SampleSchedule s;
  s.sampled(kT0, kIdle, false, kInterval);
  s.sampled(kT0 + kInterval, kIdle, false, kInterval);  // still: next read in a minute
  ScrapeRhythm r;
  r.scraped(kT0 + 5s);
  r.scraped(kT0 + 20s);
  const SteadyTime scrape = *r.next_expected();
  EXPECT_TRUE(s.stale(scrape, kInterval)) << "without the read ahead the scrape reads it";
  const SteadyTime ahead = *r.read_ahead_at(kT0 + 20s, kInterval);
  s.refreshed(ahead, kIdle, kInterval);
  EXPECT_FALSE(s.stale(scrape, kInterval));
  // Even a scrape half an interval late finds it fresh enough...
  EXPECT_FALSE(s.stale(scrape + kInterval / 2 - 1ms, kInterval));
  // ...and the tree's periodic schedule is untouched.
  EXPECT_EQ(s.stride(), kIdleSampleStride);
}

}  // namespace
}  // namespace vigil
