// Parsers for the /proc files vigil samples (/proc/PID/stat,
// /proc/self/status lines). Pure: text in, numbers out.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace vigil {

struct ProcStat {
  int pid = 0;
  int ppid = 0;
  int pgrp = 0;
  char state = '?';
  std::uint64_t utime_ticks = 0;
  std::uint64_t stime_ticks = 0;
  long threads = 1;
  std::uint64_t starttime_ticks = 0;  // since boot
  std::uint64_t rss_pages = 0;
};

// Parses one /proc/PID/stat line. The command name (field 2) may contain
// spaces and parentheses: fields are counted from the last ')'.
std::optional<ProcStat> parse_proc_stat(std::string_view text);

// Appends the pids of a children list (/proc/PID/task/TID/children:
// "12 34 56 ") to out.
void parse_pid_list(std::string_view text, std::vector<int>& out);

}  // namespace vigil
