// Child start and exec with the checklist: signals blocked around the start,
// dispositions reset and mask restored in the child, setsid, credentials,
// PDEATHSIG then a getppid() check, fds 0-2, the listening sockets and the
// heartbeat pipe placed and every other fd closed, chdir, execve. Between start and exec the child only makes
// async-signal-safe calls and never allocates: everything it needs is
// prepared before.
#include "spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <linux/close_range.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "fd.h"
#include "shell_exec.h"

namespace vigil {

namespace {

// What the child reports through the error pipe when a step fails.
struct ChildFailure {
  int step;
  int error;
};

enum Step : int { kStepDevNull, kStepSetsid, kStepSetgroups, kStepSetgid, kStepSetuid,
                  kStepPdeathsig, kStepDup, kStepChdir, kStepExec };

const char* step_name(int step) {
  switch (step) {
    case kStepDevNull: return "open /dev/null";
    case kStepSetsid: return "setsid";
    case kStepSetgroups: return "setgroups";
    case kStepSetgid: return "setgid";
    case kStepSetuid: return "setuid";
    case kStepPdeathsig: return "set the parent-death signal";
    case kStepDup: return "set up fds";
    case kStepChdir: return "chdir";
    case kStepExec: return "execute";
  }
  return "start";
}

// The child's fds pass through slots low in vigil's fd table, so that the
// child's copy of the table can stop there: close_range(CLOSE_RANGE_UNSHARE)
// copies only the fds below its range. Copying vigil's thousands of fds (a
// few per instance), and exec closing them again, cost more than all the
// rest of a spawn. Between spawns the slots hold /dev/null.
struct Slots {
  int null_fd = -1;
  int fd[5] = {-1, -1, -1, -1, -1};  // stdin, stdout, stderr, heartbeat, error pipe
  std::vector<int> listen;           // the listening sockets, in LISTEN_FDS order
  int end = 0;                       // one past the highest
  // close_range(CLOSE_RANGE_UNSHARE) works here (Linux 5.9, and no seccomp
  // profile refusing it): children start sharing vigil's table. Otherwise
  // each gets a copy of it, as from fork.
  bool share_table = false;
};

Slots& slots() {
  static Slots s;
  return s;
}

// What the child needs, prepared by the parent: between the start of the
// child and its exec nothing is allocated.
struct ChildArgs {
  const char* exe = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr;          // null: stay
  const SpawnCredentials* cred = nullptr;
  const int* fds = nullptr;           // become 0..nfds-1; -1 (0-2 only): /dev/null
  int nfds = 0;                       // 3, then the listening sockets, then the heartbeat
  int* moved = nullptr;               // nfds entries of scratch for the child
  int move_above = 10;                // where fds wait before placing: above nfds
  int error_fd = -1;                  // CLOEXEC write end of the error pipe
  bool shared_table = false;          // started with CLONE_FILES
  int keep_below = 0;                 // the child's own fd table stops here (see Slots)
  int fd_limit = 0;                   // vigil's RLIMIT_NOFILE: no fd at or above it
  pid_t parent = 0;
  bool restore_nofile = false;
  rlimit nofile{};
  char* const* pid_digits = nullptr;  // where the child writes its own pid, each
  int pid_variables = 0;
  // Started with CLONE_VM | CLONE_VFORK: a failed step is written here, in
  // vigil's memory, which vigil reads once the child has exited (as
  // posix_spawn does); no error pipe to make and close at every start.
  // Null when forked: the error pipe (error_fd) carries it.
  ChildFailure* failure = nullptr;
};

[[noreturn]] void child_fail(const ChildArgs& a, int error_fd, int step) {
  if (a.failure) {
    *a.failure = ChildFailure{step, errno};
    ::_exit(127);
  }
  ChildFailure f{step, errno};
  ssize_t n;
  do n = ::write(error_fd, &f, sizeof f);
  while (n < 0 && errno == EINTR);
  ::_exit(127);
}

// The child, from its start to execve. With CLONE_VM it runs in vigil's
// memory, on a stack of its own, while vigil waits: it writes nothing of
// vigil's but the pid digits, the `moved` scratch and errno, and changes
// credentials with raw
// syscalls, as posix_spawn does: glibc's setuid() in a process that ever had
// a second thread walks the thread list, vigil's here, marking entries and
// taking its lock.
int child_main(void* arg) {
  const ChildArgs& a = *static_cast<const ChildArgs*>(arg);
  // A table of its own, of vigil's fds below keep_below only: started with
  // CLONE_FILES, the child shares vigil's until here.
  if (a.shared_table &&
      ::close_range(static_cast<unsigned>(a.keep_below), ~0U, CLOSE_RANGE_UNSHARE) != 0)
    child_fail(a, a.error_fd, kStepDup);
  // Reset every disposition before unblocking, so no handler of vigil's
  // (libevent's signal pipe writer) ever runs here.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
  const int efd = a.error_fd;

  if (::setsid() < 0) child_fail(a, efd, kStepSetsid);
  if (a.cred) {
    if (::syscall(SYS_setgroups, a.cred->groups.size(), a.cred->groups.data()) < 0)
      child_fail(a, efd, kStepSetgroups);
    if (::syscall(SYS_setgid, a.cred->gid) < 0) child_fail(a, efd, kStepSetgid);
    if (::syscall(SYS_setuid, a.cred->uid) < 0) child_fail(a, efd, kStepSetuid);
  }
  // After the change of user (which clears it), then check the parent did
  // not die before the signal was armed.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) child_fail(a, efd, kStepPdeathsig);
  if (::getppid() != a.parent) ::_exit(127);

  // Move every source fd above the last target first so that placing one
  // cannot clobber another, then dup2 into 0..nfds-1 (dup2 clears CLOEXEC
  // on the copy).
  int* src = a.moved;
  for (int i = 0; i < a.nfds; ++i) {
    int from = a.fds[i];
    if (from < 0) {
      from = ::open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY);
      if (from < 0) child_fail(a, efd, kStepDevNull);
    }
    src[i] = ::fcntl(from, F_DUPFD_CLOEXEC, a.move_above);
    if (src[i] < 0) child_fail(a, efd, kStepDup);
  }
  // The error pipe (forked children only) moves above the fds placed.
  int err_high = -1;
  if (efd >= 0 && (err_high = ::fcntl(efd, F_DUPFD_CLOEXEC, a.move_above)) < 0)
    child_fail(a, efd, kStepDup);
  for (int i = 0; i < a.nfds; ++i) {
    if (::dup2(src[i], i) < 0) child_fail(a, err_high, kStepDup);
  }
  // Exactly 0..nfds-1 survive exec: close everything above except the error
  // pipe, which is CLOEXEC and closes itself on success.
  // Marking them close-on-exec is one pass over the fd table; exec then
  // closes them once (closing here and again at exec doubled the cost
  // for a vigil holding thousands of fds). Closed here before Linux 5.11,
  // one by one before 5.9 (or under a seccomp profile that refuses
  // close_range).
  const int first_closed = a.nfds;
  if (::close_range(first_closed, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    auto close_from = [&](int lo, int hi) {
      if (lo > hi) return;
      if (::close_range(static_cast<unsigned>(lo), static_cast<unsigned>(hi), 0) == 0) return;
      for (int fd = lo; fd <= hi; ++fd) ::close(fd);
    };
    if (err_high < 0) {
      close_from(first_closed, a.fd_limit - 1);
    } else {
      close_from(first_closed, err_high - 1);
      close_from(err_high + 1, a.fd_limit - 1);
    }
  }

  if (a.restore_nofile) ::setrlimit(RLIMIT_NOFILE, &a.nofile);
  if (a.cwd && ::chdir(a.cwd) < 0) child_fail(a, err_high, kStepChdir);
  if (a.pid_variables > 0) {
    char digits[20];
    int n = 0;
    for (unsigned long v = static_cast<unsigned long>(::getpid()); v; v /= 10)
      digits[n++] = static_cast<char>('0' + v % 10);
    for (int k = 0; k < a.pid_variables; ++k) {
      char* out = a.pid_digits[k];
      for (int i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
      out[n] = '\0';
    }
  }
  ::execve(a.exe, a.argv, a.envp);
  child_fail(a, err_high, kStepExec);
}

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer keeps its own account of the stack it runs on; a child
// on a borrowed one, in vigil's memory, would confuse it. Sanitized builds
// fork: slower, same child.
pid_t start_child(ChildArgs& args) {
  args.shared_table = false;
  const pid_t pid = ::fork();
  if (pid == 0) child_main(&args);
  return pid;
}

bool starts_in_shared_memory() { return false; }

bool child_can_unshare_fd_table() { return false; }
#else
// The children's stack. Far more than they need; the page below it faults
// rather than let an overflow write over vigil's memory. Reused: one child
// at a time runs on it, and never after its exec.
char* child_stack_top() {
  constexpr std::size_t kGuard = 4096;
  constexpr std::size_t kStackSize = 64 * 1024;
  static char* top = []() -> char* {
    void* p = ::mmap(nullptr, kGuard + kStackSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    if (::mprotect(p, kGuard, PROT_NONE) != 0) {
      ::munmap(p, kGuard + kStackSize);
      return nullptr;
    }
    return static_cast<char*>(p) + kGuard + kStackSize;
  }();
  return top;
}

// clone(CLONE_VM | CLONE_VFORK), as posix_spawn does: no copy of vigil's
// page tables to make (fork's cost grows with vigil's memory) and none for
// exec to tear down; vigil sleeps until the child has exec'd or exited,
// which it waited for anyway. CLONE_FILES too when the child can make its
// own, short, copy of the fd table.
bool starts_in_shared_memory() { return child_stack_top() != nullptr; }

pid_t start_child(ChildArgs& args) {
  char* stack = child_stack_top();
  if (!stack) {
    args.shared_table = false;
    const pid_t pid = ::fork();
    if (pid == 0) child_main(&args);
    return pid;
  }
  return ::clone(&child_main, stack,
                 CLONE_VM | CLONE_VFORK | SIGCHLD | (args.shared_table ? CLONE_FILES : 0), &args);
}

int probe_main(void* ok) {
  *static_cast<bool*>(ok) = ::close_range(~0U, ~0U, CLOSE_RANGE_UNSHARE) == 0;
  ::_exit(0);
}

// Asked of a child, which may unshare its table without harm: in vigil
// itself the call would split its table from any thread's.
bool child_can_unshare_fd_table() {
  char* stack = child_stack_top();
  if (!stack) return false;
  bool ok = false;
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = ::clone(&probe_main, stack, CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &ok);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return false;
  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return ok;
}
#endif

}  // namespace

// PATH lookup done in the parent (no allocation is allowed after fork).
std::string resolve_executable(const std::string& name, const std::vector<std::string>& env,
                               const std::filesystem::path& cwd) {
  if (name.find('/') != std::string::npos) {
    std::filesystem::path p(name);
    return p.is_absolute() ? name : (cwd / p).string();
  }
  std::string path = "/usr/local/bin:/usr/bin:/bin";
  bool from_env = false;
  for (const auto& kv : env) {
    if (kv.rfind("PATH=", 0) == 0) {
      path = kv.substr(5);
      from_env = true;
      break;
    }
  }
  if (!from_env)
    if (const char* p = ::getenv("PATH")) path = p;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::filesystem::path candidate = std::filesystem::path(dir) / name;
    if (candidate.is_relative()) candidate = cwd / candidate;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0)
      return candidate.string();
    start = end + 1;
  }
  return name;  // execve fails with ENOENT, reported as "cannot execute"
}


namespace {

// Another slot, at the lowest fd free (see Slots).
int take_slot(Slots& s) {
  const int fd = ::fcntl(s.null_fd, F_DUPFD_CLOEXEC, 3);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "fcntl(F_DUPFD_CLOEXEC)");
  s.end = std::max(s.end, fd + 1);
  return fd;
}

void take_slots() {
  Slots& s = slots();
  if (s.null_fd >= 0) return;
  const int raw = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (raw < 0) throw std::system_error(errno, std::generic_category(), "open /dev/null");
  // Not 0-2, even when vigil was started with one of them closed.
  UniqueFd null_fd(::fcntl(raw, F_DUPFD_CLOEXEC, 3));
  const int err = errno;
  ::close(raw);
  if (!null_fd) throw std::system_error(err, std::generic_category(), "fcntl(F_DUPFD_CLOEXEC)");
  UniqueFd taken[5];
  for (auto& slot : taken) {
    slot = UniqueFd(::fcntl(null_fd.get(), F_DUPFD_CLOEXEC, 3));
    if (!slot) throw std::system_error(errno, std::generic_category(), "fcntl(F_DUPFD_CLOEXEC)");
  }
  s.end = null_fd.get() + 1;
  for (int i = 0; i < 5; ++i) {
    s.fd[i] = taken[i].release();
    s.end = std::max(s.end, s.fd[i] + 1);
  }
  s.null_fd = null_fd.release();
  s.share_table = child_can_unshare_fd_table();
}

}  // namespace

