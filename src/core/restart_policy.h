// Decides what happens after an instance's process ends: restart after a
// delay, stay down, or give up (fatal). Pure: time comes in as a parameter,
// jitter from an injectable source; no timers, no processes.
#pragma once
#include <chrono>
#include <functional>
#include <vector>

#include "clock.h"
#include "config.h"
#include "exit_status.h"
#include "state.h"

namespace vigil {



struct RestartSettings {
  RestartMode mode = RestartMode::always;
  std::vector<int> exit_codes{0};
  Duration delay = 100ms;
  Duration delay_max = 30s;
  Duration backoff_reset = 60s;
  int max_restarts = 5;
  Duration window = 60s;  // 0: never give up

  static RestartSettings from(const ProgramConfig& p);
};

struct RestartDecision {
  enum class Action {
    restart,  // go to backoff, start again after `delay`
    stay,     // no restart wanted (restart = never / clean exit on-failure): state exited
    fatal,    // too many restarts in the window: give up
  };
  Action action = Action::stay;
  Duration delay{0};
  RestartReason reason = RestartReason::exit;
};

class RestartPolicy {
 public:
  // jitter() returns a value in [-1, 1]; the delay is scaled by 1 + 0.1*jitter().
  // The default source is uniform random.
  explicit RestartPolicy(RestartSettings settings, std::function<double()> jitter = {});

  // The process ended without vigil asking it to. `reason` is exit or signal
  // for a plain end (derived from `status`), or hung / memory / probe /
  // start_timeout when vigil killed it for that cause. `run_time` is how
  // long the process lived (0 for a failed exec). `now` is when it ended.
  RestartDecision on_end(SteadyTime now, Duration run_time, const ExitStatus& status,
                         std::optional<RestartReason> forced_reason = std::nullopt);

  // A manual start/restart: clears the window tally and the backoff.
  void reset();

  // New settings from a reload; the tally and current delay are kept.
  void update(RestartSettings settings);

  const RestartSettings& settings() const { return settings_; }
  // The un-jittered delay the next restart would use.
  Duration next_base_delay() const { return next_delay_; }
  // Restarts counted in the window as of `now`.
  int restarts_in_window(SteadyTime now) const;

  // The tally and the current delay, named, for the handover to a new vigil
  // (core/handover.h); the settings come from the new vigil's config.
  template <class Archive>
  void persist(Archive& a) {
    a("next_delay", next_delay_);
    a("restarts", restarts_);
  }

 private:
  void prune(SteadyTime now) const;

  RestartSettings settings_;
  std::function<double()> jitter_;
  Duration next_delay_;
  // Times of restarts inside the window, oldest first: a vector, which
  // allocates nothing until the first restart (a deque takes over 500 bytes
  // from its creation, for each of thousands of instances).
  mutable std::vector<SteadyTime> restarts_;
};

// Uniform in [-1, 1], from one generator seeded once: the default jitter.
std::function<double()> uniform_jitter();

// Whether an exit counts as clean for restart = "on-failure".
bool is_clean_exit(const ExitStatus& status, const std::vector<int>& exit_codes);

}  // namespace vigil
