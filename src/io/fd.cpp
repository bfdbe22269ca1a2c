// RAII for fds and the pipe/flag helpers around them.
#include "fd.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace vigil {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) {
    // close() is never retried on EINTR on Linux: the fd is gone either way.
    ::close(fd_);
  }
  fd_ = fd;
}

Pipe make_pipe(int extra_flags) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | extra_flags) != 0)
    throw std::system_error(errno, std::generic_category(), "pipe2");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void set_nonblocking(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) throw std::system_error(errno, std::generic_category(), "fcntl(F_GETFL)");
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (::fcntl(fd, F_SETFL, flags) < 0)
    throw std::system_error(errno, std::generic_category(), "fcntl(F_SETFL)");
}

void ensure_std_fds_open() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    // open() returns the lowest free number, which is `fd` here. No CLOEXEC:
    // these are the standard streams children inherit.
    int opened = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (opened >= 0 && opened != fd) ::close(opened);
  }
}

namespace {
rlim_t g_original_soft = RLIM_INFINITY;
}

void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  if (g_original_soft == RLIM_INFINITY) g_original_soft = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
}

unsigned long original_fd_soft_limit() { return g_original_soft; }

std::vector<int> inherited_fds() {
  std::vector<int> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    const int fd = std::atoi(entry.path().filename().c_str());
    if (fd <= 2) continue;
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC)) out.push_back(fd);
  }
  return out;
}

unsigned long pipe_inode(const std::string& fd_link) {
  char target[64];
  const ssize_t n = ::readlink(fd_link.c_str(), target, sizeof target - 1);
  if (n <= 6) return 0;
  target[n] = '\0';
  if (std::strncmp(target, "pipe:[", 6) != 0) return 0;
  return std::strtoul(target + 6, nullptr, 10);
}

UniqueFd take_inherited_fd(long fd) {
  if (fd < 3 || fd > (1 << 30) || ::fcntl(static_cast<int>(fd), F_GETFD) < 0) return UniqueFd();
  ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return UniqueFd(static_cast<int>(fd));
}

}  // namespace vigil
