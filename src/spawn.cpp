// fork/exec with the checklist: signals blocked around fork, dispositions
// reset and mask restored in the child, setsid, credentials, PDEATHSIG then a
// getppid() check, fds 0-3 placed and every other fd closed, chdir, execve.
// Between fork and exec the child only makes async-signal-safe calls and
// never allocates: everything it needs is prepared before fork.
#include "spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fd.h"

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

[[noreturn]] void child_fail(int error_fd, int step) {
  ChildFailure f{step, errno};
  ssize_t n;
  do n = ::write(error_fd, &f, sizeof f);
  while (n < 0 && errno == EINTR);
  ::_exit(127);
}

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

}  // namespace

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
  std::vector<char*> envp;
  envp.reserve(spec.env.size() + 2);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  // Room for the pid, written by the child itself (no allocation there).
  std::string pid_entry;
  char* pid_digits = nullptr;
  if (!spec.pid_variable.empty()) {
    pid_entry = spec.pid_variable + "=" + std::string(20, '\0');
    pid_digits = pid_entry.data() + spec.pid_variable.size() + 1;
    envp.push_back(pid_entry.data());
  }
  envp.push_back(nullptr);
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  const SpawnCredentials* cred = spec.credentials ? &*spec.credentials : nullptr;

  Pipe errpipe = make_pipe();
  const pid_t parent = ::getpid();
  rlimit child_nofile{};
  const bool restore_nofile = original_fd_soft_limit() != RLIM_INFINITY &&
                              ::getrlimit(RLIMIT_NOFILE, &child_nofile) == 0;
  if (restore_nofile) child_nofile.rlim_cur = original_fd_soft_limit();

  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::fork();
  if (pid == 0) {
    // Child. Reset every disposition before unblocking, so no handler of
    // vigil's (libevent's signal pipe writer) ever runs here.
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig == SIGKILL || sig == SIGSTOP) continue;
      ::signal(sig, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
    const int efd = errpipe.write.get();

    if (::setsid() < 0) child_fail(efd, kStepSetsid);
    if (cred) {
      if (::setgroups(cred->groups.size(), cred->groups.data()) < 0) child_fail(efd, kStepSetgroups);
      if (::setgid(cred->gid) < 0) child_fail(efd, kStepSetgid);
      if (::setuid(cred->uid) < 0) child_fail(efd, kStepSetuid);
    }
    // After the change of user (which clears it), then check the parent did
    // not die before the signal was armed.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) child_fail(efd, kStepPdeathsig);
    if (::getppid() != parent) ::_exit(127);

    // Move every source fd above 3 first so that placing one cannot clobber
    // another, then dup2 into 0-3 (dup2 clears CLOEXEC on the copy).
    int src[4] = {spec.stdin_fd, spec.stdout_fd, spec.stderr_fd, spec.heartbeat_fd};
    for (int i = 0; i < 4; ++i) {
      if (src[i] < 0 && i < 3) {
        src[i] = ::open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY);
        if (src[i] < 0) child_fail(efd, kStepDevNull);
      }
      if (src[i] >= 0) {
        int moved = ::fcntl(src[i], F_DUPFD_CLOEXEC, 10);
        if (moved < 0) child_fail(efd, kStepDup);
        src[i] = moved;
      }
    }
    int err_high = ::fcntl(efd, F_DUPFD_CLOEXEC, 10);
    if (err_high < 0) child_fail(efd, kStepDup);
    for (int i = 0; i < 4; ++i) {
      if (src[i] >= 0 && ::dup2(src[i], i) < 0) child_fail(err_high, kStepDup);
    }
    // Exactly 0-3 survive exec: close everything from 4 up except the error
    // pipe, which is CLOEXEC and closes itself on success.
    // Marking them close-on-exec is one pass over the fd table; exec then
    // closes them once (closing here and again at exec doubled the cost
    // for a vigil holding thousands of fds). Plain close as a fallback.
    int first_closed = spec.heartbeat_fd >= 0 ? 4 : 3;
    if (::close_range(first_closed, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
      if (err_high > first_closed) ::close_range(first_closed, err_high - 1, 0);
      ::close_range(err_high + 1, ~0U, 0);
    }

    if (restore_nofile) ::setrlimit(RLIMIT_NOFILE, &child_nofile);
    if (cwd && ::chdir(cwd) < 0) child_fail(err_high, kStepChdir);
    if (pid_digits) {
      char digits[20];
      int n = 0;
      for (unsigned long v = static_cast<unsigned long>(::getpid()); v; v /= 10)
        digits[n++] = static_cast<char>('0' + v % 10);
      for (int i = 0; i < n; ++i) pid_digits[i] = digits[n - 1 - i];
      pid_digits[n] = '\0';
    }
    ::execve(exe.c_str(), argv.data(), envp.data());
    child_fail(err_high, kStepExec);
  }
  int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errpipe.write.reset();
  if (pid < 0) {
    result.error = SpawnError{"fork", fork_errno};
    return result;
  }

  ChildFailure f{};
  ssize_t n;
  do n = ::read(errpipe.read.get(), &f, sizeof f);
  while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof f)) {
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
