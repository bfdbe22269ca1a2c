// LineSplitter: lines across read boundaries, the max_line cap, finish().
#include "line_splitter.h"

#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <string>
#include <vector>

namespace vigil {
namespace {

struct Collector {
  std::vector<std::string> lines;
  std::function<void(std::string_view)> fn() {
    return [this](std::string_view l) { lines.emplace_back(l); };
  }
};

std::vector<std::string> split_all(LineSplitter& s, const std::vector<std::string>& feeds,
                                   bool finish = true) {
  Collector c;
  for (const auto& f : feeds) s.feed(f, c.fn());
  if (finish) s.finish(c.fn());
  return c.lines;
}

using Lines = std::vector<std::string>;

TEST(LineSplitter, SplitsCompleteLines) {
  LineSplitter s;
  EXPECT_EQ(split_all(s, {"one\ntwo\nthree\n"}), (Lines{"one", "two", "three"}));
  EXPECT_EQ(s.pending_bytes(), 0u);
}

TEST(LineSplitter, JoinsLinesAcrossFeeds) {
  LineSplitter s;
  Collector c;
  s.feed("hel", c.fn());
  EXPECT_TRUE(c.lines.empty());
  EXPECT_EQ(s.pending_bytes(), 3u);
  s.feed("lo wo", c.fn());
  EXPECT_TRUE(c.lines.empty());
  s.feed("rld\nsec", c.fn());
  EXPECT_EQ(c.lines, (Lines{"hello world"}));
  EXPECT_EQ(s.pending_bytes(), 3u);
  s.feed("ond\n", c.fn());
  EXPECT_EQ(c.lines, (Lines{"hello world", "second"}));
  EXPECT_EQ(s.pending_bytes(), 0u);
}

TEST(LineSplitter, NewlineAloneInAFeedEndsThePendingLine) {
  LineSplitter s;
  EXPECT_EQ(split_all(s, {"abc", "\n", "\n"}), (Lines{"abc", ""}));
}

TEST(LineSplitter, KeepsCarriageReturns) {
  LineSplitter s;
  EXPECT_EQ(split_all(s, {"dos\r\nline\r", "\nlone\rcr\n"}), (Lines{"dos\r", "line\r", "lone\rcr"}));
}

TEST(LineSplitter, EmptyLinesAreLines) {
  LineSplitter s;
  EXPECT_EQ(split_all(s, {"\n\na\n\n"}), (Lines{"", "", "a", ""}));
}

TEST(LineSplitter, EmptyFeedDoesNothing) {
  LineSplitter s;
  Collector c;
  s.feed("", c.fn());
  s.feed("x", c.fn());
  s.feed("", c.fn());
  EXPECT_TRUE(c.lines.empty());
  EXPECT_EQ(s.pending_bytes(), 1u);
}

TEST(LineSplitter, FinishEmitsTheUnfinishedLineOnce) {
  LineSplitter s;
  Collector c;
  s.feed("a\ntail", c.fn());
  s.finish(c.fn());
  s.finish(c.fn());
  EXPECT_EQ(c.lines, (Lines{"a", "tail"}));
  EXPECT_EQ(s.pending_bytes(), 0u);
}

TEST(LineSplitter, FinishWithNothingPendingEmitsNothing) {
  LineSplitter s;
  EXPECT_EQ(split_all(s, {"a\n"}), (Lines{"a"}));
  LineSplitter empty;
  EXPECT_TRUE(split_all(empty, {}).empty());
}

TEST(LineSplitter, CompleteLinesAreViewsIntoTheInput) {
  LineSplitter s;
  const std::string data = "first\nsecond\npart";
  std::vector<const char*> starts;
  s.feed(data, [&](std::string_view l) { starts.push_back(l.data()); });
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_EQ(starts[0], data.data());
  EXPECT_EQ(starts[1], data.data() + 6);
}

TEST(LineSplitter, LongLineWithoutNewlineIsCutInMaxLinePieces) {
  constexpr std::size_t kMax = LineSplitter::kDefaultMaxLine;  // 64 KiB
  LineSplitter s;
  std::string big(200 * 1024, 'x');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  Collector c;
  std::size_t max_pending = 0;
  // Arrives in 4 KiB reads, as from a pipe.
  for (std::size_t off = 0; off < big.size(); off += 4096) {
    s.feed(std::string_view(big).substr(off, 4096), c.fn());
    max_pending = std::max(max_pending, s.pending_bytes());
  }
  EXPECT_LT(max_pending, kMax);
  ASSERT_EQ(c.lines.size(), 3u);  // 200 KiB = 3 * 64 KiB + 8 KiB
  for (const auto& l : c.lines) EXPECT_EQ(l.size(), kMax);
  EXPECT_EQ(s.pending_bytes(), 200 * 1024 - 3 * kMax);
  s.finish(c.fn());
  ASSERT_EQ(c.lines.size(), 4u);
  EXPECT_EQ(c.lines[3].size(), 8 * 1024u);
  std::string joined;
  for (const auto& l : c.lines) joined += l;
  EXPECT_EQ(joined, big);
}

TEST(LineSplitter, LongLineInOneFeedIsCutToo) {
  LineSplitter s(4);
  EXPECT_EQ(split_all(s, {"abcdefghij\nxy\n"}), (Lines{"abcd", "efgh", "ij", "xy"}));
}

TEST(LineSplitter, PendingNeverReachesMaxLine) {
  LineSplitter s(4);
  Collector c;
  s.feed("abc", c.fn());
  EXPECT_EQ(s.pending_bytes(), 3u);
  EXPECT_TRUE(c.lines.empty());
  s.feed("d", c.fn());  // fourth byte: a full piece, nothing kept
  EXPECT_EQ(c.lines, (Lines{"abcd"}));
  EXPECT_EQ(s.pending_bytes(), 0u);
}

TEST(LineSplitter, LineOfExactlyMaxLineGivesNoExtraEmptyLine) {
  // Whether the '\n' arrives with the line or in the next read.
  LineSplitter one(4);
  EXPECT_EQ(split_all(one, {"abcd\n\nx\n"}), (Lines{"abcd", "", "x"}));
  LineSplitter two(4);
  EXPECT_EQ(split_all(two, {"abcd", "\n\nx\n"}), (Lines{"abcd", "", "x"}));
  LineSplitter three(4);
  EXPECT_EQ(split_all(three, {"ab", "cdefgh", "\n"}), (Lines{"abcd", "efgh"}));
}

TEST(LineSplitter, ResultDoesNotDependOnReadBoundaries) {
  std::mt19937 rng(12345);
  std::string stream;
  // Lines of many lengths around the cap (7), empty ones and CRs included.
  for (int i = 0; i < 400; ++i) {
    const int len = static_cast<int>(rng() % 20);
    for (int j = 0; j < len; ++j) stream += "ab\rcd"[rng() % 5];
    stream += '\n';
  }
  stream += "unterminated";

  LineSplitter whole(7);
  const auto expected = split_all(whole, {stream});
  for (const auto& l : expected) ASSERT_LE(l.size(), 7u);

  for (int trial = 0; trial < 50; ++trial) {
    std::vector<std::string> feeds;
    for (std::size_t off = 0; off < stream.size();) {
      const std::size_t n = 1 + rng() % 16;
      feeds.push_back(stream.substr(off, n));
      off += n;
    }
    LineSplitter s(7);
    ASSERT_EQ(split_all(s, feeds), expected) << "trial " << trial;
  }
}

// Across exec (`vigil upgrade`): the unfinished line goes to the new
// splitter, which ends it with the next feed, once.
TEST(LineSplitter, AnUnfinishedLineCarriesToAnotherSplitter) {
  LineSplitter before;
  Collector c;
  before.feed("one\ntw", c.fn());
  EXPECT_EQ(c.lines, Lines{"one"});
  EXPECT_EQ(before.partial(), "tw");
  LineSplitter after;
  after.restore(before.partial());
  after.feed("o\nthree\n", c.fn());
  EXPECT_EQ(c.lines, (Lines{"one", "two", "three"}));
  EXPECT_EQ(after.partial(), "");
}

TEST(LineSplitter, ARestoredLineIsCutToTheCap) {
  LineSplitter s(8);
  s.restore(std::string(20, 'x'));
  EXPECT_EQ(s.pending_bytes(), 7u);
}

}  // namespace
}  // namespace vigil
