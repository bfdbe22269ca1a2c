// Durations and sizes as users write them in the config: strict parsing
// (no signs, fractions or spaces; overflow is an error) and formatting that
// parse_duration reads back. No I/O.
#include "units.h"

#include <array>
#include <cstdio>
#include <limits>

namespace vigil {

namespace {

struct Unit {
  std::string_view suffix;
  std::uint64_t factor;
};

// Reads the leading decimal digits of `text` into `value`; returns how many
// characters were read (0 when there is no digit). A number past uint64 is
// read to its end and sets `overflow`, so the caller can tell a malformed
// text from one that is only too large.
std::size_t read_digits(std::string_view text, std::uint64_t& value, bool& overflow) {
  value = 0;
  overflow = false;
  std::size_t i = 0;
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    auto digit = static_cast<std::uint64_t>(text[i] - '0');
    if (overflow || value > (kMax - digit) / 10) {
      overflow = true;
    } else {
      value = value * 10 + digit;
    }
    ++i;
  }
  return i;
}

bool mul_overflows(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  return __builtin_mul_overflow(a, b, &out);
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text, bool* too_large) {
  if (too_large) *too_large = false;
  if (text == "0") return Duration{0};
  if (text.empty()) return std::nullopt;

  // Descending order: a unit's rank must be lower than the previous one's,
  // which also forbids repeating a unit.
  static constexpr std::array<Unit, 4> kUnits{{
      {"h", 3'600'000},
      {"m", 60'000},
      {"s", 1'000},
      {"ms", 1},
  }};
  constexpr auto kMaxMs =
      static_cast<std::uint64_t>(std::numeric_limits<Duration::rep>::max());

  std::uint64_t total_ms = 0;
  bool overflow = false;      // well formed so far, but past kMaxMs
  std::size_t next_rank = 0;  // units before this rank are no longer allowed
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::uint64_t value = 0;
    bool digits_overflow = false;
    std::size_t digits = read_digits(text.substr(pos), value, digits_overflow);
    if (digits == 0) return std::nullopt;
    pos += digits;

    // "ms" must be tried before "m".
    std::size_t rank = kUnits.size();
    if (text.substr(pos, 2) == "ms") {
      rank = 3;
    } else if (pos < text.size()) {
      for (std::size_t r = 0; r < 3; ++r)
        if (text[pos] == kUnits[r].suffix[0]) rank = r;
    }
    if (rank == kUnits.size() || rank < next_rank) return std::nullopt;
    pos += kUnits[rank].suffix.size();
    next_rank = rank + 1;

    // Once past kMaxMs the rest is only checked for its form.
    std::uint64_t part = 0;
    if (overflow || digits_overflow || mul_overflows(value, kUnits[rank].factor, part) ||
        part > kMaxMs - total_ms) {
      overflow = true;
      continue;
    }
    total_ms += part;
  }
  if (overflow) {
    if (too_large) *too_large = true;
    return std::nullopt;
  }
  return Duration{static_cast<Duration::rep>(total_ms)};
}

std::optional<std::uint64_t> parse_size(std::string_view text, bool* too_large) {
  if (too_large) *too_large = false;
  // K, M, G and T alone are binary, as systemd (MemoryMax=512M) and pm2
  // (max_memory_restart: "512M") read them.
  static constexpr std::array<Unit, 14> kUnits{{
      {"", 1},
      {"B", 1},
      {"K", 1ull << 10},
      {"M", 1ull << 20},
      {"G", 1ull << 30},
      {"T", 1ull << 40},
      {"KB", 1'000ull},
      {"MB", 1'000'000ull},
      {"GB", 1'000'000'000ull},
      {"TB", 1'000'000'000'000ull},
      {"KiB", 1ull << 10},
      {"MiB", 1ull << 20},
      {"GiB", 1ull << 30},
      {"TiB", 1ull << 40},
  }};
  std::uint64_t value = 0;
  bool overflow = false;
  std::size_t digits = read_digits(text, value, overflow);
  if (digits == 0) return std::nullopt;
  std::string_view suffix = text.substr(digits);
  for (const auto& unit : kUnits) {
    if (unit.suffix != suffix) continue;
    std::uint64_t bytes = 0;
    if (overflow || mul_overflows(value, unit.factor, bytes)) {
      if (too_large) *too_large = true;
      return std::nullopt;
    }
    return bytes;
  }
  return std::nullopt;
}

std::string format_duration(Duration d) {
  if (d.count() == 0) return "0s";
  std::string out;
  // Negative durations never come from the config; show them readably anyway.
  std::uint64_t ms = 0;
  if (d.count() < 0) {
    out = "-";
    ms = static_cast<std::uint64_t>(-(d.count() + 1)) + 1;
  } else {
    ms = static_cast<std::uint64_t>(d.count());
  }
  static constexpr std::array<Unit, 4> kUnits{{
      {"h", 3'600'000},
      {"m", 60'000},
      {"s", 1'000},
      {"ms", 1},
  }};
  for (const auto& unit : kUnits) {
    std::uint64_t n = ms / unit.factor;
    ms %= unit.factor;
    if (n == 0) continue;
    out += std::to_string(n);
    out += unit.suffix;
  }
  return out;
}

std::string format_size(std::uint64_t bytes) {
  static constexpr std::array<std::string_view, 5> kUnits{"B", "KiB", "MiB", "GiB",
                                                          "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + "B";
  std::size_t unit = 0;
  std::uint64_t scale = 1;
  while (unit + 1 < kUnits.size() && bytes / scale >= 1024) {
    scale <<= 10;
    ++unit;
  }
  if (bytes % scale == 0) return std::to_string(bytes / scale) + std::string(kUnits[unit]);

  // One decimal, rounded; "1.0" reads better as "1", and a value that rounds
  // up to 1024 moves to the next unit.
  std::uint64_t tenths = bytes / scale * 10 + ((bytes % scale) * 10 + scale / 2) / scale;
  if (tenths >= 10240 && unit + 1 < kUnits.size()) {
    scale <<= 10;
    ++unit;
    tenths = (tenths + 512) / 1024;
  }
  std::string out = std::to_string(tenths / 10);
  if (tenths % 10 != 0) out += "." + std::to_string(tenths % 10);
  return out + std::string(kUnits[unit]);
}

}  // namespace vigil
