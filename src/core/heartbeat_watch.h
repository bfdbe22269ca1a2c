// Hang detection for one instance: when the next heartbeat is due, how many
// intervals have passed without one, and when that makes the child hung.
// Pure: time comes in as a parameter; it owns no timer (the shell arms one
// at deadline()) and never kills anything (it returns a verdict).
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>

#include "clock.h"
#include "config.h"
#include "units.h"

namespace vigil {



struct HeartbeatSettings {
  Duration interval = std::chrono::seconds{5};   // a heartbeat is expected at least this often (> 0)
  int misses = 3;                                // this many missed intervals in a row: hung (>= 1)
  Duration grace = std::chrono::seconds{30};     // after start, time allowed before the first heartbeat (>= 0)

  static HeartbeatSettings from(const HeartbeatConfig& c);
};

// Timeline, for a child started at s whose last heartbeat came at t:
//   no heartbeat yet:  misses at s+grace, s+grace+interval, ...
//   after one:         misses at t+interval, t+2*interval, ...
//   hung when `misses` consecutive misses are reached, i.e. at exactly
//   t + interval*misses (or s + grace + interval*(misses-1)).
class HeartbeatWatch {
 public:
  struct Verdict {
    int misses = 0;     // misses counted by this call
    bool hung = false;  // the child is (now) hung: kill and restart, reason hung
  };

  explicit HeartbeatWatch(HeartbeatSettings settings = {});

  // A new process: detection on, the first heartbeat due at now + grace.
  // Clears the consecutive misses, hung and last_beat(); total_misses() and
  // total_beats() keep counting over the instance's life.
  void start(SteadyTime now);

  // WATCHDOG=1. Always recorded (last_beat, total_beats); while detecting,
  // the next one is due at now + interval and the consecutive misses reset.
  // Ignored for detection once hung (the verdict stands until start()).
  void beat(SteadyTime now);

  // STOPPING=1, or the process ended: no detection, no deadline, until start().
  void stop();

  // EXTEND_TIMEOUT_USEC=n: the next miss is not counted before now + n
  // (clamped to one day); the deadline only ever moves later. Not a heartbeat:
  // the consecutive misses stay, and the extension ends at the next heartbeat
  // or miss. No effect when not detecting.
  void extend(SteadyTime now, std::chrono::microseconds by);

  // When the shell's one timer should fire; nullopt: disarm it.
  std::optional<SteadyTime> deadline() const;

  // The timer fired. Early (now < deadline()): nothing counted. Late: one miss
  // for each interval that has passed since the deadline, so the count does
  // not depend on timer latency — but never more than it takes to become hung
  // (a hang costs exactly `misses` misses). Afterwards deadline() is the next
  // one after now, or nullopt once hung.
  Verdict on_deadline(SteadyTime now);

  // Reload: new settings, state kept. The pending deadline is re-derived as
  // if the new settings had always applied (last heartbeat/miss + the new
  // interval, or start + the new grace). A lower `misses` that the current
  // run already reached declares hung at the next deadline.
  void update(HeartbeatSettings settings);

  const HeartbeatSettings& settings() const { return settings_; }
  bool active() const { return active_; }
  bool hung() const { return hung_; }
  int consecutive_misses() const { return consecutive_misses_; }
  std::uint64_t total_misses() const { return total_misses_; }
  std::uint64_t total_beats() const { return total_beats_; }
  std::optional<SteadyTime> last_beat() const { return last_beat_; }

  // Its state, named, for the handover to a new vigil (core/handover.h);
  // the settings come from the new vigil's config.
  template <class Archive>
  void persist(Archive& a) {
    a("active", active_);
    a("hung", hung_);
    a("in_grace", in_grace_);
    a("base", base_);
    a("extended_until", extended_until_);
    a("consecutive_misses", consecutive_misses_);
    a("total_misses", total_misses_);
    a("total_beats", total_beats_);
    a("last_beat", last_beat_);
  }

 private:
  HeartbeatSettings settings_;
  bool active_ = false;
  bool hung_ = false;
  bool in_grace_ = false;  // no heartbeat and no miss since start()
  SteadyTime base_{};      // start(), the last heartbeat, or the last miss's nominal time
  SteadyTime extended_until_ = SteadyTime::min();  // min: no extension
  int consecutive_misses_ = 0;
  std::uint64_t total_misses_ = 0;
  std::uint64_t total_beats_ = 0;
  std::optional<SteadyTime> last_beat_;
};

}  // namespace vigil
