// Rolling restarts with real children: a restart of 4 instances, and a
// reload that changes their command, replace one at a time, never running
// fewer than 3 (checked after every loop turn, in-process); a replacement
// that never becomes ready stops the roll with 3 old instances still
// serving, and `vigil restart` says so and exits non-zero; --all-at-once
// is the old way.
#include <gtest/gtest.h>

#include <set>

#include "control_harness.h"
#include "harness.h"

namespace vigil::it {
namespace {

using RollingRestartTest = InProcessTest;

// Ready on READY=1 (sent at start by child_helper's --notify), quick to
// stop, and a replacement that is not ready in 1s has failed.
std::string web(std::vector<std::string> args, std::string_view extra = "") {
  args.insert(args.end(), {"--notify", "READY=1", "--stay"});
  return helper_program("web", args,
                        "instances = 4\nready = \"notify\"\nstart_timeout = \"1s\"\n"
                        "restart_delay = \"50ms\"\nmax_restarts = 100\nlog_timestamps = false\n" +
                            std::string(extra));
}

int running(Program& p) {
  int n = 0;
  for (auto& i : p.instances()) n += i->state() == State::running;
  return n;
}

std::set<pid_t> pids(Program& p) {
  std::set<pid_t> out;
  for (auto& i : p.instances()) out.insert(i->pid());
  return out;
}

bool none_of_them(const std::set<pid_t>& now, const std::set<pid_t>& before) {
  for (pid_t p : now)
    if (before.count(p)) return false;
  return true;
}

TEST_F(RollingRestartTest, RestartReplacesOneAtATimeNeverRunningFewerThanThree) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(web({})));
  Program& p = vigil().program("web");
  ASSERT_TRUE(vigil().run_until([&] { return running(p) == 4; })) << vigil().log_text();
  const auto before = pids(p);

  p.restart(false);
  int fewest = 4;
  ASSERT_TRUE(vigil().run_until([&] {
    fewest = std::min(fewest, running(p));
    return p.rollout() && !p.rollout()->in_progress;
  })) << vigil().log_text();
  EXPECT_GE(fewest, 3) << "capacity dropped by more than one instance";
  EXPECT_EQ(running(p), 4);
  EXPECT_TRUE(none_of_them(pids(p), before)) << "every instance has a new process";
  for (auto& i : p.instances())
    EXPECT_EQ(i->counters().restarts[static_cast<std::size_t>(RestartReason::manual)], 1u);
  EXPECT_EQ(p.rollout()->error, "");
  EXPECT_EQ(p.rollout()->done, 4);
  EXPECT_EQ(p.rollouts_completed(), 1u);
  // A log line per step.
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(vigil().wait_for_log("rolling restart: replacing web[" + std::to_string(i) + "] (" +
                                     std::to_string(i + 1) + " of 4)"))
        << vigil().log_text();
  EXPECT_TRUE(vigil().wait_for_log("program web: rolling restart done: 4 instances replaced in"));
}

TEST_F(RollingRestartTest, ReloadThatChangesTheCommandRollsToo) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(web({})));
  Program& p = vigil().program("web");
  ASSERT_TRUE(vigil().run_until([&] { return running(p) == 4; })) << vigil().log_text();
  const auto before = pids(p);

  dir_.write("vigil.toml", web({"--print", "v2"}));
  const ReloadResult r = vigil().supervisor().reload_file(false);
  ASSERT_TRUE(r.ok);
  EXPECT_NE(r.plan.find("web: restart, rolling (command changed)"), std::string::npos) << r.plan;
  int fewest = 4;
  ASSERT_TRUE(vigil().run_until([&] {
    fewest = std::min(fewest, running(p));
    return p.rollout() && !p.rollout()->in_progress;
  })) << vigil().log_text();
  EXPECT_GE(fewest, 3);
  EXPECT_TRUE(none_of_them(pids(p), before));
  EXPECT_EQ(&vigil().program("web"), &p) << "the same program, its counters kept";
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(vigil().run_until([&] {
      return read_file(vigil().log_path("web", i)).find("v2") != std::string::npos;
    })) << "web[" << i << "] runs the new command";
}

TEST_F(RollingRestartTest, AReplacementThatNeverBecomesReadyStopsTheRoll) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(web({})));
  Program& p = vigil().program("web");
  ASSERT_TRUE(vigil().run_until([&] { return running(p) == 4; })) << vigil().log_text();
  std::vector<pid_t> old;
  for (auto& i : p.instances()) old.push_back(i->pid());

  // The new version never says READY=1.
  dir_.write("vigil.toml", helper_program("web", {"--stay"},
                                          "instances = 4\nready = \"notify\"\nstart_timeout = \"1s\"\n"
                                          "restart_delay = \"50ms\"\nmax_restarts = 100\n"
                                          "log_timestamps = false\n"));
  ASSERT_TRUE(vigil().supervisor().reload_file(false).ok);
  ASSERT_TRUE(vigil().run_until([&] { return p.rollout() && !p.rollout()->in_progress; }))
      << vigil().log_text();
  EXPECT_EQ(p.rollout()->done, 0);
  EXPECT_EQ(p.rollout()->error,
            "rolling restart stopped at web[0]: its new process did not become ready (stopping); "
            "web[1], web[2], web[3] keep their previous processes");
  EXPECT_TRUE(vigil().wait_for_log("program web: rolling restart stopped at web[0]"));
  EXPECT_EQ(p.rollouts_failed(), 1u);
  for (int i = 1; i < 4; ++i) {
    EXPECT_EQ(p.instances()[static_cast<std::size_t>(i)]->pid(), old[static_cast<std::size_t>(i)])
        << "web[" << i << "] was not touched";
    EXPECT_EQ(p.instances()[static_cast<std::size_t>(i)]->state(), State::running);
  }
}