void prepare_spawning(std::size_t listen_slots) {
  take_slots();
  Slots& s = slots();
  if (s.listen.size() >= listen_slots) return;
  s.listen.reserve(listen_slots);
  while (s.listen.size() < listen_slots) s.listen.push_back(take_slot(s));
}

std::string SpawnError::message(const SpawnSpec& spec) const {
  std::string what;
  if (step == "execute")
    what = "cannot execute \"" + (spec.argv.empty() ? std::string() : spec.argv[0]) + "\"";
  else if (step == "chdir")
    what = "cannot change directory to \"" + spec.cwd.string() + "\"";
  else
    what = "cannot " + step;
  return what + ": " + std::strerror(error);
}

std::optional<SpawnCredentials> lookup_user(const std::string& name, std::string* error) {
  std::vector<char> buf(16384);
  passwd pw;
  passwd* result = nullptr;
  int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &result);
  if (rc != 0 || !result) {
    if (error) *error = "unknown user \"" + name + "\"" + (rc ? std::string(": ") + std::strerror(rc) : "");
    return std::nullopt;
  }
  SpawnCredentials c;
  c.uid = pw.pw_uid;
  c.gid = pw.pw_gid;
  int n = 64;
  std::vector<gid_t> groups(n);
  while (::getgrouplist(name.c_str(), pw.pw_gid, groups.data(), &n) < 0) groups.resize(n);
  groups.resize(n);
  c.groups = std::move(groups);
  return c;
}

