#include "proc_stat_parse.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

// A real line from /proc/PID/stat of a `sleep` process.
constexpr const char* kSleep =
    "4242 (sleep) S 4200 4242 4200 0 -1 4194304 90 0 0 0 7 3 0 0 20 0 1 0 123456 5644288 "
    "132 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

TEST(ProcStatParse, Fields) {
  auto st = parse_proc_stat(kSleep);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->pid, 4242);
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->ppid, 4200);
  EXPECT_EQ(st->pgrp, 4242);
  EXPECT_EQ(st->utime_ticks, 7u);
  EXPECT_EQ(st->stime_ticks, 3u);
  EXPECT_EQ(st->starttime_ticks, 123456u);
  EXPECT_EQ(st->rss_pages, 132u);
  EXPECT_EQ(st->threads, 1);
}

// num_threads (field 20) says whether one task's children list covers them all.
TEST(ProcStatParse, Threads) {
  auto st = parse_proc_stat(
      "9 (node) S 1 9 9 0 -1 0 0 0 0 0 1 2 0 0 20 0 11 0 99 1000 70 0\n");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->threads, 11);
  EXPECT_EQ(st->starttime_ticks, 99u);
  EXPECT_EQ(st->rss_pages, 70u);
}

TEST(ProcStatParse, CommandWithSpacesAndParens) {
  auto st = parse_proc_stat(
      "77 (my (weird) prog) R 1 77 77 0 -1 0 0 0 0 0 100 200 0 0 20 0 1 0 9 1000 50 0\n");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->pid, 77);
  EXPECT_EQ(st->state, 'R');
  EXPECT_EQ(st->ppid, 1);
  EXPECT_EQ(st->utime_ticks, 100u);
  EXPECT_EQ(st->stime_ticks, 200u);
  EXPECT_EQ(st->rss_pages, 50u);
}

TEST(ProcStatParse, Truncated) {
  EXPECT_FALSE(parse_proc_stat(""));
  EXPECT_FALSE(parse_proc_stat("12 (x"));
  EXPECT_FALSE(parse_proc_stat("12 (x) S 1 2 3"));
  EXPECT_FALSE(parse_proc_stat("garbage"));
}

TEST(ProcStatParse, PidList) {
  std::vector<int> pids{7};
  parse_pid_list("12 345 6 ", pids);
  EXPECT_EQ(pids, (std::vector<int>{7, 12, 345, 6}));
  parse_pid_list("", pids);
  parse_pid_list("99", pids);  // no trailing space
  EXPECT_EQ(pids, (std::vector<int>{7, 12, 345, 6, 99}));
}

}  // namespace
}  // namespace vigil
