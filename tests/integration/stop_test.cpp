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

// A program that daemonizes (fork, setsid, fork) and whose main process
// then exits 0 (issue 13, defect 4): its daemon is a stray of vigil's, and
// stop and restart must reach it as a shutdown does, leaving another
// program's daemon alone.
class DaemonizerTest : public StopTest {
 protected:
  void SetUp() override {
    const std::string extra = "restart = \"never\"\nstop_timeout = \"1s\"";
    ASSERT_NO_FATAL_FAILURE(start_vigil(
        helper_program("forker", {"--double-fork", (dir_ / "forker").string(), "--exit-immediately", "0"},
                       extra) +
        helper_program("other", {"--double-fork", (dir_ / "other").string(), "--exit-immediately", "0",
                                 "--daemon-ignore-term"},
                       extra)));
    for (const char* name : {"forker", "other"})
      ASSERT_TRUE(vigil().wait_state(name, State::exited)) << vigil().log_text();
    other_ = daemon("other", 1);
    first_ = daemon("forker", 1);
  }

  // The daemon in `name`'s pid file line `n` (from 1), once re-parented to vigil.
  pid_t daemon(const char* name, std::size_t n) {
    pid_t pid = 0;
    EXPECT_TRUE(vigil().run_until([&] {
      auto pids = read_pids(dir_ / name);
      if (pids.size() < n) return false;
      pid = pids[n - 1];
      return parent_of(pid) == ::getpid();
    })) << name << " daemon " << n;
    return pid;
  }

  // Stops forker and runs the loop until the stop is over.
  void stop_forker() {
    bool done = false;
    vigil().program("forker").stop([&] { done = true; });
    ASSERT_TRUE(vigil().run_until([&] { return done; }, 10s)) << vigil().log_text();
  }

  int live_daemons(const char* name) {
    int n = 0;
    for (pid_t pid : read_pids(dir_ / name)) n += process_dead(pid) ? 0 : 1;
    return n;
  }

  pid_t other_ = 0;
  pid_t first_ = 0;
};

TEST_F(DaemonizerTest, StopReachesTheDaemonOfAnExitedMainProcess) {
  ASSERT_GT(first_, 0);
  const auto t0 = SteadyClock::now();
  ASSERT_NO_FATAL_FAILURE(stop_forker());
  EXPECT_TRUE(vigil().run_until([&] { return process_gone(first_); }, 5s))
      << "daemon " << first_ << " outlived `stop forker`\n" << vigil().log_text();
  EXPECT_LT(SteadyClock::now() - t0, 5s) << "within stop_timeout (1s), with room for a loaded machine";
  EXPECT_EQ(vigil().instance("forker").state(), State::stopped);
  EXPECT_FALSE(process_dead(other_)) << "another program's daemon is not touched";
}

TEST_F(DaemonizerTest, StopThenStartLeavesOneDaemon) {
  ASSERT_NO_FATAL_FAILURE(stop_forker());
  vigil().program("forker").start(true);
  const pid_t second = daemon("forker", 2);
  ASSERT_GT(second, 0);
  EXPECT_TRUE(vigil().run_until([&] { return live_daemons("forker") == 1; }, 5s))
      << "two daemons after stop + start";
  EXPECT_FALSE(process_dead(second));
  EXPECT_FALSE(process_dead(other_));
}

TEST_F(DaemonizerTest, RestartReplacesTheDaemon) {
  vigil().program("forker").restart(false);
  const pid_t second = daemon("forker", 2);
  ASSERT_GT(second, 0);
  EXPECT_TRUE(process_gone(first_) || vigil().run_until([&] { return process_gone(first_); }, 5s))
      << "the old daemon outlived the restart";
  EXPECT_EQ(live_daemons("forker"), 1);
  EXPECT_EQ(vigil().instance("forker").machine().counts().restarts[static_cast<std::size_t>(
                RestartReason::manual)],
            1u);
  EXPECT_FALSE(process_dead(other_));
}

TEST_F(DaemonizerTest, DaemonIgnoringTermIsKilledAfterStopTimeout) {
  // `other`'s daemon ignores SIGTERM: only the SIGKILL after 1s ends it.
  bool done = false;
  const auto t0 = SteadyClock::now();
  vigil().program("other").stop([&] { done = true; });
  ASSERT_TRUE(vigil().run_until([&] { return done; }, 10s)) << vigil().log_text();
  EXPECT_GE(SteadyClock::now() - t0, 800ms);
  EXPECT_TRUE(vigil().run_until([&] { return process_gone(other_); }, 5s));
  EXPECT_FALSE(process_dead(first_)) << "forker's daemon is not touched";
  EXPECT_NE(vigil().log_text().find("program other: stopping what it left running (SIGTERM)"),
            std::string::npos)
      << vigil().log_text();
}

}  // namespace
}  // namespace vigil::it
