// What a [watch.NAME] decides from what it observes: what counts as a
// failure, when on_failure runs, the cool-down after it, and which pid
// {pid} names. Pure: time comes in as a parameter; it arms no timer, runs
// no command and reads no socket (it returns "act now", the shell acts).
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "clock.h"
#include "config.h"
#include "heartbeat_watch.h"
#include "units.h"

namespace vigil {

// What a watch looks at: a check (as a probe) or a notify socket.
enum class WatchKind { http, tcp, exec, notify };
const char* to_string(WatchKind k);  // "http", "tcp", "exec", "notify"
WatchKind watch_kind(const WatchConfig& c);

// How one on_failure command ended (vigil_watch_actions_total{result}).
enum class ActionResult { ok, failed, timeout };
inline constexpr std::array<ActionResult, 3> kAllActionResults{
    ActionResult::ok, ActionResult::failed, ActionResult::timeout};
const char* to_string(ActionResult r);  // "ok", "failed", "timeout"

// Where a watch stands, as `vigil status` and the API show it.
enum class WatchState {
  waiting,   // no verdict: no check result yet; no process registered (before READY=1, after STOPPING=1)
  up,        // the last check passed; the registered process beats
  failing,   // failed, but fewer than `failures` checks (`misses` intervals) in a row
  acting,    // on_failure is running
  cooldown,  // acted and still failing: waiting out the cool-down before acting again
  down,      // failed enough to act, with no on_failure to run (the watch only reports)
};
const char* to_string(WatchState s);  // "waiting", "up", "failing", "acting", "cooldown", "down"

// Why on_failure runs.
enum class ActReason {
  failures,       // check: `failures` failed checks in a row
  hung,           // notify: `misses` heartbeat intervals in a row without one
  trigger,        // notify: WATCHDOG=trigger
  still_failing,  // the cool-down ended and the watch still fails
};

// "Run on_failure now": why, and the pid {pid} stands for (none: unknown).
struct WatchAction {
  ActReason reason = ActReason::failures;
  std::optional<int> pid;
};

// The rules, for one watch:
//
// Failures. A check watch counts each failed check. A notify watch counts
// each heartbeat interval that passes without a heartbeat while a process is
// registered (HeartbeatWatch: `grace` before the first, then `interval`),
// and each WATCHDOG=trigger. Once hung, detection stops (as for a program's
// heartbeat): the silence that follows is one failure, not one per interval.
//
// Acting. on_failure runs once, when `failures` failed checks in a row are
// reached (a notify watch: hung, or WATCHDOG=trigger). Once its commands
// have all finished, a cool-down of interval x failures (interval x misses)
// starts; nothing runs again before it ends, however the watch fares. When
// it ends and the watch still fails (the last check failed; the process has
// neither beaten nor registered again), on_failure runs again, and so on
// after each cool-down: a process that never comes back gets an action per
// cool-down, like a check that keeps failing. A passing check, a heartbeat
// or READY=1 ends the failure; a later one starts counting from zero.
//
// Registration (notify watches). READY=1 registers a process: detection
// starts, `grace` before its first heartbeat. WATCHDOG=1 is a heartbeat; one
// from a hung process (a stall that ended) ends the failure and restarts
// detection. STOPPING=1 disposes of the registration: detection off, no
// failure, no action, until the next READY=1. Nothing is watched before the
// first READY=1: a process that never registers is never acted upon.
//
// {pid}. MAINPID=N names the process. A datagram's sender is not asked for
// its pid: with `systemd-notify`, the sender is systemd-notify itself, gone
// by the time vigil reads the datagram. The pid is forgotten on STOPPING=1
// and when on_failure is run with it (those commands are meant to end that
// process; naming it again later could hit another process that got its
// pid), so a later action knows a pid only if a MAINPID= came since. A
// command that uses {pid} while none is known is not run (result failed);
// the others are.
class WatchPolicy {
 public:
  explicit WatchPolicy(const WatchConfig& config);

  // --- check watches
  // One check's result.
  std::optional<WatchAction> on_check(bool ok, SteadyTime now);

  // --- notify watches
  void on_ready(SteadyTime now);                                // READY=1
  void on_beat(SteadyTime now);                                 // WATCHDOG=1
  void on_main_pid(int pid);                                    // MAINPID=N (N > 0)
  void on_stopping();                                           // STOPPING=1
  std::optional<WatchAction> on_trigger(SteadyTime now);        // WATCHDOG=trigger
  // The heartbeat deadline passed (the shell's timer, armed at
  // heartbeat_deadline()).
  std::optional<WatchAction> on_heartbeat_deadline(SteadyTime now);
  std::optional<SteadyTime> heartbeat_deadline() const { return heartbeat_.deadline(); }

  // --- actions
  // Every on_failure command of the run has ended; the cool-down starts.
  void on_actions_finished(SteadyTime now, const std::vector<ActionResult>& results);
  // When on_failure should run again if the watch is still failing then:
  // the end of the cool-down (or at once after a reload gave a failing
  // watch commands to run). nullopt: nothing to wait for.
  std::optional<SteadyTime> next_action_time() const;
  // The timer armed at next_action_time() fired.
  std::optional<WatchAction> on_next_action_time(SteadyTime now);

  // Reload: new thresholds, intervals and commands; what was observed stays.
  void update(const WatchConfig& config);

  // --- what is shown
  WatchState state() const;
  // The last verdict: a check's result; for a notify watch, 1 while the
  // registered process beats, 0 from its first missed interval (or trigger)
  // on. nullopt before the first result and while no process is registered.
  std::optional<bool> up() const;
  bool registered() const { return registered_; }
  int consecutive_failures() const { return consecutive_; }
  std::uint64_t failures() const { return failures_; }
  std::uint64_t actions(ActionResult r) const { return actions_[static_cast<std::size_t>(r)]; }
  std::uint64_t heartbeats() const { return heartbeat_.total_beats(); }
  std::optional<int> pid() const { return pid_; }
  // The last check, or the last READY=1 / WATCHDOG=1.
  std::optional<SteadyTime> last_seen() const { return last_seen_; }
  bool failing() const;
  bool acting() const { return acting_; }
  int threshold() const { return threshold_; }
  Duration cooldown() const { return cooldown_; }

 private:
  std::optional<WatchAction> act(SteadyTime now, ActReason reason);

  bool notify_ = false;
  bool has_actions_ = false;
  int threshold_ = 3;          // failures, or misses
  Duration cooldown_{};        // interval x threshold
  HeartbeatWatch heartbeat_;   // notify watches

  std::optional<bool> last_check_;  // check watches
  bool registered_ = false;         // notify: READY=1 and no STOPPING=1 since
  bool hung_ = false;               // notify: misses reached, or WATCHDOG=trigger
  int consecutive_ = 0;
  std::uint64_t failures_ = 0;
  std::array<std::uint64_t, 3> actions_{};
  bool acting_ = false;
  std::optional<SteadyTime> finished_at_;  // when the last run of on_failure ended
  std::optional<int> pid_;
  std::optional<SteadyTime> last_seen_;
};

// MAINPID's value: a decimal pid > 0; nullopt for anything else.
std::optional<int> parse_main_pid(std::string_view value);

// `argv` with every "{pid}" replaced by `pid`; nullopt when an argument
// holds "{pid}" and no pid is known (the command must not run).
std::optional<std::vector<std::string>> expand_pid(const std::vector<std::string>& argv,
                                                   std::optional<int> pid);

}  // namespace vigil
