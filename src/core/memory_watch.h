// The memory limit as a pure watch, the peer of HeartbeatWatch: one /proc
// sample of the process tree's RSS in, a verdict out. It owns no timer and
// kills nothing; the instance machine restarts with reason memory.
#pragma once
#include <cstdint>
#include <optional>

namespace vigil {

// RSS over memory_limit kMemoryLimitSamples samples in a row: restart
// (reason memory). One sample over the limit is a spike, not a leak.
inline constexpr int kMemoryLimitSamples = 3;

class MemoryWatch {
 public:
  // One sample; true once the last kMemoryLimitSamples were all over
  // `limit` (and on every sample after, until one is under or reset()).
  bool sample(std::uint64_t rss_bytes, std::optional<std::uint64_t> limit) {
    over_ = limit && rss_bytes > *limit ? over_ + 1 : 0;
    return over_ >= kMemoryLimitSamples;
  }
  // A new process: its samples start over.
  void reset() { over_ = 0; }
  int samples_over() const { return over_; }
  template <class Archive>
  void persist(Archive& a) {
    a("samples_over", over_);
  }

 private:
  int over_ = 0;
};

}  // namespace vigil
