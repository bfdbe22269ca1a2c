// What a child gets (environment, instance index, exactly fds 0-2, its
// user) and how a start that cannot happen (no binary, no cwd, no user) is
// reported and throttled into fatal.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "harness.h"

namespace vigil::it {
namespace {

using SpawnTest = InProcessTest;

int count_prefix(const std::vector<std::string>& lines, std::string_view prefix) {
  return static_cast<int>(std::count_if(lines.begin(), lines.end(), [&](const std::string& l) {
    return std::string_view(l).starts_with(prefix);
  }));
}

constexpr const char* kGiveUpQuickly =
    "restart_delay = \"50ms\"\nmax_restarts = 2\nlog_timestamps = false\n";

TEST_F(SpawnTest, MissingBinaryIsReportedAndGoesFatal) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      "[programs.ghost]\ncommand = [\"no-such-program-vigil-it\"]\n" + std::string(kGiveUpQuickly)));
  Instance& i = vigil().instance("ghost");
  ASSERT_TRUE(vigil().wait_state("ghost", State::fatal)) << "state " << to_string(i.state());
  EXPECT_EQ(i.spawns(), 3) << "the first attempt and max_restarts = 2 retries";
  EXPECT_EQ(i.pid(), -1);
  ASSERT_TRUE(i.last_exit().has_value());
  EXPECT_EQ(i.last_exit()->code, 127);
  EXPECT_NE(vigil().log_text().find(
                "program ghost: cannot execute \"no-such-program-vigil-it\": No such file or directory"),
            std::string::npos)
      << vigil().log_text();
}

TEST_F(SpawnTest, BadCwdIsReportedAndGoesFatal) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "lost", {}, std::string(kGiveUpQuickly) + "cwd = \"no-such-dir\"")));
  Instance& i = vigil().instance("lost");
  ASSERT_TRUE(vigil().wait_state("lost", State::fatal)) << "state " << to_string(i.state());
  const std::string expected = "program lost: cannot change directory to \"" +
                               (dir_ / "no-such-dir").string() + "\": No such file or directory";
  EXPECT_NE(vigil().log_text().find(expected), std::string::npos) << vigil().log_text();
}

TEST_F(SpawnTest, UnknownUserIsReportedAndGoesFatal) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "alien", {}, std::string(kGiveUpQuickly) + "user = \"no-such-user-vigil-it\"")));
  Instance& i = vigil().instance("alien");
  ASSERT_TRUE(vigil().wait_state("alien", State::fatal)) << "state " << to_string(i.state());
  EXPECT_EQ(i.pid(), -1);
  EXPECT_NE(vigil().log_text().find("program alien: unknown user \"no-such-user-vigil-it\""),
            std::string::npos)
      << vigil().log_text();
}

TEST_F(SpawnTest, RunsAsTheConfiguredUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "changing user needs root";
  const passwd* nobody = ::getpwnam("nobody");
  if (!nobody) GTEST_SKIP() << "no user nobody here";
  // nobody must be able to reach and run the helper binary.
  for (fs::path p = fs::path(helper_binary()).parent_path(); p != p.root_path(); p = p.parent_path())
    if ((fs::status(p).permissions() & fs::perms::others_exec) == fs::perms::none)
      GTEST_SKIP() << p << " is closed to other users";
  const uid_t uid = nobody->pw_uid;
  const gid_t gid = nobody->pw_gid;
  // cwd "/": nobody may not enter the private temp dir.
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "unprivileged", {"--print-ids", "--print", "done"},
      "user = \"nobody\"\ncwd = \"/\"\nlog_timestamps = false\nrestart = \"never\"")));
  auto lines = wait_for_line(vigil(), vigil().log_path("unprivileged"), "done");
  EXPECT_TRUE(has_line(lines, "ids: uid=" + std::to_string(uid) + " gid=" + std::to_string(gid)))
      << read_file(vigil().log_path("unprivileged")) << vigil().log_text();
}

