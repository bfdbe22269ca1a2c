// /proc reading: one process tree at a time (see the header).
#include "proc_sampler.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "fd.h"

namespace vigil {

namespace {

// Reads a small /proc file into buf; returns its length or -1.
ssize_t read_small(const char* path, char* buf, std::size_t cap) {
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return -1;
  ssize_t n = ::read(fd.get(), buf, cap - 1);
  if (n >= 0) buf[n] = '\0';
  return n;
}

double boot_time_seconds() {
  // The kernel's btime (/proc/stat), as Prometheus's process collector
  // reads it: every process, and a new vigil image after an upgrade, gets
  // the same value, so vigil_process_start_time_seconds does not move
  // across an exec. Without it: now(realtime) - uptime(boottime), which
  // differs by microseconds from one reading to the next.
  // (Read once: its interrupt counts make it tens of KiB on a big machine.)
  std::vector<char> buf(1 << 20);
  const ssize_t n = read_small("/proc/stat", buf.data(), buf.size());
  const std::string_view text(buf.data(), n > 0 ? static_cast<std::size_t>(n) : 0);
  if (auto at = text.find("\nbtime "); at != std::string_view::npos) {
    const long long btime = std::strtoll(buf.data() + at + 7, nullptr, 10);
    if (btime > 0) return static_cast<double>(btime);
  }
  timespec rt{}, bt{};
  ::clock_gettime(CLOCK_REALTIME, &rt);
  ::clock_gettime(CLOCK_BOOTTIME, &bt);
  return (rt.tv_sec - bt.tv_sec) + (rt.tv_nsec - bt.tv_nsec) / 1e9;
}

}  // namespace

namespace {

// The most processes one tree read follows: a bound on the work, should
// pids be reused under it mid-read.
constexpr std::size_t kMaxTreeMembers = 1 << 16;

// Reads a whole /proc file of any length into text; false when it is gone.
bool read_whole(const char* path, std::string& text) {
  text.clear();
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  return n == 0;
}

}  // namespace

ProcSampler::ProcSampler(Mode mode)
    : ticks_per_second_(::sysconf(_SC_CLK_TCK)), page_bytes_(::sysconf(_SC_PAGESIZE)) {
  char path[64];
  const int self = static_cast<int>(::getpid());
  std::snprintf(path, sizeof path, "/proc/%d/task/%d/children", self, self);
  children_lists_ = mode == Mode::automatic && ::access(path, R_OK) == 0;
}

void ProcSampler::begin_round() { parents_fresh_ = false; }

bool ProcSampler::read_stat(pid_t pid, ProcStat& out) {
  char path[64];
  char buf[1024];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  ++stat_reads_;
  ssize_t n = read_small(path, buf, sizeof buf);
  if (n <= 0) return false;
  auto st = parse_proc_stat(std::string_view(buf, static_cast<std::size_t>(n)));
  if (!st) return false;
  out = *st;
  return true;
}

void ProcSampler::children_of(const ProcStat& st, std::vector<pid_t>& out) {
  if (!children_lists_) {
    if (!parents_fresh_) scan_parents();
    auto it = parents_.find(st.pid);
    if (it != parents_.end()) out.insert(out.end(), it->second.begin(), it->second.end());
    return;
  }
  char path[96];
  // One thread: its own list is the process's. Several: each thread's
  // children are listed under that thread.
  if (st.threads <= 1) {
    std::snprintf(path, sizeof path, "/proc/%d/task/%d/children", st.pid, st.pid);
    if (read_whole(path, text_)) parse_pid_list(text_, out);
    return;
  }
  std::snprintf(path, sizeof path, "/proc/%d/task", st.pid);
  DIR* d = ::opendir(path);
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    std::snprintf(path, sizeof path, "/proc/%d/task/%.16s/children", st.pid, e->d_name);
    if (read_whole(path, text_)) parse_pid_list(text_, out);
  }
  ::closedir(d);
}

