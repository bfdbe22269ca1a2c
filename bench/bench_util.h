// Small helpers shared by the benchmarks: clocks, temp dirs, running the
// real vigil binary and its CLI, free ports, reading /proc, statistics, and
// the results file that bench/run.sh turns into the summary table.
#pragma once
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fd.h"

namespace bench {

inline long long now_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

inline void sleep_ms(double ms) {
  std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long long>(ms * 1000)));
}

// A run that cannot be measured (lost lines, a vigil that does not start or
// does not stop): the benchmark reports it and exits non-zero.
struct Broken : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Fresh directory under $BENCH_TMPDIR (default /tmp), removed on scope exit
// unless BENCH_KEEP is set.
class TempDir {
 public:
  explicit TempDir(const char* tag) {
    const char* base = std::getenv("BENCH_TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/vigil-bench-" + tag + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) throw Broken("mkdtemp " + tmpl + ": " + std::strerror(errno));
    path_ = buf.data();
  }
  ~TempDir() {
    if (std::getenv("BENCH_KEEP")) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f) throw Broken("cannot write " + p.string());
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// TOML basic string with the few escapes a path may need.
inline std::string toml_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// The real binary: `vigil run -c CONFIG`, its stderr (vigil's own log) into
// a file, and XDG_RUNTIME_DIR (where vigil makes its runtime dir of notify
// sockets) set to the config's folder, so that nothing outlives the run's
// TempDir even when vigil is killed. Killed with SIGKILL if still alive when
// destroyed (its children go with it: PR_SET_PDEATHSIG).
class VigilProcess {
 public:
  VigilProcess(const std::string& binary, const std::filesystem::path& config,
               const std::filesystem::path& stderr_file) {
    const std::string runtime_dir = config.parent_path().string();
    start_ns_ = now_ns();
    pid_ = ::fork();
    if (pid_ < 0) throw Broken(std::string("fork: ") + std::strerror(errno));
    if (pid_ == 0) {
      int fd = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) ::dup2(fd, 2);
      int null = ::open("/dev/null", O_RDWR);
      if (null >= 0) {
        ::dup2(null, 0);
        ::dup2(null, 1);
      }
      ::setenv("XDG_RUNTIME_DIR", runtime_dir.c_str(), 1);
      ::execl(binary.c_str(), binary.c_str(), "run", "-c", config.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~VigilProcess() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
    }
  }
  VigilProcess(const VigilProcess&) = delete;
  VigilProcess& operator=(const VigilProcess&) = delete;

  pid_t pid() const { return pid_; }
  long long start_ns() const { return start_ns_; }
  bool alive() {
    if (exited_) return false;
    int st;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      status_ = st;
      return false;
    }
    return true;
  }
  // SIGTERM, then wait up to `timeout_s`. Returns seconds to exit, or -1
  // (then it is SIGKILLed).
  double terminate(double timeout_s) {
    if (!alive()) return 0;
    long long t0 = now_ns();
    ::kill(pid_, SIGTERM);
    while (alive()) {
      if ((now_ns() - t0) / 1e9 > timeout_s) {
        ::kill(pid_, SIGKILL);
        int st;
        ::waitpid(pid_, &st, 0);
        exited_ = true;
        status_ = st;
        return -1;
      }
      sleep_ms(1);
    }
    return (now_ns() - t0) / 1e9;
  }
  int exit_code() const { return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_); }

 private:
  pid_t pid_ = -1;
  long long start_ns_ = 0;
  bool exited_ = false;
  int status_ = 0;
};

// One run of the vigil CLI (`binary ARGS...`), stdout to `out`, stderr
// appended to `err`: its exit code, wall ms from fork to reaped, and its
// own CPU ms (user + system, from wait4).
struct CliRun {
  int exit_code = 0;
  double wall_ms = 0, cpu_ms = 0;
};

