/* vigil_heartbeat.h — header-only heartbeat client for programs run by vigil.
 * Sends READY / WATCHDOG / STATUS / MEMORY / STOPPING on the heartbeat fd
 * (VIGIL_HEARTBEAT_FD) or NOTIFY_SOCKET, and exits the process when vigil is
 * gone. A silent no-op when neither is set. It must never block the caller:
 * a message that cannot be written at once is dropped.
 *
 * C99 or later, or C++; Linux. Include it before any system header, or
 * compile with -D_POSIX_C_SOURCE=200809L (gcc/clang's default gnu modes and
 * C++ already provide what it needs: sigtimedwait, poll, MSG_NOSIGNAL).
 *
 *   #include "vigil_heartbeat.h"
 *   vigil_hb_init();                        // once, early, before threads
 *   vigil_hb_ready();                       // READY=1
 *   for (;;) { work(); vigil_hb_beat(); }   // WATCHDOG=1, every interval_usec()
 *
 * Every sending function returns 1 when the message was sent, 0 when there is
 * nothing to send to (not under vigil), -1 with errno set on failure
 * (EAGAIN: the monitor is not reading and the message was dropped).
 *
 * When vigil is gone — EPIPE on the heartbeat pipe, or ECONNREFUSED/ENOENT on
 * NOTIFY_SOCKET after an earlier send had succeeded — the call writes
 *   vigil is gone (EPIPE on heartbeat fd); exiting
 * to stderr and calls _exit(0): the child never outlives its monitor. Exit
 * status 0 because this is an orderly stop caused by the environment, not a
 * failure of the program. _exit, not exit: the call may come from any thread
 * and atexit handlers or destructors could block or beat again. Define
 * VIGIL_HB_NO_EXIT before including to get -1 with errno EPIPE/ECONNREFUSED
 * instead (the transport is then closed and later calls return 0).
 *
 * SIGPIPE: the host's disposition is left alone. The pipe write runs with
 * SIGPIPE blocked in the calling thread; on EPIPE the process exits while it
 * is still blocked, or (VIGIL_HB_NO_EXIT) the pending SIGPIPE raised by our
 * write is consumed with sigtimedwait before the mask is restored. The socket
 * uses send(MSG_NOSIGNAL).
 *
 * State is static, so each translation unit that includes this header has
 * its own copy; every function initialises lazily, so calling the functions
 * from several files works (each file opens its own NOTIFY_SOCKET socket).
 * Sending is thread-safe (one write/sendto per message); the lazy
 * initialisation is not: call vigil_hb_init() before starting threads.
 */
#ifndef VIGIL_HEARTBEAT_H
#define VIGIL_HEARTBEAT_H

#if !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE) && \
    !defined(_DEFAULT_SOURCE)
#if defined(_FEATURES_H)
/* Strict -std=c99/c11 and a system header already included: too late to
 * ask for POSIX, and the failure below would be a wall of "implicit
 * declaration" errors. Say what to do instead. */
#error "vigil_heartbeat.h: include it before any system header, or compile with -D_POSIX_C_SOURCE=200809L (strict -std=c99/c11 hides POSIX)"
#endif
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/* Casts and null pointers spelled so that C++ code built with
 * -Wold-style-cast -Wzero-as-null-pointer-constant stays quiet. */
