// The lifeline process (forked, never exec'd: a second fork site beside
// spawn's, for a process that runs no program), vigil's side of its pipe,
// and the /proc scans both use. Pipe protocol, one line each:
//   +PGID  a group to kill if vigil dies      -PGID  that group is gone
//   =      forget every group (a full list follows, after a full pipe)
//   bye    vigil is exiting cleanly: kill nothing at EOF
#include "lifeline.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <system_error>

#include <event2/event.h>
#include <spdlog/spdlog.h>

#include "proc_stat_parse.h"

namespace vigil {

namespace {

// Bounds: a line of the protocol; what waits for room in the pipe before
// it is replaced by the current set of groups; how long the lifeline keeps
// killing (processes that fork as they die) and vigil waits to say bye.
constexpr std::size_t kMaxLine = 32;
constexpr std::size_t kMaxPending = 64 * 1024;
constexpr auto kKillFor = std::chrono::seconds(2);
constexpr auto kByeWait = std::chrono::seconds(2);
constexpr std::size_t kMaxEnviron = 1 << 20;
constexpr std::size_t kNamesLogged = 20;

// Up to `cap` bytes of a /proc file; empty when unreadable (gone, not ours).
std::string read_proc(const char* path, std::size_t cap) {
  std::string out;
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  while (out.size() < cap) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

struct ProcInfo {
  pid_t pid = 0;
  char state = '?';
  pid_t pgrp = 0;
  pid_t session = 0;
  std::uint64_t start_ticks = 0;
  std::string comm;
};

std::optional<ProcInfo> proc_info(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const std::string text = read_proc(path, 4096);
  auto stat = parse_proc_stat(text);
  if (!stat) return std::nullopt;
  ProcInfo p;
  p.pid = pid;
  p.state = stat->state;
  p.pgrp = stat->pgrp;
  p.start_ticks = stat->starttime_ticks;
  const auto open = text.find('(');
  const auto close = text.rfind(')');
  if (open != std::string::npos && close != std::string::npos && close > open)
    p.comm = text.substr(open + 1, close - open - 1);
  // Field 6, after "state ppid pgrp".
  char state;
  int ppid, pgrp, session;
  if (close != std::string::npos &&
      std::sscanf(text.c_str() + close + 1, " %c %d %d %d", &state, &ppid, &pgrp, &session) == 4)
    p.session = session;
  return p;
}

// KEY=VALUE entries of /proc/PID/environ (the environment it started with).
std::vector<std::string_view> environ_entries(const std::string& raw) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start < raw.size()) {
    auto end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    out.emplace_back(raw.data() + start, end - start);
    start = end + 1;
  }
  return out;
}

std::string environ_of(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/environ", static_cast<int>(pid));
  return read_proc(path, kMaxEnviron);
}

std::string_view variable(const std::vector<std::string_view>& env, std::string_view name) {
  for (auto kv : env)
    if (kv.size() > name.size() && kv.substr(0, name.size()) == name && kv[name.size()] == '=')
      return kv.substr(name.size() + 1);
  return {};
}

// Calls fn(pid) for every numeric entry of /proc.
template <typename Fn>
void for_each_pid(Fn fn) {
  DIR* d = ::opendir("/proc");
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    int pid = 0;
    const char* end = e->d_name + std::strlen(e->d_name);
    if (std::from_chars(e->d_name, end, pid).ptr != end) continue;
    fn(static_cast<pid_t>(pid));
  }
  ::closedir(d);
}

bool dead(char state) { return state == 'Z' || state == 'X' || state == 'x'; }

void pause_briefly() {
  timespec ts{0, 10 * 1000 * 1000};
  ::nanosleep(&ts, nullptr);
}

std::string describe(const std::map<pid_t, std::string>& killed) {
  std::string text;
  std::size_t n = 0;
  for (const auto& [pid, comm] : killed) {
    if (n++ == kNamesLogged) {
      text += ", ...";
      break;
    }
    text += (text.empty() ? "" : ", ") + std::to_string(pid) + " (" + comm + ")";
  }
  return text;
}

// ---------------------------------------------------------------------------
// The lifeline process

