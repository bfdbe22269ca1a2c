// Instance: events in, the machine's actions out, each carried out with
// processes, signals, timers, pipes and probes. Decisions live in
// core/instance_machine; what is here is how, never whether.
#include "instance.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <spdlog/spdlog.h>

#include "fd_budget.h"
#include "handover.h"
#include "lifeline.h"
#include "spawn.h"

namespace vigil {

namespace {

// Output pipes get a larger kernel buffer than the default 64 KiB so a
// chatty child blocks less often while vigil is busy elsewhere.
constexpr int kPipeBytes = 1 << 20;

// Buckets of vigil_probe_duration_seconds: loopback probes answer in
// milliseconds, a probe near its timeout in seconds.
constexpr double kProbeBuckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                    0.25,  0.5,    1,     2.5,  5,     10};

double unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

spdlog::level::level_enum spdlog_level(LogLevel l) {
  switch (l) {
    case LogLevel::debug: return spdlog::level::debug;
    case LogLevel::info: return spdlog::level::info;
    case LogLevel::warn: return spdlog::level::warn;
    case LogLevel::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

Instance::Instance(EventLoop& loop, InstanceHost& host, int index)
    : loop_(loop), host_(host), index_(index), machine_(host.config()) {
  if (host.config().probe) {
    probe_stats_.bucket_bounds.assign(std::begin(kProbeBuckets), std::end(kProbeBuckets));
    probe_stats_.bucket_counts.assign(std::size(kProbeBuckets), 0);
  }
}

Instance::~Instance() {
  unwatch_tree();
  if (pid_ > 0) {
    // Never leave a child behind: the owner is going away without a stop.
    signal_group(SIGKILL);
    host_.reaper().untrack(pid_);
  }
  lifeline_forget_group(pgid_);
}

std::string Instance::label() const {
  const auto& pc = host_.config();
  if (pc.instances > 1) return pc.name + "[" + std::to_string(index_) + "]";
  return pc.name;
}

std::optional<int> Instance::port() const {
  const auto& base = host_.config().port_base;
  if (!base) return std::nullopt;
  return *base + index_;
}

// ---------------------------------------------------------------------------
// Requests

void Instance::start(bool manual) {
  EventData d;
  d.manual = manual;
  dispatch(Event::start, d);
}

void Instance::stop(std::function<void()> done, bool last) {
  if (done) stop_waiters_.push_back(std::move(done));
  last_stop_ = last_stop_ || last;
  EventData d;
  d.leftovers = has_leftovers();
  dispatch(Event::stop, d);
}

void Instance::restart_manual() {
  EventData d;
  d.leftovers = has_leftovers();
  dispatch(Event::restart, d);
}

bool Instance::has_leftovers() {
  // Only where the machine would otherwise call the instance stopped at
  // once: with a main process, the stop reaches the strays anyway.
  if (machine_.has_process() || state() == State::stopping || state() == State::starting)
    return false;
  if (group_alive()) return true;
  host_.reaper().refresh_if_stale();
  return !host_.reaper().strays_of(host_.config().name, index_).empty();
}

void Instance::kill_now() {
  if (pid_ > 0 || group_alive()) signal_group(SIGKILL);
}

void Instance::apply_config() {
  dispatch(Event::settings_changed);
  const auto& pc = host_.config();
  // A memory_limit (or sample_interval) may have changed: read again soon,
  // and at the new pace from there.
  sample_schedule_.restart();
  if (!pc.probe) {
    probe_.reset();
  } else {
    if (probe_) probe_->update(*pc.probe, port());
    if (probe_stats_.bucket_bounds.empty()) {
      probe_stats_.bucket_bounds.assign(std::begin(kProbeBuckets), std::end(kProbeBuckets));
      probe_stats_.bucket_counts.assign(std::size(kProbeBuckets), 0);
    }
  }

  // Logs: same files get new size/keep/timestamp settings; another mode
  // (split/combined/off) means other files, used by the running pipes too.
  bool same_files = true;
  for (Stream st : {Stream::out, Stream::err}) {
    auto idx = static_cast<std::size_t>(st);
    auto path = host_.log_path(index_, st);
    if ((sinks_[idx] ? sinks_[idx]->options().path : std::string()) != path.native())
      same_files = false;
  }
  if (same_files) {
    for (Stream st : {Stream::out, Stream::err})
      if (auto& sink = sinks_[static_cast<std::size_t>(st)]) sink->update(log_options(st));
  } else {
    sinks_ = {};
    open_sinks();
  }
  // Every live pipe writes to the current sinks.
  for (auto& p : pipes_) p->set_sink(sinks_[static_cast<std::size_t>(p->stream())]);
}

void Instance::reopen_logs() {
  for (auto& s : sinks_)
    if (s) s->reopen();
}

// ---------------------------------------------------------------------------
// The machine

void Instance::dispatch(Event event, const EventData& data) {
  if (dispatching_) {
    pending_.emplace_back(event, data);
    return;
  }
  dispatching_ = true;
  handle(event, data);
  // By index, taken out before it is handled: handling may queue more.
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    auto [e, d] = std::move(pending_[i]);
    handle(e, d);
  }
  // Released, not cleared: a spawn queues its answer here once, and
  // thousands of idle instances need not each keep the room.
  pending_ = {};
  dispatching_ = false;
}

void Instance::handle(Event event, const EventData& data) {
  Actions actions;  // no allocation for the many events that return none
  machine_.on(event, data, host_.clock().steady(), actions);
  for (const Action& a : actions) execute(a);
}

void Instance::execute(const Action& a) {
  switch (a.kind) {
    case Action::Kind::state:
      spdlog::debug("program {}: {} -> {}", label(), to_string(a.from), to_string(a.to));
      if (a.from == State::stopping) {
        unwatch_tree();
        strays_.clear();
      }
      host_.on_state_change(*this, a.from, a.to);
      break;
    case Action::Kind::spawn:
      spawn_process();
      break;
    case Action::Kind::signal:
      signal_all(a.signal);
      break;
    case Action::Kind::kill_leftovers:
      if (group_alive()) signal_group(SIGKILL);
      lifeline_forget_group(pgid_);
      pgid_ = -1;
      break;
    case Action::Kind::check_tree:
      check_tree();
      break;
    case Action::Kind::arm:
      arm(a.timer, a.at);
      break;
    case Action::Kind::cancel:
      if (auto& timer = timers_[static_cast<std::size_t>(a.timer)]) timer->cancel();
      break;
    case Action::Kind::run_probe:
      run_probe();
      break;
    case Action::Kind::cancel_probe:
      if (probe_) probe_->cancel();
      break;
    case Action::Kind::stopped: {
      if (last_stop_)
        loop_.defer([this, alive = std::weak_ptr<bool>(alive_)] {
          if (alive.lock() && state() == State::stopped) let_go_of_fds();
        });
      auto waiters = std::move(stop_waiters_);
      stop_waiters_.clear();
      for (auto& w : waiters) w();
      break;
    }
    case Action::Kind::log:
      spdlog::log(spdlog_level(a.level), "program {}: {}", label(), a.text);
      break;
  }
}

void Instance::arm(TimerId t, SteadyTime at) {
  const auto wait = at - host_.clock().steady();
  // Made when first armed: most instances never arm most of them (a
  // probe, a heartbeat, a start_timeout), and each is a libevent event.
  auto& timer = timers_[static_cast<std::size_t>(t)];
  if (!timer) timer = std::make_unique<Timer>(loop_, [this, t] { on_timer(t); });
  // Round up: firing a hair early would only re-arm.
  timer->arm(std::chrono::ceil<Duration>(std::max(wait, decltype(wait)::zero())));
}

void Instance::on_timer(TimerId t) {
  if (t == TimerId::heartbeat) {
    // Heartbeats may be waiting unread: the loop runs expired timers before
    // reading fds after a stall (a burst of spawns, SIGSTOP, a slow disk),
    // and then every child would look hung. Read them first.
    if (heartbeat_) heartbeat_->drain();
    if (notify_) notify_->drain();
  }
  static constexpr Event kEvents[kTimerCount] = {Event::min_uptime, Event::start_timeout,
                                                 Event::heartbeat_due, Event::probe_due,
                                                 Event::backoff_due, Event::kill_due};
  dispatch(kEvents[static_cast<std::size_t>(t)]);
}

// ---------------------------------------------------------------------------
// Processes

void Instance::spawn_process() {
  if (adopting_ > 0) {
    // adopt_process: the process runs already; the machine learns of it as
    // of a start.
    EventData d;
    d.pid = std::exchange(adopting_, 0);
    dispatch(Event::spawned, d);
    return;
  }
  ++spawns_;
  std::string why;
  try {
    why = try_spawn();
  } catch (const std::exception& e) {
    // Whatever a start meets (out of fds or memory) is a failed start like
    // any other, throttled by the policy: never an exception out of the
    // loop, never an instance stuck in starting.
    why = std::string("cannot start: ") + e.what();
  }
  if (why.empty()) return;
  // A failed start holds no fds, so that instances failing for want of fds
  // do not take them from the rest.
  let_go_of_fds();
  EventData d;
  d.text = std::move(why);
  dispatch(Event::spawn_failed, d);
}

namespace {

// "Too many open files (EMFILE: vigil is at its limit of 1024 open files)":
// out of fds says which limit.
std::string fd_error_text(int error) {
  std::string text = std::strerror(error);
  if (error == EMFILE || error == ENFILE) {
    rlimit limit{};
    text += error == EMFILE ? " (EMFILE" : " (ENFILE: the system's limit";
    if (error == EMFILE && ::getrlimit(RLIMIT_NOFILE, &limit) == 0)
      text += ": vigil is at its limit of " + std::to_string(limit.rlim_cur) + " open files";
    text += ")";
  }
  return text;
}

std::string fd_error_text(const std::system_error& e) {
  // what() is "pipe2: Too many open files": keep the call, explain the error.
  std::string what = e.what();
  const std::string plain = std::strerror(e.code().value());
  if (what.size() >= plain.size() && what.compare(what.size() - plain.size(), plain.size(), plain) == 0)
    what.resize(what.size() - plain.size());
  else
    what += ": ";
  return what + fd_error_text(e.code().value());
}

}  // namespace

// One start: every fd it needs, then the process. Returns why it failed,
// empty when the process runs.
std::string Instance::try_spawn() {
  const auto& pc = host_.config();
  SpawnSpec spec;
  spec.argv = pc.command;
  spec.env = host_.environment(index_);
  spec.cwd = pc.cwd;
  // VIGIL_RUN: how the lifeline, or the next vigil, finds what left its group.
  if (const auto& mark = run_marker_variable(); !mark.empty()) spec.env.push_back(mark);

  std::string user_error;
  if (!pc.user.empty()) {
    spec.credentials = lookup_user(pc.user, &user_error);
    if (!spec.credentials) return user_error;
  }

  // The heartbeat transports: fd 3 (a pipe per process) and NOTIFY_SOCKET
  // (one per instance), given to every child, heartbeat configured or not.
  heartbeat_.reset();
  Pipe hb, out, err;
  try {
    hb = make_pipe();
    if (pc.log != LogMode::off) {
      out = make_pipe();
      err = make_pipe();
    }
  } catch (const std::system_error& e) {
    return "cannot create pipes: " + fd_error_text(e);
  }
  // Lowest numbers first: the highest fd of this start tells how near the
  // limit vigil is. Too near, the start fails, so that vigil itself can
  // still take a client, run a probe, reopen a log.
  {
    rlimit limit{};
    const int highest = std::max({hb.write.get(), out.write.get(), err.write.get()});
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
      const std::size_t keep = reserved_fds(static_cast<std::size_t>(limit.rlim_cur));
      if (static_cast<rlim_t>(highest) + keep >= limit.rlim_cur)
        return "cannot create pipes: " + std::string(std::strerror(EMFILE)) +
               " (EMFILE: vigil is at its limit of " + std::to_string(limit.rlim_cur) +
               " open files, keeping " + std::to_string(keep) + " free for itself)";
    }
  }
  try {
    ensure_notify_socket(spec.credentials ? std::optional<uid_t>(spec.credentials->uid)
                                          : std::nullopt);
  } catch (const std::system_error& e) {
    return "cannot create the notify socket: " + fd_error_text(e);
  }
  // Socket activation: the held sockets at fds 3.., the heartbeat after them.
  const ListenSockets& sockets = host_.listen_sockets();
  if (!sockets.empty()) {
    std::string names;
    for (std::size_t i = 0; i < sockets.size(); ++i) {
      spec.listen_fds.push_back(sockets[i]->fd());
      // The config's name: a reload may rename a socket it keeps.
      names += (i ? ":" : "") + pc.listen[i].name;
    }
    spec.env.push_back("LISTEN_FDS=" + std::to_string(sockets.size()));
    spec.env.push_back("LISTEN_FDNAMES=" + names);
    spec.pid_variables.push_back("LISTEN_PID");
  }
  spec.heartbeat_fd = hb.write.get();
  spec.env.push_back("VIGIL_HEARTBEAT_FD=" + std::to_string(heartbeat_fd_number(spec)));
  spec.env.push_back("NOTIFY_SOCKET=" + notify_->path());
  if (pc.heartbeat) {
    auto usec = std::chrono::duration_cast<std::chrono::microseconds>(pc.heartbeat->interval);
    spec.env.push_back("WATCHDOG_USEC=" + std::to_string(usec.count()));
    spec.pid_variables.push_back("WATCHDOG_PID");
  }

  open_sinks();
  if (pc.log != LogMode::off) {
    ::fcntl(out.write.get(), F_SETPIPE_SZ, kPipeBytes);  // best effort
    ::fcntl(err.write.get(), F_SETPIPE_SZ, kPipeBytes);
    spec.stdout_fd = out.write.get();
    spec.stderr_fd = err.write.get();
  }
  // What reads the child's output and heartbeats exists before the child:
  // nothing that can fail is left once it runs.
  auto heartbeat = std::make_unique<HeartbeatPipe>(
      loop_, std::move(hb.read), &notify_counts_, [this](const NotifyMessage& m) { on_notify(m); },
      label());

  SpawnResult r = spawn(spec);
  out.write.reset();
  err.write.reset();
  hb.write.reset();
  if (r.error) {
    const int e = r.error->error;
    std::string text = r.error->message(spec);
    if (e == EMFILE || e == ENFILE) text = text.substr(0, text.rfind(": ") + 2) + fd_error_text(e);
    return text;
  }

  pid_ = r.pid;
  pgid_ = r.pid;  // setsid() made it the leader of its own group
  lifeline_watch_group(pgid_);
  start_wall_ = host_.clock().wall();
  rss_bytes_ = 0;
  sample_schedule_.restart();
  host_.reaper().track(pid_, [this](int status) { on_process_exit(status); });
  heartbeat_ = std::move(heartbeat);
  try {
    if (pc.log != LogMode::off) {
      start_pipe(std::move(out.read), Stream::out);
      start_pipe(std::move(err.read), Stream::err);
    }
  } catch (const std::exception& e) {
    // The child runs: its output is lost (counted nowhere but here), not
    // the child.
    spdlog::error("program {}: cannot read its output: {}", label(), e.what());
  }
  EventData d;
  d.pid = pid_;
  dispatch(Event::spawned, d);
  return {};
}

void Instance::on_process_exit(int wait_status) {
  const ExitStatus status = ExitStatus::from_wait_status(wait_status);
  pid_ = -1;
  rss_bytes_ = 0;
  EventData d;
  d.status = status;
  dispatch(Event::exited, d);
}

void Instance::on_any_child_exit() {
  if (state() == State::stopping && !machine_.has_process())
    check_tree();
  else
    unwatch_tree();
}

std::vector<pid_t> Instance::remember_strays() {
  std::vector<pid_t> found;
  for (pid_t pid : host_.reaper().strays_of(host_.config().name, index_))
    if (std::find(strays_.begin(), strays_.end(), pid) == strays_.end()) {
      strays_.push_back(pid);
      found.push_back(pid);
    }
  return found;
}

void Instance::signal_all(int sig) {
  // One look at /proc serves every instance stopped in the same stretch
  // of kStrayRefresh; a stray that comes later is found when the stop
  // confirms the tree is gone, and gets the same signal then.
  host_.reaper().refresh_unless_recent();
  remember_strays();
  last_signal_ = sig;
  signal_group(sig);
  for (pid_t stray : strays_)
    if (host_.reaper().stray_alive(stray)) ::kill(stray, sig);
  // A stopped process (SIGSTOP, a debugger) acts on no signal but SIGKILL
  // until continued: continue it, so it meets its stop_signal now rather
  // than SIGKILL after stop_timeout (as systemd does).
  if (sig != SIGKILL && sig != SIGCONT) {
    signal_group(SIGCONT);
    for (pid_t stray : strays_)
      if (host_.reaper().stray_alive(stray)) ::kill(stray, SIGCONT);
  }
}

// Whether a process of the tree is known to live: the main one, its group,
// or a stray found earlier and not reaped since.
bool Instance::tree_left() {
  if (pid_ > 0 || group_alive()) return true;
  std::erase_if(strays_, [this](pid_t pid) { return !host_.reaper().stray_alive(pid); });
  return !strays_.empty();
}

void Instance::check_tree() {
  if (tree_left()) {
    // Its end reaches the reaper, which calls here again (a daemonized
    // process that ignores stop_signal must still meet the SIGKILL after
    // stop_timeout: the stop is not over while one lives).
    watch_tree();
    return;
  }
  // Nothing known is left. One more look at /proc for a process re-parented
  // since, shared with every other instance waiting (stopping thousands
  // must not read /proc once per exit).
  if (confirming_) return;
  confirming_ = true;
  host_.reaper().refresh_then([this, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.lock()) return;
    confirming_ = false;
    confirm_tree_gone();
  });
}

