// Where time comes from. Core code never reads a clock: it is handed `now`.
// The shells read it through a Clock, so a test can run them on a clock of
// its own (FakeClock) and the real one is read in one place (io/real_clock).
#pragma once
#include <chrono>

namespace vigil {

using SteadyTime = std::chrono::steady_clock::time_point;  // deadlines, durations
using WallTime = std::chrono::system_clock::time_point;    // what is shown: unix times

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime steady() const = 0;
  virtual WallTime wall() const = 0;
};

// A clock that moves only when told to; both times move together.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(SteadyTime steady = SteadyTime{} + std::chrono::hours(1),
                     WallTime wall = WallTime{} + std::chrono::hours(24 * 365 * 56))
      : steady_(steady), wall_(wall) {}
  SteadyTime steady() const override { return steady_; }
  WallTime wall() const override { return wall_; }
  template <typename Rep, typename Period>
  void advance(std::chrono::duration<Rep, Period> d) {
    steady_ += std::chrono::duration_cast<SteadyTime::duration>(d);
    wall_ += std::chrono::duration_cast<WallTime::duration>(d);
  }
  void set(SteadyTime t) { advance(t - steady_); }

 private:
  SteadyTime steady_;
  WallTime wall_;
};

}  // namespace vigil
