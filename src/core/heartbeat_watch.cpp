// Heartbeat deadlines as arithmetic on (state, now): the deadline is derived
// from the last event and the settings, never stored, so a reload or a late
// timer cannot leave a stale one behind. No clock reads, no timers.
#include "heartbeat_watch.h"

#include <algorithm>

namespace vigil {

namespace {

// Settings a validated config never produces would otherwise divide by zero
// or declare hung without a single miss.
HeartbeatSettings normalized(HeartbeatSettings s) {
  s.interval = std::max(s.interval, Duration{1});
  s.misses = std::max(s.misses, 1);
  s.grace = std::max(s.grace, Duration{0});
  return s;
}

// EXTEND_TIMEOUT_USEC is a u64 from the child; far beyond this it would
// overflow the clock, and a day is "forever" for a heartbeat anyway.
constexpr std::chrono::microseconds kMaxExtend = std::chrono::hours{24};

}  // namespace

HeartbeatSettings HeartbeatSettings::from(const HeartbeatConfig& c) {
  HeartbeatSettings s;
  s.interval = c.interval;
  s.misses = c.misses;
  s.grace = c.grace;
  return s;
}

HeartbeatWatch::HeartbeatWatch(HeartbeatSettings settings) : settings_(normalized(settings)) {}

void HeartbeatWatch::start(SteadyTime now) {
  active_ = true;
  hung_ = false;
  in_grace_ = true;
  base_ = now;
  extended_until_ = SteadyTime::min();
  consecutive_misses_ = 0;
  last_beat_.reset();
}

void HeartbeatWatch::beat(SteadyTime now) {
  ++total_beats_;
  last_beat_ = now;
  if (!active_ || hung_) return;
  in_grace_ = false;
  base_ = now;
  extended_until_ = SteadyTime::min();
  consecutive_misses_ = 0;
}

void HeartbeatWatch::stop() { active_ = false; }

void HeartbeatWatch::extend(SteadyTime now, std::chrono::microseconds by) {
  if (!active_ || hung_) return;
  by = std::clamp(by, std::chrono::microseconds{0}, kMaxExtend);
  extended_until_ = std::max(extended_until_, now + by);
}

std::optional<SteadyTime> HeartbeatWatch::deadline() const {
  if (!active_ || hung_) return std::nullopt;
  const SteadyTime due = base_ + (in_grace_ ? settings_.grace : settings_.interval);
  return std::max(due, extended_until_);
}

HeartbeatWatch::Verdict HeartbeatWatch::on_deadline(SteadyTime now) {
  Verdict v;
  v.hung = hung_;
  const std::optional<SteadyTime> due = deadline();
  if (!due || now < *due) return v;  // not detecting, or the timer fired early

  // The miss at `due`, plus one for every whole interval since.
  const std::int64_t passed = 1 + (now - *due) / settings_.interval;
  const std::int64_t to_hung = std::max(1, settings_.misses - consecutive_misses_);
  const std::int64_t counted = std::min(passed, to_hung);

  consecutive_misses_ += static_cast<int>(counted);
  total_misses_ += static_cast<std::uint64_t>(counted);
  base_ = *due + (counted - 1) * settings_.interval;  // nominal time of the last miss
  in_grace_ = false;
  extended_until_ = SteadyTime::min();
  hung_ = consecutive_misses_ >= settings_.misses;

  v.misses = static_cast<int>(counted);
  v.hung = hung_;
  return v;
}

void HeartbeatWatch::update(HeartbeatSettings settings) { settings_ = normalized(settings); }

}  // namespace vigil
