// What integration tests share: a private temp dir, polling with deadlines,
// vigil run in-process (parse a config, drive the loop, inspect instances)
// or as the real binary (output captured, signals, exit code), /proc
// queries about processes, and an fd-leak check. Nothing here sleeps to
// synchronise: every wait is a poll of a condition bounded by a deadline.
#pragma once
#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "event_loop.h"
#include "fd.h"
#include "instance.h"
#include "program.h"
#include "supervisor.h"

namespace spdlog {
class logger;
}

namespace vigil::it {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// Deadlines sized for a loaded 2-core machine: "eventually" means this.
inline constexpr Duration kEventually = 20s;

// ---------------------------------------------------------------------------
// Binaries, TOML text

std::string vigil_binary();
std::string helper_binary();
// The source tree (clients/, config/demo/).
fs::path source_dir();
// tests/integration/sd_notify_child (libsystemd's sd_notify); nullopt when
// the build found no libsystemd.
std::optional<std::string> sd_notify_child_binary();

// A TOML basic string: "text" with quotes, backslashes and control
// characters escaped.
std::string toml_string(std::string_view text);
// ["a", "b"]
std::string toml_array(const std::vector<std::string>& items);
// `command = [...]` value running child_helper with `args`.
std::string helper_command(const std::vector<std::string>& args);
// A [programs.NAME] section running child_helper with `args`; `extra` holds
// more `key = value` lines for the section.
std::string helper_program(std::string_view name, const std::vector<std::string>& args,
                           std::string_view extra = "");

// ---------------------------------------------------------------------------
// Files

// A fresh directory /tmp/vigil-it-XXXXXX, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  fs::path operator/(const fs::path& rel) const { return path_ / rel; }
  // Writes `text` to path()/rel (creating folders); returns the full path.
  fs::path write(const fs::path& rel, std::string_view text) const;

 private:
  fs::path path_;
};

// Whole file; empty when it does not exist.
std::string read_file(const fs::path& path);
// Complete lines (a last line without '\n' is left out: it may still grow).
std::vector<std::string> read_lines(const fs::path& path);
// Whether one of `lines` is exactly `want`.
bool has_line(const std::vector<std::string>& lines, std::string_view want);
// The rest of the first line starting with `prefix`, or nullopt.
std::optional<std::string> value_after(const std::vector<std::string>& lines,
                                       std::string_view prefix);
// Pids written one a line (child_helper --pidfile).
std::vector<pid_t> read_pids(const fs::path& path);

// A child log line stamped "YYYY-MM-DDTHH:MM:SS.mmm text": the text, or
// nullopt when the prefix is not there.
std::optional<std::string> strip_timestamp(std::string_view line);

// The line child_helper --flood writes as number `n` (without the '\n').
std::string flood_line(long n);

// Sets an environment variable of the test process (which vigil and its
// children inherit) and restores the old value, or its absence, on scope exit.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// Built with AddressSanitizer (VIGIL_SANITIZE): memory figures include its
// shadow and quarantine.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

// ---------------------------------------------------------------------------
// Waiting

// Checks pred until it is true or `timeout` passed (sleeping `interval`
// between checks, which is polling, not synchronisation). Returns pred().
bool poll_until(const std::function<bool()>& pred, Duration timeout = kEventually,
                Duration interval = 10ms);

// ---------------------------------------------------------------------------
// Processes

// State letter from /proc/PID/stat ('R', 'S', 'Z', ...); 0 when no such pid.
char process_state(pid_t pid);
// kill(pid, 0) says ESRCH: the process is gone and reaped.
bool process_gone(pid_t pid);
// Gone, or a zombie nobody reaped yet: in either case it runs no more.
bool process_dead(pid_t pid);
// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM").
std::optional<std::uint64_t> status_kib(pid_t pid, std::string_view field);
// What the process runs (/proc/PID/exe); empty when it is gone. Between
// fork and exec a child still runs its parent's image, at its parent's RSS.
std::string exe_of(pid_t pid);
// fork + exec of argv[0] (a path) for a test: every signal back to its
// default and unblocked, never outliving the test (PDEATHSIG), stdin on
// /dev/null, stdout and stderr into the fds given, nothing else open, in
// `cwd`. `env` null: this process's environment. Throws when fork fails.
pid_t start_test_process(const std::vector<std::string>& argv, const fs::path& cwd, int out_fd,
                         int err_fd, const std::vector<std::string>* env = nullptr);

// ---------------------------------------------------------------------------
// Sockets

// Sends `message` as one datagram to the AF_UNIX socket at `path` (an
// instance's NOTIFY_SOCKET) from a socket of the test's own; returns
// whether it was sent.
bool send_datagram(const fs::path& path, std::string_view message);
// A TCP connection to 127.0.0.1:port, connected (the handshake completes in
// the kernel's backlog whether or not the server accepted yet); an empty
// UniqueFd when socket() or connect() failed, errno saying why.
UniqueFd connect_loopback(std::uint16_t port);
// A TCP port on 127.0.0.1 that nothing is bound to now, below the kernel's
// ephemeral range: a server restarted on it cannot find it taken as the
// source port of some outgoing connection.
std::uint16_t free_port();
// Two different free ports.
std::pair<std::uint16_t, std::uint16_t> free_ports();
// The first of `n` consecutive ports on 127.0.0.1 that nothing listens on
// now (for a port_base and its instances).
std::uint16_t free_port_run(int n);

// ---------------------------------------------------------------------------
// File descriptors

// fd number -> what it points at, for this process.
std::map<int, std::string> open_fds();

// Records the open fds at construction; leaks() lists the ones opened since
// and still open ("fd 7 -> pipe:[123]"), empty when nothing leaked.
class FdLeakCheck {
 public:
  FdLeakCheck();
  std::string leaks() const;

