// Restarts with real children, end to end: a crash is restarted with a new
// process, a crash loop ends in fatal, and `restart` decides which exits are
// restarted at all. The delays, the window and exit_codes are tested exactly
// in simulated time by tests/unit/instance_machine_test.cpp.
#include <gtest/gtest.h>

#include "harness.h"

namespace vigil::it {
namespace {

using RestartTest = InProcessTest;

std::uint64_t restarts(const Instance& i, RestartReason r) {
  return i.counters().restarts[static_cast<std::size_t>(r)];
}
std::uint64_t exits(const Instance& i, ExitKind k) {
  return i.counters().exits[static_cast<std::size_t>(k)];
}

TEST_F(RestartTest, CrashIsRestartedWithANewPid) {
  const fs::path pids = dir_ / "pids";
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "crasher", {"--pidfile", pids.string(), "--crash-after", "300", "--exit-code", "2"},
      "restart_delay = \"50ms\"\nmin_uptime = \"100ms\"")));
  Instance& i = vigil().instance("crasher");

  ASSERT_TRUE(vigil().run_until([&] { return i.pid() > 0; }));
  const pid_t first = i.pid();
  ASSERT_TRUE(vigil().run_until([&] { return i.pid() > 0 && i.pid() != first; }))
      << "state " << to_string(i.state());
  const pid_t second = i.pid();

  EXPECT_EQ(i.spawns(), 2);
  EXPECT_EQ(restarts(i, RestartReason::exit), 1u);
  EXPECT_EQ(exits(i, ExitKind::code), 1u);
  ASSERT_TRUE(i.last_exit().has_value());
  EXPECT_EQ(i.last_exit()->code, 2);
  EXPECT_TRUE(process_gone(first)) << "the crashed process was reaped";
  // The children themselves saw the same two pids.
  ASSERT_TRUE(vigil().run_until([&] { return read_pids(pids).size() >= 2; }));
  EXPECT_EQ(read_pids(pids)[0], first);
  EXPECT_EQ(read_pids(pids)[1], second);
}

TEST_F(RestartTest, CrashLoopGoesFatalAndSpawnsNoMore) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program("loop", {"--exit-immediately", "1"},
                                                     "restart_delay = \"50ms\"\n"
                                                     "max_restarts = 3\n"
                                                     "restart_window = \"60s\"")));
  Instance& i = vigil().instance("loop");

  ASSERT_TRUE(vigil().wait_state("loop", State::fatal)) << "state " << to_string(i.state());
  EXPECT_EQ(i.spawns(), 4) << "the first run and 3 restarts";
  EXPECT_EQ(i.counters().total_restarts(), 3u);
  EXPECT_EQ(i.pid(), -1);
  EXPECT_NE(vigil().log_text().find("giving up"), std::string::npos);

  // The one bounded wait for nothing to happen: a new spawn would end it.
  const int spawns = i.spawns();
  EXPECT_FALSE(vigil().run_until([&] { return i.spawns() != spawns; }, 1500ms));
  EXPECT_EQ(i.state(), State::fatal);
}

// In the tests below a failing sibling with the same delay serves as the
// clock: by the time it has been restarted three times, a restart of the
// program under test (due after one delay) would have happened.
constexpr const char* kQuickRestarts = "restart_delay = \"50ms\"\nmax_restarts = 10\n";

TEST_F(RestartTest, OnFailureLeavesACleanExitAlone) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("clean", {"--exit-immediately", "0"},
                     std::string(kQuickRestarts) + "restart = \"on-failure\"") +
      helper_program("failing", {"--exit-immediately", "3"},
                     std::string(kQuickRestarts) + "restart = \"on-failure\"")));
  Instance& clean = vigil().instance("clean");
  Instance& failing = vigil().instance("failing");

  ASSERT_TRUE(vigil().run_until([&] { return failing.spawns() >= 4; }));
  EXPECT_EQ(clean.state(), State::exited);
  EXPECT_EQ(clean.spawns(), 1);
  EXPECT_EQ(exits(clean, ExitKind::clean), 1u);
  EXPECT_EQ(clean.counters().total_restarts(), 0u);

  EXPECT_GE(restarts(failing, RestartReason::exit), 3u);
  ASSERT_TRUE(failing.last_exit().has_value());
  EXPECT_EQ(failing.last_exit()->code, 3);
  EXPECT_GE(exits(failing, ExitKind::code), 3u);
}

TEST_F(RestartTest, RestartNeverLeavesAFailureDown) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("once", {"--exit-immediately", "1"},
                     std::string(kQuickRestarts) + "restart = \"never\"") +
      helper_program("clock", {"--exit-immediately", "1"}, kQuickRestarts)));
  Instance& once = vigil().instance("once");
  Instance& clock = vigil().instance("clock");

  ASSERT_TRUE(vigil().run_until([&] { return clock.spawns() >= 4; }));
  EXPECT_EQ(once.state(), State::exited);
  EXPECT_EQ(once.spawns(), 1);
  EXPECT_EQ(once.counters().total_restarts(), 0u);
  ASSERT_TRUE(once.last_exit().has_value());
  EXPECT_EQ(once.last_exit()->code, 1);
}

}  // namespace
}  // namespace vigil::it
