// The instance life cycle: the transition table first, then its handlers.
// Messages are written here, as decisions: the shell only prefixes them.
#include "instance_machine.h"

#include <algorithm>
#include <cstdio>
#include <utility>

namespace vigil {

const std::array<Event, kEventCount> kAllEvents{
    Event::start,          Event::stop,          Event::restart,       Event::spawned,
    Event::spawn_failed,   Event::exited,        Event::tree_gone,     Event::ready_signal,
    Event::min_uptime,     Event::start_timeout, Event::heartbeat,     Event::heartbeat_due,
    Event::hang_declared,  Event::child_stopping, Event::extend_timeout, Event::probe_due,
    Event::probe_passed,   Event::probe_failed,  Event::memory_sample, Event::backoff_due,
    Event::kill_due,       Event::settings_changed};

const char* to_string(Event e) {
  switch (e) {
    case Event::start: return "start";
    case Event::stop: return "stop";
    case Event::restart: return "restart";
    case Event::spawned: return "spawned";
    case Event::spawn_failed: return "spawn_failed";
    case Event::exited: return "exited";
    case Event::tree_gone: return "tree_gone";
    case Event::ready_signal: return "ready_signal";
    case Event::min_uptime: return "min_uptime";
    case Event::start_timeout: return "start_timeout";
    case Event::heartbeat: return "heartbeat";
    case Event::heartbeat_due: return "heartbeat_due";
    case Event::hang_declared: return "hang_declared";
    case Event::child_stopping: return "child_stopping";
    case Event::extend_timeout: return "extend_timeout";
    case Event::probe_due: return "probe_due";
    case Event::probe_passed: return "probe_passed";
    case Event::probe_failed: return "probe_failed";
    case Event::memory_sample: return "memory_sample";
    case Event::backoff_due: return "backoff_due";
    case Event::kill_due: return "kill_due";
    case Event::settings_changed: return "settings_changed";
  }
  return "unknown";
}

const char* to_string(TimerId t) {
  switch (t) {
    case TimerId::ready: return "ready";
    case TimerId::start: return "start";
    case TimerId::heartbeat: return "heartbeat";
    case TimerId::probe: return "probe";
    case TimerId::backoff: return "backoff";
    case TimerId::kill: return "kill";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// The table. Rows are events, columns states, in the order of the enums.
//   X  impossible: the machine cancelled (or never asked for) what would send it
//   _  ignored: it can happen (a message from a process on its way out, a
//      repeated request) and on purpose changes nothing

using M = InstanceMachine;
#define X &M::call<&M::impossible>
#define _ &M::call<&M::ignore>
#define H(handler) &M::call<&M::handler>

// clang-format off
const M::Handler M::kTransitions[kEventCount][7] = {
//  event \ state         stopped                 starting                running                 stopping                exited                  backoff                 fatal
  /* start            */ {H(start_process),      _,                     _,                     H(start_after_stop),   H(start_process),      H(start_process),      H(start_process)},
  /* stop             */ {H(stop_idle),          H(stop_process),       H(stop_process),       H(stop_again),         H(stop_idle),          H(stop_idle),          H(stop_idle)},
  /* restart          */ {H(restart_idle),       H(restart_process),    H(restart_process),    H(restart_after_stop), H(restart_idle),       H(restart_idle),       H(restart_idle)},
  /* spawned          */ {X,                     H(on_spawned),         X,                     X,                     X,                     X,                     X},
  /* spawn_failed     */ {X,                     H(on_spawn_failed),    X,                     X,                     X,                     X,                     X},
  /* exited           */ {X,                     H(on_exited),          H(on_exited),          H(on_exited_stopping), X,                     X,                     X},
  /* tree_gone        */ {_,                     X,                     X,                     H(on_tree_gone),       _,                     _,                     _},
  /* ready_signal     */ {_,                     H(on_ready_signal),    _,                     _,                     _,                     _,                     _},
  /* min_uptime       */ {X,                     H(on_min_uptime),      X,                     X,                     X,                     X,                     X},
  /* start_timeout    */ {X,                     H(on_start_timeout),   X,                     X,                     X,                     X,                     X},
  /* heartbeat        */ {H(on_heartbeat),       H(on_heartbeat),       H(on_heartbeat),       H(on_heartbeat),       H(on_heartbeat),       H(on_heartbeat),       H(on_heartbeat)},
  /* heartbeat_due    */ {X,                     H(on_heartbeat_due),   H(on_heartbeat_due),   X,                     X,                     X,                     X},
  /* hang_declared    */ {_,                     H(on_hang_declared),   H(on_hang_declared),   _,                     _,                     _,                     _},
  /* child_stopping   */ {_,                     H(on_child_stopping),  H(on_child_stopping),  _,                     _,                     _,                     _},
  /* extend_timeout   */ {_,                     H(on_extend),          H(on_extend),          H(on_extend_stopping), _,                     _,                     _},
  /* probe_due        */ {X,                     H(on_probe_due),       H(on_probe_due),       X,                     X,                     X,                     X},
  /* probe_passed     */ {X,                     H(on_probe_passed),    H(on_probe_passed),    X,                     X,                     X,                     X},
  /* probe_failed     */ {X,                     H(on_probe_failed),    H(on_probe_failed),    X,                     X,                     X,                     X},
  /* memory_sample    */ {X,                     H(on_memory_sample),   H(on_memory_sample),   _,                     X,                     X,                     X},
  /* backoff_due      */ {X,                     X,                     X,                     X,                     X,                     H(on_backoff_due),     X},
  /* kill_due         */ {X,                     X,                     X,                     H(on_kill_due),        X,                     X,                     X},
  /* settings_changed */ {H(on_settings_changed), H(on_settings_changed), H(on_settings_changed), H(on_settings_changed), H(on_settings_changed), H(on_settings_changed), H(on_settings_changed)},
};

// clang-format on

#undef X
#undef _
#undef H

const char* InstanceMachine::kind_of(State s, Event e) {
  Handler h = kTransitions[static_cast<std::size_t>(e)][static_cast<std::size_t>(s)];
  if (h == &M::call<&M::impossible>) return "impossible";
  if (h == &M::call<&M::ignore>) return "ignored";
  return "handled";
}

// ---------------------------------------------------------------------------

namespace {

std::string seconds_text(Duration d) {
  // "1.6s", "250ms", "2m5s"
  if (d < std::chrono::seconds(1) || d >= std::chrono::minutes(1)) return format_duration(d);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

Duration since(SteadyTime from, SteadyTime to) {
  return std::chrono::duration_cast<Duration>(to - from);
}

ExitKind kind_of_exit(const ExitStatus& s, const std::vector<int>& clean_codes) {
  if (s.signaled) return ExitKind::signal;
  return is_clean_exit(s, clean_codes) ? ExitKind::clean : ExitKind::code;
}

}  // namespace

InstanceMachine::InstanceMachine(const ProgramConfig& config, std::function<double()> jitter)
    : config_(config),
      jitter_(jitter ? std::move(jitter) : uniform_jitter()),
      policy_(RestartSettings::from(config), jitter_) {
  if (config.heartbeat) heartbeat_.update(HeartbeatSettings::from(*config.heartbeat));
}

void InstanceMachine::on(Event event, const EventData& data, SteadyTime now, Actions& out) {
  out.clear();
  out_ = &out;
  now_ = now;
  kTransitions[static_cast<std::size_t>(event)][static_cast<std::size_t>(state_)](*this, data);
  out_ = nullptr;
}

Actions InstanceMachine::on(Event event, const EventData& data, SteadyTime now) {
  Actions out;
  on(event, data, now, out);
  return out;
}

bool InstanceMachine::stopping_for(RestartReason reason) const {
  return state_ == State::stopping && after_stop_ == AfterStop::restart_for && stop_reason_ == reason;
}

std::optional<RestartReason> InstanceMachine::restart_reason() const {
  return pending_reason_ ? pending_reason_ : last_reason_;
}

std::optional<SteadyTime> InstanceMachine::next_start() const {
  if (state_ != State::backoff) return std::nullopt;
  return next_start_;
}

// ---------------------------------------------------------------------------
// Steps

void InstanceMachine::set_state(State s) {
  if (s == state_) return;
  Action a{Action::Kind::state};
  a.from = state_;
  a.to = s;
  state_ = s;
  emit(std::move(a));
}

void InstanceMachine::log(LogLevel level, std::string text) {
  Action a{Action::Kind::log};
  a.level = level;
  a.text = std::move(text);
  emit(std::move(a));
}

void InstanceMachine::arm(TimerId t, SteadyTime at) {
  armed_[static_cast<std::size_t>(t)] = at;
  Action a{Action::Kind::arm};
  a.timer = t;
  a.at = at;
  emit(std::move(a));
}

void InstanceMachine::cancel(TimerId t) {
  auto& slot = armed_[static_cast<std::size_t>(t)];
  if (!slot) return;
  slot.reset();
  Action a{Action::Kind::cancel};
  a.timer = t;
  emit(std::move(a));
}

bool InstanceMachine::live() const {
  return has_process_ && (state_ == State::starting || state_ == State::running);
}

// The heartbeat timer only has to fire at or before the deadline: a beat
// that moves the deadline later leaves the timer alone, and a timer that
// fires early is re-armed (on_heartbeat_due). So a beat costs no action,
// except one that brings the deadline before the armed time.
void InstanceMachine::arm_heartbeat() {
  auto deadline = heartbeat_.deadline();
  if (!deadline) {
    cancel(TimerId::heartbeat);
    return;
  }
  auto armed = armed_[static_cast<std::size_t>(TimerId::heartbeat)];
  if (armed && *armed <= *deadline && *armed > now_) return;
  arm(TimerId::heartbeat, *deadline);
}

void InstanceMachine::spawn() {
  if (pending_reason_) {
    counts_.restarts[static_cast<std::size_t>(*pending_reason_)]++;
    last_reason_ = pending_reason_;
    pending_reason_.reset();
  }
  cancel(TimerId::backoff);
  child_stopping_ = false;
  set_state(State::starting);
  emit(Action{Action::Kind::spawn});
}

void InstanceMachine::record_exit(const ExitStatus& status, std::string reason) {
  last_exit_ = status;
  counts_.exits[static_cast<std::size_t>(kind_of_exit(status, config_.exit_codes))]++;
  recent_exits_.push_back({status, now_, since(started_at_, now_), std::move(reason)});
  if (recent_exits_.size() > kRecentExits) recent_exits_.erase(recent_exits_.begin());
}

void InstanceMachine::set_error(std::string text) {
  last_error_ = std::move(text);
  last_error_at_ = now_;
}

// "6 restarts within 1m: exited with exit code 1 (x4), hung: no heartbeat
// for 15s (3 missed intervals of 5s) (x2)": the ends the window still holds,
// their reasons grouped in order of first appearance.
std::string InstanceMachine::fatal_text() const {
  std::vector<std::pair<std::string, int>> reasons;
  int ends = 0;
  for (const auto& e : recent_exits_) {
    if (config_.restart_window > Duration{0} && e.at + config_.restart_window < now_) continue;
    ++ends;
    auto it = std::find_if(reasons.begin(), reasons.end(),
                           [&e](const auto& r) { return r.first == e.reason; });
    if (it == reasons.end())
      reasons.emplace_back(e.reason, 1);
    else
      ++it->second;
  }
  std::string text = "fatal: gave up after more than " + std::to_string(config_.max_restarts) +
                     " restart" + (config_.max_restarts == 1 ? "" : "s") + " within " +
                     format_duration(config_.restart_window);
  if (ends == 0) return text;
  text += "; the last " + std::to_string(ends) + " end" + (ends == 1 ? "" : "s") + ": ";
  for (std::size_t i = 0; i < reasons.size(); ++i) {
    if (i > 0) text += ", ";
    text += reasons[i].first;
    if (reasons[i].second > 1) text += " (x" + std::to_string(reasons[i].second) + ")";
  }
  return text;
}

// What watches the current process ends with it.
void InstanceMachine::end_process_watches() {
  cancel(TimerId::ready);
  cancel(TimerId::start);
  cancel(TimerId::heartbeat);
  cancel(TimerId::probe);
  heartbeat_.stop();
  memory_.reset();
  if (probe_in_flight_) emit(Action{Action::Kind::cancel_probe});
  probe_in_flight_ = false;
  probe_failures_ = 0;
}

void InstanceMachine::begin_stop(AfterStop after, RestartReason reason) {
  after_stop_ = after;
  stop_reason_ = reason;
  end_process_watches();
  set_state(State::stopping);
  const int sig = config_.stop_signal;
  if (has_process_)
    log(LogLevel::info, "stopping (SIG" + signal_name(sig) + " to process group " +
                            std::to_string(pid_) + ")");
  else
    log(LogLevel::info, "stopping what it left running (SIG" + signal_name(sig) + ")");
  Action a{Action::Kind::signal};
  a.signal = sig;
  emit(std::move(a));
  stop_signalled_ = now_;
  killed_ = false;
  arm(TimerId::kill, now_ + config_.stop_timeout);
}

// vigil kills it for a cause (hung, memory, probe, start_timeout): the stop
// sequence, then the restart policy decides with that reason.
void InstanceMachine::terminate(RestartReason reason, std::string why) {
  set_error(why);
  kill_cause_ = std::move(why);
  begin_stop(AfterStop::restart_for, reason);
}

void InstanceMachine::finish_stop() {
  cancel(TimerId::kill);
  switch (after_stop_) {
    case AfterStop::stay_stopped:
      set_state(State::stopped);
      log(LogLevel::info, "stopped");
      break;
    case AfterStop::start:
      spawn();
      break;
    case AfterStop::restart_manual:
      pending_reason_ = RestartReason::manual;
      spawn();
      break;
    case AfterStop::restart_for:
      process_ended(last_exit_.value_or(ExitStatus::killed(SIGKILL)), {});
      break;
  }
  after_stop_ = AfterStop::stay_stopped;
  emit(Action{Action::Kind::stopped});
}

// The process is gone (or never started: `cause` says why); the restart
// policy decides what comes next.
void InstanceMachine::process_ended(const ExitStatus& status, const std::string& cause) {
  const Duration run_time = cause.empty() ? since(started_at_, now_) : Duration(0);
  std::optional<RestartReason> forced;
  if (after_stop_ == AfterStop::restart_for && cause.empty() && state_ == State::stopping)
    forced = stop_reason_;
  RestartDecision d = policy_.on_end(now_, run_time, status, forced);
  std::string what = !cause.empty() ? cause
                     : forced       ? std::string("stopped (") + to_string(*forced) + ")"
                                    : (status.signaled ? "killed by " : "exited with ") + status.describe();
  if (cause.empty()) what += " after " + seconds_text(run_time);

  switch (d.action) {
    case RestartDecision::Action::restart:
      set_state(State::exited);
      set_state(State::backoff);
      pending_reason_ = d.reason;
      next_start_ = now_ + d.delay;
      arm(TimerId::backoff, next_start_);
      log(cause.empty() ? LogLevel::info : LogLevel::error,
          what + " (restarting in " + seconds_text(d.delay) + ")");
      break;
    case RestartDecision::Action::stay:
      set_state(State::exited);
      log(LogLevel::info, what + " (not restarted: restart = \"" + to_string(config_.restart) + "\")");
      break;
    case RestartDecision::Action::fatal:
      set_error(fatal_text());
      set_state(State::fatal);
      log(LogLevel::error, what + " (giving up: more than " + std::to_string(config_.max_restarts) +
                               " restarts within " + format_duration(config_.restart_window) +
                               "; state fatal until a manual start)");
      break;
  }
}

// ---------------------------------------------------------------------------
// Handlers

void InstanceMachine::impossible(const EventData&) {
  // Counted in the debug log only: reaching here means a shell sent an
  // event the machine had cancelled; the state stays as it is.
}

void InstanceMachine::ignore(const EventData&) {}

void InstanceMachine::start_process(const EventData& d) {
  if (d.manual) policy_.reset();
  spawn();
}

void InstanceMachine::start_after_stop(const EventData& d) {
  if (d.manual) policy_.reset();
  // Start again as soon as the stop completes (a restart_for becomes a plain
  // start: somebody asked for it, the policy need not decide).
  if (after_stop_ != AfterStop::restart_manual) after_stop_ = AfterStop::start;
}

void InstanceMachine::stop_process(const EventData&) { begin_stop(AfterStop::stay_stopped); }

void InstanceMachine::stop_again(const EventData&) {
  // Whatever was to follow the stop (a restart for a cause, a start) is off.
  after_stop_ = AfterStop::stay_stopped;
}

void InstanceMachine::stop_idle(const EventData& d) {
  cancel(TimerId::backoff);
  pending_reason_.reset();
  if (d.leftovers) {
    // The main process is gone but what it started is not (a daemon that
    // left the group): the stop reaches it as it would reach the group.
    begin_stop(AfterStop::stay_stopped);
    emit(Action{Action::Kind::check_tree});
    return;
  }
  set_state(State::stopped);
  emit(Action{Action::Kind::stopped});
}

void InstanceMachine::restart_process(const EventData&) {
  policy_.reset();
  begin_stop(AfterStop::restart_manual);
}

void InstanceMachine::restart_after_stop(const EventData&) {
  policy_.reset();
  after_stop_ = AfterStop::restart_manual;
}

void InstanceMachine::restart_idle(const EventData& d) {
  policy_.reset();
  if (d.leftovers) {
    // What the last process left running goes first: never two of it.
    cancel(TimerId::backoff);
    pending_reason_.reset();
    begin_stop(AfterStop::restart_manual);
    emit(Action{Action::Kind::check_tree});
    return;
  }
  pending_reason_ = RestartReason::manual;
  spawn();
}

void InstanceMachine::on_spawned(const EventData& d) {
  if (has_process_) return;
  has_process_ = true;
  pid_ = d.pid;
  started_at_ = now_;
  log(LogLevel::info, "started, pid " + std::to_string(pid_));
  memory_.reset();
  probe_failures_ = 0;
  probe_phased_ = false;
  if (config_.ready == ReadyMode::uptime)
    arm(TimerId::ready, now_ + config_.min_uptime);
  else
    arm(TimerId::start, now_ + config_.start_timeout);
  if (config_.heartbeat) {
    heartbeat_.start(now_);
    arm_heartbeat();
  }
  if (config_.probe) arm(TimerId::probe, now_ + config_.probe->initial_delay);
}

void InstanceMachine::on_spawn_failed(const EventData& d) {
  if (has_process_) return;
  // A failed start is an end after zero seconds: the restart policy
  // throttles it and eventually gives up, so it never loops hot.
  const ExitStatus status = ExitStatus::exited(127);
  started_at_ = now_;
  const std::string why = d.text.empty() ? "cannot start" : d.text;
  record_exit(status, why);
  set_error(why);
  process_ended(status, why);
}

void InstanceMachine::on_exited(const EventData& d) {
  if (!has_process_) return;
  has_process_ = false;
  const std::string how = (d.status.signaled ? "killed by " : "exited with ") + d.status.describe();
  record_exit(d.status, how);
  if (kind_of_exit(d.status, config_.exit_codes) != ExitKind::clean) set_error(how);
  end_process_watches();
  // What the main process left behind in its group goes with it, so the
  // next run starts clean (the port is free, no duplicate worker).
  emit(Action{Action::Kind::kill_leftovers});
  process_ended(d.status, {});
}

void InstanceMachine::on_exited_stopping(const EventData& d) {
  if (!has_process_) return;
  has_process_ = false;
  std::string why;
  switch (after_stop_) {
    case AfterStop::restart_for: why = kill_cause_; break;
    case AfterStop::restart_manual: why = "restarted (manual)"; break;
    case AfterStop::stay_stopped:
    case AfterStop::start: why = "stopped"; break;
  }
  if (child_stopping_ && after_stop_ != AfterStop::restart_for) why += " (STOPPING=1 sent)";
  record_exit(d.status, std::move(why));
  emit(Action{Action::Kind::check_tree});
}

void InstanceMachine::on_tree_gone(const EventData&) {
  // The stop is over once the main process was reaped and nothing of its
  // tree is left (a daemonized process ignoring stop_signal must still meet
  // the SIGKILL after stop_timeout).
  if (has_process_) return;
  finish_stop();
}

void InstanceMachine::on_ready_signal(const EventData&) {
  if (!has_process_ || config_.ready != ReadyMode::notify) return;
  cancel(TimerId::start);
  // Said before the state changes: the change may start what waited for
  // it (the next step of a rolling restart), whose lines come after.
  log(LogLevel::info, "ready");
  set_state(State::running);
}

void InstanceMachine::on_min_uptime(const EventData&) {
  armed_[static_cast<std::size_t>(TimerId::ready)].reset();
  if (!has_process_) return;
  set_state(State::running);
}

void InstanceMachine::on_start_timeout(const EventData&) {
  armed_[static_cast<std::size_t>(TimerId::start)].reset();
  if (!has_process_) return;
  const std::string signal_text =
      config_.ready == ReadyMode::probe ? "no passing probe" : "not ready (READY=1)";
  std::string why = signal_text + " within start_timeout " + format_duration(config_.start_timeout);
  log(LogLevel::error, why + "; restarting");
  terminate(RestartReason::start_timeout, std::move(why));
}

void InstanceMachine::on_heartbeat(const EventData&) {
  // Every beat is counted (the metric); detection only while it is on.
  heartbeat_.beat(now_);
  // Only the first beat after the grace can bring the deadline before the
  // armed timer; later beats move it on and cost no action.
  if (live() && heartbeat_.active()) arm_heartbeat();
}

void InstanceMachine::on_heartbeat_due(const EventData&) {
  armed_[static_cast<std::size_t>(TimerId::heartbeat)].reset();
  if (!live() || !config_.heartbeat) return;
  auto verdict = heartbeat_.on_deadline(now_);
  if (verdict.hung) {
    const auto& hb = *config_.heartbeat;
    std::string why = "hung: no heartbeat for " + format_duration(hb.interval * hb.misses) + " (" +
                      std::to_string(hb.misses) + " missed intervals of " +
                      format_duration(hb.interval) + ")";
    log(LogLevel::error, why + "; restarting");
    terminate(RestartReason::hung, std::move(why));
    return;
  }
  if (verdict.misses > 0)
    log(LogLevel::warn, "missed heartbeat (" + std::to_string(heartbeat_.consecutive_misses()) + " of " +
                            std::to_string(config_.heartbeat->misses) + " in a row)");
  arm_heartbeat();
}

void InstanceMachine::on_hang_declared(const EventData&) {
  if (!has_process_) return;
  std::string why = "declared itself hung (WATCHDOG=trigger)";
  log(LogLevel::error, why + "; restarting");
  terminate(RestartReason::hung, std::move(why));
}

void InstanceMachine::on_child_stopping(const EventData&) {
  if (!has_process_ || child_stopping_) return;
  child_stopping_ = true;
  // A clean shutdown has begun: neither a missed heartbeat nor a failing
  // probe is a reason to kill it now.
  heartbeat_.stop();
  cancel(TimerId::heartbeat);
  cancel(TimerId::probe);
  if (probe_in_flight_) emit(Action{Action::Kind::cancel_probe});
  probe_in_flight_ = false;
  log(LogLevel::info, "stopping on its own (STOPPING=1); hang detection off");
}

void InstanceMachine::on_extend(const EventData& d) {
  if (!has_process_) return;
  if (state_ == State::starting && armed(TimerId::start)) arm(TimerId::start, now_ + d.extend);
  if (heartbeat_.active()) {
    heartbeat_.extend(now_, d.extend);  // only ever later: the armed timer re-arms itself
    arm_heartbeat();
  }
}

void InstanceMachine::on_extend_stopping(const EventData& d) {
  // More time before SIGKILL; once SIGKILL went out there is nothing to wait for.
  if (killed_ || !armed(TimerId::kill)) return;
  arm(TimerId::kill, now_ + d.extend);
}

void InstanceMachine::on_probe_due(const EventData&) {
  armed_[static_cast<std::size_t>(TimerId::probe)].reset();
  if (!has_process_ || !config_.probe || child_stopping_) return;
  // At most one probe in flight: a slow one makes the next tick wait.
  if (!probe_in_flight_) {
    probe_in_flight_ = true;
    emit(Action{Action::Kind::run_probe});
  }
  // Instances started together would probe together for ever (500 probes
  // in one burst each second): after its first probe, each process takes a
  // phase of its own, a random part of an interval, and keeps it.
  Duration next = config_.probe->interval;
  if (!probe_phased_) {
    probe_phased_ = true;
    const double u = std::clamp((jitter_() + 1.0) / 2.0, 0.0, 1.0);
    next = std::max(Duration{1}, std::chrono::duration_cast<Duration>(next * u));
  }
  arm(TimerId::probe, now_ + next);
}

void InstanceMachine::on_probe_passed(const EventData&) {
  if (!probe_in_flight_) return;
  probe_in_flight_ = false;
  probe_failures_ = 0;
  if (state_ == State::starting && config_.ready == ReadyMode::probe) {
    cancel(TimerId::start);
    log(LogLevel::info, "ready (probe passed)");  // before: see on_ready_signal
    set_state(State::running);
  }
}

void InstanceMachine::on_probe_failed(const EventData& d) {
  if (!probe_in_flight_) return;
  probe_in_flight_ = false;
  // Not ready yet with ready = "probe": start_timeout judges the start.
  if (state_ == State::starting && config_.ready == ReadyMode::probe) return;
  const int limit = config_.probe ? config_.probe->failures : 1;
  ++probe_failures_;
  if (probe_failures_ >= limit) {
    std::string why = "probe failed " + std::to_string(probe_failures_) + " time" +
                      (probe_failures_ == 1 ? "" : "s") + " in a row (" + d.probe.detail + ")";
    log(LogLevel::error, why + "; restarting");
    terminate(RestartReason::probe, std::move(why));
    return;
  }
  log(LogLevel::warn, "probe failed (" + std::to_string(probe_failures_) + " of " +
                          std::to_string(limit) + " in a row): " + d.probe.detail);
}

void InstanceMachine::on_memory_sample(const EventData& d) {
  if (!has_process_) return;
  if (!memory_.sample(d.rss_bytes, config_.memory_limit_bytes) || d.sibling_restarting) return;
  std::string why = "memory " + format_size(d.rss_bytes) + " over the limit of " +
                    format_size(*config_.memory_limit_bytes) + " for " +
                    std::to_string(kMemoryLimitSamples) + " samples";
  log(LogLevel::error, why + "; restarting");
  terminate(RestartReason::memory, std::move(why));
}

void InstanceMachine::on_backoff_due(const EventData&) {
  armed_[static_cast<std::size_t>(TimerId::backoff)].reset();
  spawn();
}

void InstanceMachine::on_kill_due(const EventData&) {
  armed_[static_cast<std::size_t>(TimerId::kill)].reset();
  if (!killed_) {
    killed_ = true;
    char waited[32];
    std::snprintf(waited, sizeof waited, "%.1f",
                  std::chrono::duration<double>(now_ - stop_signalled_).count());
    log(LogLevel::warn, std::string("still running ") + waited + "s after SIG" +
                            signal_name(config_.stop_signal) + "; sending SIGKILL");
  }
  Action a{Action::Kind::signal};
  a.signal = SIGKILL;
  emit(std::move(a));
  arm(TimerId::kill, now_ + kKillRecheck);
  if (!has_process_) emit(Action{Action::Kind::check_tree});
}

void InstanceMachine::on_settings_changed(const EventData&) {
  policy_.update(RestartSettings::from(config_));

  // Heartbeat: new settings keep the schedule; one added to a live process
  // starts its grace now, one removed stops detection.
  if (config_.heartbeat) {
    const bool was_active = heartbeat_.active();
    heartbeat_.update(HeartbeatSettings::from(*config_.heartbeat));
    if (live() && !was_active && !child_stopping_) heartbeat_.start(now_);
    if (live()) arm_heartbeat();
  } else {
    heartbeat_.stop();
    cancel(TimerId::heartbeat);
  }

  // Probe: one added to a live process starts after its initial_delay from
  // the process's start (at once if that is past); one removed stops.
  if (config_.probe) {
    if (live() && !child_stopping_ && !armed(TimerId::probe))
      arm(TimerId::probe, std::max(now_, started_at_ + config_.probe->initial_delay));
  } else {
    cancel(TimerId::probe);
    if (probe_in_flight_) emit(Action{Action::Kind::cancel_probe});
    probe_in_flight_ = false;
    probe_failures_ = 0;
  }
  if (!config_.memory_limit_bytes) memory_.reset();
}

}  // namespace vigil
