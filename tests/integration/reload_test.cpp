// Live reload on the real binary: the config file is edited, then
// `vigil reload` (a subprocess) or SIGHUP. Only what changed is touched:
// pids tell what kept running, the API and /metrics what vigil now
// supervises; an invalid file or a dry run changes nothing at all.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>

#include "control_harness.h"

namespace vigil::it {
namespace {

using control::CliRun;
using control::Expected;
using control::Json;

constexpr std::string_view kHttp = "[http]\nlisten = \"127.0.0.1:0\"\n\n";
constexpr std::string_view kFast = "min_uptime = \"100ms\"\n";

class ReloadTest : public BinaryTest {
 protected:
  // `vigil run` with `toml`, then waits until the API lists `want`; learns
  // the TCP port when the config has [http].
  void start(const std::string& toml, const Expected& want) {
    run_vigil_with(toml);
    if (toml.find("[http]") != std::string::npos) {
      ASSERT_TRUE(vigil_->wait_for_output("serving /metrics")) << vigil_->output();
      auto port = control::served_port(vigil_->output());
      ASSERT_TRUE(port) << vigil_->output();
      port_ = *port;
    }
    ASSERT_NO_FATAL_FAILURE(expect_states(want));
  }
  // Waits until the API lists exactly `want`; returns {program, index} -> pid.
  std::map<std::pair<std::string, int>, int> expect_states(const Expected& want) {
    Json all = control::wait_for_states(socket(), want);
    std::string listed = all.dump(1);
    EXPECT_EQ(all.size(), want.size()) << listed << "\n" << vigil_->output();
    for (const auto& i : all) {
      auto it = want.find({i["name"], i["index"]});
      if (it == want.end())
        ADD_FAILURE() << "unexpected " << i.dump();
      else
        EXPECT_EQ(i["state"], it->second) << listed << "\n" << vigil_->output();
    }
    return control::pids_of(all);
  }
  fs::path socket() const { return dir_ / "vigil.sock"; }
  fs::path config() const { return dir_ / "vigil.toml"; }
  CliRun reload(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"reload", "-c", config().string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return control::run_cli(dir_.path(), args);
  }
  std::string metrics() {
    control::RawReply r = control::http_get(port_, "/metrics");
    EXPECT_EQ(r.status, 200) << vigil_->output();
    return r.text;
  }

