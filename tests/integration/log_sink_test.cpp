// LogSink against a real file system: order, timestamps, rotation, reopen
// after logrotate, unwritable paths. Each test works in its own temp dir.
#include "log_sink.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace vigil {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class LogSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vigil-log-sink-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static std::vector<std::string> read_lines(const fs::path& p) {
    std::ifstream in(p);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }

  LogFileOptions options(const std::string& name = "web.out.log") const {
    LogFileOptions o;
    o.path = dir_ / name;
    o.timestamps = false;
    return o;
  }

  fs::path dir_;
};

const auto kWhen = std::chrono::system_clock::time_point{} + std::chrono::seconds(1795000027) + 123ms;

std::string local_stamp(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::localtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  char out[80];
  std::snprintf(out, sizeof out, "%s.%03d", buf, static_cast<int>(ms));
  return out;
}

TEST_F(LogSinkTest, LinesLandInOrderWithoutTimestamps) {
  LogSink sink(options());
  for (int i = 0; i < 1000; ++i) {
    const std::string line = "line " + std::to_string(i);
    ASSERT_EQ(sink.write_line(line, kWhen), line.size() + 1);
  }
  EXPECT_EQ(sink.write_line("", kWhen), 1u);
  sink.flush();
  const auto lines = read_lines(dir_ / "web.out.log");
  ASSERT_EQ(lines.size(), 1001u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(lines[i], "line " + std::to_string(i));
  EXPECT_EQ(lines[1000], "");
  EXPECT_EQ(sink.bytes_dropped(), 0u);
}

TEST_F(LogSinkTest, TimestampsUseTheGivenTime) {
  auto o = options();
  o.timestamps = true;
  LogSink sink(o);
  sink.write_line("hello", kWhen);
  sink.write_line("world", kWhen + 1500ms);
  sink.flush();
  const auto lines = read_lines(o.path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], local_stamp(kWhen) + " hello");
  EXPECT_EQ(lines[1], local_stamp(kWhen + 1500ms) + " world");
  EXPECT_TRUE(std::regex_match(lines[0], std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3} hello)")));
}

TEST_F(LogSinkTest, UpdateTogglesTimestampsInPlace) {
  auto o = options();
  LogSink sink(o);
  sink.write_line("plain", kWhen);
  o.timestamps = true;
  sink.update(o);
  sink.write_line("stamped", kWhen);
  sink.flush();
  const auto lines = read_lines(o.path);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "plain");
  EXPECT_EQ(lines[1], local_stamp(kWhen) + " stamped");
}

TEST_F(LogSinkTest, AppendsToAnExistingFile) {
  const auto o = options();
  { std::ofstream(o.path) << "from before\n"; }
  LogSink sink(o);
  sink.write_line("after", kWhen);
  sink.flush();
  EXPECT_EQ(read_lines(o.path), (std::vector<std::string>{"from before", "after"}));
}

TEST_F(LogSinkTest, CreatesMissingParentFolders) {
  auto o = options();
  o.path = dir_ / "a" / "b" / "web.log";
  LogSink sink(o);
  EXPECT_EQ(sink.write_line("x", kWhen), 2u);
  sink.flush();
  EXPECT_EQ(read_lines(o.path), (std::vector<std::string>{"x"}));
}

TEST_F(LogSinkTest, RotationKeepsExactlyKeepFiles) {
  auto o = options();
  o.max_size_bytes = 1000;
  o.keep = 3;
  LogSink sink(o);
  // 100 bytes a line, 10 per file: 200 lines rotate many more times than kept.
  const std::string body(99, 'r');
  for (int i = 0; i < 200; ++i) ASSERT_EQ(sink.write_line(body, kWhen), 100u);
  sink.flush();
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir_)) files.push_back(e.path());
  EXPECT_EQ(files.size(), 4u) << "the live file and 3 rotated ones";
  for (const auto& f : files) EXPECT_LE(fs::file_size(f), 1000u) << f;
}

