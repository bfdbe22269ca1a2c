// One instance of a program, the thin executor of its InstanceMachine: it
// turns what happens (a request, an exit, a heartbeat, a timer, a probe
// result, a /proc sample) into events, and carries out the actions the
// machine returns with processes, signals, timers, pipes and probes. It
// decides nothing itself; what it needs from above comes through an
// InstanceHost.
#pragma once
#include <signal.h>
#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "event_loop.h"
#include "heartbeat_channel.h"
#include "instance_host.h"
#include "instance_machine.h"
#include "output_pipe.h"
#include "probe.h"
#include "proc_sampler.h"
#include "sample_schedule.h"
#include "snapshot.h"

namespace vigil {

// Counters that survive restarts of the process (per program + index): the
// machine's restarts and exits, and the bytes of output logged.
struct InstanceCounters : InstanceCounts {
  std::array<StreamCounters, 2> log{};  // by Stream
};

class Instance {
 public:
  Instance(EventLoop& loop, InstanceHost& host, int index);
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  // Starts the process now (manual start clears fatal and the backoff).
  void start(bool manual);
  // Stops the process (stop_signal, SIGKILL after stop_timeout); `done` runs
  // once the instance is stopped (at once if it already is). A `last` stop
  // (vigil shutting down) lets go of the log files and the notify socket
  // once stopped, rather than keeping them for a next start: vigil's exit
  // then has less to close, and the stop's idle moments did it.
  void stop(std::function<void()> done = {}, bool last = false);
  // stop, then start again with reason `manual`.
  void restart_manual();
  // Kills the process group with SIGKILL at once (second Ctrl-C).
  void kill_now();
  // From the reaper (a tree watch): some process ended; a stopping
  // instance re-checks whether anything of its process tree is left.
  void on_any_child_exit();
  // Settings changed in place (reload): policy, heartbeat, probe, logs.
  void apply_config();
  // A periodic /proc read of the process tree (the memory limit acts on
  // these). `sibling_restarting`: another instance of the program is being
  // restarted for memory (one at a time). Only when due, unless `all`.
  // Not due but `fresh_by` given (a scrape expected then): read as
  // refresh_sample when the figures would be stale at it. Returns whether
  // it read /proc.
  bool on_sample(ProcSampler& sampler, SteadyTime now, Duration interval, bool sibling_restarting,
                 bool all = false, std::optional<SteadyTime> fresh_by = std::nullopt);
  // An on-demand read for a scrape or the API: the figures only, when the
  // schedule says they are (at `fresh_by`, or now) stale for `freshness`.
  // Returns whether it read /proc.
  bool refresh_sample(ProcSampler& sampler, SteadyTime now, Duration interval, Freshness freshness,
                      std::optional<SteadyTime> fresh_by = std::nullopt);
  // When the periodic read is due (SampleSchedule); no process: never.
  std::optional<SteadyTime> next_sample_at() const;
  // What the metrics, API and status page show.
  InstanceSnapshot snapshot() const;
  // SIGUSR2: reopen log files.
  void reopen_logs();

  // The handover to a new vigil across exec (`vigil upgrade`): everything
  // this instance carries (the machine, its process, counters), the fds it
  // reads (output pipes, the heartbeat pipe, the notify socket) by number,
  // each also added to `keep` (they must stay open across exec).
  nlohmann::json save_handover(std::vector<int>& keep) const;
  // In the new vigil, instead of a start: takes over what save_handover
  // wrote (the process stays this instance's, the pipes are read on),
  // re-arms the machine's timers. Throws HandoverError (what it took over
  // so far stays taken).
  void adopt(const nlohmann::json& saved, const std::string& path);
  // The process `pid` found in /proc (a state that could not be read):
  // running since `started`, nothing else known; its output pipes and
  // heartbeat pipe, when found, are read on.
  void adopt_process(pid_t pid, WallTime started, std::vector<std::pair<UniqueFd, Stream>> pipes,
                     UniqueFd heartbeat);

  State state() const { return machine_.state(); }
  pid_t pid() const { return pid_; }
  int index() const { return index_; }
  const ProgramConfig& config() const { return host_.config(); }
  // "web" or "web[2]" when the program has several instances.
  std::string label() const;
  bool ready() const { return state() == State::running; }
  // Being stopped by vigil for this reason (a restart follows).
  bool stopping_for(RestartReason r) const { return machine_.stopping_for(r); }