  std::uint16_t port_ = 0;
};

TEST_F(ReloadTest, SameFileChangesNothing) {
  const std::string toml = helper_program("web", {}, std::string(kFast) + "instances = 2") +
                           helper_program("worker", {}, kFast);
  ASSERT_NO_FATAL_FAILURE(
      start(toml, {{{"web", 0}, "running"}, {{"web", 1}, "running"}, {{"worker", 0}, "running"}}));
  const auto before = control::pids_of(*control::api_instances(socket()));

  CliRun r = reload();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("web: unchanged"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("worker: unchanged"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nothing to do"), std::string::npos) << r.out;
  EXPECT_EQ(control::pids_of(*control::api_instances(socket())), before);
  for (const auto& [key, pid] : before) EXPECT_FALSE(process_dead(pid)) << key.first;
}

TEST_F(ReloadTest, ChangedCommandRestartsOnlyThatProgram) {
  ASSERT_NO_FATAL_FAILURE(
      start(helper_program("web", {}, kFast) + helper_program("keep", {}, kFast),
            {{{"web", 0}, "running"}, {{"keep", 0}, "running"}}));
  const auto before = control::pids_of(*control::api_instances(socket()));

  write_config(helper_program("web", {"--print", "v2"}, kFast) + helper_program("keep", {}, kFast));
  CliRun r = reload();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("web: restart (command changed)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("keep: unchanged"), std::string::npos) << r.out;

  ASSERT_TRUE(poll_until([&] {
    auto all = control::api_instances(socket());
    if (!all) return false;
    Json web = control::find_instance(*all, "web");
    return web["state"] == "running" && control::pid_of(web) != before.at({"web", 0});
  })) << control::api_instances(socket()).value_or(Json()).dump(1)
      << vigil_->output();
  EXPECT_TRUE(process_gone(before.at({"web", 0}))) << "the old web process was stopped";
  const auto after = control::pids_of(*control::api_instances(socket()));
  EXPECT_EQ(after.at({"keep", 0}), before.at({"keep", 0})) << "keep was not touched";
  EXPECT_FALSE(process_dead(after.at({"keep", 0})));
  // The new process runs the new command.
  EXPECT_TRUE(poll_until([&] {
    return read_file(dir_ / "logs" / "web.out.log").find("v2") != std::string::npos;
  })) << read_file(dir_ / "logs" / "web.out.log");
}

TEST_F(ReloadTest, ChangedRestartDelayIsAppliedInPlace) {
  ASSERT_NO_FATAL_FAILURE(
      start(helper_program("web", {}, std::string(kFast) + "restart_delay = \"100ms\""),
            {{{"web", 0}, "running"}}));
  const int pid = control::pid_of(control::find_instance(*control::api_instances(socket()), "web"));

  write_config(helper_program(
      "web", {}, std::string(kFast) + "restart_delay = \"1m\"\nrestart_delay_max = \"1m\""));
  CliRun r = reload();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("web: update in place (restart_delay, restart_delay_max changed)"),
            std::string::npos)
      << r.out;
  Json web = control::find_instance(*control::api_instances(socket()), "web");
  EXPECT_EQ(control::pid_of(web), pid) << "updated in place: same process";
  EXPECT_EQ(web["state"], "running");
  EXPECT_FALSE(process_dead(pid));

  // The next crash waits the new delay (the old one was 100ms).
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(poll_until([&] {
    web = control::find_instance(control::api_instances(socket()).value_or(Json::array()), "web");
    return web.is_object() && web["state"] == "backoff";
  })) << web.dump()
      << vigil_->output();
  ASSERT_TRUE(web["next_restart_in_seconds"].is_number()) << web.dump();
  EXPECT_GT(web["next_restart_in_seconds"].get<double>(), 45.0)
      << "1m, -10% jitter at most: " << web.dump();
  EXPECT_LE(web["next_restart_in_seconds"].get<double>(), 66.0) << web.dump();
}

TEST_F(ReloadTest, TwoToFourInstancesKeepsTheFirstTwo) {
  ASSERT_NO_FATAL_FAILURE(start(helper_program("web", {}, std::string(kFast) + "instances = 2"),
                                {{{"web", 0}, "running"}, {{"web", 1}, "running"}}));
  const auto before = control::pids_of(*control::api_instances(socket()));

  write_config(helper_program("web", {}, std::string(kFast) + "instances = 4"));
  CliRun r = reload();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("web: resize 2 -> 4 (instances changed)"), std::string::npos) << r.out;
  const auto after = expect_states({{{"web", 0}, "running"},
                                    {{"web", 1}, "running"},
                                    {{"web", 2}, "running"},
                                    {{"web", 3}, "running"}});
  EXPECT_EQ(after.at({"web", 0}), before.at({"web", 0}));
  EXPECT_EQ(after.at({"web", 1}), before.at({"web", 1}));
  for (int i : {2, 3}) {
    const int pid = after.count({"web", i}) ? after.at({"web", i}) : 0;
    EXPECT_GT(pid, 0) << "instance " << i;
    if (pid > 0) {
      EXPECT_TRUE(process_belongs_to(pid, "web", i)) << "instance " << i;
    }
  }
}

TEST_F(ReloadTest, FourToTwoInstancesStopsTheLastTwo) {
  ASSERT_NO_FATAL_FAILURE(start(helper_program("web", {}, std::string(kFast) + "instances = 4"),
                                {{{"web", 0}, "running"},
                                 {{"web", 1}, "running"},
                                 {{"web", 2}, "running"},
                                 {{"web", 3}, "running"}}));
  const auto before = control::pids_of(*control::api_instances(socket()));

  write_config(helper_program("web", {}, std::string(kFast) + "instances = 2"));
  CliRun r = reload();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("web: resize 4 -> 2 (instances changed)"), std::string::npos) << r.out;
  const auto after = expect_states({{{"web", 0}, "running"}, {{"web", 1}, "running"}});
  EXPECT_EQ(after.at({"web", 0}), before.at({"web", 0}));
  EXPECT_EQ(after.at({"web", 1}), before.at({"web", 1}));
  for (int i : {2, 3})
    EXPECT_TRUE(poll_until([&] {
      return process_gone(before.at({"web", i}));
    })) << "instance "
        << i << " (pid " << before.at({"web", i}) << ") still runs";
  for (int i : {0, 1}) EXPECT_FALSE(process_dead(before.at({"web", i})));
}

TEST_F(ReloadTest, RemovedProgramIsStoppedAndItsSeriesDisappear) {
  ASSERT_NO_FATAL_FAILURE(start(
      std::string(kHttp) + helper_program("keep", {}, kFast) + helper_program("gone", {}, kFast),
      {{{"keep", 0}, "running"}, {{"gone", 0}, "running"}}));
  const auto before = control::pids_of(*control::api_instances(socket()));
  ASSERT_NE(metrics().find("program=\"gone\""), std::string::npos);

  write_config(std::string(kHttp) + helper_program("keep", {}, kFast));
  CliRun r = reload();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("gone: stop"), std::string::npos) << r.out;
  EXPECT_TRUE(poll_until([&] {
    return process_gone(before.at({"gone", 0}));
  })) << "the removed program's process still runs";
  const auto after = expect_states({{{"keep", 0}, "running"}});
  EXPECT_EQ(after.at({"keep", 0}), before.at({"keep", 0}));
  const std::string text = metrics();
  EXPECT_EQ(text.find("program=\"gone\""), std::string::npos) << text;
  EXPECT_NE(text.find("program=\"keep\""), std::string::npos);
  EXPECT_EQ(control::metric_line(text, "vigil_config_reloads_total{result=\"success\"}"),
            "vigil_config_reloads_total{result=\"success\"} 1");
}

TEST_F(ReloadTest, AddedProgramStartsOnSighup) {
  const std::string keep = helper_program("keep", {}, kFast);
  ASSERT_NO_FATAL_FAILURE(start(keep, {{{"keep", 0}, "running"}}));
  const auto before = control::pids_of(*control::api_instances(socket()));
  const fs::path pids = dir_ / "added.pids";

  write_config(keep + helper_program("added", {"--pidfile", pids.string()}, kFast));
  vigil_->signal(SIGHUP);
  const auto after = expect_states({{{"keep", 0}, "running"}, {{"added", 0}, "running"}});
  EXPECT_EQ(after.at({"keep", 0}), before.at({"keep", 0}));
  ASSERT_EQ(read_pids(pids).size(), 1u);
  EXPECT_EQ(after.at({"added", 0}), read_pids(pids)[0]);
  EXPECT_TRUE(vigil_->wait_for_output("added: start")) << vigil_->output();
}

TEST_F(ReloadTest, InvalidFileChangesNothingAndCountsAFailure) {
  const std::string good = std::string(kHttp) + helper_program("web", {}, kFast);
  ASSERT_NO_FATAL_FAILURE(start(good, {{{"web", 0}, "running"}}));
  const auto before = control::pids_of(*control::api_instances(socket()));

  // Also a new program and another command: none of it may happen.
  const std::string bad =
      std::string(kHttp) + helper_program("web", {"--print", "v2"}, kFast) +
      helper_program("added", {}, std::string(kFast) + "restart_delay = \"soon\"");
  write_config(bad);
  const auto at = bad.find("restart_delay = \"soon\"");
  const auto line =
      1 + std::count(bad.begin(), bad.begin() + static_cast<std::ptrdiff_t>(at), '\n');
  CliRun r = reload();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const std::string where = config().string() + ":" + std::to_string(line) + ":17: restart_delay";
  EXPECT_NE(r.err.find(where), std::string::npos) << "expected " << where << " in\n" << r.err;
  EXPECT_NE(r.err.find("unchanged"), std::string::npos) << r.err;

  const Json all = *control::api_instances(socket());
  EXPECT_EQ(control::pids_of(all), before) << all.dump(1);
  EXPECT_FALSE(process_dead(before.at({"web", 0})));
  const std::string text = metrics();
  EXPECT_EQ(control::metric_line(text, "vigil_config_reloads_total{result=\"failure\"}"),
            "vigil_config_reloads_total{result=\"failure\"} 1")
      << text;
  EXPECT_EQ(control::metric_line(text, "vigil_config_reloads_total{result=\"success\"}"),
            "vigil_config_reloads_total{result=\"success\"} 0");
  EXPECT_EQ(control::metric_line(text, "vigil_config_last_reload_successful"),
            "vigil_config_last_reload_successful 0");

  // SIGHUP with the same file: a second failure, still nothing changed.
  vigil_->signal(SIGHUP);
  EXPECT_TRUE(poll_until([&] {
    return control::metric_line(metrics(), "vigil_config_reloads_total{result=\"failure\"}") ==
           "vigil_config_reloads_total{result=\"failure\"} 2";
  })) << vigil_->output();
  EXPECT_EQ(control::pids_of(*control::api_instances(socket())), before);
}

// "[vigil] log_dir: applied" means the running programs write there now,
// without a restart.
TEST_F(ReloadTest, ChangedLogDirMovesTheLogsOfRunningPrograms) {
  const std::string ticker =
      helper_program("ticker", {"--tick", "20"}, std::string(kFast) + "log_timestamps = false");
  ASSERT_NO_FATAL_FAILURE(start(ticker, {{{"ticker", 0}, "running"}}));
  const int pid =
      control::pid_of(control::find_instance(*control::api_instances(socket()), "ticker"));
  ASSERT_TRUE(poll_until([&] { return !read_lines(dir_ / "logs" / "ticker.out.log").empty(); }));

  write_config("[vigil]\nlog_dir = \"logs2\"\n\n" + ticker);
  CliRun r = reload();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("log_dir: applied"), std::string::npos) << r.out;
  EXPECT_TRUE(poll_until([&] { return read_lines(dir_ / "logs2" / "ticker.out.log").size() >= 3; }))
      << "nothing written to the new log_dir\n"
      << vigil_->output();
  EXPECT_EQ(control::pid_of(control::find_instance(*control::api_instances(socket()), "ticker")),
            pid);
}

