// Parsers for the /proc files vigil samples (/proc/PID/stat,
// /proc/self/status lines). Pure: text in, numbers out.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace vigil {

struct ProcStat {
  int pid = 0;
  int ppid = 0;
  int pgrp = 0;
  char state = '?';
  std::uint64_t utime_ticks = 0;
  std::uint64_t stime_ticks = 0;
  std::uint64_t starttime_ticks = 0;  // since boot
  std::uint64_t rss_pages = 0;
};

// Parses one /proc/PID/stat line. The command name (field 2) may contain
// spaces and parentheses: fields are counted from the last ')'.
std::optional<ProcStat> parse_proc_stat(std::string_view text);

}  // namespace vigil
