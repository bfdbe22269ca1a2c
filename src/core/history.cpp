// Packing saturates rather than wraps: a figure beyond a field's range reads
// back as the field's largest value, never as a small one.
#include "history.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace vigil {

namespace {

template <typename T>
T saturate(double v, T max) {
  if (!(v > 0)) return 0;  // also NaN
  if (v >= static_cast<double>(max)) return max;
  return static_cast<T>(std::llround(v));
}

}  // namespace

std::size_t InstanceHistory::capacity_for(std::chrono::nanoseconds sample_interval) {
  if (sample_interval.count() <= 0) return kMaxSamples;
  const auto window = std::chrono::nanoseconds(kWindow);
  const auto n = static_cast<std::size_t>((window.count() + sample_interval.count() - 1) /
                                          sample_interval.count());
  return std::clamp<std::size_t>(n, 1, kMaxSamples);
}

InstanceHistory::InstanceHistory(std::size_t capacity)
    : capacity_(std::clamp<std::size_t>(capacity, 1, kMaxSamples)) {}

const InstanceHistory::Packed& InstanceHistory::at(std::size_t i) const {
  return ring_[(head_ + i) % ring_.size()];
}

InstanceHistory::Packed& InstanceHistory::at(std::size_t i) { return ring_[(head_ + i) % ring_.size()]; }

void InstanceHistory::clear() {
  ring_.clear();
  head_ = 0;
  entries_ = 0;
  count_ = 0;
}

// One more entry at the newest end. The ring is grown by hand, never past
// capacity_ slots: the bound holds for the buffer, not just for the count.
void InstanceHistory::push(const Packed& p) {
  if (entries_ == ring_.size()) {
    std::vector<Packed> next;
    next.reserve(std::min(capacity_, std::max<std::size_t>(16, ring_.size() * 2)));
    for (std::size_t i = 0; i < entries_; ++i) next.push_back(at(i));
    next.resize(next.capacity());
    ring_ = std::move(next);
    head_ = 0;
  }
  ring_[(head_ + entries_) % ring_.size()] = p;
  ++entries_;
  ++count_;
}

void InstanceHistory::drop_oldest_sample() {
  Packed& oldest = at(0);
  if (oldest.repeat > 1) {
    --oldest.repeat;
  } else {
    head_ = (head_ + 1) % ring_.size();
    --entries_;
  }
  --count_;
}

void InstanceHistory::record(const HistoryInput& in) {
  const auto now_ds = static_cast<std::int64_t>(std::llround(in.time_seconds * 10));
  Packed p{};
  p.repeat = 1;
  if (count_ > 0) {
    const std::int64_t dt = now_ds - newest_ds_;
    // A clock stepped back, or a gap no field holds (> 1h49m: every sample
    // before it is older than the window anyway): start over.
    if (dt < 0 || dt >= kNone) clear();
    else p.dt_ds = static_cast<std::uint16_t>(dt);
  }
  p.rss_kib = saturate<std::uint32_t>(static_cast<double>(in.rss_bytes) / 1024.0,
                                      std::numeric_limits<std::uint32_t>::max());
  p.cpu_permille = kNone;
  if (count_ > 0 && last_cpu_seconds_ && p.dt_ds > 0)
    p.cpu_permille = saturate<std::uint16_t>((in.cpu_seconds - *last_cpu_seconds_) * 10000.0 / p.dt_ds,
                                             kNone - 1);
  p.heartbeat_ds = in.heartbeat_age_seconds
                       ? saturate<std::uint16_t>(*in.heartbeat_age_seconds * 10, kNone - 1)
                       : kNone;
  unsigned restarts = 0;
  if (count_ > 0 && in.restarts > last_restarts_)
    restarts = static_cast<unsigned>(std::min<std::uint64_t>(in.restarts - last_restarts_, kMaxRestarts));
  static_assert(kAllStates.size() <= 16, "a state fits in a nibble");
  p.restarts_state = static_cast<std::uint8_t>(restarts | (static_cast<unsigned>(in.state) << 4));
  last_cpu_seconds_ = in.cpu_seconds;
  last_restarts_ = in.restarts;
  newest_ds_ = now_ds;

  if (count_ == capacity_) drop_oldest_sample();
  // Alike the newest entry, one step after it: one more of its run.
  if (entries_ > 0) {
    Packed& last = at(entries_ - 1);
    if (restarts == 0 && last.repeat < kMaxRepeat && last.dt_ds == p.dt_ds && last.rss_kib == p.rss_kib &&
        last.cpu_permille == p.cpu_permille && last.heartbeat_ds == p.heartbeat_ds &&
        last.restarts_state == p.restarts_state) {
      ++last.repeat;
      ++count_;
      return;
    }
  }
  push(p);
}

void InstanceHistory::set_capacity(std::size_t capacity) {
  capacity = std::clamp<std::size_t>(capacity, 1, kMaxSamples);
  if (capacity == capacity_) return;
  while (count_ > capacity) drop_oldest_sample();
  std::vector<Packed> next;
  next.reserve(std::min(capacity, std::max<std::size_t>(16, entries_)));
  for (std::size_t i = 0; i < entries_; ++i) next.push_back(at(i));
  next.resize(next.capacity());
  ring_ = std::move(next);
  head_ = 0;
  capacity_ = capacity;
}

HistoryPoint InstanceHistory::unpack(const Packed& p, std::int64_t time_ds) const {
  HistoryPoint out;
  out.time_seconds = static_cast<double>(time_ds) / 10.0;
  out.rss_bytes = static_cast<std::uint64_t>(p.rss_kib) * 1024;
  if (p.cpu_permille != kNone) out.cpu_percent = p.cpu_permille / 10.0;
  if (p.heartbeat_ds != kNone) out.heartbeat_age_seconds = p.heartbeat_ds / 10.0;
  out.restarts = p.restarts_state & 0x0Fu;
  out.state = static_cast<State>(p.restarts_state >> 4);
  return out;
}

std::vector<HistoryPoint> InstanceHistory::points(double after_seconds) const {
  std::vector<HistoryPoint> out;
  // From the newest back: each time is the one after it minus its delta.
  std::int64_t t = newest_ds_;
  for (std::size_t i = entries_; i > 0; --i) {
    const Packed& p = at(i - 1);
    for (unsigned r = 0; r < p.repeat; ++r) {
      if (static_cast<double>(t) / 10.0 <= after_seconds) {
        std::reverse(out.begin(), out.end());
        return out;
      }
      out.push_back(unpack(p, t));
      t -= p.dt_ds;
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::optional<HistoryPoint> InstanceHistory::latest() const {
  if (count_ == 0) return std::nullopt;
  return unpack(at(entries_ - 1), newest_ds_);
}

std::size_t InstanceHistory::bytes() const { return sizeof(*this) + ring_.capacity() * sizeof(Packed); }

}  // namespace vigil