// A SIGHUP while vigil stops everything must not start anything nor keep
// the shutdown from ending.
TEST_F(ReloadTest, SighupDuringShutdownStartsNothing) {
  const fs::path pids = dir_ / "slow.pids";
  const fs::path added = dir_ / "added.pids";
  // Ignores SIGTERM: the shutdown lasts its stop_timeout.
  const std::string slow_extra = std::string(kFast) + "stop_timeout = \"2s\"";
  ASSERT_NO_FATAL_FAILURE(
      start(helper_program("slow", {"--ignore-term", "--pidfile", pids.string()}, slow_extra),
            {{{"slow", 0}, "running"}}));
  vigil_->signal(SIGTERM);
  ASSERT_TRUE(vigil_->wait_for_output("program slow: stopping")) << vigil_->output();

  write_config(helper_program("slow", {"--ignore-term", "--pidfile", pids.string()},
                              slow_extra + "\ninstances = 2") +
               helper_program("added", {"--pidfile", added.string()}, kFast));
  vigil_->signal(SIGHUP);
  EXPECT_EQ(vigil_->wait_exit(), 0) << "the shutdown did not end\n" << vigil_->output();
  EXPECT_EQ(vigil_->output().find(": started, pid", vigil_->output().find("SIGHUP")),
            std::string::npos)
      << "a program started after the SIGHUP\n"
      << vigil_->output();
  EXPECT_EQ(read_pids(pids).size(), 1u);
  EXPECT_TRUE(read_pids(added).empty());
}

