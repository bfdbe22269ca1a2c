// A child's log when the disk under it fails (issue 13, defect 6): a full
// file system (a small tmpfs, filled up, then freed) and a log folder
// removed while the child writes. Lines are in the file whole or counted
// as dropped, one warning per outage and one message on recovery, and a
// deleted file comes back. vigil runs in-process: the counters and its own
// log are read directly.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <regex>
#include <set>

#include "harness.h"

namespace vigil::it {
namespace {

// A tmpfs of `size` mounted at `dir` for the test's life; ok() is false
// (with why()) where mounting is not permitted.
class TmpfsMount {
 public:
  TmpfsMount(const fs::path& dir, const std::string& size) : dir_(dir) {
    fs::create_directories(dir_);
    const std::string options = "size=" + size + ",mode=0755";
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, options.c_str()) == 0)
      mounted_ = true;
    else
      why_ = std::string("mount -t tmpfs: ") + std::strerror(errno);
  }
  ~TmpfsMount() {
    if (mounted_ && ::umount2(dir_.c_str(), 0) != 0) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool ok() const { return mounted_; }
  const std::string& why() const { return why_; }

 private:
  fs::path dir_;
  bool mounted_ = false;
  std::string why_;
};

// Writes to `path` until the file system says ENOSPC; returns the bytes written.
std::uint64_t fill_up(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return 0;
  const std::string chunk(4096, 'f');
  std::uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::write(fd.get(), chunk.data(), chunk.size());
    if (n > 0) {
      total += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return total;
  }
}

std::size_t count_of(const std::string& text, std::string_view needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// "tick N" lines of child_helper --tick: N -> how often it is in the file;
// a line that is not whole lands in `bad`.
std::map<long, int> ticks_in(const fs::path& path, std::vector<std::string>* bad) {
  static const std::regex kTick(R"(tick (0|[1-9][0-9]*))");
  std::map<long, int> seen;
  for (const auto& line : read_lines(path)) {
    std::smatch m;
    if (std::regex_match(line, m, kTick))
      ++seen[std::stol(m[1])];
    else if (bad)
      bad->push_back(line);
  }
  return seen;
}

long max_tick(const fs::path& path) {
  const auto seen = ticks_in(path, nullptr);
  return seen.empty() ? -1 : seen.rbegin()->first;
}

std::uint64_t tick_bytes(long n) { return std::string("tick " + std::to_string(n) + "\n").size(); }

class LogDiskTest : public ::testing::Test {
 protected:
  void TearDown() override {
    vigil_.reset();  // before the tmpfs goes
    mount_.reset();
    EXPECT_EQ(fds_.leaks(), "");
  }

  static StreamCounters out_counters(const Instance& i) {
    return i.counters().log[static_cast<std::size_t>(Stream::out)];
  }

  TempDir dir_;
  FdLeakCheck fds_;
  std::unique_ptr<TmpfsMount> mount_;
  std::unique_ptr<InProcessVigil> vigil_;
};

TEST_F(LogDiskTest, FullDiskDropsWholeLinesCountsThemAndWarnsOncePerOutage) {
  mount_ = std::make_unique<TmpfsMount>(dir_ / "logs", "512k");
  if (!mount_->ok()) GTEST_SKIP() << "needs a small tmpfs for a real ENOSPC: " << mount_->why();

  vigil_ = std::make_unique<InProcessVigil>(
      dir_, helper_program("tick", {"--tick", "2"},
                           "restart = \"never\"\nlog_timestamps = false\nlog_max_size = \"1GiB\""));
  ASSERT_TRUE(vigil_->ok()) << vigil_->errors();
  vigil_->start();
  Instance& i = vigil_->instance("tick");
  const fs::path log = vigil_->log_path("tick");
  ASSERT_TRUE(vigil_->run_until([&] { return max_tick(log) >= 50; })) << vigil_->log_text();

  // The disk fills up: the child keeps writing, its lines are dropped.
  const fs::path filler = dir_ / "logs" / "filler";
  ASSERT_GT(fill_up(filler), 0u);
  ASSERT_TRUE(vigil_->run_until([&] { return out_counters(i).dropped >= 20 * tick_bytes(1000); }))
      << vigil_->log_text();

  // Space again: lines land again once the sink retries (once a second).
  const long at_removal = max_tick(log);
  fs::remove(filler);
  ASSERT_TRUE(vigil_->run_until([&] { return max_tick(log) >= at_removal + 100; }))
      << vigil_->log_text();

  // The end of the stream: every line read from the pipe is accounted for,
  // written or dropped, up to the last one the file holds.
  ::kill(i.pid(), SIGKILL);
  std::uint64_t expected = 0;
  long last = -1;
  ASSERT_TRUE(vigil_->run_until([&] {
    if (i.state() != State::exited) return false;
    const long now_last = max_tick(log);
    for (; last < now_last; ++last) expected += tick_bytes(last + 1);
    return out_counters(i).bytes + out_counters(i).dropped == expected;
  })) << "bytes " << out_counters(i).bytes << " + dropped " << out_counters(i).dropped
      << " != " << expected;

  std::vector<std::string> bad;
  const auto seen = ticks_in(log, &bad);
  EXPECT_TRUE(bad.empty()) << "not whole: \"" << (bad.empty() ? "" : bad.front()) << "\" and "
                           << (bad.empty() ? 0 : bad.size() - 1) << " more";
  std::uint64_t present_bytes = 0, missing_bytes = 0;
  long missing = 0;
  for (long n = 0; n <= last; ++n) {
    const auto it = seen.find(n);
    if (it == seen.end()) {
      ++missing;
      missing_bytes += tick_bytes(n);
      continue;
    }
    EXPECT_EQ(it->second, 1) << "tick " << n << " written " << it->second << " times";
    present_bytes += tick_bytes(n);
  }
  EXPECT_GT(missing, 0) << "the outage dropped nothing: it was not tested";
  EXPECT_EQ(out_counters(i).dropped, missing_bytes) << missing << " lines missing";
  EXPECT_EQ(out_counters(i).bytes, present_bytes);

  const std::string text = vigil_->log_text();
  EXPECT_EQ(count_of(text, "tick.out.log: cannot write it: No space left on device"), 1u) << text;
  EXPECT_EQ(count_of(text, "tick.out.log: writing again"), 1u) << text;
}

TEST_F(LogDiskTest, DeletedLogFolderIsCreatedAgain) {
  vigil_ = std::make_unique<InProcessVigil>(
      dir_, helper_program("tick", {"--tick", "5"}, "log_timestamps = false"));
  ASSERT_TRUE(vigil_->ok()) << vigil_->errors();
  vigil_->start();
  const fs::path log = vigil_->log_path("tick");
  ASSERT_TRUE(vigil_->run_until([&] { return max_tick(log) >= 10; })) << vigil_->log_text();

  const long before = max_tick(log);
  fs::remove_all(dir_ / "logs");
  ASSERT_FALSE(fs::exists(log));
  // Noticed within a second (one fstat a second, not one a line); new lines
  // land in the new file.
  ASSERT_TRUE(vigil_->run_until([&] { return max_tick(log) > before + 10; }))
      << vigil_->log_text();
  EXPECT_NE(vigil_->log_text().find("tick.out.log: the file was deleted while open"),
            std::string::npos)
      << vigil_->log_text();
}

TEST_F(LogDiskTest, DeletedLogFileIsCreatedAgain) {
  vigil_ = std::make_unique<InProcessVigil>(
      dir_, helper_program("tick", {"--tick", "5"}, "log_timestamps = false"));
  ASSERT_TRUE(vigil_->ok()) << vigil_->errors();
  vigil_->start();
  const fs::path log = vigil_->log_path("tick");
  ASSERT_TRUE(vigil_->run_until([&] { return max_tick(log) >= 10; })) << vigil_->log_text();

  const long before = max_tick(log);
  fs::remove(log);
  ASSERT_TRUE(vigil_->run_until([&] { return max_tick(log) > before + 10; }))
      << vigil_->log_text();
}

}  // namespace
}  // namespace vigil::it