TEST_F(SpawnTest, EnvironmentReachesTheChild) {
  // vigil's own environment passes through, except what vigil sets per child
  // or what describes vigil's own supervisor.
  {
    ScopedEnv outer("VIGIL_IT_OUTER", "passed");
    ScopedEnv program("VIGIL_PROGRAM", "outer");
    ScopedEnv notify("NOTIFY_SOCKET", "/outer/notify");
    ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
        "envy", {"--print-env", "--print", "done"},
        "env = { GREETING = \"hello world\", EMPTY = \"\", VIGIL_IT_OUTER = \"overridden\" }\n"
        "log_timestamps = false")));
  }

  auto lines = wait_for_line(vigil(), vigil().log_path("envy"), "done");
  EXPECT_TRUE(has_line(lines, "VIGIL_PROGRAM=envy"));
  EXPECT_TRUE(has_line(lines, "VIGIL_INSTANCE=0"));
  EXPECT_TRUE(has_line(lines, "NODE_APP_INSTANCE=0"));
  EXPECT_TRUE(has_line(lines, "GREETING=hello world"));
  EXPECT_TRUE(has_line(lines, "EMPTY="));
  EXPECT_TRUE(has_line(lines, "VIGIL_IT_OUTER=overridden")) << "the config wins";
  EXPECT_EQ(count_prefix(lines, "VIGIL_IT_OUTER="), 1);
  EXPECT_EQ(count_prefix(lines, "VIGIL_PROGRAM="), 1);
  EXPECT_FALSE(has_line(lines, "NOTIFY_SOCKET=/outer/notify"));
  EXPECT_EQ(count_prefix(lines, "PATH="), 1) << "vigil's own environment passes through";
}

TEST_F(SpawnTest, InstancesGetTheirIndexAndTheirOwnLogs) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "worker", {"--print-env", "--print", "done"}, "instances = 3\nlog_timestamps = false")));
  std::vector<pid_t> pids;
  for (int index = 0; index < 3; ++index) {
    const fs::path log = vigil().log_path("worker", index);
    EXPECT_EQ(log, dir_ / "logs" / ("worker-" + std::to_string(index) + ".out.log"));
    auto lines = wait_for_line(vigil(), log, "done");
    const std::string n = std::to_string(index);
    EXPECT_TRUE(has_line(lines, "VIGIL_PROGRAM=worker")) << log;
    EXPECT_TRUE(has_line(lines, "VIGIL_INSTANCE=" + n)) << log;
    EXPECT_TRUE(has_line(lines, "NODE_APP_INSTANCE=" + n)) << log;
    EXPECT_EQ(count_prefix(lines, "VIGIL_INSTANCE="), 1) << log;
    EXPECT_TRUE(fs::exists(dir_ / "logs" / ("worker-" + n + ".err.log")));
    pids.push_back(vigil().instance("worker", index).pid());
  }
  EXPECT_FALSE(fs::exists(dir_ / "logs" / "worker.out.log"));
  std::sort(pids.begin(), pids.end());
  EXPECT_EQ(std::unique(pids.begin(), pids.end()), pids.end()) << "one process per instance";
  EXPECT_GT(pids.front(), 0);
}

TEST_F(SpawnTest, ChildInheritsOnlyTheStandardFds) {
  // An fd the test leaves inheritable on purpose: vigil must not pass it on.
  const int stray = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(stray, 3);
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "fds", {"--print-env", "--print-fds", "--print", "done"}, "log_timestamps = false")));
  auto lines = wait_for_line(vigil(), vigil().log_path("fds"), "done");
  ::close(stray);

  // fd 3 is the heartbeat pipe once vigil offers one (VIGIL_HEARTBEAT_FD).
  const std::string expected =
      has_line(lines, "VIGIL_HEARTBEAT_FD=3") ? "fds: 0 1 2 3" : "fds: 0 1 2";
  EXPECT_EQ(count_prefix(lines, "fds:"), 1);
  EXPECT_TRUE(has_line(lines, expected)) << read_file(vigil().log_path("fds"));
}

}  // namespace
}  // namespace vigil::it
