// Work that thousands of children bring at once (a stop of every instance,
// the reaping of their exits) is done a slice per loop turn, so that the
// loop answers a client between two slices. A slice ends when its time is
// spent, not after a count of items: what one item costs differs tenfold
// between machines (a kill(2) takes 30 µs on bare metal and 300 µs on a
// virtual machine whose victims exit beside it), and a count fitted to one
// holds the loop ten times longer on the other.
#pragma once
#include <algorithm>
#include <chrono>

#include "clock.h"
#include "units.h"

namespace vigil {

class TimeSlice {
 public:
  // Two milliseconds a slice: an answer waits for a few loop turns (accept,
  // read, write), each running at most a slice of every kind of bulk work.
  static constexpr Duration kLength{2};

  explicit TimeSlice(const Clock& clock, Duration length = kLength)
      : clock_(clock), end_(clock.steady() + length) {}

  // Asked before each item: whether the slice is spent. Never before one
  // item is done, so every slice makes progress however slow the machine.
  bool spent() { return items_++ > 0 && clock_.steady() >= end_; }

 private:
  const Clock& clock_;
  SteadyTime end_;
  std::size_t items_ = 0;
};

// How long to wait before repeating a look whose cost grows with the load
// (the list of vigil's children, which the kernel walks in O(n²) for n
// children): at least `floor`, and `factor` times what the last look held
// the loop (wall time: a look preempted on a busy machine held it as long),
// so that looking never takes more than 1/factor of the loop however many
// children there are. At most `ceiling`, so that one look stalled for
// long does not put the next off for ten times as long.
inline constexpr int kPacedCostFactor = 10;
inline std::chrono::nanoseconds paced_gap(std::chrono::nanoseconds floor, std::chrono::nanoseconds last_cost,
                                          std::chrono::nanoseconds ceiling, int factor = kPacedCostFactor) {
  return std::max(floor, std::min(ceiling, last_cost * factor));
}

}  // namespace vigil
