// vigil's lifeline: a small process, started before any program, that
// outlives vigil on purpose. vigil tells it through a pipe which process
// groups its instances run in; when the pipe closes without vigil's "bye"
// (vigil was SIGKILLed or crashed), it SIGKILLs those groups and every
// process carrying this vigil's VIGIL_RUN mark (descendants that left their
// group: setsid, daemons), then exits. A clean exit says "bye" first.
// Also here: finding and killing what an earlier, killed vigil of the same
// config left running. Writes never block vigil's loop.
#pragma once
#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "event_loop.h"
#include "fd.h"
#include "run_marker.h"

namespace vigil {

// This vigil process's mark: the key of `control_socket`, its pid and start
// time (both unchanged by an exec of a new vigil binary, which therefore
// computes the same mark).
RunMarker this_vigil_marker(const std::filesystem::path& control_socket);

// The mark every instance gets in its environment, "VIGIL_RUN=...": set once
// at start-up by `vigil run`; empty when unset (vigil run in-process by tests).
void set_run_marker(const RunMarker& marker);
const std::string& run_marker_variable();

class Lifeline {
 public:
  // Starts the lifeline process. Call it early: before any child (it
  // closes every fd but its pipe, yet forks a copy of vigil's memory) and
  // before vigil becomes a subreaper (the lifeline is no child of vigil's:
  // the intermediate process it is forked from exits, so it is re-parented
  // to init, and no stray-killing of vigil's meets it).
  // Throws std::system_error.
  static std::unique_ptr<Lifeline> start(const RunMarker& marker);
  // The lifeline of this process before an exec (`vigil upgrade`): its
  // pipe's write end, kept open. It still knows the groups it was told.
  static std::unique_ptr<Lifeline> adopt(UniqueFd write_end, pid_t pid);
  // The same when no state named it (the new vigil could not read the
  // state and takes things over from /proc): the inherited pipe that a
  // process named vigil-lifeline reads. Null when there is none; a new
  // one must then be started (the old one, if any, keeps its pipe open).
  static std::unique_ptr<Lifeline> find_inherited();
  // Says "bye" (waiting a bounded time for room in the pipe) and closes it:
  // the lifeline exits without killing anything.
  ~Lifeline();
  Lifeline(const Lifeline&) = delete;
  Lifeline& operator=(const Lifeline&) = delete;

  // Retries writes that met a full pipe on `loop`; without it, at the next
  // change. Detach before the loop goes.
  void attach(EventLoop& loop);
  void detach();

  // An instance's process group started / is gone.
  void watch_group(pid_t pgid);
  void forget_group(pid_t pgid);

  pid_t pid() const { return pid_; }
  // The pipe's write end (O_NONBLOCK, FD_CLOEXEC). A new vigil binary exec'd
  // in place (`vigil upgrade`) keeps the lifeline by clearing FD_CLOEXEC on
  // it and passing its number on; the lifeline sees no EOF and needs
  // nothing else (it does not know vigil's pid).
  int fd() const { return fd_.get(); }
  // The one started by `vigil run`, for the instances' hooks; null when
  // none runs.
  static Lifeline* current();

 private:
  Lifeline(UniqueFd write_end, pid_t pid);
  void send(const std::string& line);
  void flush();

  UniqueFd fd_;
  pid_t pid_;
  std::set<pid_t> groups_;
  std::string pending_;  // whole lines the pipe had no room for
  bool broken_ = false;  // the lifeline is gone
  std::unique_ptr<IoEvent> writable_;
};

// Forward to Lifeline::current(), if any (the instances' hooks).
void lifeline_watch_group(pid_t pgid);
void lifeline_forget_group(pid_t pgid);

// A process left running by an earlier vigil of the same config.
struct Survivor {
  pid_t pid = 0;
  long vigil_pid = 0;    // the vigil that started it
  std::string label;     // "web[0]" from VIGIL_PROGRAM/VIGIL_INSTANCE, or ""
  std::string name;      // comm
};

// Finds every process marked with `self`'s key by a vigil that no longer
// runs (not `self`, nor a live vigil on the same socket), SIGKILLs it and
// its process group (unless that is in vigil's own session), and waits, at
// most `wait`, until they are gone. Returns what it found.
std::vector<Survivor> kill_survivors(const RunMarker& self, std::chrono::milliseconds wait);

}  // namespace vigil
