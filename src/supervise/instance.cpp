// Instance life cycle. The decisions come from RestartPolicy; this file
// only carries them out with processes, signals, timers and pipes.
#include "instance.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <spdlog/spdlog.h>

#include "program.h"
#include "spawn.h"
#include "supervisor.h"

namespace vigil {

namespace {

std::string seconds_text(Duration d) {
  // "1.6s", "250ms", "2m5s"
  if (d < std::chrono::seconds(1) || d >= std::chrono::minutes(1)) return format_duration(d);
  return fmt::format("{:.1f}s", d.count() / 1000.0);
}

ExitKind kind_of(const ExitStatus& s, const std::vector<int>& clean_codes) {
  if (s.signaled) return ExitKind::signal;
  return is_clean_exit(s, clean_codes) ? ExitKind::clean : ExitKind::code;
}

// Output pipes get a larger kernel buffer than the default 64 KiB so a
// chatty child blocks less often while vigil is busy elsewhere.
constexpr int kPipeBytes = 1 << 20;

// Exits kept for the API.
constexpr std::size_t kRecentExits = 10;

double unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// Processes of instance `index` of `program` that left its process group
// (daemonized) and were re-parented to vigil, the subreaper: a stop must
// end them too, since the group signal does not reach them.
std::vector<pid_t> daemonized_processes(const Program& program, int index) {
  std::vector<pid_t> out;
  for (pid_t pid : program.supervisor().reaper().strays())
    if (process_belongs_to(pid, program.name(), index)) out.push_back(pid);
  return out;
}

}  // namespace

Instance::Instance(EventLoop& loop, Program& program, int index)
    : loop_(loop),
      program_(program),
      index_(index),
      policy_(RestartSettings::from(program.config())),
      ready_timer_(loop, [this] { on_ready_timer(); }),
      backoff_timer_(loop, [this] { on_backoff_timer(); }),
      kill_timer_(loop, [this] { on_kill_timer(); }),
      heartbeat_timer_(loop, [this] { on_heartbeat_timer(); }),
      start_timer_(loop, [this] { on_start_timer(); }) {
  if (program.config().heartbeat) watch_.update(HeartbeatSettings::from(*program.config().heartbeat));
}

Instance::~Instance() {
  if (pid_ > 0) {
    // Never leave a child behind: the owner is going away without a stop.
    signal_group(SIGKILL);
    program_.supervisor().reaper().untrack(pid_);
  }
}

std::string Instance::label() const {
  if (program_.config().instances > 1) return program_.name() + "[" + std::to_string(index_) + "]";
  return program_.name();
}

void Instance::set_state(State s) {
  State old = state_;
  if (old == s) return;
  state_ = s;
  spdlog::debug("program {}: {} -> {}", label(), to_string(old), to_string(s));
  if (listener_) listener_(*this, old, s);
}

LogFileOptions Instance::log_options(Stream s) const {
  const auto& pc = program_.config();
  LogFileOptions o;
  o.path = program_.log_path(index_, s);
  o.max_size_bytes = pc.log_max_size_bytes;
  o.keep = pc.log_keep;
  o.timestamps = pc.log_timestamps;
  return o;
}

void Instance::open_sinks() {
  const auto& pc = program_.config();
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
  *it = std::make_unique<OutputPipe>(loop_, std::move(read_end), stream, sinks_[idx], &counters_.log[idx],
                                     [this, it] {
                                       // Destroyed on the next turn, not in its own callback.
                                       // The instance may be gone by then (reload).
                                       loop_.defer([this, it, alive = std::weak_ptr<bool>(alive_)] {
                                         if (alive.lock()) pipes_.erase(it);
                                       });
                                     });
}

void Instance::start(bool manual) {
  switch (state_) {
    case State::starting:
    case State::running:
      return;
    case State::stopping:
      // Start again as soon as the stop completes.
      restart_after_stop_ = true;
      return;
    case State::stopped:
    case State::exited:
    case State::backoff:
    case State::fatal:
      break;
  }
  if (manual) policy_.reset();
  backoff_timer_.cancel();
  spawn_process();
}

void Instance::restart_manual() {
  policy_.reset();
  if (pid_ > 0 || state_ == State::stopping) {
    forced_reason_.reset();
    if (state_ != State::stopping) stop();
    // After stop(), which clears it: start again once the stop completes.
    restart_after_stop_ = true;
    return;
  }
  backoff_timer_.cancel();
  pending_restart_reason_ = RestartReason::manual;
  spawn_process();
}

void Instance::spawn_process() {
  const auto& pc = program_.config();
  if (pending_restart_reason_) {
    counters_.restarts[static_cast<std::size_t>(*pending_restart_reason_)]++;
    last_reason_ = pending_restart_reason_;
    pending_restart_reason_.reset();
  }
  ++spawns_;
  child_stopping_ = false;
  set_state(State::starting);
  start_wall_ = std::chrono::system_clock::now();
  start_steady_ = std::chrono::steady_clock::now();

  SpawnSpec spec;
  spec.argv = pc.command;
  spec.env = program_.environment(index_);
  spec.cwd = pc.cwd;

  std::optional<SpawnError> error;
  std::string user_error;
  if (!pc.user.empty()) {
    spec.credentials = lookup_user(pc.user, &user_error);
    if (!spec.credentials) error = SpawnError{"switch user", 0};
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
    // Out of fds: a failed start like any other, throttled by the policy.
    last_exit_ = ExitStatus::exited(127);
    counters_.exits[static_cast<std::size_t>(ExitKind::code)]++;
    on_ended(*last_exit_, std::string("cannot create pipes: ") + e.what());
    return;
  }
  spec.heartbeat_fd = hb.write.get();
  spec.env.push_back("VIGIL_HEARTBEAT_FD=3");
  try {
    ensure_notify_socket(spec.credentials ? std::optional<uid_t>(spec.credentials->uid)
                                          : std::nullopt);
    spec.env.push_back("NOTIFY_SOCKET=" + notify_->path().string());
  } catch (const std::exception& e) {
    spdlog::warn("program {}: no NOTIFY_SOCKET: {}", label(), e.what());
  }
  if (pc.heartbeat) {
    auto usec = std::chrono::duration_cast<std::chrono::microseconds>(pc.heartbeat->interval);
    spec.env.push_back("WATCHDOG_USEC=" + std::to_string(usec.count()));
    spec.pid_variable = "WATCHDOG_PID";
  }

  open_sinks();
  if (pc.log != LogMode::off) {
    ::fcntl(out.write.get(), F_SETPIPE_SZ, kPipeBytes);  // best effort
    ::fcntl(err.write.get(), F_SETPIPE_SZ, kPipeBytes);
    spec.stdout_fd = out.write.get();
    spec.stderr_fd = err.write.get();
  }

  SpawnResult r;
  if (!error) {
    r = spawn(spec);
    error = r.error;
  }
  out.write.reset();
  err.write.reset();
  hb.write.reset();

  if (error) {
    std::string why = user_error.empty() ? error->message(spec) : user_error;
    // A failed start is an end after zero seconds: the restart policy
    // throttles it and eventually gives up, so it never loops hot.
    last_exit_ = ExitStatus::exited(127);
    counters_.exits[static_cast<std::size_t>(ExitKind::code)]++;
    on_ended(*last_exit_, why);
    return;
  }

  pid_ = r.pid;
  pgid_ = r.pid;  // setsid() made it the leader of its own group
  program_.supervisor().reaper().track(pid_, [this](int status) { on_process_exit(status); });
  if (pc.log != LogMode::off) {
    start_pipe(std::move(out.read), Stream::out);
    start_pipe(std::move(err.read), Stream::err);
  }
  heartbeat_ = std::make_unique<HeartbeatPipe>(
      loop_, std::move(hb.read), &notify_counts_, [this](const NotifyMessage& m) { on_notify(m); },
      label());
  spdlog::info("program {}: started, pid {}", label(), pid_);
  if (pc.ready == ReadyMode::uptime) ready_timer_.arm(pc.min_uptime);
  if (pc.ready == ReadyMode::notify) start_timer_.arm(pc.start_timeout);
  rss_bytes_ = 0;
  over_limit_samples_ = 0;
  if (pc.heartbeat) {
    watch_.start(start_steady_);
    arm_heartbeat_timer();
  }
}

void Instance::ensure_notify_socket(std::optional<uid_t> owner) {
  if (notify_) return;
  static std::uint64_t serial = 0;
  auto path = program_.supervisor().runtime_dir() / ("n" + std::to_string(++serial) + ".sock");
  notify_ = std::make_unique<NotifySocket>(
      loop_, path, owner, &notify_counts_, [this](const NotifyMessage& m) { on_notify(m); },
      label());
}

const std::filesystem::path& Instance::notify_socket_path() const {
  static const std::filesystem::path none;
  return notify_ ? notify_->path() : none;
}

void Instance::arm_heartbeat_timer() {
  auto deadline = watch_.deadline();
  if (!deadline) {
    heartbeat_timer_.cancel();
    return;
  }
  auto wait = *deadline - std::chrono::steady_clock::now();
  // Round up: firing a hair early would count nothing and re-arm at once.
  heartbeat_timer_.arm(std::chrono::ceil<Duration>(std::max(wait, decltype(wait)::zero())));
}

void Instance::on_heartbeat_timer() {
  if (pid_ <= 0 || (state_ != State::starting && state_ != State::running)) return;
  // Heartbeats may be waiting unread: the loop runs expired timers before
  // reading fds after a stall (a burst of spawns, SIGSTOP, a slow disk), and
  // then every child would look hung. Read them first; they can move the
  // deadline, or change the state (STOPPING=1, WATCHDOG=trigger).
  if (heartbeat_) heartbeat_->drain();
  if (notify_) notify_->drain();
  if (pid_ <= 0 || (state_ != State::starting && state_ != State::running)) return;
  if (auto deadline = watch_.deadline(); !deadline || *deadline > std::chrono::steady_clock::now()) {
    arm_heartbeat_timer();
    return;
  }
  auto verdict = watch_.on_deadline(std::chrono::steady_clock::now());
  if (verdict.hung) {
    const auto& hb = *program_.config().heartbeat;
    spdlog::error("program {}: hung: no heartbeat for {} ({} missed intervals of {}); restarting",
                  label(), format_duration(hb.interval * hb.misses), hb.misses,
                  format_duration(hb.interval));
    terminate_for(RestartReason::hung);
    return;
  }
  if (verdict.misses > 0)
    spdlog::warn("program {}: missed heartbeat ({} of {} in a row)", label(),
                 watch_.consecutive_misses(), program_.config().heartbeat->misses);
  arm_heartbeat_timer();
}

void Instance::on_start_timer() {
  if (state_ != State::starting || pid_ <= 0) return;
  spdlog::error("program {}: not ready (READY=1) within start_timeout {}; restarting", label(),
                format_duration(program_.config().start_timeout));
  terminate_for(RestartReason::start_timeout);
}

void Instance::on_notify(const NotifyMessage& m) {
  // Messages from a process that already ended (a grandchild still holding
  // the socket) or during a stop do not drive the state.
  const bool live = pid_ > 0 && (state_ == State::starting || state_ == State::running);
  auto now = std::chrono::steady_clock::now();
  switch (m.kind) {
    case NotifyKind::ready:
      if (live && state_ == State::starting && program_.config().ready == ReadyMode::notify) {
        start_timer_.cancel();
        set_state(State::running);
        spdlog::info("program {}: ready", label());
      }
      break;
    case NotifyKind::watchdog:
      ++heartbeats_;
      last_heartbeat_wall_ = std::chrono::system_clock::now();
      if (live && program_.config().heartbeat && watch_.active()) {
        watch_.beat(now);
        arm_heartbeat_timer();
      }
      break;
    case NotifyKind::watchdog_trigger:
      if (live) {
        spdlog::error("program {}: declared itself hung (WATCHDOG=trigger); restarting", label());
        terminate_for(RestartReason::hung);
      }
      break;
    case NotifyKind::status:
      status_text_.assign(m.text);
      break;
    case NotifyKind::memory:
      reported_memory_ = m.value;
      break;
    case NotifyKind::stopping:
      if (live) {
        child_stopping_ = true;
        watch_.stop();
        heartbeat_timer_.cancel();
        spdlog::info("program {}: stopping on its own (STOPPING=1); hang detection off", label());
      }
      break;
    case NotifyKind::extend_timeout: {
      auto by = std::chrono::microseconds(std::min<std::uint64_t>(m.value, 86400ull * 1000000));
      auto ms = std::chrono::duration_cast<Duration>(by);
      if (state_ == State::starting && start_timer_.armed()) start_timer_.arm(ms);
      if (state_ == State::stopping && kill_timer_.armed()) kill_timer_.arm(ms);
      if (live && watch_.active()) {
        watch_.extend(now, by);
        arm_heartbeat_timer();
      }
      break;
    }
  }
}

bool Instance::on_sample(const ProcSampler& sampler) {
  if (pid_ <= 0) {
    rss_bytes_ = 0;
    return false;
  }
  auto members = sampler.members(pid_);
  TreeUsage u = sampler.tree(pid_);
  rss_bytes_ = u.rss_bytes;
  cpu_.update(sampler, members);
  const auto& limit = program_.config().memory_limit_bytes;
  if (!limit || (state_ != State::starting && state_ != State::running)) {
    over_limit_samples_ = 0;
    return false;
  }
  over_limit_samples_ = rss_bytes_ > *limit ? over_limit_samples_ + 1 : 0;
  return over_limit_samples_ >= kMemoryLimitSamples;
}

InstanceSnapshot Instance::snapshot(std::chrono::system_clock::time_point now_wall,
                                    std::chrono::steady_clock::time_point now) const {
  const auto& pc = program_.config();
  InstanceSnapshot s;
  s.program = program_.name();
  s.index = index_;
  s.pid = pid_ > 0 ? pid_ : 0;
  s.state = state_;
  s.up = state_ == State::running;
  if (pid_ > 0) {
    s.uptime_seconds = std::chrono::duration<double>(now - start_steady_).count();
    s.start_time_seconds = unix_seconds(start_wall_);
  }
  s.restarts = counters_.restarts;
  s.exits = counters_.exits;
  if (last_exit_) s.last_exit_code = last_exit_->as_code();
  // In backoff: the reason of the restart that is coming.
  s.last_restart_reason = pending_restart_reason_ ? pending_restart_reason_ : last_reason_;
  if (state_ == State::backoff)
    s.next_restart_in_seconds =
        std::max(0.0, std::chrono::duration<double>(next_start_ - now).count());
  s.recent_exits.assign(recent_exits_.begin(), recent_exits_.end());
  s.heartbeats = heartbeats_;
  s.heartbeat_misses = watch_.total_misses();
  if (last_heartbeat_wall_) s.heartbeat_last_seconds = unix_seconds(*last_heartbeat_wall_);
  if (pc.heartbeat)
    s.heartbeat_interval_seconds = std::chrono::duration<double>(pc.heartbeat->interval).count();
  s.protocol_errors = notify_counts_.protocol_errors;
  s.rss_bytes = rss_bytes_;
  s.cpu_seconds = static_cast<double>(cpu_.total_ticks()) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  s.reported_memory_bytes = reported_memory_;
  s.memory_limit_bytes = pc.memory_limit_bytes;
  s.status_text = status_text_;
  s.log_bytes = {counters_.log[0].bytes, counters_.log[1].bytes};
  s.log_dropped_bytes = counters_.log[0].dropped + counters_.log[1].dropped;
  (void)now_wall;
  return s;
}

void Instance::on_ready_timer() {
  if (state_ == State::starting) set_state(State::running);
}

void Instance::on_backoff_timer() {
  if (state_ == State::backoff) spawn_process();
}

void Instance::on_process_exit(int wait_status) {
  ExitStatus status = ExitStatus::from_wait_status(wait_status);
  last_exit_ = status;
  counters_.exits[static_cast<std::size_t>(kind_of(status, program_.config().exit_codes))]++;
  pid_ = -1;
  rss_bytes_ = 0;
  ready_timer_.cancel();
  start_timer_.cancel();
  heartbeat_timer_.cancel();
  watch_.stop();
  recent_exits_.push_back({status, unix_seconds(std::chrono::system_clock::now())});
  if (recent_exits_.size() > kRecentExits) recent_exits_.pop_front();
  if (state_ == State::stopping) {
    on_any_child_exit();
    return;
  }
  on_ended(status, {});
}

void Instance::on_ended(const ExitStatus& status, const std::string& cause) {
  auto now = std::chrono::steady_clock::now();
  auto run_time = cause.empty() ? std::chrono::duration_cast<Duration>(now - start_steady_)
                                : Duration(0);
  // What the main process left behind in its group goes with it, so the
  // next run starts clean (the port is free, no duplicate worker).
  if (group_alive()) signal_group(SIGKILL);
  pgid_ = -1;

  auto forced = std::exchange(forced_reason_, std::nullopt);
  RestartDecision d = policy_.on_end(now, run_time, status, forced);
  std::string what = !cause.empty() ? cause
                     : forced       ? std::string("stopped (") + to_string(*forced) + ")"
                                    : (status.signaled ? "killed by " : "exited with ") + status.describe();
  if (cause.empty()) what += " after " + seconds_text(run_time);

  switch (d.action) {
    case RestartDecision::Action::restart:
      set_state(State::exited);
      set_state(State::backoff);
      pending_restart_reason_ = d.reason;
      next_start_ = now + d.delay;
      backoff_timer_.arm(d.delay);
      spdlog::log(cause.empty() ? spdlog::level::info : spdlog::level::err,
                  "program {}: {} (restarting in {})", label(), what, seconds_text(d.delay));
      break;
    case RestartDecision::Action::stay:
      set_state(State::exited);
      spdlog::info("program {}: {} (not restarted: restart = \"{}\")", label(), what,
                   to_string(program_.config().restart));
      break;
    case RestartDecision::Action::fatal: {
      const auto& pc = program_.config();
      set_state(State::fatal);
      spdlog::error(
          "program {}: {} (giving up: more than {} restarts within {}; state fatal until a "
          "manual start)",
          label(), what, pc.max_restarts, format_duration(pc.restart_window));
      break;
    }
  }
}

void Instance::stop(std::function<void()> done) {
  restart_after_stop_ = false;
  switch (state_) {
    case State::stopping:
      if (done) stop_waiters_.push_back(std::move(done));
      return;
    case State::starting:
    case State::running:
      break;
    case State::backoff:
    case State::exited:
    case State::fatal:
    case State::stopped:
      backoff_timer_.cancel();
      set_state(State::stopped);
      if (done) done();
      return;
  }
  if (done) stop_waiters_.push_back(std::move(done));
  ready_timer_.cancel();
  start_timer_.cancel();
  heartbeat_timer_.cancel();
  set_state(State::stopping);
  const int sig = program_.config().stop_signal;
  spdlog::info("program {}: stopping (SIG{} to process group {})", label(), signal_name(sig),
               pgid_);
  signal_group(sig);
  stop_signalled_ = std::chrono::steady_clock::now();
  killed_ = false;
  // Processes of this instance that left its process group (daemonized),
  // re-parented to vigil: they get the same signal.
  for (pid_t stray : daemonized_processes(program_, index_)) ::kill(stray, sig);
  kill_timer_.arm(program_.config().stop_timeout);
}

void Instance::terminate_for(RestartReason reason) {
  if (state_ != State::starting && state_ != State::running) return;
  stop();
  forced_reason_ = reason;
}

void Instance::on_kill_timer() {
  if (state_ != State::stopping) return;
  if (!killed_) {
    killed_ = true;
    const std::chrono::duration<double> waited = std::chrono::steady_clock::now() - stop_signalled_;
    spdlog::warn("program {}: still running {:.1f}s after SIG{}; sending SIGKILL", label(),
                 waited.count(), signal_name(program_.config().stop_signal));
  }
  signal_group(SIGKILL);
  for (pid_t stray : daemonized_processes(program_, index_)) ::kill(stray, SIGKILL);
  // Group members that are not vigil's children are reaped by their own
  // parents, so no SIGCHLD may tell: check now, and again shortly.
  kill_timer_.arm(std::chrono::milliseconds(100));
  on_any_child_exit();
}

void Instance::kill_now() {
  if (pid_ > 0 || group_alive()) signal_group(SIGKILL);
}

void Instance::on_any_child_exit() {
  if (state_ != State::stopping || pid_ > 0) return;
  if (group_alive()) return;
  // A daemonized process that ignores stop_signal must still meet the
  // SIGKILL after stop_timeout: the stop is not over while one lives (its
  // end reaches the reaper, which calls here again).
  if (!daemonized_processes(program_, index_).empty()) return;
  finish_stop();
}

void Instance::finish_stop() {
  kill_timer_.cancel();
  pgid_ = -1;
  if (forced_reason_) {
    // vigil killed it for a cause: the policy decides what comes next.
    on_ended(last_exit_.value_or(ExitStatus::killed(SIGKILL)), {});
  } else if (restart_after_stop_) {
    restart_after_stop_ = false;
    pending_restart_reason_ = RestartReason::manual;
    spawn_process();
  } else {
    set_state(State::stopped);
    spdlog::info("program {}: stopped", label());
  }
  auto waiters = std::move(stop_waiters_);
  stop_waiters_.clear();
  for (auto& w : waiters) w();
}

void Instance::signal_group(int sig) {
  if (pgid_ > 0) ::kill(-pgid_, sig);
  else if (pid_ > 0) ::kill(pid_, sig);
}

bool Instance::group_alive() const {
  if (pgid_ <= 0) return false;
  return ::kill(-pgid_, 0) == 0 || errno == EPERM;
}

void Instance::apply_config() {
  const auto& pc = program_.config();
  policy_.update(RestartSettings::from(pc));

  // Heartbeat: new settings keep the schedule; a heartbeat added to a live
  // process starts its grace now, one removed stops detection.
  const bool live = pid_ > 0 && (state_ == State::starting || state_ == State::running);
  if (pc.heartbeat) {
    bool was_active = watch_.active();
    watch_.update(HeartbeatSettings::from(*pc.heartbeat));
    if (live && !was_active && !child_stopping_) watch_.start(std::chrono::steady_clock::now());
    if (live) arm_heartbeat_timer();
  } else {
    watch_.stop();
    heartbeat_timer_.cancel();
  }

  // Logs: same files get new size/keep/timestamp settings; another mode
  // (split/combined/off) means other files, used by the running pipes too.
  bool same_files = true;
  for (Stream st : {Stream::out, Stream::err}) {
    auto idx = static_cast<std::size_t>(st);
    auto path = program_.log_path(index_, st);
    if ((sinks_[idx] ? sinks_[idx]->options().path : std::filesystem::path()) != path)
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

}  // namespace vigil
