// The life cycle of one instance as a pure state machine, s6-style: one
// table, kTransitions[event][state], names the handler of every pair, and a
// handler returns actions (spawn, signal, arm a timer, log, ...) for the
// shell (supervise/instance) to carry out. It owns no fd, no timer, no
// process and reads no clock: `now` comes with every event.
//
// The hang, memory and probe verdicts are three peers feeding one
// "terminate for a reason" path: HeartbeatWatch (deadlines), MemoryWatch
// (samples over the limit) and the probe streak (failures in a row).
#pragma once
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "clock.h"
#include "config.h"
#include "exit_status.h"
#include "heartbeat_watch.h"
#include "memory_watch.h"
#include "probe_check.h"
#include "restart_policy.h"
#include "state.h"

namespace vigil {

// What can happen to an instance. Timers are events of their own: each
// concern has one deadline (STYLE habit 2).
enum class Event : std::uint8_t {
  start,             // start asked: autostart, `after` satisfied, an operator (manual)
  stop,              // stop asked: an operator, the shutdown, a reload removing it
  restart,           // an operator's restart
  spawned,           // the spawn action started a process (pid)
  spawn_failed,      // the spawn action could not (text says why)
  exited,            // the main process ended and was reaped (status)
  tree_gone,         // nothing of the instance's processes is left (answer to check_tree)
  ready_signal,      // READY=1
  min_uptime,        // timer: the process lived min_uptime (ready = "uptime")
  start_timeout,     // timer: start_timeout passed (ready = "notify" | "probe")
  heartbeat,         // WATCHDOG=1
  heartbeat_due,     // timer: a heartbeat deadline
  hang_declared,     // WATCHDOG=trigger
  child_stopping,    // STOPPING=1
  extend_timeout,    // EXTEND_TIMEOUT_USEC=n (extend)
  probe_due,         // timer: time for the next probe
  probe_passed,      // a probe passed (probe)
  probe_failed,      // a probe failed (probe)
  memory_sample,     // a /proc sample of the process tree (rss_bytes, sibling_restarting)
  backoff_due,       // timer: the restart delay passed
  kill_due,          // timer: stop_timeout passed (then every kKillRecheck)
  settings_changed,  // a reload changed settings in place
};
inline constexpr std::size_t kEventCount = 22;
const char* to_string(Event e);
extern const std::array<Event, kEventCount> kAllEvents;

struct EventData {
  bool manual = false;                 // start: an operator's (clears fatal and the backoff)
  bool leftovers = false;              // stop, restart with no main process: something it
                                       // started still runs (a daemon that left its group)
  int pid = 0;                         // spawned
  ExitStatus status;                   // exited
  std::string text;                    // spawn_failed: why
  std::chrono::microseconds extend{};  // extend_timeout
  ProbeOutcome probe;                  // probe_passed / probe_failed
  std::uint64_t rss_bytes = 0;         // memory_sample
  bool sibling_restarting = false;     // memory_sample: another instance of the program is
                                       // being restarted for memory (one at a time)
};

// The one deadline of each concern.
enum class TimerId : std::uint8_t { ready, start, heartbeat, probe, backoff, kill };
inline constexpr std::size_t kTimerCount = 6;
const char* to_string(TimerId t);

enum class LogLevel : std::uint8_t { debug, info, warn, error };

struct Action {
  enum class Kind : std::uint8_t {
    state,           // the state changed: from -> to (listeners, the debug log)
    spawn,           // start a process; answer with spawned or spawn_failed
    signal,          // send `signal` to the process group and the instance's daemonized strays
    kill_leftovers,  // SIGKILL what an ended main process left in its group
    check_tree,      // is anything of the instance left? answer tree_gone when not
    arm,             // arm `timer` for `at` (replacing its deadline)
    cancel,          // disarm `timer`
    run_probe,       // start one probe (the shell answers probe_passed / probe_failed)
    cancel_probe,    // abandon the probe in flight, no answer
    stopped,         // a stop asked for is over: run whoever waits for it
    log,             // `level`, `text` (the shell prefixes "program LABEL: ")
  };
  explicit Action(Kind k) : kind(k) {}
  Kind kind;
  TimerId timer = TimerId::ready;
  SteadyTime at{};
  int signal = 0;
  State from = State::stopped;
  State to = State::stopped;
  LogLevel level = LogLevel::info;
  std::string text;
};
using Actions = std::vector<Action>;

// After SIGKILL, the stop re-checks the process tree this often: group
// members that are not vigil's children are reaped by their own parents,
// so no SIGCHLD may tell.
inline constexpr Duration kKillRecheck = std::chrono::milliseconds(100);

// Counters that survive restarts of the process (per program + index).
struct InstanceCounts {
  std::array<std::uint64_t, kAllRestartReasons.size()> restarts{};  // by RestartReason
  std::array<std::uint64_t, 3> exits{};                              // by ExitKind
  std::uint64_t total_restarts() const {
    std::uint64_t n = 0;
    for (auto r : restarts) n += r;
    return n;
  }
  template <class Archive>
  void persist(Archive& a) {
    a("restarts", restarts);
    a("exits", exits);
  }
};

// One end of a process, or a start that failed, and why: what `vigil
// status NAME`, the API and the page list as recent exits.
struct ExitEntry {
  ExitStatus status;
  SteadyTime at{};        // when it ended
  Duration run{};         // how long it ran (0 for a failed start)
  std::string reason;     // "exited with exit code 1", "hung: no heartbeat for 15s (...)"
  template <class Archive>
  void persist(Archive& a) {
    a("status", status);
    a("at", at);
    a("run", run);
    a("reason", reason);
  }
};
inline constexpr std::size_t kRecentExits = 10;

class InstanceMachine {
 public:
  // `config` must outlive the machine; a reload changes it in place and
  // then sends settings_changed. `jitter` in [-1, 1] (default: uniform
  // random) scales restart delays (as in RestartPolicy) and picks the phase
  // of the probes.
  explicit InstanceMachine(const ProgramConfig& config, std::function<double()> jitter = {});

