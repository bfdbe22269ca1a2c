// The top of the tree: owns the programs, reaps every child (vigil is a
// subreaper), orders starts by `after` and stops in reverse, and decides
// when vigil itself exits. Signals reach it as loop events (see run_command).
#pragma once
#include <sys/types.h>

#include <functional>
#include <map>
#include <unordered_map>
#include <memory>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.h"
#include "config_diff.h"
#include "event_loop.h"
#include "heartbeat_channel.h"
#include "listen_socket.h"
#include "proc_sampler.h"
#include "snapshot.h"
#include "program.h"
#include "real_clock.h"
#include "sample_schedule.h"
#include "reaper.h"
#include "watch.h"

namespace vigil {

struct ReloadResult {
  bool ok = false;                  // the new file was valid (and applied unless dry run)
  bool changes = false;             // the plan changes something
  std::string plan;                 // describe(plan)
  std::vector<std::string> errors;  // FILE:LINE:COL: message
};

// How the listener of the sticky proxy on `listen` (ListenAddress::to_string)
// is named among the sockets a handover passes to a Supervisor.
inline std::string sticky_listener_key(const std::string& listen) { return "sticky " + listen; }

class Supervisor {
 public:
  // Binds every program's `listen` sockets; throws std::runtime_error
  // ("program web: cannot listen on ...") when one cannot be bound.
  Supervisor(EventLoop& loop, Config config);
  // The new vigil of a handover across exec (`vigil upgrade`): the runtime
  // folder and the held `listen` sockets the old one saved are taken over
  // (`saved` from save_handover; null: none, as above). Throws
  // HandoverError when `saved` names no runtime folder. `inherited`: held
  // sockets found otherwise, by address (a state that could not be read).
  Supervisor(EventLoop& loop, Config config, const nlohmann::json* saved,
             std::map<std::string, UniqueFd> inherited = {});
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts every autostart program whose `after` programs are ready; the
  // others start as their dependencies become ready.
  void start();
  // Instead of start() in the new vigil of a handover: every instance
  // saved takes over its process and fds (Instance::adopt); instances with
  // none then take over a child of vigil's that their VIGIL_PROGRAM /
  // VIGIL_INSTANCE name (the state could not be read, or not all of it);
  // the rest start as start() would. Children that ended during the
  // handover are reaped then, and handled as any exit. Returns how many
  // instances took over a process from the state, and how many from /proc.
  struct Resumed {
    std::size_t from_state = 0;
    std::size_t from_proc = 0;
    std::vector<std::string> errors;  // what could not be taken over, and why
  };
  Resumed resume(const nlohmann::json* saved);
  EventLoop& loop() const { return loop_; }
  // Why a handover cannot be done now; empty when it can.
  std::string handover_blocker() const;
  // Everything resume() takes; the fds it names are added to `keep`.
  nlohmann::json save_handover(std::vector<int>& keep) const;
  // Stops everything (dependents before what they depend on, the rest in
  // parallel), then every stray child; `done(exit_code)` runs at the end:
  // 0, or 3 when an essential program went fatal.
  // `done` replaces the exit handler when given.
  void shutdown(std::function<void(int)> done = {});
  // What runs when vigil decides on its own to exit (an essential program
  // went fatal), after everything is stopped.
  void set_exit_handler(std::function<void(int)> h) { shutdown_done_ = std::move(h); }
  int exit_code() const { return exit_code_; }
  // Second Ctrl-C: SIGKILL to every process group at once.
  void kill_all_now();
  void reopen_logs();
  bool shutting_down() const { return shutting_down_; }

  const Config& config() const { return config_; }
  // Private folder of the instances' notify sockets.
  const std::filesystem::path& runtime_dir() const { return runtime_dir_.path(); }
  const std::vector<std::unique_ptr<Program>>& programs() const { return programs_; }
  Program* find(std::string_view name) const;

  // Applies a new, already validated config (DESIGN.md reload rules) and
  // returns the plan; with dry_run only returns it. Throws
  // std::runtime_error, having changed nothing, when a new `listen` socket
  // cannot be bound.
  ReloadPlan reload(Config new_config, bool dry_run);
  // Re-reads config().file; on any error keeps everything and counts a failure.
  ReloadResult reload_file(bool dry_run);
  // A reload that failed validation: counted, nothing changed.
  void reload_failed();
  std::uint64_t reloads_succeeded() const { return reloads_ok_; }
  std::uint64_t reloads_failed() const { return reloads_failed_; }
  bool last_reload_ok() const { return last_reload_ok_; }
  // Runs after every applied reload (the HTTP API re-reads its token).
  void set_reload_listener(std::function<void()> l) { reload_listener_ = std::move(l); }

