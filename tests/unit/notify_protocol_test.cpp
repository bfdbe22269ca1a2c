// Notify protocol parser: every message, the unknown and malformed lines,
// STATUS sanitizing, CRLF, the 4096-byte line bound, and stream chunking at
// every byte position (the stream must parse exactly as one datagram does).
#include "notify_protocol.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace vigil {
namespace {

using namespace std::string_literals;
using Events = std::vector<std::string>;

// Messages and errors, in order, as short words: "ready", "memory 42",
// "status [text]", "error: missing '='".
struct Recorder {
  Events events;
  std::vector<std::string> error_lines;

  NotifyMessageFn on_message() {
    return [this](const NotifyMessage& m) {
      std::string e = to_string(m.kind);
      if (m.kind == NotifyKind::memory || m.kind == NotifyKind::extend_timeout)
        e += " " + std::to_string(m.value);
      if (m.kind == NotifyKind::status) e += " [" + std::string(m.text) + "]";
      events.push_back(std::move(e));
    };
  }
  NotifyErrorFn on_error() {
    return [this](NotifyError err, std::string_view line) {
      events.push_back("error: "s + to_string(err));
      error_lines.emplace_back(line);
    };
  }
};

struct Parsed {
  Events events;
  NotifyCounts counts;
  std::vector<std::string> error_lines;
};

Parsed datagram(std::string_view d) {
  Recorder r;
  Parsed p;
  p.counts = parse_notify_datagram(d, r.on_message(), r.on_error());
  p.events = std::move(r.events);
  p.error_lines = std::move(r.error_lines);
  return p;
}

Parsed stream(const std::vector<std::string>& chunks, bool finish = true) {
  Recorder r;
  NotifyStreamParser s;
  for (const auto& c : chunks) s.feed(c, r.on_message(), r.on_error());
  if (finish) s.finish(r.on_message(), r.on_error());
  return {std::move(r.events), s.counts(), std::move(r.error_lines)};
}

Events events(std::string_view d) { return datagram(d).events; }

NotifyCounts counts(std::uint64_t messages, std::uint64_t unknown, std::uint64_t errors) {
  return NotifyCounts{messages, unknown, errors};
}

// The text a STATUS= line with this value delivers.
std::string status_of(std::string_view value) {
  auto e = events("STATUS="s + std::string(value));
  if (e.size() != 1 || e[0].rfind("status [", 0) != 0)
    return "<not one status: " + (e.empty() ? "" : e[0]) + ">";
  return e[0].substr(8, e[0].size() - 9);
}

// ---- the vocabulary ----

TEST(NotifyProtocol, ParsesEveryMessage) {
  auto p = datagram(
      "READY=1\nWATCHDOG=1\nWATCHDOG=trigger\nSTATUS=serving 12 clients\n"
      "MEMORY=104857600\nSTOPPING=1\nEXTEND_TIMEOUT_USEC=5000000\n");
  EXPECT_EQ(p.events, (Events{"ready", "watchdog", "watchdog_trigger", "status [serving 12 clients]",
                              "memory 104857600", "stopping", "extend_timeout 5000000"}));
  EXPECT_EQ(p.counts, counts(7, 0, 0));
}

TEST(NotifyProtocol, DatagramTrailingNewlineIsOptional) {
  EXPECT_EQ(events("READY=1"), (Events{"ready"}));
  EXPECT_EQ(events("READY=1\nSTATUS=up"), (Events{"ready", "status [up]"}));
  EXPECT_EQ(events("READY=1\nSTATUS=up\n"), (Events{"ready", "status [up]"}));
}

TEST(NotifyProtocol, BlankLinesCountNowhere) {
  auto p = datagram("\n\nREADY=1\n\n\r\n\n");
  EXPECT_EQ(p.events, (Events{"ready"}));
  EXPECT_EQ(p.counts, counts(1, 0, 0));
  EXPECT_EQ(datagram("").counts, counts(0, 0, 0));
}

TEST(NotifyProtocol, ReadyAndStoppingWithOtherValuesAreUnknownAsInSystemd) {
  auto p = datagram("READY=0\nREADY=\nREADY=yes\nSTOPPING=0\nSTOPPING=true\n");
  EXPECT_TRUE(p.events.empty());
  EXPECT_EQ(p.counts, counts(0, 5, 0));
}

TEST(NotifyProtocol, WatchdogWithAnyOtherValueIsAnError) {
  for (const char* line : {"WATCHDOG=0", "WATCHDOG=2", "WATCHDOG=", "WATCHDOG=TRIGGER", "WATCHDOG=1 "}) {
    auto p = datagram(line);
    EXPECT_EQ(p.events, (Events{"error: invalid value"})) << line;
    EXPECT_EQ(p.counts, counts(0, 0, 1)) << line;
  }
}

TEST(NotifyProtocol, MemoryIsADecimalU64) {
  EXPECT_EQ(events("MEMORY=0"), (Events{"memory 0"}));
  EXPECT_EQ(events("MEMORY=007"), (Events{"memory 7"}));
  EXPECT_EQ(events("MEMORY=18446744073709551615"), (Events{"memory 18446744073709551615"}));
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "0x10", "1.5", "1e6", "12MiB", "abc",
                          "18446744073709551616", "99999999999999999999999"}) {
    auto p = datagram("MEMORY="s + bad);
    EXPECT_EQ(p.events, (Events{"error: invalid value"})) << bad;
    EXPECT_EQ(p.counts, counts(0, 0, 1)) << bad;
  }
}

