// Heartbeats and readiness end to end, with real children: a child that
// stops beating is restarted as hung, on time; WATCHDOG=trigger; READY with
// `after` and start_timeout; what a child gets (fd 3, NOTIFY_SOCKET,
// WATCHDOG_USEC/PID); garbage on either transport; STATUS and MEMORY; and
// the Node and Python clients with their demo apps, down to a client that
// exits on its own when vigil is killed. Each rule of the life cycle
// (grace, STOPPING=1, EXTEND_TIMEOUT_USEC, reloads) is tested exactly, in
// simulated time, by tests/unit/instance_machine_test.cpp.
//
// Times are measured on the loop turn that shows the event (the predicate of
// run_until runs after every turn), and bounds are generous for a loaded
// 2-core machine: a late timer makes a test slow, never wrong.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include "harness.h"

namespace vigil::it {
namespace {

using HeartbeatTest = InProcessTest;

std::uint64_t restarts(const Instance& i, RestartReason r) {
  return i.counters().restarts[static_cast<std::size_t>(r)];
}

std::int64_t ms_between(SteadyClock::time_point from, SteadyClock::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

// A [programs.NAME.heartbeat] section.
std::string heartbeat_section(std::string_view name, std::string_view interval, int misses,
                              std::string_view grace) {
  return "[programs." + std::string(name) + ".heartbeat]\ninterval = \"" + std::string(interval) +
         "\"\nmisses = " + std::to_string(misses) + "\ngrace = \"" + std::string(grace) + "\"\n\n";
}

// Follows one instance turn by turn: when its heartbeat count last went up
// (and the misses counted by then), and when vigil began to stop it.
struct Watcher {
  const Instance& i;
  std::uint64_t beats = 0;
  std::uint64_t misses_at_last_beat = 0;
  std::optional<SteadyClock::time_point> last_beat;
  std::optional<SteadyClock::time_point> stopping_at;

  explicit Watcher(const Instance& instance) : i(instance), beats(instance.heartbeats()) {}
  // Returns true once the instance is stopping.
  bool operator()() {
    const auto now = SteadyClock::now();
    if (i.heartbeats() != beats && !stopping_at) {
      beats = i.heartbeats();
      last_beat = now;
      misses_at_last_beat = i.heartbeat_misses();
    }
    if (!stopping_at && i.state() == State::stopping) stopping_at = now;
    return stopping_at.has_value();
  }
};

// Program settings shared by the tests that restart: quick, and never fatal
// within a test.
constexpr const char* kQuick =
    "restart_delay = \"50ms\"\nmin_uptime = \"100ms\"\nmax_restarts = 10\n"
    "log_timestamps = false\n";

// ---------------------------------------------------------------------------
// Hang detection

TEST_F(HeartbeatTest, ChildThatStopsBeatingIsRestartedAsHung) {
  // Beats every 100 ms for 700 ms, then lives on in silence.
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("quiet", {"--beat", "100", "--beat-for", "700"}, kQuick) +
      heartbeat_section("quiet", "200ms", 3, "1s")));
  Instance& i = vigil().instance("quiet");
  ASSERT_TRUE(vigil().run_until([&] { return i.pid() > 0; }));
  const pid_t first = i.pid();

  Watcher w(i);
  ASSERT_TRUE(vigil().run_until(std::ref(w))) << "never declared hung\n" << vigil().log_text();
  ASSERT_TRUE(w.last_beat.has_value());
  EXPECT_GE(i.heartbeats(), 3u) << "it did beat before going silent";

  // Hung = 3 missed intervals of 200 ms after the last heartbeat.
  const auto detection = ms_between(*w.last_beat, *w.stopping_at);
  EXPECT_GE(detection, 500) << "declared hung too early";
  EXPECT_LE(detection, 600 + 500) << "declared hung too late";
  EXPECT_EQ(i.heartbeat_misses() - w.misses_at_last_beat, 3u) << "a hang costs exactly `misses`";