  // Every instance, in config order.
  std::vector<InstanceSnapshot> snapshots() const;
  // Every [watch.NAME], in config order.
  std::vector<WatchSnapshot> watch_snapshots() const;
  const std::vector<std::unique_ptr<Watch>>& watches() const { return watches_; }
  Watch* find_watch(std::string_view name) const;
  // One periodic /proc read of every instance with a process, at once
  // (start-up; public for tests and benchmarks). The sampling timer reads
  // only the trees that are due (SampleSchedule), in slices.
  void sample();
  // Reads the trees whose figures are stale for `freshness`
  // (SampleSchedule::stale): a scrape of /metrics calls it first with
  // Freshness::interval, so what it shows is never staler than one
  // sample_interval; the API and the status page with Freshness::schedule,
  // which leaves still trees to their periodic reads.
  void sample_stale(Freshness freshness);
  // Before a scrape of /metrics: sample_stale(Freshness::interval), and
  // the scrape is noted in the rhythm the sampling timer reads ahead of
  // (ScrapeRhythm): the next scrape at that rhythm finds its trees read.
  void prepare_scrape();

  // Every process vigil starts is registered here, and every child reaped.
  Reaper& reaper() { return reaper_; }

 private:
  void on_state_change(Instance& instance, State old_state, State new_state);
  std::unique_ptr<Program> make_program(const ProgramConfig& pc, ListenSockets sockets,
                                        std::shared_ptr<StickyProxy> sticky);
  std::map<std::string, ListenSockets> hold_listen_sockets(const Config& config);
  std::map<std::string, std::shared_ptr<StickyProxy>> hold_sticky_proxies(const Config& config);
  void start_or_wait(Program* p);
  void retire(std::unique_ptr<Program> p, std::function<void()> then = {});
  void start_waiting();
  bool dependencies_ready(const Program& p) const;
  void stop_next();
  void stop_program(Program* p);
  void finish_shutdown();
  void after_reap();
  void sample_step();
  void arm_sample_timer(SteadyTime now);
  void sample_soon();
  std::unique_ptr<Watch> make_watch(const WatchConfig& wc);
  void reload_watches(const std::vector<WatchChange>& changes);
  bool started_by_watch(pid_t pid);

  EventLoop& loop_;
  Config config_;
  RuntimeDir runtime_dir_;  // before programs_: outlives their sockets
  // The `listen` sockets a handover passed on, by address, until taken;
  // sticky proxies' listeners as "sticky ADDRESS" (sticky_key()).
  std::map<std::string, UniqueFd> inherited_sockets_;
  Reaper reaper_;           // before programs_: they untrack as they go
  ProgramContext context_;  // before programs_: what they share
  std::vector<std::unique_ptr<Program>> programs_;
  std::vector<std::unique_ptr<Watch>> watches_;  // after reaper_: they untrack as they go
  std::vector<Program*> waiting_;  // autostart programs waiting for `after`
  bool shutting_down_ = false;
  bool finishing_ = false;  // programs are down; strays being killed
  bool finished_ = false;
  int exit_code_ = 0;
  // The shutdown's order: programs naming each one in `after` that have not
  // stopped yet, and programs whose stop is not over.
  std::unordered_map<Program*, std::size_t> dependents_left_;
  std::unordered_map<Program*, std::vector<Program*>> stop_releases_;  // its `after` programs
  std::size_t programs_left_ = 0;
  std::function<void(int)> shutdown_done_;
  std::unique_ptr<Timer> stray_timer_;
  std::vector<pid_t> left_running_;  // started by a watch's on_failure: not killed at shutdown
  std::vector<std::unique_ptr<Program>> retiring_;  // removed or replaced, stopping
  std::uint64_t reloads_ok_ = 0;
  std::uint64_t reloads_failed_ = 0;
  bool last_reload_ok_ = true;
  std::function<void()> reload_listener_;
  ProcSampler sampler_;
  Timer sample_timer_;       // the next pass: when the first tree is due
  Timer sample_step_timer_;  // the next slice of the pass in progress
  std::optional<SteadyTime> sample_timer_at_;  // when sample_timer_ fires
  std::size_t sample_program_ = 0;   // the pass in progress: where it is
  std::size_t sample_instance_ = 0;
  ScrapeRhythm scrapes_;
  Timer read_ahead_timer_;              // a pass ahead of the next expected scrape
  std::optional<SteadyTime> fresh_by_;  // the pass in progress reads ahead of a scrape at
};

}  // namespace vigil
