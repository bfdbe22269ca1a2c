// The one child program the integration tests supervise. Its modes combine
// freely and each one imitates a behaviour of a real service (crash, ignore
// SIGTERM, daemonize, flood its output, ...). It sleeps only to imitate a
// process's own timing, never to synchronise with the test: the test learns
// what happened from pid files and output lines.
//
// Modes (in the order they take effect):
//   --ignore-term               SIGTERM is ignored (inherited by forked children)
//   --pidfile PATH              append "PID\n" to PATH at start
//   --stderr TEXT               write TEXT and a newline to stderr
//   --print-env                 write every environment variable, one a line
//   --print-fds                 write "fds: 0 1 2" (the open fds, ascending)
//   --describe-fds              write "fd N: WHAT" for each open fd, ascending:
//                               "listening tcp 127.0.0.1:80 socket:[INODE]"
//                               ("tcp6 [::1]:80", "unix /path"), "pipe:[INODE]",
//                               or where the fd's /proc link points
//   --print-ids                 write "ids: uid=U gid=G"
//   --print TEXT                write TEXT and a newline to stdout (after
//                               the prints above, so it can mark their end)
//   --fork-grandchild           fork a child in the same process group; it
//                               writes its pid to --grandchild-pidfile PATH
//                               and sleeps forever
//   --double-fork PATH          daemonize a grandchild (fork, setsid, fork)
//                               that writes its pid to PATH and sleeps forever
//   --daemon-ignore-term        that daemon ignores SIGTERM (whatever the
//                               main process does)
//   --setsid-child PATH         fork a child that leaves the process group
//                               with setsid (still this process's child),
//                               writes its pid to PATH and sleeps forever
//   --exit-immediately CODE     exit with CODE now
//   --flood N                   write N numbered 100-byte lines to stdout as
//                               fast as possible, then exit 0 (--stay: live on)
//   --no-newline BYTES          write BYTES bytes without a newline, then
//                               exit 0 (--stay: live on)
//   --tick MS                   write "tick N" (N = 0, 1, ...) every MS ms
//
// Heartbeat protocol (messages go to fd $VIGIL_HEARTBEAT_FD, 3 when unset,
// or with --via-socket as one datagram each to NOTIFY_SOCKET):
//   --print-fd3                 write "fd3: pipe" (or socket, other, closed)
//   --via-socket                send the messages below to NOTIFY_SOCKET
//   --notify LINE               send LINE at start (before --garbage)
//   --garbage                   send malformed input at start: a line of
//                               binary junk, a 10 KiB line, a line with no
//                               '=', a lower-case key (4 protocol errors);
//                               with --via-socket also a 20 KiB datagram (5)
//   --beat MS                   send WATCHDOG=1 now and every MS ms ...
//   --beat-for MS               ... until MS ms after start, then go silent
//   --beat-flood                send WATCHDOG=1 as fast as vigil takes it,
//                               until killed (a heartbeat flood)
//   --notify-at MS LINE         send LINE MS ms after start
//   --on-term LINE              on SIGTERM send LINE (on fd 3) and live on
//   --crash-after MS            exit after MS ms with --exit-code N (default 1)
//   --kill-self SIG MS          raise SIG (name or number) after MS ms
//   --serve                     while waiting, accept connections on the
//                               LISTEN_FDS sockets (fds 3..) and answer each
//                               with "pid PID\n", then close it
//   (default)                   sleep until killed
//
// Resource use, for the /proc sampling (before the timed behaviour above;
// the last two never return):
//   --alloc-mb N                allocate N MiB and touch every page, then
//                               go on (by default: sleep until killed)
//   --grow-mb-per-sec N         allocate and touch N MiB a second, in steps
//                               of a tenth, until killed (stops growing at
//                               4 GiB, in case nobody kills it)
//   --spin                      burn CPU until killed
//
// As a wrapper (first argument only):
//   --kill-then-exec PIDFILE PROGRAM ARGS...
//                               SIGKILL the last pid of PIDFILE, wait until it
//                               is a zombie (it is this process's child when
//                               this runs in vigil's pid, as the new image of
//                               `vigil upgrade`), then exec PROGRAM
//   --deny-close-range PROGRAM ARGS...
//                               exec PROGRAM with close_range(2) failing
//                               (ENOSYS) for it and all it starts
#include <fcntl.h>
#include <dirent.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