TEST(NotifyProtocol, ExtendTimeoutIsADecimalU64) {
  EXPECT_EQ(events("EXTEND_TIMEOUT_USEC=0"), (Events{"extend_timeout 0"}));
  EXPECT_EQ(events("EXTEND_TIMEOUT_USEC=18446744073709551615"),
            (Events{"extend_timeout 18446744073709551615"}));
  for (const char* bad : {"", "-5", "5s", "18446744073709551616"})
    EXPECT_EQ(events("EXTEND_TIMEOUT_USEC="s + bad), (Events{"error: invalid value"})) << bad;
}

TEST(NotifyProtocol, SystemdKeysAreAcceptedAsUnknown) {
  const char* lines[] = {"MAINPID=4242",       "RELOADING=1",      "FDSTORE=1",
                         "FDSTOREREMOVE=1",    "FDNAME=listener",  "FDPOLL=0",
                         "ERRNO=2",            "BUSERROR=org.x.Y", "EXIT_STATUS=3",
                         "MONOTONIC_USEC=123", "NOTIFYACCESS=all", "BARRIER=1",
                         "WATCHDOG_USEC=20000000"};
  for (const char* line : lines) {
    auto p = datagram(line);
    EXPECT_TRUE(p.events.empty()) << line;
    EXPECT_EQ(p.counts, counts(0, 1, 0)) << line;
  }
}

TEST(NotifyProtocol, AnyWellFormedKeyIsUnknown) {
  auto p = datagram("FOO=bar\n_X=1\nA1_B2=\nX_=a=b\nZ=\xff\x00"s);
  // The last line has a NUL in its value: an error, not unknown.
  EXPECT_EQ(p.events, (Events{"error: NUL byte"}));
  EXPECT_EQ(p.counts, counts(0, 4, 1));
}

// A listener that knows an unknown key (a watch reads MAINPID=) gets each
// unknown line's key and value, in order; the counts do not change.
TEST(NotifyProtocol, UnknownLinesReachTheirListenerWithKeyAndValue) {
  std::vector<std::pair<std::string, std::string>> unknown;
  Recorder r;
  auto c = parse_notify_datagram("MAINPID=4242\nREADY=1\nREADY=0\nbad\nX=a=b\n", r.on_message(),
                                 r.on_error(), [&](std::string_view key, std::string_view value) {
                                   unknown.emplace_back(key, value);
                                 });
  EXPECT_EQ(unknown, (std::vector<std::pair<std::string, std::string>>{
                         {"MAINPID", "4242"}, {"READY", "0"}, {"X", "a=b"}}));
  EXPECT_EQ(r.events, (Events{"ready", "error: missing '='"}));
  EXPECT_EQ(c, counts(1, 3, 1));
}