TEST_F(RollingRestartTest, AStopCancelsTheRoll) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(web({})));
  Program& p = vigil().program("web");
  ASSERT_TRUE(vigil().run_until([&] { return running(p) == 4; })) << vigil().log_text();
  p.restart(false);
  bool stopped = false;
  p.stop([&] { stopped = true; });
  ASSERT_TRUE(vigil().run_until([&] { return stopped; }));
  EXPECT_FALSE(p.rollout()->in_progress);
  EXPECT_EQ(p.rollout()->error, "rolling restart cancelled: the program was stopped");
  for (auto& i : p.instances()) EXPECT_EQ(i->state(), State::stopped);
}

TEST_F(RollingRestartTest, ReloadLeavesAStoppedProgramStoppedWithItsNewCommand) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(web({})));
  Program& p = vigil().program("web");
  ASSERT_TRUE(vigil().run_until([&] { return running(p) == 4; })) << vigil().log_text();
  bool stopped = false;
  p.stop([&] { stopped = true; });
  ASSERT_TRUE(vigil().run_until([&] { return stopped; }));
  dir_.write("vigil.toml", web({"--print", "v2"}));
  ASSERT_TRUE(vigil().supervisor().reload_file(false).ok);
  EXPECT_FALSE(vigil().run_until([&] { return running(p) > 0; }, 500ms))
      << "the operator stopped it";
  p.start(true);
  ASSERT_TRUE(vigil().run_until([&] { return running(p) == 4; }));
  EXPECT_TRUE(vigil().run_until([&] {
    return read_file(vigil().log_path("web", 0)).find("v2") != std::string::npos;
  })) << "started with the new command";
}

// ---------------------------------------------------------------------------
// Through the CLI

class RollingRestartCliTest : public BinaryTest {};

TEST_F(RollingRestartCliTest, FailedRollIsAnErrorOfTheCommandAndAllAtOnceIsTheOldWay) {
  // Not ready once the file "broken" exists.
  const fs::path broken = dir_ / "broken";
  const std::string script = "test -e " + broken.string() + " && exec sleep 1000; exec " +
                             helper_binary() + " --notify READY=1 --stay";
  VigilProcess& v = run_vigil_with(
      "[programs.web]\ncommand = " + toml_array({"/bin/sh", "-c", script}) +
      "\ninstances = 4\nready = \"notify\"\nstart_timeout = \"1s\"\nrestart_delay = \"50ms\"\n"
      "max_restarts = 100\n");
  const fs::path socket = dir_ / "vigil.sock";
  auto all_running = [&] {
    auto all = control::api_instances(socket);
    if (!all || all->size() != 4) return false;
    for (const auto& i : *all)
      if (i["state"] != "running") return false;
    return true;
  };
  ASSERT_TRUE(poll_until(all_running)) << v.output();

  auto ok = control::run_cli(dir_.path(), {"restart", "web", "-c", (dir_ / "vigil.toml").string()});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_TRUE(v.wait_for_output("program web: rolling restart done: 4 instances replaced"));

  auto at_once = control::run_cli(
      dir_.path(), {"restart", "web", "--all-at-once", "-c", (dir_ / "vigil.toml").string()});
  EXPECT_EQ(at_once.exit_code, 0) << at_once.out << at_once.err;
  EXPECT_EQ(at_once.err, "");
  ASSERT_TRUE(poll_until(all_running)) << v.output();

  dir_.write("broken", "");
  auto failed =
      control::run_cli(dir_.path(), {"restart", "web", "-c", (dir_ / "vigil.toml").string()});
  EXPECT_EQ(failed.exit_code, 1) << failed.out << failed.err;
  EXPECT_NE(failed.err.find("vigil restart web: rolling restart stopped at web[0]: its new process "
                            "did not become ready"),
            std::string::npos)
      << failed.err;
  EXPECT_NE(failed.err.find("web[1], web[2], web[3] keep their previous processes"),
            std::string::npos)
      << failed.err;
  auto all = control::api_instances(socket);
  ASSERT_TRUE(all);
  int serving = 0;
  for (const auto& i : *all) serving += i["state"] == "running";
  EXPECT_EQ(serving, 3) << all->dump(1);
  EXPECT_NE((*all)[0]["rollout"]["error"].get<std::string>(), "");
}

}  // namespace
}  // namespace vigil::it