SpawnResult spawn(const SpawnSpec& spec) {
  SpawnResult result;
  if (spec.argv.empty()) {
    result.error = SpawnError{"execute", ENOENT};
    return result;
  }

  // Everything the child touches is built now.
  std::string exe = resolve_executable(spec.argv[0], spec.env, spec.cwd);
  std::vector<char*> argv;
  argv.reserve(spec.argv.size() + 1);
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // A string command: when it is one simple command, the shell execs it,
  // so the program is the instance's process, not a child of /bin/sh that
  // no signal to the pid reaches and that outlives a killed vigil.
  std::string script;
  if (spec.argv.size() == 3 && spec.argv[0] == "/bin/sh" && spec.argv[1] == "-c") {
    script = exec_in_place(spec.argv[2]);
    argv[2] = script.data();
  }
  std::vector<char*> envp;
  envp.reserve(spec.env.size() + spec.pid_variables.size() + 1);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  // Room for the pid, written by the child itself (no allocation there).
  // Reserved first: the strings never move once pointed at.
  std::vector<std::string> pid_entries;
  std::vector<char*> pid_digits;
  pid_entries.reserve(spec.pid_variables.size());
  for (const auto& name : spec.pid_variables) {
    pid_entries.push_back(name + "=" + std::string(20, '\0'));
    pid_digits.push_back(pid_entries.back().data() + name.size() + 1);
    envp.push_back(pid_entries.back().data());
  }
  envp.push_back(nullptr);
  ChildArgs args;
  args.pid_digits = pid_digits.data();
  args.pid_variables = static_cast<int>(pid_digits.size());
  args.exe = exe.c_str();
  args.argv = argv.data();
  args.envp = envp.data();
  args.cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  args.cred = spec.credentials ? &*spec.credentials : nullptr;

  const std::size_t listening = spec.listen_fds.size();
  try {
    prepare_spawning(listening);
  } catch (const std::system_error& e) {
    result.error = SpawnError{"set up fds", e.code().value()};
    return result;
  }
  const Slots& slot = slots();
  // A forked child reports a failed step through a pipe; one started in
  // vigil's memory writes it there (ChildArgs::failure).
  const bool shared_memory = starts_in_shared_memory();
  ChildFailure failure{-1, 0};
  if (shared_memory) args.failure = &failure;
  // Out of fds here is a failed start like any other, not an exception
  // through the caller's start.
  Pipe errpipe;
  if (!shared_memory) {
    try {
      errpipe = make_pipe();
    } catch (const std::system_error& e) {
      result.error = SpawnError{"create the error pipe", e.code().value()};
      return result;
    }
  }
  const int sources[5] = {spec.stdin_fd, spec.stdout_fd, spec.stderr_fd, spec.heartbeat_fd,
                          errpipe.write.get()};
  // Whatever happens, the slots let go of the child's fds: a pipe whose
  // write end stayed in a slot would never read EOF, a socket would stay
  // open after its program let go of it.
  struct SlotsInUse {
    const Slots& slot;
    std::size_t listening;
    bool held = true;
    void release() {
      if (!std::exchange(held, false)) return;
      for (int fd : slot.fd) ::dup3(slot.null_fd, fd, O_CLOEXEC);
      for (std::size_t i = 0; i < listening; ++i) ::dup3(slot.null_fd, slot.listen[i], O_CLOEXEC);
    }
    ~SlotsInUse() { release(); }
  } in_use{slot, listening};
  // The child's layout: 0-2, the listening sockets, the heartbeat pipe.
  std::vector<int> child_fds{-1, -1, -1};
  child_fds.reserve(3 + listening + 1);
  for (int i = 0; i < 5; ++i) {
    if (sources[i] < 0) continue;
    if (::dup3(sources[i], slot.fd[i], O_CLOEXEC) < 0) {
      result.error = SpawnError{"set up fds", errno};
      return result;
    }
    if (i < 3) child_fds[i] = slot.fd[i];
  }
  for (std::size_t i = 0; i < listening; ++i) {
    if (::dup3(spec.listen_fds[i], slot.listen[i], O_CLOEXEC) < 0) {
      result.error = SpawnError{"set up fds", errno};
      return result;
    }
    child_fds.push_back(slot.listen[i]);
  }
  if (spec.heartbeat_fd >= 0) child_fds.push_back(slot.fd[3]);
  std::vector<int> moved(child_fds.size(), -1);
  args.fds = child_fds.data();
  args.nfds = static_cast<int>(child_fds.size());
  args.moved = moved.data();
  args.move_above = std::max(10, args.nfds);
  args.error_fd = shared_memory ? -1 : slot.fd[4];
  args.shared_table = slot.share_table;
  args.keep_below = slot.end;
  args.parent = ::getpid();
  rlimit limit{};
  const bool have_limit = ::getrlimit(RLIMIT_NOFILE, &limit) == 0;
  constexpr rlim_t kMostFds = 1 << 20;
  args.fd_limit = static_cast<int>(have_limit ? std::min(limit.rlim_cur, kMostFds) : kMostFds);
  args.restore_nofile = have_limit && original_fd_soft_limit() != RLIM_INFINITY;
  if (args.restore_nofile) {
    args.nofile = limit;
    args.nofile.rlim_cur = original_fd_soft_limit();
  }

  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = start_child(args);
  const int start_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  in_use.release();
  errpipe.write.reset();
  if (pid < 0) {
    result.error = SpawnError{"fork", start_errno};
    return result;
  }

  // CLONE_VFORK: vigil resumes once the child has exec'd or exited, so
  // `failure` is final. Forked: the write end closes at exec (CLOEXEC) or
  // carries the failed step.
  ChildFailure f = failure;
  bool failed = f.step >= 0;
  if (!shared_memory) {
    ssize_t n;
    do n = ::read(errpipe.read.get(), &f, sizeof f);
    while (n < 0 && errno == EINTR);
    failed = n == static_cast<ssize_t>(sizeof f);
  }
  if (failed) {
    // The child is exiting with 127: reap it here so the caller sees one
    // event, the failure, and the reaper never meets this pid.
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.error = SpawnError{step_name(f.step), f.error};
    return result;
  }
  result.pid = pid;
  return result;
}

}  // namespace vigil