TEST(NotifyProtocol, MalformedLinesAreErrorsAndTheRestStillParses) {
  auto p = datagram(
      "READY\n"         // no '='
      "=1\n"            // empty key
      "ready=1\n"       // lower case
      "1READY=1\n"      // starts with a digit
      "RE ADY=1\n"      // space in key
      " READY=1\n"      // leading space
      "RE\0ADY=1\n"s    // NUL in key
      "READY=1\0\n"s    // NUL in value
      "WATCHDOG=1\n");
  EXPECT_EQ(p.events, (Events{"error: missing '='", "error: invalid key", "error: invalid key",
                              "error: invalid key", "error: invalid key", "error: invalid key",
                              "error: invalid key", "error: NUL byte", "watchdog"}));
  EXPECT_EQ(p.counts, counts(1, 0, 8));
  ASSERT_EQ(p.error_lines.size(), 8u);
  EXPECT_EQ(p.error_lines[0], "READY");
  EXPECT_EQ(p.error_lines[7], "READY=1\0"s);
}

TEST(NotifyProtocol, BinaryGarbageIsErrorsNeverACrash) {
  std::mt19937 gen(7);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string junk;
  for (int i = 0; i < 20000; ++i) junk.push_back(static_cast<char>(byte(gen)));
  auto p = datagram(junk + "\nREADY=1\n");
  ASSERT_FALSE(p.events.empty());
  EXPECT_EQ(p.events.back(), "ready");
  EXPECT_GT(p.counts.protocol_errors, 0u);
  EXPECT_EQ(stream({junk + "\nREADY=1\n"}).events, p.events);
}

TEST(NotifyProtocol, ValueMayContainEquals) {
  EXPECT_EQ(events("STATUS=a=b=c"), (Events{"status [a=b=c]"}));
}

// ---- STATUS text ----

TEST(NotifyProtocol, StatusIsKeptAsGiven) {
  EXPECT_EQ(status_of(""), "");
  EXPECT_EQ(status_of("  spaces kept  "), "  spaces kept  ");
  EXPECT_EQ(status_of("tab\tkept"), "tab\tkept");
  EXPECT_EQ(status_of("h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80"), "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80");
}

TEST(NotifyProtocol, StatusControlCharactersBecomeQuestionMarks) {
  EXPECT_EQ(status_of("\x1b[31mred\x1b[0m"), "?[31mred?[0m");
  EXPECT_EQ(status_of("bell\x07 del\x7f cr\rmid"), "bell? del? cr?mid");
  EXPECT_EQ(status_of("c1 \xc2\x9b csi \xc2\x85 nel, nbsp \xc2\xa0 kept"), "c1 ? csi ? nel, nbsp \xc2\xa0 kept");
}

TEST(NotifyProtocol, StatusInvalidUtf8BecomesQuestionMarks) {
  EXPECT_EQ(status_of("a\xff" "b"), "a?b");
  EXPECT_EQ(status_of("\xc0\xaf"), "??");            // overlong '/'
  EXPECT_EQ(status_of("\xed\xa0\x80"), "???");       // a surrogate
  EXPECT_EQ(status_of("\xf4\x90\x80\x80"), "????");  // above U+10FFFF
  EXPECT_EQ(status_of("cut \xe2\x9c"), "cut ??");    // truncated sequence
  EXPECT_EQ(status_of("\x80\x80"), "??");            // lone continuation bytes
}

TEST(NotifyProtocol, StatusIsCutToTheBoundOnACharacterBoundary) {
  EXPECT_EQ(status_of(std::string(3000, 'x')), std::string(kNotifyMaxStatusBytes, 'x'));
  // 1023 bytes + a 2-byte character: the character does not fit and is dropped whole.
  EXPECT_EQ(status_of(std::string(1023, 'x') + "\xc3\xa9" + "tail"), std::string(1023, 'x'));
  EXPECT_EQ(status_of(std::string(1022, 'x') + "\xc3\xa9" + "tail"), std::string(1022, 'x') + "\xc3\xa9");
  EXPECT_EQ(status_of(std::string(3000, '\x01')), std::string(kNotifyMaxStatusBytes, '?'));
  EXPECT_EQ(status_of(std::string(3000, 'x') + "\x01"), std::string(kNotifyMaxStatusBytes, 'x'));
}