inline CliRun run_cli(const std::string& binary, const std::vector<std::string>& args, const std::string& out,
                      const std::string& err) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const long long t0 = now_ns();
  pid_t pid = ::fork();
  if (pid < 0) throw Broken("fork failed");
  if (pid == 0) {
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (o >= 0) ::dup2(o, 1);
    if (e >= 0) ::dup2(e, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int st;
  rusage ru{};
  ::wait4(pid, &st, 0, &ru);
  CliRun r;
  r.wall_ms = (now_ns() - t0) / 1e6;
  r.cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

// A first port of `count` consecutive ports that all bind on 127.0.0.1
// (SO_REUSEADDR, as the children bind), below the ephemeral range so that
// no client connection of the run can take one of them.
inline int find_port_base(int count) {
  int low = 32768, high = 60999;
  std::istringstream(read_file("/proc/sys/net/ipv4/ip_local_port_range")) >> low >> high;
  const int lowest = 10000, highest = std::min(low, 65536) - count;
  if (highest < lowest) throw Broken("the ephemeral port range starts too low for a port_base");
  // Where to start depends on the pid, so that two runs at once rarely try
  // the same range first.
  const int span = (highest - lowest) / 1000 + 1;
  for (int k = 0; k < span; ++k) {
    const int base = lowest + static_cast<int>((::getpid() + k) % span) * 1000;
    std::vector<vigil::UniqueFd> held;
    bool ok = true;
    for (int p = base; p < base + count && ok; ++p) {
      vigil::UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      int one = 1;
      ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<std::uint16_t>(p));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ok = s && ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      held.push_back(std::move(s));
    }
    if (ok) return base;
  }
  throw Broken("no " + std::to_string(count) + " free consecutive ports between " + std::to_string(lowest) +
               " and " + std::to_string(low) + " (where the ephemeral range starts)");
}

// Fields `first` and `first` + 1 of /proc/PID/stat (clock ticks), summed,
// in seconds; -1 when unreadable.
inline double stat_seconds(pid_t pid, int first) {
  const std::string s = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = s.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  unsigned long long sum = 0;
  // After ")": state is field 3, ppid 4, ...
  for (int i = 3; i <= first + 1 && in >> field; ++i)
    if (i >= first) sum += std::stoull(field);
  return static_cast<double>(sum) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15).
inline double cpu_seconds(pid_t pid) { return stat_seconds(pid, 14); }

// cutime + cstime (fields 16 and 17): the CPU of the children it has
// reaped, over their whole lives.
inline double reaped_children_cpu_seconds(pid_t pid) { return stat_seconds(pid, 16); }

// Field `index` (0: time on a CPU, 1: time runnable but waiting for one)
// of /proc/PID/schedstat, in seconds, to the nanosecond; NAN without
// schedstat.
inline double schedstat_s(pid_t pid, int index) {
  std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/schedstat"));
  double ns[2] = {0, 0};
  if (!(in >> ns[0] >> ns[1])) return NAN;
  return ns[index] / 1e9;
}

// Time a process has run on a CPU (utime and stime come in clock ticks,
// and a process that ran 4 ms reads 0 there).
inline double on_cpu_s(pid_t pid) { return schedstat_s(pid, 0); }

// Time a process spent runnable but waiting for a CPU: what a loaded
// machine adds to any latency, apart from the process's own work.
inline double runqueue_wait_s(pid_t pid) { return schedstat_s(pid, 1); }

// A "Key:   N kB" line of /proc/PID/status, in KiB; -1 if absent.
inline long status_kib(pid_t pid, const char* key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  std::string want = std::string(key) + ":";
  while (std::getline(f, line))
    if (line.rfind(want, 0) == 0) return std::atol(line.c_str() + want.size());
  return -1;
}

inline std::size_t open_fds(pid_t pid) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

// Live children of `pid` (the kernel's list; one read, no /proc scan).
inline std::size_t child_count(pid_t pid) {
  std::string s = read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  std::size_t n = 0;
  bool in_word = false;
  for (char c : s) {
    bool digit = c >= '0' && c <= '9';
    if (digit && !in_word) ++n;
    in_word = digit;
  }
  return n;
}

// Nearest-rank percentile of an unsorted copy; p in [0, 100].
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  double rank = p / 100.0 * static_cast<double>(v.size() - 1);
  auto lo = static_cast<std::size_t>(std::floor(rank));
  auto hi = static_cast<std::size_t>(std::ceil(rank));
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}
inline double median(const std::vector<double>& v) { return percentile(v, 50); }

// One row of the summary table: appended to $BENCH_RESULTS (if set) as
// "figure<TAB>value<TAB>target<TAB>met" and printed.
inline void result(const std::string& figure, const std::string& value, const std::string& target,
                   bool met) {
  std::printf("  => %-44s %-22s target %-12s %s\n", figure.c_str(), value.c_str(), target.c_str(),
              target == "-" ? "" : met ? "ok" : "MISSED");
  if (const char* path = std::getenv("BENCH_RESULTS")) {
    std::ofstream f(path, std::ios::app);
    f << figure << '\t' << value << '\t' << target << '\t' << (target == "-" ? "" : met ? "ok" : "MISSED")
      << '\n';
  }
  std::fflush(stdout);
}

inline std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// Simple --name value options.
inline long option(int argc, char** argv, const char* name, long def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atol(argv[i + 1]);
  return def;
}

// The non-empty lines of vigil's own log, for a diagnosis when a run breaks.
inline std::string tail_of(const std::filesystem::path& p, std::size_t max_lines = 5) {
  std::string s = read_file(p);
  std::vector<std::string> lines;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l))
    if (!l.empty()) lines.push_back(l);
  std::string out;
  for (std::size_t i = lines.size() > max_lines ? lines.size() - max_lines : 0; i < lines.size(); ++i)
    out += "    " + lines[i] + "\n";
  return out;
}

// Runs fn in a fresh fork of this process (so one in-process run's heap
// and address space do not slow the next) and returns the string it
// returned; a throw or a crash there is Broken here.
template <class Fn>
std::string in_fork(Fn fn) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) throw Broken("pipe2 failed");
  std::fflush(stdout);
  pid_t pid = ::fork();
  if (pid < 0) throw Broken("fork failed");
  if (pid == 0) {
    ::close(p[0]);
    std::string msg;
    try {
      msg = "OK " + fn();
    } catch (const std::exception& e) {
      msg = std::string("ERR ") + e.what();
    }
    std::fflush(stdout);
    (void)!::write(p[1], msg.data(), msg.size());
    ::_exit(0);
  }
  ::close(p[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) msg.append(buf, static_cast<std::size_t>(n));
  ::close(p[0]);
  int st;
  ::waitpid(pid, &st, 0);
  if (msg.rfind("OK ", 0) != 0) throw Broken(msg.empty() ? "in-process run died" : msg.substr(4));
  return msg.substr(3);
}

// Where benchmarks put log files and sockets: $BENCH_TMPDIR, else /dev/shm
// when writable (file creation on a disk slows after thousands of deletes
// and would be measured instead of vigil), else /tmp. Exported, so every
// helper of the run agrees.
inline std::string prefer_tmpfs() {
  const char* env = std::getenv("BENCH_TMPDIR");
  std::string tmp = env && *env ? env : ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  ::setenv("BENCH_TMPDIR", tmp.c_str(), 1);
  return tmp;
}

}  // namespace bench