TEST_F(LogSinkTest, RotationLosesNoLinesWhenKeepIsLargeEnough) {
  auto o = options();
  o.max_size_bytes = 4096;
  o.keep = 50;
  LogSink sink(o);
  constexpr int kLines = 2000;  // ~20 KiB: a handful of rotations
  for (int i = 0; i < kLines; ++i) ASSERT_GT(sink.write_line("n" + std::to_string(i), kWhen), 0u);
  sink.flush();
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir_)) files.push_back(e.path());
  EXPECT_GT(files.size(), 2u);
  std::vector<bool> seen(kLines, false);
  std::size_t total = 0;
  for (const auto& f : files) {
    for (const auto& l : read_lines(f)) {
      ++total;
      ASSERT_EQ(l[0], 'n');
      const int n = std::stoi(l.substr(1));
      ASSERT_GE(n, 0);
      ASSERT_LT(n, kLines);
      EXPECT_FALSE(seen[n]) << "line " << n << " twice";
      seen[n] = true;
    }
  }
  EXPECT_EQ(total, static_cast<std::size_t>(kLines));
  EXPECT_EQ(sink.bytes_dropped(), 0u);
}

TEST_F(LogSinkTest, KeepZeroTruncatesInsteadOfRotating) {
  auto o = options();
  o.max_size_bytes = 1000;
  o.keep = 0;
  LogSink sink(o);
  const std::string body(99, 'z');
  for (int i = 0; i < 25; ++i) ASSERT_EQ(sink.write_line(body, kWhen), 100u);
  sink.flush();
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir_)) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(read_lines(o.path).size(), 5u);  // 25 = 2 full files + 5
}

TEST_F(LogSinkTest, ReopenAfterRenameStartsANewFile) {
  const auto o = options();
  LogSink sink(o);
  sink.write_line("old 1", kWhen);
  sink.write_line("old 2", kWhen);
  const fs::path moved = dir_ / "web.out.log.rotated";
  fs::rename(o.path, moved);
  // Written after the rename but before the reopen: still goes to the moved
  // file, as logrotate without copytruncate expects.
  sink.write_line("old 3", kWhen);
  sink.reopen();
  ASSERT_TRUE(fs::exists(o.path));
  sink.write_line("new 1", kWhen);
  sink.flush();
  EXPECT_EQ(read_lines(moved), (std::vector<std::string>{"old 1", "old 2", "old 3"}));
  EXPECT_EQ(read_lines(o.path), (std::vector<std::string>{"new 1"}));
}

TEST_F(LogSinkTest, DirectoryInPlaceOfTheFileDropsAndCounts) {
  const auto o = options();
  fs::create_directory(o.path);
  LogSink sink(o);
  EXPECT_EQ(sink.write_line("lost", kWhen), 0u);
  EXPECT_EQ(sink.bytes_dropped(), 5u);
  EXPECT_EQ(sink.write_line("also lost", kWhen), 0u);
  EXPECT_EQ(sink.bytes_dropped(), 15u);
  EXPECT_NO_THROW(sink.flush());
  EXPECT_NO_THROW(sink.reopen());
  EXPECT_EQ(sink.write_line("x", kWhen), 0u);
  EXPECT_EQ(sink.bytes_dropped(), 17u);
}

TEST_F(LogSinkTest, PathUnderAFileDropsAndCounts) {
  { std::ofstream(dir_ / "plain") << "a file\n"; }
  auto o = options();
  o.path = dir_ / "plain" / "web.log";
  LogSink sink(o);
  EXPECT_EQ(sink.write_line("lost", kWhen), 0u);
  EXPECT_EQ(sink.bytes_dropped(), 5u);
}