TEST(NotifyProtocol, PlainStatusIsAViewIntoTheInput) {
  const std::string d = "STATUS=plain ascii\n";
  const char* seen = nullptr;
  parse_notify_datagram(d, [&](const NotifyMessage& m) { seen = m.text.data(); });
  EXPECT_EQ(seen, d.data() + 7);
}

TEST(NotifyProtocol, SanitizeForLogs) {
  EXPECT_EQ(sanitize_notify_text("bad\x00line\xff"s), "bad?line?");
  EXPECT_EQ(sanitize_notify_text(std::string(500, 'a'), 10), std::string(10, 'a'));
  EXPECT_EQ(sanitize_notify_text(""), "");
}

// ---- CRLF ----

TEST(NotifyProtocol, OneTrailingCarriageReturnIsStripped) {
  EXPECT_EQ(events("READY=1\r\nSTATUS=x\r\nMEMORY=5\r\n"), (Events{"ready", "status [x]", "memory 5"}));
  EXPECT_EQ(events("READY=1\r"), (Events{"ready"}));  // datagram end
  EXPECT_EQ(events("STATUS=x\r\r\n"), (Events{"status [x?]"}));
  EXPECT_EQ(events("STA\rTUS=1\n"), (Events{"error: invalid key"}));
  EXPECT_EQ(stream({"READY=1\r", "\nWATCHDOG=1\r", "\n"}).events, (Events{"ready", "watchdog"}));
}

// ---- the line bound ----

TEST(NotifyProtocol, LineOf4096BytesWithItsNewlineIsAccepted) {
  const std::string value(kNotifyMaxLineBytes - 1 - 7, 'v');  // "STATUS=" + value = 4095
  auto p = datagram("STATUS=" + value + "\n");
  EXPECT_EQ(p.counts, counts(1, 0, 0));
  auto s = stream({"STATUS=" + value, "\n"});
  EXPECT_EQ(s.counts, counts(1, 0, 0));
}

TEST(NotifyProtocol, LineOf4097BytesIsOneErrorAndTheNextLinesParse) {
  const std::string value(kNotifyMaxLineBytes - 7, 'v');  // 4096 bytes before the '\n'
  const std::string input = "STATUS=" + value + "\nREADY=1\n";
  auto p = datagram(input);
  EXPECT_EQ(p.events, (Events{"error: line too long", "ready"}));
  ASSERT_EQ(p.error_lines.size(), 1u);
  EXPECT_EQ(p.error_lines[0].size(), kNotifyMaxLineBytes);
  auto s = stream({"STATUS=" + value.substr(0, 4000), value.substr(4000), "\nREADY=1\n"});
  EXPECT_EQ(s.events, p.events);
  EXPECT_EQ(s.error_lines, p.error_lines);
  // Without a final newline in a datagram, too.
  EXPECT_EQ(events("READY=1\nSTATUS=" + value), (Events{"ready", "error: line too long"}));
}

TEST(NotifyProtocol, TenKilobyteLineThenValidLinesInAnyChunking) {
  const std::string input = "STATUS=" + std::string(10 * 1024, 'z') + "\nREADY=1\nMEMORY=9\nWATCHDOG=1\n";
  const Events want{"error: line too long", "ready", "memory 9", "watchdog"};
  EXPECT_EQ(datagram(input).events, want);
  for (std::size_t size : {1u, 2u, 7u, 100u, 4095u, 4096u, 4097u, 8192u, 100000u}) {
    std::vector<std::string> chunks;
    for (std::size_t i = 0; i < input.size(); i += size) chunks.push_back(input.substr(i, size));
    auto s = stream(chunks);
    EXPECT_EQ(s.events, want) << "chunk size " << size;
    EXPECT_EQ(s.counts, counts(3, 0, 1)) << "chunk size " << size;
  }
}

