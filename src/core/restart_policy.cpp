// The restart decision: backoff with jitter, the tally of restarts over the
// window, and when to give up. Pure: no clock reads, no timers, no processes;
// only the default jitter source touches std::random_device, once.
#include "restart_policy.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

namespace vigil {

namespace {

// base * (1 + 0.1 * jitter), rounded to whole milliseconds, within [0, max].
Duration jittered(Duration base, double jitter, Duration max) {
  // A source that strays outside its contract must not stretch the delay.
  if (!(jitter >= -1.0)) jitter = -1.0;  // also catches NaN
  if (jitter > 1.0) jitter = 1.0;
  const double ms = static_cast<double>(base.count()) * (1.0 + 0.1 * jitter);
  if (ms <= 0.0) return Duration{0};
  if (ms >= static_cast<double>(max.count())) return std::max(max, Duration{0});
  return Duration{std::llround(ms)};
}

}  // namespace

// One generator for every instance (vigil is single-threaded): a
// std::mt19937 is 5 KB, a thousand of them would be 5 MB.
std::function<double()> uniform_jitter() {
  return [] {
    static std::mt19937 gen{std::random_device{}()};
    return std::uniform_real_distribution<double>(-1.0, 1.0)(gen);
  };
}

RestartSettings RestartSettings::from(const ProgramConfig& p) {
  RestartSettings s;
  s.mode = p.restart;
  s.exit_codes = p.exit_codes;
  s.delay = p.restart_delay;
  s.delay_max = p.restart_delay_max;
  s.backoff_reset = p.backoff_reset;
  s.max_restarts = p.max_restarts;
  s.window = p.restart_window;
  return s;
}

bool is_clean_exit(const ExitStatus& status, const std::vector<int>& exit_codes) {
  return !status.signaled &&
         std::find(exit_codes.begin(), exit_codes.end(), status.code) != exit_codes.end();
}

RestartPolicy::RestartPolicy(RestartSettings settings, std::function<double()> jitter)
    : settings_(std::move(settings)),
      jitter_(jitter ? std::move(jitter) : uniform_jitter()),
      next_delay_(settings_.delay) {}

RestartDecision RestartPolicy::on_end(SteadyTime now, Duration run_time, const ExitStatus& status,
                                      std::optional<RestartReason> forced_reason) {
  RestartDecision d;
  d.reason = forced_reason ? *forced_reason
             : status.signaled ? RestartReason::signal
                               : RestartReason::exit;

  // A run that lasted backoff_reset was healthy: whatever comes next starts
  // the sequence over, even if this end itself needs no restart.
  if (run_time >= settings_.backoff_reset) next_delay_ = settings_.delay;

  bool wanted = false;
  switch (settings_.mode) {
    case RestartMode::never: wanted = false; break;
    // vigil killing the process (hung, memory, probe, start_timeout) is a
    // failure whatever exit code the kill produced.
    case RestartMode::on_failure:
      wanted = forced_reason.has_value() || !is_clean_exit(status, settings_.exit_codes);
      break;
    case RestartMode::always: wanted = true; break;
  }
  if (!wanted) {
    d.action = RestartDecision::Action::stay;
    return d;
  }

  if (settings_.window > Duration{0}) {
    // max_restarts = 3: three restarts inside the window are done, the
    // fourth is not. The refused one is not recorded.
    if (restarts_in_window(now) >= settings_.max_restarts) {
      d.action = RestartDecision::Action::fatal;
      return d;
    }
    restarts_.push_back(now);
  }
  // With window 0 nothing is recorded: the tally would only grow.

  d.action = RestartDecision::Action::restart;
  d.delay = jittered(next_delay_, jitter_(), settings_.delay_max);
  next_delay_ = next_delay_ > settings_.delay_max / 2 ? settings_.delay_max : next_delay_ * 2;
  return d;
}

void RestartPolicy::reset() {
  restarts_.clear();
  next_delay_ = settings_.delay;
}

void RestartPolicy::update(RestartSettings settings) {
  settings_ = std::move(settings);
  // Not std::clamp: a config with delay > delay_max must not be UB here.
  next_delay_ = std::max(settings_.delay, std::min(next_delay_, settings_.delay_max));
}

int RestartPolicy::restarts_in_window(SteadyTime now) const {
  if (settings_.window <= Duration{0}) return 0;
  prune(now);
  // Times after `now` (a caller asking about the past) are outside (now - window, now].
  return static_cast<int>(std::count_if(restarts_.begin(), restarts_.end(),
                                        [now](SteadyTime t) { return t <= now; }));
}

void RestartPolicy::prune(SteadyTime now) const {
  const SteadyTime oldest_kept = now - settings_.window;  // exclusive bound
  const auto first_kept = std::find_if(restarts_.begin(), restarts_.end(),
                                       [oldest_kept](SteadyTime t) { return t > oldest_kept; });
  restarts_.erase(restarts_.begin(), first_kept);
}

}  // namespace vigil
