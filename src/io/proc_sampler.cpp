// /proc scanning.
#include "proc_sampler.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>

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
  // Unix time of boot = now(realtime) - uptime(boottime).
  timespec rt{}, bt{};
  ::clock_gettime(CLOCK_REALTIME, &rt);
  ::clock_gettime(CLOCK_BOOTTIME, &bt);
  return (rt.tv_sec - bt.tv_sec) + (rt.tv_nsec - bt.tv_nsec) / 1e9;
}

}  // namespace

ProcSampler::ProcSampler()
    : ticks_per_second_(::sysconf(_SC_CLK_TCK)), page_bytes_(::sysconf(_SC_PAGESIZE)) {}

void ProcSampler::scan() {
  begin_scan();
  scan_some(pending_.size());
}

void ProcSampler::begin_scan() {
  procs_.clear();
  // Emptied, not erased, so their capacity is reused; a pid with no child
  // left is erased after the pass, or every pid that was ever a parent
  // would stay a key (and be visited by every later scan).
  for (auto& [pid, kids] : children_) kids.clear();
  pending_.clear();
  next_ = 0;
  DIR* d = ::opendir("/proc");
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    pending_.push_back(static_cast<pid_t>(std::atoi(e->d_name)));
  }
  ::closedir(d);
}

bool ProcSampler::scan_some(std::size_t max) {
  char path[64];
  char buf[1024];
  const std::size_t end = std::min(pending_.size(), next_ + max);
  for (; next_ < end; ++next_) {
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pending_[next_]));
    ssize_t n = read_small(path, buf, sizeof buf);
    if (n <= 0) continue;  // gone since the listing
    auto st = parse_proc_stat(std::string_view(buf, static_cast<std::size_t>(n)));
    if (!st) continue;
    children_[st->ppid].push_back(st->pid);
    procs_.emplace(st->pid, *st);
  }
  if (next_ < pending_.size()) return false;
  std::erase_if(children_, [](const auto& entry) { return entry.second.empty(); });
  return true;
}

const ProcStat* ProcSampler::find(pid_t pid) const {
  auto it = procs_.find(pid);
  return it == procs_.end() ? nullptr : &it->second;
}

std::vector<pid_t> ProcSampler::members(pid_t root) const {
  std::vector<pid_t> out;
  if (!procs_.count(root)) return out;
  out.push_back(root);
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto it = children_.find(out[i]);
    if (it == children_.end()) continue;
    out.insert(out.end(), it->second.begin(), it->second.end());
  }
  return out;
}

TreeUsage ProcSampler::tree(pid_t root) const {
  TreeUsage u;
  for (pid_t pid : members(root)) {
    const ProcStat& st = procs_.at(pid);
    if (st.state == 'Z') continue;
    u.rss_bytes += st.rss_pages * static_cast<std::uint64_t>(page_bytes_);
    u.cpu_ticks += st.utime_ticks + st.stime_ticks;
    ++u.processes;
  }
  return u;
}

void CpuAccumulator::update(const ProcSampler& sampler, const std::vector<pid_t>& members) {
  std::unordered_map<pid_t, Seen> now;
  now.reserve(members.size());
  for (pid_t pid : members) {
    const ProcStat* st = sampler.find(pid);
    if (!st) continue;
    std::uint64_t cpu = st->utime_ticks + st->stime_ticks;
    auto it = seen_.find(pid);
    std::uint64_t before =
        (it != seen_.end() && it->second.start_ticks == st->starttime_ticks) ? it->second.cpu_ticks
                                                                              : 0;
    if (cpu > before) total_ticks_ += cpu - before;
    now.emplace(pid, Seen{st->starttime_ticks, std::max(cpu, before)});
  }
  seen_.swap(now);
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
  if (DIR* d = ::opendir("/proc/self/fd")) {
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
