// Probes end to end, against real servers nobody here wrote: nginx
// supervised with an http probe is restarted (reason probe) when its
// processes are alive but hung (SIGSTOP), and serves again; redis-server
// with a tcp probe and an exec probe (redis-cli ping), the exec probe
// catching a hang the tcp one cannot see. Also: a probe whose server never
// answers costs the other children no heartbeat, and an exec probe that
// hangs is killed at its timeout and leaves no process. Tests whose server
// is not installed say so and skip (scripts/deps.sh installs them).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "harness.h"
#include "metrics_client.h"

namespace vigil::it {
namespace {

using ProbeServersTest = InProcessTest;
using metrics_client::free_loopback_port;
using metrics_client::http_get;

std::optional<std::string> find_binary(const char* name) {
  for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/usr/local/sbin/", "/usr/local/bin/"}) {
    std::string path = std::string(dir) + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return std::nullopt;
}

std::uint64_t restarts(const Instance& i, RestartReason r) {
  return i.counters().restarts[static_cast<std::size_t>(r)];
}

std::uint64_t probe_failures(const Instance& i, ProbeFailure kind) {
  auto s = i.snapshot();
  return s.probe ? s.probe->failures[static_cast<std::size_t>(kind)] : 0;
}

bool probe_passed(const Instance& i) {
  auto s = i.snapshot();
  return s.probe && s.probe->success == true;
}

// Every process of the group led by `pgid`.
void signal_group(pid_t pgid, int sig) { ::kill(-pgid, sig); }

// Pids whose command line starts with `prefix` (to find leftovers).
std::vector<pid_t> processes_named(std::string_view prefix) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.empty() || name[0] < '0' || name[0] > '9') continue;
    std::string cmdline = read_file(e.path() / "cmdline");
    for (char& c : cmdline)
      if (c == '\0') c = ' ';
    if (std::string_view(cmdline).starts_with(prefix) && !process_dead(std::stoi(name)))
      out.push_back(std::stoi(name));
  }
  return out;
}

// ---------------------------------------------------------------------------
// nginx

std::string nginx_conf(const TempDir& dir) {
  const std::string d = dir.path().string();
  return "worker_processes 1;\n"
         "pid " + d + "/nginx.pid;\n"
         "error_log " + d + "/nginx-error.log;\n"
         "events { worker_connections 64; }\n"
         "http {\n"
         "  access_log off;\n"
         "  client_body_temp_path " + d + "/client;\n"
         "  proxy_temp_path " + d + "/proxy;\n"
         "  fastcgi_temp_path " + d + "/fastcgi;\n"
         "  uwsgi_temp_path " + d + "/uwsgi;\n"
         "  scgi_temp_path " + d + "/scgi;\n"
         "  server {\n"
         "    listen 127.0.0.1:@PORT@;\n"
         "    location /health { return 200 \"ok\\n\"; }\n"
         "  }\n"
         "}\n";
}

TEST_F(ProbeServersTest, HungNginxIsRestartedForItsProbeAndServesAgain) {
  auto nginx = find_binary("nginx");
  if (!nginx) GTEST_SKIP() << "nginx is not installed (scripts/deps.sh installs it)";
  const std::uint16_t port = free_loopback_port();
  ASSERT_NE(port, 0);
  std::string conf = nginx_conf(dir_);
  conf.replace(conf.find("@PORT@"), 6, std::to_string(port));
  const fs::path conf_path = dir_.write("nginx.conf", conf);

  ASSERT_NO_FATAL_FAILURE(start_vigil(
      "[programs.nginx]\n"
      "command = " + toml_array({*nginx, "-p", dir_.path().string(), "-c", conf_path.string(),
                                 "-g", "daemon off;"}) + "\n"
      "port_base = " + std::to_string(port) + "\n"
      "restart_delay = \"50ms\"\n"
      "stop_timeout = \"1s\"\n"
      "log_timestamps = false\n"
      "[programs.nginx.probe]\n"
      "http = \"http://127.0.0.1:{port}/health\"\n"
      "expect_body = \"ok\"\n"
      "interval = \"200ms\"\n"
      "timeout = \"300ms\"\n"
      "failures = 3\n"
      "initial_delay = \"0s\"\n"));
  Instance& i = vigil().instance("nginx");
  ASSERT_TRUE(vigil().run_until([&] { return probe_passed(i); })) << vigil().log_text();
  const pid_t first = i.pid();
  ASSERT_TRUE(http_get(port, "/health")) << "nginx serves";

  // Alive but hung: every process of the group stopped.
  signal_group(first, SIGSTOP);
  ASSERT_TRUE(vigil().run_until([&] { return restarts(i, RestartReason::probe) == 1; }))
      << vigil().log_text();
  EXPECT_GE(probe_failures(i, ProbeFailure::timeout), 3u);
  EXPECT_TRUE(vigil().wait_for_log("program nginx: probe failed 3 times in a row (no answer within 300ms); restarting"))
      << vigil().log_text();
  ASSERT_TRUE(vigil().run_until([&] { return i.pid() > 0 && i.pid() != first && probe_passed(i); }))
      << vigil().log_text();
  auto reply = http_get(port, "/health");
  ASSERT_TRUE(reply) << "the new nginx serves";
  EXPECT_EQ(reply->status, 200);
  EXPECT_TRUE(process_dead(first)) << "the stopped master was killed, not left behind";
}