extern char** environ;

namespace {

struct Options {
  bool ignore_term = false;
  std::string pidfile;
  std::vector<std::string> stderr_lines;
  std::vector<std::string> stdout_lines;
  bool print_env = false;
  bool print_fds = false;
  bool describe_fds = false;
  bool serve = false;
  bool print_ids = false;
  bool fork_grandchild = false;
  std::string grandchild_pidfile;
  std::string double_fork_pidfile;
  bool daemon_ignore_term = false;
  std::string setsid_child_pidfile;
  int exit_immediately = -1;
  long flood = -1;
  long long no_newline = -1;
  bool stay = false;
  long tick_ms = -1;
  long crash_after_ms = -1;
  int exit_code = 1;
  int kill_self_signal = 0;
  long kill_self_ms = -1;
  bool print_fd3 = false;
  bool via_socket = false;
  std::vector<std::string> notify_lines;
  bool garbage = false;
  long beat_ms = -1;
  long beat_for_ms = -1;
  bool beat_flood = false;
  std::vector<std::pair<long, std::string>> notify_at;  // (ms after start, line)
  std::string on_term;
  long alloc_mb = -1;
  long grow_mb_per_sec = -1;
  bool spin = false;
};

[[noreturn]] void usage(const char* what) {
  std::fprintf(stderr, "child_helper: %s\n", what);
  std::exit(100);
}

void write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::exit(101);  // EPIPE and the like: nobody is reading any more
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void write_line(int fd, std::string_view text) {
  std::string line(text);
  line += '\n';
  write_all(fd, line.data(), line.size());
}

void append_pid(const std::string& path, pid_t pid) {
  if (path.empty()) return;
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) usage("cannot open the pid file");
  // One write: a reader never sees half a line it could mistake for a pid.
  write_line(fd, std::to_string(pid));
  ::close(fd);
}

int parse_signal(const char* text) {
  static const struct {
    const char* name;
    int sig;
  } kSignals[] = {{"TERM", SIGTERM}, {"KILL", SIGKILL}, {"SEGV", SIGSEGV}, {"ABRT", SIGABRT},
                  {"INT", SIGINT},   {"HUP", SIGHUP},   {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
                  {"QUIT", SIGQUIT}};
  std::string_view s(text);
  if (s.starts_with("SIG")) s.remove_prefix(3);
  for (const auto& k : kSignals)
    if (s == k.name) return k.sig;
  int n = std::atoi(text);
  if (n <= 0) usage("bad signal");
  return n;
}

long parse_number(const char* text) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < 0) usage("bad number");
  return static_cast<long>(v);
}

Options parse(int argc, char** argv) {
  Options o;
  auto need = [&](int& i) -> const char* {
    if (i + 1 >= argc) usage("missing argument");
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view a(argv[i]);
    if (a == "--ignore-term") o.ignore_term = true;
    else if (a == "--pidfile") o.pidfile = need(i);
    else if (a == "--stderr") o.stderr_lines.emplace_back(need(i));
    else if (a == "--print") o.stdout_lines.emplace_back(need(i));
    else if (a == "--print-env") o.print_env = true;
    else if (a == "--print-fds") o.print_fds = true;
    else if (a == "--describe-fds") o.describe_fds = true;
    else if (a == "--serve") o.serve = true;
    else if (a == "--print-ids") o.print_ids = true;
    else if (a == "--fork-grandchild") o.fork_grandchild = true;
    else if (a == "--grandchild-pidfile") o.grandchild_pidfile = need(i);
    else if (a == "--double-fork") o.double_fork_pidfile = need(i);
    else if (a == "--daemon-ignore-term") o.daemon_ignore_term = true;
    else if (a == "--setsid-child") o.setsid_child_pidfile = need(i);
    else if (a == "--exit-immediately") o.exit_immediately = static_cast<int>(parse_number(need(i)));
    else if (a == "--flood") o.flood = parse_number(need(i));
    else if (a == "--no-newline") o.no_newline = parse_number(need(i));
    else if (a == "--stay") o.stay = true;
    else if (a == "--tick") o.tick_ms = parse_number(need(i));
    else if (a == "--crash-after") o.crash_after_ms = parse_number(need(i));
    else if (a == "--exit-code") o.exit_code = static_cast<int>(parse_number(need(i)));
    else if (a == "--kill-self") {
      o.kill_self_signal = parse_signal(need(i));
      o.kill_self_ms = parse_number(need(i));
    } else if (a == "--print-fd3") o.print_fd3 = true;
    else if (a == "--via-socket") o.via_socket = true;
    else if (a == "--notify") o.notify_lines.emplace_back(need(i));
    else if (a == "--garbage") o.garbage = true;
    else if (a == "--beat") o.beat_ms = parse_number(need(i));
    else if (a == "--beat-flood") o.beat_flood = true;
    else if (a == "--beat-for") o.beat_for_ms = parse_number(need(i));
    else if (a == "--on-term") o.on_term = std::string(need(i)) + "\n";
    else if (a == "--notify-at") {
      long ms = parse_number(need(i));
      o.notify_at.emplace_back(ms, need(i));
    } else if (a == "--alloc-mb") o.alloc_mb = parse_number(need(i));
    else if (a == "--grow-mb-per-sec") o.grow_mb_per_sec = parse_number(need(i));
    else if (a == "--spin") o.spin = true;
    else {
      usage(("unknown option " + std::string(a)).c_str());
    }
  }
  return o;
}

