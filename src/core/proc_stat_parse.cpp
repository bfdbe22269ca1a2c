// /proc/PID/stat: "pid (comm) state ppid pgrp session tty tpgid flags minflt
// cminflt majflt cmajflt utime stime cutime cstime priority nice threads
// itrealvalue starttime vsize rss ..." (proc(5)).
#include "proc_stat_parse.h"

#include <charconv>

namespace vigil {

namespace {

// Reads the next space-separated field as an integer.
template <typename T>
bool next_number(std::string_view& s, T& out) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc()) return false;
  s.remove_prefix(static_cast<std::size_t>(p - s.data()));
  return true;
}

bool skip_fields(std::string_view& s, int n) {
  for (int i = 0; i < n; ++i) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    auto sp = s.find(' ');
    if (sp == std::string_view::npos) return false;
    s.remove_prefix(sp);
  }
  return true;
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view text) {
  ProcStat st;
  std::string_view s = text;
  if (!next_number(s, st.pid)) return std::nullopt;
  auto close = text.rfind(')');
  if (close == std::string_view::npos || close + 2 >= text.size()) return std::nullopt;
  s = text.substr(close + 1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  st.state = s.front();
  s.remove_prefix(1);
  // fields 4 (ppid) and 5 (pgrp)
  if (!next_number(s, st.ppid) || !next_number(s, st.pgrp)) return std::nullopt;
  // skip 6..13 (session tty_nr tpgid flags minflt cminflt majflt cmajflt)
  if (!skip_fields(s, 8)) return std::nullopt;
  if (!next_number(s, st.utime_ticks) || !next_number(s, st.stime_ticks)) return std::nullopt;
  // skip 16..19 (cutime cstime priority nice), 20 num_threads, skip 21 (itrealvalue)
  if (!skip_fields(s, 4) || !next_number(s, st.threads) || !skip_fields(s, 1)) return std::nullopt;
  if (!next_number(s, st.starttime_ticks)) return std::nullopt;
  std::uint64_t vsize = 0;
  if (!next_number(s, vsize) || !next_number(s, st.rss_pages)) return std::nullopt;
  return st;
}

void parse_pid_list(std::string_view text, std::vector<int>& out) {
  int pid = 0;
  bool in_number = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      pid = pid * 10 + (c - '0');
      in_number = true;
    } else if (in_number) {
      out.push_back(pid);
      pid = 0;
      in_number = false;
    }
  }
  if (in_number) out.push_back(pid);
}

}  // namespace vigil
