// Measures memory and CPU of process trees from /proc: one pass over /proc
// per sample (one read of /proc/PID/stat per process, into a reused
// buffer), then sums per tree. Linux only; no allocation per process beyond
// the maps it keeps between samples.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "proc_stat_parse.h"

namespace vigil {

struct TreeUsage {
  std::uint64_t rss_bytes = 0;
  std::uint64_t cpu_ticks = 0;  // utime+stime of the live members
  int processes = 0;
};

class ProcSampler {
 public:
  ProcSampler();

  // Reads every /proc/PID/stat.
  void scan();
  // The same pass in steps, so that reading 1,000 processes never holds the
  // loop for long: begin_scan() lists the pids (one readdir of /proc),
  // scan_some() reads up to `max` of them and says whether the pass is
  // complete. Until it is, members(), tree() and find() must not be used.
  void begin_scan();
  bool scan_some(std::size_t max);
  // Usage of `root` and all its descendants as of the last scan.
  TreeUsage tree(pid_t root) const;
  // Pids of `root`'s tree (root first), as of the last scan.
  std::vector<pid_t> members(pid_t root) const;
  const ProcStat* find(pid_t pid) const;
  // Pids that had at least one child in the last scan (what it keeps
  // between scans is bounded by the live processes).
  std::size_t parents() const { return children_.size(); }

  long ticks_per_second() const { return ticks_per_second_; }
  long page_bytes() const { return page_bytes_; }

 private:
  std::vector<pid_t> pending_;  // the pass in progress: pids still to read
  std::size_t next_ = 0;
  std::unordered_map<pid_t, ProcStat> procs_;
  std::unordered_map<pid_t, std::vector<pid_t>> children_;
  long ticks_per_second_;
  long page_bytes_;
};

// Accumulates the CPU time of a changing set of processes into a counter
// that never goes down: a member that exits keeps what it used; a pid that
// is reused by a new process starts from zero.
class CpuAccumulator {
 public:
  // Adds what the members used since the previous call.
  void update(const ProcSampler& sampler, const std::vector<pid_t>& members);
  std::uint64_t total_ticks() const { return total_ticks_; }

 private:
  struct Seen {
    std::uint64_t start_ticks;
    std::uint64_t cpu_ticks;
  };
  std::unordered_map<pid_t, Seen> seen_;
  std::uint64_t total_ticks_ = 0;
};

// vigil's own figures from /proc/self.
struct SelfUsage {
  std::uint64_t rss_bytes = 0;
  double cpu_seconds = 0;
  int open_fds = 0;
  std::uint64_t max_fds = 0;
  double start_time_seconds = 0;  // unix time
};
SelfUsage sample_self();

}  // namespace vigil
