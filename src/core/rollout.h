// A rolling restart of a program's instances, as a pure decision: which
// instance to replace next, and when the one being replaced counts as done
// (its new process is ready) or as failed (it left `starting` for anything
// but `running`: it exited, timed out, was stopped). It sees only the state
// changes of instances; it restarts nothing itself (Program does).
//
// One instance at a time, stopped before its replacement starts: an
// instance is one process slot (its index, its PORT), so capacity never
// drops by more than one instance.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "state.h"

namespace vigil {

struct RolloutSnapshot {
  std::uint64_t id = 0;  // one per rolling restart of the program, from 1
  bool in_progress = false;
  int done = 0;                 // instances replaced
  int total = 0;                // instances to replace
  std::optional<int> current;   // the index being replaced
  std::string error;            // why the last one stopped early; empty when it completed
};

class Rollout {
 public:
  enum class Verdict {
    wait,       // nothing to do yet
    next,       // restart the instance current() now
    completed,  // every instance was replaced
    failed,     // stopped early: error() says why
  };

  // Replaces the instances in `order` one after the other. `label` names
  // an instance in messages ("web[2]").
  Rollout(std::uint64_t id, std::vector<int> order, std::string program);

  // The first step: next (restart current()), or completed when there is
  // nothing to replace.
  Verdict begin();
  // Instance `index` went from `from` to `to`.
  Verdict on_state(int index, State from, State to);
  // Something else stopped the roll (an operator's stop, another restart).
  void cancel(const std::string& why);

  std::optional<int> current() const;
  RolloutSnapshot snapshot() const;
  bool finished() const { return finished_; }

 private:
  std::string label(int index) const;
  std::uint64_t id_;
  std::vector<int> order_;
  std::string program_;
  std::size_t position_ = 0;
  bool started_ = false;  // the current instance's new process has started
  bool finished_ = false;
  std::string error_;
};

}  // namespace vigil