  InstanceCounters counters() const;
  std::optional<ExitStatus> last_exit() const { return machine_.last_exit(); }
  std::optional<RestartReason> last_restart_reason() const { return machine_.restart_reason(); }
  std::chrono::system_clock::time_point start_time() const { return start_wall_; }
  std::chrono::steady_clock::time_point start_steady() const { return machine_.started_at(); }
  int spawns() const { return spawns_; }
  const std::string& status_text() const { return status_text_; }
  const NotifyCounts& notify_counts() const { return notify_counts_; }
  std::uint64_t heartbeats() const { return machine_.heartbeat().total_beats(); }
  std::uint64_t heartbeat_misses() const { return machine_.heartbeat().total_misses(); }
  std::optional<std::uint64_t> reported_memory() const { return reported_memory_; }
  std::uint64_t rss_bytes() const { return rss_bytes_; }
  // The CPU of the process tree, every process so far (sysconf ticks).
  std::uint64_t cpu_ticks() const { return cpu_.total_ticks(); }
  std::optional<std::chrono::system_clock::time_point> last_heartbeat_wall() const {
    return last_heartbeat_wall_;
  }
  std::filesystem::path notify_socket_path() const;
  // The serial of the next notify socket's name (n1.sock, ...), carried
  // across exec so that new names do not meet adopted ones.
  static std::uint64_t& notify_serial();
  const InstanceMachine& machine() const { return machine_; }

 private:
  // Runs the machine on one event and carries out its actions; events that
  // arise while doing so (a spawn's answer, a waiter's request) queue and
  // follow in order, so the machine never re-enters itself.
  void dispatch(Event event, const EventData& data = {});
  void handle(Event event, const EventData& data);
  void execute(const Action& action);

  // The actions' shells.
  void spawn_process();
  std::string try_spawn();
  void check_tree();
  void confirm_tree_gone();
  bool tree_left();
  void watch_tree();
  void unwatch_tree();
  void run_probe();
  void signal_all(int sig);
  void signal_group(int sig);
  bool group_alive();
  // Whether something this instance started runs with no main process (a
  // daemon that left the group): a stop or restart must reach it.
  bool has_leftovers();
  // Finds its daemonized processes in the reaper's last look at /proc and
  // adds them to strays_; returns the ones new there.
  std::vector<pid_t> remember_strays();
  void arm(TimerId t, SteadyTime at);
  void on_timer(TimerId t);

  // What comes in.
  void on_process_exit(int wait_status);
  void on_notify(const NotifyMessage& m);
  void on_probe_result(const ProbeOutcome& outcome);

  void ensure_notify_socket(std::optional<uid_t> owner);
  std::optional<int> port() const;
  void open_sinks();
  // Closes the log files, the heartbeat pipe and the notify socket; the
  // next start opens them again (pipes still draining keep their files).
  void let_go_of_fds();
  LogFileOptions log_options(Stream s) const;
  void start_pipe(UniqueFd read_end, Stream stream);

  EventLoop& loop_;
  InstanceHost& host_;
  int index_;
  InstanceMachine machine_;
  bool dispatching_ = false;
  std::vector<std::pair<Event, EventData>> pending_;  // empty unless dispatching

  pid_t pid_ = -1;
  pid_t pgid_ = -1;  // kept after the leader exits, to finish the group off
  // Processes of this instance that left its group and were re-parented to
  // vigil, found while stopping: the group signal misses them.
  std::vector<pid_t> strays_;
  int last_signal_ = SIGTERM;     // of this stop, for strays found late
  Reaper::WatchId tree_watch_ = 0;  // re-checking the tree after each reap
  bool confirming_ = false;       // waiting for the reaper's next look at /proc
  bool last_stop_ = false;        // stop(last): let go of the fds once stopped
  int spawns_ = 0;
  pid_t adopting_ = 0;  // adopt_process: the pid the next spawn action stands for
  std::chrono::system_clock::time_point start_wall_{};
  std::array<std::unique_ptr<Timer>, kTimerCount> timers_;

  std::unique_ptr<NotifySocket> notify_;      // lives as long as the instance
  std::unique_ptr<HeartbeatPipe> heartbeat_;  // fd 3 of the current process
  NotifyCounts notify_counts_;
  std::optional<std::chrono::system_clock::time_point> last_heartbeat_wall_;
  std::string status_text_;
  std::optional<std::uint64_t> reported_memory_;
  std::uint64_t rss_bytes_ = 0;
  CpuAccumulator cpu_;
  SampleSchedule sample_schedule_;

  std::unique_ptr<Probe> probe_;  // created at the first probe
  ProbeSnapshot probe_stats_;

  std::array<std::shared_ptr<LogSink>, 2> sinks_;
  std::array<StreamCounters, 2> log_counts_{};
  std::list<std::unique_ptr<OutputPipe>> pipes_;  // current and still-draining ones
  std::vector<std::function<void()>> stop_waiters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for deferred calls
};

}  // namespace vigil
