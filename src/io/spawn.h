// The only place vigil starts a process. Starts one child with exactly fds 0-2, its held
// listening sockets and its heartbeat pipe, its own session, a parent-death
// signal, a cwd, an environment and a user, and reports exec failures back
// through a CLOEXEC pipe. No logging here.
#pragma once
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vigil {

struct SpawnCredentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH when it has no '/'
  std::vector<std::string> env;   // "KEY=VALUE"
  std::filesystem::path cwd;
  std::optional<SpawnCredentials> credentials;  // switch user when set
  int stdin_fd = -1;      // -1: /dev/null
  int stdout_fd = -1;     // -1: /dev/null
  int stderr_fd = -1;     // -1: /dev/null
  // Become fds 3, 4, ... in this order (socket activation's LISTEN_FDS).
  std::vector<int> listen_fds;
  // Becomes the fd after the listen fds (3 without them) when >= 0:
  // heartbeat_fd_number(spec).
  int heartbeat_fd = -1;
  // Each gets NAME=<the child's own pid> in its environment (as systemd
  // sets WATCHDOG_PID and LISTEN_PID), filled in between the child's start
  // and its exec.
  std::vector<std::string> pid_variables;
};

// The fd number the heartbeat pipe has in the child: 3 + the listen fds.
inline int heartbeat_fd_number(const SpawnSpec& spec) {
  return 3 + static_cast<int>(spec.listen_fds.size());
}

struct SpawnError {
  std::string step;  // "execute", "chdir", "setuid", ...
  int error = 0;     // errno
  std::string message(const SpawnSpec& spec) const;  // `cannot execute "node": No such file or directory`
};

struct SpawnResult {
  pid_t pid = -1;  // set when a child was started, even if its exec then failed
  std::optional<SpawnError> error;
};

// Takes the few fds spawn() keeps for good (/dev/null, and the slots a
// child's fds pass through, with `listen_slots` for listening sockets), at
// the lowest numbers free: call it early, before vigil opens many fds, as a
// child copies vigil's fd table up to the highest of them. spawn() calls it
// on first use, and takes more listen slots when a child needs them.
// Throws std::system_error.
void prepare_spawning(std::size_t listen_slots = 0);

// Starts the child and waits for its exec. On exec failure the child has already exited (status 127)
// and been reaped here, so the caller sees pid == -1 and an error. Never
// throws for a failure of the system (out of fds, fork refused): that is
// an error in the result.
SpawnResult spawn(const SpawnSpec& spec);

// argv[0] as execve will find it: a name with a slash against `cwd`, else
// the first executable regular file on the PATH of `env` ("KEY=VALUE"
// entries), or of vigil's own environment. Unchanged when none is found.
// Done in the parent: no allocation is allowed after fork.
std::string resolve_executable(const std::string& name, const std::vector<std::string>& env,
                               const std::filesystem::path& cwd);

// Resolves a user name to credentials (uid, primary gid, supplementary groups).
std::optional<SpawnCredentials> lookup_user(const std::string& name, std::string* error);

}  // namespace vigil