#ifdef __cplusplus
#define VIGIL_HB_CAST(type, value) (static_cast<type>(value))
#define VIGIL_HB_PTR_CAST(type, value) (reinterpret_cast<type>(value))
#if __cplusplus >= 201103L
#define VIGIL_HB_NULL nullptr
#else
#define VIGIL_HB_NULL NULL
#endif
extern "C" {
#else
#define VIGIL_HB_CAST(type, value) ((type)(value))
#define VIGIL_HB_PTR_CAST(type, value) ((type)(value))
#define VIGIL_HB_NULL NULL
#endif

enum {
  VIGIL_HB_NONE = 0,   /* not under vigil (or systemd): every call is a no-op */
  VIGIL_HB_FD = 1,     /* the heartbeat pipe named by VIGIL_HEARTBEAT_FD */
  VIGIL_HB_SOCKET = 2  /* the NOTIFY_SOCKET datagram socket */
};

/* vigil parses lines of at most 4096 bytes and cuts STATUS text at 1024. */
#define VIGIL_HB_MAX_STATUS_BYTES 1024
#define VIGIL_HB_MAX_LINE_BYTES 4096

struct vigil_hb_priv_state {
  int initialized;
  int transport;
  int fd;               /* VIGIL_HB_FD: the pipe; VIGIL_HB_SOCKET: our socket */
  int sent_ok;          /* a datagram was delivered once: refusal later means "gone" */
  struct sockaddr_un addr;
  socklen_t addr_len;
};

static inline struct vigil_hb_priv_state *vigil_hb_priv_get(void) {
  static struct vigil_hb_priv_state state;
  return &state;
}

/* Only a pipe or a socket is taken as the heartbeat fd: an inherited
 * VIGIL_HEARTBEAT_FD whose fd 3 is some unrelated file (a grandchild of a
 * shell that reused fd 3) must not receive heartbeats. */
static inline int vigil_hb_priv_fd_from_env(void) {
  const char *value = getenv("VIGIL_HEARTBEAT_FD");
  char *end = VIGIL_HB_NULL;
  long fd;
  struct stat st;
  if (value == VIGIL_HB_NULL || *value == '\0') return -1;
  errno = 0;
  fd = strtol(value, &end, 10);
  if (errno != 0 || *end != '\0' || fd < 0 || fd > 65535) return -1;
  if (fstat(VIGIL_HB_CAST(int, fd), &st) != 0) return -1;
  if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode)) return -1;
  return VIGIL_HB_CAST(int, fd);
}

static inline int vigil_hb_priv_socket_from_env(struct vigil_hb_priv_state *s) {
  const char *path = getenv("NOTIFY_SOCKET");
  size_t len;
  int fd;
  if (path == VIGIL_HB_NULL || (path[0] != '/' && path[0] != '@')) return -1;
  len = strlen(path);
  if (len < 2 || len > sizeof(s->addr.sun_path)) return -1;
  memset(&s->addr, 0, sizeof(s->addr));
  s->addr.sun_family = AF_UNIX;
  memcpy(s->addr.sun_path, path, len);
  /* "@name" is an abstract socket: a leading NUL, and no trailing one
   * counted in the address length (as systemd's sd_notify does). */
  if (path[0] == '@') s->addr.sun_path[0] = '\0';
  s->addr_len = VIGIL_HB_CAST(socklen_t, (offsetof(struct sockaddr_un, sun_path) + len));
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  return fd;
}

/* Which transport is in use: VIGIL_HB_FD, VIGIL_HB_SOCKET or VIGIL_HB_NONE.
 * Idempotent; the other functions call it on first use. */
static inline int vigil_hb_init(void) {
  struct vigil_hb_priv_state *s = vigil_hb_priv_get();
  int saved_errno = errno;
  if (s->initialized) return s->transport;
  s->initialized = 1;
  s->transport = VIGIL_HB_NONE;
  s->fd = vigil_hb_priv_fd_from_env();
  if (s->fd >= 0) {
    s->transport = VIGIL_HB_FD;
  } else {
    s->fd = vigil_hb_priv_socket_from_env(s);
    if (s->fd >= 0) s->transport = VIGIL_HB_SOCKET;
  }
  errno = saved_errno;
  return s->transport;
}

/* Recommended beat interval in microseconds: WATCHDOG_USEC / 2, as with
 * systemd's sd_watchdog_enabled; 0 when no heartbeat is configured.
 * WATCHDOG_PID is deliberately not compared with getpid(): under vigil any
 * process of the child's tree may beat (e.g. `npm start` -> node). */
static inline unsigned long long vigil_hb_interval_usec(void) {
  const char *value = getenv("WATCHDOG_USEC");
  char *end = VIGIL_HB_NULL;
  unsigned long long usec;
  int saved_errno = errno;
  if (value == VIGIL_HB_NULL || *value < '0' || *value > '9') return 0;
  errno = 0;
  usec = strtoull(value, &end, 10);
  if (errno != 0 || *end != '\0') usec = 0;
  errno = saved_errno;
  return usec / 2;
}

static inline void vigil_hb_priv_close(struct vigil_hb_priv_state *s) {
  if (s->transport == VIGIL_HB_SOCKET) close(s->fd);
  /* The heartbeat fd is not ours to close: other code may share it. */
  s->transport = VIGIL_HB_NONE;
  s->fd = -1;
}

