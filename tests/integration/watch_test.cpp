// [watch.NAME] end to end, with real processes and sockets: the
// CommandRunner on a real loop (order, timeouts that kill a whole process
// group, bounded output); an HTTP status server that says "hung" until its
// restart URL is called (curl from on_failure), its cool-down; a heartbeat
// watch fed by the real systemd-notify (the action gets the right {pid};
// STOPPING=1 disposes; WATCHDOG=trigger acts); reload; the notify socket's
// path rules; and programs' heartbeats undisturbed by a failing watch.
//
// Bounds are generous for a loaded 2-core machine; negative checks ("no
// second call") wait a bounded window for something that must not happen.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "command_runner.h"
#include "control_harness.h"
#include "harness.h"
#include "heartbeat_channel.h"
#include "metrics.h"
#include "reaper.h"

namespace vigil::it {
namespace {

using control::Json;

// ---------------------------------------------------------------------------
// Helpers

// A child of the test that it kills and reaps at the end of the scope.
class TestChild {
 public:
  // stdout and stderr go to `out_fd` (the test's stderr by default).
  TestChild(const std::vector<std::string>& argv, const fs::path& cwd,
            const std::vector<std::string>* env = nullptr, int out_fd = 2) {
    pid_ = start_test_process(argv, cwd, out_fd, out_fd, env);
  }
  ~TestChild() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  TestChild(const TestChild&) = delete;
  TestChild& operator=(const TestChild&) = delete;
  pid_t pid() const { return pid_; }
  // Waits (bounded) for its end; its wait status, or nullopt.
  std::optional<int> wait(Duration timeout = kEventually) {
    std::optional<int> result;
    poll_until(
        [&] {
          int status;
          if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
          result = status;
          pid_ = -1;
          return true;
        },
        timeout);
    return result;
  }

 private:
  pid_t pid_ = -1;
};

// Runs `systemd-notify ARGS` with NOTIFY_SOCKET=socket to its end; its exit
// code (or -1).
int systemd_notify(const fs::path& socket, const fs::path& cwd,
                   const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/usr/bin/systemd-notify"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> env = control::detail::child_env({});
  std::erase_if(env, [](const std::string& kv) { return kv.starts_with("NOTIFY_SOCKET="); });
  env.push_back("NOTIFY_SOCKET=" + socket.string());
  TestChild c(argv, cwd, &env);
  auto status = c.wait();
  if (!status) return -1;
  return WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status);
}

// GET over the control socket; the parsed JSON body, or null.
Json api_get(const fs::path& socket, const std::string& target) {
  std::string error;
  auto r = control_request(socket, "GET", target, &error, std::chrono::seconds(5));
  if (!r || r->status != 200) return nullptr;
  return Json::parse(r->body, nullptr, false);
}

// The entry of watch `name` in GET /api/v1/watches, or null.
Json api_watch(const fs::path& socket, std::string_view name) {
  Json all = api_get(socket, "/api/v1/watches");
  if (!all.is_array()) return nullptr;
  for (const auto& w : all)
    if (w["name"] == name) return w;
  return nullptr;
}

// GET /metrics over the control socket ("" when nobody answers).
std::string metrics_text(const fs::path& socket) {
  std::string error;
  auto r = control_request(socket, "GET", "/metrics", &error, std::chrono::seconds(5));
  return r && r->status == 200 ? r->body : std::string();
}

// The value of one series in the /metrics text, or nullopt.
std::optional<double> metric(const std::string& text, std::string_view series) {
  auto line = control::metric_line(text, series);
  if (!line) return std::nullopt;
  return std::stod(line->substr(series.size() + 1));
}

// `promtool check metrics` on `text`: "" when clean, else what it said.
std::string promtool_problems(const TempDir& dir, const std::string& text) {
  const fs::path in = dir.write("scrape.txt", text);
  const fs::path out = dir / "promtool.out";
  UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  TestChild p({"/bin/sh", "-c", "exec promtool check metrics < '" + in.string() + "'"},
              dir.path(), nullptr, fd.get());
  auto status = p.wait();
  if (!status) return "promtool did not finish";
  if (WIFEXITED(*status) && WEXITSTATUS(*status) == 0) return "";
  return "promtool: " + read_file(out);
}

// The HTTP status server of a legacy service, in Python: GET
// /SocketServer.ashx?Action=getThreadStatus answers "hung" until
// ?Action=startSocketServer was called, then "running" (after `recover_ms`,
// as a real service takes time to start; never, when negative). Each
// restart call appends its CLOCK_MONOTONIC time to `calls`. The server
// writes its port to `port_file` once it listens.
constexpr std::string_view kStatusServer = R"PY(
import http.server, os, sys, time
port_file, calls, recover_ms = sys.argv[1], sys.argv[2], int(sys.argv[3])
state = {"restarted_at": None}
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if "Action=getThreadStatus" in self.path:
            at = state["restarted_at"]
            ok = at is not None and recover_ms >= 0 and time.monotonic() >= at + recover_ms / 1000.0
            body = b"running" if ok else b"hung"
        elif "Action=startSocketServer" in self.path:
            now = time.monotonic()
            with open(calls, "a") as f:
                f.write("%.6f\n" % now)
            if state["restarted_at"] is None:
                state["restarted_at"] = now
            body = b"started"
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_port))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
)PY";