  ASSERT_TRUE(vigil().run_until([&] { return i.pid() > 0 && i.pid() != first; }))
      << "state " << to_string(i.state());
  EXPECT_EQ(restarts(i, RestartReason::hung), 1u);
  EXPECT_EQ(i.counters().total_restarts(), 1u);
  EXPECT_EQ(i.last_restart_reason(), RestartReason::hung);
  ASSERT_TRUE(i.last_exit().has_value());
  EXPECT_TRUE(i.last_exit()->signaled);
  EXPECT_EQ(i.last_exit()->signal, SIGTERM) << "stopped with stop_signal";
  EXPECT_TRUE(process_gone(first));
  EXPECT_NE(vigil().log_text().find("program quiet: hung: no heartbeat for 600ms"),
            std::string::npos)
      << vigil().log_text();
}

TEST_F(HeartbeatTest, WatchdogTriggerRestartsAtOnce) {
  // A long interval and grace: no deadline could fire within this test, so
  // a restart as hung can only come from the child's own WATCHDOG=trigger.
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("self_aware", {"--notify-at", "300", "WATCHDOG=trigger"}, kQuick) +
      heartbeat_section("self_aware", "10s", 3, "10s")));
  Instance& i = vigil().instance("self_aware");
  ASSERT_TRUE(vigil().run_until([&] { return i.pid() > 0; }));
  const auto started = i.start_steady();
  const pid_t first = i.pid();

  Watcher w(i);
  ASSERT_TRUE(vigil().run_until(std::ref(w), 10s)) << vigil().log_text();
  const auto after = ms_between(started, *w.stopping_at);
  // The child counts its 300ms from its own start, which comes before
  // vigil notes the start: vigil resumes only after the exec, and on a
  // loaded machine some ms later (seen: 294).
  EXPECT_GE(after, 200);
  EXPECT_LE(after, 300 + 1500) << "not at once";
  EXPECT_EQ(i.heartbeat_misses(), 0u);
  EXPECT_NE(vigil().log_text().find("program self_aware: declared itself hung (WATCHDOG=trigger)"),
            std::string::npos)
      << vigil().log_text();

  ASSERT_TRUE(vigil().run_until([&] { return i.pid() > 0 && i.pid() != first; }));
  EXPECT_EQ(restarts(i, RestartReason::hung), 1u);
  EXPECT_EQ(i.last_restart_reason(), RestartReason::hung);
}

// ---------------------------------------------------------------------------
// What a child gets

TEST_F(HeartbeatTest, ChildGetsHeartbeatFdNotifySocketAndWatchdogVariables) {
  const fs::path pids = dir_ / "pids";
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("envy",
                     {"--pidfile", pids.string(), "--print-env", "--print-fds", "--print-fd3",
                      "--print", "done"},
                     "log_timestamps = false\nrestart = \"never\"") +
      heartbeat_section("envy", "250ms", 3, "30s")));
  Instance& i = vigil().instance("envy");
  auto lines = wait_for_line(vigil(), vigil().log_path("envy"), "done");
  ASSERT_TRUE(has_line(lines, "done")) << read_file(vigil().log_path("envy"));
  ASSERT_EQ(read_pids(pids).size(), 1u);
  const pid_t pid = read_pids(pids)[0];
  EXPECT_EQ(pid, i.pid());

  EXPECT_TRUE(has_line(lines, "fds: 0 1 2 3"));
  EXPECT_TRUE(has_line(lines, "fd3: pipe"));
  EXPECT_EQ(value_after(lines, "VIGIL_HEARTBEAT_FD="), "3");
  EXPECT_EQ(value_after(lines, "NOTIFY_SOCKET="), i.notify_socket_path().string());
  EXPECT_TRUE(fs::is_socket(i.notify_socket_path())) << i.notify_socket_path();
  EXPECT_EQ(value_after(lines, "WATCHDOG_USEC="), "250000") << "the interval in microseconds";
  EXPECT_EQ(value_after(lines, "WATCHDOG_PID="), std::to_string(pid)) << "the child's own pid";
}

TEST_F(HeartbeatTest, WithoutHeartbeatTheChildGetsTheTransportsButNoWatchdog) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "plain", {"--print-env", "--print-fd3", "--print", "done"},
      "log_timestamps = false\nrestart = \"never\"")));
  Instance& i = vigil().instance("plain");
  auto lines = wait_for_line(vigil(), vigil().log_path("plain"), "done");
  ASSERT_TRUE(has_line(lines, "done")) << read_file(vigil().log_path("plain"));

  EXPECT_TRUE(has_line(lines, "fd3: pipe"));
  EXPECT_EQ(value_after(lines, "VIGIL_HEARTBEAT_FD="), "3");
  EXPECT_EQ(value_after(lines, "NOTIFY_SOCKET="), i.notify_socket_path().string());
  EXPECT_EQ(value_after(lines, "WATCHDOG_USEC="), std::nullopt);
  EXPECT_EQ(value_after(lines, "WATCHDOG_PID="), std::nullopt);
}

