// Every CLI verb against a running vigil, each run as a real subprocess
// (`vigil VERB ... -c FILE`, once through $VIGIL_SOCKET): the status table
// and its JSON, start/stop/restart of one program or all, start clearing
// fatal, logs -n and logs -f across a rotation, and exit 2 when no vigil
// answers. The API is read directly only to wait and to check the result.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include "control_harness.h"

namespace vigil::it {
namespace {

using control::CliProcess;
using control::CliRun;
using control::Expected;
using control::Json;

const std::vector<std::string> kColumns{"PROGRAM",  "INDEX",  "PID",       "STATE", "UPTIME",
                                        "RESTARTS", "MEMORY", "HEARTBEAT", "STATUS", "REASON"};

class ControlTest : public BinaryTest {
 protected:
  // `vigil run` with `programs`, then waits until the API lists `want`.
  void start(std::string_view programs, const Expected& want) {
    run_vigil_with(programs);
    config_ = dir_ / "vigil.toml";
    Json all = control::wait_for_states(socket(), want);
    ASSERT_EQ(all.size(), want.size()) << all.dump(1) << "\n" << vigil_->output();
    for (const auto& i : all)
      ASSERT_EQ(i["state"], want.at({i["name"], i["index"]})) << all.dump(1) << vigil_->output();
  }
  fs::path socket() const { return dir_ / "vigil.sock"; }
  // `vigil ARGS -c CONFIG`
  CliRun cli(std::vector<std::string> args) {
    args.push_back("-c");
    args.push_back(config_.string());
    return control::run_cli(dir_.path(), args);
  }
  Json api() {
    auto all = control::api_instances(socket());
    EXPECT_TRUE(all) << "the API did not answer\n" << vigil_->output();
    return all.value_or(Json::array());
  }