std::vector<int> open_fd_numbers() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) usage("cannot list /proc/self/fd");
  std::vector<int> fds;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int fd = std::atoi(e->d_name);
    if (fd != ::dirfd(d)) fds.push_back(fd);
  }
  ::closedir(d);
  std::sort(fds.begin(), fds.end());
  return fds;
}

void print_fds() {
  std::string line = "fds:";
  for (int fd : open_fd_numbers()) line += " " + std::to_string(fd);
  write_line(1, line);
}

// "listening tcp 127.0.0.1:80", "tcp6 [::1]:80", "unix /run/a.sock": a
// socket's family, bound address and whether it listens.
std::string describe_socket(int fd) {
  int listening = 0;
  socklen_t len = sizeof listening;
  ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
  std::string out = listening ? "listening " : "";
  sockaddr_storage ss{};
  len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return out + "socket";
  char host[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &sa->sin_addr, host, sizeof host);
    return out + "tcp " + host + ":" + std::to_string(ntohs(sa->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &sa->sin6_addr, host, sizeof host);
    return out + "tcp6 [" + host + "]:" + std::to_string(ntohs(sa->sin6_port));
  }
  if (ss.ss_family == AF_UNIX) {
    auto* sa = reinterpret_cast<sockaddr_un*>(&ss);
    return out + "unix " + std::string(sa->sun_path);
  }
  return out + "socket family " + std::to_string(ss.ss_family);
}

void describe_fds() {
  for (int fd : open_fd_numbers()) {
    char target[256] = "";
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    if (n > 0) target[n] = '\0';
    struct stat st;
    std::string what = target;
    if (::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) what = describe_socket(fd) + " " + target;
    write_line(1, "fd " + std::to_string(fd) + ": " + what);
  }
}

// --serve: the LISTEN_FDS sockets. All instances poll the same sockets, and
// only one wins each connection: the others must not block in accept.
std::vector<int> g_listen_fds;

void start_serving() {
  const char* count = std::getenv("LISTEN_FDS");
  if (!count) usage("--serve without LISTEN_FDS");
  const long n = parse_number(count);
  for (int fd = 3; fd < 3 + n; ++fd) {
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    g_listen_fds.push_back(fd);
  }
}

void answer(int listen_fd) {
  int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) return;  // another instance took it
  const std::string reply = "pid " + std::to_string(::getpid()) + "\n";
  if (::send(c, reply.data(), reply.size(), MSG_NOSIGNAL) < 0) {
    // the client gave up: nothing to do
  }
  ::close(c);
}

