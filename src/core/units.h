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

// "250ms", "5s", "1m30s", "2h", "1h2m3s4ms", "0s", "0". Units must be in
// descending order and each at most once; no sign, no fractions, no spaces.
std::optional<Duration> parse_duration(std::string_view text);

// "512KiB", "512MiB", "1GiB", "1GB", "100KB", "4096B", "4096" (bytes).
// Binary (KiB, MiB, GiB, TiB) and decimal (KB, MB, GB, TB) units.
std::optional<std::uint64_t> parse_size(std::string_view text);

// Shortest form that parse_duration reads back: "1m30s", "100ms", "0s".
std::string format_duration(Duration d);

// Human form for tables: "512MiB", "1.5GiB", "300B".
std::string format_size(std::uint64_t bytes);

}  // namespace vigil