TEST_F(HeartbeatTest, NotifySocketsAreRemovedWithTheSupervisor) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program("one", {}, "instances = 2") +
                                      helper_program("two", {})));
  ASSERT_TRUE(vigil().run_until([&] {
    return vigil().instance("one", 0).pid() > 0 && vigil().instance("one", 1).pid() > 0 &&
           vigil().instance("two").pid() > 0;
  }));
  const fs::path runtime = vigil().supervisor().runtime_dir();
  std::vector<fs::path> sockets;
  for (Instance* i : {&vigil().instance("one", 0), &vigil().instance("one", 1),
                      &vigil().instance("two")}) {
    sockets.push_back(i->notify_socket_path());
    EXPECT_TRUE(fs::is_socket(sockets.back())) << sockets.back();
    EXPECT_EQ(sockets.back().parent_path(), runtime);
  }
  std::sort(sockets.begin(), sockets.end());
  EXPECT_EQ(std::unique(sockets.begin(), sockets.end()), sockets.end()) << "one per instance";

  vigil_.reset();
  EXPECT_FALSE(fs::exists(runtime)) << runtime << " is left behind";
  for (const auto& s : sockets) EXPECT_FALSE(fs::exists(s)) << s;
}

using HeartbeatBinaryTest = BinaryTest;

TEST_F(HeartbeatBinaryTest, RuntimeDirIsRemovedWhenVigilExits) {
  // The notify sockets live in $XDG_RUNTIME_DIR/vigil.PID.XXXXXX: here, in
  // the test's own folder.
  const fs::path runtime_base = dir_ / "run";
  fs::create_directories(runtime_base);
  std::optional<ScopedEnv> xdg;
  xdg.emplace("XDG_RUNTIME_DIR", runtime_base.string());
  const fs::path pids = dir_ / "pids";
  VigilProcess& vigil = run_vigil_with(
      helper_program("a", {"--pidfile", pids.string()}, "instances = 2") +
      helper_program("b", {"--pidfile", pids.string()}));
  xdg.reset();
  // Every instance has run, so every socket (made before its spawn) exists.
  ASSERT_TRUE(poll_until([&] { return read_pids(pids).size() == 3; })) << vigil.output();
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(runtime_base)) dirs.push_back(e.path());
  ASSERT_EQ(dirs.size(), 1u);
  EXPECT_EQ(dirs[0].filename().string().rfind("vigil." + std::to_string(vigil.pid()) + ".", 0), 0u)
      << dirs[0];
  int sockets = 0;
  for (const auto& e : fs::directory_iterator(dirs[0])) sockets += e.is_socket() ? 1 : 0;
  EXPECT_EQ(sockets, 3) << "one notify socket per instance";

  vigil.signal(SIGTERM);
  ASSERT_EQ(vigil.wait_exit(), 0) << vigil.output();
  EXPECT_FALSE(fs::exists(dirs[0])) << dirs[0] << " is left behind";
}

// ---------------------------------------------------------------------------
// Readiness

TEST_F(HeartbeatTest, ReadyNotifyHoldsDependentsUntilReady) {
  // a says READY=1 after 600 ms; with ready = "uptime" it would count as
  // running after its 100 ms min_uptime.
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("a", {"--notify-at", "600", "READY=1"},
                     "ready = \"notify\"\nstart_timeout = \"20s\"\nmin_uptime = \"100ms\"") +
      helper_program("b", {}, "min_uptime = \"100ms\"\nafter = [\"a\"]")));
  Instance& a = vigil().instance("a");
  Instance& b = vigil().instance("b");

  // a becomes running and b is started in the same loop turn, so on every
  // turn: b has started only if a runs.
  bool early = false;
  std::optional<SteadyClock::time_point> a_running;
  ASSERT_TRUE(vigil().run_until([&] {
    if (b.spawns() > 0 && a.state() != State::running) early = true;
    if (!a_running && a.state() == State::running) a_running = SteadyClock::now();
    return b.state() == State::running;
  })) << vigil().log_text();
  EXPECT_FALSE(early) << "b started before a said READY=1";
  ASSERT_TRUE(a_running.has_value());
  EXPECT_GE(ms_between(a.start_steady(), *a_running), 600) << "running before READY=1";
  EXPECT_GE(ms_between(a.start_steady(), b.start_steady()), 600);
  EXPECT_LE(ms_between(a.start_steady(), b.start_steady()), 600 + 1500);
  EXPECT_EQ(a.spawns(), 1);
  EXPECT_EQ(b.spawns(), 1);
  EXPECT_NE(vigil().log_text().find("program a: ready"), std::string::npos);
}