/* vigil is gone: say so and exit (or, with VIGIL_HB_NO_EXIT, give up the
 * transport and let the caller decide). */
static inline void vigil_hb_priv_gone(struct vigil_hb_priv_state *s, const char *why) {
#ifndef VIGIL_HB_NO_EXIT
  static const char head[] = "vigil is gone (";
  static const char tail[] = "); exiting\n";
  char line[128];
  size_t n = 0, w = strlen(why);
  if (w > sizeof(line) - sizeof(head) - sizeof(tail)) w = sizeof(line) - sizeof(head) - sizeof(tail);
  memcpy(line, head, sizeof(head) - 1);
  n += sizeof(head) - 1;
  memcpy(line + n, why, w);
  n += w;
  memcpy(line + n, tail, sizeof(tail) - 1);
  n += sizeof(tail) - 1;
  /* One write(2), not stdio: we may be in any thread, stdio may be locked. */
  if (write(STDERR_FILENO, line, n) < 0) { /* nothing left to tell */ }
  (void)s;
  _exit(0);
#else
  (void)why;
  vigil_hb_priv_close(s);
#endif
}

static inline int vigil_hb_priv_write_pipe(struct vigil_hb_priv_state *s, const char *buf,
                                           size_t len) {
  sigset_t pipe_set, old_set, pending;
  struct pollfd pfd;
  ssize_t n;
  int err, was_pending;

  /* Never block the caller: a full pipe means the monitor is not reading
   * (stopped or stuck); the message is dropped, the next beat will tell. */
  pfd.fd = s->fd;
  pfd.events = POLLOUT;
  pfd.revents = 0;
  while ((n = poll(&pfd, 1, 0)) < 0 && errno == EINTR) {
  }
  if (n == 0) {
    errno = EAGAIN;
    return -1;
  }

  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigprocmask(SIG_BLOCK, &pipe_set, &old_set);
  sigpending(&pending);
  was_pending = sigismember(&pending, SIGPIPE);
  while ((n = write(s->fd, buf, len)) < 0 && errno == EINTR) {
  }
  err = errno;
  if (n < 0 && err == EPIPE) {
    vigil_hb_priv_gone(s, "EPIPE on heartbeat fd"); /* exits unless VIGIL_HB_NO_EXIT */
    if (!was_pending) {
      /* Consume the SIGPIPE our write raised before unblocking it. */
      struct timespec zero;
      zero.tv_sec = 0;
      zero.tv_nsec = 0;
      while (sigtimedwait(&pipe_set, VIGIL_HB_NULL, &zero) < 0 && errno == EINTR) {
      }
    }
  }
  sigprocmask(SIG_SETMASK, &old_set, VIGIL_HB_NULL);
  if (n < 0) {
    errno = err;
    return -1;
  }
  /* Messages are < PIPE_BUF bytes, so the write is atomic: all or nothing. */
  return 1;
}

static inline int vigil_hb_priv_send_socket(struct vigil_hb_priv_state *s, const char *buf,
                                            size_t len) {
  ssize_t n;
  int err;
  while ((n = sendto(s->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT,
                     VIGIL_HB_PTR_CAST(const struct sockaddr *, &s->addr), s->addr_len)) < 0 &&
         errno == EINTR) {
  }
  if (n >= 0) {
    s->sent_ok = 1;
    return 1;
  }
  err = errno;
  /* Nobody bound to the address any more. Before a first success it is a
   * wrong NOTIFY_SOCKET, not a monitor that died: just report the error. */
  if (s->sent_ok && (err == ECONNREFUSED || err == ENOENT)) {
    vigil_hb_priv_gone(s, err == ECONNREFUSED ? "ECONNREFUSED on NOTIFY_SOCKET"
                                              : "ENOENT on NOTIFY_SOCKET");
  }
  errno = err;
  return -1;
}

/* Send raw protocol text: one or more "KEY=VALUE" lines, '\n'-separated
 * (a trailing '\n' is optional). At most VIGIL_HB_MAX_LINE_BYTES bytes. */
