// Durations and sizes as users write them in the config ("1m30s", "512MiB").
// Pure parsing and formatting; no I/O.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vigil {

using Duration = std::chrono::milliseconds;

// The longest duration and the largest size a config may write. Far past
// any real setting, and small enough that a deadline of now + the longest
// duration (+ a product with a count the config bounds, e.g. a watch's
// cool-down of interval x failures) stays inside a nanosecond time_point.
inline constexpr Duration kMaxDuration = std::chrono::hours(24 * 365);
inline constexpr std::uint64_t kMaxSizeBytes = 1ull << 50;  // 1024TiB

// "250ms", "5s", "1m30s", "2h", "1h2m3s4ms", "0s", "0". Units must be in
// descending order and each at most once; no sign, no fractions, no spaces.
// A well-formed text whose value does not fit in a Duration is nullopt too;
// then *too_large (when given) is set, so a message can say why.
std::optional<Duration> parse_duration(std::string_view text, bool* too_large = nullptr);

// "512KiB", "512MiB", "512M", "1GiB", "1GB", "100KB", "4096B", "4096" (bytes).
// Binary (KiB, MiB, GiB, TiB, and K, M, G, T as systemd and pm2 write them)
// and decimal (KB, MB, GB, TB) units. A
// well-formed text past 2^64-1 bytes sets *too_large as parse_duration does.
std::optional<std::uint64_t> parse_size(std::string_view text, bool* too_large = nullptr);

// Shortest form that parse_duration reads back: "1m30s", "100ms", "0s".
std::string format_duration(Duration d);

// Human form for tables: "512MiB", "1.5GiB", "300B".
std::string format_size(std::uint64_t bytes);

}  // namespace vigil