TEST_F(HeartbeatTest, NeverReadyIsRestartedAfterStartTimeout) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "sluggish", {}, std::string(kQuick) + "ready = \"notify\"\nstart_timeout = \"500ms\"")));
  Instance& i = vigil().instance("sluggish");
  ASSERT_TRUE(vigil().run_until([&] { return i.pid() > 0; }));
  const auto started = i.start_steady();
  const pid_t first = i.pid();

  Watcher w(i);
  ASSERT_TRUE(vigil().run_until(std::ref(w))) << vigil().log_text();
  EXPECT_EQ(i.spawns(), 1) << "it never was running";
  const auto after = ms_between(started, *w.stopping_at);
  EXPECT_GE(after, 500 - 20);
  EXPECT_LE(after, 500 + 700);

  ASSERT_TRUE(vigil().run_until([&] { return i.pid() > 0 && i.pid() != first; }));
  EXPECT_EQ(restarts(i, RestartReason::start_timeout), 1u);
  EXPECT_EQ(i.counters().total_restarts(), 1u);
  EXPECT_EQ(i.last_restart_reason(), RestartReason::start_timeout);
  EXPECT_EQ(i.state(), State::starting);
  EXPECT_NE(vigil().log_text().find(
                "program sluggish: not ready (READY=1) within start_timeout 500ms; restarting"),
            std::string::npos)
      << vigil().log_text();
}

// ---------------------------------------------------------------------------
// What the child says

TEST_F(HeartbeatTest, StatusAndMemoryAreKept) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "talker", {"--notify", "STATUS=serving 3 requests", "--notify", "MEMORY=123456789"})));
  Instance& i = vigil().instance("talker");
  ASSERT_TRUE(vigil().run_until([&] { return i.reported_memory().has_value(); }))
      << vigil().log_text();
  EXPECT_EQ(i.status_text(), "serving 3 requests");
  EXPECT_EQ(i.reported_memory(), 123456789u);
  const auto snap = i.snapshot();
  EXPECT_EQ(snap.status_text, "serving 3 requests");
  EXPECT_EQ(snap.reported_memory_bytes, 123456789u);
  EXPECT_EQ(i.notify_counts().protocol_errors, 0u);
}

// Garbage first, then heartbeats every 100 ms with an interval of 200 ms:
// the garbage is counted, vigil keeps reading, and the beats keep counting
// for 10 more (5 intervals) without a hang.
void expect_garbage_is_survived(InProcessVigil& vigil, std::uint64_t expected_errors) {
  Instance& i = vigil.instance("noisy");
  ASSERT_TRUE(vigil.run_until([&] { return i.notify_counts().protocol_errors >= expected_errors; }))
      << "errors " << i.notify_counts().protocol_errors << "\n" << vigil.log_text();
  const auto beats = i.heartbeats();
  ASSERT_TRUE(vigil.run_until([&] { return i.heartbeats() >= beats + 10; })) << vigil.log_text();
  EXPECT_EQ(i.notify_counts().protocol_errors, expected_errors);
  EXPECT_EQ(i.state(), State::running);
  EXPECT_EQ(i.spawns(), 1);
  EXPECT_EQ(restarts(i, RestartReason::hung), 0u);
  EXPECT_EQ(i.snapshot().protocol_errors,
            expected_errors);
}

TEST_F(HeartbeatTest, GarbageOnFd3IsCountedAndBeatsGoOn) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("noisy", {"--garbage", "--beat", "100"}, kQuick) +
      heartbeat_section("noisy", "200ms", 3, "1s")));
  // Binary junk, 10 KiB line, no '=', lower-case key.
  expect_garbage_is_survived(vigil(), 4);
}