// SIGKILLs, until none is left or kKillFor passed, every process in one of
// `groups` or marked with `marker`, and, for a marked one outside vigil's
// session, its process group (a setsid'd daemon's children).
std::map<pid_t, std::string> kill_everything(const std::set<pid_t>& groups,
                                             const std::string& marker, pid_t vigil_session) {
  std::map<pid_t, std::string> killed;
  const pid_t self = ::getpid();
  const auto deadline = std::chrono::steady_clock::now() + kKillFor;
  for (;;) {
    for (pid_t g : groups) ::kill(-g, SIGKILL);
    bool found = false;
    for_each_pid([&](pid_t pid) {
      if (pid == self) return;
      auto info = proc_info(pid);
      if (!info || dead(info->state)) return;
      bool mine = groups.count(info->pgrp) != 0;
      bool marked = false;
      if (!mine) {
        const std::string raw = environ_of(pid);
        for (auto kv : environ_entries(raw))
          if (kv.size() == kRunVariable.size() + 1 + marker.size() &&
              kv.substr(0, kRunVariable.size()) == kRunVariable && kv[kRunVariable.size()] == '=' &&
              kv.substr(kRunVariable.size() + 1) == marker)
            marked = true;
      }
      if (!mine && !marked) return;
      found = true;
      ::kill(pid, SIGKILL);
      if (marked && info->pgrp > 1 && info->session != vigil_session && info->session != self)
        ::kill(-info->pgrp, SIGKILL);
      killed.emplace(pid, info->comm);
    });
    if (!found || std::chrono::steady_clock::now() >= deadline) break;
    pause_briefly();
  }
  return killed;
}

[[noreturn]] void lifeline_main(int read_fd, int ready_fd, const std::string& marker,
                                pid_t vigil_pid, pid_t vigil_session) {
  ::setsid();  // no terminal's signals, no group signal meant for vigil
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
  // A terminal's Ctrl-C or hang-up, or a TERM meant for a process group,
  // is vigil's to act on: the lifeline waits for its pipe.
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) ::signal(sig, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::prctl(PR_SET_NAME, "vigil-lifeline");

  // Exactly: stdin on /dev/null, stdout and stderr as vigil's (its log),
  // the pipe at 3 and the ready pipe at 4 (until ready).
  const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in >= 0 && in != 0) {
    ::dup2(in, 0);
    ::close(in);
  }
  const int r = ::fcntl(read_fd, F_DUPFD_CLOEXEC, 5);
  const int w = ::fcntl(ready_fd, F_DUPFD_CLOEXEC, 5);
  if (r < 0 || w < 0 || ::dup2(r, 3) < 0 || ::dup2(w, 4) < 0) ::_exit(1);
  if (::close_range(5, ~0U, 0) != 0) {
    rlimit lim{};
    const int top = ::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < (1u << 20)
                        ? static_cast<int>(lim.rlim_cur)
                        : (1 << 20);
    for (int fd = 5; fd < top; ++fd) ::close(fd);
  }
  if (::chdir("/") != 0) {
  }
  const pid_t me = ::getpid();
  if (::write(4, &me, sizeof me) != static_cast<ssize_t>(sizeof me)) ::_exit(1);
  ::close(4);

  std::set<pid_t> groups;
  bool bye = false;
  std::string line;
  bool skipping = false;  // the rest of an over-long line
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(3, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      const char c = buf[i];
      if (c != '\n') {
        if (line.size() < kMaxLine)
          line += c;
        else
          skipping = true;
        continue;
      }
      if (!skipping) {
        if (line == "bye") {
          bye = true;
        } else if (line == "=") {
          groups.clear();
        } else if (line.size() > 1 && (line[0] == '+' || line[0] == '-')) {
          int pgid = 0;
          auto [end, ec] = std::from_chars(line.data() + 1, line.data() + line.size(), pgid);
          if (ec == std::errc() && end == line.data() + line.size() && pgid > 1) {
            if (line[0] == '+')
              groups.insert(pgid);
            else
              groups.erase(pgid);
          }
        }
      }
      line.clear();
      skipping = false;
    }
  }
  if (bye) ::_exit(0);
  const auto killed = kill_everything(groups, marker, vigil_session);
  // vigil's log format, on vigil's stderr.
  if (killed.empty())
    spdlog::warn("lifeline: vigil (pid {}) ended without a clean exit; nothing it started was left",
                 vigil_pid);
  else
    spdlog::warn("lifeline: vigil (pid {}) ended without a clean exit; killed {} process{} it started: {}",
                 vigil_pid, killed.size(), killed.size() == 1 ? "" : "es", describe(killed));
  spdlog::default_logger()->flush();
  ::_exit(0);
}

