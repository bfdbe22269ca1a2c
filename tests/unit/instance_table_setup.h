// For the transition-table test: a machine brought into each state by
// ordinary events, a typical event of each kind, and a one-line summary of
// the actions a single transition returns.
#pragma once
#include <memory>
#include <string>

#include "instance_sim.h"

namespace vigil::sim {

// Every watch on: notify readiness, a heartbeat, a probe, a memory limit;
// on-failure restarts, one restart allowed per hour (so fatal is reachable).
inline ProgramConfig table_config() {
  ProgramConfig c = base_config();
  c.ready = ReadyMode::notify;
  c.restart = RestartMode::on_failure;
  c.max_restarts = 1;
  c.restart_window = 1h;
  c.heartbeat = HeartbeatConfig{5s, 3, 30s};
  ProbeConfig p;
  p.kind = ProbeKind::tcp;
  p.target = "127.0.0.1:8080";
  p.interval = 10s;
  p.failures = 3;
  p.initial_delay = 5s;
  c.probe = p;
  c.memory_limit_bytes = 100u << 20;
  return c;
}

// starting and running have a probe in flight; stopping waits for a
// process that ignores its stop signal.
inline std::unique_ptr<Sim> in_state(State s) {
  auto sim = std::make_unique<Sim>(table_config());
  auto run = [&] {
    sim->start();
    sim->send(Event::ready_signal);
  };
  switch (s) {
    case State::stopped:
      break;
    case State::starting:
      sim->start();
      sim->advance(5s);
      break;
    case State::running:
      run();
      sim->advance(5s);
      break;
    case State::stopping:
      run();
      sim->exits_on_signal = false;
      sim->send(Event::stop);
      break;
    case State::exited:
      run();
      sim->send_exit(ExitStatus::exited(0));
      break;
    case State::backoff:
      run();
      sim->send_exit(ExitStatus::exited(1));
      break;
    case State::fatal:
      run();
      sim->send_exit(ExitStatus::exited(1));
      sim->advance_until([&] { return sim->state() == State::starting; });
      sim->send(Event::ready_signal);
      sim->send_exit(ExitStatus::exited(1));
      break;
  }
  return sim;
}

inline EventData event_data(Event e) {
  EventData d;
  switch (e) {
    case Event::spawned: d.pid = 999; break;
    case Event::spawn_failed: d.text = "cannot execute \"app\": No such file or directory"; break;
    case Event::exited: d.status = ExitStatus::exited(1); break;
    case Event::extend_timeout: d.extend = std::chrono::seconds(20); break;
    case Event::probe_passed: d.probe.ok = true; break;
    case Event::probe_failed:
      d.probe.failure = ProbeFailure::refused;
      d.probe.detail = "connection refused";
      break;
    case Event::memory_sample: d.rss_bytes = 200u << 20; break;
    default: break;
  }
  return d;
}

// "->stopping signal(15) arm(kill) log(info)": what one transition returned.
inline std::string summary(const Actions& actions) {
  std::string out;
  auto add = [&out](const std::string& s) { out += (out.empty() ? "" : " ") + s; };
  static constexpr const char* kLevels[] = {"debug", "info", "warn", "error"};
  for (const Action& a : actions) {
    switch (a.kind) {
      case Action::Kind::state: add(std::string("->") + to_string(a.to)); break;
      case Action::Kind::spawn: add("spawn"); break;
      case Action::Kind::signal: add("signal(" + std::to_string(a.signal) + ")"); break;
      case Action::Kind::kill_leftovers: add("kill_leftovers"); break;
      case Action::Kind::check_tree: add("check_tree"); break;
      case Action::Kind::arm: add(std::string("arm(") + to_string(a.timer) + ")"); break;
      case Action::Kind::cancel: add(std::string("cancel(") + to_string(a.timer) + ")"); break;
      case Action::Kind::run_probe: add("run_probe"); break;
      case Action::Kind::cancel_probe: add("cancel_probe"); break;
      case Action::Kind::stopped: add("stopped"); break;
      case Action::Kind::log: add(std::string("log(") + kLevels[static_cast<int>(a.level)] + ")"); break;
    }
  }
  return out;
}

}  // namespace vigil::sim