  // One event at `now`: the state moves and `out` receives what to do, in
  // order (out is cleared first). The shell answers spawn with spawned or
  // spawn_failed, check_tree with tree_gone, run_probe with a probe result.
  void on(Event event, const EventData& data, SteadyTime now, Actions& out);
  Actions on(Event event, const EventData& data, SteadyTime now);  // for tests

  State state() const { return state_; }
  bool has_process() const { return has_process_; }
  int pid() const { return has_process_ ? pid_ : 0; }
  // Being stopped by vigil for `reason` (a restart follows).
  bool stopping_for(RestartReason reason) const;
  const InstanceCounts& counts() const { return counts_; }
  std::optional<ExitStatus> last_exit() const { return last_exit_; }
  // The last ends, newest last (at most kRecentExits).
  const std::vector<ExitEntry>& recent_exits() const { return recent_exits_; }
  // What went wrong last, with its evidence ("cannot execute ...", "hung: no
  // heartbeat for 15s (3 missed intervals of 5s)", "memory 600MiB over the
  // limit ...", the restarts that made it fatal); empty while nothing has.
  const std::string& last_error() const { return last_error_; }
  std::optional<SteadyTime> last_error_at() const { return last_error_at_; }
  // In backoff, the restart that is coming; else the last one done.
  std::optional<RestartReason> restart_reason() const;
  std::optional<SteadyTime> next_start() const;  // in backoff
  SteadyTime started_at() const { return started_at_; }
  const HeartbeatWatch& heartbeat() const { return heartbeat_; }
  const MemoryWatch& memory() const { return memory_; }
  int probe_failures_in_a_row() const { return probe_failures_; }
  bool probe_in_flight() const { return probe_in_flight_; }
  const RestartPolicy& policy() const { return policy_; }
  // Armed timers, as the last actions left them (the shell and tests agree).
  std::optional<SteadyTime> armed(TimerId t) const { return armed_[static_cast<std::size_t>(t)]; }

  // A plain function pointer (a thunk calling the member handler): GCC 12's
  // UBSan misreads the index into an array of pointers to members.
  using Handler = void (*)(InstanceMachine&, const EventData&);
  // What the table says for (state, event), for tests and documentation:
  // "impossible" (cannot happen: the machine cancelled what would send
  // it), "ignored" (can happen, on purpose changes nothing), or "handled".
  static const char* kind_of(State s, Event e);

  // Every field the machine carries from one event to the next, named, for
  // the handover to a new vigil across exec (core/handover.h): `a(key,
  // field)`, or `a(key, field, count)` for an enum of `count` values. The
  // config and the jitter source are not state: the new vigil brings its
  // own. A probe in flight is not carried: its timer stays armed while it
  // runs, so the next tick probes again. After loading, the shell re-arms
  // the timers armed() lists.
  template <class Archive>
  void persist(Archive& a);

 private:
  // What ends a stop that is under way.
  enum class AfterStop : std::uint8_t { stay_stopped, start, restart_manual, restart_for };
  static constexpr std::size_t kAfterStopCount = 4;  // persist() checks a loaded value against it