void Instance::confirm_tree_gone() {
  if (state() != State::stopping || machine_.has_process()) return;
  // Found late: they get what the others got, this stop's last signal.
  for (pid_t pid : remember_strays()) {
    ::kill(pid, last_signal_);
    if (last_signal_ != SIGKILL) ::kill(pid, SIGCONT);
  }
  if (tree_left()) {
    watch_tree();
    return;
  }
  unwatch_tree();
  lifeline_forget_group(pgid_);
  pgid_ = -1;
  dispatch(Event::tree_gone);
}

void Instance::watch_tree() {
  if (tree_watch_ == 0) tree_watch_ = host_.reaper().watch([this] { on_any_child_exit(); });
}

void Instance::unwatch_tree() {
  if (tree_watch_ != 0) host_.reaper().unwatch(std::exchange(tree_watch_, 0));
}

void Instance::signal_group(int sig) {
  if (pgid_ > 0)
    ::kill(-pgid_, sig);
  else if (pid_ > 0)
    ::kill(pid_, sig);
}

bool Instance::group_alive() {
  if (pgid_ <= 0) return false;
  if (::kill(-pgid_, 0) == 0 || errno == EPERM) return true;
  if (pid_ <= 0) {
    // With its leader reaped, an empty group stays empty: no process can
    // join a group without members, and its id comes back only as another
    // process's own group once the pid is reused. Forgotten now, so that
    // is never taken for this one (and a stop asks the kernel once).
    lifeline_forget_group(pgid_);
    pgid_ = -1;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Heartbeats and notify messages

std::uint64_t& Instance::notify_serial() {
  static std::uint64_t serial = 0;
  return serial;
}

void Instance::ensure_notify_socket(std::optional<uid_t> owner) {
  if (notify_) return;
  auto path = host_.runtime_dir() / ("n" + std::to_string(++notify_serial()) + ".sock");
  notify_ = std::make_unique<NotifySocket>(
      loop_, path, owner, &notify_counts_, [this](const NotifyMessage& m) { on_notify(m); },
      label());
}

std::filesystem::path Instance::notify_socket_path() const {
  return notify_ ? std::filesystem::path(notify_->path()) : std::filesystem::path();
}

void Instance::on_notify(const NotifyMessage& m) {
  switch (m.kind) {
    case NotifyKind::ready:
      dispatch(Event::ready_signal);
      break;
    case NotifyKind::watchdog:
      last_heartbeat_wall_ = host_.clock().wall();
      dispatch(Event::heartbeat);
      break;
    case NotifyKind::watchdog_trigger:
      dispatch(Event::hang_declared);
      break;
    case NotifyKind::status:
      status_text_.assign(m.text);
      break;
    case NotifyKind::memory:
      reported_memory_ = m.value;
      break;
    case NotifyKind::stopping:
      dispatch(Event::child_stopping);
      break;
    case NotifyKind::extend_timeout: {
      EventData d;
      d.extend = std::chrono::microseconds(std::min<std::uint64_t>(m.value, 86400ull * 1000000));
      dispatch(Event::extend_timeout, d);
      break;
    }
  }
}

// ---------------------------------------------------------------------------
// Probes

void Instance::run_probe() {
  const auto& pc = host_.config();
  if (!pc.probe) return;
  if (!probe_)
    probe_ = std::make_unique<Probe>(loop_, host_.reaper(), *pc.probe, port(), pc.cwd,
                                     host_.environment(index_));
  probe_->run([this](const ProbeOutcome& outcome) { on_probe_result(outcome); });
}

void Instance::on_probe_result(const ProbeOutcome& outcome) {
  ProbeSnapshot& p = probe_stats_;
  const double seconds = std::chrono::duration<double>(outcome.took).count();
  p.success = outcome.ok;
  ++p.count;
  p.sum_seconds += seconds;
  for (std::size_t i = 0; i < p.bucket_bounds.size(); ++i)
    if (seconds <= p.bucket_bounds[i]) ++p.bucket_counts[i];
  if (!outcome.ok) ++p.failures[static_cast<std::size_t>(outcome.failure)];
  EventData d;
  d.probe = outcome;
  dispatch(outcome.ok ? Event::probe_passed : Event::probe_failed, d);
}

// ---------------------------------------------------------------------------
// Measurements and what is shown

bool Instance::on_sample(ProcSampler& sampler, SteadyTime now, Duration interval, bool sibling_restarting,
                         bool all, std::optional<SteadyTime> fresh_by) {
  if (pid_ <= 0) {
    rss_bytes_ = 0;
    return false;
  }
  // Stopping: no memory rule acts on it any more (a scrape still refreshes
  // what it shows through refresh_sample).
  if (state() == State::stopping) return false;
  if (!all && !sample_schedule_.due(now, interval))
    return fresh_by && refresh_sample(sampler, now, interval, Freshness::interval, fresh_by);
  const TreeSample* tree = sampler.read_tree(pid_);
  const TreeUsage usage = tree ? tree->usage : TreeUsage{};
  rss_bytes_ = usage.rss_bytes;
  if (tree) cpu_.update(tree->members);
  sample_schedule_.sampled(now, usage, host_.config().memory_limit_bytes.has_value(), interval);
  EventData d;
  d.rss_bytes = rss_bytes_;
  d.sibling_restarting = sibling_restarting;
  dispatch(Event::memory_sample, d);
  return true;
}

bool Instance::refresh_sample(ProcSampler& sampler, SteadyTime now, Duration interval, Freshness freshness,
                              std::optional<SteadyTime> fresh_by) {
  if (pid_ <= 0 || !sample_schedule_.stale(fresh_by.value_or(now), interval, freshness)) return false;
  const TreeSample* tree = sampler.read_tree(pid_);
  const TreeUsage usage = tree ? tree->usage : TreeUsage{};
  rss_bytes_ = usage.rss_bytes;
  if (tree) cpu_.update(tree->members);
  sample_schedule_.refreshed(now, usage, interval);
  return true;
}

std::optional<SteadyTime> Instance::next_sample_at() const {
  if (pid_ <= 0) return std::nullopt;
  return sample_schedule_.next_at();
}

InstanceCounters Instance::counters() const {
  InstanceCounters c;
  static_cast<InstanceCounts&>(c) = machine_.counts();
  c.log = log_counts_;
  return c;
}

InstanceSnapshot Instance::snapshot() const {
  const auto& pc = host_.config();
  const SteadyTime now = host_.clock().steady();
  InstanceSnapshot s;
  s.program = pc.name;
  s.index = index_;
  s.pid = pid_ > 0 ? pid_ : 0;
  s.state = state();
  s.up = state() == State::running;
  if (pid_ > 0) {
    s.uptime_seconds = std::chrono::duration<double>(now - machine_.started_at()).count();
    s.start_time_seconds = unix_seconds(start_wall_);
  }
  s.restarts = machine_.counts().restarts;
  s.exits = machine_.counts().exits;
  if (auto e = machine_.last_exit()) s.last_exit_code = e->as_code();
  // In backoff: the reason of the restart that is coming.
  s.last_restart_reason = machine_.restart_reason();
  if (auto next = machine_.next_start())
    s.next_restart_in_seconds = std::max(0.0, std::chrono::duration<double>(*next - now).count());
  // The machine keeps steady times; the snapshot shows wall-clock ones.
  const double wall_now = unix_seconds(host_.clock().wall());
  auto wall = [&](SteadyTime at) { return wall_now - std::chrono::duration<double>(now - at).count(); };
  for (const ExitEntry& e : machine_.recent_exits())
    s.recent_exits.push_back(
        {e.status, wall(e.at), std::chrono::duration<double>(e.run).count(), e.reason});
  s.last_error = machine_.last_error();
  if (auto at = machine_.last_error_at()) s.last_error_seconds = wall(*at);
  s.heartbeats = machine_.heartbeat().total_beats();
  s.heartbeat_misses = machine_.heartbeat().total_misses();
  if (last_heartbeat_wall_) s.heartbeat_last_seconds = unix_seconds(*last_heartbeat_wall_);
  if (pc.heartbeat)
    s.heartbeat_interval_seconds = std::chrono::duration<double>(pc.heartbeat->interval).count();
  s.protocol_errors = notify_counts_.protocol_errors;
  s.rss_bytes = rss_bytes_;
  s.cpu_seconds = static_cast<double>(cpu_.total_ticks()) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  s.reported_memory_bytes = reported_memory_;
  s.memory_limit_bytes = pc.memory_limit_bytes;
  s.status_text = status_text_;
  s.log_bytes = {log_counts_[0].bytes, log_counts_[1].bytes};
  s.log_dropped_bytes = log_counts_[0].dropped + log_counts_[1].dropped;
  if (pc.log != LogMode::off)
    for (Stream st : {Stream::out, Stream::err})
      s.log_files[static_cast<std::size_t>(st)] = host_.log_path(index_, st).string();
  if (pc.probe) s.probe = probe_stats_;
  return s;
}

// ---------------------------------------------------------------------------
// Logs

LogFileOptions Instance::log_options(Stream s) const {
  const auto& pc = host_.config();
  LogFileOptions o;
  o.path = host_.log_path(index_, s);
  o.max_size_bytes = pc.log_max_size_bytes;
  o.keep = pc.log_keep;
  o.timestamps = pc.log_timestamps;
  return o;
}

void Instance::let_go_of_fds() {
  sinks_ = {};
  heartbeat_.reset();
  notify_.reset();
}

void Instance::open_sinks() {
  const auto& pc = host_.config();
  if (pc.log == LogMode::off) {
    sinks_ = {};
    return;
  }
  for (Stream s : {Stream::out, Stream::err}) {
    auto idx = static_cast<std::size_t>(s);
    if (sinks_[idx]) continue;
    if (pc.log == LogMode::combined && s == Stream::err) {
      sinks_[idx] = sinks_[0];
      continue;
    }
    sinks_[idx] = std::make_shared<LogSink>(log_options(s));
  }
}

void Instance::start_pipe(UniqueFd read_end, Stream stream) {
  auto idx = static_cast<std::size_t>(stream);
  auto it = pipes_.emplace(pipes_.end());
  *it = std::make_unique<OutputPipe>(loop_, std::move(read_end), stream, sinks_[idx], &log_counts_[idx],
                                     [this, it] {
                                       // Destroyed on the next turn, not in its own callback.
                                       // The instance may be gone by then (reload).
                                       loop_.defer([this, it, alive = std::weak_ptr<bool>(alive_)] {
                                         if (alive.lock()) pipes_.erase(it);
                                       });
                                     });
}

// ---------------------------------------------------------------------------
// The handover to a new vigil across exec

namespace {

std::int64_t wall_ns(WallTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
WallTime from_wall_ns(std::int64_t ns) {
  return WallTime(std::chrono::duration_cast<WallTime::duration>(std::chrono::nanoseconds(ns)));
}

// An fd named in the document: a number, taken (owned) at once.
UniqueFd take_fd(const nlohmann::json& j, const std::string& path) {
  if (!j.is_number_integer() || j.get<std::int64_t>() < 3 || j.get<std::int64_t>() > (1 << 30))
    throw HandoverError(path + ": not an fd number");
  UniqueFd fd = take_inherited_fd(j.get<long>());
  if (!fd) throw HandoverError(path + ": fd " + std::to_string(j.get<long>()) + " is not open");
  return fd;
}

const nlohmann::json& member(const nlohmann::json& j, const char* key, const std::string& path) {
  if (!j.is_object() || !j.contains(key)) throw HandoverError(path + "." + key + ": missing");
  return j[key];
}

template <class T>
T number(const nlohmann::json& j, const char* key, const std::string& path) {
  T v{};
  LoadArchive::decode(member(j, key, path), v, path + "." + key, 0);
  return v;
}

}  // namespace

nlohmann::json Instance::save_handover(std::vector<int>& keep) const {
  nlohmann::json j;
  j["index"] = index_;
  j["machine"] = save_state(machine_);
  j["pid"] = pid_;
  j["pgid"] = pgid_;
  j["strays"] = strays_;
  j["spawns"] = spawns_;
  j["start_wall"] = wall_ns(start_wall_);
  if (notify_ && notify_->fd() >= 0) {
    j["notify"] = {{"fd", notify_->fd()}, {"path", notify_->path()}};
    keep.push_back(notify_->fd());
  } else {
    j["notify"] = nullptr;
  }
  if (heartbeat_ && heartbeat_->fd() >= 0) {
    j["heartbeat_fd"] = heartbeat_->fd();
    j["heartbeat_partial"] = to_hex(heartbeat_->parser().partial());
    j["heartbeat_discarding"] = heartbeat_->parser().discarding();
    keep.push_back(heartbeat_->fd());
  } else {
    j["heartbeat_fd"] = nullptr;
  }
  auto pipes = nlohmann::json::array();
  for (const auto& p : pipes_) {
    if (!p->open()) continue;
    pipes.push_back({{"fd", p->fd()},
                     {"stream", static_cast<int>(p->stream())},
                     {"partial", to_hex(p->partial())}});
    keep.push_back(p->fd());
  }
  j["pipes"] = std::move(pipes);
  j["log"] = {{{"bytes", log_counts_[0].bytes}, {"dropped", log_counts_[0].dropped}},
              {{"bytes", log_counts_[1].bytes}, {"dropped", log_counts_[1].dropped}}};
  j["notify_counts"] = {{"messages", notify_counts_.messages},
                        {"unknown", notify_counts_.unknown},
                        {"protocol_errors", notify_counts_.protocol_errors}};
  j["last_heartbeat_wall"] =
      last_heartbeat_wall_ ? nlohmann::json(wall_ns(*last_heartbeat_wall_)) : nlohmann::json(nullptr);
  j["status_text"] = status_text_;
  j["cpu"] = save_state(cpu_);
  j["reported_memory"] = reported_memory_ ? nlohmann::json(*reported_memory_) : nlohmann::json(nullptr);
  j["probe"] = {{"count", probe_stats_.count},
                {"sum_seconds", probe_stats_.sum_seconds},
                {"failures", probe_stats_.failures},
                {"bucket_counts", probe_stats_.bucket_counts},
                {"success", probe_stats_.success ? nlohmann::json(*probe_stats_.success)
                                                 : nlohmann::json(nullptr)}};
  return j;
}

void Instance::adopt(const nlohmann::json& saved, const std::string& path) {
  // The fds first: they are this instance's whatever else fails.
  if (const auto& n = member(saved, "notify", path); !n.is_null()) {
    UniqueFd fd = take_fd(member(n, "fd", path + ".notify"), path + ".notify.fd");
    const auto& where = member(n, "path", path + ".notify");
    if (!where.is_string()) throw HandoverError(path + ".notify.path: not a string");
    notify_ = std::make_unique<NotifySocket>(
        loop_, where.get<std::string>(), std::move(fd), &notify_counts_,
        [this](const NotifyMessage& m) { on_notify(m); }, label());
  }
  if (const auto& h = member(saved, "heartbeat_fd", path); !h.is_null()) {
    heartbeat_ = std::make_unique<HeartbeatPipe>(
        loop_, take_fd(h, path + ".heartbeat_fd"), &notify_counts_,
        [this](const NotifyMessage& m) { on_notify(m); }, label());
    const auto& partial = member(saved, "heartbeat_partial", path);
    auto bytes = partial.is_string() ? from_hex(partial.get<std::string>()) : std::nullopt;
    if (!bytes) throw HandoverError(path + ".heartbeat_partial: not hexadecimal");
    heartbeat_->parser().restore(std::move(*bytes), number<bool>(saved, "heartbeat_discarding", path));
  }
  const auto& pipes = member(saved, "pipes", path);
  if (!pipes.is_array()) throw HandoverError(path + ".pipes: not a list");
  const bool logged = host_.config().log != LogMode::off;
  if (logged) open_sinks();
  for (std::size_t i = 0; i < pipes.size(); ++i) {
    const std::string at = path + ".pipes[" + std::to_string(i) + "]";
    UniqueFd fd = take_fd(member(pipes[i], "fd", at), at + ".fd");
    const int stream = number<int>(pipes[i], "stream", at);
    if (stream != 0 && stream != 1) throw HandoverError(at + ".stream: not one of its values");
    start_pipe(std::move(fd), static_cast<Stream>(stream));
    const auto& partial = member(pipes[i], "partial", at);
    if (!partial.is_string()) throw HandoverError(at + ".partial: not a string");
    auto bytes = from_hex(partial.get<std::string>());
    if (!bytes) throw HandoverError(at + ".partial: not hexadecimal");
    pipes_.back()->restore_partial(std::move(*bytes));
  }

  load_state(member(saved, "machine", path), machine_, path + ".machine");
  pid_ = number<pid_t>(saved, "pid", path);
  pgid_ = number<pid_t>(saved, "pgid", path);
  LoadArchive::decode(member(saved, "strays", path), strays_, path + ".strays", 0);
  spawns_ = number<int>(saved, "spawns", path);
  start_wall_ = from_wall_ns(number<std::int64_t>(saved, "start_wall", path));
  const auto& log = member(saved, "log", path);
  for (std::size_t s = 0; s < 2; ++s) {
    const std::string at = path + ".log[" + std::to_string(s) + "]";
    if (!log.is_array() || log.size() != 2) throw HandoverError(path + ".log: a list of 2 was expected");
    log_counts_[s].bytes = number<std::uint64_t>(log[s], "bytes", at);
    log_counts_[s].dropped = number<std::uint64_t>(log[s], "dropped", at);
  }
  const auto& nc = member(saved, "notify_counts", path);
  notify_counts_.messages = number<std::uint64_t>(nc, "messages", path + ".notify_counts");
  notify_counts_.unknown = number<std::uint64_t>(nc, "unknown", path + ".notify_counts");
  notify_counts_.protocol_errors = number<std::uint64_t>(nc, "protocol_errors", path + ".notify_counts");
  if (const auto& h = member(saved, "last_heartbeat_wall", path); !h.is_null())
    last_heartbeat_wall_ = from_wall_ns(number<std::int64_t>(saved, "last_heartbeat_wall", path));
  LoadArchive::decode(member(saved, "status_text", path), status_text_, path + ".status_text", 0);
  load_state(member(saved, "cpu", path), cpu_, path + ".cpu");
  LoadArchive::decode(member(saved, "reported_memory", path), reported_memory_, path + ".reported_memory", 0);
  const auto& probe = member(saved, "probe", path);
  ProbeSnapshot p = probe_stats_;
  p.count = number<std::uint64_t>(probe, "count", path + ".probe");
  if (!member(probe, "sum_seconds", path + ".probe").is_number())
    throw HandoverError(path + ".probe.sum_seconds: not a number");
  p.sum_seconds = probe["sum_seconds"].get<double>();
  LoadArchive::decode(member(probe, "failures", path + ".probe"), p.failures, path + ".probe.failures", 0);
  std::vector<std::uint64_t> buckets;
  LoadArchive::decode(member(probe, "bucket_counts", path + ".probe"), buckets, path + ".probe.bucket_counts", 0);
  if (buckets.size() == p.bucket_counts.size()) p.bucket_counts = std::move(buckets);
  LoadArchive::decode(member(probe, "success", path + ".probe"), p.success, path + ".probe.success", 0);
  probe_stats_ = std::move(p);

  // What the old vigil did at spawn, done again for this process: the
  // reaper and the lifeline know it, its samples start over.
  if (pgid_ > 0) lifeline_watch_group(pgid_);
  if (pid_ > 0) {
    host_.reaper().track(pid_, [this](int status) { on_process_exit(status); });
    sample_schedule_.restart();
  }
  for (std::size_t t = 0; t < kTimerCount; ++t)
    if (auto at = machine_.armed(static_cast<TimerId>(t))) arm(static_cast<TimerId>(t), *at);
  // A stop waiting for the rest of the tree: it waits on here.
  if (state() == State::stopping && !machine_.has_process()) check_tree();
}

void Instance::adopt_process(pid_t pid, WallTime started, std::vector<std::pair<UniqueFd, Stream>> pipes,
                             UniqueFd heartbeat) {
  const auto& pc = host_.config();
  if (pc.log != LogMode::off) open_sinks();
  for (auto& [fd, stream] : pipes) start_pipe(std::move(fd), stream);
  if (heartbeat)
    heartbeat_ = std::make_unique<HeartbeatPipe>(
        loop_, std::move(heartbeat), &notify_counts_, [this](const NotifyMessage& m) { on_notify(m); },
        label());
  pid_ = pid;
  pgid_ = ::getpgid(pid) > 0 ? ::getpgid(pid) : pid;
  lifeline_watch_group(pgid_);
  start_wall_ = started;
  sample_schedule_.restart();
  host_.reaper().track(pid_, [this](int status) { on_process_exit(status); });
  // A start whose spawn is this process (spawn_process answers with it).
  adopting_ = pid;
  EventData d;
  dispatch(Event::start, d);
  // It said READY=1 to the old vigil long ago.
  if (pc.ready == ReadyMode::notify) dispatch(Event::ready_signal);
}

}  // namespace vigil
