// One liveness check at a time, on the loop, never blocking it: an HTTP GET,
// a TCP connect, or a command that must exit 0. Each run ends in exactly
// one ProbeOutcome (passed, or failed with a kind), by its timeout at the
// latest. It judges one check; counting failures and acting on them is the
// caller's. The verdicts themselves are core's (probe_check.h).
#pragma once
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "event_loop.h"
#include "probe_check.h"
#include "reaper.h"

namespace vigil {

class Probe {
 public:
  using Done = std::function<void(const ProbeOutcome&)>;

  // `port` replaces {port} in the target or command (nullopt: left as is,
  // which a validated config never needs). `cwd` and `env` are for exec:
  // the command's directory (empty: vigil's) and its whole environment as
  // "KEY=VALUE" (empty: vigil's own).
  Probe(EventLoop& loop, Reaper& reaper, ProbeConfig config, std::optional<int> port,
        std::filesystem::path cwd = {}, std::vector<std::string> env = {});
  ~Probe();  // cancels what is in flight
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

  // Starts one check; `done` runs once, on the loop, never inside run(),
  // never after cancel() or the Probe's end. The Probe may be destroyed, or
  // run again, from inside `done`. Ignored while one is in flight (at most
  // one per probe).
  void run(Done done);
  // Abandons the check in flight, if any: closes its socket, or kills the
  // command's process group (reaped as usual); `done` is not called.
  void cancel();
  // From run() until `done` was called (or cancel()).
  bool in_flight() const;

  // New settings (reload); applies from the next run.
  void update(ProbeConfig config, std::optional<int> port);

  // Names the probe in vigil's debug log ("program web[0]", "watch legacy").
  void set_label(std::string label) { label_ = std::move(label); }

 private:
  struct Run;
  void start_connect();
  void on_writable();
  void on_readable();
  void start_exec();
  void on_output();
  void on_exit(int wait_status);
  void on_timeout();
  // The verdict is in: release the socket or the command now, and hand the
  // outcome to `done` on the next loop turn, off every callback's stack.
  void settle(ProbeOutcome outcome);
  void deliver();
  void release(Run& run);

  EventLoop& loop_;
  Reaper& reaper_;
  ProbeConfig config_;
  std::optional<int> port_;
  std::filesystem::path cwd_;
  std::vector<std::string> env_;
  std::string label_ = "probe";
  Timer timeout_;  // one deadline per run
  std::unique_ptr<Run> run_;
};

}  // namespace vigil
