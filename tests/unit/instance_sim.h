// A simulated shell for InstanceMachine: simulated time, timers kept as
// deadlines, and a pretend process that answers spawn, signals and tree
// checks as the test configures it. advance() jumps from deadline to
// deadline, so an hour of life runs in microseconds and every instant is
// exact.
#pragma once
#include <csignal>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "instance_machine.h"

namespace vigil::sim {

using namespace std::chrono_literals;

inline const SteadyTime kT0 = SteadyTime{} + std::chrono::hours(1000);

inline Event timer_event(TimerId t) {
  switch (t) {
    case TimerId::ready: return Event::min_uptime;
    case TimerId::start: return Event::start_timeout;
    case TimerId::heartbeat: return Event::heartbeat_due;
    case TimerId::probe: return Event::probe_due;
    case TimerId::backoff: return Event::backoff_due;
    case TimerId::kill: return Event::kill_due;
  }
  return Event::kill_due;
}

// A config whose every deadline is round, with restarts that never give up
// unless a test says so, and no jitter.
inline ProgramConfig base_config() {
  ProgramConfig c;
  c.name = "web";
  c.command = {"app"};
  c.restart_delay = 100ms;
  c.restart_delay_max = 30s;
  c.backoff_reset = 60s;
  c.min_uptime = 1s;
  c.start_timeout = 60s;
  c.max_restarts = 5;
  c.restart_window = 0s;
  c.stop_timeout = 10s;
  return c;
}

struct Sim {
  // `jitter` 0 by default: restart delays exact, probe phases half an interval.
  explicit Sim(ProgramConfig c = base_config(), std::function<double()> jitter = [] { return 0.0; })
      : config(std::move(c)) {
    machine = std::make_unique<InstanceMachine>(config, std::move(jitter));
  }

  // --- the pretend process
  bool spawn_fails = false;       // answer spawn with spawn_failed
  bool exits_on_signal = true;    // stop_signal ends the process at once
  bool leaves_tree = false;       // something of the tree outlives the main process
  int spawns = 0;
  int next_pid = 100;
  std::vector<int> signals;       // every signal sent, in order
  int kill_leftovers = 0;
  int probes_started = 0;
  int probes_cancelled = 0;
  int stops_finished = 0;         // `stopped` actions

  // --- what the machine said
  std::vector<std::string> logs;  // "warn: text"
  std::vector<std::pair<State, State>> transitions;
  std::map<TimerId, SteadyTime> timers;

  ProgramConfig config;  // the machine reads it; change it, then send settings_changed
  std::unique_ptr<InstanceMachine> machine;
  SteadyTime now = kT0;

  State state() const { return machine->state(); }
  const InstanceMachine& m() const { return *machine; }

  // Sends one event, then the answers the pretend shell owes, in order.
  void send(Event e, EventData d = {}) {
    std::deque<std::pair<Event, EventData>> queue;
    queue.emplace_back(e, std::move(d));
    Actions actions;
    while (!queue.empty()) {
      auto [event, data] = std::move(queue.front());
      queue.pop_front();
      machine->on(event, data, now, actions);
      for (const Action& a : actions) carry_out(a, queue);
    }
  }
  void send_exit(ExitStatus s) {
    EventData d;
    d.status = s;
    send(Event::exited, d);
  }
  void probe(bool ok, ProbeFailure kind = ProbeFailure::refused, std::string detail = "connection refused") {
    EventData d;
    d.probe.ok = ok;
    d.probe.failure = kind;
    d.probe.detail = std::move(detail);
    send(ok ? Event::probe_passed : Event::probe_failed, d);
  }
  void sample(std::uint64_t rss, bool sibling = false) {
    EventData d;
    d.rss_bytes = rss;
    d.sibling_restarting = sibling;
    send(Event::memory_sample, d);
  }
  void start(bool manual = false) {
    EventData d;
    d.manual = manual;
    send(Event::start, d);
  }

  // Fires every timer due up to now + d, in deadline order.
  void advance(Duration d) { advance_to(now + d); }
  void advance_to(SteadyTime until) {
    for (;;) {
      auto next = timers.end();
      for (auto it = timers.begin(); it != timers.end(); ++it)
        if (it->second <= until && (next == timers.end() || it->second < next->second)) next = it;
      if (next == timers.end()) break;
      now = std::max(now, next->second);
      const TimerId t = next->first;
      timers.erase(next);
      send(timer_event(t));
    }
    now = std::max(now, until);
  }
  // Advances timer by timer until `pred` holds (or `limit` passes); the
  // time it took, or nullopt.
  template <typename Pred>
  std::optional<Duration> advance_until(Pred pred, Duration limit = 24h) {
    const SteadyTime start = now, end = now + limit;
    while (!pred()) {
      auto next = timers.end();
      for (auto it = timers.begin(); it != timers.end(); ++it)
        if (next == timers.end() || it->second < next->second) next = it;
      if (next == timers.end() || next->second > end) return std::nullopt;
      advance_to(next->second);
    }
    return std::chrono::duration_cast<Duration>(now - start);
  }

  bool logged(std::string_view needle) const {
    for (const auto& l : logs)
      if (l.find(needle) != std::string::npos) return true;
    return false;
  }
  std::uint64_t restarts(RestartReason r) const {
    return m().counts().restarts[static_cast<std::size_t>(r)];
  }

 private:
  void carry_out(const Action& a, std::deque<std::pair<Event, EventData>>& queue) {
    switch (a.kind) {
      case Action::Kind::state:
        transitions.emplace_back(a.from, a.to);
        break;
      case Action::Kind::spawn: {
        ++spawns;
        EventData d;
        if (spawn_fails) {
          d.text = "cannot execute \"app\": No such file or directory";
          queue.emplace_back(Event::spawn_failed, d);
        } else {
          d.pid = next_pid++;
          queue.emplace_back(Event::spawned, d);
        }
        break;
      }
      case Action::Kind::signal:
        signals.push_back(a.signal);
        if (machine->has_process() && (exits_on_signal || a.signal == SIGKILL)) {
          EventData d;
          d.status = ExitStatus::killed(a.signal);
          queue.emplace_back(Event::exited, d);
        }
        break;
      case Action::Kind::kill_leftovers:
        ++kill_leftovers;
        break;
      case Action::Kind::check_tree:
        if (!leaves_tree) queue.emplace_back(Event::tree_gone, EventData{});
        break;
      case Action::Kind::arm:
        timers[a.timer] = a.at;
        break;
      case Action::Kind::cancel:
        timers.erase(a.timer);
        break;
      case Action::Kind::run_probe:
        ++probes_started;
        break;
      case Action::Kind::cancel_probe:
        ++probes_cancelled;
        break;
      case Action::Kind::stopped:
        ++stops_finished;
        break;
      case Action::Kind::log: {
        static constexpr const char* kLevels[] = {"debug", "info", "warn", "error"};
        logs.push_back(std::string(kLevels[static_cast<int>(a.level)]) + ": " + a.text);
        break;
      }
    }
  }
};

}  // namespace vigil::sim