TEST_F(LogSinkTest, RecoversOnceThePathBecomesWritable) {
  const auto o = options();
  fs::create_directory(o.path);
  LogSink sink(o);
  EXPECT_EQ(sink.write_line("lost", kWhen), 0u);
  fs::remove(o.path);
  // Retries are held back to one a second; poll with a deadline.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  std::size_t written = 0;
  while (written == 0 && std::chrono::steady_clock::now() < deadline) {
    written = sink.write_line("back", kWhen);
    if (written == 0) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(written, 5u);
  sink.flush();
  EXPECT_EQ(read_lines(o.path), (std::vector<std::string>{"back"}));
}

// The prefix is cached by millisecond and the broken-down time by second:
// each change of either must show, in order, including going back in time
// (the wall clock is stepped) and across a day and a year.
TEST_F(LogSinkTest, TimestampsFollowEveryMillisecondAndSecondChange) {
  auto o = options();
  o.timestamps = true;
  LogSink sink(o);
  const auto new_year = std::chrono::system_clock::time_point{} + std::chrono::seconds(1798761599);
  const std::vector<std::chrono::system_clock::time_point> times = {
      kWhen, kWhen, kWhen + 1ms, kWhen + 877ms, kWhen + 999ms, kWhen + 1000ms, kWhen - 3600s,
      new_year + 999ms, new_year + 1000ms, new_year + 1001ms, kWhen};
  for (std::size_t i = 0; i < times.size(); ++i) sink.write_line("l" + std::to_string(i), times[i]);
  sink.flush();
  const auto lines = read_lines(o.path);
  ASSERT_EQ(lines.size(), times.size());
  for (std::size_t i = 0; i < times.size(); ++i)
    EXPECT_EQ(lines[i], local_stamp(times[i]) + " l" + std::to_string(i)) << "line " << i;
}

// Lines are batched in one buffer shared by every sink until flush(): two
// sinks written in turn without a flush between must each get their own
// lines, whole and in order.
TEST_F(LogSinkTest, SinksWrittenInTurnKeepTheirOwnLines) {
  LogSink a(options("a.log"));
  LogSink b(options("b.log"));
  for (int i = 0; i < 300; ++i) {
    a.write_line("a" + std::to_string(i), kWhen);
    if (i % 7 == 0) b.write_line("b" + std::to_string(i), kWhen);
  }
  {
    // A sink destroyed with its batch unwritten writes it first.
    LogSink c(options("c.log"));
    c.write_line("c0", kWhen);
  }
  b.flush();
  a.flush();
  const auto la = read_lines(dir_ / "a.log"), lb = read_lines(dir_ / "b.log");
  ASSERT_EQ(la.size(), 300u);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(la[i], "a" + std::to_string(i));
  ASSERT_EQ(lb.size(), 43u);
  for (int i = 0; i < 43; ++i) EXPECT_EQ(lb[i], "b" + std::to_string(i * 7));
  EXPECT_EQ(read_lines(dir_ / "c.log"), std::vector<std::string>{"c0"});
}

// One flush writes the batch with one write(2), however many lines; a batch
// that is never flushed is written once it is large (4 MiB), not held.
TEST_F(LogSinkTest, ALargeUnflushedBatchIsWrittenWhole) {
  auto o = options();
  o.timestamps = true;
  LogSink sink(o);
  const std::string body(99, 'x');
  constexpr int kLines = 60000;  // ~7.4 MB with stamps: more than one batch
  for (int i = 0; i < kLines; ++i) ASSERT_EQ(sink.write_line(body, kWhen + std::chrono::milliseconds(i)), 100u);
  EXPECT_GT(fs::file_size(o.path), 0u) << "nothing written before the flush";
  sink.flush();
  const auto lines = read_lines(o.path);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kLines));
  for (int i = 0; i < kLines; i += 997)
    EXPECT_EQ(lines[i], local_stamp(kWhen + std::chrono::milliseconds(i)) + " " + body) << "line " << i;
  EXPECT_EQ(sink.bytes_dropped(), 0u);
}

TEST_F(LogSinkTest, FileDescriptorIsCloseOnExec) {
  const auto o = options();
  LogSink sink(o);
  sink.write_line("x", kWhen);
  int found = 0;
  for (const auto& e : fs::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = fs::read_symlink(e.path(), ec);
    if (ec || target != o.path) continue;
    ++found;
    const int fd = std::stoi(e.path().filename().string());
    EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC) << "fd " << fd;
  }
  EXPECT_EQ(found, 1);
}

}  // namespace
}  // namespace vigil
