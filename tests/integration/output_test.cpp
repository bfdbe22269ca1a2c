// A child's output through real pipes into its log files: a flood arrives
// complete and in order, and size rotation keeps exactly log_keep files.
#include <gtest/gtest.h>

#include <algorithm>

#include "harness.h"

namespace vigil::it {
namespace {

using OutputTest = InProcessTest;

std::uint64_t out_bytes(const Instance& i) {
  return i.counters().log[static_cast<std::size_t>(Stream::out)].bytes;
}

TEST_F(OutputTest, FloodReachesTheLogCompleteAndInOrder) {
  constexpr long kLines = 200000;
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "flood", {"--flood", std::to_string(kLines)},
      "restart = \"never\"\nlog_timestamps = true\nlog_max_size = \"1GiB\"")));
  Instance& i = vigil().instance("flood");

  // Every byte is counted once it is in the sink, which is flushed after
  // each batch: then the file holds it all.
  ASSERT_TRUE(vigil().run_until(
      [&] { return i.state() == State::exited && out_bytes(i) >= kLines * 100; }, 60s))
      << "state " << to_string(i.state()) << ", " << out_bytes(i) << " bytes";
  EXPECT_EQ(out_bytes(i), static_cast<std::uint64_t>(kLines) * 100);
  EXPECT_EQ(i.counters().log[static_cast<std::size_t>(Stream::out)].dropped, 0u);

  const auto lines = read_lines(vigil().log_path("flood"));
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kLines));
  std::string previous_stamp;
  for (long n = 0; n < kLines; ++n) {
    const std::string& line = lines[static_cast<std::size_t>(n)];
    auto text = strip_timestamp(line);
    ASSERT_TRUE(text.has_value()) << "line " << n << ": " << line;
    ASSERT_EQ(*text, flood_line(n)) << "line " << n;
    std::string stamp = line.substr(0, line.size() - text->size());
    ASSERT_GE(stamp, previous_stamp) << "line " << n;
    previous_stamp = std::move(stamp);
  }
}

TEST_F(OutputTest, RotationKeepsLogKeepFiles) {
  constexpr long kLines = 5000;  // 500,000 bytes: about 8 files of 64 KiB
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "rot", {"--flood", std::to_string(kLines)},
      "restart = \"never\"\nlog_timestamps = false\nlog_max_size = \"64KiB\"\nlog_keep = 3")));
  Instance& i = vigil().instance("rot");
  ASSERT_TRUE(vigil().run_until(
      [&] { return i.state() == State::exited && out_bytes(i) >= kLines * 100; }))
      << "state " << to_string(i.state()) << ", " << out_bytes(i) << " bytes";

  const fs::path logs = dir_ / "logs";
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(logs)) {
    std::string name = e.path().filename().string();
    if (name.starts_with("rot.out")) names.push_back(name);
    EXPECT_LE(fs::file_size(e.path()), 64u * 1024) << name;
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"rot.out.1.log", "rot.out.2.log", "rot.out.3.log",
                                              "rot.out.log"}));

  // Oldest to newest, the kept files hold the last lines, contiguous.
  std::vector<std::string> kept;
  for (const char* name : {"rot.out.3.log", "rot.out.2.log", "rot.out.1.log", "rot.out.log"}) {
    auto part = read_lines(logs / name);
    EXPECT_FALSE(part.empty()) << name;
    kept.insert(kept.end(), part.begin(), part.end());
  }
  ASSERT_FALSE(kept.empty());
  const long first = kLines - static_cast<long>(kept.size());
  ASSERT_GT(first, 0) << "older lines were rotated away";
  for (std::size_t k = 0; k < kept.size(); ++k)
    ASSERT_EQ(kept[k], flood_line(first + static_cast<long>(k))) << "kept line " << k;
}

TEST_F(OutputTest, StderrGoesToItsOwnFileAndCombinedModeMixes) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("split", {"--stderr", "to stderr", "--print", "to stdout"},
                     "restart = \"never\"\nlog_timestamps = false") +
      helper_program("both", {"--stderr", "to stderr", "--print", "to stdout"},
                     "restart = \"never\"\nlog_timestamps = false\nlog = \"combined\"")));
  const fs::path logs = dir_ / "logs";
  ASSERT_TRUE(vigil().run_until([&] {
    return read_lines(logs / "split.out.log").size() == 1 &&
           read_lines(logs / "split.err.log").size() == 1 &&
           read_lines(logs / "both.log").size() == 2;
  })) << read_file(logs / "both.log");
  EXPECT_EQ(read_lines(logs / "split.out.log")[0], "to stdout");
  EXPECT_EQ(read_lines(logs / "split.err.log")[0], "to stderr");
  auto both = read_lines(logs / "both.log");
  std::sort(both.begin(), both.end());
  EXPECT_EQ(both, (std::vector<std::string>{"to stderr", "to stdout"}));
  EXPECT_FALSE(fs::exists(logs / "both.out.log"));
}

}  // namespace
}  // namespace vigil::it