TEST(NotifyProtocol, OverLongLineIsCountedOnceAsSoonAsItIsOverLong) {
  NotifyStreamParser s;
  Recorder r;
  s.feed(std::string(5000, 'A'), r.on_message(), r.on_error());
  EXPECT_EQ(s.counts(), counts(0, 0, 1));
  EXPECT_EQ(s.pending_bytes(), 0u);  // nothing of it is kept
  for (int i = 0; i < 10; ++i) s.feed(std::string(10000, 'A'), r.on_message(), r.on_error());
  EXPECT_EQ(s.counts(), counts(0, 0, 1));
  s.feed("still the same line\nREADY=1\n", r.on_message(), r.on_error());
  EXPECT_EQ(r.events, (Events{"error: line too long", "ready"}));
  EXPECT_EQ(s.counts(), counts(1, 0, 1));
}

TEST(NotifyProtocol, PartialLineIsBoundedAcrossManySmallFeeds) {
  NotifyStreamParser s;
  Recorder r;
  for (std::size_t i = 0; i < kNotifyMaxLineBytes - 1; ++i) s.feed("X", r.on_message(), r.on_error());
  EXPECT_EQ(s.pending_bytes(), kNotifyMaxLineBytes - 1);
  EXPECT_EQ(s.counts().protocol_errors, 0u);
  s.feed("X", r.on_message(), r.on_error());  // byte 4096 without a newline
  EXPECT_EQ(s.pending_bytes(), 0u);
  EXPECT_EQ(s.counts().protocol_errors, 1u);
  ASSERT_EQ(r.error_lines.size(), 1u);
  EXPECT_EQ(r.error_lines[0], std::string(kNotifyMaxLineBytes, 'X'));
}

// ---- the stream ----

// Across exec (`vigil upgrade`): a line half read by one vigil is finished
// by the next one's parser, once, with no protocol error.
TEST(NotifyProtocol, AnUnfinishedLineCarriesToAnotherParser) {
  NotifyStreamParser before;
  Recorder r;
  before.feed("READY=1\nWATCH", r.on_message(), r.on_error());
  EXPECT_EQ(before.partial(), "WATCH");
  NotifyStreamParser after;
  after.restore(before.partial(), before.discarding());
  after.feed("DOG=1\n", r.on_message(), r.on_error());
  EXPECT_EQ(r.events, (Events{"ready", "watchdog"}));
  EXPECT_EQ(after.counts(), counts(1, 0, 0));
  // An over-long line being skipped is still skipped.
  NotifyStreamParser skipping;
  skipping.feed(std::string(5000, 'A'), r.on_message(), r.on_error());
  NotifyStreamParser next;
  next.restore(skipping.partial(), skipping.discarding());
  Recorder r2;
  next.feed("AAAA\nREADY=1\n", r2.on_message(), r2.on_error());
  EXPECT_EQ(r2.events, (Events{"ready"}));
}


TEST(NotifyProtocol, StreamKeepsTheUnfinishedLine) {
  NotifyStreamParser s;
  Recorder r;
  s.feed("REA", r.on_message(), r.on_error());
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(s.pending_bytes(), 3u);
  s.feed("DY=1\nWATCH", r.on_message(), r.on_error());
  EXPECT_EQ(r.events, (Events{"ready"}));
  EXPECT_EQ(s.pending_bytes(), 5u);
  s.feed("DOG=1\n", r.on_message(), r.on_error());
  EXPECT_EQ(r.events, (Events{"ready", "watchdog"}));
  EXPECT_EQ(s.pending_bytes(), 0u);
  EXPECT_EQ(s.counts(), counts(2, 0, 0));
}

TEST(NotifyProtocol, StreamFinishParsesTheUnterminatedLastLine) {
  EXPECT_EQ(stream({"WATCHDOG=1\nREADY=1"}).events, (Events{"watchdog", "ready"}));
  EXPECT_EQ(stream({"WATCHDOG=1\nREADY=1"}, false).events, (Events{"watchdog"}));
  // An over-long tail was counted already; finish adds nothing.
  EXPECT_EQ(stream({std::string(9000, 'a')}).counts, counts(0, 0, 1));
}

TEST(NotifyProtocol, StreamParserIsReusableAfterFinish) {
  NotifyStreamParser s;
  Recorder r;
  s.feed("READY", r.on_message(), r.on_error());
  s.finish(r.on_message(), r.on_error());
  s.feed("=1\n", r.on_message(), r.on_error());
  EXPECT_EQ(r.events, (Events{"error: missing '='", "error: invalid key"}));
}

