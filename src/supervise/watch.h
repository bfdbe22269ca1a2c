// One [watch.NAME]: a service vigil does not spawn. It runs the check (a
// Probe) on its timer, or listens on the notify socket an outside process
// registers and beats on; it hands what it sees to the pure WatchPolicy and
// runs on_failure (a CommandRunner) when the policy says so. It never
// decides on its own when to act, and never touches programs.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command_runner.h"
#include "config.h"
#include "event_loop.h"
#include "heartbeat_channel.h"
#include "probe.h"
#include "reaper.h"
#include "snapshot.h"
#include "watch_policy.h"

namespace vigil {

class Watch {
 public:
  // `cwd`: where on_failure commands (and an exec check) run: the folder of
  // the config file, against which relative paths in it resolve.
  Watch(EventLoop& loop, Reaper& reaper, WatchConfig config, std::filesystem::path cwd);
  // Closes the notify socket (its file removed) and kills actions running.
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // Starts checking, or listening on the notify socket. A socket that cannot
  // be bound is logged and leaves the watch off (failed_to_start()).
  void start();
  // Shutdown: no more checks, the socket closed (its file removed), the
  // actions running killed. Not started again.
  void stop();
  // Reload of what changes in place (see watch_restart_needed): the count
  // and the cool-down go on under the new settings.
  void update(const WatchConfig& config);

  const std::string& name() const { return config_.name; }
  const WatchConfig& config() const { return config_; }
  // The notify socket could not be bound: a reload makes the watch anew.
  bool failed_to_start() const { return failed_to_start_; }
  const WatchPolicy& policy() const { return policy_; }
  bool acting() const { return runner_.running(); }

  WatchSnapshot snapshot(WallTime now_wall, SteadyTime now) const;

 private:
  void start_check();
  void start_notify();
  void on_check_timer();
  void on_check_result(const ProbeOutcome& outcome);
  void on_notify(const NotifyMessage& m);
  void on_notify_unknown(std::string_view key, std::string_view value);
  void on_heartbeat_timer();
  void on_action_timer();
  void act(const WatchAction& action, const std::string& why);
  void on_actions_done(const std::vector<CommandOutcome>& outcomes);
  void arm_heartbeat_timer();
  void arm_action_timer();
  std::string label() const { return "watch " + config_.name; }

  EventLoop& loop_;
  Reaper& reaper_;
  WatchConfig config_;
  std::filesystem::path cwd_;
  WatchPolicy policy_;
  CommandRunner runner_;
  bool started_ = false;
  bool stopped_ = false;
  bool failed_to_start_ = false;

  // Check watches.
  std::unique_ptr<Probe> probe_;
  Timer check_timer_;  // the next check, `interval` after the start of the last
  std::string last_check_detail_;

  // Notify watches.
  std::unique_ptr<NotifySocket> notify_;
  NotifyCounts notify_counts_;
  Timer heartbeat_timer_;  // the next heartbeat deadline

  Timer action_timer_;  // the end of the cool-down, when still failing
  std::string last_error_;
};

// vigil's environment for the commands of a watch: without the variables
// vigil sets per child or inherited from its own supervisor (NOTIFY_SOCKET,
// WATCHDOG_*, LISTEN_*, VIGIL_*), plus VIGIL_WATCH=NAME.
std::vector<std::string> watch_environment(const std::string& name);

}  // namespace vigil
