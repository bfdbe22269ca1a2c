// MemoryWatch: samples in a row over the limit, a spike is not a leak.
#include "memory_watch.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

TEST(MemoryWatch, OverTheLimitForThreeSamplesInARow) {
  MemoryWatch w;
  EXPECT_FALSE(w.sample(200, 100));
  EXPECT_FALSE(w.sample(200, 100));
  EXPECT_TRUE(w.sample(200, 100));
  EXPECT_TRUE(w.sample(200, 100)) << "still over: the verdict stands";
  EXPECT_EQ(w.samples_over(), 4);
}

TEST(MemoryWatch, OneSampleUnderStartsOver) {
  MemoryWatch w;
  w.sample(200, 100);
  w.sample(200, 100);
  EXPECT_FALSE(w.sample(100, 100)) << "at the limit is not over it";
  EXPECT_EQ(w.samples_over(), 0);
  EXPECT_FALSE(w.sample(200, 100));
}

TEST(MemoryWatch, NoLimitNeverJudges) {
  MemoryWatch w;
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(w.sample(1ull << 40, std::nullopt));
}

TEST(MemoryWatch, ResetForANewProcess) {
  MemoryWatch w;
  w.sample(200, 100);
  w.sample(200, 100);
  w.reset();
  EXPECT_FALSE(w.sample(200, 100));
}

}  // namespace
}  // namespace vigil
