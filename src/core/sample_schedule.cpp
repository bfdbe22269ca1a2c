// When to read a process tree again (see the header).
#include "sample_schedule.h"

#include <algorithm>

namespace vigil {

void SampleSchedule::restart() {
  last_.reset();
  read_.reset();
  next_ = SteadyTime{};
  stride_ = 1;
}

void SampleSchedule::sampled(SteadyTime at, const TreeUsage& usage, bool limited, Duration interval) {
  const bool still = last_ && *last_ == usage;
  stride_ = limited || !still ? 1 : kIdleSampleStride;
  last_ = usage;
  read_ = at;
  next_ = at + stride_ * interval;
}

void SampleSchedule::refreshed(SteadyTime at, const TreeUsage& usage, Duration interval) {
  if (last_ && !(*last_ == usage) && stride_ > 1) {
    stride_ = 1;
    next_ = std::min(next_, at + interval);
  }
  last_ = usage;
  read_ = at;
}

bool SampleSchedule::due(SteadyTime now, Duration interval) const {
  return now + interval / 2 >= next_;
}

bool SampleSchedule::stale(SteadyTime now, Duration interval, Freshness freshness) const {
  if (!read_) return true;
  if (freshness == Freshness::schedule && stride_ > 1) return false;  // still: stands until its next read
  return now - *read_ >= interval;
}

void ScrapeRhythm::scraped(SteadyTime at) {
  before_ = last_;
  last_ = at;
}

std::optional<SteadyTime> ScrapeRhythm::next_expected() const {
  if (!last_ || !before_) return std::nullopt;
  const auto gap = *last_ - *before_;
  if (gap <= SteadyTime::duration::zero() || gap > kMaxScrapeGap) return std::nullopt;
  return *last_ + gap;
}

std::optional<SteadyTime> ScrapeRhythm::read_ahead_at(SteadyTime now, Duration interval) const {
  auto next = next_expected();
  if (!next) return std::nullopt;
  return std::max(now, *next - interval / 2);
}

}  // namespace vigil