// `vigil reload` is what one runs right after editing the file, from
// anywhere: an invalid file must still lead the CLI to the running vigil
// (through the control_socket it names) to report the errors.
TEST_F(ReloadTest, InvalidFileIsReportedFromAnotherFolderWithItsOwnSocket) {
  const std::string head = "[vigil]\ncontrol_socket = \"ctl.sock\"\n\n";
  run_vigil_with(head + helper_program("web", {}, kFast));
  const fs::path ctl = dir_ / "ctl.sock";
  Json all = control::wait_for_states(ctl, {{{"web", 0}, "running"}});
  ASSERT_EQ(control::find_instance(all, "web")["state"], "running") << vigil_->output();
  const int pid = control::pid_of(control::find_instance(all, "web"));

  const std::string bad =
      head + helper_program("web", {}, std::string(kFast) + "stop_timeout = \"later\"");
  write_config(bad);
  const auto at = bad.find("stop_timeout = ");
  const auto line =
      1 + std::count(bad.begin(), bad.begin() + static_cast<std::ptrdiff_t>(at), '\n');
  const fs::path elsewhere = dir_ / "elsewhere";
  fs::create_directories(elsewhere);
  CliRun r = control::run_cli(elsewhere, {"reload", "-c", config().string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const std::string where = config().string() + ":" + std::to_string(line) + ":16: stop_timeout";
  EXPECT_NE(r.err.find(where), std::string::npos) << "expected " << where << " in\n" << r.err;
  EXPECT_EQ(control::pid_of(control::find_instance(*control::api_instances(ctl), "web")), pid);
}

// A program the operator stopped stays stopped when its instance count
// changes: no half-started program.
TEST_F(ReloadTest, ResizeOfAStoppedProgramStartsNothing) {
  ASSERT_NO_FATAL_FAILURE(start(helper_program("web", {}, std::string(kFast) + "instances = 2"),
                                {{{"web", 0}, "running"}, {{"web", 1}, "running"}}));
  CliRun stop = control::run_cli(dir_.path(), {"stop", "web", "-c", config().string()});
  ASSERT_EQ(stop.exit_code, 0) << stop.out << stop.err;

  write_config(helper_program("web", {}, std::string(kFast) + "instances = 4"));
  CliRun r = reload();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("web: resize 2 -> 4"), std::string::npos) << r.out;
  // The reload is done when the CLI returns; a start would show as starting.
  const Json all = *control::api_instances(socket());
  ASSERT_EQ(all.size(), 4u) << all.dump(1);
  for (const auto& i : all) EXPECT_EQ(i["state"], "stopped") << i.dump();

  CliRun start = control::run_cli(dir_.path(), {"start", "web", "-c", config().string()});
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  expect_states({{{"web", 0}, "running"},
                 {{"web", 1}, "running"},
                 {{"web", 2}, "running"},
                 {{"web", 3}, "running"}});
}

// A program waiting for its `after` dependency gains instances that wait too.
TEST_F(ReloadTest, ResizeOfAProgramWaitingForItsDependencyStartsNothing) {
  // `db` never becomes ready: it crashes and waits a minute in backoff.
  const std::string db = helper_program("db", {"--exit-immediately", "1"},
                                        "restart_delay = \"1m\"\nrestart_delay_max = \"1m\"");
  ASSERT_NO_FATAL_FAILURE(
      start(db + helper_program("web", {}, std::string(kFast) + "after = [\"db\"]"),
            {{{"db", 0}, "backoff"}, {{"web", 0}, "stopped"}}));

  write_config(db +
               helper_program("web", {}, std::string(kFast) + "after = [\"db\"]\ninstances = 2"));
  CliRun r = reload();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("web: resize 1 -> 2"), std::string::npos) << r.out;
  const Json all = *control::api_instances(socket());
  for (int i : {0, 1})
    EXPECT_EQ(control::find_instance(all, "web", i)["state"], "stopped")
        << "web[" << i << "] started before db is ready: " << all.dump(1);
}