static inline int vigil_hb_send(const char *message) {
  struct vigil_hb_priv_state *s = vigil_hb_priv_get();
  char buf[VIGIL_HB_MAX_LINE_BYTES];
  size_t len;
  if (vigil_hb_init() == VIGIL_HB_NONE) return 0;
  len = strlen(message);
  if (len > 0 && message[len - 1] == '\n') --len;
  if (len == 0) return 0;
  if (len + 1 > sizeof(buf)) {
    errno = EMSGSIZE;
    return -1;
  }
  memcpy(buf, message, len);
  if (s->transport == VIGIL_HB_FD) {
    buf[len++] = '\n'; /* the pipe is a byte stream: every line ends */
    return vigil_hb_priv_write_pipe(s, buf, len);
  }
  return vigil_hb_priv_send_socket(s, buf, len); /* like sd_notify: no '\n' */
}

/* READY=1: the program is ready (state running with ready = "notify"). */
static inline int vigil_hb_ready(void) { return vigil_hb_send("READY=1"); }

/* WATCHDOG=1: a heartbeat. Call it from the loop that does the work, at
 * least every vigil_hb_interval_usec() microseconds. */
static inline int vigil_hb_beat(void) { return vigil_hb_send("WATCHDOG=1"); }

/* WATCHDOG=trigger: the program knows it is hung; vigil restarts it now. */
static inline int vigil_hb_trigger(void) { return vigil_hb_send("WATCHDOG=trigger"); }

/* STOPPING=1: a clean shutdown has begun; no hang detection from here. */
static inline int vigil_hb_stopping(void) { return vigil_hb_send("STOPPING=1"); }

/* STATUS=text, shown by `vigil status`. Newlines and other control
 * characters become spaces; cut at VIGIL_HB_MAX_STATUS_BYTES bytes on a
 * UTF-8 character boundary. */
static inline int vigil_hb_status(const char *text) {
  char buf[sizeof("STATUS=") + VIGIL_HB_MAX_STATUS_BYTES];
  size_t n = sizeof("STATUS=") - 1, len = strlen(text), i;
  if (vigil_hb_init() == VIGIL_HB_NONE) return 0;
  memcpy(buf, "STATUS=", n);
  if (len > VIGIL_HB_MAX_STATUS_BYTES) {
    len = VIGIL_HB_MAX_STATUS_BYTES;
    while (len > 0 && (VIGIL_HB_CAST(unsigned char, text[len]) & 0xC0) == 0x80) --len;
  }
  for (i = 0; i < len; ++i) {
    unsigned char c = VIGIL_HB_CAST(unsigned char, text[i]);
    buf[n++] = (c < 0x20 || c == 0x7F) ? ' ' : VIGIL_HB_CAST(char, c);
  }
  buf[n] = '\0';
  return vigil_hb_send(buf);
}

/* MEMORY=bytes: memory the program reports about itself. */
static inline int vigil_hb_memory(unsigned long long bytes) {
  char buf[48];
  if (vigil_hb_init() == VIGIL_HB_NONE) return 0;
  snprintf(buf, sizeof(buf), "MEMORY=%llu", bytes);
  return vigil_hb_send(buf);
}

/* This process's resident set size in bytes, from /proc/self/statm; 0 if
 * it cannot be read. */
static inline unsigned long long vigil_hb_rss_bytes(void) {
  char buf[128];
  unsigned long long size = 0, resident = 0;
  ssize_t n;
  long page;
  int fd, saved_errno = errno;
  fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    errno = saved_errno;
    return 0;
  }
  while ((n = read(fd, buf, sizeof(buf) - 1)) < 0 && errno == EINTR) {
  }
  close(fd);
  page = sysconf(_SC_PAGESIZE);
  errno = saved_errno;
  if (n <= 0 || page <= 0) return 0;
  buf[n] = '\0';
  if (sscanf(buf, "%llu %llu", &size, &resident) != 2) return 0;
  return resident * VIGIL_HB_CAST(unsigned long long, page);
}

/* MEMORY=<this process's RSS>. */
static inline int vigil_hb_report_memory(void) {
  unsigned long long rss;
  if (vigil_hb_init() == VIGIL_HB_NONE) return 0;
  rss = vigil_hb_rss_bytes();
  if (rss == 0) {
    errno = ENOENT;
    return -1;
  }
  return vigil_hb_memory(rss);
}

#ifdef __cplusplus
}
#endif

#endif /* VIGIL_HEARTBEAT_H */