 private:
  std::map<int, std::string> before_;
};

// ---------------------------------------------------------------------------
// vigil in-process: the real Supervisor on a real loop, in the test.

class InProcessVigil {
 public:
  // Parses `toml` as if read from dir/file_name (the file is written too,
  // so relative paths resolve against dir) and builds the supervisor.
  // Check ok() before use: config errors, or what stopped the supervisor
  // from being built, are in errors().
  InProcessVigil(const TempDir& dir, std::string_view toml,
                 std::string_view file_name = "vigil.toml");
  // Shuts down what is still running (bounded), then restores the process
  // state it changed (subreaper flag, default logger).
  ~InProcessVigil();
  InProcessVigil(const InProcessVigil&) = delete;
  InProcessVigil& operator=(const InProcessVigil&) = delete;

  bool ok() const { return supervisor_ != nullptr; }
  // Config errors, one a line ("FILE:LINE:COL: message"), or the reason the
  // supervisor could not be built ("program web: cannot listen on ...").
  const std::string& errors() const { return errors_; }

  EventLoop& loop() { return *loop_; }
  Supervisor& supervisor() { return *supervisor_; }
  // Throws std::out_of_range for an unknown name or index.
  Program& program(std::string_view name);
  Instance& instance(std::string_view name, int index = 0);
  fs::path log_path(std::string_view name, int index = 0, Stream stream = Stream::out);

  void start() { supervisor_->start(); }
  // Runs the loop until pred() or the timeout; returns pred().
  bool run_until(const std::function<bool()>& pred, Duration timeout = kEventually);
  // Runs the loop until instance(name, index) is in `state`.
  bool wait_state(std::string_view name, State state, int index = 0,
                  Duration timeout = kEventually);
  // Supervisor::shutdown, then runs the loop until it reports done: its
  // exit code, or nullopt when it did not finish in time.
  std::optional<int> shutdown(Duration timeout = kEventually);

  // vigil's own log (spdlog), captured since construction.
  std::string log_text() const;
  // Runs the loop until vigil's log holds `needle`.
  bool wait_for_log(std::string_view needle, Duration timeout = kEventually);

 private:
  std::string errors_;
  std::shared_ptr<std::string> log_text_;  // shared with the capturing sink
  std::shared_ptr<spdlog::logger> previous_logger_;
  int previous_subreaper_ = 0;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<Supervisor> supervisor_;
  bool shut_down_ = false;
};

// Runs vigil's loop until `path` holds the line `marker` (bounded); returns
// the lines.
std::vector<std::string> wait_for_line(InProcessVigil& vigil, const fs::path& path,
                                       std::string_view marker);

// ---------------------------------------------------------------------------
// vigil as the real binary

struct CommandResult {
  int exit_code = -1;  // 128+signal when killed; -1 when it did not end in time
  std::string output;  // stdout and stderr together
};

// Runs `vigil ARGS...` to its end (killed after `timeout`), in `dir`.
CommandResult run_vigil(const TempDir& dir, const std::vector<std::string>& args,
                        Duration timeout = kEventually);

// A running `vigil ...` whose stdout and stderr go to a file in the temp dir.
// It gets PR_SET_PDEATHSIG, so it never outlives the test; the destructor
// SIGKILLs and reaps it if it still runs.
class VigilProcess {
 public:
  // `wrapper`, when given, is a command that execs the rest (vigil and args).
  VigilProcess(const TempDir& dir, const std::vector<std::string>& args,
               std::string_view output_name = "vigil.output",
               const std::vector<std::string>& wrapper = {});
  // `vigil run -c CONFIG`
  static std::unique_ptr<VigilProcess> run(const TempDir& dir, const fs::path& config);
  ~VigilProcess();
  VigilProcess(const VigilProcess&) = delete;
  VigilProcess& operator=(const VigilProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  std::string output() const { return read_file(output_path_); }
  const fs::path& output_path() const { return output_path_; }

  bool wait_for_output(std::string_view needle, Duration timeout = kEventually);
  // Until `needle` occurs at least `count` times.
  bool wait_for_output_count(std::string_view needle, int count, Duration timeout = kEventually);
  bool wait_for_output(const std::regex& re, Duration timeout = kEventually);

  void signal(int sig);
  // Exit code (128+signal when killed), or nullopt when it still runs at
  // the deadline.
  std::optional<int> wait_exit(Duration timeout = kEventually);

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  fs::path output_path_;
};

// ---------------------------------------------------------------------------
// Fixtures

// A test driving vigil in-process: its own temp dir, and a check that every
// fd the test opened is closed again once vigil is gone.
class InProcessTest : public ::testing::Test {
 protected:
  void TearDown() override;
  // Parses `toml` (as dir_/vigil.toml) and starts the supervisor. Fails
  // fatally on config errors: call it inside ASSERT_NO_FATAL_FAILURE.
  void start_vigil(std::string_view toml);
  InProcessVigil& vigil() { return *vigil_; }

  TempDir dir_;
  FdLeakCheck fds_;
  std::unique_ptr<InProcessVigil> vigil_;
};

// A test running the real vigil binary in its own temp dir.
class BinaryTest : public ::testing::Test {
 protected:
  void TearDown() override;
  fs::path write_config(std::string_view toml) { return dir_.write("vigil.toml", toml); }
  // `vigil run -c dir_/vigil.toml` with `toml` as the config.
  VigilProcess& run_vigil_with(std::string_view toml);

  TempDir dir_;
  FdLeakCheck fds_;
  std::unique_ptr<VigilProcess> vigil_;
};

}  // namespace vigil::it
