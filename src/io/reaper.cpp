// waitpid(-1, WNOHANG) until nothing is left, a pid -> owner map, and the
// /proc lookups that find re-parented descendants.
#include "reaper.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <spdlog/spdlog.h>

#include "fd.h"

namespace vigil {

std::vector<pid_t> child_pids(pid_t parent) {
  std::vector<pid_t> out;
  // The kernel's own list (CONFIG_PROC_CHILDREN) costs one read; it covers
  // the children of the thread named, and vigil is single-threaded.
  {
    std::string path = "/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) + "/children";
    std::ifstream f(path);
    if (f) {
      pid_t pid;
      while (f >> pid) out.push_back(pid);
      return out;
    }
  }
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  char path[300];
  char buf[512];
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (!fd) continue;
    ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
    if (n <= 0) continue;
    buf[n] = '\0';
    // "pid (comm) S ppid ...": comm may hold spaces and parens; the last ')' ends it.
    char* close = std::strrchr(buf, ')');
    if (!close) continue;
    char state;
    int ppid;
    if (std::sscanf(close + 1, " %c %d", &state, &ppid) != 2) continue;
    if (ppid == parent && state != 'Z') out.push_back(static_cast<pid_t>(std::atoi(e->d_name)));
  }
  ::closedir(d);
  return out;
}

bool process_belongs_to(pid_t pid, const std::string& program, int index) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  if (!f) return false;
  std::string want_p = "VIGIL_PROGRAM=" + program;
  std::string want_i = "VIGIL_INSTANCE=" + std::to_string(index);
  bool p = false, i = false;
  std::string kv;
  while (std::getline(f, kv, '\0')) {
    if (kv == want_p) p = true;
    if (kv == want_i) i = true;
  }
  return p && i;
}

std::optional<std::string> process_variable(pid_t pid, std::string_view name) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  if (!f) return std::nullopt;
  const std::string prefix = std::string(name) + "=";
  std::string kv;
  while (std::getline(f, kv, '\0'))
    if (kv.compare(0, prefix.size(), prefix) == 0) return kv.substr(prefix.size());
  return std::nullopt;
}

Reaper::Reaper(EventLoop& loop) : sigchld_(loop, SIGCHLD, [this] { reap(); }) {}

void Reaper::track(pid_t pid, OnExit on_exit) {
  owners_[pid] = std::move(on_exit);
  strays_valid_ = false;
}

void Reaper::untrack(pid_t pid) {
  owners_.erase(pid);
  strays_valid_ = false;
}

void Reaper::reap() {
  strays_valid_ = false;
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    auto it = owners_.find(pid);
    if (it == owners_.end()) {
      spdlog::debug("reaped process {} (no owner: a descendant that left its group)", pid);
      continue;
    }
    OnExit on_exit = std::move(it->second);
    owners_.erase(it);
    strays_valid_ = false;
    if (on_exit) on_exit(status);
  }
  if (after_reap_) after_reap_();
}

const std::vector<pid_t>& Reaper::strays() {
  if (!strays_valid_) {
    strays_.clear();
    for (pid_t pid : child_pids(::getpid()))
      if (!owners_.count(pid)) strays_.push_back(pid);
    strays_valid_ = true;
  }
  return strays_;
}

}  // namespace vigil
