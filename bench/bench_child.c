/* The child the benchmarks run under vigil. Linked statically when the
 * toolchain allows it, so that what a restart costs is vigil's work plus
 * fork/exec, not the dynamic loader of the child.
 *
 *   bench_child restart FILE
 *       Appends one record "R <start_ns> <exit_ns> <pid>\n" to FILE (one
 *       O_APPEND write) and exits 0 at once. start_ns is CLOCK_MONOTONIC read
 *       first thing in main, exit_ns just before the write.
 *   bench_child flood LINES FILE
 *       Writes LINES lines of exactly 100 bytes to stdout through a 1 MiB
 *       stdio buffer: "%010u " + 88 bytes of filler + "\n". Then writes
 *       "F <start_ns> <end_ns>\n" to FILE (CLOCK_MONOTONIC at start and after
 *       the last fflush) and exits 0.
 *   bench_child http [FILE]
 *       A tiny HTTP/1.1 server on 127.0.0.1:$PORT, one connection at a time
 *       (blocking accept): reads the request up to its blank line, answers
 *       "200 OK" with a 3-byte body and closes. With FILE, appends
 *       "A <accept_ns>\n" to it for every connection (CLOCK_MONOTONIC when
 *       accept returned). Exits 1 if it cannot listen.
 *   bench_child serve
 *       The same answers as http, from the socket at fd 3 when LISTEN_FDS
 *       is 1 and LISTEN_PID is its pid (a socket vigil holds), else from
 *       127.0.0.1:$PORT it binds itself. Once it has its socket it writes
 *       "READY=1\n" to $VIGIL_HEARTBEAT_FD (ready = "notify"). On SIGTERM it
 *       stops accepting, finishes the connection at hand and exits 0.
 *   bench_child beat MS FILE
 *       Writes "WATCHDOG=1\n" to fd 3 every MS ms. On SIGUSR1 it stops
 *       beating (the beat already under way, if any, is the last) and waits;
 *       on the SIGTERM that follows it appends "H <index> <pid> <beat_mono_ns>
 *       <beat_real_ns> <term_mono_ns> <term_real_ns>\n" to FILE and exits 0.
 *       beat_* is read just before the last write() to fd 3, term_* in the
 *       SIGTERM handler; both on CLOCK_MONOTONIC and on CLOCK_REALTIME (for
 *       vigil's log timestamps). index is $VIGIL_INSTANCE. Exits when fd 3
 *       fails (vigil gone).
 *   bench_child tick MS
 *       Writes a numbered line "T <seq> <real_ns>\n" to stdout every MS ms,
 *       one write(2) each (seq from 1, real_ns CLOCK_REALTIME just before
 *       the write), until the write fails or SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long clock_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

static int append_record(const char* path, const char* text, size_t len) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, len);
  close(fd);
  return n == (ssize_t)len ? 0 : -1;
}

static int run_restart(const char* path, long long start) {
  char rec[96];
  long long end = now_ns();
  int len = snprintf(rec, sizeof rec, "R %lld %lld %d\n", start, end, (int)getpid());
  return append_record(path, rec, (size_t)len) == 0 ? 0 : 1;
}

enum { kLineBytes = 100, kSeqDigits = 10 };

static int run_flood(unsigned long lines, const char* path, long long start) {
  static char buffer[1 << 20];
  setvbuf(stdout, buffer, _IOFBF, sizeof buffer);
  char line[kLineBytes];
  memset(line, 'x', sizeof line);
  for (int i = kSeqDigits + 1; i < kLineBytes - 1; ++i) line[i] = (char)('a' + i % 26);
  line[kSeqDigits] = ' ';
  line[kLineBytes - 1] = '\n';
  for (unsigned long seq = 0; seq < lines; ++seq) {
    unsigned long v = seq;
    for (int d = kSeqDigits - 1; d >= 0; --d) {
      line[d] = (char)('0' + v % 10);
      v /= 10;
    }
    if (fwrite(line, 1, sizeof line, stdout) != sizeof line) return 1;
  }
  if (fflush(stdout) != 0) return 1;
  long long end = now_ns();
  char rec[96];
  int len = snprintf(rec, sizeof rec, "F %lld %lld\n", start, end);
  return append_record(path, rec, (size_t)len) == 0 ? 0 : 1;
}

/* Reads one request up to its blank line (bounded; a peer that sends
 * nothing gives up after the receive timeout), answers, closes. */
