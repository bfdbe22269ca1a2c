// The watch rules as arithmetic on (state, event, now): the cool-down's end
// is derived from when the actions finished and the settings in force, never
// stored, so a reload cannot leave a stale one behind. No clock, no timers.
#include "watch_policy.h"

#include <algorithm>
#include <charconv>
#include <climits>

namespace vigil {

namespace {

constexpr std::string_view kPidPlaceholder = "{pid}";

HeartbeatSettings heartbeat_settings(const WatchConfig& c) {
  return HeartbeatSettings::from(c.heartbeat);
}

}  // namespace

const char* to_string(WatchKind k) {
  switch (k) {
    case WatchKind::http: return "http";
    case WatchKind::tcp: return "tcp";
    case WatchKind::exec: return "exec";
    case WatchKind::notify: return "notify";
  }
  return "?";
}

WatchKind watch_kind(const WatchConfig& c) {
  if (!c.check) return WatchKind::notify;
  switch (c.check->kind) {
    case ProbeKind::http: return WatchKind::http;
    case ProbeKind::tcp: return WatchKind::tcp;
    case ProbeKind::exec: return WatchKind::exec;
  }
  return WatchKind::http;
}

const char* to_string(ActionResult r) {
  switch (r) {
    case ActionResult::ok: return "ok";
    case ActionResult::failed: return "failed";
    case ActionResult::timeout: return "timeout";
  }
  return "?";
}

const char* to_string(WatchState s) {
  switch (s) {
    case WatchState::waiting: return "waiting";
    case WatchState::up: return "up";
    case WatchState::failing: return "failing";
    case WatchState::acting: return "acting";
    case WatchState::cooldown: return "cooldown";
    case WatchState::down: return "down";
  }
  return "?";
}

WatchPolicy::WatchPolicy(const WatchConfig& config) : heartbeat_(heartbeat_settings(config)) {
  notify_ = !config.check;
  update(config);
}

void WatchPolicy::update(const WatchConfig& config) {
  has_actions_ = !config.on_failure.empty();
  // Settings a validated config never holds would act without a failure or
  // never end a cool-down.
  if (config.check) {
    threshold_ = std::max(config.check->failures, 1);
    cooldown_ = std::max(config.check->interval, Duration{0}) * threshold_;
  } else {
    threshold_ = std::max(config.heartbeat.misses, 1);
    cooldown_ = std::max(config.heartbeat.interval, Duration{0}) * threshold_;
    heartbeat_.update(heartbeat_settings(config));
  }
}

bool WatchPolicy::failing() const { return notify_ ? hung_ : consecutive_ >= threshold_; }

std::optional<WatchAction> WatchPolicy::act(SteadyTime now, ActReason reason) {
  if (!has_actions_ || acting_) return std::nullopt;
  if (finished_at_ && now < *finished_at_ + cooldown_) return std::nullopt;
  acting_ = true;
  WatchAction a{reason, pid_};
  // The commands given this pid are meant to end that process; see the
  // class comment.
  pid_.reset();
  return a;
}

std::optional<WatchAction> WatchPolicy::on_check(bool ok, SteadyTime now) {
  last_check_ = ok;
  last_seen_ = now;
  if (ok) {
    consecutive_ = 0;
    return std::nullopt;
  }
  ++failures_;
  ++consecutive_;
  if (consecutive_ < threshold_) return std::nullopt;
  return act(now, consecutive_ == threshold_ ? ActReason::failures : ActReason::still_failing);
}

void WatchPolicy::on_ready(SteadyTime now) {
  registered_ = true;
  hung_ = false;
  consecutive_ = 0;
  last_seen_ = now;
  heartbeat_.start(now);
}

void WatchPolicy::on_beat(SteadyTime now) {
  // Recorded even from a process that never registered (total and time).
  heartbeat_.beat(now);
  if (!registered_ && !hung_) return;
  last_seen_ = now;
  consecutive_ = 0;
  if (hung_) {
    // It beats again: the stall is over. Detection starts afresh from this
    // heartbeat (HeartbeatWatch ignores beats once hung, until start()).
    hung_ = false;
    if (registered_) {
      heartbeat_.start(now);
      heartbeat_.beat(now);
    }
  }
}

void WatchPolicy::on_main_pid(int pid) {
  if (pid > 0) pid_ = pid;
}

void WatchPolicy::on_stopping() {
  registered_ = false;
  hung_ = false;
  consecutive_ = 0;
  pid_.reset();
  heartbeat_.stop();
}

std::optional<WatchAction> WatchPolicy::on_trigger(SteadyTime now) {
  ++failures_;
  ++consecutive_;
  hung_ = true;
  heartbeat_.stop();
  return act(now, ActReason::trigger);
}

std::optional<WatchAction> WatchPolicy::on_heartbeat_deadline(SteadyTime now) {
  if (!registered_ || hung_) return std::nullopt;
  const HeartbeatWatch::Verdict v = heartbeat_.on_deadline(now);
  failures_ += static_cast<std::uint64_t>(v.misses);
  consecutive_ += v.misses;
  if (!v.hung) return std::nullopt;
  hung_ = true;
  return act(now, ActReason::hung);
}

void WatchPolicy::on_actions_finished(SteadyTime now, const std::vector<ActionResult>& results) {
  for (ActionResult r : results) ++actions_[static_cast<std::size_t>(r)];
  acting_ = false;
  finished_at_ = now;
}

std::optional<SteadyTime> WatchPolicy::next_action_time() const {
  if (!has_actions_ || acting_ || !failing()) return std::nullopt;
  // Failing without having acted for it: only after a reload that gave the
  // watch commands (or lowered the threshold below the count): act now.
  if (!finished_at_) return SteadyTime::min();
  return *finished_at_ + cooldown_;
}

std::optional<WatchAction> WatchPolicy::on_next_action_time(SteadyTime now) {
  const std::optional<SteadyTime> due = next_action_time();
  if (!due || now < *due) return std::nullopt;
  return act(now, ActReason::still_failing);
}

WatchState WatchPolicy::state() const {
  if (acting_) return WatchState::acting;
  if (notify_ ? !registered_ && !hung_ : !last_check_) return WatchState::waiting;
  if (failing()) return has_actions_ ? WatchState::cooldown : WatchState::down;
  if (consecutive_ > 0) return WatchState::failing;
  return WatchState::up;
}

std::optional<bool> WatchPolicy::up() const {
  if (!notify_) return last_check_;
  if (!registered_ && !hung_) return std::nullopt;
  return !hung_ && consecutive_ == 0;
}

std::optional<int> parse_main_pid(std::string_view value) {
  if (value.empty() || value.size() > 10) return std::nullopt;
  long long pid = 0;
  const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), pid, 10);
  if (ec != std::errc{} || ptr != value.data() + value.size()) return std::nullopt;
  if (pid <= 0 || pid > INT_MAX) return std::nullopt;
  return static_cast<int>(pid);
}

std::optional<std::vector<std::string>> expand_pid(const std::vector<std::string>& argv,
                                                   std::optional<int> pid) {
  std::vector<std::string> out;
  out.reserve(argv.size());
  const std::string digits = pid ? std::to_string(*pid) : std::string();
  for (const auto& arg : argv) {
    std::string a;
    std::size_t from = 0;
    for (std::size_t at; (at = arg.find(kPidPlaceholder, from)) != std::string::npos;
         from = at + kPidPlaceholder.size()) {
      if (!pid) return std::nullopt;
      a.append(arg, from, at - from);
      a += digits;
    }
    a.append(arg, from, std::string::npos);
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace vigil
