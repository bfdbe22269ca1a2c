// The real vigil binary: its verbs and exit codes, how it reacts to
// signals (TERM, a second INT, KILL, USR2), what it prints when a program
// cannot start. (An endless line is in fault_injection_test.cpp.)
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "harness.h"

namespace vigil::it {
namespace {

using VigilBinaryTest = BinaryTest;

TEST_F(VigilBinaryTest, VersionExitsZero) {
  auto r = run_vigil(dir_, {"version"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(r.output.starts_with("vigil ")) << r.output;
}

TEST_F(VigilBinaryTest, HelpForACommandInBothSpellingsExitsZero) {
  auto overview = run_vigil(dir_, {"help"});
  EXPECT_EQ(overview.exit_code, 0) << overview.output;
  EXPECT_NE(overview.output.find("vigil reload"), std::string::npos) << overview.output;
  auto help = run_vigil(dir_, {"help", "restart"});
  EXPECT_EQ(help.exit_code, 0) << help.output;
  EXPECT_TRUE(help.output.starts_with("usage: vigil restart")) << help.output;
  EXPECT_NE(help.output.find("--all-at-once"), std::string::npos) << help.output;
  auto dashed = run_vigil(dir_, {"restart", "--help"});
  EXPECT_EQ(dashed.exit_code, 0) << dashed.output;
  EXPECT_EQ(dashed.output, help.output);
  auto unknown = run_vigil(dir_, {"help", "frobnicate"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_NE(unknown.output.find("unknown command \"frobnicate\""), std::string::npos);
}

TEST_F(VigilBinaryTest, LogsOfAProgramThatNeverWroteSayWhereTheyWouldBe) {
  const fs::path config = write_config(helper_program("web", {}, "instances = 2"));
  auto r = run_vigil(dir_, {"logs", "web", "-c", config.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("vigil logs: web has no log yet (" + (dir_ / "logs" / "web-0.out.log").string()),
            std::string::npos)
      << r.output;
  // Once one file exists, its lines and nothing else.
  dir_.write("logs/web-1.err.log", "2026-12-06T03:00:00.000 boom\n");
  r = run_vigil(dir_, {"logs", "web", "-c", config.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("no log yet"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("boom"), std::string::npos) << r.output;
}

TEST_F(VigilBinaryTest, CheckAcceptsAGoodConfig) {
  const fs::path config = write_config(helper_program("web", {}, "instances = 2"));
  auto r = run_vigil(dir_, {"check", "-c", config.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(config.string() + ": ok"), std::string::npos) << r.output;
}

TEST_F(VigilBinaryTest, CheckReportsFileLineColumnAndExitsOne) {
  const fs::path config = write_config(
      "[programs.web]\n"
      "command = [\"true\"]\n"
      "restart_delay = \"soon\"\n");
  auto r = run_vigil(dir_, {"check", "-c", config.string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  // Line 3, column 17: where the bad value starts.
  EXPECT_NE(r.output.find(config.string() + ":3:17: restart_delay: invalid duration"),
            std::string::npos)
      << r.output;
}

TEST_F(VigilBinaryTest, SigtermStopsEveryChildAndExitsZero) {
  const fs::path a = dir_ / "a.pid", b = dir_ / "b.pid";
  VigilProcess& vigil = run_vigil_with(
      helper_program("a", {"--pidfile", a.string()}, "min_uptime = \"100ms\"") +
      helper_program("b", {"--pidfile", b.string()},
                     "min_uptime = \"100ms\"\nafter = [\"a\"]\ninstances = 2"));
  ASSERT_TRUE(poll_until([&] { return read_pids(a).size() == 1 && read_pids(b).size() == 2; }))
      << vigil.output();
  std::vector<pid_t> children = read_pids(a);
  for (pid_t p : read_pids(b)) children.push_back(p);

  vigil.signal(SIGTERM);
  EXPECT_EQ(vigil.wait_exit(), 0) << vigil.output();
  for (pid_t p : children) EXPECT_TRUE(process_gone(p)) << "pid " << p;
  EXPECT_NE(vigil.output().find("all programs stopped"), std::string::npos) << vigil.output();
}

// Without close_range (Linux before 5.9, or an older container seccomp
// profile), children still get exactly their fds: no shared fd table, and
// vigil's fds closed one by one in the child.
TEST_F(VigilBinaryTest, WithoutCloseRangeChildrenStillGetOnlyTheirFds) {
  const fs::path config = write_config(helper_program(
      "fds", {"--print-env", "--print-fds", "--print", "done"},
      "log_timestamps = false\ninstances = 3"));
  vigil_ = std::make_unique<VigilProcess>(
      dir_, std::vector<std::string>{"run", "-c", config.string()}, "vigil.output",
      std::vector<std::string>{helper_binary(), "--deny-close-range"});
  for (int i = 0; i < 3; ++i) {
    const fs::path log = dir_ / "logs" / ("fds-" + std::to_string(i) + ".out.log");
    std::vector<std::string> lines;
    ASSERT_TRUE(poll_until([&] {
      lines = read_lines(log);
      return std::find(lines.begin(), lines.end(), "done") != lines.end();
    })) << vigil_->output();
    const bool fd3 =
        std::find(lines.begin(), lines.end(), "VIGIL_HEARTBEAT_FD=3") != lines.end();
    EXPECT_NE(std::find(lines.begin(), lines.end(), fd3 ? "fds: 0 1 2 3" : "fds: 0 1 2"),
              lines.end())
        << read_file(log);
  }
}

// vigil raises its own soft fd limit to the hard one (a thousand instances
// need more than 1024 fds); its children get the limit vigil started with,
// as programs using select() expect.
TEST_F(VigilBinaryTest, ChildrenGetTheFdLimitVigilStartedWith) {
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max <= 1000)
    GTEST_SKIP() << "the hard fd limit (" << rl.rlim_max << ") leaves no room to raise";
  // Started with a soft limit of 1000 (restored for this process at once:
  // vigil has inherited it).
  struct RestoreLimit {
    rlimit old;
    ~RestoreLimit() { ::setrlimit(RLIMIT_NOFILE, &old); }
  } restore{rl};
  rlimit lowered = rl;
  lowered.rlim_cur = 1000;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);
  VigilProcess& vigil = run_vigil_with(
      "[programs.limits]\n"
      "command = [\"sh\", \"-c\", \"echo soft=$(ulimit -Sn); echo done; exec sleep 3600\"]\n"
      "log_timestamps = false\n");
  ::setrlimit(RLIMIT_NOFILE, &rl);
  const fs::path log = dir_ / "logs" / "limits.out.log";
  std::vector<std::string> lines;
  ASSERT_TRUE(poll_until([&] {
    lines = read_lines(log);
    return std::find(lines.begin(), lines.end(), "done") != lines.end();
  })) << vigil.output();
  EXPECT_NE(std::find(lines.begin(), lines.end(), "soft=1000"), lines.end()) << read_file(log);
  // vigil itself runs with the raised one.
  EXPECT_TRUE(poll_until([&] {
    rlimit mine{};
    return ::prlimit(vigil.pid(), RLIMIT_NOFILE, nullptr, &mine) == 0 && mine.rlim_cur == rl.rlim_max;
  }));
}

TEST_F(VigilBinaryTest, SecondSigintKillsAtOnce) {
  const fs::path pids = dir_ / "pids";
  VigilProcess& vigil = run_vigil_with(helper_program(
      "stubborn", {"--ignore-term", "--pidfile", pids.string()}, "stop_timeout = \"60s\""));
  ASSERT_TRUE(poll_until([&] { return read_pids(pids).size() == 1; })) << vigil.output();
  const pid_t child = read_pids(pids)[0];

  vigil.signal(SIGINT);
  // Two signals sent at once may coalesce into one: send the second only
  // after vigil has acted on the first.
  ASSERT_TRUE(vigil.wait_for_output("SIGINT received")) << vigil.output();
  ASSERT_TRUE(vigil.wait_for_output("program stubborn: stopping")) << vigil.output();
  EXPECT_FALSE(process_dead(child)) << "SIGTERM is ignored";
  const auto t0 = SteadyClock::now();
  vigil.signal(SIGINT);
  EXPECT_EQ(vigil.wait_exit(20s), 0) << vigil.output();
  EXPECT_LT(SteadyClock::now() - t0, 20s) << "well before the 60s stop_timeout";
  EXPECT_TRUE(process_gone(child));
}

TEST_F(VigilBinaryTest, KilledVigilLeavesNoChildBehind) {
  const fs::path pids = dir_ / "pids";
  VigilProcess& vigil = run_vigil_with(
      helper_program("web", {"--pidfile", pids.string()}, "instances = 3"));
  ASSERT_TRUE(poll_until([&] { return read_pids(pids).size() == 3; })) << vigil.output();

  vigil.signal(SIGKILL);
  EXPECT_EQ(vigil.wait_exit(), 128 + SIGKILL);
  // PR_SET_PDEATHSIG: each child gets SIGKILL with vigil. A child may stay
  // a zombie for whoever inherits it; it runs no more.
  for (pid_t p : read_pids(pids))
    EXPECT_TRUE(poll_until([&] { return process_dead(p); })) << "pid " << p << " survived";
}

TEST_F(VigilBinaryTest, MissingBinaryIsReportedWithTheReason) {
  VigilProcess& vigil = run_vigil_with(
      "[programs.ghost]\n"
      "command = [\"no-such-program-vigil-it\"]\n"
      "restart_delay = \"50ms\"\n"
      "max_restarts = 1\n");
  EXPECT_TRUE(vigil.wait_for_output(
      "program ghost: cannot execute \"no-such-program-vigil-it\": No such file or directory"))
      << vigil.output();
  EXPECT_TRUE(vigil.wait_for_output("giving up")) << vigil.output();
  EXPECT_TRUE(vigil.running()) << "a program that is not essential does not end vigil";
  vigil.signal(SIGTERM);
  EXPECT_EQ(vigil.wait_exit(), 0) << vigil.output();
}

TEST_F(VigilBinaryTest, EssentialProgramGoingFatalExitsThree) {
  const fs::path pids = dir_ / "bystander.pid";
  VigilProcess& vigil = run_vigil_with(
      helper_program("bystander", {"--pidfile", pids.string()}) +
      helper_program("core", {"--exit-immediately", "1"},
                     "essential = true\nrestart_delay = \"50ms\"\nmax_restarts = 1"));
  EXPECT_EQ(vigil.wait_exit(), 3) << vigil.output();
  EXPECT_NE(vigil.output().find("essential"), std::string::npos) << vigil.output();
  // The other program was stopped on the way out.
  for (pid_t p : read_pids(pids)) EXPECT_TRUE(process_gone(p)) << "pid " << p;
}

TEST_F(VigilBinaryTest, SigusrTwoReopensLogs) {
  VigilProcess& vigil = run_vigil_with(
      helper_program("ticker", {"--tick", "20"}, "log_timestamps = false"));
  const fs::path log = dir_ / "logs" / "ticker.out.log";
  const fs::path moved = dir_ / "logs" / "ticker.out.log.moved";
  ASSERT_TRUE(poll_until([&] { return read_lines(log).size() >= 5; })) << vigil.output();

  // What logrotate does: rename, then signal.
  fs::rename(log, moved);
  vigil.signal(SIGUSR2);
  ASSERT_TRUE(vigil.wait_for_output("reopening")) << vigil.output();
  ASSERT_TRUE(poll_until([&] { return read_lines(log).size() >= 5; }))
      << "no new lines at the old path\n" << vigil.output();
  vigil.signal(SIGTERM);
  EXPECT_EQ(vigil.wait_exit(), 0) << vigil.output();

  // Nothing lost, nothing twice: the old file ends where the new one starts.
  auto old_lines = read_lines(moved);
  auto new_lines = read_lines(log);
  ASSERT_FALSE(old_lines.empty());
  ASSERT_FALSE(new_lines.empty());
  std::vector<std::string> all = old_lines;
  all.insert(all.end(), new_lines.begin(), new_lines.end());
  for (std::size_t k = 0; k < all.size(); ++k)
    ASSERT_EQ(all[k], "tick " + std::to_string(k)) << "line " << k << " (old file has "
                                                   << old_lines.size() << ")";
}

}  // namespace
}  // namespace vigil::it
