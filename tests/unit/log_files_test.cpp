// log_files: the log file names and `vigil logs`' merge by time.
#include "log_files.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

std::vector<std::string> texts(const std::vector<LogLine>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) out.push_back(std::to_string(l.source) + ":" + l.text);
  return out;
}

TEST(LogFiles, NamesFollowTheLogModeAndTheInstances) {
  ProgramConfig p;
  p.name = "web";
  EXPECT_EQ(log_file_path("/l", p, 0, false), "/l/web.out.log");
  EXPECT_EQ(log_file_path("/l", p, 0, true), "/l/web.err.log");
  p.instances = 3;
  EXPECT_EQ(log_file_path("/l", p, 2, true), "/l/web-2.err.log");
  p.log = LogMode::combined;
  EXPECT_EQ(log_file_path("/l", p, 1, true), "/l/web-1.log");
  EXPECT_EQ(log_file_path("/l", p, 1, false), "/l/web-1.log");
  p.log = LogMode::off;
  EXPECT_EQ(log_file_path("/l", p, 1, false), "");
}

TEST(LogFiles, TimestampIsTheExactShapeTheFilesWrite) {
  EXPECT_EQ(line_timestamp("2026-12-06T04:33:12.123 hello"), "2026-12-06T04:33:12.123");
  EXPECT_EQ(line_timestamp("2026-12-06T04:33:12.123 "), "2026-12-06T04:33:12.123");
  EXPECT_EQ(line_timestamp("2026-12-06T04:33:12.123"), "") << "no space after it";
  EXPECT_EQ(line_timestamp("2026-12-06 04:33:12.123 x"), "");
  EXPECT_EQ(line_timestamp("hello"), "");
  EXPECT_EQ(line_timestamp(""), "");
  EXPECT_EQ(line_timestamp("2026-12-06T04:33:1x.123 x"), "");
}

TEST(LogFiles, MergeInterleavesByStampAndKeepsEachFilesOrder) {
  auto merged = merge_by_time({
      {"2026-01-01T00:00:00.001 a1", "2026-01-01T00:00:00.004 a4"},
      {"2026-01-01T00:00:00.002 b2", "continued", "2026-01-01T00:00:00.003 b3"},
      {},
  });
  EXPECT_EQ(texts(merged), (std::vector<std::string>{"0:2026-01-01T00:00:00.001 a1",
                                                     "1:2026-01-01T00:00:00.002 b2", "1:continued",
                                                     "1:2026-01-01T00:00:00.003 b3",
                                                     "0:2026-01-01T00:00:00.004 a4"}));
}

TEST(LogFiles, TiesKeepTheInputsOrderAndUnstampedFilesComeFirst) {
  auto merged = merge_by_time({
      {"2026-01-01T00:00:00.001 a"},
      {"2026-01-01T00:00:00.001 b"},
      {"plain one", "plain two"},  // timestamps = false: no stamp at all
  });
  EXPECT_EQ(texts(merged), (std::vector<std::string>{"2:plain one", "2:plain two",
                                                     "0:2026-01-01T00:00:00.001 a",
                                                     "1:2026-01-01T00:00:00.001 b"}));
}

TEST(LogFiles, AFileWhoseClockWentBackStaysInItsOwnOrder) {
  auto merged = merge_by_time({
      {"2026-01-01T00:00:00.005 late", "2026-01-01T00:00:00.001 clock stepped back"},
      {"2026-01-01T00:00:00.003 other"},
  });
  EXPECT_EQ(texts(merged), (std::vector<std::string>{"1:2026-01-01T00:00:00.003 other",
                                                     "0:2026-01-01T00:00:00.005 late",
                                                     "0:2026-01-01T00:00:00.001 clock stepped back"}));
}

TEST(LogFiles, NothingInNothingOut) {
  EXPECT_TRUE(merge_by_time({}).empty());
  EXPECT_TRUE(merge_by_time({{}, {}}).empty());
}

}  // namespace
}  // namespace vigil
