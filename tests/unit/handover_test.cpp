// The handover document: an instance machine saved to JSON text and loaded
// into a fresh machine behaves exactly as the original from then on, and a
// document that is not what this vigil wrote is refused with the key's path.
#include "handover.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "instance_sim.h"

namespace vigil {
namespace {

using namespace std::chrono_literals;
using sim::Sim;

// Every concern on: heartbeats, probes, a memory limit, a restart window.
ProgramConfig busy_config() {
  ProgramConfig c = sim::base_config();
  c.heartbeat = HeartbeatConfig{1s, 2, 2s};
  ProbeConfig p;
  p.kind = ProbeKind::http;
  p.target = "http://127.0.0.1:8080/health";
  p.interval = 3s;
  p.timeout = 1s;
  p.failures = 2;
  p.initial_delay = 1s;
  c.probe = p;
  c.memory_limit_bytes = 100u << 20;
  c.max_restarts = 5;
  c.restart_window = 10s;
  c.stop_timeout = 2s;
  return c;
}

// The document goes through text, as it does across exec.
void hand_over(const Sim& from, Sim& to) {
  const std::string text = save_state(from.m()).dump();
  load_state(nlohmann::json::parse(text), *to.machine, "machine");
  to.now = from.now;
  to.timers = from.timers;
  to.next_pid = from.next_pid;
  to.exits_on_signal = from.exits_on_signal;
  to.leaves_tree = from.leaves_tree;
}

// One random step a shell could send in the machine's present state.
void random_step(std::mt19937& rng, Sim& a, Sim& b) {
  auto both = [&](auto&& f) {
    f(a);
    f(b);
  };
  const int pick = std::uniform_int_distribution<int>(0, 13)(rng);
  const bool live = a.m().has_process();
  switch (pick) {
    case 0:
    case 1: {
      const auto d = Duration(std::uniform_int_distribution<int>(1, 3000)(rng));
      both([&](Sim& s) { s.advance(d); });
      break;
    }
    case 2:
      if (live) both([](Sim& s) { s.send_exit(ExitStatus::exited(1)); });
      break;
    case 3:
      if (live) both([](Sim& s) { s.send_exit(ExitStatus::killed(SIGSEGV)); });
      break;
    case 4:
      if (live) both([](Sim& s) { s.send(Event::heartbeat); });
      break;
    case 5:
      if (live) both([](Sim& s) { s.send(Event::ready_signal); });
      break;
    case 6:
      if (a.m().probe_in_flight()) {
        const bool ok = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
        both([&](Sim& s) { s.probe(ok); });
      }
      break;
    case 7: {
      const std::uint64_t rss = std::uniform_int_distribution<int>(0, 1)(rng) ? 200u << 20 : 10u << 20;
      if (live) both([&](Sim& s) { s.sample(rss); });
      break;
    }
    case 8: {
      const bool manual = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
      both([&](Sim& s) { s.start(manual); });
      break;
    }
    case 9:
      both([](Sim& s) { s.send(Event::stop); });
      break;
    case 10:
      both([](Sim& s) { s.send(Event::restart); });
      break;
    case 11:
      if (live) both([](Sim& s) { s.send(Event::hang_declared); });
      break;
    case 12:
      if (live) {
        EventData d;
        d.extend = 1500ms;
        both([&](Sim& s) { s.send(Event::extend_timeout, d); });
      }
      break;
    case 13: {
      // A process that ignores stop_signal, some of the time.
      const bool obeys = std::uniform_int_distribution<int>(0, 3)(rng) != 0;
      both([&](Sim& s) { s.exits_on_signal = obeys; });
      break;
    }
  }
}

void expect_same(const Sim& a, const Sim& b, const std::string& where) {
  ASSERT_EQ(save_state(a.m()).dump(), save_state(b.m()).dump()) << where;
  ASSERT_EQ(a.transitions, b.transitions) << where;
  ASSERT_EQ(a.logs, b.logs) << where;
  ASSERT_EQ(a.timers, b.timers) << where;
  ASSERT_EQ(a.signals, b.signals) << where;
  ASSERT_EQ(a.spawns, b.spawns) << where;
  ASSERT_EQ(a.kill_leftovers, b.kill_leftovers) << where;
  ASSERT_EQ(a.stops_finished, b.stops_finished) << where;
}

// The twin test: run a machine through a random life, hand it over at a
// random moment (with no probe in flight: see the next test), then send
// the original and the loaded copy the same events: every action, log
// line, timer and field stays the same.
TEST(Handover, ALoadedMachineBehavesAsTheOriginalFromThenOn) {
  for (unsigned seed = 1; seed <= 40; ++seed) {
    std::mt19937 rng(seed);
    Sim a(busy_config());
    Sim scratch(busy_config());  // takes the steps before the handover
    a.start();
    const int before = std::uniform_int_distribution<int>(0, 120)(rng);
    for (int i = 0; i < before || a.m().probe_in_flight(); ++i) random_step(rng, a, scratch);

    Sim b(busy_config());
    hand_over(a, b);
    a.transitions.clear();
    a.logs.clear();
    b.signals = a.signals;
    b.spawns = a.spawns;
    b.kill_leftovers = a.kill_leftovers;
    b.stops_finished = a.stops_finished;
    const std::string at = "seed " + std::to_string(seed) + ", handed over in state " +
                           to_string(a.state()) + " after " + std::to_string(before) + " steps";
    expect_same(a, b, at);
    for (int i = 0; i < 200; ++i) {
      random_step(rng, a, b);
      expect_same(a, b, at + ", step " + std::to_string(i));
    }
  }
}

TEST(Handover, AProbeInFlightIsNotCarriedAndTheNextTickProbesAgain) {
  ProgramConfig c = busy_config();
  c.heartbeat.reset();
  Sim a(c);
  a.start();
  a.advance_until([&] { return a.m().probe_in_flight(); });
  ASSERT_EQ(a.probes_started, 1);

  Sim b(c);
  hand_over(a, b);
  EXPECT_FALSE(b.m().probe_in_flight());
  ASSERT_TRUE(b.m().armed(TimerId::probe)) << "the probe timer stays armed";
  b.advance_to(*b.m().armed(TimerId::probe));
  EXPECT_EQ(b.probes_started, 1) << "the loaded machine probes at the next tick";
  EXPECT_TRUE(b.m().probe_in_flight());
}

TEST(Handover, BackoffFatalAndTheRestartTallyCarryOver) {
  ProgramConfig c = sim::base_config();
  c.max_restarts = 3;
  c.restart_window = 10s;
  Sim a(c);
  a.start();
  for (int i = 0; i < 2; ++i) {
    a.send_exit(ExitStatus::exited(2));
    a.advance_until([&] { return a.state() == State::starting; });
  }
  a.send_exit(ExitStatus::exited(2));
  ASSERT_EQ(a.state(), State::backoff);

  Sim b(c);
  hand_over(a, b);
  EXPECT_EQ(b.state(), State::backoff);
  EXPECT_EQ(b.m().next_start(), a.m().next_start());
  EXPECT_EQ(b.m().counts().total_restarts(), a.m().counts().total_restarts());
  EXPECT_EQ(b.m().counts().total_restarts(), 2u) << "two restarts made, the third is the backoff's";
  EXPECT_EQ(b.m().recent_exits().size(), 3u);
  EXPECT_EQ(b.m().last_exit()->code, 2);
  b.advance_until([&] { return b.state() == State::starting; });
  b.send_exit(ExitStatus::exited(2));
  EXPECT_EQ(b.state(), State::fatal) << "the window's tally came along: the 4th restart is one too many";
  EXPECT_NE(b.m().last_error().find("gave up after more than 3 restarts"), std::string::npos)
      << b.m().last_error();

  Sim f(c);
  hand_over(b, f);
  EXPECT_EQ(f.state(), State::fatal);
  f.advance(1h);
  EXPECT_EQ(f.state(), State::fatal);
  EXPECT_EQ(f.m().last_error(), b.m().last_error());
}

TEST(Handover, EveryFieldIsNamedInTheDocument) {
  Sim a(busy_config());
  a.start();
  const auto doc = save_state(a.m());
  for (const char* key : {"state", "pid", "policy", "heartbeat", "memory", "recent_exits", "counts",
                          "armed", "last_error", "next_start", "started_at"})
    EXPECT_TRUE(doc.contains(key)) << key;
  EXPECT_EQ(doc["policy"].size(), 2u);
  EXPECT_EQ(doc["armed"].size(), kTimerCount);
  EXPECT_EQ(doc["counts"]["restarts"].size(), kAllRestartReasons.size());
}

TEST(Handover, ADocumentThatIsNotRightIsRefusedWithThePathOfTheKey) {
  Sim a(busy_config());
  a.start();
  a.send_exit(ExitStatus::exited(1));
  const auto good = save_state(a.m());

  auto refused = [&](nlohmann::json doc) -> std::string {
    Sim b(busy_config());
    try {
      load_state(doc, *b.machine, "instances[0]");
    } catch (const HandoverError& e) {
      return e.what();
    }
    return "accepted";
  };
  auto doc = good;
  doc.erase("policy");
  EXPECT_EQ(refused(doc), "instances[0].policy: missing");
  doc = good;
  doc["policy"]["next_delay"] = "soon";
  EXPECT_EQ(refused(doc), "instances[0].policy.next_delay: not an integer");
  doc = good;
  doc["state"] = 7;
  EXPECT_EQ(refused(doc), "instances[0].state: not one of its values");
  doc = good;
  doc["state"] = -1;
  EXPECT_EQ(refused(doc), "instances[0].state: not one of its values");
  doc = good;
  doc["pid"] = 1ull << 40;
  EXPECT_EQ(refused(doc), "instances[0].pid: out of range");
  doc = good;
  doc["memory"]["samples_over"] = 1.5;
  EXPECT_EQ(refused(doc), "instances[0].memory.samples_over: not an integer");
  doc = good;
  doc["armed"].erase(0);
  EXPECT_EQ(refused(doc), "instances[0].armed: a list of 6 was expected");
  doc = good;
  doc["recent_exits"][0]["status"]["signaled"] = 0;
  EXPECT_EQ(refused(doc), "instances[0].recent_exits[0].status.signaled: not a boolean");
  doc = good;
  doc["counts"]["exits"][1] = 18446744073709551615ull;
  EXPECT_EQ(refused(doc), "accepted") << "a counter takes every uint64";
  doc = good;
  doc["has_process"] = nullptr;
  EXPECT_EQ(refused(doc), "instances[0].has_process: not a boolean");
  EXPECT_EQ(refused(nlohmann::json::array()), "instances[0]: not an object");
  EXPECT_EQ(refused(good), "accepted");
}

TEST(Handover, TheEnvelopeNamesItsFormat) {
  auto doc = handover_envelope("1.2.3");
  EXPECT_EQ(doc["vigil_version"], "1.2.3");
  EXPECT_NO_THROW(check_handover_format(doc));
  doc["format"] = kHandoverFormat + 1;
  try {
    check_handover_format(doc);
    FAIL() << "accepted";
  } catch (const HandoverError& e) {
    EXPECT_EQ(std::string(e.what()), "the state is format " + std::to_string(kHandoverFormat + 1) +
                                         "; this vigil reads format " + std::to_string(kHandoverFormat));
  }
  EXPECT_THROW(check_handover_format(nlohmann::json::object()), HandoverError);
  EXPECT_THROW(check_handover_format(nlohmann::json("garbage")), HandoverError);
}

}  // namespace
}  // namespace vigil
