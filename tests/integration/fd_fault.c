/* Out of fds at one exact step, for FdLimitTest (LD_PRELOAD): in a process
 * whose name is "vigil", the Nth call (VIGIL_FD_FAULT=N, counted from 1)
 * among those below that create an fd fails with EMFILE instead, once, and
 * says so on stderr ("fd-fault: call N (pipe2) fails with EMFILE"). Walking N
 * up from 1 makes every fd vigil opens, at start-up, for a spawn, for a
 * connection and at shutdown, in turn the one that fails. Other processes
 * (the programs vigil starts) are left alone, and so are reads of /proc and
 * /sys: how many processes vigil looks at there varies from run to run, and
 * the walk must reach the same calls each time. Plain pipe(2) is left alone
 * too: vigil and libevent use pipe2, and the sanitizer runtime probes memory
 * through pipe(), where a failure reads as a false UBSan report. Built
 * without sanitizers: it is preloaded into processes that may have none. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

static long target = -1;
static long calls;

__attribute__((constructor)) static void fd_fault_init(void) {
  const char* n = getenv("VIGIL_FD_FAULT");
  if (n && strcmp(program_invocation_short_name, "vigil") == 0) target = atol(n);
}

/* Whether this call is the one to fail (errno set to EMFILE then). */
static int fail(const char* what) {
  if (target < 0 || ++calls != target) return 0;
  char line[96];
  const int len = snprintf(line, sizeof line, "fd-fault: call %ld (%s) fails with EMFILE\n", calls, what);
  if (len > 0 && write(2, line, (size_t)len) < 0) {
    /* nothing to do: the marker is for the test */
  }
  errno = EMFILE;
  return 1;
}

#define REAL(name) ((__typeof__(name)*)dlsym(RTLD_NEXT, #name))

int pipe2(int fds[2], int flags) { return fail("pipe2") ? -1 : REAL(pipe2)(fds, flags); }
int socket(int domain, int type, int protocol) {
  return fail("socket") ? -1 : REAL(socket)(domain, type, protocol);
}
int socketpair(int domain, int type, int protocol, int fds[2]) {
  return fail("socketpair") ? -1 : REAL(socketpair)(domain, type, protocol, fds);
}
int accept(int fd, struct sockaddr* addr, socklen_t* len) {
  return fail("accept") ? -1 : REAL(accept)(fd, addr, len);
}
int accept4(int fd, struct sockaddr* addr, socklen_t* len, int flags) {
  return fail("accept4") ? -1 : REAL(accept4)(fd, addr, len, flags);
}
int epoll_create1(int flags) { return fail("epoll_create1") ? -1 : REAL(epoll_create1)(flags); }
int timerfd_create(int clock, int flags) {
  return fail("timerfd_create") ? -1 : REAL(timerfd_create)(clock, flags);
}
int eventfd(unsigned int value, int flags) {
  return fail("eventfd") ? -1 : REAL(eventfd)(value, flags);
}

/* The mode argument is there only with O_CREAT or O_TMPFILE. */
static int counted(const char* path) {
  return strncmp(path, "/proc/", 6) != 0 && strncmp(path, "/sys/", 5) != 0;
}

#define MODE(flags, mode)                                   \
  do {                                                      \
    if ((flags) & (O_CREAT | __O_TMPFILE)) {                \
      va_list ap;                                           \
      va_start(ap, flags);                                  \
      mode = (mode_t)va_arg(ap, int);                       \
      va_end(ap);                                           \
    }                                                       \
  } while (0)

int open(const char* path, int flags, ...) {
  mode_t mode = 0;
  MODE(flags, mode);
  return counted(path) && fail("open") ? -1 : REAL(open)(path, flags, mode);
}
int open64(const char* path, int flags, ...) {
  mode_t mode = 0;
  MODE(flags, mode);
  return counted(path) && fail("open64") ? -1 : REAL(open64)(path, flags, mode);
}
int openat(int dir, const char* path, int flags, ...) {
  mode_t mode = 0;
  MODE(flags, mode);
  return counted(path) && fail("openat") ? -1 : REAL(openat)(dir, path, flags, mode);
}
int openat64(int dir, const char* path, int flags, ...) {
  mode_t mode = 0;
  MODE(flags, mode);
  return counted(path) && fail("openat64") ? -1 : REAL(openat64)(dir, path, flags, mode);
}