TEST_F(HeartbeatTest, GarbageOnNotifySocketIsCountedAndBeatsGoOn) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("noisy", {"--via-socket", "--garbage", "--beat", "100"}, kQuick) +
      heartbeat_section("noisy", "200ms", 3, "1s")));
  // The same four, and a 20 KiB datagram.
  expect_garbage_is_survived(vigil(), 5);
}

// ---------------------------------------------------------------------------
// The Node and Python clients, with their demo apps

// A TCP connection to 127.0.0.1:port that sends `request` and stays open
// (the answer is never read); -1 on failure.
int send_http_request(int port, std::string_view request) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST_F(HeartbeatTest, NodeClientKeepsItAliveUntilItsLoopBlocks) {
  const fs::path app = source_dir() / "config" / "demo" / "node_app.js";
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      "[programs.web]\ncommand = " + toml_array({"node", app.string()}) + "\n" + kQuick +
      "ready = \"notify\"\nstart_timeout = \"20s\"\nstop_timeout = \"500ms\"\n"
      "env = { PORT = \"0\" }\n\n" +
      heartbeat_section("web", "200ms", 3, "10s")));
  Instance& i = vigil().instance("web");
  ASSERT_TRUE(vigil().wait_state("web", State::running)) << vigil().log_text();
  const pid_t first = i.pid();

  // WATCHDOG_USEC=200000: the client beats every 100 ms from node's loop.
  // 15 beats span 7 intervals; none of them may be missed enough to hang.
  Watcher w(i);  // from here on: when the last beat came, when vigil stops it
  ASSERT_TRUE(vigil().run_until([&] {
    w();
    return i.heartbeats() >= 15 || i.state() != State::running;
  })) << vigil().log_text();
  EXPECT_EQ(i.state(), State::running);
  EXPECT_EQ(i.spawns(), 1);
  EXPECT_EQ(restarts(i, RestartReason::hung), 0u);
  EXPECT_TRUE(i.status_text().starts_with("listening on ")) << i.status_text();

  // "node_app[0]: listening on http://127.0.0.1:PORT (heartbeat: fd)"
  std::optional<int> port;
  for (const auto& l : read_lines(vigil().log_path("web"))) {
    auto at = l.find("listening on http://127.0.0.1:");
    if (at == std::string::npos) continue;
    EXPECT_NE(l.find("(heartbeat: fd)"), std::string::npos) << l;
    port = std::stoi(l.substr(at + std::string_view("listening on http://127.0.0.1:").size()));
  }
  ASSERT_TRUE(port.has_value()) << read_file(vigil().log_path("web"));

  // Block node's event loop for 5 s: the beats stop, vigil sees it hung.
  const int conn = send_http_request(*port, "GET /block?ms=5000 HTTP/1.0\r\n\r\n");
  ASSERT_GE(conn, 0) << "cannot reach node_app on port " << *port;
  const bool hung = vigil().run_until(std::ref(w));
  ::close(conn);
  ASSERT_TRUE(hung) << vigil().log_text();
  // Its beats were what kept it alive: hung 3 intervals after the last one.
  ASSERT_TRUE(w.last_beat.has_value());
  EXPECT_GE(ms_between(*w.last_beat, *w.stopping_at), 500);
  EXPECT_LE(ms_between(*w.last_beat, *w.stopping_at), 600 + 500);
  ASSERT_TRUE(vigil().run_until([&] { return i.pid() > 0 && i.pid() != first; }))
      << vigil().log_text();
  EXPECT_EQ(restarts(i, RestartReason::hung), 1u);
  EXPECT_EQ(i.last_restart_reason(), RestartReason::hung);
}