  fs::path config_;
};

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

// The status table cut at the header's column starts: one map per row,
// column name -> trimmed cell. Fails the test when the header is not the
// documented one.
std::vector<std::map<std::string, std::string>> parse_table(const std::string& text) {
  std::vector<std::map<std::string, std::string>> rows;
  auto lines = split_lines(text);
  if (lines.empty()) {
    ADD_FAILURE() << "no output";
    return rows;
  }
  const std::string& header = lines[0];
  std::vector<std::size_t> starts;
  std::size_t from = 0;
  for (const auto& c : kColumns) {
    auto at = header.find(c, from);
    if (at == std::string::npos) {
      ADD_FAILURE() << "no column " << c << " in the header: " << header;
      return rows;
    }
    starts.push_back(at);
    from = at + c.size();
  }
  std::string words;
  for (const auto& c : kColumns) words += (words.empty() ? "" : " ") + c;
  std::string squeezed;
  for (char c : header)
    if (c != ' ' || (!squeezed.empty() && squeezed.back() != ' ')) squeezed += c;
  EXPECT_EQ(squeezed, words) << "the header, spaces squeezed";
  for (std::size_t n = 1; n < lines.size(); ++n) {
    if (lines[n].empty()) break;  // `status NAME`: the details follow
    std::map<std::string, std::string> row;
    for (std::size_t c = 0; c < kColumns.size(); ++c) {
      const std::string& line = lines[n];
      if (starts[c] > line.size()) {
        row[kColumns[c]] = "";
        continue;
      }
      // A cell starts exactly at its column: the character before is a space.
      if (starts[c] > 0 && line[starts[c] - 1] != ' ')
        ADD_FAILURE() << "column " << kColumns[c] << " is not aligned in: " << line;
      std::size_t end =
          c + 1 < kColumns.size() ? std::min(starts[c + 1], line.size()) : line.size();
      std::string cell = line.substr(starts[c], end - starts[c]);
      while (!cell.empty() && cell.back() == ' ') cell.pop_back();
      row[kColumns[c]] = cell;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

TEST_F(ControlTest, StatusPrintsOneAlignedRowPerInstanceWithoutColour) {
  ASSERT_NO_FATAL_FAILURE(
      start(helper_program("web", {}, "instances = 2\nmin_uptime = \"100ms\"") +
                helper_program("worker", {}, "min_uptime = \"100ms\""),
            {{{"web", 0}, "running"}, {{"web", 1}, "running"}, {{"worker", 0}, "running"}}));
  const Json all = api();
  CliRun r = cli({"status"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out.find('\033'), std::string::npos) << "colour codes on a pipe:\n" << r.out;
  auto rows = parse_table(r.out);
  ASSERT_EQ(rows.size(), 3u) << r.out;
  const std::vector<std::pair<std::string, int>> order{{"web", 0}, {"web", 1}, {"worker", 0}};
  for (std::size_t n = 0; n < rows.size(); ++n) {
    SCOPED_TRACE(r.out);
    EXPECT_EQ(rows[n]["PROGRAM"], order[n].first);
    EXPECT_EQ(rows[n]["INDEX"], std::to_string(order[n].second));
    EXPECT_EQ(rows[n]["PID"], std::to_string(control::pid_of(
                                  control::find_instance(all, order[n].first, order[n].second))));
    EXPECT_EQ(rows[n]["STATE"], "running");
    EXPECT_TRUE(std::regex_match(rows[n]["UPTIME"], std::regex(R"(\d+[smhd](\d+[smh])?)")))
        << rows[n]["UPTIME"];
    EXPECT_EQ(rows[n]["RESTARTS"], "0");
    EXPECT_EQ(rows[n]["HEARTBEAT"], "-") << "no heartbeat was ever received";
  }
}

TEST_F(ControlTest, StatusJsonHasTheDocumentedFields) {
  ASSERT_NO_FATAL_FAILURE(
      start(helper_program("web", {}, "min_uptime = \"100ms\"") +
                helper_program("crash", {"--exit-immediately", "3"},
                               "restart_delay = \"1m\"\nrestart_delay_max = \"1m\""),
            {{{"web", 0}, "running"}, {{"crash", 0}, "backoff"}}));
  CliRun r = cli({"status", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  Json all;
  ASSERT_NO_THROW(all = Json::parse(r.out)) << r.out;
  ASSERT_TRUE(all.is_array()) << r.out;
  ASSERT_EQ(all.size(), 2u) << r.out;
  for (const auto& i : all) {
    SCOPED_TRACE(i.dump());
    for (const char* key :
         {"name", "index", "pid", "state", "uptime_seconds", "restarts", "memory_rss_bytes",
          "memory_reported_bytes", "last_heartbeat_seconds_ago", "status_text", "last_exit_code",
          "reason", "next_restart_in_seconds", "recent_exits"})
      EXPECT_TRUE(i.contains(key)) << key;
    EXPECT_TRUE(i["name"].is_string());
    EXPECT_TRUE(i["index"].is_number_integer()) << "index is a number, not a string";
    EXPECT_EQ(i["index"], 0);
    EXPECT_TRUE(i["uptime_seconds"].is_number());
    EXPECT_TRUE(i["restarts"].is_number_integer());
    EXPECT_TRUE(i["memory_rss_bytes"].is_number());
    EXPECT_TRUE(i["memory_reported_bytes"].is_null()) << "nothing reported MEMORY=";
    EXPECT_TRUE(i["last_heartbeat_seconds_ago"].is_null()) << "no heartbeat yet";
    EXPECT_TRUE(i["status_text"].is_string());
    EXPECT_TRUE(i["recent_exits"].is_array());
  }
  const Json web = control::find_instance(all, "web");
  EXPECT_TRUE(web["pid"].is_number_integer()) << web.dump();
  EXPECT_GT(control::pid_of(web), 0);
  EXPECT_EQ(web["state"], "running");
  EXPECT_EQ(web["restarts"], 0);
  EXPECT_TRUE(web["last_exit_code"].is_null()) << web.dump();
  EXPECT_TRUE(web["next_restart_in_seconds"].is_null()) << "not in backoff: " << web.dump();
  EXPECT_TRUE(web["recent_exits"].empty()) << web.dump();

  const Json crash = control::find_instance(all, "crash");
  EXPECT_EQ(crash["state"], "backoff") << crash.dump();
  EXPECT_TRUE(crash["pid"].is_null()) << crash.dump();
  EXPECT_EQ(crash["last_exit_code"], 3) << crash.dump();
  ASSERT_TRUE(crash["next_restart_in_seconds"].is_number()) << crash.dump();
  // 1m, +-10% jitter, minus the moments since the exit.
  EXPECT_GT(crash["next_restart_in_seconds"].get<double>(), 30.0) << crash.dump();
  EXPECT_LE(crash["next_restart_in_seconds"].get<double>(), 66.0) << crash.dump();
  ASSERT_EQ(crash["recent_exits"].size(), 1u) << crash.dump();
  EXPECT_EQ(crash["recent_exits"][0]["code"], 3) << crash.dump();
}

// In backoff, `reason` says why the coming restart happens, before it is
// done (and counted).
TEST_F(ControlTest, StatusJsonInBackoffGivesTheReasonOfTheComingRestart) {
  ASSERT_NO_FATAL_FAILURE(
      start(helper_program("crash", {"--exit-immediately", "3"},
                           "restart_delay = \"1m\"\nrestart_delay_max = \"1m\""),
            {{{"crash", 0}, "backoff"}}));
  CliRun r = cli({"status", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const Json crash = control::find_instance(Json::parse(r.out), "crash");
  EXPECT_EQ(crash["state"], "backoff") << crash.dump();
  EXPECT_EQ(crash["reason"], "exit") << crash.dump();
  EXPECT_TRUE(crash["next_restart_in_seconds"].is_number()) << crash.dump();
}

TEST_F(ControlTest, StatusOfOneProgramAndOfAnUnknownOne) {
  ASSERT_NO_FATAL_FAILURE(
      start(helper_program("web", {}, "instances = 2\nmin_uptime = \"100ms\"") +
                helper_program("worker", {}, "min_uptime = \"100ms\""),
            {{{"web", 0}, "running"}, {{"web", 1}, "running"}, {{"worker", 0}, "running"}}));
  CliRun r = cli({"status", "worker"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto rows = parse_table(r.out);
  ASSERT_EQ(rows.size(), 1u) << r.out;
  EXPECT_EQ(rows[0]["PROGRAM"], "worker");

  CliRun json = cli({"status", "web", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.out << json.err;
  Json web = Json::parse(json.out);
  ASSERT_EQ(web.size(), 2u) << json.out;
  EXPECT_EQ(web[0]["name"], "web");
  EXPECT_EQ(web[1]["index"], 1);

  CliRun unknown = cli({"status", "nosuch"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.out << unknown.err;
  EXPECT_NE(unknown.err.find("no program named \"nosuch\""), std::string::npos) << unknown.err;
  EXPECT_EQ(unknown.out, "");
}

TEST_F(ControlTest, StatusFindsVigilThroughTheVigilSocketVariable) {
  ASSERT_NO_FATAL_FAILURE(
      start(helper_program("web", {}, "min_uptime = \"100ms\""), {{{"web", 0}, "running"}}));
  // A folder with no vigil.toml and no vigil.sock: only the variable leads there.
  const fs::path elsewhere = dir_ / "elsewhere";
  fs::create_directories(elsewhere);
  CliRun r = control::run_cli(elsewhere, {"status"}, {{"VIGIL_SOCKET", socket().string()}});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto rows = parse_table(r.out);
  ASSERT_EQ(rows.size(), 1u) << r.out;
  EXPECT_EQ(rows[0]["PROGRAM"], "web");
  EXPECT_EQ(rows[0]["PID"], std::to_string(control::pid_of(control::find_instance(api(), "web"))));

  CliRun without = control::run_cli(elsewhere, {"status"});
  EXPECT_EQ(without.exit_code, 2) << "without the variable nothing answers there\n"
                                  << without.out << without.err;
}

TEST_F(ControlTest, RestartGivesANewPidAndCountsAManualRestart) {
  ASSERT_NO_FATAL_FAILURE(start(helper_program("web", {}, "min_uptime = \"100ms\"") +
                                    helper_program("other", {}, "min_uptime = \"100ms\""),
                                {{{"web", 0}, "running"}, {{"other", 0}, "running"}}));
  const auto before = control::pids_of(api());
  const int old_pid = before.at({"web", 0});

  CliRun r = cli({"restart", "web"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // The CLI waits until the restart is done and shows the result.
  auto rows = parse_table(r.out);
  ASSERT_EQ(rows.size(), 1u) << r.out;
  EXPECT_EQ(rows[0]["STATE"], "running") << r.out;
  EXPECT_NE(rows[0]["PID"], std::to_string(old_pid)) << r.out;
  EXPECT_EQ(rows[0]["RESTARTS"], "1") << r.out;

  const Json web = control::find_instance(api(), "web");
  EXPECT_EQ(web["state"], "running");
  EXPECT_NE(control::pid_of(web), old_pid);
  EXPECT_EQ(rows[0]["PID"], std::to_string(control::pid_of(web)));
  EXPECT_EQ(web["restarts"], 1);
  EXPECT_EQ(web["restarts_by_reason"]["manual"], 1) << web.dump();
  EXPECT_EQ(web["reason"], "manual") << web.dump();
  EXPECT_TRUE(process_gone(old_pid)) << "the old process was stopped and reaped";
  EXPECT_EQ(control::pid_of(control::find_instance(api(), "other")), before.at({"other", 0}))
      << "only the named program restarts";
}

TEST_F(ControlTest, StopThenStart) {
  ASSERT_NO_FATAL_FAILURE(
      start(helper_program("web", {}, "min_uptime = \"100ms\""), {{{"web", 0}, "running"}}));
  const int old_pid = control::pid_of(control::find_instance(api(), "web"));

  CliRun stop = cli({"stop", "web"});
  ASSERT_EQ(stop.exit_code, 0) << stop.out << stop.err;
  auto rows = parse_table(stop.out);
  ASSERT_EQ(rows.size(), 1u) << stop.out;
  EXPECT_EQ(rows[0]["STATE"], "stopped") << stop.out;
  EXPECT_EQ(rows[0]["PID"], "-") << stop.out;
  Json web = control::find_instance(api(), "web");
  EXPECT_EQ(web["state"], "stopped");
  EXPECT_TRUE(web["pid"].is_null());
  EXPECT_TRUE(process_gone(old_pid));

  CliRun start = cli({"start", "web"});
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  rows = parse_table(start.out);
  ASSERT_EQ(rows.size(), 1u) << start.out;
  EXPECT_EQ(rows[0]["STATE"], "running") << start.out;
  web = control::find_instance(api(), "web");
  EXPECT_EQ(web["state"], "running");
  const int new_pid = control::pid_of(web);
  EXPECT_GT(new_pid, 0);
  EXPECT_NE(new_pid, old_pid);
  EXPECT_FALSE(process_dead(new_pid));
  EXPECT_EQ(web["restarts"], 0) << "a stop and a start are not a restart: " << web.dump();
}

TEST_F(ControlTest, StartClearsFatal) {
  // Crashes while the file `crash` exists; runs once it is gone.
  const fs::path crash = dir_ / "crash";
  const fs::path pids = dir_ / "pids";
  dir_.write("crash", "");
  const std::string command = "test -e " + crash.string() + " && exit 1; exec " + helper_binary() +
                              " --pidfile " + pids.string();
  ASSERT_NO_FATAL_FAILURE(start("[programs.flaky]\ncommand = " + toml_string(command) +
                                    "\nrestart_delay = \"20ms\"\nmax_restarts = 1\n"
                                    "min_uptime = \"100ms\"\n",
                                {{{"flaky", 0}, "fatal"}}));
  EXPECT_TRUE(read_pids(pids).empty());

  fs::remove(crash);
  CliRun r = cli({"start", "flaky"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto rows = parse_table(r.out);
  ASSERT_EQ(rows.size(), 1u) << r.out;
  EXPECT_EQ(rows[0]["STATE"], "running") << r.out;
  const Json flaky = control::find_instance(api(), "flaky");
  EXPECT_EQ(flaky["state"], "running") << flaky.dump();
  ASSERT_EQ(read_pids(pids).size(), 1u);
  EXPECT_EQ(control::pid_of(flaky), read_pids(pids)[0]);
  EXPECT_FALSE(process_dead(control::pid_of(flaky)));
}

TEST_F(ControlTest, StartAllAndStopAll) {
  ASSERT_NO_FATAL_FAILURE(
      start(helper_program("a", {}, "min_uptime = \"100ms\"") +
                helper_program("b", {}, "instances = 2\nmin_uptime = \"100ms\""),
            {{{"a", 0}, "running"}, {{"b", 0}, "running"}, {{"b", 1}, "running"}}));
  const auto before = control::pids_of(api());

  CliRun stop = cli({"stop", "all"});
  ASSERT_EQ(stop.exit_code, 0) << stop.out << stop.err;
  auto rows = parse_table(stop.out);
  ASSERT_EQ(rows.size(), 3u) << stop.out;
  for (auto& row : rows) EXPECT_EQ(row["STATE"], "stopped") << stop.out;
  for (const auto& [key, pid] : before) EXPECT_TRUE(process_gone(pid)) << key.first << " " << pid;

  CliRun start = cli({"start", "all"});
  ASSERT_EQ(start.exit_code, 0) << start.out << start.err;
  rows = parse_table(start.out);
  ASSERT_EQ(rows.size(), 3u) << start.out;
  for (auto& row : rows) EXPECT_EQ(row["STATE"], "running") << start.out;
  for (const auto& [key, pid] : control::pids_of(api())) {
    EXPECT_GT(pid, 0) << key.first;
    EXPECT_FALSE(process_dead(pid)) << key.first;
    EXPECT_NE(pid, before.at(key)) << key.first;
  }
}

// While vigil stops everything, start and restart would bring programs
// back behind the shutdown's back: refused, and the shutdown ends.
TEST_F(ControlTest, StartAndRestartAreRefusedDuringShutdown) {
  const fs::path pids = dir_ / "slow.pids";
  ASSERT_NO_FATAL_FAILURE(
      start(helper_program("slow", {"--ignore-term", "--pidfile", pids.string()},
                           "min_uptime = \"100ms\"\nstop_timeout = \"2s\""),
            {{{"slow", 0}, "running"}}));
  vigil_->signal(SIGTERM);
  ASSERT_TRUE(vigil_->wait_for_output("program slow: stopping")) << vigil_->output();
  for (const char* verb : {"start", "restart"}) {
    CliRun r = cli({verb, "slow"});
    EXPECT_EQ(r.exit_code, 1) << verb << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find("shutting down"), std::string::npos) << verb << ": " << r.err;
  }
  EXPECT_EQ(vigil_->wait_exit(), 0) << "the shutdown did not end\n" << vigil_->output();
  EXPECT_EQ(read_pids(pids).size(), 1u) << "slow was started again";
}

TEST_F(ControlTest, UnknownProgramIsAUsageError) {
  ASSERT_NO_FATAL_FAILURE(
      start(helper_program("web", {}, "min_uptime = \"100ms\""), {{{"web", 0}, "running"}}));
  for (const char* verb : {"start", "stop", "restart"}) {
    CliRun r = cli({verb, "nosuch"});
    EXPECT_EQ(r.exit_code, 1) << verb << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find("no program named \"nosuch\""), std::string::npos)
        << verb << ": " << r.err;
  }
  EXPECT_EQ(control::find_instance(api(), "web")["restarts"], 0);
}

// A name is sent percent-encoded: one with a space or a line break cannot
// end the request line early, so it cannot act on another program (the
// second name would restart "web" if sent raw).
TEST_F(ControlTest, NameWithSpacesOrLineBreaksStaysOneName) {
  ASSERT_NO_FATAL_FAILURE(
      start(helper_program("web", {}, "min_uptime = \"100ms\""), {{{"web", 0}, "running"}}));
  const int pid = control::pid_of(control::find_instance(api(), "web"));
  for (const char* name : {"no such", "web/restart HTTP/1.1\r\nX-Rest: x", "web#x", "caf\xc3\xa9"}) {
    CliRun r = cli({"restart", name});
    EXPECT_EQ(r.exit_code, 1) << ::testing::PrintToString(name) << "\n" << r.out << r.err;
    EXPECT_EQ(r.err.find("malformed"), std::string::npos) << r.err;
  }
  CliRun status = cli({"status", "no such"});
  EXPECT_NE(status.err.find("no program named \"no such\""), std::string::npos) << status.err;
  Json web = control::find_instance(api(), "web");
  EXPECT_EQ(web["restarts"], 0) << web.dump();
  EXPECT_EQ(control::pid_of(web), pid);
}

TEST_F(ControlTest, LogsPrintsTheLastLines) {
  ASSERT_NO_FATAL_FAILURE(start(helper_program("web", {"--flood", "50", "--stay"},
                                               "log_timestamps = false\nmin_uptime = \"100ms\""),
                                {{{"web", 0}, "running"}}));
  const fs::path log = dir_ / "logs" / "web.out.log";
  ASSERT_TRUE(poll_until([&] { return read_lines(log).size() == 50; })) << read_file(log);

  CliRun r = cli({"logs", "web", "-n", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 5u) << r.out;
  for (int k = 0; k < 5; ++k)
    EXPECT_TRUE(lines[static_cast<std::size_t>(k)].ends_with(flood_line(45 + k))) << r.out;

  CliRun all = cli({"logs", "web", "-n", "1000"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(split_lines(all.out).size(), 50u) << "fewer lines than asked: all of them";
}

TEST_F(ControlTest, LogsFollowPrintsNewLinesAcrossARotation) {
  // ~9 bytes a line every 5ms: a 4KiB file rotates every couple of seconds,
  // ten times slower than the follower polls.
  ASSERT_NO_FATAL_FAILURE(start(helper_program("ticker", {"--tick", "5"},
                                               "log_timestamps = false\nlog_max_size = \"4KiB\"\n"
                                               "log_keep = 5\nmin_uptime = \"100ms\""),
                                {{{"ticker", 0}, "running"}}));
  const fs::path log = dir_ / "logs" / "ticker.out.log";
  CliProcess follower(dir_.path(), {"logs", "ticker", "-f", "-n", "0", "-c", config_.string()});

  static const std::regex tick_re(R"(tick (\d+)$)");
  auto ticks = [](const std::string& text) {
    std::vector<long> out;
    for (const auto& line : split_lines(text)) {
      std::smatch m;
      if (std::regex_search(line, m, tick_re)) out.push_back(std::stol(m[1].str()));
    }
    return out;
  };
  // New lines come through.
  ASSERT_TRUE(follower.wait_for([&](const std::string& t) { return ticks(t).size() >= 3; }))
      << follower.out() << follower.err();
  struct stat st {};
  ASSERT_EQ(::stat(log.c_str(), &st), 0);
  const ino_t followed = st.st_ino;

  // The file it follows is rotated away; the first line of the new file
  // (and more after it) reaches the follower too.
  long first_of_new = -1;
  ASSERT_TRUE(poll_until([&] {
    struct stat now {};
    if (::stat(log.c_str(), &now) != 0 || now.st_ino == followed) return false;
    auto lines = read_lines(log);
    if (lines.empty()) return false;
    first_of_new = std::stol(lines[0].substr(lines[0].rfind(' ') + 1));
    return true;
  })) << "no rotation of "
      << log;
  ASSERT_TRUE(follower.wait_for([&](const std::string& t) {
    auto seen = ticks(t);
    return !seen.empty() && seen.back() >= first_of_new + 20;
  })) << "the follower did not go on after the rotation (new file starts at tick "
      << first_of_new << ")\n"
      << follower.out() << follower.err();

  // Nothing lost or doubled on the way: consecutive ticks.
  auto seen = ticks(follower.out());
  for (std::size_t k = 1; k < seen.size(); ++k)
    ASSERT_EQ(seen[k], seen[k - 1] + 1) << "at line " << k << " of\n" << follower.out();
  EXPECT_LE(seen.front(), first_of_new);

  EXPECT_EQ(follower.stop(SIGTERM), 0) << follower.err();
}

TEST_F(ControlTest, EveryVerbExitsTwoWhenNoVigilAnswers) {
  // No vigil ever ran here: no socket file.
  config_ = write_config(helper_program("web", {}));
  const std::vector<std::vector<std::string>> verbs{
      {"status"},         {"status", "--json"}, {"start", "web"}, {"stop", "web"},
      {"restart", "web"}, {"start", "all"},     {"reload"},       {"reload", "--dry-run"}};
  for (const auto& v : verbs) {
    CliRun r = cli(v);
    EXPECT_EQ(r.exit_code, 2) << v[0] << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find("cannot reach a running vigil"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(socket().string()), std::string::npos) << "names the socket: " << r.err;
  }

  // A socket file nobody listens on any more (what a killed vigil leaves).
  {
    UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, socket().c_str(), sizeof sa.sun_path - 1);
    ASSERT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0)
        << std::strerror(errno);
  }
  ASSERT_TRUE(fs::is_socket(socket()));
  for (const auto& v : verbs) {
    CliRun r = cli(v);
    EXPECT_EQ(r.exit_code, 2) << v[0] << " (stale socket)\n" << r.out << r.err;
    EXPECT_NE(r.err.find("Connection refused"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace vigil::it
