// What an operator sees when something is wrong, through the real binary:
// a typo in a command (`nodee`) shows its reason in `vigil status` (the
// REASON column), `vigil status NAME` (last error, recent exits), the API
// and the status page, and the fatal verdict names the ends that made it;
// `vigil check` stops each of the environment errors at its FILE:LINE:COL
// (executable, cwd, user, log_dir) and a listen address in use as a
// warning, an error with --strict; `vigil logs` merges files by time, all
// programs without a NAME, found through the running vigil without -c.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "control_harness.h"

namespace vigil::it {
namespace {

using control::CliRun;
using control::Json;

class OperatorTest : public BinaryTest {
 protected:
  fs::path socket() const { return dir_ / "vigil.sock"; }
  CliRun cli(std::vector<std::string> args) {
    args.push_back("-c");
    args.push_back((dir_ / "vigil.toml").string());
    return control::run_cli(dir_.path(), args);
  }
  // `vigil check` on `toml`.
  CommandResult check(std::string_view toml, std::vector<std::string> extra = {}) {
    const fs::path config = write_config(toml);
    std::vector<std::string> args{"check", "-c", config.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_vigil(dir_, args);
  }
};

constexpr std::string_view kNoSuchFile = "cannot execute \"nodee\": No such file or directory";

TEST_F(OperatorTest, ATypoInTheCommandSaysWhyEverywhere) {
  run_vigil_with(
      "[programs.typo]\ncommand = [\"nodee\", \"server.js\"]\nrestart_delay = \"10ms\"\n"
      "max_restarts = 2\nrestart_window = \"1h\"\n");
  Json typo;
  ASSERT_TRUE(poll_until([&] {
    auto all = control::api_instances(socket());
    if (!all) return false;
    typo = control::find_instance(*all, "typo");
    return typo["state"] == "fatal";
  })) << typo.dump(1)
      << vigil_->output();
  // The API: the verdict with the ends that made it, each end with its reason.
  const std::string error = typo["last_error"].get<std::string>();
  EXPECT_EQ(error, "fatal: gave up after more than 2 restarts within 1h; the last 3 ends: " +
                       std::string(kNoSuchFile) + " (x3)");
  EXPECT_TRUE(typo["last_error_seconds_ago"].is_number()) << typo.dump(1);
  ASSERT_EQ(typo["recent_exits"].size(), 3u) << typo.dump(1);
  for (const auto& e : typo["recent_exits"]) {
    EXPECT_EQ(e["code"], 127) << e.dump();
    EXPECT_EQ(e["reason"], kNoSuchFile) << e.dump();
    EXPECT_EQ(e["run_seconds"], 0.0) << e.dump();
    EXPECT_TRUE(e["time"].is_number()) << e.dump();
  }

  // `vigil status`: the REASON column.
  CliRun table = cli({"status"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("REASON"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(error), std::string::npos) << table.out;

  // `vigil status typo`: the table, then the detail with every end.
  CliRun detail = cli({"status", "typo"});
  ASSERT_EQ(detail.exit_code, 0) << detail.err;
  EXPECT_NE(detail.out.find("\ntypo[0]\n"), std::string::npos) << detail.out;
  EXPECT_NE(detail.out.find("last error  " + error), std::string::npos) << detail.out;
  EXPECT_NE(detail.out.find("recent exits, newest first:"), std::string::npos) << detail.out;
  std::size_t ends = 0;
  for (std::size_t at = 0; (at = detail.out.find("code 127", at)) != std::string::npos; ++at) ++ends;
  EXPECT_EQ(ends, 3u) << detail.out;

  // The plain status table (the live page at / reads the API above).
  auto page = control::exchange(control::connect_unix(socket()), "GET /status.html HTTP/1.0\r\n\r\n",
                                false);
  EXPECT_EQ(page.status, 200) << page.text;
  EXPECT_NE(page.text.find("<th>reason</th>"), std::string::npos) << page.text;
  EXPECT_NE(page.text.find("cannot execute &quot;nodee&quot;"), std::string::npos) << page.text;
}

TEST_F(OperatorTest, AKillForACauseKeepsItsEvidenceInTheRecentExits) {
  // A process that never beats: hung after the grace, killed, restarted.
  run_vigil_with(helper_program("silent", {"--stay"},
                                "min_uptime = \"50ms\"\nrestart_delay = \"10ms\"\n"
                                "[programs.silent.heartbeat]\ninterval = \"100ms\"\nmisses = 2\n"
                                "grace = \"100ms\"\n"));
  Json silent;
  ASSERT_TRUE(poll_until([&] {
    auto all = control::api_instances(socket());
    if (!all) return false;
    silent = control::find_instance(*all, "silent");
    return !silent["recent_exits"].empty();
  })) << vigil_->output();
  const std::string why = "hung: no heartbeat for 200ms (2 missed intervals of 100ms)";
  EXPECT_EQ(silent["recent_exits"][0]["reason"], why) << silent.dump(1);
  EXPECT_EQ(silent["recent_exits"][0]["signal"], 15) << silent.dump(1);
  EXPECT_GE(silent["recent_exits"][0]["run_seconds"].get<double>(), 0.2) << silent.dump(1);
  EXPECT_EQ(silent["last_error"], why) << silent.dump(1);
}

TEST_F(OperatorTest, CheckStopsEachEnvironmentErrorAtItsLineAndColumn) {
  const std::string file = (dir_ / "vigil.toml").string();
  struct Case {
    std::string toml;
    std::string where;  // FILE:LINE:COL
    std::string says;
  };
  const Case cases[] = {
      {"[programs.web]\ncommand = [\"nodee\", \"server.js\"]\n", file + ":2:12",
       "error: cannot execute \"nodee\": not found on PATH"},
      {"[programs.web]\ncommand = \"nodee server.js --port 3000\"\n", file + ":2:11",
       "error: cannot execute \"nodee\": not found on PATH"},
      {"[programs.web]\ncommand = \"exec  nodee\"\n", file + ":2:11",
       "error: cannot execute \"nodee\": not found on PATH"},
      {"[programs.web]\ncommand = [\"./app.js\"]\n", file + ":2:12",
       "error: cannot execute \"./app.js\": " + (dir_ / "app.js").string() + " is not executable"},
      {"[programs.web]\ncommand = [\"true\"]\ncwd   =   \"/nonexistent/app\"\n", file + ":3:11",
       "error: cwd \"/nonexistent/app\" does not exist"},
      {"[programs.web]\ncommand = [\"true\"]\n  user = \"no-such-user-here\"\n", file + ":3:10",
       "error: unknown user \"no-such-user-here\""},
      {"[vigil]\nlog_dir = \"app.js/logs\"\n[programs.web]\ncommand = [\"true\"]\n", file + ":2:11",
       "error: log_dir \"" + (dir_ / "app.js/logs").string() + "\" cannot be created: " +
           (dir_ / "app.js").string() + " is not a folder"},
  };
  dir_.write("app.js", "console.log('not executable: no x bit')\n");  // written 0644
  for (const Case& c : cases) {
    SCOPED_TRACE(c.toml);
    auto r = check(c.toml);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find(c.where + ": " + c.says), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find(": ok"), std::string::npos) << r.output;
  }
  // What runs here passes.
  auto good = check("[programs.web]\ncommand = \"sleep 100 && true\"\ncwd = \"/tmp\"\nuser = \"root\"\n");
  EXPECT_EQ(good.exit_code, 0) << good.output;
}

// A listening socket on 127.0.0.1 (any port), and its "127.0.0.1:PORT".
std::pair<UniqueFd, std::string> listener() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::listen(fd.get(), 1) != 0 || ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    throw std::runtime_error("no listener");
  return {std::move(fd), "127.0.0.1:" + std::to_string(ntohs(sa.sin_port))};
}

TEST_F(OperatorTest, AListenAddressInUseIsAWarningAndAnErrorWhenStrict) {
  // Addresses held by someone else.
  auto [http_holder, http_taken] = listener();
  auto [held_holder, held_taken] = listener();
  const std::string free = "127.0.0.1:" + std::to_string(free_port());
  const std::string toml = "[http]\nlisten = \"" + http_taken +
                           "\"\n[programs.web]\ncommand = [\"true\"]\nlisten = [\"" + free + "\", \"" +
                           held_taken + "\"]\n";
  const std::string file = (dir_ / "vigil.toml").string();
  auto relaxed = check(toml);
  EXPECT_EQ(relaxed.exit_code, 0) << relaxed.output;
  EXPECT_NE(relaxed.output.find(file + ":2:10: warning: http listen " + http_taken +
                                " cannot be bound: Address already in use"),
            std::string::npos)
      << relaxed.output;
  const std::string column = std::to_string(std::string("listen = [\"" + free + "\", \"").size());
  EXPECT_NE(relaxed.output.find(file + ":5:" + column + ": warning: listen " + held_taken +
                                " cannot be bound: Address already in use"),
            std::string::npos)
      << relaxed.output;
  EXPECT_NE(relaxed.output.find("ok (1 program, 1 instance, 0 watches, 2 warnings)"), std::string::npos)
      << relaxed.output;
  auto strict = check(toml, {"--strict"});
  EXPECT_EQ(strict.exit_code, 1) << strict.output;
  EXPECT_NE(strict.output.find(file + ":2:10: error: http listen " + http_taken), std::string::npos)
      << strict.output;
  http_holder.reset();
  held_holder.reset();
  auto freed = check(toml, {"--strict"});
  EXPECT_EQ(freed.exit_code, 0) << freed.output;
}

TEST_F(OperatorTest, LogsMergeEveryFileByTime) {
  const fs::path config = write_config(
      "[programs.api]\ncommand = [\"true\"]\nautostart = false\n"
      "[programs.worker]\ncommand = [\"true\"]\ninstances = 2\nautostart = false\n");
  dir_.write("logs/api.out.log",
             "2026-12-06T10:00:00.001 api one\n2026-12-06T10:00:00.004 api four\n");
  dir_.write("logs/api.err.log", "2026-12-06T10:00:00.002 api two (err)\n  and its second line\n");
  dir_.write("logs/worker-1.out.log",
             "2026-12-06T10:00:00.003 worker three\n2026-12-06T10:00:00.005 worker five\n");
  auto all = run_vigil(dir_, {"logs", "-c", config.string()});
  EXPECT_EQ(all.exit_code, 0) << all.output;
  EXPECT_EQ(all.output,
            "api out | 2026-12-06T10:00:00.001 api one\n"
            "api err | 2026-12-06T10:00:00.002 api two (err)\n"
            "api err |   and its second line\n"
            "worker[1] out | 2026-12-06T10:00:00.003 worker three\n"
            "api out | 2026-12-06T10:00:00.004 api four\n"
            "worker[1] out | 2026-12-06T10:00:00.005 worker five\n");
  // -n counts lines of the merged stream.
  auto last2 = run_vigil(dir_, {"logs", "-n", "2", "-c", config.string()});
  EXPECT_EQ(last2.output,
            "api out | 2026-12-06T10:00:00.004 api four\n"
            "worker[1] out | 2026-12-06T10:00:00.005 worker five\n");
  // One program: its stdout and stderr, merged.
  auto api = run_vigil(dir_, {"logs", "api", "-c", config.string()});
  EXPECT_EQ(api.output,
            "api out | 2026-12-06T10:00:00.001 api one\n"
            "api err | 2026-12-06T10:00:00.002 api two (err)\n"
            "api err |   and its second line\n"
            "api out | 2026-12-06T10:00:00.004 api four\n");
}

TEST_F(OperatorTest, LogsFindTheFilesThroughTheRunningVigil) {
  // The log folder is elsewhere, and the CLI runs from another directory
  // with no config: only the running vigil knows where the files are.
  TempDir elsewhere;
  const fs::path logs = elsewhere / "somewhere";
  run_vigil_with("[vigil]\nlog_dir = " + toml_string(logs.string()) +
                 "\n[programs.talker]\ncommand = \"echo one; sleep 0.05; echo two >&2; sleep 0.05; "
                 "echo three; exec sleep 100\"\n");
  ASSERT_TRUE(poll_until([&] {
    return read_lines(logs / "talker.out.log").size() == 2 && read_lines(logs / "talker.err.log").size() == 1;
  })) << vigil_->output();
  CliRun r = control::run_cli(elsewhere.path(), {"logs", "talker"}, {{"VIGIL_SOCKET", socket().string()}});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto lines = read_lines(elsewhere.write("got", r.out));
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_TRUE(lines[0].starts_with("talker out | ") && lines[0].ends_with(" one")) << r.out;
  EXPECT_TRUE(lines[1].starts_with("talker err | ") && lines[1].ends_with(" two")) << r.out;
  EXPECT_TRUE(lines[2].starts_with("talker out | ") && lines[2].ends_with(" three")) << r.out;
  // Without NAME: every program's.
  CliRun all = control::run_cli(elsewhere.path(), {"logs"}, {{"VIGIL_SOCKET", socket().string()}});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(all.out, r.out);
}

}  // namespace
}  // namespace vigil::it
