// `vigil upgrade`: a new vigil binary takes over in the same process, so
// the programs keep their parent and never restart. The running vigil runs
// `NEW version` and `NEW check -c CONFIG` first (never blocking its loop),
// then writes its state into a memory file, keeps the fds that must
// survive open across exec (output and heartbeat pipes, notify sockets,
// held `listen` sockets, the control and HTTP listeners, the lifeline's
// pipe) and execs `NEW run -c CONFIG --handover FD`. If the exec fails, it
// puts everything back and carries on. The new vigil reads the state
// (run_handover_start) and takes every instance over.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "command_runner.h"
#include "event_loop.h"
#include "http_server.h"
#include "snapshot.h"
#include "supervisor.h"

namespace vigil {

// `vigil_upgrades_total` by result, carried across every upgrade.
struct UpgradeCounts {
  std::uint64_t handover = 0;  // a new vigil read the state and took over
  std::uint64_t adopted = 0;   // a new vigil could not read it: took the children from /proc
  std::uint64_t failed = 0;    // refused (a check failed) or the exec failed
};

// What the new vigil found in the handover memory file.
struct HandoverIn {
  // The state, when it could be read (check_handover_format passed);
  // otherwise null and `error` says why.
  std::optional<nlohmann::json> state;
  std::string error;
  UpgradeCounts counts;  // as saved (zero when unreadable)
  std::uint64_t attempt = 0;
  std::string from_version;  // the old vigil's version, when known
};

// The new vigil, once its signal handlers are in place: lets the signals
// blocked across the exec through (those that came meanwhile are handled).
void unblock_handled_signals();

// A listening socket this process inherited across exec (no FD_CLOEXEC)
// bound at `path` / on TCP `port`, taken (FD_CLOEXEC again); empty when
// none. The new vigil finds its listeners so when the state is unreadable.
UniqueFd find_inherited_unix_listener(const std::filesystem::path& path);
UniqueFd find_inherited_tcp_listener(std::uint16_t port);

// Reads and closes the memory file `fd` of a handover; never throws.
HandoverIn read_handover(int fd);

class Upgrader {
 public:
  // `save_app`: the app's part of the state (listeners, lifeline), its fds
  // added to `keep`. `default_binary`: the file this vigil was started from.
  Upgrader(EventLoop& loop, Supervisor& supervisor, std::filesystem::path default_binary,
           std::function<nlohmann::json(std::vector<int>& keep)> save_app);
  ~Upgrader();
  Upgrader(const Upgrader&) = delete;
  Upgrader& operator=(const Upgrader&) = delete;

  // Starts an upgrade to `binary` (empty: default_binary); the checks run
  // on the loop, the exec follows them. Returns why it is refused at once
  // (one under way, the binary is not executable, the config file changed
  // since it was read, ...); empty when started.
  std::string begin(std::filesystem::path binary, const std::string& who);
  // GET/POST /api/v1/upgrade.
  HttpResponse handle(const HttpRequest& r);

  UpgradeCounts& counts() { return counts_; }
  // The serial of the last attempt (carried across exec) and its outcome.
  void set_last(std::uint64_t attempt, std::string result, std::string error);
  std::uint64_t attempt() const { return attempt_; }

 private:
  void checked(const std::vector<CommandOutcome>& outcomes);
  void fail(std::string why);
  void exec_new();
  void exec_with_state();

  EventLoop& loop_;
  Supervisor& supervisor_;
  std::filesystem::path default_binary_;
  std::function<nlohmann::json(std::vector<int>&)> save_app_;
  std::unique_ptr<CommandRunner> runner_;
  std::filesystem::path binary_;  // of the attempt under way
  bool in_progress_ = false;
  UpgradeCounts counts_;
  std::uint64_t attempt_ = 0;
  std::string result_;  // of the last attempt: handover, adopted, failed; empty: none yet
  std::string error_;   // why it failed
  std::uint64_t image_ = 0;  // this image: changes with every exec
};

}  // namespace vigil
