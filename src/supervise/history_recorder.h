// Keeps every instance's InstanceHistory: once per sample_interval it
// copies the figures each instance already holds (the sampler's last
// memory and CPU, restarts, heartbeat, state) into its history. It reads no
// /proc and decides nothing; a program removed by a reload loses its
// history at the next tick, an instance beyond a shrunk count too.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "event_loop.h"
#include "history.h"

namespace vigil {

class Supervisor;

class HistoryRecorder {
 public:
  HistoryRecorder(EventLoop& loop, Supervisor& supervisor);
  HistoryRecorder(const HistoryRecorder&) = delete;
  HistoryRecorder& operator=(const HistoryRecorder&) = delete;

  // One sample of every instance now (the timer's work; public for tests).
  void record();
  // The histories of `program`'s instances, by index; null if none.
  const std::vector<InstanceHistory>* find(const std::string& program) const;
  // What all histories hold in memory.
  std::size_t bytes() const;

 private:
  Supervisor& supervisor_;
  Timer timer_;
  std::map<std::string, std::vector<InstanceHistory>, std::less<>> histories_;
};

}  // namespace vigil