void ProcSampler::scan_parents() {
  for (auto& entry : parents_) entry.second.clear();
  DIR* d = ::opendir("/proc");
  if (d) {
    ProcStat st;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
      if (read_stat(static_cast<pid_t>(std::atoi(e->d_name)), st)) parents_[st.ppid].push_back(st.pid);
    }
    ::closedir(d);
  }
  // A pid with no child left is forgotten, or every pid that was ever a
  // parent would stay a key.
  std::erase_if(parents_, [](const auto& entry) { return entry.second.empty(); });
  parents_fresh_ = true;
}

const TreeSample* ProcSampler::read_tree(pid_t root) {
  sample_.members.clear();
  sample_.usage = TreeUsage{};
  queue_.clear();
  queue_.push_back(root);
  ProcStat st;
  for (std::size_t i = 0; i < queue_.size() && sample_.members.size() < kMaxTreeMembers; ++i) {
    if (!read_stat(queue_[i], st)) continue;  // gone since it was listed
    // A pid listed as a child but reused since by another process.
    if (i > 0 && std::none_of(sample_.members.begin(), sample_.members.end(),
                              [&](const ProcStat& m) { return m.pid == st.ppid; }))
      continue;
    sample_.members.push_back(st);
    if (st.state != 'Z') {
      sample_.usage.rss_bytes += st.rss_pages * static_cast<std::uint64_t>(page_bytes_);
      sample_.usage.cpu_ticks += st.utime_ticks + st.stime_ticks;
      ++sample_.usage.processes;
      children_of(st, queue_);
    }
  }
  if (sample_.members.empty()) return nullptr;
  return &sample_;
}

void CpuAccumulator::update(const std::vector<ProcStat>& members) {
  next_.clear();
  for (const ProcStat& st : members) {
    const std::uint64_t cpu = st.utime_ticks + st.stime_ticks;
    auto it = std::lower_bound(seen_.begin(), seen_.end(), st.pid,
                               [](const Seen& s, pid_t pid) { return s.pid < pid; });
    const std::uint64_t before =
        (it != seen_.end() && it->pid == st.pid && it->start_ticks == st.starttime_ticks) ? it->cpu_ticks : 0;
    if (cpu > before) total_ticks_ += cpu - before;
    next_.push_back(Seen{st.pid, st.starttime_ticks, std::max(cpu, before)});
  }
  std::sort(next_.begin(), next_.end(), [](const Seen& a, const Seen& b) { return a.pid < b.pid; });
  seen_.swap(next_);
}

namespace {
const double kTicksPerSecond = static_cast<double>(::sysconf(_SC_CLK_TCK));
}  // namespace

std::optional<double> process_start_seconds(pid_t pid) {
  char path[64], buf[1024];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const ssize_t n = read_small(path, buf, sizeof buf);
  if (n <= 0) return std::nullopt;
  const auto st = parse_proc_stat(std::string_view(buf, static_cast<std::size_t>(n)));
  if (!st) return std::nullopt;
  static const double boot = boot_time_seconds();
  return boot + static_cast<double>(st->starttime_ticks) / kTicksPerSecond;
}

SelfUsage sample_self() {
  SelfUsage u;
  char buf[1024];
  static const long ticks = ::sysconf(_SC_CLK_TCK);
  static const long page = ::sysconf(_SC_PAGESIZE);
  ssize_t n = read_small("/proc/self/stat", buf, sizeof buf);
  if (n > 0) {
    if (auto st = parse_proc_stat(std::string_view(buf, static_cast<std::size_t>(n)))) {
      u.rss_bytes = st->rss_pages * static_cast<std::uint64_t>(page);
      u.cpu_seconds = static_cast<double>(st->utime_ticks + st->stime_ticks) / ticks;
      static const double boot = boot_time_seconds();
      u.start_time_seconds = boot + static_cast<double>(st->starttime_ticks) / ticks;
    }
  }
  // Since Linux 6.2 the size of /proc/self/fd is the number of open fds: one
  // stat, where listing 20,000 fds cost a scrape ~10 ms. Older kernels say 0.
  struct stat fds {};
  if (::stat("/proc/self/fd", &fds) == 0 && fds.st_size > 0) {
    u.open_fds = static_cast<int>(fds.st_size);
  } else if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++u.open_fds;
    ::closedir(d);
    --u.open_fds;  // the directory stream itself
  }
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) u.max_fds = rl.rlim_cur;
  return u;
}

}  // namespace vigil
