// A configured program: its settings and its instances 0..N-1. Knows how
// its children are started (argv, env, user) and where its logs go.
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "event_loop.h"
#include "instance.h"
#include "output_pipe.h"

namespace vigil {

class Supervisor;

class Program {
 public:
  Program(EventLoop& loop, Supervisor& supervisor, ProgramConfig config);
  ~Program();

  const std::string& name() const { return config_.name; }
  const ProgramConfig& config() const { return config_; }
  Supervisor& supervisor() const { return supervisor_; }
  const std::vector<std::unique_ptr<Instance>>& instances() const { return instances_; }

  void start(bool manual);
  // Stops every instance in parallel; `done` runs when all are stopped.
  void stop(std::function<void()> done = {});
  void restart_manual();
  void kill_now();
  void reopen_logs();

  // Reload: new settings applied in place (same command, cwd, env, user);
  // instances beyond the new count are stopped and destroyed, new ones
  // created (and started when `start_new`). `on_new` runs for each new one.
  void update_config(ProgramConfig config, bool start_new,
                     const std::function<void(Instance&)>& on_new);

  bool all_ready() const;
  bool all_down() const;  // no live process in any instance

  // The environment of instance `index`: vigil's own (minus what belongs to
  // vigil's supervisor), then the config's env, then VIGIL_*.
  std::vector<std::string> environment(int index) const;
  // Log file of instance `index` for `stream`; in "combined" mode both
  // streams map to the same file. Empty path when log = "off".
  std::filesystem::path log_path(int index, Stream stream) const;

 private:
  void build_environment();

  EventLoop& loop_;
  Supervisor& supervisor_;
  ProgramConfig config_;
  std::vector<std::string> base_env_;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::vector<std::unique_ptr<Instance>> retiring_;  // stopping after a shrink
};

}  // namespace vigil