// Waits `ms` (forever when negative), answering connections meanwhile.
void serve_for(long ms, long long (*now)()) {
  const long long until = ms < 0 ? -1 : now() + ms;
  std::vector<pollfd> fds;
  for (int fd : g_listen_fds) fds.push_back(pollfd{fd, POLLIN, 0});
  for (;;) {
    const long long left = until < 0 ? -1 : std::max(0LL, until - now());
    if (::poll(fds.data(), fds.size(), static_cast<int>(left)) > 0)
      for (auto& p : fds)
        if (p.revents & POLLIN) answer(p.fd);
    if (until >= 0 && now() >= until) return;
  }
}

// Where heartbeat messages go: the fd vigil names, after any held sockets.
int heartbeat_fd() {
  static const int fd = [] {
    const char* value = std::getenv("VIGIL_HEARTBEAT_FD");
    return value ? static_cast<int>(parse_number(value)) : 3;
  }();
  return fd;
}

void print_fd3() {
  struct stat st;
  const char* kind = "closed";
  if (::fstat(3, &st) == 0) kind = S_ISFIFO(st.st_mode) ? "pipe" : S_ISSOCK(st.st_mode) ? "socket" : "other";
  write_line(1, std::string("fd3: ") + kind);
}

// One protocol message: a line on fd 3, or one datagram to NOTIFY_SOCKET
// (sent as it is: a datagram needs no '\n').
void send_message(const Options& o, std::string_view message) {
  if (!o.via_socket) {
    std::string line(message);
    line += '\n';
    write_all(heartbeat_fd(), line.data(), line.size());
    return;
  }
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || path[0] != '/') usage("no NOTIFY_SOCKET path");
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (std::strlen(path) >= sizeof sa.sun_path) usage("NOTIFY_SOCKET path too long");
  std::strcpy(sa.sun_path, path);
  static int fd = -1;
  if (fd < 0) fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) usage("socket failed");
  ssize_t n;
  while ((n = ::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL,
                       reinterpret_cast<const sockaddr*>(&sa), sizeof sa)) < 0 &&
         errno == EINTR) {
  }
  if (n < 0) std::exit(102);  // nobody bound: vigil is gone
}

// Malformed protocol input, each piece one protocol error.
void send_garbage(const Options& o) {
  std::string junk;
  for (int b = 0; b < 256; ++b)
    if (b != '\n' && b != '=') junk += static_cast<char>(b);
  send_message(o, junk);                          // binary junk, no '='
  send_message(o, std::string(10 * 1024, 'A'));  // a 10 KiB line
  send_message(o, "no equals sign here");         // no '='
  send_message(o, "lower=case");                  // invalid key
  if (o.via_socket) send_message(o, std::string(20 * 1024, 'B'));  // datagram too large
}

// --on-term: the line, built before the handler can run; write(2) is
// async-signal-safe.
std::string g_on_term;
int g_on_term_fd = 3;

void on_term_signal(int) {
  int saved = errno;
  if (::write(g_on_term_fd, g_on_term.data(), g_on_term.size()) < 0) {
    // vigil is gone: nothing to tell
  }
  errno = saved;
}

[[noreturn]] void sleep_forever() {
  for (;;) ::pause();
}

