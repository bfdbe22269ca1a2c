// The one real Clock: std::chrono's steady and system clocks.
#pragma once
#include "clock.h"

namespace vigil {

class RealClock final : public Clock {
 public:
  SteadyTime steady() const override { return std::chrono::steady_clock::now(); }
  WallTime wall() const override { return std::chrono::system_clock::now(); }
  // The process's one instance.
  static const RealClock& get() {
    static const RealClock clock;
    return clock;
  }
};

}  // namespace vigil
