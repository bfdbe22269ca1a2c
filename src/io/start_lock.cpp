// flock(LOCK_EX | LOCK_NB) on SOCKET.lock. The file holds the holder's pid,
// for people and for the message of the vigil that loses when /proc/locks
// cannot say.
#include "start_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace vigil {

namespace {

std::optional<pid_t> parse_pid(const std::string& text) {
  std::size_t used = 0;
  try {
    const long pid = std::stol(text, &used);
    if (pid > 0 && used > 0) return static_cast<pid_t>(pid);
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

// The pid /proc/locks gives for the flock on the file behind `fd`
// ("1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF").
std::optional<pid_t> flock_holder(int fd) {
  struct stat st{};
  if (::fstat(fd, &st) != 0) return std::nullopt;
  const std::string inode = ":" + std::to_string(st.st_ino);
  std::ifstream in("/proc/locks");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, kind, mode, access, pid, device;
    if (!(fields >> id >> kind)) continue;
    if (kind == "->") fields >> kind;  // a waiter
    if (kind != "FLOCK" || !(fields >> mode >> access >> pid >> device)) continue;
    if (device.size() > inode.size() && device.compare(device.size() - inode.size(), inode.size(), inode) == 0)
      return parse_pid(pid);
  }
  return std::nullopt;
}

}  // namespace

std::filesystem::path StartLock::path_for(const std::filesystem::path& control_socket) {
  return control_socket.string() + ".lock";
}

std::optional<StartLock> StartLock::acquire(const std::filesystem::path& path,
                                            StartLockFailure* failure) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600));
  if (!fd) {
    failure->why = "cannot open " + path.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  int rc;
  while ((rc = ::flock(fd.get(), LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
  }
  if (rc != 0) {
    if (errno != EWOULDBLOCK) {
      failure->why = "cannot lock " + path.string() + ": " + std::strerror(errno);
      return std::nullopt;
    }
    // /proc/locks first: the file may still hold a dead vigil's pid while
    // the new holder is about to write its own.
    failure->holder = flock_holder(fd.get());
    if (!failure->holder) {
      char buf[32] = {};
      const ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
      if (n > 0) failure->holder = parse_pid(std::string(buf, static_cast<std::size_t>(n)));
    }
    failure->held = true;
    return std::nullopt;
  }
  // Ours now: the pid is for humans and for the next vigil's message.
  const std::string text = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) == 0) {
    [[maybe_unused]] const ssize_t n = ::pwrite(fd.get(), text.data(), text.size(), 0);
  }
  return StartLock(path, std::move(fd));
}

}  // namespace vigil