// ---------------------------------------------------------------------------
// redis

std::string redis_program(const std::string& server, std::uint16_t port, const TempDir& dir,
                          std::string_view probe) {
  return "[programs.redis]\n"
         "command = " + toml_array({server, "--port", std::to_string(port), "--bind", "127.0.0.1",
                                    "--appendonly", "no", "--dir", dir.path().string()}) + "\n"
         "port_base = " + std::to_string(port) + "\n"
         "restart_delay = \"50ms\"\n"
         "stop_timeout = \"1s\"\n"
         "log_timestamps = false\n"
         "[programs.redis.probe]\n" + std::string(probe);
}

TEST_F(ProbeServersTest, RedisWithATcpProbeIsReadyOnItsFirstPass) {
  auto server = find_binary("redis-server");
  if (!server) GTEST_SKIP() << "redis-server is not installed (scripts/deps.sh installs it)";
  const std::uint16_t port = free_loopback_port();
  std::string toml = redis_program(*server, port, dir_,
                                   "tcp = \"127.0.0.1:{port}\"\ninterval = \"100ms\"\n"
                                   "initial_delay = \"0s\"\n");
  toml.insert(toml.find("restart_delay"), "ready = \"probe\"\n");
  ASSERT_NO_FATAL_FAILURE(start_vigil(toml));
  Instance& i = vigil().instance("redis");
  ASSERT_TRUE(vigil().wait_state("redis", State::running)) << vigil().log_text();
  EXPECT_TRUE(probe_passed(i));
  EXPECT_TRUE(vigil().wait_for_log("program redis: ready (probe passed)"));
  // Probes before redis listened may have been refused: that is what
  // ready = "probe" waits out. Once running, every probe passes.
  const auto refused_while_starting = probe_failures(i, ProbeFailure::refused);
  const auto count_at_ready = i.snapshot().probe->count;
  ASSERT_TRUE(vigil().run_until([&] { return i.snapshot().probe->count >= count_at_ready + 5; }));
  EXPECT_EQ(probe_failures(i, ProbeFailure::refused), refused_while_starting);
  for (ProbeFailure kind : {ProbeFailure::timeout, ProbeFailure::status, ProbeFailure::body,
                            ProbeFailure::exec})
    EXPECT_EQ(probe_failures(i, kind), 0u) << to_string(kind);
  EXPECT_TRUE(probe_passed(i));
  EXPECT_EQ(i.counters().total_restarts(), 0u);
}