void sleep_ms(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (::nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

void fork_grandchild(const Options& o) {
  pid_t pid = ::fork();
  if (pid < 0) usage("fork failed");
  if (pid == 0) {
    // Same process group (and SIGTERM disposition) as the parent.
    append_pid(o.grandchild_pidfile, ::getpid());
    sleep_forever();
  }
}

void double_fork(const Options& o) {
  pid_t first = ::fork();
  if (first < 0) usage("fork failed");
  if (first == 0) {
    ::setsid();  // out of the supervised process group
    pid_t second = ::fork();
    if (second < 0) ::_exit(1);
    if (second > 0) ::_exit(0);
    if (o.daemon_ignore_term) ::signal(SIGTERM, SIG_IGN);
    append_pid(o.double_fork_pidfile, ::getpid());
    sleep_forever();
  }
  int status;
  while (::waitpid(first, &status, 0) < 0 && errno == EINTR) {
  }
}

void setsid_child(const Options& o) {
  pid_t pid = ::fork();
  if (pid < 0) usage("fork failed");
  if (pid == 0) {
    ::setsid();  // a session and group of its own; the parent stays
    append_pid(o.setsid_child_pidfile, ::getpid());
    sleep_forever();
  }
}

void flood(long lines) {
  // "line 0000000 xxx...x\n": 100 bytes, numbered from 0.
  constexpr std::size_t kLineBytes = 100;
  std::string buffer;
  buffer.reserve(1 << 16);
  char head[32];
  for (long i = 0; i < lines; ++i) {
    int n = std::snprintf(head, sizeof head, "line %07ld ", i);
    buffer.append(head, static_cast<std::size_t>(n));
    buffer.append(kLineBytes - 1 - static_cast<std::size_t>(n), 'x');
    buffer += '\n';
    if (buffer.size() + kLineBytes > (1 << 16)) {
      write_all(1, buffer.data(), buffer.size());
      buffer.clear();
    }
  }
  write_all(1, buffer.data(), buffer.size());
}

void no_newline(long long bytes) {
  std::string chunk(1 << 16, 'a');
  while (bytes > 0) {
    std::size_t n = static_cast<std::size_t>(std::min<long long>(bytes, chunk.size()));
    write_all(1, chunk.data(), n);
    bytes -= static_cast<long long>(n);
  }
}

// Allocates `bytes` and writes to every page, so they count in the RSS.
// Never freed: the memory is the point.
void allocate_touched(std::size_t bytes) {
  if (bytes == 0) return;
  // volatile: the stores must happen although nothing reads them back.
  volatile char* p = static_cast<char*>(std::malloc(bytes));
  if (!p) usage("out of memory");
  const long page = ::sysconf(_SC_PAGESIZE);
  for (std::size_t off = 0; off < bytes; off += static_cast<std::size_t>(page))
    p[off] = static_cast<char>(off);
  p[bytes - 1] = 1;
}

[[noreturn]] void grow_forever(long mb_per_sec) {
  constexpr std::size_t kCapBytes = std::size_t{4} << 30;
  const std::size_t step = static_cast<std::size_t>(mb_per_sec) * (1 << 20) / 10;
  std::size_t total = 0;
  for (;;) {
    if (total + step <= kCapBytes) {
      allocate_touched(step);
      total += step;
    }
    sleep_ms(100);
  }
}

[[noreturn]] void spin_forever() {
  volatile unsigned long x = 0;
  for (;;) x = x + 1;
}

long long now_ms() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

}  // namespace

// close_range(2) fails with ENOSYS from here on, in this process and all it
// starts, as on Linux before 5.9 or under a container's older seccomp
// profile.
void deny_close_range() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_close_range, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
    usage("cannot install the seccomp filter");
}