TEST(NotifyProtocol, GarbageWithoutNewlineJoinsTheNextLineAsOneError) {
  auto s = stream({"garbage\x01\xfe", "READY=1\nWATCHDOG=1\n", "STATUS=ok\n"});
  EXPECT_EQ(s.events, (Events{"error: invalid key", "watchdog", "status [ok]"}));
  EXPECT_EQ(s.counts, counts(2, 0, 1));
}

const std::string kMixed =
    "READY=1\r\nSTATUS=h\xc3\xa9llo\x1b!\nbogus\nMEMORY=12345\nWATCHDOG=1\n\nMAINPID=7\n"
    "EXTEND_TIMEOUT_USEC=99\nMEMORY=x\nSTOPPING=1\nWATCHDOG=trigger";

TEST(NotifyProtocol, StreamSplitAtEveryPositionParsesAsOneDatagram) {
  const Parsed want = datagram(kMixed);
  ASSERT_EQ(want.counts, counts(7, 1, 2));
  EXPECT_EQ(stream({kMixed}).events, want.events);
  for (std::size_t i = 0; i <= kMixed.size(); ++i) {
    auto s = stream({kMixed.substr(0, i), kMixed.substr(i)});
    EXPECT_EQ(s.events, want.events) << "split at " << i;
    EXPECT_EQ(s.counts, want.counts) << "split at " << i;
  }
}

TEST(NotifyProtocol, StreamSplitAtEveryPairOfPositions) {
  const Parsed want = datagram(kMixed);
  for (std::size_t i = 0; i <= kMixed.size(); ++i) {
    for (std::size_t j = i; j <= kMixed.size(); ++j) {
      auto s = stream({kMixed.substr(0, i), kMixed.substr(i, j - i), kMixed.substr(j)});
      ASSERT_EQ(s.events, want.events) << "split at " << i << ", " << j;
      ASSERT_EQ(s.counts, want.counts) << "split at " << i << ", " << j;
    }
  }
}

TEST(NotifyProtocol, StreamByteByByte) {
  std::vector<std::string> bytes;
  for (char c : kMixed) bytes.emplace_back(1, c);
  EXPECT_EQ(stream(bytes).events, datagram(kMixed).events);
}

TEST(NotifyProtocol, StreamRandomChunkingOfLongAndShortLines) {
  std::mt19937 gen(42);
  std::string input;
  for (int i = 0; i < 200; ++i) {
    switch (gen() % 5) {
      case 0: input += "WATCHDOG=1\n"; break;
      case 1: input += "STATUS=" + std::string(gen() % 6000, 's') + "\n"; break;
      case 2: input += "MEMORY=" + std::to_string(gen()) + "\r\n"; break;
      case 3: input += std::string(gen() % 50, '\x01') + "\n"; break;
      default: input += "\n"; break;
    }
  }
  const Parsed want = datagram(input);
  ASSERT_GT(want.counts.protocol_errors, 0u);
  for (int round = 0; round < 50; ++round) {
    std::vector<std::string> chunks;
    for (std::size_t i = 0; i < input.size();) {
      const std::size_t n = 1 + gen() % 9000;
      chunks.push_back(input.substr(i, n));
      i += n;
    }
    auto s = stream(chunks);
    ASSERT_EQ(s.events, want.events) << "round " << round;
    ASSERT_EQ(s.counts, want.counts) << "round " << round;
    ASSERT_EQ(s.error_lines, want.error_lines) << "round " << round;
  }
}

TEST(NotifyProtocol, CallbacksAreOptional) {
  NotifyStreamParser s;
  s.feed("READY=1\nbad\nFOO=1\n", {});
  EXPECT_EQ(s.counts(), counts(1, 1, 1));
  EXPECT_EQ(parse_notify_datagram("READY=1\nbad", {}), counts(1, 0, 1));
}

TEST(NotifyProtocol, CountsAdd) {
  NotifyCounts total;
  total += counts(1, 2, 3);
  total += counts(10, 20, 30);
  EXPECT_EQ(total, counts(11, 22, 33));
}

}  // namespace
}  // namespace vigil