TEST_F(ProbeServersTest, RedisCliPingCatchesAHangTheTcpHandshakeHides) {
  auto server = find_binary("redis-server");
  auto cli = find_binary("redis-cli");
  if (!server || !cli) GTEST_SKIP() << "redis-server/redis-cli are not installed (scripts/deps.sh)";
  const std::uint16_t port = free_loopback_port();
  std::string toml = redis_program(
      *server, port, dir_,
      "exec = " + toml_array({*cli, "-p", "{port}", "ping"}) + "\n"
      "interval = \"200ms\"\ntimeout = \"500ms\"\nfailures = 2\ninitial_delay = \"0s\"\n");
  ASSERT_NO_FATAL_FAILURE(start_vigil(toml));
  Instance& i = vigil().instance("redis");
  ASSERT_TRUE(vigil().run_until([&] { return probe_passed(i); })) << vigil().log_text();
  const pid_t first = i.pid();
  // Probes refused while redis was still starting may already have
  // restarted it once (a loaded machine): count from here.
  const auto restarts_before = restarts(i, RestartReason::probe);
  const auto timeouts_before = probe_failures(i, ProbeFailure::timeout);

  // The kernel still completes TCP handshakes for a stopped server: only a
  // real request notices.
  signal_group(first, SIGSTOP);
  ASSERT_TRUE(vigil().run_until(
      [&] { return restarts(i, RestartReason::probe) == restarts_before + 1; }))
      << vigil().log_text();
  EXPECT_GE(probe_failures(i, ProbeFailure::timeout), timeouts_before + 2);
  ASSERT_TRUE(vigil().run_until([&] { return i.pid() != first && probe_passed(i); }))
      << vigil().log_text();
  // Every redis-cli vigil killed at its timeout is gone and reaped.
  EXPECT_TRUE(vigil().run_until([&] { return processes_named(*cli + " -p").empty(); }, 5s));
}

// ---------------------------------------------------------------------------
// What a probe must never do to the rest

TEST_F(ProbeServersTest, AServerThatNeverAnswersCostsOtherChildrenNoHeartbeat) {
  // Accepted by the kernel's backlog, never read: each probe times out.
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(listener.get(), 64), 0);
  socklen_t len = sizeof sa;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  const int port = ntohs(sa.sin_port);

  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("mute", {"--stay"},
                     "log_timestamps = false\nport_base = " + std::to_string(port) + "\n") +
      "[programs.mute.probe]\nhttp = \"http://127.0.0.1:{port}/\"\ninterval = \"100ms\"\n"
      "timeout = \"200ms\"\nfailures = 1000\ninitial_delay = \"0s\"\n\n" +
      helper_program("beating", {"--beat", "20"}, "log_timestamps = false\n") +
      "[programs.beating.heartbeat]\ninterval = \"100ms\"\nmisses = 2\ngrace = \"1s\"\n"));
  Instance& mute = vigil().instance("mute");
  Instance& beating = vigil().instance("beating");
  ASSERT_TRUE(vigil().run_until([&] { return probe_failures(mute, ProbeFailure::timeout) >= 5; }))
      << vigil().log_text();
  EXPECT_EQ(beating.heartbeat_misses(), 0u) << "the loop never waited for the mute server";
  EXPECT_EQ(beating.counters().total_restarts(), 0u);
  EXPECT_GT(beating.heartbeats(), 20u);
  EXPECT_EQ(mute.counters().total_restarts(), 0u) << "1000 failures allowed";
}

TEST_F(ProbeServersTest, AnExecProbeThatHangsIsKilledAtItsTimeoutWithItsChildren) {
  const fs::path pids = dir_ / "probe.pids";
  const std::string script =
      "echo $$ >> " + pids.string() + "; sleep 300 & echo $! >> " + pids.string() + "; wait";
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("app", {"--stay"}, "log_timestamps = false\n") +
      "[programs.app.probe]\nexec = " + toml_array({"/bin/sh", "-c", script}) + "\n"
      "interval = \"300ms\"\ntimeout = \"200ms\"\nfailures = 1000\ninitial_delay = \"0s\"\n"));
  Instance& app = vigil().instance("app");
  ASSERT_TRUE(vigil().run_until([&] { return probe_failures(app, ProbeFailure::timeout) >= 2; }))
      << vigil().log_text();
  auto all = read_pids(pids);
  ASSERT_GE(all.size(), 2u);
  // The first probe's shell and its sleep are gone (and reaped) by now.
  EXPECT_TRUE(vigil().run_until([&] { return process_gone(all[0]) && process_gone(all[1]); }, 5s))
      << "probe processes left behind";
}

}  // namespace
}  // namespace vigil::it
