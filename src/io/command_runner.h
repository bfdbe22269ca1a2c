// Runs a list of commands one after the other (a watch's on_failure), each
// through spawn() with a timeout: SIGKILL to its process group when it is
// reached, reaped by the Reaper. Output goes to vigil's log line by line,
// bounded. It never blocks the loop and decides nothing about when to run.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "event_loop.h"
#include "fd.h"
#include "reaper.h"
#include "watch_policy.h"

namespace vigil {

// A line of a command's output is cut at this many bytes in the log ...
inline constexpr std::size_t kCommandMaxLineBytes = 4 * 1024;
// ... and at most this many bytes of a command's output are logged; the
// rest is read, counted and dropped.
inline constexpr std::size_t kCommandMaxLoggedBytes = 64 * 1024;

// One command of a run.
struct CommandSpec {
  std::vector<std::string> argv;
  // Set: the command is not run, for this reason (result failed).
  std::string not_run;
};

struct CommandOutcome {
  ActionResult result = ActionResult::failed;
  // "exit status 0", "exit status 7: curl: (7) Failed to connect ...",
  // "no exit within 30s: killed", "cannot execute \"x\": ...", "not run: ...".
  std::string detail;
  Duration took{0};
};

class CommandRunner {
 public:
  using Done = std::function<void(const std::vector<CommandOutcome>&)>;

  // `label` starts every log line ("watch legacy: on_failure"); commands
  // run in `cwd` with `env` ("KEY=VALUE").
  CommandRunner(EventLoop& loop, Reaper& reaper, std::string label, std::filesystem::path cwd,
                std::vector<std::string> env);
  // Kills the command running, as cancel().
  ~CommandRunner();
  CommandRunner(const CommandRunner&) = delete;
  CommandRunner& operator=(const CommandRunner&) = delete;

  // Runs every command in order, each given `timeout`, the next one even
  // when one failed. `done` gets one outcome per command, on the loop,
  // never inside run(); the runner may be destroyed inside it. Ignored
  // while a run is in progress.
  void run(std::vector<CommandSpec> commands, Duration timeout, Done done);
  // Kills the command running (SIGKILL to its process group, reaped as
  // usual); the rest do not run and `done` is not called.
  void cancel();
  bool running() const { return run_ != nullptr; }
  // The pid of the command running now, if any.
  std::optional<pid_t> pid() const;

  void set_label(std::string label) { label_ = std::move(label); }
  // Output bytes read but not logged, over every run.
  std::uint64_t dropped_bytes() const { return dropped_bytes_; }

 private:
  struct Run;
  struct Output;
  void start_next();
  void on_exit(int wait_status);
  void on_timeout();
  void finish_command(CommandOutcome outcome);
  void close_output(Output* out);
  void prune_outputs();
  std::string command_label(std::size_t index) const;

  EventLoop& loop_;
  Reaper& reaper_;
  std::string label_;
  std::filesystem::path cwd_;
  std::vector<std::string> env_;
  std::unique_ptr<Run> run_;
  // Output pipes still read: a command that left a process behind (a
  // daemon it started) may keep its end open after it exited. Bounded.
  std::list<std::unique_ptr<Output>> outputs_;
  Timer timer_;  // the command's timeout; then the wait for its reap
  std::uint64_t dropped_bytes_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace vigil
