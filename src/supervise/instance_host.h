// What an Instance needs from the tree above it, and nothing more: its
// program's settings, environment and log files, the shared services (the
// reaper, the notify sockets' folder, the clock), and someone to tell of
// state changes. Program implements it; an instance never includes the
// program or the supervisor.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "clock.h"
#include "config.h"
#include "listen_socket.h"
#include "output_pipe.h"
#include "reaper.h"
#include "state.h"

namespace vigil {

class Instance;

class InstanceHost {
 public:
  virtual const ProgramConfig& config() const = 0;
  // The environment of instance `index`.
  virtual std::vector<std::string> environment(int index) const = 0;
  // The program's held listening sockets, in `listen` order: fds 3.. of
  // every process it starts.
  virtual const ListenSockets& listen_sockets() const = 0;
  // Its log file for `stream`; empty when log = "off".
  virtual std::filesystem::path log_path(int index, Stream stream) const = 0;
  virtual Reaper& reaper() = 0;
  // The private folder of the instances' notify sockets.
  virtual const std::filesystem::path& runtime_dir() const = 0;
  virtual const Clock& clock() const = 0;
  // Every state change, in order (exited -> backoff comes as two).
  virtual void on_state_change(Instance& instance, State from, State to) = 0;

 protected:
  ~InstanceHost() = default;
};

}  // namespace vigil
