// One instance of a program: at most one live process at a time, its state,
// its restart policy, its output pipes and the timers of its life cycle
// (readiness, backoff, stop). It turns events (exit, timer, request) into
// calls on the pure RestartPolicy and carries out what that decides.
#pragma once
#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include "config.h"
#include "event_loop.h"
#include "exit_status.h"
#include "heartbeat_channel.h"
#include "heartbeat_watch.h"
#include "output_pipe.h"
#include "proc_sampler.h"
#include "snapshot.h"
#include "restart_policy.h"
#include "state.h"

namespace vigil {

class Program;

// RSS over memory_limit this many samples in a row: restart (reason memory).
inline constexpr int kMemoryLimitSamples = 3;

// Counters that survive restarts of the process (per program + index).
struct InstanceCounters {
  std::array<std::uint64_t, kAllRestartReasons.size()> restarts{};  // by RestartReason
  std::array<std::uint64_t, 3> exits{};                              // by ExitKind
  std::array<StreamCounters, 2> log{};                               // by Stream
  std::uint64_t total_restarts() const {
    std::uint64_t n = 0;
    for (auto r : restarts) n += r;
    return n;
  }
};

class Instance {
 public:
  Instance(EventLoop& loop, Program& program, int index);
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  // Starts the process now (manual start clears fatal and the backoff).
  void start(bool manual);
  // Stops the process (stop_signal, SIGKILL after stop_timeout); `done` runs
  // once the instance is stopped (at once if it already is).
  void stop(std::function<void()> done = {});
  // stop, then start again with reason `manual`.
  void restart_manual();
  // Kills the process group with SIGKILL at once (second Ctrl-C).
  void kill_now();
  // vigil killed it for a reason (hung, memory, probe, start_timeout): the
  // stop sequence, then the restart policy decides with that reason.
  void terminate_for(RestartReason reason);

  // From the reaper: our process ended.
  void on_process_exit(int wait_status);
  // From the reaper: some process ended; a stopping instance re-checks
  // whether its process group is empty.
  void on_any_child_exit();

  // Settings changed in place (reload): policy, heartbeat and log options.
  void apply_config();
  // A /proc sample of the process tree (Supervisor's sampling timer).
  // Returns true when the tree's RSS has been over memory_limit for
  // kMemoryLimitSamples samples in a row.
  bool on_sample(const ProcSampler& sampler);
  // What the metrics, API and status page show.
  InstanceSnapshot snapshot(std::chrono::system_clock::time_point now_wall,
                            std::chrono::steady_clock::time_point now) const;
  const std::string& status_text() const { return status_text_; }
  // Being stopped by vigil for this reason (a restart follows).
  bool stopping_for(RestartReason r) const { return state_ == State::stopping && forced_reason_ == r; }
  const NotifyCounts& notify_counts() const { return notify_counts_; }
  std::uint64_t heartbeats() const { return heartbeats_; }
  std::uint64_t heartbeat_misses() const { return watch_.total_misses(); }
  std::optional<std::uint64_t> reported_memory() const { return reported_memory_; }
  std::uint64_t rss_bytes() const { return rss_bytes_; }
  const std::filesystem::path& notify_socket_path() const;
  // SIGUSR2: reopen log files.
  void reopen_logs();

  State state() const { return state_; }
  pid_t pid() const { return pid_; }
  int index() const { return index_; }
  Program& program() const { return program_; }
  // "web" or "web[2]" when the program has several instances.
  std::string label() const;
  const InstanceCounters& counters() const { return counters_; }
  std::optional<ExitStatus> last_exit() const { return last_exit_; }
  std::optional<RestartReason> last_restart_reason() const { return last_reason_; }
  std::chrono::system_clock::time_point start_time() const { return start_wall_; }
  std::chrono::steady_clock::time_point start_steady() const { return start_steady_; }
  std::chrono::steady_clock::time_point next_start() const { return next_start_; }
  int spawns() const { return spawns_; }
  bool ready() const { return state_ == State::running; }

  // Called on every state change: (instance, old, new).
  using StateListener = std::function<void(Instance&, State, State)>;
  void set_state_listener(StateListener l) { listener_ = std::move(l); }

 private:
  void set_state(State s);
  void spawn_process();
  // The process is gone (or never started: `cause` says why).
  void on_ended(const ExitStatus& status, const std::string& cause);
  void on_ready_timer();
  void on_backoff_timer();
  void on_kill_timer();
  void on_heartbeat_timer();
  void on_start_timer();
  void on_notify(const NotifyMessage& m);
  void arm_heartbeat_timer();
  void ensure_notify_socket(std::optional<uid_t> owner);
  void signal_group(int sig);
  bool group_alive() const;
  void finish_stop();
  void open_sinks();
  LogFileOptions log_options(Stream s) const;
  void start_pipe(UniqueFd read_end, Stream stream);

  EventLoop& loop_;
  Program& program_;
  int index_;
  State state_ = State::stopped;
  pid_t pid_ = -1;
  pid_t pgid_ = -1;  // kept after the leader exits, to finish the group off
  RestartPolicy policy_;
  InstanceCounters counters_;
  std::optional<ExitStatus> last_exit_;
  std::optional<RestartReason> last_reason_;
  std::optional<RestartReason> forced_reason_;  // why vigil is stopping it, if not a stop
  std::optional<RestartReason> pending_restart_reason_;  // restart recorded at the next spawn
  bool restart_after_stop_ = false;
  std::chrono::system_clock::time_point start_wall_{};
  std::chrono::steady_clock::time_point start_steady_{};
  std::chrono::steady_clock::time_point next_start_{};
  // When stop_signal went out, and whether SIGKILL followed: the kill is
  // logged once, with the time it really took (EXTEND_TIMEOUT_USEC moves it).
  std::chrono::steady_clock::time_point stop_signalled_{};
  bool killed_ = false;
  int spawns_ = 0;

  Timer ready_timer_;    // min_uptime (ready = "uptime")
  Timer backoff_timer_;  // next start
  Timer kill_timer_;     // stop_timeout → SIGKILL
  Timer heartbeat_timer_;  // next heartbeat deadline
  Timer start_timer_;      // start_timeout (ready = "notify")

  HeartbeatWatch watch_;
  std::unique_ptr<NotifySocket> notify_;      // lives as long as the instance
  std::unique_ptr<HeartbeatPipe> heartbeat_;  // fd 3 of the current process
  NotifyCounts notify_counts_;
  std::uint64_t heartbeats_ = 0;
  // The current process said STOPPING=1: no hang detection for it, even
  // when a reload changes the heartbeat settings.
  bool child_stopping_ = false;
  std::optional<std::chrono::system_clock::time_point> last_heartbeat_wall_;
  std::string status_text_;
  std::optional<std::uint64_t> reported_memory_;
  std::uint64_t rss_bytes_ = 0;
  CpuAccumulator cpu_;
  int over_limit_samples_ = 0;
  std::deque<ExitRecord> recent_exits_;

  std::array<std::shared_ptr<LogSink>, 2> sinks_;
  std::list<std::unique_ptr<OutputPipe>> pipes_;  // current and still-draining ones
  std::vector<std::function<void()>> stop_waiters_;
  StateListener listener_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for deferred calls
};

}  // namespace vigil
