// libFuzzer harness for duration and size strings. Besides "no crash, no
// sanitizer report" it compares parse_duration and parse_size with a second
// reading of the grammar written apart from them (on purpose: a second
// opinion), in 128-bit arithmetic that saturates, so every overflow in the
// parsers' own arithmetic shows as a disagreement; and it checks that
// format_duration reads back.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "units.h"

namespace {

using u128 = unsigned __int128;
constexpr u128 kSaturated = u128{1} << 100;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "units_fuzz: broken promise: %s\n", what);
    std::abort();
  }
}

u128 saturating_mul(u128 a, u128 b) {
  if (a != 0 && b > kSaturated / a) return kSaturated;
  return std::min(a * b, kSaturated);
}

// Leading digits: the value (saturated) and how many were read.
std::size_t digits_of(std::string_view s, u128& value) {
  value = 0;
  std::size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    value = std::min(saturating_mul(value, 10) + static_cast<u128>(s[i] - '0'), kSaturated);
    ++i;
  }
  return i;
}

// The well-formed total in ms (saturated), or nullopt for a malformed text.
std::optional<u128> reference_duration(std::string_view s) {
  if (s == "0") return 0;
  if (s.empty()) return std::nullopt;
  const std::string_view units[] = {"h", "m", "s", "ms"};
  const u128 factors[] = {3'600'000, 60'000, 1'000, 1};
  int next = 0;
  u128 total = 0;
  while (!s.empty()) {
    u128 value = 0;
    const std::size_t n = digits_of(s, value);
    if (n == 0) return std::nullopt;
    s.remove_prefix(n);
    int unit = -1;
    if (s.starts_with("ms")) {
      unit = 3;
    } else if (!s.empty()) {
      for (int u = 0; u < 3; ++u)
        if (s.starts_with(units[u])) unit = u;
    }
    if (unit < next) return std::nullopt;
    s.remove_prefix(units[unit].size());
    next = unit + 1;
    total = std::min(total + saturating_mul(value, factors[unit]), kSaturated);
  }
  return total;
}

std::optional<u128> reference_size(std::string_view s) {
  u128 value = 0;
  const std::size_t n = digits_of(s, value);
  if (n == 0) return std::nullopt;
  s.remove_prefix(n);
  const std::pair<std::string_view, u128> units[] = {
      {"", 1},           {"B", 1},           {"KB", 1'000},       {"MB", 1'000'000},
      {"GB", 1'000'000'000}, {"TB", 1'000'000'000'000}, {"KiB", u128{1} << 10},
      {"MiB", u128{1} << 20}, {"GiB", u128{1} << 30},   {"TiB", u128{1} << 40},
      {"K", u128{1} << 10},   {"M", u128{1} << 20},     {"G", u128{1} << 30},
      {"T", u128{1} << 40}};
  for (const auto& [suffix, factor] : units)
    if (s == suffix) return saturating_mul(value, factor);
  return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  constexpr auto kMaxMs = static_cast<u128>(std::numeric_limits<vigil::Duration::rep>::max());
  constexpr auto kMaxBytes = static_cast<u128>(std::numeric_limits<std::uint64_t>::max());

  bool too_large = false;
  const auto d = vigil::parse_duration(text, &too_large);
  const auto want_d = reference_duration(text);
  if (!want_d) {
    check(!d && !too_large, "a malformed duration is refused, not as too large");
  } else if (*want_d > kMaxMs) {
    check(!d && too_large, "a duration past int64 ms is refused as too large");
  } else {
    check(d && !too_large && static_cast<u128>(d->count()) == *want_d, "the duration's value");
    const std::string shown = vigil::format_duration(*d);
    check(vigil::parse_duration(shown) == d, "format_duration reads back");
  }

  const auto s = vigil::parse_size(text, &too_large);
  const auto want_s = reference_size(text);
  if (!want_s) {
    check(!s && !too_large, "a malformed size is refused, not as too large");
  } else if (*want_s > kMaxBytes) {
    check(!s && too_large, "a size past uint64 is refused as too large");
  } else {
    check(s && !too_large && static_cast<u128>(*s) == *want_s, "the size's value");
    check(!vigil::format_size(*s).empty(), "format_size shows something");
  }
  return 0;
}