// ---------------------------------------------------------------------------
// Process-wide state for the instances' hooks.

std::string& marker_variable() {
  static std::string v;
  return v;
}

Lifeline*& current_lifeline() {
  static Lifeline* l = nullptr;
  return l;
}

}  // namespace

RunMarker this_vigil_marker(const std::filesystem::path& control_socket) {
  RunMarker m;
  m.key = run_key(control_socket.string());
  m.pid = ::getpid();
  if (auto self = proc_info(::getpid())) m.start_ticks = self->start_ticks;
  return m;
}

void set_run_marker(const RunMarker& marker) { marker_variable() = marker.variable(); }

const std::string& run_marker_variable() { return marker_variable(); }

std::unique_ptr<Lifeline> Lifeline::start(const RunMarker& marker) {
  Pipe pipe = make_pipe();
  Pipe ready = make_pipe();
  const std::string value = marker.value();
  const pid_t vigil_pid = ::getpid();
  const pid_t session = ::getsid(0);
  // Flushed now, or the lifeline's copy of vigil's buffered log would be
  // written again when it logs.
  spdlog::default_logger()->flush();
  std::fflush(nullptr);
  const pid_t middle = ::fork();
  if (middle < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (middle == 0) {
    // In between: its exit re-parents the lifeline away from vigil.
    const pid_t lifeline = ::fork();
    if (lifeline == 0) lifeline_main(pipe.read.get(), ready.write.get(), value, vigil_pid, session);
    ::_exit(lifeline < 0 ? 1 : 0);
  }
  int status;
  while (::waitpid(middle, &status, 0) < 0 && errno == EINTR) {
  }
  pipe.read.reset();
  ready.write.reset();
  pid_t lifeline = -1;
  ssize_t n;
  do n = ::read(ready.read.get(), &lifeline, sizeof lifeline);
  while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof lifeline))
    throw std::system_error(ECHILD, std::generic_category(), "the lifeline process did not start");
  set_nonblocking(pipe.write.get());
  return std::unique_ptr<Lifeline>(new Lifeline(std::move(pipe.write), lifeline));
}

std::unique_ptr<Lifeline> Lifeline::adopt(UniqueFd write_end, pid_t pid) {
  set_nonblocking(write_end.get());
  return std::unique_ptr<Lifeline>(new Lifeline(std::move(write_end), pid));
}

std::unique_ptr<Lifeline> Lifeline::find_inherited() {
  std::map<unsigned long, int> pipes;  // inode -> this process's inherited fd
  for (int fd : inherited_fds())
    if (unsigned long ino = pipe_inode("/proc/self/fd/" + std::to_string(fd))) pipes[ino] = fd;
  if (pipes.empty()) return nullptr;
  std::unique_ptr<Lifeline> found;
  for_each_pid([&](pid_t pid) {
    if (found) return;
    auto info = proc_info(pid);
    if (!info || info->comm != "vigil-lifeline" || dead(info->state)) return;
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      auto it = pipes.find(pipe_inode(dir + "/" + e->d_name));
      if (it == pipes.end()) continue;
      if (UniqueFd fd = take_inherited_fd(it->second)) found = adopt(std::move(fd), pid);
      break;
    }
    ::closedir(d);
  });
  return found;
}

Lifeline::Lifeline(UniqueFd write_end, pid_t pid) : fd_(std::move(write_end)), pid_(pid) {
  current_lifeline() = this;
}

Lifeline::~Lifeline() {
  if (current_lifeline() == this) current_lifeline() = nullptr;
  writable_.reset();
  if (broken_) return;
  pending_ += "bye\n";
  const auto deadline = std::chrono::steady_clock::now() + kByeWait;
  for (;;) {
    flush();
    if (pending_.empty() || broken_) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      spdlog::warn("lifeline (pid {}): no room in its pipe to say bye; it will kill what is left",
                   pid_);
      break;
    }
    pollfd p{fd_.get(), POLLOUT, 0};
    ::poll(&p, 1, static_cast<int>(left.count()));
  }
}

void Lifeline::attach(EventLoop& loop) {
  writable_ = std::make_unique<IoEvent>(loop, fd_.get(), EV_WRITE, [this](short) {
    flush();
    if (pending_.empty() && writable_) writable_->disable();
  });
}

