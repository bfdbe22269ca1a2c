// One liveness check at a time, on the loop, never blocking it: an HTTP GET,
// a TCP connect, or a command that must exit 0. Each run ends in exactly
// one ProbeOutcome (passed, or failed with a kind), by its timeout at the
// latest. It judges one check; counting failures and acting on them is the
// caller's.
#pragma once
#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>

#include "config.h"
#include "event_loop.h"
#include "probe_check.h"
#include "reaper.h"

namespace vigil {

class Probe {
 public:
  using Done = std::function<void(const ProbeOutcome&)>;

  // `port` replaces {port} in the target or command (nullopt: left as is,
  // which a validated config never needs). `cwd` and `env` are for exec.
  Probe(EventLoop& loop, Reaper& reaper, ProbeConfig config, std::optional<int> port,
        std::filesystem::path cwd = {}, std::vector<std::string> env = {});
  ~Probe();  // cancels what is in flight
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

  // Starts one check; `done` runs once, on the loop, never inside run().
  // Ignored while one is in flight (at most one per probe).
  void run(Done done);
  // Abandons the check in flight, if any: closes its socket, or kills the
  // command's process group (reaped as usual); `done` is not called.
  void cancel();
  bool in_flight() const;

  // New settings (reload); applies from the next run.
  void update(ProbeConfig config, std::optional<int> port);

 private:
  struct Run;
  EventLoop& loop_;
  Reaper& reaper_;
  ProbeConfig config_;
  std::optional<int> port_;
  std::filesystem::path cwd_;
  std::vector<std::string> env_;
  std::unique_ptr<Run> run_;
};

}  // namespace vigil