TEST_F(ReloadTest, DryRunPrintsThePlanAndChangesNothing) {
  const std::string keep = helper_program("keep", {}, kFast);
  ASSERT_NO_FATAL_FAILURE(start(helper_program("web", {}, kFast) + keep,
                                {{{"web", 0}, "running"}, {{"keep", 0}, "running"}}));
  const auto before = control::pids_of(*control::api_instances(socket()));
  const fs::path added_pids = dir_ / "added.pids";

  write_config(helper_program("web", {"--print", "v2"}, kFast) + keep +
               helper_program("added", {"--pidfile", added_pids.string()}, kFast));
  CliRun r = reload({"--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("dry run"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("web: restart (command changed)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("keep: unchanged"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("added: start"), std::string::npos) << r.out;

  const Json all = *control::api_instances(socket());
  EXPECT_EQ(control::pids_of(all), before) << "nothing restarted, nothing added: " << all.dump(1);
  for (const auto& [key, pid] : before) EXPECT_FALSE(process_dead(pid)) << key.first;
  EXPECT_TRUE(read_pids(added_pids).empty()) << "the added program never ran";

  // The plan is still to be done: a real reload does it.
  CliRun real = reload();
  ASSERT_EQ(real.exit_code, 0) << real.out << real.err;
  EXPECT_NE(real.out.find("web: restart (command changed)"), std::string::npos) << real.out;
  const auto after =
      expect_states({{{"web", 0}, "running"}, {{"keep", 0}, "running"}, {{"added", 0}, "running"}});
  EXPECT_EQ(after.at({"keep", 0}), before.at({"keep", 0}));
}

}  // namespace
}  // namespace vigil::it
