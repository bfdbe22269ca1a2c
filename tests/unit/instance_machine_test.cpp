// InstanceMachine, the instance life cycle, in simulated time. First the
// table: every state x event pair, each with the state it leads to and the
// actions it returns (or nothing: the pair is impossible or ignored, as the
// machine's own table says). Then the behaviours over time: readiness,
// start timeout, backoff and fatal, heartbeats, memory, probes, stops.
// No process, no clock: the whole file runs in milliseconds.
#include "instance_machine.h"

#include <gtest/gtest.h>

#include <set>

#include "instance_sim.h"
#include "instance_table_setup.h"

namespace vigil {
namespace {

using namespace std::chrono_literals;
using sim::Sim;
using sim::kT0;

struct Row {
  State from;
  Event event;
  State to;
  const char* actions;
};

// Read a row as: in state FROM, event EVENT leads to state TO with ACTIONS.
// The setup (instance_table_setup.h): ready = "notify", a heartbeat, a tcp
// probe (one in flight while starting and running), a memory limit,
// restart = "on-failure", one restart per hour; stopping waits for a
// process that ignores its stop signal. An empty ACTIONS is a pair the
// machine's table marks impossible or ignored, or one whose handler finds
// nothing to do in this setup (checked against kind_of below).
const Row kRows[] = {
    {State::stopped, Event::start, State::starting, "->starting spawn"},
    {State::stopped, Event::stop, State::stopped, "stopped"},
    {State::stopped, Event::restart, State::starting, "->starting spawn"},
    {State::stopped, Event::spawned, State::stopped, ""},
    {State::stopped, Event::spawn_failed, State::stopped, ""},
    {State::stopped, Event::exited, State::stopped, ""},
    {State::stopped, Event::tree_gone, State::stopped, ""},
    {State::stopped, Event::ready_signal, State::stopped, ""},
    {State::stopped, Event::min_uptime, State::stopped, ""},
    {State::stopped, Event::start_timeout, State::stopped, ""},
    {State::stopped, Event::heartbeat, State::stopped, ""},
    {State::stopped, Event::heartbeat_due, State::stopped, ""},
    {State::stopped, Event::hang_declared, State::stopped, ""},
    {State::stopped, Event::child_stopping, State::stopped, ""},
    {State::stopped, Event::extend_timeout, State::stopped, ""},
    {State::stopped, Event::probe_due, State::stopped, ""},
    {State::stopped, Event::probe_passed, State::stopped, ""},
    {State::stopped, Event::probe_failed, State::stopped, ""},
    {State::stopped, Event::memory_sample, State::stopped, ""},
    {State::stopped, Event::backoff_due, State::stopped, ""},
    {State::stopped, Event::kill_due, State::stopped, ""},
    {State::stopped, Event::settings_changed, State::stopped, ""},
    {State::starting, Event::start, State::starting, ""},
    {State::starting, Event::stop, State::stopping, "cancel(start) cancel(heartbeat) cancel(probe) cancel_probe ->stopping log(info) signal(15) arm(kill)"},
    {State::starting, Event::restart, State::stopping, "cancel(start) cancel(heartbeat) cancel(probe) cancel_probe ->stopping log(info) signal(15) arm(kill)"},
    {State::starting, Event::spawned, State::starting, ""},
    {State::starting, Event::spawn_failed, State::starting, ""},
    {State::starting, Event::exited, State::backoff, "cancel(start) cancel(heartbeat) cancel(probe) cancel_probe kill_leftovers ->exited ->backoff arm(backoff) log(info)"},
    {State::starting, Event::tree_gone, State::starting, ""},
    {State::starting, Event::ready_signal, State::running, "cancel(start) log(info) ->running"},
    {State::starting, Event::min_uptime, State::running, "->running"},
    {State::starting, Event::start_timeout, State::stopping, "log(error) cancel(heartbeat) cancel(probe) cancel_probe ->stopping log(info) signal(15) arm(kill)"},
    {State::starting, Event::heartbeat, State::starting, "arm(heartbeat)"},
    {State::starting, Event::heartbeat_due, State::starting, "arm(heartbeat)"},
    {State::starting, Event::hang_declared, State::stopping, "log(error) cancel(start) cancel(heartbeat) cancel(probe) cancel_probe ->stopping log(info) signal(15) arm(kill)"},
    {State::starting, Event::child_stopping, State::starting, "cancel(heartbeat) cancel(probe) cancel_probe log(info)"},
    {State::starting, Event::extend_timeout, State::starting, "arm(start)"},
    {State::starting, Event::probe_due, State::starting, "arm(probe)"},
    {State::starting, Event::probe_passed, State::starting, ""},
    {State::starting, Event::probe_failed, State::starting, "log(warn)"},
    {State::starting, Event::memory_sample, State::starting, ""},
    {State::starting, Event::backoff_due, State::starting, ""},
    {State::starting, Event::kill_due, State::starting, ""},
    {State::starting, Event::settings_changed, State::starting, ""},
    {State::running, Event::start, State::running, ""},
    {State::running, Event::stop, State::stopping, "cancel(heartbeat) cancel(probe) cancel_probe ->stopping log(info) signal(15) arm(kill)"},
    {State::running, Event::restart, State::stopping, "cancel(heartbeat) cancel(probe) cancel_probe ->stopping log(info) signal(15) arm(kill)"},
    {State::running, Event::spawned, State::running, ""},
    {State::running, Event::spawn_failed, State::running, ""},
    {State::running, Event::exited, State::backoff, "cancel(heartbeat) cancel(probe) cancel_probe kill_leftovers ->exited ->backoff arm(backoff) log(info)"},
    {State::running, Event::tree_gone, State::running, ""},
    {State::running, Event::ready_signal, State::running, ""},
    {State::running, Event::min_uptime, State::running, ""},
    {State::running, Event::start_timeout, State::running, ""},
    {State::running, Event::heartbeat, State::running, "arm(heartbeat)"},
    {State::running, Event::heartbeat_due, State::running, "arm(heartbeat)"},
    {State::running, Event::hang_declared, State::stopping, "log(error) cancel(heartbeat) cancel(probe) cancel_probe ->stopping log(info) signal(15) arm(kill)"},
    {State::running, Event::child_stopping, State::running, "cancel(heartbeat) cancel(probe) cancel_probe log(info)"},
    {State::running, Event::extend_timeout, State::running, ""},
    {State::running, Event::probe_due, State::running, "arm(probe)"},
    {State::running, Event::probe_passed, State::running, ""},
    {State::running, Event::probe_failed, State::running, "log(warn)"},
    {State::running, Event::memory_sample, State::running, ""},
    {State::running, Event::backoff_due, State::running, ""},
    {State::running, Event::kill_due, State::running, ""},
    {State::running, Event::settings_changed, State::running, ""},
    {State::stopping, Event::start, State::stopping, ""},
    {State::stopping, Event::stop, State::stopping, ""},
    {State::stopping, Event::restart, State::stopping, ""},
    {State::stopping, Event::spawned, State::stopping, ""},
    {State::stopping, Event::spawn_failed, State::stopping, ""},
    {State::stopping, Event::exited, State::stopping, "check_tree"},
    {State::stopping, Event::tree_gone, State::stopping, ""},
    {State::stopping, Event::ready_signal, State::stopping, ""},
    {State::stopping, Event::min_uptime, State::stopping, ""},
    {State::stopping, Event::start_timeout, State::stopping, ""},
    {State::stopping, Event::heartbeat, State::stopping, ""},
    {State::stopping, Event::heartbeat_due, State::stopping, ""},
    {State::stopping, Event::hang_declared, State::stopping, ""},
    {State::stopping, Event::child_stopping, State::stopping, ""},
    {State::stopping, Event::extend_timeout, State::stopping, "arm(kill)"},
    {State::stopping, Event::probe_due, State::stopping, ""},
    {State::stopping, Event::probe_passed, State::stopping, ""},
    {State::stopping, Event::probe_failed, State::stopping, ""},
    {State::stopping, Event::memory_sample, State::stopping, ""},
    {State::stopping, Event::backoff_due, State::stopping, ""},
    {State::stopping, Event::kill_due, State::stopping, "log(warn) signal(9) arm(kill)"},
    {State::stopping, Event::settings_changed, State::stopping, ""},
    {State::exited, Event::start, State::starting, "->starting spawn"},
    {State::exited, Event::stop, State::stopped, "->stopped stopped"},
    {State::exited, Event::restart, State::starting, "->starting spawn"},
    {State::exited, Event::spawned, State::exited, ""},
    {State::exited, Event::spawn_failed, State::exited, ""},
    {State::exited, Event::exited, State::exited, ""},
    {State::exited, Event::tree_gone, State::exited, ""},
    {State::exited, Event::ready_signal, State::exited, ""},
    {State::exited, Event::min_uptime, State::exited, ""},
    {State::exited, Event::start_timeout, State::exited, ""},
    {State::exited, Event::heartbeat, State::exited, ""},
    {State::exited, Event::heartbeat_due, State::exited, ""},
    {State::exited, Event::hang_declared, State::exited, ""},
    {State::exited, Event::child_stopping, State::exited, ""},
    {State::exited, Event::extend_timeout, State::exited, ""},
    {State::exited, Event::probe_due, State::exited, ""},
    {State::exited, Event::probe_passed, State::exited, ""},
    {State::exited, Event::probe_failed, State::exited, ""},
    {State::exited, Event::memory_sample, State::exited, ""},
    {State::exited, Event::backoff_due, State::exited, ""},
    {State::exited, Event::kill_due, State::exited, ""},
    {State::exited, Event::settings_changed, State::exited, ""},
    {State::backoff, Event::start, State::starting, "cancel(backoff) ->starting spawn"},
    {State::backoff, Event::stop, State::stopped, "cancel(backoff) ->stopped stopped"},
    {State::backoff, Event::restart, State::starting, "cancel(backoff) ->starting spawn"},
    {State::backoff, Event::spawned, State::backoff, ""},
    {State::backoff, Event::spawn_failed, State::backoff, ""},
    {State::backoff, Event::exited, State::backoff, ""},
    {State::backoff, Event::tree_gone, State::backoff, ""},
    {State::backoff, Event::ready_signal, State::backoff, ""},
    {State::backoff, Event::min_uptime, State::backoff, ""},
    {State::backoff, Event::start_timeout, State::backoff, ""},
    {State::backoff, Event::heartbeat, State::backoff, ""},
    {State::backoff, Event::heartbeat_due, State::backoff, ""},
    {State::backoff, Event::hang_declared, State::backoff, ""},
    {State::backoff, Event::child_stopping, State::backoff, ""},
    {State::backoff, Event::extend_timeout, State::backoff, ""},
    {State::backoff, Event::probe_due, State::backoff, ""},
    {State::backoff, Event::probe_passed, State::backoff, ""},
    {State::backoff, Event::probe_failed, State::backoff, ""},
    {State::backoff, Event::memory_sample, State::backoff, ""},
    {State::backoff, Event::backoff_due, State::starting, "->starting spawn"},
    {State::backoff, Event::kill_due, State::backoff, ""},
    {State::backoff, Event::settings_changed, State::backoff, ""},
    {State::fatal, Event::start, State::starting, "->starting spawn"},
    {State::fatal, Event::stop, State::stopped, "->stopped stopped"},
    {State::fatal, Event::restart, State::starting, "->starting spawn"},
    {State::fatal, Event::spawned, State::fatal, ""},
    {State::fatal, Event::spawn_failed, State::fatal, ""},
    {State::fatal, Event::exited, State::fatal, ""},
    {State::fatal, Event::tree_gone, State::fatal, ""},
    {State::fatal, Event::ready_signal, State::fatal, ""},
    {State::fatal, Event::min_uptime, State::fatal, ""},
    {State::fatal, Event::start_timeout, State::fatal, ""},
    {State::fatal, Event::heartbeat, State::fatal, ""},
    {State::fatal, Event::heartbeat_due, State::fatal, ""},
    {State::fatal, Event::hang_declared, State::fatal, ""},
    {State::fatal, Event::child_stopping, State::fatal, ""},
    {State::fatal, Event::extend_timeout, State::fatal, ""},
    {State::fatal, Event::probe_due, State::fatal, ""},
    {State::fatal, Event::probe_passed, State::fatal, ""},
    {State::fatal, Event::probe_failed, State::fatal, ""},
    {State::fatal, Event::memory_sample, State::fatal, ""},
    {State::fatal, Event::backoff_due, State::fatal, ""},
    {State::fatal, Event::kill_due, State::fatal, ""},
    {State::fatal, Event::settings_changed, State::fatal, ""},
};

void PrintTo(const Row& r, std::ostream* os) {
  *os << to_string(r.from) << " x " << to_string(r.event) << " -> " << to_string(r.to) << " \"" << r.actions
      << "\"";
}

class TransitionTable : public ::testing::TestWithParam<Row> {};

TEST_P(TransitionTable, Row) {
  const Row& row = GetParam();
  auto s = sim::in_state(row.from);
  ASSERT_EQ(s->state(), row.from) << "setup";
  Actions out = s->machine->on(row.event, sim::event_data(row.event), s->now);
  EXPECT_EQ(s->state(), row.to);
  EXPECT_EQ(sim::summary(out), row.actions);
  // What the table calls impossible or ignored never acts.
  if (std::string(InstanceMachine::kind_of(row.from, row.event)) != "handled") {
    EXPECT_EQ(s->state(), row.from);
    EXPECT_TRUE(out.empty());
  }
}

std::string row_name(const ::testing::TestParamInfo<Row>& info) {
  return std::string(to_string(info.param.from)) + "_" + to_string(info.param.event);
}

INSTANTIATE_TEST_SUITE_P(EveryStateAndEvent, TransitionTable, ::testing::ValuesIn(kRows), row_name);

TEST(InstanceMachineTable, CoversEveryPairOnce) {
  std::set<std::pair<State, Event>> seen;
  for (const Row& r : kRows) EXPECT_TRUE(seen.insert({r.from, r.event}).second) << to_string(r.from) << " " << to_string(r.event);
  EXPECT_EQ(seen.size(), kAllStates.size() * kAllEvents.size());
}

// Impossible pairs are those whose cause the machine itself removed: a
// timer it cancelled, an answer to an action it did not take.
TEST(InstanceMachineTable, ImpossiblePairsAreTimersAndAnswersOnly) {
  const std::set<Event> answers_and_timers{
      Event::spawned,   Event::spawn_failed, Event::exited,       Event::tree_gone,
      Event::min_uptime, Event::start_timeout, Event::heartbeat_due, Event::probe_due,
      Event::probe_passed, Event::probe_failed, Event::memory_sample, Event::backoff_due,
      Event::kill_due};
  for (State s : kAllStates) {
    for (Event e : kAllEvents) {
      if (std::string(InstanceMachine::kind_of(s, e)) != "impossible") continue;
      EXPECT_TRUE(answers_and_timers.count(e)) << to_string(s) << " " << to_string(e)
                                               << ": a request or a message can always come";
    }
  }
}

// ---------------------------------------------------------------------------
// Readiness

TEST(InstanceMachine, UptimeReadinessAtExactlyMinUptime) {
  Sim s;
  s.start();
  EXPECT_EQ(s.state(), State::starting);
  EXPECT_EQ(s.m().pid(), 100);
  EXPECT_TRUE(s.logged("info: started, pid 100"));
  auto took = s.advance_until([&] { return s.state() == State::running; });
  ASSERT_TRUE(took);
  EXPECT_EQ(*took, 1s);
}

TEST(InstanceMachine, NotifyReadinessOnReadyOnly) {
  ProgramConfig c = sim::base_config();
  c.ready = ReadyMode::notify;
  Sim s(c);
  s.start();
  s.advance(59s);
  EXPECT_EQ(s.state(), State::starting) << "min_uptime means nothing with ready = notify";
  s.send(Event::ready_signal);
  EXPECT_EQ(s.state(), State::running);
  EXPECT_TRUE(s.timers.empty()) << "no start timeout left armed";
}

TEST(InstanceMachine, StartTimeoutKillsAndRestartsWithItsReason) {
  ProgramConfig c = sim::base_config();
  c.ready = ReadyMode::notify;
  c.start_timeout = 3s;
  Sim s(c);
  s.start();
  s.advance(3s);
  EXPECT_TRUE(s.logged("error: not ready (READY=1) within start_timeout 3s; restarting"));
  EXPECT_EQ(s.signals, std::vector<int>{SIGTERM});
  EXPECT_EQ(s.state(), State::backoff);
  EXPECT_EQ(s.m().restart_reason(), RestartReason::start_timeout);
  s.advance(100ms);
  EXPECT_EQ(s.state(), State::starting);
  EXPECT_EQ(s.restarts(RestartReason::start_timeout), 1u);
}

TEST(InstanceMachine, ExtendTimeoutMovesTheStartDeadline) {
  ProgramConfig c = sim::base_config();
  c.ready = ReadyMode::notify;
  c.start_timeout = 3s;
  Sim s(c);
  s.start();
  s.advance(2s);
  EventData d;
  d.extend = 10s;
  s.send(Event::extend_timeout, d);
  s.advance(9s);
  EXPECT_EQ(s.state(), State::starting);
  s.advance(1s);
  EXPECT_EQ(s.state(), State::backoff) << "killed at 2s + 10s";
}

TEST(InstanceMachine, ReadyFromAnotherModeIsOnlyInformation) {
  Sim s;  // ready = uptime
  s.start();
  s.send(Event::ready_signal);
  EXPECT_EQ(s.state(), State::starting);
}

// ---------------------------------------------------------------------------
// Restarts: backoff, reset, fatal

TEST(InstanceMachine, CrashLoopDoublesTheDelayUpToTheCap) {
  ProgramConfig c = sim::base_config();
  c.restart_delay = 100ms;
  c.restart_delay_max = 1s;
  Sim s(c);
  s.start();
  std::vector<Duration> delays;
  for (int i = 0; i < 6; ++i) {
    s.advance(10ms);
    s.send_exit(ExitStatus::exited(1));
    ASSERT_EQ(s.state(), State::backoff);
    delays.push_back(std::chrono::duration_cast<Duration>(*s.m().next_start() - s.now));
    s.advance_until([&] { return s.state() == State::starting; });
  }
  EXPECT_EQ(delays, (std::vector<Duration>{100ms, 200ms, 400ms, 800ms, 1s, 1s}));
  EXPECT_EQ(s.restarts(RestartReason::exit), 6u);
  EXPECT_EQ(s.spawns, 7);
}

TEST(InstanceMachine, LongRunStartsTheBackoffOver) {
  Sim s;
  s.start();
  for (int i = 0; i < 3; ++i) {
    s.send_exit(ExitStatus::exited(1));
    s.advance_until([&] { return s.state() == State::starting; });
  }
  s.advance(60s);
  s.send_exit(ExitStatus::killed(SIGSEGV));
  EXPECT_EQ(*s.m().next_start() - s.now, 100ms);
  EXPECT_EQ(s.m().restart_reason(), RestartReason::signal);
  EXPECT_TRUE(s.logged("info: killed by signal SEGV after 1m (restarting in 100ms)"));
}

TEST(InstanceMachine, FatalAfterMaxRestartsInTheWindowThenManualStartClearsIt) {
  ProgramConfig c = sim::base_config();
  c.max_restarts = 3;
  c.restart_window = 10s;
  Sim s(c);
  s.start();
  for (int i = 0; i < 3; ++i) {
    s.send_exit(ExitStatus::exited(2));
    ASSERT_EQ(s.state(), State::backoff) << i;
    s.advance_until([&] { return s.state() == State::starting; });
  }
  s.send_exit(ExitStatus::exited(2));
  EXPECT_EQ(s.state(), State::fatal);
  EXPECT_TRUE(s.logged("giving up: more than 3 restarts within 10s; state fatal until a manual start"));
  EXPECT_TRUE(s.timers.empty());
  s.advance(1h);
  EXPECT_EQ(s.state(), State::fatal) << "no more tries on its own";
  s.start(/*manual=*/true);
  EXPECT_EQ(s.state(), State::starting);
  s.send_exit(ExitStatus::exited(2));
  EXPECT_EQ(s.state(), State::backoff) << "the manual start cleared the tally";
}

TEST(InstanceMachine, OnFailureStaysExitedAfterACleanExit) {
  ProgramConfig c = sim::base_config();
  c.restart = RestartMode::on_failure;
  Sim s(c);
  s.start();
  s.send_exit(ExitStatus::exited(0));
  EXPECT_EQ(s.state(), State::exited);
  EXPECT_TRUE(s.logged("not restarted: restart = \"on-failure\""));
  EXPECT_TRUE(s.timers.empty());
  EXPECT_EQ(s.m().counts().exits[static_cast<std::size_t>(ExitKind::clean)], 1u);
}

TEST(InstanceMachine, SpawnFailuresAreThrottledThenFatal) {
  ProgramConfig c = sim::base_config();
  c.max_restarts = 2;
  c.restart_window = 1h;
  Sim s(c);
  s.spawn_fails = true;
  s.start();
  EXPECT_EQ(s.state(), State::backoff);
  EXPECT_TRUE(s.logged("error: cannot execute \"app\": No such file or directory (restarting in 100ms)"));
  EXPECT_EQ(s.m().last_error(), "cannot execute \"app\": No such file or directory");
  EXPECT_EQ(s.m().last_error_at(), s.now);
  s.advance_until([&] { return s.state() == State::fatal; });
  EXPECT_EQ(s.spawns, 3);
  EXPECT_EQ(s.m().last_exit()->code, 127);
  EXPECT_EQ(s.m().counts().exits[static_cast<std::size_t>(ExitKind::code)], 3u);
  // Each end keeps its reason; the verdict names the ends that made it.
  ASSERT_EQ(s.m().recent_exits().size(), 3u);
  for (const auto& e : s.m().recent_exits()) {
    EXPECT_EQ(e.status.code, 127);
    EXPECT_EQ(e.run, Duration{0});
    EXPECT_EQ(e.reason, "cannot execute \"app\": No such file or directory");
  }
  EXPECT_EQ(s.m().last_error(),
            "fatal: gave up after more than 2 restarts within 1h; the last 3 ends: cannot execute "
            "\"app\": No such file or directory (x3)");
}

TEST(InstanceMachine, CrashKillsWhatTheProcessLeftInItsGroup) {
  Sim s;
  s.start();
  s.send_exit(ExitStatus::exited(1));
  EXPECT_EQ(s.kill_leftovers, 1);
}

// ---------------------------------------------------------------------------
// Operator requests

TEST(InstanceMachine, StopSendsStopSignalThenKillsAtStopTimeout) {
  Sim s;
  s.exits_on_signal = false;
  s.start();
  s.advance(1s);
  s.send(Event::stop);
  EXPECT_EQ(s.state(), State::stopping);
  EXPECT_TRUE(s.logged("info: stopping (SIGTERM to process group 100)"));
  s.advance(9999ms);
  EXPECT_EQ(s.signals, std::vector<int>{SIGTERM});
  s.advance(1ms);
  EXPECT_EQ(s.signals, (std::vector<int>{SIGTERM, SIGKILL}));
  EXPECT_TRUE(s.logged("warn: still running 10.0s after SIGTERM; sending SIGKILL"));
  EXPECT_EQ(s.state(), State::stopped);
  EXPECT_EQ(s.stops_finished, 1);
  EXPECT_EQ(s.m().counts().total_restarts(), 0u);
}

TEST(InstanceMachine, StopWaitsForTheWholeTree) {
  Sim s;
  s.start();
  s.leaves_tree = true;  // a daemonized process ignores SIGTERM
  s.send(Event::stop);
  EXPECT_EQ(s.state(), State::stopping) << "the main process is gone, its tree is not";
  s.advance(10s);
  EXPECT_EQ(s.signals.back(), SIGKILL);
  s.advance(kKillRecheck);
  EXPECT_EQ(s.signals.back(), SIGKILL) << "SIGKILL again every recheck while something lives";
  s.leaves_tree = false;
  s.advance(kKillRecheck);
  EXPECT_EQ(s.state(), State::stopped);
  EXPECT_TRUE(s.timers.empty());
}

TEST(InstanceMachine, ExtendTimeoutWhileStoppingDelaysTheKill) {
  Sim s;
  s.exits_on_signal = false;
  s.start();
  s.send(Event::stop);
  s.advance(5s);
  EventData d;
  d.extend = 20s;
  s.send(Event::extend_timeout, d);
  s.advance(19s);
  EXPECT_EQ(s.signals, std::vector<int>{SIGTERM});
  s.advance(1s);
  EXPECT_TRUE(s.logged("still running 25.0s after SIGTERM"));
}

TEST(InstanceMachine, ManualRestartStopsThenStartsAndCountsIt) {
  Sim s;
  s.start();
  s.advance(1s);
  s.send(Event::restart);
  EXPECT_EQ(s.state(), State::starting);
  EXPECT_EQ(s.m().pid(), 101);
  EXPECT_EQ(s.restarts(RestartReason::manual), 1u);
  EXPECT_EQ(s.signals, std::vector<int>{SIGTERM});
}

TEST(InstanceMachine, RestartWhenStoppedStartsAtOnce) {
  Sim s;
  s.send(Event::restart);
  EXPECT_EQ(s.state(), State::starting);
  EXPECT_EQ(s.restarts(RestartReason::manual), 1u);
}

TEST(InstanceMachine, StartDuringAStopStartsAfterIt) {
  Sim s;
  s.exits_on_signal = false;
  s.start();
  s.send(Event::stop);
  s.start();
  EXPECT_EQ(s.state(), State::stopping);
  s.send_exit(ExitStatus::killed(SIGTERM));
  EXPECT_EQ(s.state(), State::starting);
  EXPECT_EQ(s.m().counts().total_restarts(), 0u) << "a start is not a restart";
}

TEST(InstanceMachine, StopDuringAKillForACauseStaysStopped) {
  ProgramConfig c = sim::base_config();
  c.heartbeat = HeartbeatConfig{1s, 1, 1s};
  Sim s(c);
  s.exits_on_signal = false;
  s.start();
  s.advance(1s);  // hung
  ASSERT_TRUE(s.m().stopping_for(RestartReason::hung));
  s.send(Event::stop);
  s.send_exit(ExitStatus::killed(SIGTERM));
  EXPECT_EQ(s.state(), State::stopped) << "the operator's stop wins over the restart";
  EXPECT_EQ(s.m().counts().total_restarts(), 0u);
}

TEST(InstanceMachine, StopInBackoffCancelsTheRestart) {
  Sim s;
  s.start();
  s.send_exit(ExitStatus::exited(1));
  s.send(Event::stop);
  EXPECT_EQ(s.state(), State::stopped);
  EXPECT_TRUE(s.timers.empty());
  EXPECT_EQ(s.m().restart_reason(), std::nullopt) << "no restart is coming";
  s.advance(1h);
  EXPECT_EQ(s.spawns, 1);
}

// A program that daemonized and whose main process exited: a stop or a
// restart reaches what it left, as a stop with a main process would.
TEST(InstanceMachine, StopWithLeftoversStopsThemThenIsStopped) {
  ProgramConfig c = sim::base_config();
  c.restart = RestartMode::never;
  Sim s(c);
  s.start();
  s.advance(1s);
  s.send_exit(ExitStatus::exited(0));
  ASSERT_EQ(s.state(), State::exited);
  s.leaves_tree = true;  // the daemon ignores SIGTERM
  EventData d;
  d.leftovers = true;
  s.send(Event::stop, d);
  EXPECT_EQ(s.state(), State::stopping);
  EXPECT_TRUE(s.logged("info: stopping what it left running (SIGTERM)"));
  EXPECT_EQ(s.signals, std::vector<int>{SIGTERM});
  EXPECT_EQ(s.stops_finished, 0) << "not over while the daemon lives";
  s.advance(10s);
  EXPECT_EQ(s.signals.back(), SIGKILL) << "SIGKILL after stop_timeout, as for a group";
  s.leaves_tree = false;
  s.advance(kKillRecheck);
  EXPECT_EQ(s.state(), State::stopped);
  EXPECT_EQ(s.stops_finished, 1);
  EXPECT_TRUE(s.timers.empty());
}

TEST(InstanceMachine, RestartWithLeftoversStopsThemFirst) {
  ProgramConfig c = sim::base_config();
  c.restart = RestartMode::never;
  Sim s(c);
  s.start();
  s.send_exit(ExitStatus::exited(0));
  s.leaves_tree = true;
  EventData d;
  d.leftovers = true;
  s.send(Event::restart, d);
  EXPECT_EQ(s.state(), State::stopping) << "no second copy before the first is gone";
  EXPECT_EQ(s.spawns, 1);
  s.leaves_tree = false;
  s.send(Event::tree_gone);
  EXPECT_EQ(s.state(), State::starting);
  EXPECT_EQ(s.spawns, 2);
  EXPECT_EQ(s.restarts(RestartReason::manual), 1u);
}

TEST(InstanceMachine, StopInBackoffWithLeftoversCancelsTheRestart) {
  Sim s;
  s.start();
  s.send_exit(ExitStatus::exited(1));
  ASSERT_EQ(s.state(), State::backoff);
  EventData d;
  d.leftovers = true;
  s.send(Event::stop, d);  // the tree is gone at the first check
  EXPECT_EQ(s.state(), State::stopped);
  EXPECT_TRUE(s.timers.empty());
  s.advance(1h);
  EXPECT_EQ(s.spawns, 1);
}

// ---------------------------------------------------------------------------
// Heartbeats

ProgramConfig heartbeat_config(Duration interval = 5s, int misses = 3, Duration grace = 30s) {
  ProgramConfig c = sim::base_config();
  c.heartbeat = HeartbeatConfig{interval, misses, grace};
  return c;
}

TEST(InstanceMachine, NoFirstHeartbeatIsHungAtGracePlusMissesMinusOneIntervals) {
  Sim s(heartbeat_config(5s, 3, 30s));
  s.start();
  auto took = s.advance_until([&] { return s.state() == State::stopping || s.state() == State::backoff; });
  ASSERT_TRUE(took);
  EXPECT_EQ(*took, 40s);
  EXPECT_EQ(s.m().restart_reason(), RestartReason::hung);
  EXPECT_EQ(s.m().heartbeat().total_misses(), 3u);
  EXPECT_TRUE(s.logged("warn: missed heartbeat (1 of 3 in a row)"));
  EXPECT_TRUE(s.logged("warn: missed heartbeat (2 of 3 in a row)"));
  EXPECT_TRUE(s.logged("error: hung: no heartbeat for 15s (3 missed intervals of 5s); restarting"));
}

TEST(InstanceMachine, HeartbeatsKeepItAliveAndSilenceIsHungAfterMissesIntervals) {
  Sim s(heartbeat_config(5s, 3, 30s));
  s.start();
  for (int i = 0; i < 100; ++i) {
    s.advance(4s);
    s.send(Event::heartbeat);
  }
  EXPECT_EQ(s.state(), State::running);
  EXPECT_EQ(s.m().heartbeat().total_misses(), 0u);
  EXPECT_EQ(s.m().heartbeat().total_beats(), 100u);
  const SteadyTime last = s.now;
  s.advance_until([&] { return s.state() != State::running; });
  EXPECT_EQ(s.now - last, 15s);
}

TEST(InstanceMachine, HeartbeatsCostNoTimerActions) {
  Sim s(heartbeat_config(5s, 3, 30s));
  s.start();
  s.advance(1s);
  Actions first = s.machine->on(Event::heartbeat, {}, s.now);
  EXPECT_EQ(sim::summary(first), "arm(heartbeat)") << "the deadline moved from the grace's end to +5s";
  for (int i = 0; i < 3; ++i) {
    s.advance(1s);
    Actions out = s.machine->on(Event::heartbeat, {}, s.now);
    EXPECT_TRUE(out.empty()) << sim::summary(out);
  }
}

TEST(InstanceMachine, LateTimerCountsTheIntervalsThatPassed) {
  Sim s(heartbeat_config(5s, 3, 30s));
  s.start();
  s.send(Event::heartbeat);
  // The loop stalled: the timer due at +5s runs at +12s.
  s.now += 12s;
  s.send(Event::heartbeat_due);
  EXPECT_EQ(s.m().heartbeat().consecutive_misses(), 2);
  EXPECT_FALSE(s.m().heartbeat().hung());
  EXPECT_EQ(s.timers.at(TimerId::heartbeat), kT0 + 15s) << "the third miss is due at +15s";
}

TEST(InstanceMachine, WatchdogTriggerIsHungAtOnce) {
  Sim s(heartbeat_config());
  s.start();
  s.send(Event::hang_declared);
  EXPECT_EQ(s.state(), State::backoff);
  EXPECT_EQ(s.m().restart_reason(), RestartReason::hung);
  EXPECT_TRUE(s.logged("declared itself hung (WATCHDOG=trigger)"));
}

TEST(InstanceMachine, StoppingOnItsOwnEndsHangDetection) {
  Sim s(heartbeat_config(1s, 1, 1s));
  s.start();
  s.send(Event::child_stopping);
  s.advance(1h);
  EXPECT_EQ(s.state(), State::running);
  s.send_exit(ExitStatus::exited(0));
  EXPECT_EQ(s.m().restart_reason(), RestartReason::exit);
}

TEST(InstanceMachine, ExtendTimeoutDelaysTheNextMiss) {
  Sim s(heartbeat_config(5s, 1, 5s));
  s.start();
  s.send(Event::heartbeat);
  EventData d;
  d.extend = 30s;
  s.send(Event::extend_timeout, d);
  s.advance(29s);
  EXPECT_EQ(s.m().heartbeat().total_misses(), 0u);
  s.advance(1s);
  EXPECT_EQ(s.m().restart_reason(), RestartReason::hung);
}

TEST(InstanceMachine, ReloadAfterStoppingKeepsHangDetectionOff) {
  Sim s(heartbeat_config(200ms, 3, 1s));
  s.start();
  s.send(Event::child_stopping);
  s.config.heartbeat = HeartbeatConfig{250ms, 3, 200ms};
  s.send(Event::settings_changed);
  s.advance(1h);
  EXPECT_EQ(s.state(), State::running);
  EXPECT_EQ(s.restarts(RestartReason::hung), 0u);
}

TEST(InstanceMachine, ReadyWithinAnExtendedStartCounts) {
  ProgramConfig c = sim::base_config();
  c.ready = ReadyMode::notify;
  c.start_timeout = 1s;
  Sim s(c);
  s.start();
  EventData d;
  d.extend = 5s;
  s.send(Event::extend_timeout, d);
  s.advance(4s);
  s.send(Event::ready_signal);
  EXPECT_EQ(s.state(), State::running);
  s.advance(1h);
  EXPECT_EQ(s.state(), State::running);
}

TEST(InstanceMachine, ExitCodesListedAreCleanAndSignalsNever) {
  ProgramConfig c = sim::base_config();
  c.restart = RestartMode::on_failure;
  c.exit_codes = {0, 3};
  Sim s(c);
  s.start();
  s.send_exit(ExitStatus::exited(3));
  EXPECT_EQ(s.state(), State::exited);
  s.start();
  s.send_exit(ExitStatus::killed(SIGTERM));
  EXPECT_EQ(s.state(), State::backoff) << "death by a signal is a failure whatever exit_codes says";
}

TEST(InstanceMachine, RestartNeverLeavesEveryEndDown) {
  ProgramConfig c = sim::base_config();
  c.restart = RestartMode::never;
  Sim s(c);
  s.start();
  s.send_exit(ExitStatus::killed(SIGKILL));
  EXPECT_EQ(s.state(), State::exited);
  EXPECT_TRUE(s.logged("not restarted: restart = \"never\""));
}

TEST(InstanceMachine, HeartbeatAddedByReloadStartsItsGraceNow) {
  Sim s;
  s.start();
  s.advance(10min);
  s.config.heartbeat = HeartbeatConfig{5s, 2, 20s};
  s.send(Event::settings_changed);
  auto took = s.advance_until([&] { return s.state() != State::running; });
  EXPECT_EQ(*took, 25s);
}

TEST(InstanceMachine, HeartbeatRemovedByReloadStopsDetection) {
  Sim s(heartbeat_config(1s, 1, 1s));
  s.start();
  s.config.heartbeat.reset();
  s.send(Event::settings_changed);
  s.advance(1h);
  EXPECT_EQ(s.state(), State::running);
  EXPECT_TRUE(s.timers.empty());
}

// ---------------------------------------------------------------------------
// Memory

ProgramConfig memory_config() {
  ProgramConfig c = sim::base_config();
  c.memory_limit_bytes = 100u << 20;
  return c;
}

TEST(InstanceMachine, ThreeSamplesInARowOverTheLimitRestart) {
  Sim s(memory_config());
  s.start();
  s.sample(200u << 20);
  s.sample(200u << 20);
  s.sample(50u << 20);  // a spike, not a leak
  s.sample(200u << 20);
  s.sample(200u << 20);
  EXPECT_EQ(s.state(), State::starting);
  s.sample(200u << 20);
  EXPECT_EQ(s.m().restart_reason(), RestartReason::memory);
  EXPECT_TRUE(s.logged("error: memory 200MiB over the limit of 100MiB for 3 samples; restarting"));
}

TEST(InstanceMachine, MemoryRestartWaitsForASiblingsOne) {
  Sim s(memory_config());
  s.start();
  for (int i = 0; i < 5; ++i) s.sample(200u << 20, /*sibling=*/true);
  EXPECT_EQ(s.state(), State::starting);
  s.sample(200u << 20, false);
  EXPECT_EQ(s.m().restart_reason(), RestartReason::memory);
}

TEST(InstanceMachine, MemoryCountStartsOverWithTheNextProcess) {
  Sim s(memory_config());
  s.start();
  s.sample(200u << 20);
  s.sample(200u << 20);
  s.send_exit(ExitStatus::exited(1));
  s.advance_until([&] { return s.state() == State::starting; });
  s.sample(200u << 20);
  EXPECT_EQ(s.state(), State::starting);
  EXPECT_EQ(s.m().memory().samples_over(), 1);
}

// ---------------------------------------------------------------------------
// Probes

ProgramConfig probe_config(int failures = 3, ReadyMode ready = ReadyMode::uptime) {
  ProgramConfig c = sim::base_config();
  ProbeConfig p;
  p.kind = ProbeKind::http;
  p.target = "http://127.0.0.1:8080/health";
  p.interval = 10s;
  p.timeout = 2s;
  p.failures = failures;
  p.initial_delay = 5s;
  c.probe = p;
  c.ready = ready;
  return c;
}

TEST(InstanceMachine, ProbesStartAfterInitialDelayThenEveryIntervalOnAPhaseOfTheirOwn) {
  Sim s(probe_config());  // jitter 0: the phase is half an interval
  s.start();
  s.advance(4999ms);
  EXPECT_EQ(s.probes_started, 0);
  s.advance(1ms);
  EXPECT_EQ(s.probes_started, 1);
  s.probe(true);
  EXPECT_EQ(s.timers.at(TimerId::probe) - s.now, 5s) << "the second probe sets the phase";
  s.advance(5s);
  EXPECT_EQ(s.probes_started, 2);
  s.probe(true);
  EXPECT_EQ(s.timers.at(TimerId::probe) - s.now, 10s) << "from the start of one probe to the next";
  s.advance(10s);
  EXPECT_EQ(s.probes_started, 3);
}

TEST(InstanceMachine, ProbesOfInstancesStartedTogetherSpreadOverAnInterval) {
  std::vector<Duration> phases;
  for (double jitter : {-1.0, -0.5, 0.0, 0.5, 1.0}) {
    ProgramConfig c = probe_config();
    Sim s(c, [jitter] { return jitter; });
    s.start();
    s.advance(5s);
    phases.push_back(std::chrono::duration_cast<Duration>(s.timers.at(TimerId::probe) - s.now));
  }
  EXPECT_EQ(phases, (std::vector<Duration>{1ms, 2500ms, 5s, 7500ms, 10s}));
}

TEST(InstanceMachine, FailuresInARowRestartWithReasonProbe) {
  Sim s(probe_config(3));
  s.start();
  s.advance(5s);
  s.probe(false);
  s.advance(10s);
  s.probe(false);
  EXPECT_TRUE(s.logged("warn: probe failed (2 of 3 in a row): connection refused"));
  s.advance(10s);
  s.probe(true);  // a pass starts the count over
  EXPECT_EQ(s.m().probe_failures_in_a_row(), 0);
  for (int i = 0; i < 3; ++i) {
    s.advance(10s);
    s.probe(false, ProbeFailure::status, "HTTP 503");
  }
  EXPECT_EQ(s.m().restart_reason(), RestartReason::probe);
  EXPECT_TRUE(s.logged("error: probe failed 3 times in a row (HTTP 503); restarting"));
  s.advance_until([&] { return s.state() == State::starting; });
  EXPECT_EQ(s.restarts(RestartReason::probe), 1u);
}

TEST(InstanceMachine, AtMostOneProbeInFlight) {
  Sim s(probe_config());
  s.start();
  s.advance(5s);
  s.advance(30s);  // three ticks pass, the first probe has not answered
  EXPECT_EQ(s.probes_started, 1);
  s.probe(true);
  s.advance(10s);
  EXPECT_EQ(s.probes_started, 2);
}

TEST(InstanceMachine, ProbeInFlightIsCancelledWhenTheProcessEnds) {
  Sim s(probe_config());
  s.start();
  s.advance(5s);
  s.send_exit(ExitStatus::exited(1));
  EXPECT_EQ(s.probes_cancelled, 1);
  EXPECT_FALSE(s.m().probe_in_flight());
  EXPECT_EQ(s.timers.count(TimerId::probe), 0u);
}

TEST(InstanceMachine, ReadyProbeIsRunningOnTheFirstPass) {
  ProgramConfig c = probe_config(1, ReadyMode::probe);
  c.probe->initial_delay = 0s;
  c.probe->interval = 1s;
  Sim s(c);
  s.start();
  s.advance(1s);  // t=0 and t=1s: two ticks, one probe in flight
  s.probe(false);
  s.advance(1s);
  s.probe(false);
  EXPECT_EQ(s.state(), State::starting) << "failures while starting are judged by start_timeout";
  s.advance(1s);
  s.probe(true);
  EXPECT_EQ(s.state(), State::running);
  EXPECT_TRUE(s.logged("info: ready (probe passed)"));
  s.advance(1s);
  s.probe(false);
  EXPECT_EQ(s.m().restart_reason(), RestartReason::probe) << "once running, failures count";
}

TEST(InstanceMachine, ReadyProbeNeverPassingHitsStartTimeout) {
  ProgramConfig c = probe_config(3, ReadyMode::probe);
  c.start_timeout = 30s;
  Sim s(c);
  s.start();
  while (s.state() == State::starting) {
    s.advance_until([&] { return s.m().probe_in_flight() || s.state() != State::starting; });
    if (s.m().probe_in_flight()) s.probe(false);
  }
  EXPECT_EQ(s.m().restart_reason(), RestartReason::start_timeout);
  EXPECT_TRUE(s.logged("no passing probe within start_timeout 30s"));
  EXPECT_EQ(s.now - kT0, 30s);
}

TEST(InstanceMachine, StoppingOnItsOwnEndsProbing) {
  Sim s(probe_config(1));
  s.start();
  s.advance(5s);
  s.send(Event::child_stopping);
  EXPECT_EQ(s.probes_cancelled, 1);
  s.advance(1h);
  EXPECT_EQ(s.probes_started, 1);
  EXPECT_EQ(s.state(), State::running);
}

TEST(InstanceMachine, ProbeAddedByReloadToALongRunningProcessStartsNow) {
  Sim s;
  s.start();
  s.advance(1h);
  s.config.probe = probe_config().probe;
  s.send(Event::settings_changed);
  s.advance(0s);
  EXPECT_EQ(s.probes_started, 1) << "initial_delay after the start is long past";
  s.config.probe.reset();
  s.send(Event::settings_changed);
  EXPECT_EQ(s.probes_cancelled, 1);
  s.advance(1h);
  EXPECT_EQ(s.probes_started, 1);
}

// ---------------------------------------------------------------------------
// Events the machine keeps out of its decisions

TEST(InstanceMachine, MessagesAfterTheProcessEndedChangeNothing) {
  Sim s(heartbeat_config(1s, 1, 1s));
  s.start();
  s.send(Event::stop);
  ASSERT_EQ(s.state(), State::stopped);
  for (Event e : {Event::ready_signal, Event::hang_declared, Event::child_stopping,
                  Event::extend_timeout}) {
    Actions out = s.machine->on(e, sim::event_data(e), s.now);
    EXPECT_TRUE(out.empty()) << to_string(e);
    EXPECT_EQ(s.state(), State::stopped);
  }
}

TEST(InstanceMachine, AllOfItInSimulatedTimeIsFast) {
  // A day of a crash-looping, heartbeating, probed instance.
  ProgramConfig c = probe_config();
  c.heartbeat = HeartbeatConfig{5s, 3, 30s};
  c.max_restarts = 0;
  c.restart_window = 0s;
  Sim s(c);
  s.start();
  int restarts_seen = 0;
  while (s.now - kT0 < 24h) {
    s.advance(5s);
    s.send(Event::heartbeat);
    if (s.m().probe_in_flight()) s.probe(true);
    if ((s.now - kT0) % 1h == 0s) {
      s.send_exit(ExitStatus::exited(1));
      ++restarts_seen;
    }
  }
  s.advance(1s);
  EXPECT_EQ(s.restarts(RestartReason::exit), static_cast<std::uint64_t>(restarts_seen));
  EXPECT_EQ(s.restarts(RestartReason::hung), 0u);
  EXPECT_EQ(s.restarts(RestartReason::probe), 0u);
}

// Why it went wrong, where operators look: last_error with its evidence,
// recent exits with their reasons (the spawn error's: with the fatal
// verdict, in SpawnFailuresAreThrottledThenFatal).
TEST(InstanceMachine, EachEndKeepsItsReasonAndRunTime) {
  ProgramConfig c = heartbeat_config(5s, 3, 30s);
  c.max_restarts = 10;
  c.restart_window = 1h;
  Sim s(c);
  s.start();
  s.advance(2s);
  s.send_exit(ExitStatus::exited(3));
  EXPECT_EQ(s.m().last_error(), "exited with exit code 3");
  s.advance_until([&] { return s.state() == State::starting; });
  s.advance(1s);
  s.send_exit(ExitStatus::killed(SIGSEGV));
  EXPECT_EQ(s.m().last_error(), "killed by signal SEGV");
  s.advance_until([&] { return s.state() == State::backoff && s.m().recent_exits().size() == 3; });
  EXPECT_EQ(s.m().last_error(), "hung: no heartbeat for 15s (3 missed intervals of 5s)");
  ASSERT_EQ(s.m().recent_exits().size(), 3u);
  const auto& e = s.m().recent_exits();
  EXPECT_EQ(e[0].reason, "exited with exit code 3");
  EXPECT_EQ(e[0].run, 2s);
  EXPECT_EQ(e[1].reason, "killed by signal SEGV");
  EXPECT_EQ(e[1].run, 1s);
  EXPECT_EQ(e[2].reason, "hung: no heartbeat for 15s (3 missed intervals of 5s)");
  EXPECT_EQ(e[2].run, 40s) << "the grace, then two more intervals";
  // An operator's stop is an end with its own reason, and no error.
  s.advance_until([&] { return s.state() == State::starting; });
  s.send(Event::stop);
  EXPECT_EQ(s.state(), State::stopped);
  EXPECT_EQ(s.m().recent_exits().back().reason, "stopped");
  EXPECT_EQ(s.m().last_error(), "hung: no heartbeat for 15s (3 missed intervals of 5s)");
}

TEST(InstanceMachine, ACleanExitIsNoErrorAndOnlyTheLastTenEndsAreKept) {
  ProgramConfig c = sim::base_config();
  c.restart = RestartMode::always;
  c.max_restarts = 100;
  c.restart_window = 1h;
  Sim s(c);
  s.start();
  for (int i = 0; i < 12; ++i) {
    s.send_exit(ExitStatus::exited(0));
    s.advance_until([&] { return s.state() == State::starting; });
  }
  EXPECT_EQ(s.m().last_error(), "");
  EXPECT_FALSE(s.m().last_error_at());
  EXPECT_EQ(s.m().recent_exits().size(), kRecentExits);
  EXPECT_EQ(s.m().recent_exits().back().reason, "exited with exit code 0");
}

TEST(InstanceMachine, AMemoryKillKeepsItsEvidence) {
  Sim s(memory_config());
  s.start();
  for (int i = 0; i < 3; ++i) s.sample(200u << 20);
  s.advance_until([&] { return s.state() == State::backoff; });
  EXPECT_EQ(s.m().last_error(), "memory 200MiB over the limit of 100MiB for 3 samples");
  EXPECT_EQ(s.m().recent_exits().back().reason, "memory 200MiB over the limit of 100MiB for 3 samples");
}

// The default restart window is systemd's StartLimitIntervalSec (10s): a
// program that dies at once is fatal within seconds, one that flaps every
// 12s under load is restarted for ever.
TEST(InstanceMachine, DefaultWindowGivesUpOnACrashAtOnceNotOnAFlappingProgram) {
  ProgramConfig defaults;
  defaults.name = "web";
  defaults.command = {"app"};
  {
    Sim s(defaults);
    s.start();
    const SteadyTime began = s.now;
    for (int i = 0; i < 10 && s.state() != State::fatal; ++i) {
      s.send_exit(ExitStatus::exited(1));
      s.advance_until([&] { return s.state() == State::starting || s.state() == State::fatal; });
    }
    EXPECT_EQ(s.state(), State::fatal);
    EXPECT_LT(s.now - began, 5s) << "fatal within seconds";
  }
  {
    Sim s(defaults);
    s.start();
    for (int i = 0; i < 50; ++i) {
      s.advance(12s);
      s.send_exit(ExitStatus::exited(1));
      ASSERT_EQ(s.state(), State::backoff) << "crash " << i;
      s.advance_until([&] { return s.state() == State::starting; });
    }
    EXPECT_EQ(s.m().counts().total_restarts(), 50u);
  }
}

}  // namespace
}  // namespace vigil
