// A bounded record of one instance's recent figures (memory, CPU, restarts,
// heartbeat age, state), one sample per /proc pass, for the status page's
// sparklines and GET /api/v1/programs/NAME/history. Pure: the shell hands
// each sample its time; nothing here reads a clock or /proc.
//
// The bound: at most kMaxSamples packed entries of kSampleBytes each, so one
// instance's history never holds more than kMaxBytes, however long vigil runs.
// An entry stands for a run of up to 255 equal samples taken one interval
// apart (a still process: same memory, no CPU, no heartbeat, same state), so
// an idle instance's hour costs a few hundred bytes, not the whole bound.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "state.h"

namespace vigil {

// What the instance knows right after a /proc sample.
struct HistoryInput {
  double time_seconds = 0;  // unix time of the sample
  std::uint64_t rss_bytes = 0;
  double cpu_seconds = 0;      // of the process tree, cumulative over restarts
  std::uint64_t restarts = 0;  // cumulative, every reason
  std::optional<double> heartbeat_age_seconds;  // none: no heartbeat yet (or none configured)
  State state = State::stopped;
};

// One sample as read back.
struct HistoryPoint {
  double time_seconds = 0;  // unix time, to a tenth of a second
  std::uint64_t rss_bytes = 0;  // to a KiB
  std::optional<double> cpu_percent;  // of one core since the sample before; none for the first
  unsigned restarts = 0;              // restarts since the sample before (at most 15)
  std::optional<double> heartbeat_age_seconds;  // to a tenth of a second
  State state = State::stopped;
};

class InstanceHistory {
 public:
  // One hour at the default sample_interval of 1s.
  static constexpr std::size_t kMaxSamples = 3600;
  static constexpr std::chrono::seconds kWindow{3600};

  // How many samples cover kWindow at `sample_interval` (1..kMaxSamples).
  static std::size_t capacity_for(std::chrono::nanoseconds sample_interval);

  explicit InstanceHistory(std::size_t capacity = kMaxSamples);

  void record(const HistoryInput& in);
  // A reload changed sample_interval: keeps the newest samples that fit.
  void set_capacity(std::size_t capacity);

  std::size_t size() const { return count_; }
  // How many packed entries hold those samples (runs of equal ones share one).
  std::size_t entries() const { return entries_; }
  std::size_t capacity() const { return capacity_; }
  // Samples newer than `after_seconds` (unix time), oldest first.
  std::vector<HistoryPoint> points(double after_seconds = 0) const;
  std::optional<HistoryPoint> latest() const;
  // What this history holds in memory: the object and its buffer.
  std::size_t bytes() const;

 private:
  // 12 bytes; times are deltas from the sample before, in tenths of a
  // second, so the newest time plus the deltas give every time exactly.
  // `repeat` samples are alike, each dt_ds after the one before it.
  struct Packed {
    std::uint32_t rss_kib;
    std::uint16_t dt_ds;         // since the sample before
    std::uint16_t cpu_permille;  // of one core; kNone: unknown
    std::uint16_t heartbeat_ds;  // kNone: none
    std::uint8_t restarts_state;  // restarts (0..15) in the low nibble, the state in the high one
    std::uint8_t repeat;          // 1..255 samples
  };
  static constexpr std::uint16_t kNone = 0xFFFF;
  static constexpr unsigned kMaxRestarts = 15;
  static constexpr std::uint8_t kMaxRepeat = 255;

 public:
  static constexpr std::size_t kSampleBytes = sizeof(Packed);
  static constexpr std::size_t kMaxBytes = kMaxSamples * kSampleBytes + 128;

 private:
  const Packed& at(std::size_t i) const;  // entry i, 0: oldest
  Packed& at(std::size_t i);
  HistoryPoint unpack(const Packed& p, std::int64_t time_ds) const;
  void clear();
  void push(const Packed& p);
  void drop_oldest_sample();

  std::vector<Packed> ring_;  // entries; grows up to capacity_ slots, wraps at head_
  std::size_t capacity_;      // in samples (and so the most entries)
  std::size_t head_ = 0;      // slot of the oldest entry
  std::size_t entries_ = 0;
  std::size_t count_ = 0;     // samples, the entries' repeats summed
  std::int64_t newest_ds_ = 0;  // unix time of the newest sample, in tenths
  // The sample before, for the deltas.
  std::optional<double> last_cpu_seconds_;
  std::uint64_t last_restarts_ = 0;
};

static_assert(InstanceHistory::kSampleBytes == 12, "a history sample is 12 bytes");

}  // namespace vigil