class StatusServer {
 public:
  StatusServer(const TempDir& dir, int recover_ms)
      : calls_(dir / "restart-calls"),
        child_({"/usr/bin/env", "python3", dir.write("status_server.py", kStatusServer).string(),
                (dir / "status.port").string(), calls_.string(), std::to_string(recover_ms)},
               dir.path()) {
    poll_until([&] { return fs::exists(dir / "status.port"); });
    const std::string text = read_file(dir / "status.port");
    port_ = text.empty() ? 0 : std::stoi(text);
  }
  int port() const { return port_; }
  std::string url(std::string_view action) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/SocketServer.ashx?Action=" +
           std::string(action);
  }
  // CLOCK_MONOTONIC seconds of each restart call.
  std::vector<double> calls() const {
    std::vector<double> out;
    for (const auto& l : read_lines(calls_)) out.push_back(std::stod(l));
    return out;
  }

 private:
  fs::path calls_;
  TestChild child_;
  int port_ = 0;
};

// [watch.legacy]: the status URL checked every 200ms, restart after 3
// failures in a row (cool-down 600ms).
std::string legacy_watch(const StatusServer& server) {
  return "[watch.legacy]\n"
         "http = " + toml_string(server.url("getThreadStatus")) + "\n"
         "expect_status = 200\n"
         "expect_body = \"running\"\n"
         "interval = \"200ms\"\n"
         "timeout = \"2s\"\n"
         "failures = 3\n"
         "on_failure = [ [\"curl\", \"-fsS\", " + toml_string(server.url("startSocketServer")) +
         "] ]\n"
         "action_timeout = \"10s\"\n\n";
}

// ---------------------------------------------------------------------------
// CommandRunner on a real loop

