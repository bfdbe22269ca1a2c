// Reaps every child of vigil (a subreaper, so also descendants that
// daemonized) and tells whoever started a process when it ends: instances,
// exec probes, watch actions. SIGCHLD is a loop event; one signal may
// stand for many exits, so each reap loops until waitpid finds nothing.
// It also keeps the account of strays (daemonized descendants), by the
// instance their environment names. It decides nothing about what an exit
// means.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "event_loop.h"

namespace vigil {

class Reaper {
 public:
  using OnExit = std::function<void(int wait_status)>;
  using WatchId = std::uint64_t;

  // /proc is read for new strays at most this often while instances wait
  // for an answer (refresh_then), and never sooner than ten times what the
  // last read took (paced_gap): the kernel lists n children in O(n²) (each
  // read(2) of the list walks it from its head to where the last one
  // stopped), 12 ms for 10,000 on the development VM, and a stop of all of
  // them must not spend a quarter of the loop reading it every 50 ms.
  static constexpr std::chrono::milliseconds kStrayRefresh{50};
  // The longest the pacing puts a look off, however slow the last one.
  static constexpr std::chrono::milliseconds kStrayRefreshMax{1000};

  explicit Reaper(EventLoop& loop);
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;

  // `on_exit` runs (on the loop) once `pid` has ended and been reaped.
  void track(pid_t pid, OnExit on_exit);
  // Forget `pid` (its owner is going away); its end is reaped silently.
  void untrack(pid_t pid);
  bool tracked(pid_t pid) const { return owners_.count(pid) != 0; }

  // Runs after every reap that reaped something, after the tree watchers.
  void set_after_reap(std::function<void()> fn) { after_reap_ = std::move(fn); }

  // Tree watchers run after every reap: a stopping instance whose process
  // tree is not gone yet re-checks it. Only those waiting are called, so a
  // reap costs nothing per instance that is not.
  WatchId watch(std::function<void()> fn);
  void unwatch(WatchId id);

  // Reaps every child that has ended, a TimeSlice at a time: the rest on
  // the next loop turns, so that thousands of exits at once (a stop of
  // every instance) never hold the loop long enough to leave a client
  // waiting. The SIGCHLD event calls it; public for callers that must not
  // wait for the signal.
  void reap();

  // vigil's live children that nobody tracks (descendants that daemonized
  // and were re-parented to vigil) whose environment names `program` and
  // `index` (VIGIL_PROGRAM, VIGIL_INSTANCE), as of the last look at /proc.
  // Forgotten as they are reaped.
  std::vector<pid_t> strays_of(const std::string& program, int index) const;
  // Whether `pid`, once a stray, has not been reaped yet.
  bool stray_alive(pid_t pid) const { return strays_.count(pid) != 0; }
  // Looks at /proc for new strays now, unless that was done less than
  // kStrayRefresh (paced) ago and nothing was reaped since (then what was found is
  // still the best answer to give at once).
  void refresh_if_stale();
  // Looks at /proc now unless that was done less than kStrayRefresh (paced) ago,
  // whatever was reaped since: for a caller that finds a stray missed now
  // later anyway (a stop confirms its tree is gone through refresh_then).
  // A stop of thousands, in slices between reaps, must not read the
  // children of vigil once a slice: the kernel walks that list in O(n²).
  void refresh_unless_recent();
  // Runs `fn` after the next look at /proc, which comes at most
  // kStrayRefresh (paced) after the last one: every instance waiting to know
  // whether it left a stray shares one read.
  void refresh_then(std::function<void()> fn);

 private:
  struct StrayOwner {
    std::string program;
    int index = -1;  // -1: not an instance's (no VIGIL_PROGRAM / VIGIL_INSTANCE)
  };
  void refresh();
  // Whether the last look at /proc was less than the paced gap ago.
  bool looked_lately() const { return std::chrono::steady_clock::now() - last_refresh_ < refresh_gap_; }
  void forget_stray(pid_t pid);

  std::unordered_map<pid_t, OnExit> owners_;
  // Every untracked child seen, with whom its environment names, read
  // once per pid: vigil is its parent, so the pid is not reused before
  // vigil reaps it.
  std::unordered_map<pid_t, StrayOwner> strays_;
  std::map<std::pair<std::string, int>, std::vector<pid_t>> strays_by_owner_;
  bool strays_stale_ = true;  // something was reaped since the last look
  std::chrono::steady_clock::time_point last_refresh_{};
  std::chrono::nanoseconds refresh_gap_ = kStrayRefresh;  // paced_gap after the last read
  std::vector<std::function<void()>> refresh_waiters_;
  Timer refresh_timer_;
  Timer more_timer_;  // the next slice of a reap
  std::map<WatchId, std::function<void()>> watchers_;
  WatchId next_watch_ = 1;
  std::function<void()> after_reap_;
  SignalEvent sigchld_;
};

// Pids of the live children of `parent` (read from /proc).
std::vector<pid_t> child_pids(pid_t parent);
// Whether /proc/PID/environ holds VIGIL_PROGRAM=program and VIGIL_INSTANCE=index.
bool process_belongs_to(pid_t pid, const std::string& program, int index);
// The value of `name` in /proc/PID/environ (the environment it started
// with); nullopt when absent or unreadable (gone, a zombie, not ours).
std::optional<std::string> process_variable(pid_t pid, std::string_view name);

}  // namespace vigil
