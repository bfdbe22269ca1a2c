// InstanceHistory: the bounded per-instance record behind the status page's
// sparklines and GET /api/v1/programs/NAME/history.
#include "history.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace vigil {
namespace {

constexpr double kT0 = 1'800'000'000.0;

HistoryInput sample(double t, std::uint64_t rss = 0, double cpu = 0, std::uint64_t restarts = 0) {
  HistoryInput in;
  in.time_seconds = t;
  in.rss_bytes = rss;
  in.cpu_seconds = cpu;
  in.restarts = restarts;
  in.state = State::running;
  return in;
}

TEST(HistoryTest, CapacityCoversAnHourAtTheSampleInterval) {
  using namespace std::chrono_literals;
  EXPECT_EQ(InstanceHistory::capacity_for(1s), 3600u);
  EXPECT_EQ(InstanceHistory::capacity_for(5s), 720u);
  EXPECT_EQ(InstanceHistory::capacity_for(7s), 515u);  // rounded up: the hour is covered
  EXPECT_EQ(InstanceHistory::capacity_for(100ms), InstanceHistory::kMaxSamples);
  EXPECT_EQ(InstanceHistory::capacity_for(2h), 1u);
}

TEST(HistoryTest, FiguresReadBackWithTheirDeltas) {
  InstanceHistory h;
  HistoryInput a = sample(kT0, 10 * 1024 * 1024, 5.0, 2);
  a.heartbeat_age_seconds = 0.4;
  h.record(a);
  HistoryInput b = sample(kT0 + 2, 12 * 1024 * 1024, 5.5, 5);
  b.state = State::backoff;
  h.record(b);
  auto pts = h.points();
  ASSERT_EQ(pts.size(), 2u);
  EXPECT_DOUBLE_EQ(pts[0].time_seconds, kT0);
  EXPECT_EQ(pts[0].rss_bytes, 10u * 1024 * 1024);
  EXPECT_FALSE(pts[0].cpu_percent);  // nothing to compare the first with
  EXPECT_EQ(pts[0].restarts, 0u);
  ASSERT_TRUE(pts[0].heartbeat_age_seconds);
  EXPECT_DOUBLE_EQ(*pts[0].heartbeat_age_seconds, 0.4);
  EXPECT_DOUBLE_EQ(pts[1].time_seconds, kT0 + 2);
  ASSERT_TRUE(pts[1].cpu_percent);
  EXPECT_DOUBLE_EQ(*pts[1].cpu_percent, 25.0);  // 0.5 s of CPU in 2 s
  EXPECT_EQ(pts[1].restarts, 3u);
  EXPECT_FALSE(pts[1].heartbeat_age_seconds);
  EXPECT_EQ(pts[1].state, State::backoff);
  ASSERT_TRUE(h.latest());
  EXPECT_DOUBLE_EQ(h.latest()->time_seconds, kT0 + 2);
}

TEST(HistoryTest, OutOfRangeFiguresSaturateInsteadOfWrapping) {
  InstanceHistory h;
  h.record(sample(kT0, 0, 0, 0));
  HistoryInput big = sample(kT0 + 1, std::uint64_t{1} << 50, 1000.0, 100000);
  big.heartbeat_age_seconds = 1e9;
  h.record(big);
  auto p = *h.latest();
  EXPECT_EQ(p.rss_bytes, std::uint64_t{0xFFFFFFFF} * 1024);
  EXPECT_GT(*p.cpu_percent, 6000.0);
  EXPECT_EQ(p.restarts, 15u);
  EXPECT_GT(*p.heartbeat_age_seconds, 6000.0);
}

TEST(HistoryTest, WrapsKeepingTheNewestWithExactTimes) {
  InstanceHistory h(100);
  for (int i = 0; i < 1000; ++i) h.record(sample(kT0 + i * 1.3, static_cast<std::uint64_t>(i) * 1024));
  EXPECT_EQ(h.size(), 100u);
  auto pts = h.points();
  ASSERT_EQ(pts.size(), 100u);
  for (int k = 0; k < 100; ++k) {
    const int i = 900 + k;
    EXPECT_NEAR(pts[static_cast<std::size_t>(k)].time_seconds, kT0 + i * 1.3, 0.051) << k;
    EXPECT_EQ(pts[static_cast<std::size_t>(k)].rss_bytes, static_cast<std::uint64_t>(i) * 1024);
  }
}

TEST(HistoryTest, PointsAfterATimeAreOnlyTheNewerOnes) {
  InstanceHistory h;
  for (int i = 0; i < 10; ++i) h.record(sample(kT0 + i));
  auto pts = h.points(kT0 + 6.5);
  ASSERT_EQ(pts.size(), 3u);
  EXPECT_DOUBLE_EQ(pts[0].time_seconds, kT0 + 7);
  EXPECT_TRUE(h.points(kT0 + 9).empty());
  EXPECT_EQ(h.points(0).size(), 10u);
}

TEST(HistoryTest, ALongGapOrAClockSteppedBackStartsOver) {
  InstanceHistory h;
  h.record(sample(kT0));
  h.record(sample(kT0 + 1));
  h.record(sample(kT0 + 1 + 7000));  // past what a delta holds
  EXPECT_EQ(h.size(), 1u);
  h.record(sample(kT0));  // stepped back
  EXPECT_EQ(h.size(), 1u);
  EXPECT_DOUBLE_EQ(h.latest()->time_seconds, kT0);
}

TEST(HistoryTest, ShrinkingKeepsTheNewest) {
  InstanceHistory h(50);
  for (int i = 0; i < 80; ++i) h.record(sample(kT0 + i, static_cast<std::uint64_t>(i) * 1024));
  h.set_capacity(10);
  auto pts = h.points();
  ASSERT_EQ(pts.size(), 10u);
  EXPECT_DOUBLE_EQ(pts.front().time_seconds, kT0 + 70);
  EXPECT_EQ(pts.back().rss_bytes, 79u * 1024);
  h.record(sample(kT0 + 80));
  EXPECT_EQ(h.size(), 10u);
  EXPECT_DOUBLE_EQ(h.points().back().time_seconds, kT0 + 80);
}

// The bound README documents: a day of samples at 1s for 1,000 instances
// stays within kMaxBytes per instance (43,328 bytes: 3,600 samples of 12).
// The worst case: memory moves at every sample, so no two samples share an
// entry.
TEST(HistoryTest, ADayOfSamplesForAThousandInstancesStaysWithinTheBound) {
  constexpr int kInstances = 1000;
  constexpr int kDay = 86400;
  std::vector<InstanceHistory> all(kInstances);
  for (int t = 0; t < kDay; ++t)
    for (int i = 0; i < kInstances; ++i)
      all[static_cast<std::size_t>(i)].record(
          sample(kT0 + t, (1u << 20) + static_cast<std::uint64_t>(t % 7) * 1024, t * 0.01,
                 static_cast<std::uint64_t>(t / 600)));
  std::size_t total = 0;
  for (const auto& h : all) {
    EXPECT_LE(h.bytes(), InstanceHistory::kMaxBytes);
    EXPECT_EQ(h.size(), InstanceHistory::kMaxSamples);
    total += h.bytes();
  }
  EXPECT_LE(total, kInstances * InstanceHistory::kMaxBytes);
  EXPECT_EQ(InstanceHistory::kMaxBytes, 43'328u);
  // The newest hour is what is left.
  auto pts = all[0].points();
  EXPECT_DOUBLE_EQ(pts.front().time_seconds, kT0 + kDay - 3600);
  EXPECT_DOUBLE_EQ(pts.back().time_seconds, kT0 + kDay - 1);
}

// A still instance (same memory, no CPU, no heartbeat, same state) shares
// one entry per run of 255 samples: its hour costs a few hundred bytes, and
// reads back sample by sample with exact times, as if nothing were merged.
TEST(HistoryTest, AStillInstanceSharesEntriesAndReadsBackEverySample) {
  InstanceHistory h;
  for (int t = 0; t < 2 * 3600; ++t) h.record(sample(kT0 + t, 5u << 20, 2.0));
  EXPECT_EQ(h.size(), 3600u);
  EXPECT_LE(h.entries(), 3600u / 255 + 2);
  EXPECT_LE(h.bytes(), 512u);
  auto pts = h.points();
  ASSERT_EQ(pts.size(), 3600u);
  for (std::size_t k = 0; k < pts.size(); ++k) {
    EXPECT_DOUBLE_EQ(pts[k].time_seconds, kT0 + 3600 + static_cast<double>(k)) << k;
    EXPECT_EQ(pts[k].rss_bytes, 5u << 20);
    ASSERT_TRUE(pts[k].cpu_percent);
    EXPECT_EQ(*pts[k].cpu_percent, 0.0);
  }
  EXPECT_EQ(h.points(kT0 + 7200 - 10.5).size(), 10u);
}

// A run ends where anything moves: a restart, another state, a longer gap,
// other memory; each such sample reads back as it was recorded.
TEST(HistoryTest, ARunEndsWhereAFigureOrTheStepChanges) {
  InstanceHistory h(100);
  HistoryInput in = sample(kT0, 1u << 20);
  for (int t = 0; t < 5; ++t) {
    in.time_seconds = kT0 + t;
    h.record(in);
  }
  in.time_seconds = kT0 + 5;
  in.restarts = 1;  // a restart: its own entry, then a run again
  h.record(in);
  in.time_seconds = kT0 + 6;
  h.record(in);
  in.time_seconds = kT0 + 7;
  in.state = State::backoff;
  h.record(in);
  in.time_seconds = kT0 + 9.5;  // a longer step
  h.record(in);
  auto pts = h.points();
  ASSERT_EQ(pts.size(), 9u);
  EXPECT_EQ(pts[5].restarts, 1u);
  EXPECT_EQ(pts[6].restarts, 0u);
  EXPECT_EQ(pts[6].state, State::running);
  EXPECT_EQ(pts[7].state, State::backoff);
  EXPECT_DOUBLE_EQ(pts[8].time_seconds, kT0 + 9.5);
  EXPECT_DOUBLE_EQ(pts[4].time_seconds, kT0 + 4);
  EXPECT_LT(h.entries(), h.size());
}

// The window slides through a run: the oldest samples leave one by one.
TEST(HistoryTest, TheWindowSlidesThroughARun) {
  InstanceHistory h(10);
  for (int t = 0; t < 8; ++t) h.record(sample(kT0 + t, static_cast<std::uint64_t>(t) << 20));
  for (int t = 8; t < 30; ++t) h.record(sample(kT0 + t, 99u << 20));
  auto pts = h.points();
  ASSERT_EQ(pts.size(), 10u);
  EXPECT_DOUBLE_EQ(pts.front().time_seconds, kT0 + 20);
  EXPECT_DOUBLE_EQ(pts.back().time_seconds, kT0 + 29);
  for (const auto& p : pts) EXPECT_EQ(p.rss_bytes, 99u << 20);
  h.set_capacity(4);
  pts = h.points();
  ASSERT_EQ(pts.size(), 4u);
  EXPECT_DOUBLE_EQ(pts.front().time_seconds, kT0 + 26);
}

}  // namespace
}  // namespace vigil