TEST_F(HeartbeatTest, PythonClientKeepsItAliveUntilItStopsBeating) {
  const fs::path worker = source_dir() / "config" / "demo" / "python_worker.py";
  // The worker's loop beats (beat_if_due, every 100 ms) for 1.5 s, then
  // hangs on purpose without exiting.
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      "[programs.worker]\ncommand = " +
      toml_array({"python3", worker.string(), "--hang-after", "1.5"}) + "\n" + kQuick +
      "ready = \"notify\"\nstart_timeout = \"20s\"\nstop_timeout = \"5s\"\n\n" +
      heartbeat_section("worker", "200ms", 3, "10s")));
  Instance& i = vigil().instance("worker");
  ASSERT_TRUE(vigil().wait_state("worker", State::running)) << vigil().log_text();
  const pid_t first = i.pid();
  const auto running_at = SteadyClock::now();

  Watcher w(i);
  ASSERT_TRUE(vigil().run_until(std::ref(w))) << vigil().log_text();
  // Until the hang it was kept alive: several intervals, beats, no restart.
  EXPECT_GE(ms_between(running_at, *w.stopping_at), 1000) << "hung before --hang-after";
  EXPECT_GE(i.heartbeats(), 8u);
  EXPECT_EQ(i.spawns(), 1);
  EXPECT_EQ(i.counters().total_restarts(), 0u);
  EXPECT_NE(read_file(vigil().log_path("worker")).find("hanging now"), std::string::npos)
      << read_file(vigil().log_path("worker"));
  // Its beats were what kept it alive: hung 3 intervals after the last one.
  ASSERT_TRUE(w.last_beat.has_value());
  EXPECT_GE(ms_between(*w.last_beat, *w.stopping_at), 500);
  EXPECT_LE(ms_between(*w.last_beat, *w.stopping_at), 600 + 500);

  ASSERT_TRUE(vigil().run_until([&] { return i.pid() > 0 && i.pid() != first; }))
      << vigil().log_text();
  EXPECT_EQ(restarts(i, RestartReason::hung), 1u);
  EXPECT_EQ(i.last_restart_reason(), RestartReason::hung);
}

// When vigil is SIGKILLed a client exits by itself, through EPIPE on fd 3.
// The client runs as a grandchild behind `sh -c '... & wait'`: PDEATHSIG
// kills only the direct child (sh), and the lifeline (which would kill the
// whole tree) is SIGKILLed first, so nothing but the EPIPE path can end the
// client. Its stderr goes to a file, which must hold the client's "vigil is
// gone" line.
class ClientBinaryTest : public BinaryTest {
 protected:
  void expect_client_exits_when_vigil_dies(const std::string& client_command) {
    const fs::path pid_file = dir_ / "client.pid";
    const fs::path err_file = dir_ / "client.err";
    const std::string shell = client_command + " 2>" + err_file.string() + " & echo $! >" +
                              pid_file.string() + "; wait";
    VigilProcess& vigil =
        run_vigil_with("[programs.client]\ncommand = " + toml_string(shell) +
                       "\nready = \"notify\"\nstart_timeout = \"20s\"\n\n" +
                       heartbeat_section("client", "200ms", 3, "10s"));
    // READY=1 from the grandchild: it found fd 3 and vigil read it.
    ASSERT_TRUE(vigil.wait_for_output("program client: ready")) << vigil.output();
    ASSERT_TRUE(poll_until([&] { return read_pids(pid_file).size() == 1; }));
    const pid_t client = read_pids(pid_file)[0];
    ASSERT_FALSE(process_dead(client));

    const std::string out = vigil.output();
    const auto at = out.find("lifeline: pid ");
    ASSERT_NE(at, std::string::npos) << out;
    const pid_t lifeline = std::stoi(out.substr(at + 14));
    ::kill(lifeline, SIGKILL);
    ASSERT_TRUE(poll_until([&] { return process_dead(lifeline); }, 10s));
    vigil.signal(SIGKILL);
    ASSERT_EQ(vigil.wait_exit(), 128 + SIGKILL);
    // It beats every 100 ms: the next beat meets EPIPE.
    EXPECT_TRUE(poll_until([&] { return process_dead(client); }, 10s))
        << "client pid " << client << " outlived vigil";
    EXPECT_NE(read_file(err_file).find("vigil is gone (EPIPE on heartbeat fd); exiting"),
              std::string::npos)
        << read_file(err_file);
    if (!process_dead(client)) ::kill(client, SIGKILL);
  }
};

TEST_F(ClientBinaryTest, PythonClientExitsWhenVigilIsKilled) {
  const fs::path worker = source_dir() / "config" / "demo" / "python_worker.py";
  expect_client_exits_when_vigil_dies("python3 " + worker.string());
}

TEST_F(ClientBinaryTest, NodeClientExitsWhenVigilIsKilled) {
  const fs::path app = source_dir() / "config" / "demo" / "node_app.js";
  expect_client_exits_when_vigil_dies("PORT=0 node " + app.string());
}

}  // namespace
}  // namespace vigil::it
