// A configured program: its settings and its instances 0..N-1. It is their
// InstanceHost: it knows how its children are started (argv, env, user),
// where their logs go, and the one rule that spans instances (one memory
// restart at a time). What it shares with other programs comes in a
// ProgramContext from the supervisor; it never reaches up further.
#pragma once
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clock.h"
#include "config.h"
#include "event_loop.h"
#include "instance.h"
#include "instance_host.h"
#include "output_pipe.h"
#include "proc_sampler.h"
#include "reaper.h"
#include "rollout.h"
#include "sticky_proxy.h"

namespace vigil {

// What every program shares; owned by the supervisor, outlives the programs.
struct ProgramContext {
  EventLoop& loop;
  Reaper& reaper;
  const Clock& clock;
  const std::filesystem::path& runtime_dir;
  const std::filesystem::path& log_dir;  // the supervisor's current one (a reload may change it)
  std::function<void(Instance&, State, State)> on_state_change;
};

class Program final : public InstanceHost {
 public:
  // `listen_sockets`: bound for config.listen, in its order; `sticky`: the
  // proxy listening on config.sticky->listen (none without sticky).
  Program(ProgramContext& context, ProgramConfig config, ListenSockets listen_sockets = {},
          std::shared_ptr<StickyProxy> sticky = {});
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  const std::string& name() const { return config_.name; }
  const std::vector<std::unique_ptr<Instance>>& instances() const { return instances_; }

  // Starts every instance, a slice per loop turn (a spawn costs
  // milliseconds, and a program of thousands would hold the loop for
  // seconds). A stop or restart asked for before every slice went cancels
  // the rest.
  void start(bool manual);
  // Stops every instance in parallel (a slice per loop turn); `done` runs
  // when all are stopped. Cancels a rolling restart under way; a start or
  // restart asked for before every slice went cancels the rest (and `done`
  // does not run).
  // `last`: vigil is shutting down (see Instance::stop).
  void stop(std::function<void()> done = {}, bool last = false);
  // Restarts every instance: with several, one at a time, each once the one
  // before is ready again (a rolling restart); or all at once, in slices
  // as a start goes (a stop or start asked for meanwhile cancels the rest).
  void restart(bool all_at_once);
  void restart_manual();  // all at once
  // Reload changed how it runs (command, cwd, env, user, port_base, listen):
  // the new settings and sockets, then the running instances replaced one
  // at a time.
  void replace_processes(ProgramConfig config, ListenSockets listen_sockets);
  // The rolling restart under way, or the last one.
  std::optional<RolloutSnapshot> rollout() const;
  std::uint64_t rollouts_completed() const { return rollouts_completed_; }
  std::uint64_t rollouts_failed() const { return rollouts_failed_; }
  // The rolling restarts' ids and counts, carried across exec (`vigil upgrade`).
  template <class Archive>
  void persist_rollouts(Archive& a) {
    a("ids", rollouts_);
    a("completed", rollouts_completed_);
    a("failed", rollouts_failed_);
  }
  void kill_now();
  void reopen_logs();
  // The periodic /proc reads of the instances from index `next` on whose
  // read is due (every one with a process when `all`; with `fresh_by`,
  // also every one whose figures would be stale then), until `budget`
  // reads are spent; `next` ends past the last instance looked at.
  void sample(ProcSampler& sampler, SteadyTime now, Duration interval, std::size_t& next,
              std::size_t& budget, bool all = false, std::optional<SteadyTime> fresh_by = std::nullopt);
  // Reads the trees whose figures are stale for `freshness` (a scrape, the
  // API).
  void refresh_samples(ProcSampler& sampler, SteadyTime now, Duration interval, Freshness freshness);
  // The earliest periodic read due among the instances.
  std::optional<SteadyTime> next_sample_at() const;

  // Reload: new settings applied in place (same command, cwd, env, user);
  // instances beyond the new count are stopped and destroyed, new ones
  // created (and started when `start_new`).
  void update_config(ProgramConfig config, bool start_new);

  // After a reload's update_config or replace_processes: the proxy for the
  // new config.sticky (the same one when its listen address stayed; none
  // without sticky). Instances that are running and ready are routable.
  void set_sticky(std::shared_ptr<StickyProxy> sticky);
  const std::shared_ptr<StickyProxy>& sticky() const { return sticky_; }
  std::optional<StickySnapshot> sticky_snapshot(int index) const;

  bool all_ready() const;
  // Something under way that a handover across exec does not carry: a
  // rolling restart, instances of a shrink stopping, a stop in slices.
  std::string busy() const;
  bool all_down() const;  // no live process in any instance

  // InstanceHost
  const ProgramConfig& config() const override { return config_; }
  // vigil's own environment (minus what belongs to vigil's supervisor), then
  // the config's env, then VIGIL_*, NODE_APP_INSTANCE and PORT.
  std::vector<std::string> environment(int index) const override;
  const ListenSockets& listen_sockets() const override { return listen_sockets_; }
  // In "combined" mode both streams map to the same file.
  std::filesystem::path log_path(int index, Stream stream) const override;
  Reaper& reaper() override { return context_.reaper; }
  const std::filesystem::path& runtime_dir() const override { return context_.runtime_dir; }
  const Clock& clock() const override { return context_.clock; }
  void on_state_change(Instance& instance, State from, State to) override;

 private:
  void start_some();
  void stop_some();
  void roll(std::vector<int> order, const std::string& why);
  void act_on(Rollout::Verdict verdict);
  void cancel_rollout(const std::string& why);

  ProgramContext& context_;
  ProgramConfig config_;
  ListenSockets listen_sockets_;  // kept across restarts of the instances
  std::vector<std::unique_ptr<Instance>> instances_;
  std::vector<std::unique_ptr<Instance>> retiring_;  // stopping after a shrink
  // New connections go to instances that are running (ready); one being
  // stopped or replaced gets none, and its open ones finish as they will.
  std::shared_ptr<StickyProxy> sticky_;
  // Instances whose stop is still to be asked for, by index, with the
  // count and the `done` of the stop they belong to.
  struct PendingStop {
    int index;
    std::shared_ptr<std::size_t> remaining;
    std::shared_ptr<std::function<void()>> done;
    bool last;
  };
  std::deque<PendingStop> stop_queue_;
  Timer stop_slice_timer_;
  // Instances whose start, or restart all at once, is still to be asked
  // for (one queue: the last of start and restart asked for wins).
  struct PendingStart {
    int index;
    bool manual;
    bool restart = false;
  };
  std::deque<PendingStart> start_queue_;
  Timer start_slice_timer_;
  std::optional<Rollout> rollout_;
  SteadyTime rollout_started_{};
  std::uint64_t rollouts_ = 0;  // ids
  std::uint64_t rollouts_completed_ = 0;
  std::uint64_t rollouts_failed_ = 0;  // stopped early or cancelled
};

}  // namespace vigil
