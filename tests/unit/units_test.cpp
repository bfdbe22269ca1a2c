// Durations and sizes: every accepted form, every rejection, formatting that
// reads back.
#include "units.h"

#include <gtest/gtest.h>

#include <limits>

namespace vigil {
namespace {

using namespace std::chrono_literals;

TEST(ParseDuration, AcceptsEachUnit) {
  EXPECT_EQ(parse_duration("250ms"), Duration{250});
  EXPECT_EQ(parse_duration("5s"), Duration{5s});
  EXPECT_EQ(parse_duration("3m"), Duration{3min});
  EXPECT_EQ(parse_duration("2h"), Duration{2h});
}

TEST(ParseDuration, AcceptsCombinationsInDescendingOrder) {
  EXPECT_EQ(parse_duration("1m30s"), Duration{90s});
  EXPECT_EQ(parse_duration("1h2m3s4ms"), Duration{1h + 2min + 3s + 4ms});
  EXPECT_EQ(parse_duration("1h30s"), Duration{1h + 30s});
  EXPECT_EQ(parse_duration("2m5ms"), Duration{2min + 5ms});
  EXPECT_EQ(parse_duration("1s500ms"), Duration{1500ms});
}

TEST(ParseDuration, AcceptsZeroForms) {
  EXPECT_EQ(parse_duration("0"), Duration{0});
  EXPECT_EQ(parse_duration("0s"), Duration{0});
  EXPECT_EQ(parse_duration("0ms"), Duration{0});
  EXPECT_EQ(parse_duration("0h"), Duration{0});
}

TEST(ParseDuration, AcceptsLargeValuesInOneUnit) {
  EXPECT_EQ(parse_duration("90s"), Duration{90s});
  EXPECT_EQ(parse_duration("1500ms"), Duration{1500ms});
  EXPECT_EQ(parse_duration("48h"), Duration{48h});
}

TEST(ParseDuration, RejectsEmptyAndBareNumbers) {
  EXPECT_EQ(parse_duration(""), std::nullopt);
  EXPECT_EQ(parse_duration("5"), std::nullopt);
  EXPECT_EQ(parse_duration("00"), std::nullopt);
  EXPECT_EQ(parse_duration("1m30"), std::nullopt);
}

TEST(ParseDuration, RejectsSignsFractionsAndSpaces) {
  EXPECT_EQ(parse_duration("-5s"), std::nullopt);
  EXPECT_EQ(parse_duration("+5s"), std::nullopt);
  EXPECT_EQ(parse_duration("1.5s"), std::nullopt);
  EXPECT_EQ(parse_duration(" 5s"), std::nullopt);
  EXPECT_EQ(parse_duration("5s "), std::nullopt);
  EXPECT_EQ(parse_duration("5 s"), std::nullopt);
  EXPECT_EQ(parse_duration("1m 30s"), std::nullopt);
}

TEST(ParseDuration, RejectsUnknownUnitsAndMissingNumbers) {
  EXPECT_EQ(parse_duration("5x"), std::nullopt);
  EXPECT_EQ(parse_duration("5S"), std::nullopt);
  EXPECT_EQ(parse_duration("5d"), std::nullopt);
  EXPECT_EQ(parse_duration("5sec"), std::nullopt);
  EXPECT_EQ(parse_duration("5us"), std::nullopt);
  EXPECT_EQ(parse_duration("s"), std::nullopt);
  EXPECT_EQ(parse_duration("ms"), std::nullopt);
  EXPECT_EQ(parse_duration("1ms5"), std::nullopt);
}

TEST(ParseDuration, RejectsUnitsOutOfOrderOrRepeated) {
  EXPECT_EQ(parse_duration("30s1m"), std::nullopt);
  EXPECT_EQ(parse_duration("5ms1s"), std::nullopt);
  EXPECT_EQ(parse_duration("1m2h"), std::nullopt);
  EXPECT_EQ(parse_duration("1s1s"), std::nullopt);
  EXPECT_EQ(parse_duration("1m1m"), std::nullopt);
  EXPECT_EQ(parse_duration("1ms1ms"), std::nullopt);
}

TEST(ParseDuration, RejectsOverflow) {
  EXPECT_EQ(parse_duration("99999999999999999999ms"), std::nullopt);  // > uint64
  EXPECT_EQ(parse_duration("9223372036854775808ms"), std::nullopt);   // > int64
  EXPECT_EQ(parse_duration("9223372036854775807ms"),
            Duration{std::numeric_limits<Duration::rep>::max()});
  EXPECT_EQ(parse_duration("5124095576030432h"), std::nullopt);  // h * 3.6e6 > int64
  EXPECT_EQ(parse_duration("3000000000000h"), std::nullopt);       // > int64, < uint64
  EXPECT_EQ(parse_duration("2562047788015h13m"), std::nullopt);  // the sum overflows
  EXPECT_EQ(parse_duration("2562047788015h12m"), Duration{9223372036854720000});
}

TEST(FormatDuration, ShortestFormThatReadsBack) {
  EXPECT_EQ(format_duration(Duration{0}), "0s");
  EXPECT_EQ(format_duration(100ms), "100ms");
  EXPECT_EQ(format_duration(90s), "1m30s");
  EXPECT_EQ(format_duration(2h), "2h");
  EXPECT_EQ(format_duration(1h + 2min + 3s + 4ms), "1h2m3s4ms");
  EXPECT_EQ(format_duration(1500ms), "1s500ms");
  EXPECT_EQ(format_duration(-5s), "-5s");
  for (auto d : {Duration{1}, Duration{999}, Duration{61'001}, Duration{3'600'000},
                 Duration{86'400'123}}) {
    EXPECT_EQ(parse_duration(format_duration(d)), d) << format_duration(d);
  }
}

TEST(ParseSize, AcceptsBareBytes) {
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("4096B"), 4096u);
}

TEST(ParseSize, AcceptsDecimalUnits) {
  EXPECT_EQ(parse_size("100KB"), 100'000u);
  EXPECT_EQ(parse_size("5MB"), 5'000'000u);
  EXPECT_EQ(parse_size("1GB"), 1'000'000'000u);
  EXPECT_EQ(parse_size("2TB"), 2'000'000'000'000u);
}

TEST(ParseSize, AcceptsBinaryUnits) {
  EXPECT_EQ(parse_size("512KiB"), 512u << 10);
  EXPECT_EQ(parse_size("512MiB"), 512ull << 20);
  EXPECT_EQ(parse_size("1GiB"), 1ull << 30);
  EXPECT_EQ(parse_size("3TiB"), 3ull << 40);
}

// As systemd (MemoryMax=512M) and pm2 (max_memory_restart: "512M") write them.
TEST(ParseSize, SingleLetterUnitsAreBinary) {
  EXPECT_EQ(parse_size("64K"), 64u << 10);
  EXPECT_EQ(parse_size("512M"), 512ull << 20);
  EXPECT_EQ(parse_size("1G"), 1ull << 30);
  EXPECT_EQ(parse_size("2T"), 2ull << 40);
  EXPECT_EQ(parse_size("16777216T"), std::nullopt);  // 2^64
}

TEST(ParseSize, RejectsMalformed) {
  for (const char* bad : {"", "KiB", "-1", "+1", "1.5GiB", " 1GiB", "1GiB ", "1 GiB", "1kib",
                          "1kb", "1k", "1m", "1Ki", "1P", "1b", "1iB", "1KiBB", "1PiB", "1GiB1MiB"}) {
    EXPECT_EQ(parse_size(bad), std::nullopt) << bad;
  }
}

TEST(ParseSize, RejectsOverflow) {
  EXPECT_EQ(parse_size("18446744073709551615"), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(parse_size("18446744073709551616"), std::nullopt);
  EXPECT_EQ(parse_size("16777216TiB"), std::nullopt);  // 2^24 * 2^40 = 2^64
  EXPECT_EQ(parse_size("16777215TiB"), 16777215ull << 40);
  EXPECT_EQ(parse_size("18446745TB"), std::nullopt);
}

TEST(FormatSize, HumanForms) {
  EXPECT_EQ(format_size(0), "0B");
  EXPECT_EQ(format_size(300), "300B");
  EXPECT_EQ(format_size(1023), "1023B");
  EXPECT_EQ(format_size(1024), "1KiB");
  EXPECT_EQ(format_size(1536), "1.5KiB");
  EXPECT_EQ(format_size(512ull << 20), "512MiB");
  EXPECT_EQ(format_size(3ull << 29), "1.5GiB");
  EXPECT_EQ(format_size(2ull << 40), "2TiB");
  EXPECT_EQ(format_size(4096ull << 40), "4096TiB");
  EXPECT_EQ(format_size((1ull << 20) - 1), "1MiB");  // rounds up into the next unit
  EXPECT_EQ(format_size(1025), "1KiB");              // 1.001 shows as 1
  EXPECT_EQ(format_size(std::numeric_limits<std::uint64_t>::max()), "16777216TiB");
}

}  // namespace
}  // namespace vigil
