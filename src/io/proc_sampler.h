// Measures memory and CPU of process trees from /proc, one tree at a time:
// /proc/PID/stat of the root, then of each descendant, found through the
// kernel's list of each process's children (/proc/PID/task/TID/children,
// CONFIG_PROC_CHILDREN), so a read costs two small files per process of the
// tree, whatever else runs on the machine. Where the kernel keeps no such
// lists, the descendants come from one pass over every /proc/PID/stat per
// round (begin_round()). Linux only; the buffers are reused between reads.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <unordered_map>
#include <optional>
#include <vector>

#include "proc_stat_parse.h"
#include "sample_schedule.h"

namespace vigil {

// One read of a tree: its live processes (root first) and their sums.
struct TreeSample {
  std::vector<ProcStat> members;
  TreeUsage usage;
};

class ProcSampler {
 public:
  // automatic: the children lists where the kernel has them; scan: the
  // fallback's pass over /proc (tests check both find the same tree).
  enum class Mode { automatic, scan };
  explicit ProcSampler(Mode mode = Mode::automatic);

  // A new round of reads: what the fallback's pass over /proc saw is
  // forgotten (read again by the next read_tree). Free with children lists.
  void begin_round();
  // Reads `root` and its descendants; nullptr when root is gone. The
  // result stays valid until the next call.
  const TreeSample* read_tree(pid_t root);
  // Processes whose stat was read since construction (for the benchmarks).
  std::uint64_t stat_reads() const { return stat_reads_; }
  // Whether the kernel's children lists are used (else the fallback).
  bool children_lists() const { return children_lists_; }
  // The fallback's parents as of its last pass (bounded by the live ones).
  std::size_t parents() const { return parents_.size(); }

  long ticks_per_second() const { return ticks_per_second_; }
  long page_bytes() const { return page_bytes_; }

 private:
  bool read_stat(pid_t pid, ProcStat& out);
  // Appends the children of `st` to `out`.
  void children_of(const ProcStat& st, std::vector<pid_t>& out);
  void scan_parents();  // the fallback: every /proc/PID/stat

  TreeSample sample_;
  std::vector<pid_t> queue_;
  std::string text_;  // a children list
  bool children_lists_;
  bool parents_fresh_ = false;
  std::unordered_map<pid_t, std::vector<pid_t>> parents_;  // the fallback's ppid -> pids
  std::uint64_t stat_reads_ = 0;
  long ticks_per_second_;
  long page_bytes_;
};

// Accumulates the CPU time of a changing set of processes into a counter
// that never goes down: a member that exits keeps what it used; a pid that
// is reused by a new process starts from zero.
class CpuAccumulator {
 public:
  // Adds what the members used since the previous call.
  void update(const std::vector<ProcStat>& members);
  std::uint64_t total_ticks() const { return total_ticks_; }
  // What it has seen, carried across exec (`vigil upgrade`, core/handover.h).
  template <class Archive>
  void persist(Archive& a) {
    a("seen", seen_);
    a("total_ticks", total_ticks_);
  }

 private:
  struct Seen {
    pid_t pid = 0;
    std::uint64_t start_ticks = 0;
    std::uint64_t cpu_ticks = 0;
    template <class Archive>
    void persist(Archive& a) {
      a("pid", pid);
      a("start_ticks", start_ticks);
      a("cpu_ticks", cpu_ticks);
    }
  };
  std::vector<Seen> seen_;  // sorted by pid
  std::vector<Seen> next_;  // reused
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
// When process `pid` started, in seconds since the epoch (its start ticks
// after the kernel's btime); nullopt when it is gone.
std::optional<double> process_start_seconds(pid_t pid);

}  // namespace vigil