  // --- handlers (one per kind of transition; the table picks them)
  void impossible(const EventData&);
  void ignore(const EventData&);
  void start_process(const EventData&);
  void start_after_stop(const EventData&);
  void stop_process(const EventData&);
  void stop_again(const EventData&);
  void stop_idle(const EventData&);
  void restart_process(const EventData&);
  void restart_after_stop(const EventData&);
  void restart_idle(const EventData&);
  void on_spawned(const EventData&);
  void on_spawn_failed(const EventData&);
  void on_exited(const EventData&);
  void on_exited_stopping(const EventData&);
  void on_tree_gone(const EventData&);
  void on_ready_signal(const EventData&);
  void on_min_uptime(const EventData&);
  void on_start_timeout(const EventData&);
  void on_heartbeat(const EventData&);
  void on_heartbeat_due(const EventData&);
  void on_hang_declared(const EventData&);
  void on_child_stopping(const EventData&);
  void on_extend(const EventData&);
  void on_extend_stopping(const EventData&);
  void on_probe_due(const EventData&);
  void on_probe_passed(const EventData&);
  void on_probe_failed(const EventData&);
  void on_memory_sample(const EventData&);
  void on_backoff_due(const EventData&);
  void on_kill_due(const EventData&);
  void on_settings_changed(const EventData&);

  template <void (InstanceMachine::*H)(const EventData&)>
  static void call(InstanceMachine& m, const EventData& d) {
    (m.*H)(d);
  }
  static const Handler kTransitions[kEventCount][7];

  // --- steps shared by handlers
  void set_state(State s);
  void spawn();
  void begin_stop(AfterStop after, RestartReason reason = RestartReason::manual);
  // Kills for a cause: `why` is the evidence (the last error, the exit's reason).
  void terminate(RestartReason reason, std::string why);
  void finish_stop();
  void process_ended(const ExitStatus& status, const std::string& cause);
  void record_exit(const ExitStatus& status, std::string reason);
  void set_error(std::string text);
  // The fatal verdict's text: the ends inside the restart window, grouped.
  std::string fatal_text() const;
  void end_process_watches();
  void arm(TimerId t, SteadyTime at);
  void cancel(TimerId t);
  void arm_heartbeat();
  void log(LogLevel level, std::string text);
  void emit(Action a) { out_->push_back(std::move(a)); }
  bool live() const;  // a process that is starting or running

  const ProgramConfig& config_;
  std::function<double()> jitter_;  // in [-1, 1]: restart delays, the probes' phase
  State state_ = State::stopped;
  bool has_process_ = false;
  int pid_ = 0;
  AfterStop after_stop_ = AfterStop::stay_stopped;
  RestartReason stop_reason_ = RestartReason::manual;  // with AfterStop::restart_for
  RestartPolicy policy_;
  HeartbeatWatch heartbeat_;
  MemoryWatch memory_;
  int probe_failures_ = 0;
  bool probe_in_flight_ = false;
  bool probe_phased_ = false;  // the current process's probes have their own phase
  bool child_stopping_ = false;  // STOPPING=1 from the current process
  bool killed_ = false;          // SIGKILL went out during this stop
  SteadyTime started_at_{};
  SteadyTime stop_signalled_{};
  SteadyTime next_start_{};
  std::optional<RestartReason> pending_reason_;  // counted at the next spawn
  std::optional<RestartReason> last_reason_;
  std::optional<ExitStatus> last_exit_;
  std::vector<ExitEntry> recent_exits_;  // not a deque: nothing allocated before the first exit
  std::string kill_cause_;  // why vigil is stopping it (with AfterStop::restart_for)
  std::string last_error_;
  std::optional<SteadyTime> last_error_at_;
  InstanceCounts counts_;
  std::array<std::optional<SteadyTime>, kTimerCount> armed_{};

  // Valid during on(): where actions go, and the time of the event.
  Actions* out_ = nullptr;
  SteadyTime now_{};
};

template <class Archive>
void InstanceMachine::persist(Archive& a) {
  a("state", state_, kAllStates.size());
  a("has_process", has_process_);
  a("pid", pid_);
  a("after_stop", after_stop_, kAfterStopCount);
  a("stop_reason", stop_reason_, kAllRestartReasons.size());
  a("policy", policy_);
  a("heartbeat", heartbeat_);
  a("memory", memory_);
  a("probe_failures", probe_failures_);
  a("probe_phased", probe_phased_);
  a("child_stopping", child_stopping_);
  a("killed", killed_);
  a("started_at", started_at_);
  a("stop_signalled", stop_signalled_);
  a("next_start", next_start_);
  a("pending_reason", pending_reason_, kAllRestartReasons.size());
  a("last_reason", last_reason_, kAllRestartReasons.size());
  a("last_exit", last_exit_);
  a("recent_exits", recent_exits_);
  a("kill_cause", kill_cause_);
  a("last_error", last_error_);
  a("last_error_at", last_error_at_);
  a("counts", counts_);
  a("armed", armed_);
}

}  // namespace vigil