int main(int argc, char** argv) {
  if (argc >= 4 && std::string_view(argv[1]) == "--kill-then-exec") {
    std::FILE* f = std::fopen(argv[2], "r");
    long pid = 0, last = 0;
    while (f && std::fscanf(f, "%ld", &pid) == 1) last = pid;
    if (f) std::fclose(f);
    if (last > 0 && ::kill(static_cast<pid_t>(last), SIGKILL) == 0) {
      // Bounded: a zombie within 10 s, or go on anyway.
      const std::string stat = "/proc/" + std::to_string(last) + "/stat";
      for (int i = 0; i < 10000; ++i) {
        std::FILE* s = std::fopen(stat.c_str(), "r");
        char state = '?';
        if (s) {
          int ignored_pid;
          char comm[256];
          if (std::fscanf(s, "%d (%255[^)]) %c", &ignored_pid, comm, &state) != 3) state = '?';
          std::fclose(s);
        }
        if (!s || state == 'Z') break;
        timespec ts{0, 1000 * 1000};
        ::nanosleep(&ts, nullptr);
      }
    }
    ::execv(argv[3], argv + 3);
    usage("cannot execute the program after --kill-then-exec");
  }
  if (argc >= 3 && std::string_view(argv[1]) == "--deny-close-range") {
    deny_close_range();
    ::execv(argv[2], argv + 2);
    usage("cannot execute the program after --deny-close-range");
  }
  Options o = parse(argc, argv);
  const long long started = now_ms();

  if (o.ignore_term) ::signal(SIGTERM, SIG_IGN);
  if (!o.on_term.empty()) {
    g_on_term = o.on_term;
    g_on_term_fd = heartbeat_fd();
    struct sigaction sa{};
    sa.sa_handler = on_term_signal;
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGTERM, &sa, nullptr);
  }
  append_pid(o.pidfile, ::getpid());
  for (const auto& l : o.stderr_lines) write_line(2, l);
  if (o.print_env)
    for (char** e = environ; e && *e; ++e) write_line(1, *e);
  if (o.print_fds) print_fds();
  if (o.describe_fds) describe_fds();
  if (o.print_ids)
    write_line(1, "ids: uid=" + std::to_string(::getuid()) + " gid=" + std::to_string(::getgid()));
  if (o.print_fd3) print_fd3();
  // After the other prints: a --print line can mark that they are complete.
  for (const auto& l : o.stdout_lines) write_line(1, l);
  for (const auto& l : o.notify_lines) send_message(o, l);
  if (o.garbage) send_garbage(o);
  if (o.fork_grandchild) fork_grandchild(o);
  if (!o.double_fork_pidfile.empty()) double_fork(o);
  if (!o.setsid_child_pidfile.empty()) setsid_child(o);
  if (o.exit_immediately >= 0) return o.exit_immediately;
  if (o.serve) start_serving();
  if (o.flood >= 0) {
    flood(o.flood);
    if (!o.stay) return 0;
  }
  if (o.no_newline >= 0) {
    no_newline(o.no_newline);
    if (!o.stay) return 0;
  }
  if (o.beat_flood)
    for (;;) send_message(o, "WATCHDOG=1");

  if (o.alloc_mb > 0) allocate_touched(static_cast<std::size_t>(o.alloc_mb) << 20);
  if (o.grow_mb_per_sec > 0) grow_forever(o.grow_mb_per_sec);
  if (o.spin) spin_forever();

  // Timed behaviour: the earliest of crash, self-kill, the next tick, the
  // next beat and the next timed message.
  long tick = 0;
  long long next_tick = o.tick_ms >= 0 ? now_ms() : -1;
  const long long crash_at = o.crash_after_ms >= 0 ? started + o.crash_after_ms : -1;
  const long long kill_at = o.kill_self_ms >= 0 ? started + o.kill_self_ms : -1;
  long long next_beat = o.beat_ms > 0 ? now_ms() : -1;
  const long long beat_until = o.beat_for_ms >= 0 ? started + o.beat_for_ms : -1;
  auto timed = o.notify_at;
  std::stable_sort(timed.begin(), timed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::size_t next_timed = 0;
  auto timed_at = [&]() -> long long {
    return next_timed < timed.size() ? started + timed[next_timed].first : -1;
  };
  if (crash_at < 0 && kill_at < 0 && next_tick < 0 && next_beat < 0 && timed_at() < 0) {
    if (o.serve) serve_for(-1, now_ms);
    sleep_forever();
  }
  for (;;) {
    long long now = now_ms();
    if (kill_at >= 0 && now >= kill_at) {
      ::signal(o.kill_self_signal, SIG_DFL);
      ::raise(o.kill_self_signal);
    }
    if (crash_at >= 0 && now >= crash_at) return o.exit_code;
    if (next_tick >= 0 && now >= next_tick) {
      write_line(1, "tick " + std::to_string(tick++));
      next_tick += o.tick_ms;
    }
    if (next_beat >= 0 && beat_until >= 0 && now >= beat_until) next_beat = -1;
    if (next_beat >= 0 && now >= next_beat) {
      send_message(o, "WATCHDOG=1");
      next_beat += o.beat_ms;
      // A child that fell behind (stopped, descheduled) beats once, not in a burst.
      if (next_beat < now) next_beat = now + o.beat_ms;
    }
    while (timed_at() >= 0 && now >= timed_at()) send_message(o, timed[next_timed++].second);
    long long wake = -1;
    for (long long t : {crash_at, kill_at, next_tick, next_beat, timed_at()})
      if (t >= 0 && (wake < 0 || t < wake)) wake = t;
    if (wake < 0 && o.serve) serve_for(-1, now_ms);
    if (wake < 0) sleep_forever();
    const long wait = static_cast<long>(std::max(0LL, wake - now_ms()));
    if (o.serve)
      serve_for(wait, now_ms);
    else
      sleep_ms(wait);
  }
}