void Lifeline::detach() { writable_.reset(); }

Lifeline* Lifeline::current() { return current_lifeline(); }

void Lifeline::watch_group(pid_t pgid) {
  if (pgid <= 1 || !groups_.insert(pgid).second) return;
  send("+" + std::to_string(pgid) + "\n");
}

void Lifeline::forget_group(pid_t pgid) {
  if (groups_.erase(pgid) == 0) return;
  send("-" + std::to_string(pgid) + "\n");
}

void Lifeline::send(const std::string& line) {
  if (broken_) return;
  if (pending_.size() + line.size() > kMaxPending) {
    // The lifeline reads no more for now (stopped?): what it must know is
    // the current set, not the history.
    pending_ = "=\n";
    for (pid_t g : groups_) pending_ += "+" + std::to_string(g) + "\n";
  } else {
    pending_ += line;
  }
  flush();
}

// Whole lines, at most PIPE_BUF bytes a write: such a write to a pipe is
// all or nothing, so the lifeline never sees half a line.
void Lifeline::flush() {
  while (!pending_.empty() && !broken_) {
    std::size_t len = std::min(pending_.size(), static_cast<std::size_t>(PIPE_BUF));
    len = pending_.rfind('\n', len - 1) + 1;
    const ssize_t n = ::write(fd_.get(), pending_.data(), len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (writable_ && !writable_->enabled()) writable_->enable();
      return;
    }
    if (n < 0) {
      broken_ = true;
      pending_.clear();
      spdlog::warn("lifeline (pid {}) is gone ({}): if vigil is killed, what it started may outlive it",
                   pid_, std::strerror(errno));
      return;
    }
    pending_.erase(0, static_cast<std::size_t>(n));
  }
}

void lifeline_watch_group(pid_t pgid) {
  if (Lifeline* l = Lifeline::current()) l->watch_group(pgid);
}

void lifeline_forget_group(pid_t pgid) {
  if (Lifeline* l = Lifeline::current()) l->forget_group(pgid);
}

// ---------------------------------------------------------------------------
// Survivors of an earlier vigil

std::vector<Survivor> kill_survivors(const RunMarker& self, std::chrono::milliseconds wait) {
  std::vector<Survivor> found;
  std::set<pid_t> seen;
  const pid_t me = ::getpid();
  const pid_t my_session = ::getsid(0);
  const pid_t my_group = ::getpgrp();
  std::map<long, bool> vigil_alive;  // by marker pid, for this call
  auto alive = [&](const RunMarker& m) {
    auto it = vigil_alive.find(m.pid);
    if (it != vigil_alive.end()) return it->second;
    auto info = proc_info(static_cast<pid_t>(m.pid));
    const bool yes = info && !dead(info->state) && info->start_ticks == m.start_ticks;
    vigil_alive[m.pid] = yes;
    return yes;
  };
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    bool any = false;
    for_each_pid([&](pid_t pid) {
      if (pid == me) return;
      auto info = proc_info(pid);
      if (!info || dead(info->state)) return;
      const std::string raw = environ_of(pid);
      const auto env = environ_entries(raw);
      std::optional<RunMarker> theirs;
      for (auto kv : env) {
        if (kv.size() <= kRunVariable.size() || kv.substr(0, kRunVariable.size()) != kRunVariable ||
            kv[kRunVariable.size()] != '=')
          continue;
        auto m = RunMarker::parse(kv.substr(kRunVariable.size() + 1));
        if (m && m->key == self.key && !m->same_vigil(self) && !alive(*m)) theirs = m;
      }
      if (!theirs) return;
      any = true;
      ::kill(pid, SIGKILL);
      if (info->pgrp > 1 && info->session != my_session && info->pgrp != my_group)
        ::kill(-info->pgrp, SIGKILL);
      if (!seen.insert(pid).second) return;
      Survivor s;
      s.pid = pid;
      s.vigil_pid = theirs->pid;
      s.name = info->comm;
      const auto program = variable(env, "VIGIL_PROGRAM");
      if (!program.empty()) {
        s.label = std::string(program);
        const auto index = variable(env, "VIGIL_INSTANCE");
        if (!index.empty()) s.label += "[" + std::string(index) + "]";
      }
      found.push_back(std::move(s));
    });
    if (!any || std::chrono::steady_clock::now() >= deadline) break;
    pause_briefly();
  }
  return found;
}

}  // namespace vigil
