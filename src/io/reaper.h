// Reaps every child of vigil (a subreaper, so also descendants that
// daemonized) and tells whoever started a process when it ends: instances,
// exec probes, watch actions. SIGCHLD is a loop event; one signal may
// stand for many exits, so each reap loops until waitpid finds nothing.
// It decides nothing about what an exit means.
#pragma once
#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "event_loop.h"

namespace vigil {

class Reaper {
 public:
  using OnExit = std::function<void(int wait_status)>;

  explicit Reaper(EventLoop& loop);
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;

  // `on_exit` runs (on the loop) once `pid` has ended and been reaped.
  void track(pid_t pid, OnExit on_exit);
  // Forget `pid` (its owner is going away); its end is reaped silently.
  void untrack(pid_t pid);
  bool tracked(pid_t pid) const { return owners_.count(pid) != 0; }

  // Runs after every reap that reaped something, and once more after the
  // owners were told (stopping instances re-check their process groups).
  void set_after_reap(std::function<void()> fn) { after_reap_ = std::move(fn); }

  // Reaps every child that has ended. The SIGCHLD event calls it; public
  // for callers that must not wait for the signal.
  void reap();

  // vigil's live children that nobody tracks: descendants that daemonized
  // and were re-parented to vigil. Cached until the next reap or track, so
  // stopping a thousand instances reads /proc once, not a thousand times.
  const std::vector<pid_t>& strays();

 private:
  std::unordered_map<pid_t, OnExit> owners_;
  std::vector<pid_t> strays_;
  bool strays_valid_ = false;
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
