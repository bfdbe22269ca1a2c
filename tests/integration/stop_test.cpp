// Stopping with real process trees: a child that ignores SIGTERM is killed
// after stop_timeout together with its process group, and descendants that
// daemonized out of the group are found and killed too.
#include <gtest/gtest.h>
#include <unistd.h>

#include "harness.h"

namespace vigil::it {
namespace {

using StopTest = InProcessTest;

// ppid from /proc/PID/stat; -1 when the process is gone.
pid_t parent_of(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  char state;
  int ppid;
  if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) != 2) return -1;
  return ppid;
}

TEST_F(StopTest, ChildIgnoringTermDiesWithItsGrandchildAfterStopTimeout) {
  const fs::path pids = dir_ / "pids";
  const fs::path grandchild = dir_ / "grandchild";
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "stubborn",
      {"--ignore-term", "--pidfile", pids.string(), "--fork-grandchild", "--grandchild-pidfile",
       grandchild.string()},
      "stop_timeout = \"1s\"\nmin_uptime = \"100ms\"")));
  Instance& i = vigil().instance("stubborn");

  // Both have set up (SIGTERM ignored) once their pids are written.
  ASSERT_TRUE(vigil().run_until(
      [&] { return read_pids(pids).size() == 1 && read_pids(grandchild).size() == 1; }));
  const pid_t child = read_pids(pids)[0];
  const pid_t grand = read_pids(grandchild)[0];
  EXPECT_EQ(i.pid(), child);
  EXPECT_EQ(::getpgid(grand), child) << "the grandchild is in the child's process group";

  const auto t0 = SteadyClock::now();
  ASSERT_EQ(vigil().shutdown(), 0);
  const auto took = std::chrono::duration_cast<Duration>(SteadyClock::now() - t0);

  EXPECT_GE(took.count(), 800) << "SIGTERM is ignored: only the SIGKILL after 1s ends them";
  EXPECT_LE(took.count(), 3 * 1000 + 300);
  EXPECT_EQ(i.state(), State::stopped);
  EXPECT_TRUE(process_gone(child));
  EXPECT_TRUE(process_gone(grand));
  EXPECT_NE(vigil().log_text().find("sending SIGKILL"), std::string::npos);
}

TEST_F(StopTest, ChildLeavingOnTermIsStoppedWithoutWaitingForTheTimeout) {
  const fs::path pids = dir_ / "pids";
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "polite", {"--pidfile", pids.string()}, "stop_timeout = \"10s\"\nmin_uptime = \"100ms\"")));
  Instance& i = vigil().instance("polite");
  ASSERT_TRUE(vigil().wait_state("polite", State::running));
  const pid_t child = i.pid();

  const auto t0 = SteadyClock::now();
  bool stopped = false;
  i.stop([&] { stopped = true; });
  ASSERT_TRUE(vigil().run_until([&] { return stopped; }));
  EXPECT_LT(SteadyClock::now() - t0, 5s);
  EXPECT_EQ(i.state(), State::stopped);
  EXPECT_TRUE(process_gone(child));
  ASSERT_TRUE(i.last_exit().has_value());
  EXPECT_TRUE(i.last_exit()->signaled);
  EXPECT_EQ(i.last_exit()->signal, SIGTERM);
  // A stop is not a crash: nothing is restarted.
  EXPECT_FALSE(vigil().run_until([&] { return i.spawns() > 1; }, 300ms));
}

// The daemon (fork, setsid, fork) has left the process group; vigil, a
// subreaper, inherits it and must still stop it with its instance.
void expect_daemon_killed_on_stop(InProcessVigil& vigil, const TempDir& dir, bool daemon_ignores_term) {
  const fs::path daemon_pidfile = dir / "daemon";
  Instance& i = vigil.instance("daemonizer");
  ASSERT_TRUE(vigil.run_until([&] { return read_pids(daemon_pidfile).size() == 1; }));
  const pid_t daemon = read_pids(daemon_pidfile)[0];
  ASSERT_TRUE(vigil.run_until([&] { return parent_of(daemon) == ::getpid(); }))
      << "the daemon is re-parented to vigil (subreaper)";
  EXPECT_NE(::getpgid(daemon), i.pid()) << "the daemon left the group";

  bool stopped = false;
  i.stop([&] { stopped = true; });
  ASSERT_TRUE(vigil.run_until([&] { return stopped; }));
  EXPECT_EQ(i.state(), State::stopped);
  EXPECT_TRUE(vigil.run_until([&] { return process_gone(daemon); }, 10s))
      << "daemon " << daemon << (daemon_ignores_term ? " (ignoring SIGTERM)" : "")
      << " survived the stop of its instance";
}

TEST_F(StopTest, DoubleForkedDaemonIsKilledOnStop) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "daemonizer", {"--double-fork", (dir_ / "daemon").string()}, "stop_timeout = \"1s\"")));
  expect_daemon_killed_on_stop(vigil(), dir_, false);
}

TEST_F(StopTest, DoubleForkedDaemonIgnoringTermIsKilledAfterStopTimeout) {
  // The main process leaves on SIGTERM at once, so its group is empty right
  // away; the daemon ignores SIGTERM, so only the SIGKILL after
  // stop_timeout can end it.
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "daemonizer", {"--double-fork", (dir_ / "daemon").string(), "--daemon-ignore-term"},
      "stop_timeout = \"1s\"")));
  expect_daemon_killed_on_stop(vigil(), dir_, true);
}

}  // namespace
}  // namespace vigil::it
