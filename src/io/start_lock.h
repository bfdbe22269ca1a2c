// The one-vigil-per-control-socket lock: an flock on SOCKET.lock, taken at
// start-up before the control socket (or anything else shared) is touched,
// held for vigil's life. The kernel drops it when vigil dies, however it
// dies, so a lock file left behind never blocks the next vigil.
#pragma once
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "fd.h"

namespace vigil {

// Why the lock was not taken.
struct StartLockFailure {
  bool held = false;            // another process holds it
  std::optional<pid_t> holder;  // ... this one, when known
  std::string why;              // otherwise: what failed (open, flock), with strerror
};

class StartLock {
 public:
  // SOCKET.lock beside the control socket.
  static std::filesystem::path path_for(const std::filesystem::path& control_socket);

  // Takes the lock without waiting; nullopt with `failure` filled in when
  // another process holds it or the file cannot be opened or locked.
  static std::optional<StartLock> acquire(const std::filesystem::path& path,
                                          StartLockFailure* failure);

  const std::filesystem::path& path() const { return path_; }
  // The locked fd (O_CLOEXEC). An in-place re-exec keeps the lock by
  // clearing FD_CLOEXEC on it: an flock belongs to the open file, which
  // exec does not close.
  int fd() const { return fd_.get(); }

 private:
  StartLock(std::filesystem::path path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  std::filesystem::path path_;
  UniqueFd fd_;
};

}  // namespace vigil
