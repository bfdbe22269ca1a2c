// The tick re-arms at the configured sample_interval each time, so a reload
// that changes it takes effect at once, and resizes the rings to the hour.
#include "history_recorder.h"

#include <unistd.h>

#include "supervisor.h"

namespace vigil {

HistoryRecorder::HistoryRecorder(EventLoop& loop, Supervisor& supervisor)
    : supervisor_(supervisor), timer_(loop, [this] {
        record();
        timer_.arm(supervisor_.config().sample_interval);
      }) {
  timer_.arm(supervisor_.config().sample_interval);
}

void HistoryRecorder::record() {
  const std::size_t capacity = InstanceHistory::capacity_for(supervisor_.config().sample_interval);
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  std::map<std::string, std::vector<InstanceHistory>, std::less<>> next;
  for (const auto& p : supervisor_.programs()) {
    auto node = histories_.extract(p->name());
    std::vector<InstanceHistory> hs = node.empty() ? std::vector<InstanceHistory>{} : std::move(node.mapped());
    const auto& instances = p->instances();
    const auto wall = p->clock().wall();
    const double now = std::chrono::duration<double>(wall.time_since_epoch()).count();
    while (hs.size() > instances.size()) hs.pop_back();
    while (hs.size() < instances.size()) hs.emplace_back(capacity);
    for (std::size_t i = 0; i < instances.size(); ++i) {
      const Instance& in = *instances[i];
      InstanceHistory& h = hs[i];
      h.set_capacity(capacity);
      HistoryInput s;
      s.time_seconds = now;
      s.state = in.state();
      s.rss_bytes = in.pid() > 0 ? in.rss_bytes() : 0;
      s.cpu_seconds = static_cast<double>(in.cpu_ticks()) / ticks;
      s.restarts = in.counters().total_restarts();
      if (auto beat = in.last_heartbeat_wall(); beat && in.pid() > 0)
        s.heartbeat_age_seconds = std::max(0.0, std::chrono::duration<double>(wall - *beat).count());
      h.record(s);
    }
    next.emplace(p->name(), std::move(hs));
  }
  histories_ = std::move(next);
}

const std::vector<InstanceHistory>* HistoryRecorder::find(const std::string& program) const {
  auto it = histories_.find(program);
  return it == histories_.end() ? nullptr : &it->second;
}

std::size_t HistoryRecorder::bytes() const {
  std::size_t n = 0;
  for (const auto& [name, hs] : histories_)
    for (const auto& h : hs) n += h.bytes();
  return n;
}

}  // namespace vigil