static void serve_one(int conn) {
  static const char kResponse[] =
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
  char req[8192];
  size_t have = 0;
  const struct timeval limit = {2, 0};
  setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  while (have < sizeof req - 1) {
    ssize_t n = read(conn, req + have, sizeof req - 1 - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    have += (size_t)n;
    req[have] = '\0';
    if (strstr(req, "\r\n\r\n")) break;
  }
  size_t off = 0;
  while (off < sizeof kResponse - 1) {
    ssize_t n = send(conn, kResponse + off, sizeof kResponse - 1 - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += (size_t)n;
  }
}

/* A socket listening on 127.0.0.1:$PORT with `backlog`, or -1 (said why on
 * stderr, prefixed with `who`). */
static int listen_on_port(const char* who, int backlog) {
  const char* port_text = getenv("PORT");
  int port = port_text ? atoi(port_text) : 0;
  if (port <= 0 || port > 65535) {
    fprintf(stderr, "%s: no valid PORT in the environment\n", who);
    return -1;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((unsigned short)port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr*)&addr, sizeof addr) < 0 || listen(fd, backlog) < 0) {
    fprintf(stderr, "%s: cannot listen on 127.0.0.1:%d: %s\n", who, port, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

static int run_http(const char* path) {
  int fd = listen_on_port("bench_child http", 64);
  if (fd < 0) return 1;
  int log = path ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
  if (path && log < 0) {
    fprintf(stderr, "bench_child http: cannot open %s: %s\n", path, strerror(errno));
    return 1;
  }
  for (;;) {
    int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return 1;
    }
    if (log >= 0) {
      char rec[32];
      int len = snprintf(rec, sizeof rec, "A %lld\n", now_ns());
      if (write(log, rec, (size_t)len) != len) return 1;
    }
    serve_one(conn);
    close(conn);
  }
}

static volatile sig_atomic_t stopping = 0;

/* SIGTERM: stop after the connection at hand. A SIGTERM that lands just
 * before accept() blocks would be missed until the next connection comes,
 * so an interval timer keeps interrupting the wait (SIGALRM, no
 * SA_RESTART) until the loop sees the flag. */
static void on_stop_signal(int sig) {
  if (sig == SIGTERM && !stopping) {
    stopping = 1;
    const struct itimerval tick = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_REAL, &tick, NULL);
  }
}

/* The socket vigil passes (systemd's protocol: LISTEN_PID must be ours, or
 * the variables were meant for another process), else -1. */
static int held_socket(void) {
  const char* fds = getenv("LISTEN_FDS");
  const char* pid = getenv("LISTEN_PID");
  if (!fds || !pid || strcmp(fds, "1") != 0 || atol(pid) != (long)getpid()) return -1;
  fcntl(3, F_SETFD, FD_CLOEXEC);
  return 3;
}

static int run_serve(void) {
  int fd = held_socket();
  if (fd < 0) fd = listen_on_port("bench_child serve", SOMAXCONN);
  if (fd < 0) return 1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGALRM, &sa, NULL);
  const char* beat = getenv("VIGIL_HEARTBEAT_FD");
  if (beat) {
    /* Ready once it holds its socket; a vigil that is gone is no reason to stop serving. */
    if (write(atoi(beat), "READY=1\n", 8) != 8) perror("bench_child serve: READY=1");
  }
  while (!stopping) {
    int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      fprintf(stderr, "bench_child serve: accept: %s\n", strerror(errno));
      return 1;
    }
    serve_one(conn);
    close(conn);
  }
  return 0;
}

static volatile sig_atomic_t silenced = 0;
static volatile sig_atomic_t terminated = 0;
static long long term_mono_ns = 0, term_real_ns = 0;

static void on_sigusr1(int sig) {
  (void)sig;
  silenced = 1;
}

static void on_sigterm(int sig) {
  (void)sig;
  /* clock_gettime is async-signal-safe: the instant the child learned. */
  term_mono_ns = clock_ns(CLOCK_MONOTONIC);
  term_real_ns = clock_ns(CLOCK_REALTIME);
  terminated = 1;
}

static int run_beat(long ms, const char* path) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigusr1;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  const struct timespec period = {ms / 1000, (ms % 1000) * 1000000L};
  long long beat_mono = 0, beat_real = 0;
  while (!silenced) {
    long long mono = clock_ns(CLOCK_MONOTONIC), real = clock_ns(CLOCK_REALTIME);
    if (write(3, "WATCHDOG=1\n", 11) != 11) return 0;
    beat_mono = mono;
    beat_real = real;
    struct timespec left = period;
    /* SIGUSR1 interrupts the sleep: silence starts at once. */
    while (!silenced && nanosleep(&left, &left) != 0 && errno == EINTR) {
    }
  }
  /* Silent: SIGTERM (vigil's stop) is all that is waited for. Blocked
   * while the handler is installed, then waited for with sigsuspend, so
   * one sent in between is not lost. */
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, &old);
  sa.sa_handler = on_sigterm;
  sigaction(SIGTERM, &sa, NULL);
  sigdelset(&old, SIGTERM);
  while (!terminated) sigsuspend(&old);
  const char* index = getenv("VIGIL_INSTANCE");
  char rec[192];
  int len = snprintf(rec, sizeof rec, "H %s %d %lld %lld %lld %lld\n", index ? index : "-1", (int)getpid(),
                     beat_mono, beat_real, term_mono_ns, term_real_ns);
  return append_record(path, rec, (size_t)len) == 0 ? 0 : 1;
}

static int run_tick(long ms) {
  struct timespec step = {ms / 1000, (ms % 1000) * 1000000L};
  for (unsigned long seq = 1;; ++seq) {
    char line[64];
    int len = snprintf(line, sizeof line, "T %lu %lld\n", seq, clock_ns(CLOCK_REALTIME));
    if (write(1, line, (size_t)len) != len) return 1;
    nanosleep(&step, NULL);
  }
}

int main(int argc, char** argv) {
  long long start = now_ns();
  if (argc == 3 && strcmp(argv[1], "restart") == 0) return run_restart(argv[2], start);
  if (argc == 4 && strcmp(argv[1], "flood") == 0)
    return run_flood(strtoul(argv[2], NULL, 10), argv[3], start);
  if ((argc == 2 || argc == 3) && strcmp(argv[1], "http") == 0) return run_http(argc == 3 ? argv[2] : NULL);
  if (argc == 2 && strcmp(argv[1], "serve") == 0) return run_serve();
  if (argc == 4 && strcmp(argv[1], "beat") == 0) return run_beat(atol(argv[2]), argv[3]);
  if (argc == 3 && strcmp(argv[1], "tick") == 0) return run_tick(atol(argv[2]));
  fprintf(stderr, "usage: bench_child restart FILE | flood LINES FILE | http [FILE] | serve | beat MS FILE | tick MS\n");
  return 2;
}