class CommandRunnerTest : public ::testing::Test {
 protected:
  CommandRunnerTest() {
    previous_ = spdlog::default_logger();
    auto logger = std::make_shared<spdlog::logger>(
        "runner-test", std::make_shared<spdlog::sinks::ostream_sink_st>(log_));
    logger->set_pattern("%l: %v");
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  void TearDown() override {
    runner_.reset();
    reaper_.reset();
    loop_.reset();
    spdlog::set_default_logger(previous_);
    EXPECT_EQ(fds_.leaks(), "") << "fds opened during the test and still open";
  }

  CommandRunner& runner() {
    if (!runner_)
      runner_ = std::make_unique<CommandRunner>(*loop_, *reaper_, "watch t: on_failure",
                                                dir_.path(), std::vector<std::string>{
                                                                 "PATH=/usr/bin:/bin"});
    return *runner_;
  }
  // Runs `commands` to the end; the outcomes (empty when not done in time).
  std::vector<CommandOutcome> run(std::vector<std::vector<std::string>> commands,
                                  Duration timeout = 10s) {
    std::vector<CommandSpec> specs;
    for (auto& c : commands) specs.push_back({std::move(c), ""});
    std::optional<std::vector<CommandOutcome>> result;
    runner().run(std::move(specs), timeout,
                 [&](const std::vector<CommandOutcome>& o) { result = o; });
    loop_->run_until([&] { return result.has_value(); }, kEventually);
    return result.value_or(std::vector<CommandOutcome>{});
  }
  std::string log() const { return log_.str(); }

  TempDir dir_;
  FdLeakCheck fds_;
  std::ostringstream log_;
  std::shared_ptr<spdlog::logger> previous_;
  std::unique_ptr<EventLoop> loop_ = std::make_unique<EventLoop>();
  std::unique_ptr<Reaper> reaper_ = std::make_unique<Reaper>(*loop_);
  std::unique_ptr<CommandRunner> runner_;
};

TEST_F(CommandRunnerTest, RunsEveryCommandInOrderEvenAfterOneFailed) {
  const fs::path trace = dir_ / "trace";
  auto outcomes = run({{"/bin/sh", "-c", "echo first >> " + trace.string() + "; echo oops; exit 3"},
                       {"/no/such/binary"},
                       {"/bin/sh", "-c", "echo second >> " + trace.string() + "; echo all good"}});
  ASSERT_EQ(outcomes.size(), 3u) << log();
  EXPECT_EQ(outcomes[0].result, ActionResult::failed);
  EXPECT_EQ(outcomes[0].detail, "exit code 3: oops");
  EXPECT_EQ(outcomes[1].result, ActionResult::failed);
  EXPECT_NE(outcomes[1].detail.find("cannot execute \"/no/such/binary\""), std::string::npos)
      << outcomes[1].detail;
  EXPECT_EQ(outcomes[2].result, ActionResult::ok);
  EXPECT_EQ(read_lines(trace), (std::vector<std::string>{"first", "second"}));
  EXPECT_NE(log().find("info: watch t: on_failure[0] sh: oops\n"), std::string::npos) << log();
  EXPECT_NE(log().find("info: watch t: on_failure[2] sh: all good\n"), std::string::npos) << log();
}

TEST_F(CommandRunnerTest, DoneComesOnTheLoopEvenWhenNothingCanRun) {
  std::optional<std::size_t> got;
  runner().run({{{"/no/such/binary"}, ""}, {{"x"}, "{pid} is unknown"}}, 1s,
               [&](const std::vector<CommandOutcome>& o) { got = o.size(); });
  EXPECT_FALSE(got) << "done ran inside run()";
  loop_->run_until([&] { return got.has_value(); }, kEventually);
  EXPECT_EQ(got, 2u);
  EXPECT_NE(log().find("on_failure[1] x: not run: {pid} is unknown"), std::string::npos) << log();
}

// A command that hangs, with a child of its own: at the timeout its whole
// process group is killed, the result is timeout, and nothing is left.
TEST_F(CommandRunnerTest, AHangingCommandIsKilledWithItsGroupAtTheTimeout) {
  const fs::path pids = dir_ / "pids";
  const auto start = SteadyClock::now();
  auto outcomes =
      run({{"/bin/sh", "-c", "echo $$ > " + pids.string() + "; sleep 100 & echo $! >> " +
                                 pids.string() + "; wait"},
           {"/bin/true"}},
          500ms);
  const auto took = SteadyClock::now() - start;
  ASSERT_EQ(outcomes.size(), 2u) << log();
  EXPECT_EQ(outcomes[0].result, ActionResult::timeout);
  EXPECT_EQ(outcomes[0].detail, "no exit within 500ms: killed");
  EXPECT_EQ(outcomes[1].result, ActionResult::ok);  // the next one still runs
  EXPECT_GE(took, 500ms);
  EXPECT_LT(took, 5s);
  const std::vector<pid_t> started = read_pids(pids);
  ASSERT_EQ(started.size(), 2u);
  for (pid_t pid : started)
    EXPECT_TRUE(poll_until([&] { return process_dead(pid); })) << "pid " << pid << " survived";
  EXPECT_NE(log().find("no exit within 500ms; killing its process group (SIGKILL)"),
            std::string::npos)
      << log();
}

TEST_F(CommandRunnerTest, OutputIsBoundedPerLineAndPerCommand) {
  // A 10 KiB line, then 2 MiB of 100-byte lines.
  auto outcomes = run({{"/bin/sh", "-c",
                        "head -c 10240 /dev/zero | tr '\\0' L; echo; "
                        "i=0; while [ $i -lt 20000 ]; do "
                        "echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                        "xxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done"}});
  ASSERT_EQ(outcomes.size(), 1u) << log().substr(0, 2000);
  EXPECT_EQ(outcomes[0].result, ActionResult::ok);
  // Read to its end (EOF) before the counts are final.
  loop_->run_until([&] { return log().find("more bytes of output not logged") != std::string::npos; },
                   kEventually);
  const std::string text = log();
  std::size_t logged = 0, longest = 0;
  std::istringstream in(text);
  const std::string prefix = "info: watch t: on_failure[0] sh: ";
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with(prefix)) continue;
    // The command's own lines only (not "running ...", "done ...").
    const std::string_view content = std::string_view(line).substr(prefix.size());
    if (content.find_first_not_of(content.front() == 'L' ? "L" : "x") != std::string_view::npos)
      continue;
    const std::size_t n = content.size();
    logged += n;
    longest = std::max(longest, n);
  }
  EXPECT_EQ(longest, kCommandMaxLineBytes);
  EXPECT_LE(logged, kCommandMaxLoggedBytes);
  EXPECT_GT(logged, kCommandMaxLoggedBytes - 200);
  EXPECT_GT(runner().dropped_bytes(), 1'900'000u);
  EXPECT_NE(text.find("more bytes of output not logged"), std::string::npos);
}

TEST_F(CommandRunnerTest, DestroyingTheRunnerKillsTheCommandAndNeverCallsDone) {
  const fs::path pid_file = dir_ / "pid";
  bool called = false;
  runner().run({{{"/bin/sh", "-c", "echo $$ > " + pid_file.string() + "; exec sleep 100"}, ""}},
               60s, [&](const std::vector<CommandOutcome>&) { called = true; });
  ASSERT_TRUE(loop_->run_until([&] { return read_pids(pid_file).size() == 1; }, kEventually));
  const pid_t pid = read_pids(pid_file)[0];
  runner_.reset();
  EXPECT_TRUE(loop_->run_until([&] { return process_gone(pid); }, kEventually));
  EXPECT_FALSE(called);
}

// ---------------------------------------------------------------------------
// Check watches, the real binary

using WatchTest = BinaryTest;

// The legacy guardian's job: the status says "hung"; vigil calls the
// restart URL (curl) once; the service takes 400ms to come back, checks
// failing meanwhile inside the cool-down (600ms) call nothing more; the
// watch is up again. Then the API, /metrics (promtool-clean), the status
// page and `vigil status`.
TEST_F(WatchTest, AnHttpWatchRestartsAHungServiceOnceAndSeesItRecover) {
  StatusServer server(dir_, 400);
  ASSERT_GT(server.port(), 0);
  VigilProcess& vigil = run_vigil_with(legacy_watch(server));
  const fs::path socket = dir_ / "vigil.sock";

  ASSERT_TRUE(poll_until([&] { return server.calls().size() == 1; })) << vigil.output();
  Json w;
  ASSERT_TRUE(poll_until([&] {
    w = api_watch(socket, "legacy");
    return w.is_object() && w["up"] == true;
  })) << w.dump(1) << vigil.output();
  EXPECT_EQ(w["state"], "up");
  EXPECT_EQ(w["kind"], "http");
  EXPECT_EQ(w["consecutive_failures"], 0);
  EXPECT_GE(w["failures"].get<int>(), 3);
  EXPECT_EQ(w["actions"], (Json{{"ok", 1}, {"failed", 0}, {"timeout", 0}}));
  EXPECT_EQ(w["last_error"], "check failed: HTTP 200 but the body lacks \"running\"");
  EXPECT_TRUE(w["pid"].is_null());
  EXPECT_TRUE(w["registered"].is_null());
  EXPECT_LT(w["last_check_seconds_ago"].get<double>(), 5.0);
  // Up it stays: nothing calls the restart URL again.
  EXPECT_FALSE(poll_until([&] { return server.calls().size() > 1; }, 1500ms));

  const std::string out = vigil.output();
  EXPECT_NE(out.find("watch legacy: check failed 3 times in a row (HTTP 200 but the body lacks "
                     "\"running\"); running on_failure (1 command)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("watch legacy: on_failure[0] curl: started"), std::string::npos) << out;
  EXPECT_NE(out.find("watch legacy: on_failure done (1 ok); cool-down 600ms before acting again"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("watch legacy: check passes again"), std::string::npos) << out;

  const std::string m = metrics_text(socket);
  EXPECT_EQ(metric(m, "vigil_watch_up{watch=\"legacy\"}"), 1.0) << m;
  EXPECT_GE(metric(m, "vigil_watch_failures_total{watch=\"legacy\"}").value_or(0), 3.0) << m;
  EXPECT_EQ(metric(m, "vigil_watch_actions_total{result=\"ok\",watch=\"legacy\"}"), 1.0) << m;
  EXPECT_EQ(metric(m, "vigil_watch_actions_total{result=\"timeout\",watch=\"legacy\"}"), 0.0);
  EXPECT_EQ(promtool_problems(dir_, m), "");

  std::string error;
  auto page = control_request(socket, "GET", "/status.html", &error, std::chrono::seconds(5));
  ASSERT_TRUE(page);
  EXPECT_NE(page->body.find("<h2>Watches</h2>"), std::string::npos);
  EXPECT_NE(page->body.find("<td>legacy</td><td>http</td>"), std::string::npos) << page->body;

  auto all = control::run_cli(dir_.path(), {"status", "-c", (dir_ / "vigil.toml").string()});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_NE(all.out.find("WATCH"), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("legacy"), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("1 ok"), std::string::npos) << all.out;
  auto one = control::run_cli(dir_.path(), {"status", "-c", (dir_ / "vigil.toml").string(), "legacy"});
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_NE(one.out.find("legacy  http  up"), std::string::npos) << one.out;
  auto none = control::run_cli(dir_.path(), {"status", "-c", (dir_ / "vigil.toml").string(), "nope"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("no program named \"nope\", nor a watch"), std::string::npos) << none.err;
}

// A service that never comes back: vigil calls the restart URL again after
// each cool-down (600ms from when curl finished), never sooner.
TEST_F(WatchTest, AServiceThatStaysHungGetsOneCallPerCoolDown) {
  StatusServer server(dir_, -1);
  ASSERT_GT(server.port(), 0);
  VigilProcess& vigil = run_vigil_with(legacy_watch(server));
  ASSERT_TRUE(poll_until([&] { return server.calls().size() >= 4; })) << vigil.output();
  const std::vector<double> calls = server.calls();
  for (std::size_t i = 1; i < calls.size(); ++i)
    EXPECT_GE(calls[i] - calls[i - 1], 0.6) << "call " << i << " came "
                                            << (calls[i] - calls[i - 1]) << "s after the last";
  EXPECT_NE(vigil.output().find("watch legacy: still failing after the cool-down of 600ms"),
            std::string::npos)
      << vigil.output();
  Json w;
  EXPECT_TRUE(poll_until([&] {
    w = api_watch(dir_ / "vigil.sock", "legacy");
    return w.is_object() && w["actions"]["ok"].get<int>() >= 4;
  })) << w.dump(1);
  EXPECT_EQ(w["up"], false);
  EXPECT_EQ(w["state"], "cooldown");
}

// An action that hangs is killed at action_timeout, with what it started:
// result timeout, no process left.
TEST_F(WatchTest, AHangingActionIsKilledAtActionTimeout) {
  const fs::path pids = dir_ / "action.pids";
  VigilProcess& vigil = run_vigil_with(
      "[watch.stuck]\n"
      "exec = [\"false\"]\n"
      "interval = \"200ms\"\n"
      "failures = 1\n"
      "on_failure = [ [\"sh\", \"-c\", " +
      toml_string("echo $$ >> " + pids.string() + "; sleep 100 & echo $! >> " + pids.string() +
                  "; wait") +
      "] ]\n"
      "action_timeout = \"500ms\"\n");
  const fs::path socket = dir_ / "vigil.sock";
  Json w;
  // The next failed check (every 200ms) replaces last_error with its own:
  // poll for the moment between the kill and that check.
  ASSERT_TRUE(poll_until([&] {
    w = api_watch(socket, "stuck");
    return w.is_object() && w["actions"]["timeout"].get<int>() >= 1 &&
           w["last_error"] == "on_failure[0]: no exit within 500ms: killed";
  }, kEventually, 5ms)) << w.dump(1) << vigil.output();
  EXPECT_EQ(w["actions"]["ok"], 0);
  std::vector<pid_t> first_run = read_pids(pids);
  ASSERT_GE(first_run.size(), 2u);
  first_run.resize(2);  // sh and its sleep; later runs add theirs
  for (pid_t pid : first_run)
    EXPECT_TRUE(poll_until([&] { return process_gone(pid); })) << "pid " << pid << " survived";
  EXPECT_NE(vigil.output().find("watch stuck: on_failure[0] sh: no exit within 500ms; killing its "
                                "process group (SIGKILL)"),
            std::string::npos)
      << vigil.output();
  EXPECT_GE(metric(metrics_text(socket),
                   "vigil_watch_actions_total{result=\"timeout\",watch=\"stuck\"}")
                .value_or(0),
            1.0);
}

// ---------------------------------------------------------------------------
// Heartbeat watches, fed by the real systemd-notify

constexpr const char* kSystemdNotify = "/usr/bin/systemd-notify";

// [watch.guarded] on dir/run/guarded.sock (the folder does not exist yet):
// heartbeat every 300ms, hung after 3 misses; on_failure writes {pid} to a
// file, then kills it.
std::string guarded_watch(const TempDir& dir) {
  return "[watch.guarded]\n"
         "notify_socket = \"run/guarded.sock\"\n"
         "heartbeat = { interval = \"300ms\", misses = 3, grace = \"3s\" }\n"
         "on_failure = [ [\"sh\", \"-c\", " +
         toml_string("echo {pid} >> " + (dir / "acted").string()) +
         "], [\"kill\", \"-9\", \"{pid}\"] ]\n"
         "action_timeout = \"5s\"\n";
}

class HeartbeatWatchTest : public BinaryTest {
 protected:
  void SetUp() override {
    if (::access(kSystemdNotify, X_OK) != 0) GTEST_SKIP() << kSystemdNotify << " is not installed";
  }
  // vigil with `toml`; waits until it listens on the watch's socket.
  void start(const std::string& toml) {
    VigilProcess& v = run_vigil_with(toml);
    ASSERT_TRUE(v.wait_for_output("watch guarded: listening on")) << v.output();
  }
  fs::path notify_socket() const { return dir_ / "run" / "guarded.sock"; }
  fs::path socket() const { return dir_ / "vigil.sock"; }
  int notify(const std::vector<std::string>& args) {
    return systemd_notify(notify_socket(), dir_.path(), args);
  }
  Json watch() { return api_watch(socket(), "guarded"); }
};

// A process registers with `systemd-notify --ready --pid=PID`, beats with
// `systemd-notify WATCHDOG=1`, then falls silent: vigil runs on_failure
// with {pid} = PID (the file gets it; the process is killed).
TEST_F(HeartbeatWatchTest, SilenceAfterHeartbeatsRunsTheActionWithTheRegisteredPid) {
  ASSERT_NO_FATAL_FAILURE(start(guarded_watch(dir_)));
  TestChild guarded({"/bin/sleep", "1000"}, dir_.path());
  const pid_t pid = guarded.pid();
  Json w = watch();
  EXPECT_EQ(w["state"], "waiting") << w.dump(1);
  EXPECT_TRUE(w["up"].is_null());
  EXPECT_EQ(w["registered"], false);

  ASSERT_EQ(notify({"--ready", "--pid=" + std::to_string(pid)}), 0);
  ASSERT_TRUE(poll_until([&] {
    w = watch();
    return w["registered"] == true && w["pid"] == pid;
  })) << w.dump(1) << vigil_->output();
  EXPECT_EQ(w["up"], true);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(notify({"WATCHDOG=1"}), 0);

  // Silence: 3 x 300ms later, on_failure with this pid.
  ASSERT_TRUE(poll_until([&] { return read_lines(dir_ / "acted").size() == 1; }))
      << vigil_->output();
  EXPECT_EQ(read_lines(dir_ / "acted")[0], std::to_string(pid));
  auto status = guarded.wait();
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL);
  ASSERT_TRUE(poll_until([&] {
    w = watch();
    return w["actions"]["ok"] == 2;
  })) << w.dump(1);
  EXPECT_EQ(w["up"], false);
  EXPECT_EQ(w["state"], "cooldown");
  EXPECT_GE(w["failures"].get<int>(), 3);
  EXPECT_TRUE(w["pid"].is_null());  // given to the commands, forgotten
  const std::string out = vigil_->output();
  EXPECT_NE(out.find("watch guarded: no heartbeat from pid " + std::to_string(pid) +
                     " for 900ms (3 missed intervals of 300ms); running on_failure (2 commands, "
                     "{pid} = " + std::to_string(pid) + ")"),
            std::string::npos)
      << out;

  // Still silent after the cool-down (900ms): on_failure again, but no pid
  // is known now: the command with {pid} is not run.
  ASSERT_TRUE(poll_until([&] {
    w = watch();
    return w["actions"]["failed"].get<int>() >= 2;
  })) << w.dump(1) << vigil_->output();
  EXPECT_EQ(read_lines(dir_ / "acted").size(), 1u);
  EXPECT_NE(vigil_->output().find("watch guarded: on_failure[0] sh: not run: {pid} is unknown"),
            std::string::npos);
}

// STOPPING=1 disposes of the registration: silence after it runs nothing.
TEST_F(HeartbeatWatchTest, StoppingDisposesWithoutAction) {
  ASSERT_NO_FATAL_FAILURE(start(guarded_watch(dir_)));
  TestChild guarded({"/bin/sleep", "1000"}, dir_.path());
  ASSERT_EQ(notify({"--ready", "--pid=" + std::to_string(guarded.pid())}), 0);
  ASSERT_EQ(notify({"WATCHDOG=1"}), 0);
  ASSERT_EQ(notify({"STOPPING=1"}), 0);
  Json w;
  ASSERT_TRUE(poll_until([&] {
    w = watch();
    return w["registered"] == false;
  })) << w.dump(1) << vigil_->output();
  EXPECT_EQ(w["state"], "waiting");
  EXPECT_TRUE(w["up"].is_null());
  EXPECT_TRUE(w["pid"].is_null());
  // Three times the hang time passes: nothing runs, the process lives.
  EXPECT_FALSE(poll_until([&] { return fs::exists(dir_ / "acted"); }, 3s)) << vigil_->output();
  EXPECT_FALSE(process_dead(guarded.pid()));
  w = watch();
  EXPECT_EQ(w["actions"], (Json{{"ok", 0}, {"failed", 0}, {"timeout", 0}}));
  EXPECT_EQ(w["failures"], 0);
  EXPECT_NE(vigil_->output().find("watch guarded: process disposed (STOPPING=1)"),
            std::string::npos);
  // No metric series for a watch with nothing registered.
  const std::string m = metrics_text(socket());
  EXPECT_EQ(m.find("vigil_watch_up{watch=\"guarded\"}"), std::string::npos) << m;
  EXPECT_EQ(metric(m, "vigil_watch_failures_total{watch=\"guarded\"}"), 0.0);
}

// WATCHDOG=trigger: a failure now, without waiting for silence.
TEST_F(HeartbeatWatchTest, WatchdogTriggerActsAtOnce) {
  ASSERT_NO_FATAL_FAILURE(start(guarded_watch(dir_)));
  TestChild guarded({"/bin/sleep", "1000"}, dir_.path());
  const auto pid = std::to_string(guarded.pid());
  ASSERT_EQ(notify({"--ready", "--pid=" + pid}), 0);
  const auto sent = SteadyClock::now();
  ASSERT_EQ(notify({"WATCHDOG=trigger"}), 0);
  ASSERT_TRUE(poll_until([&] { return read_lines(dir_ / "acted").size() == 1; }))
      << vigil_->output();
  // Well before the 3s grace, or 900ms of silence, could have made it hung.
  EXPECT_LT(SteadyClock::now() - sent, 2500ms);
  EXPECT_EQ(read_lines(dir_ / "acted")[0], pid);
  EXPECT_NE(vigil_->output().find("declared itself hung (WATCHDOG=trigger)"), std::string::npos);
}

// ---------------------------------------------------------------------------
// Reload

TEST_F(WatchTest, ReloadAddsRemovesUpdatesAndRemakesWatches) {
  auto config = [&](const std::string& keep_failures, bool second) {
    std::string t =
        "[watch.keep]\n"
        "exec = [\"false\"]\n"
        "interval = \"100ms\"\n"
        "failures = " + keep_failures + "\n\n";
    if (!second)
      t += "[watch.gone]\n"
           "notify_socket = \"gone.sock\"\n"
           "heartbeat = { interval = \"1s\", misses = 3 }\n\n"
           "[watch.remade]\n"
           "exec = [\"false\"]\n"
           "interval = \"100ms\"\n\n";
    else
      t += "[watch.added]\n"
           "exec = [\"true\"]\n"
           "interval = \"100ms\"\n\n"
           "[watch.remade]\n"
           "exec = [\"sh\", \"-c\", \"exit 0\"]\n"
           "interval = \"100ms\"\n\n";
    return t;
  };
  VigilProcess& vigil = run_vigil_with(config("500", false));
  const fs::path socket = dir_ / "vigil.sock";
  ASSERT_TRUE(poll_until([&] {
    Json k = api_watch(socket, "keep");
    return k.is_object() && k["failures"].get<int>() >= 5;
  })) << vigil.output();
  ASSERT_TRUE(fs::exists(dir_ / "gone.sock"));
  const int keep_before = api_watch(socket, "keep")["failures"].get<int>();

  write_config(config("700", true));
  auto r = control::run_cli(dir_.path(), {"reload", "-c", (dir_ / "vigil.toml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err << vigil.output();
  EXPECT_NE(r.out.find("watch keep: update in place (failures changed)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("watch added: start"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("watch gone: stop"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("watch remade: restart"), std::string::npos) << r.out;

  Json all;
  ASSERT_TRUE(poll_until([&] {
    all = api_get(socket, "/api/v1/watches");
    Json added = api_watch(socket, "added");
    return all.is_array() && all.size() == 3 && added.is_object() && added["up"] == true;
  })) << all.dump(1);
  std::vector<std::string> names;
  for (const auto& w : all) names.push_back(w["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"keep", "added", "remade"}));
  // Updated in place: the count went on. Made anew: it starts from zero and
  // now passes.
  EXPECT_GE(api_watch(socket, "keep")["failures"].get<int>(), keep_before);
  EXPECT_TRUE(poll_until([&] { return api_watch(socket, "remade")["up"] == true; }));
  EXPECT_EQ(api_watch(socket, "remade")["failures"], 0);
  // The removed watch's socket file and series are gone.
  EXPECT_FALSE(fs::exists(dir_ / "gone.sock"));
  EXPECT_EQ(metrics_text(socket).find("watch=\"gone\""), std::string::npos);
}

// ---------------------------------------------------------------------------
// In-process: the notify socket's path, and programs undisturbed

using WatchInProcessTest = InProcessTest;

TEST_F(WatchInProcessTest, ASocketALiveProcessListensOnIsRefusedAndLeftAlone) {
  const fs::path path = dir_ / "live.sock";
  UniqueFd live(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  ASSERT_EQ(::bind(live.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);

  ASSERT_NO_FATAL_FAILURE(start_vigil("[watch.w]\nnotify_socket = \"live.sock\"\n"));
  EXPECT_TRUE(vigil().wait_for_log("watch w: cannot listen on " + path.string() +
                                   ": another process is listening on it (another vigil?); this "
                                   "watch is off until a reload"));
  auto snaps = vigil().supervisor().watch_snapshots();
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_NE(snaps[0].last_error.find("another process is listening"), std::string::npos);
  // Still ours: a datagram sent there reaches the test's socket.
  ASSERT_TRUE(send_datagram(path, "READY=1"));
  char buf[16];
  EXPECT_EQ(::recv(live.get(), buf, sizeof buf, MSG_DONTWAIT), 7);
}

TEST_F(WatchInProcessTest, AStaleSocketIsReplacedAndRemovedAtTheEnd) {
  const fs::path path = dir_ / "sub" / "stale.sock";
  fs::create_directories(path.parent_path());
  {
    UniqueFd dead(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    ASSERT_EQ(::bind(dead.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  }  // closed: the file stays, nobody behind it
  ASSERT_TRUE(fs::exists(path));
  ASSERT_NO_FATAL_FAILURE(start_vigil("[watch.w]\nnotify_socket = \"sub/stale.sock\"\n"));
  ASSERT_TRUE(vigil().wait_for_log("watch w: listening on " + path.string()));
  ASSERT_TRUE(send_datagram(path, "MAINPID=321\nREADY=1\n"));
  ASSERT_TRUE(vigil().run_until([&] {
    auto s = vigil().supervisor().watch_snapshots();
    return s[0].registered == true && s[0].pid == 321;
  }));
  ASSERT_TRUE(vigil().shutdown());
  EXPECT_FALSE(fs::exists(path)) << "the socket file outlived the shutdown";
}

TEST_F(WatchInProcessTest, APathThatIsNotASocketIsRefusedAndKept) {
  dir_.write("file.sock", "precious");
  ASSERT_NO_FATAL_FAILURE(start_vigil("[watch.w]\nnotify_socket = \"file.sock\"\n"));
  EXPECT_TRUE(vigil().wait_for_log("the path exists and is not a socket"));
  EXPECT_EQ(read_file(dir_ / "file.sock"), "precious");
}

// A watch whose checks time out and whose actions are slow shares the loop
// with programs: the loop keeps turning, their heartbeats are read on time,
// nobody is found hung.
TEST_F(WatchInProcessTest, AFailingWatchDoesNotDisturbProgramHeartbeats) {
  // A server that accepts connections and never answers.
  UniqueFd mute(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(mute.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(mute.get(), 64), 0);
  socklen_t len = sizeof sa;
  ::getsockname(mute.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  const int port = ntohs(sa.sin_port);

  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("beating", {"--beat", "100"},
                     "min_uptime = \"100ms\"\n"
                     "[programs.beating.heartbeat]\n"
                     "interval = \"300ms\"\nmisses = 2\ngrace = \"2s\"\n") +
      "[watch.mute]\n"
      "http = \"http://127.0.0.1:" + std::to_string(port) + "/status\"\n"
      "interval = \"100ms\"\n"
      "timeout = \"300ms\"\n"
      "failures = 1\n"
      "on_failure = [ [\"sh\", \"-c\", \"sleep 1\"] ]\n"
      "action_timeout = \"5s\"\n\n"
      "[watch.slow]\n"
      "exec = [\"sleep\", \"5\"]\n"
      "interval = \"100ms\"\n"
      "timeout = \"200ms\"\n"
      "failures = 1\n"
      "on_failure = [ [\"sh\", \"-c\", \"sleep 1; exit 1\"] ]\n"));
  Instance& beating = vigil().instance("beating");
  ASSERT_TRUE(vigil().wait_state("beating", State::running));
  const std::uint64_t beats_before = beating.heartbeats();
  // A timer on the same loop every 50ms: the longest gap between two of
  // its firings is how long the loop was ever kept from turning (an action
  // waited for, a check blocking on its socket, would be a second or more).
  Duration longest_gap{0};
  auto last_tick = SteadyClock::now();
  std::function<void()> on_tick;
  Timer tick(vigil().loop(), [&] { on_tick(); });
  on_tick = [&] {
    const auto now = SteadyClock::now();
    longest_gap = std::max(longest_gap, std::chrono::duration_cast<Duration>(now - last_tick));
    last_tick = now;
    tick.arm(50ms);
  };
  tick.arm(50ms);
  // Long enough for several actions and dozens of timed-out checks.
  ASSERT_TRUE(vigil().run_until([&] {
    auto s = vigil().supervisor().watch_snapshots();
    return s[0].actions[0] >= 2 && s[1].actions[1] >= 2;
  })) << vigil().log_text();
  tick.cancel();
  EXPECT_LT(longest_gap, 800ms) << "the loop stalled";
  EXPECT_EQ(beating.counters().total_restarts(), 0u) << vigil().log_text();
  EXPECT_EQ(beating.heartbeat_misses(), 0u) << vigil().log_text();
  EXPECT_GT(beating.heartbeats(), beats_before + 10);
  auto s = vigil().supervisor().watch_snapshots();
  EXPECT_GE(s[0].failures, 5u);
  EXPECT_EQ(s[0].up, false);
  EXPECT_NE(s[0].last_error.find("check failed"), std::string::npos) << s[0].last_error;
}

}  // namespace
}  // namespace vigil::it
