// CappedLines: lines across chunks, CRLF, the per-line and the total bound,
// and the count of what was dropped.
#include "capped_lines.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vigil {
namespace {

using Lines = std::vector<std::string>;

struct Collected {
  Lines lines;
  CappedLines::OnLine on_line() {
    return [this](std::string_view l) { lines.emplace_back(l); };
  }
};

TEST(CappedLines, LinesAcrossChunks) {
  CappedLines c(100, 1000);
  Collected out;
  c.feed("one\ntw", out.on_line());
  c.feed("o\r\n\nthree", out.on_line());
  EXPECT_EQ(out.lines, (Lines{"one", "two"}));
  c.finish(out.on_line());
  EXPECT_EQ(out.lines, (Lines{"one", "two", "three"}));
  EXPECT_EQ(c.dropped_bytes(), 0u);
  EXPECT_EQ(c.given_bytes(), 11u);
}

TEST(CappedLines, ALongLineIsCutAndTheRestCounted) {
  CappedLines c(4, 1000);
  Collected out;
  c.feed("abcdefgh", out.on_line());
  c.feed("ij\nxy\n", out.on_line());
  EXPECT_EQ(out.lines, (Lines{"abcd", "xy"}));
  EXPECT_EQ(c.dropped_bytes(), 6u);
}

TEST(CappedLines, ALineOfExactlyTheBoundIsWhole) {
  CappedLines c(4, 1000);
  Collected out;
  c.feed("abcd\n", out.on_line());
  EXPECT_EQ(out.lines, (Lines{"abcd"}));
  EXPECT_EQ(c.dropped_bytes(), 0u);
}

TEST(CappedLines, NothingPastTheTotalIsGivenOut) {
  CappedLines c(10, 8);
  Collected out;
  c.feed("aaaa\nbbbb\ncc\ndd\n", out.on_line());
  EXPECT_EQ(out.lines, (Lines{"aaaa", "bbbb"}));
  EXPECT_EQ(c.given_bytes(), 8u);
  EXPECT_EQ(c.dropped_bytes(), 4u);
}

TEST(CappedLines, MemoryStaysBoundedWhateverTheOutput) {
  CappedLines c(4096, 64 * 1024);
  Collected out;
  const std::string chunk(64 * 1024, 'x');
  for (int i = 0; i < 64; ++i) c.feed(chunk, out.on_line());  // 4 MiB, no newline
  c.feed("\n", out.on_line());
  ASSERT_EQ(out.lines.size(), 1u);
  EXPECT_EQ(out.lines[0].size(), 4096u);
  EXPECT_EQ(c.dropped_bytes(), 64u * 64 * 1024 - 4096);
}

TEST(CappedLines, FinishGivesOutTheLastLineOnce) {
  CappedLines c(100, 1000);
  Collected out;
  c.feed("last", out.on_line());
  c.finish(out.on_line());
  c.finish(out.on_line());
  EXPECT_EQ(out.lines, (Lines{"last"}));
}

}  // namespace
}  // namespace vigil
