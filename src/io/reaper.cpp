// waitpid(-1, WNOHANG) until nothing is left, a pid -> owner map, and the
// /proc lookups that find re-parented descendants.
#include "reaper.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <spdlog/spdlog.h>

#include "fd.h"
#include "lifeline.h"
#include "proc_stat_parse.h"
#include "real_clock.h"
#include "time_slice.h"

namespace vigil {

namespace {

std::vector<pid_t> all_child_pids(pid_t parent) {
  std::vector<pid_t> out;
  // The kernel's own list (CONFIG_PROC_CHILDREN) costs one read; it covers
  // the children of the thread named, and vigil is single-threaded.
  {
    const std::string path =
        "/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) + "/children";
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd) {
      std::string text;
      char buf[16384];
      ssize_t n;
      while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
      if (n == 0) {
        parse_pid_list(text, out);
        return out;
      }
      out.clear();
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

}  // namespace

std::vector<pid_t> child_pids(pid_t parent) {
  std::vector<pid_t> out = all_child_pids(parent);
  // vigil's own lifeline is started so that it is no child of vigil's, but
  // as PID 1 of a pid namespace (a container) every orphan is re-parented to
  // vigil, the lifeline included: it is not a leftover of any program.
  if (parent == ::getpid())
    if (const Lifeline* lifeline = Lifeline::current()) std::erase(out, lifeline->pid());
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

Reaper::Reaper(EventLoop& loop)
    : refresh_timer_(loop, [this] { refresh(); }),
      more_timer_(loop, [this] { reap(); }),
      sigchld_(loop, SIGCHLD, [this] { reap(); }, SignalEvent::Deliveries::coalesced) {}

void Reaper::track(pid_t pid, OnExit on_exit) { owners_[pid] = std::move(on_exit); }

void Reaper::untrack(pid_t pid) { owners_.erase(pid); }

Reaper::WatchId Reaper::watch(std::function<void()> fn) {
  const WatchId id = next_watch_++;
  watchers_.emplace(id, std::move(fn));
  return id;
}

void Reaper::unwatch(WatchId id) { watchers_.erase(id); }

void Reaper::reap() {
  bool reaped = false;
  for (TimeSlice slice(RealClock::get());;) {
    if (slice.spent()) {
      // A timer, not defer: what came in meanwhile (a client) goes first.
      more_timer_.arm(Duration{0});
      break;
    }
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    reaped = true;
    auto it = owners_.find(pid);
    if (it == owners_.end()) {
      forget_stray(pid);
      spdlog::debug("reaped process {} (no owner: a descendant that left its group)", pid);
      continue;
    }
    OnExit on_exit = std::move(it->second);
    owners_.erase(it);
    if (on_exit) on_exit(status);
  }
  if (!reaped) return;
  // A process that ended may have left children, re-parented to vigil.
  strays_stale_ = true;
  // The ids first: a watcher may remove itself or another.
  std::vector<WatchId> ids;
  ids.reserve(watchers_.size());
  for (const auto& [id, fn] : watchers_) ids.push_back(id);
  for (WatchId id : ids) {
    auto it = watchers_.find(id);
    if (it == watchers_.end()) continue;
    auto fn = it->second;  // a copy: the watcher may unwatch itself
    fn();
  }
  if (after_reap_) after_reap_();
}

std::vector<pid_t> Reaper::strays_of(const std::string& program, int index) const {
  auto it = strays_by_owner_.find({program, index});
  if (it == strays_by_owner_.end()) return {};
  return it->second;
}

void Reaper::forget_stray(pid_t pid) {
  auto it = strays_.find(pid);
  if (it == strays_.end()) return;
  auto owner = strays_by_owner_.find({it->second.program, it->second.index});
  if (owner != strays_by_owner_.end()) {
    std::erase(owner->second, pid);
    if (owner->second.empty()) strays_by_owner_.erase(owner);
  }
  strays_.erase(it);
}

void Reaper::refresh() {
  refresh_timer_.cancel();
  strays_stale_ = false;
  last_refresh_ = std::chrono::steady_clock::now();
  const std::vector<pid_t> children = child_pids(::getpid());
  refresh_gap_ = paced_gap(kStrayRefresh, std::chrono::steady_clock::now() - last_refresh_, kStrayRefreshMax);
  for (pid_t pid : children) {
    if (owners_.count(pid) || strays_.count(pid)) continue;
    // Read once per pid: who it belongs to does not change.
    StrayOwner owner;
    if (auto program = process_variable(pid, "VIGIL_PROGRAM")) {
      if (auto index = process_variable(pid, "VIGIL_INSTANCE")) {
        char* end = nullptr;
        const long n = std::strtol(index->c_str(), &end, 10);
        if (!index->empty() && *end == '\0' && n >= 0 && n <= INT32_MAX) {
          owner.program = std::move(*program);
          owner.index = static_cast<int>(n);
        }
      }
    }
    if (owner.index >= 0) strays_by_owner_[{owner.program, owner.index}].push_back(pid);
    strays_.emplace(pid, std::move(owner));
  }
  auto waiters = std::move(refresh_waiters_);
  refresh_waiters_.clear();
  for (auto& w : waiters) w();
}

void Reaper::refresh_if_stale() {
  if (!strays_stale_ && looked_lately()) return;
  refresh();
}

void Reaper::refresh_unless_recent() {
  if (looked_lately()) return;
  refresh();
}

void Reaper::refresh_then(std::function<void()> fn) {
  refresh_waiters_.push_back(std::move(fn));
  if (refresh_timer_.armed()) return;
  // A timer, not at once: the callers are inside a reap, and the exits
  // still to come in this burst should be seen by the same read.
  const auto since = std::chrono::steady_clock::now() - last_refresh_;
  const auto wait = since >= refresh_gap_ ? Duration{0} : std::chrono::ceil<Duration>(refresh_gap_ - since);
  refresh_timer_.arm(wait);
}

}  // namespace vigil
