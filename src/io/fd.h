// Owners of file descriptors. Every fd vigil opens is held by a UniqueFd and
// born O_CLOEXEC; nothing else closes fds.
#pragma once
#include <string>
#include <vector>
#include <utility>

namespace vigil {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

// pipe2(O_CLOEXEC | extra_flags); throws std::system_error.
Pipe make_pipe(int extra_flags = 0);
void set_nonblocking(int fd, bool on = true);
// An fd this process inherited across exec (a handover names it by
// number): owned, and FD_CLOEXEC again, when it is open and above 2; empty
// otherwise.
UniqueFd take_inherited_fd(long fd);
// The fds this process inherited across exec and has not taken: open,
// above 2, without FD_CLOEXEC (everything vigil opens itself has it).
std::vector<int> inherited_fds();
// The pipe a /proc/PID/fd/N link names ("pipe:[INODE]"), as its inode; 0
// when it is no pipe (or gone).
unsigned long pipe_inode(const std::string& fd_link);
// Makes sure fds 0, 1 and 2 are open (on /dev/null) so that no file vigil
// opens later lands on them.
void ensure_std_fds_open();
// Raises the soft RLIMIT_NOFILE to the hard limit (each instance holds a few
// fds; a thousand instances need more than the usual 1024). Children get the
// original soft limit back (spawn), as programs using select() expect.
void raise_fd_limit();
// The soft limit before raise_fd_limit (RLIM_INFINITY if never raised).
unsigned long original_fd_soft_limit();

}  // namespace vigil
