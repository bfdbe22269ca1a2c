// Probe on a real loop, real sockets, real processes: HTTP verdicts from a
// loopback server on the same loop, timeouts while the loop keeps turning,
// refused connections, tcp, exec (exit, output, cwd/env/{port}, a process
// tree killed at its timeout and reaped), cancel() for each kind, a Probe
// destroyed or rerun inside `done`. Every wait is the loop run until a condition.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "harness.h"
#include "probe.h"
#include "reaper.h"

namespace vigil::it {
namespace {

using namespace std::string_literals;

// A loopback TCP server on the test's loop. Each connection reads the
// request head, then answers as set: a fixed reply (closing after it, or
// keeping the connection open), one byte of it per `drip` interval, or
// nothing at all.
class TestServer {
 public:
  struct Conn {
    UniqueFd fd;
    std::unique_ptr<IoEvent> readable;
    std::unique_ptr<IoEvent> writable;
    std::unique_ptr<Timer> drip;
    std::string request;
    std::string out;
    std::size_t out_at = 0;
    bool answering = false;
    bool peer_closed = false;  // EOF or reset from the probe's side
  };

  explicit TestServer(EventLoop& loop) : loop_(loop) {
    listener_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    EXPECT_TRUE(listener_) << std::strerror(errno);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0) << std::strerror(errno);
    EXPECT_EQ(::listen(listener_.get(), 16), 0);
    socklen_t len = sizeof sa;
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    accept_ = std::make_unique<IoEvent>(loop_, listener_.get(), EV_READ, [this](short) { on_accept(); });
    accept_->enable();
  }

  std::uint16_t port() const { return port_; }
  std::string url(std::string_view path = "/health") const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  void reply(std::string text, bool close_after = true) {
    reply_ = std::move(text);
    close_after_ = close_after;
  }
  void silent() { silent_ = true; }
  void drip(Duration every) { drip_ = every; }

  std::size_t accepted() const { return conns_.size(); }
  Conn& conn(std::size_t i) { return *conns_.at(i); }

 private:
  void on_accept() {
    for (;;) {
      UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd) return;
      auto c = std::make_unique<Conn>();
      Conn* conn = c.get();
      c->fd = std::move(fd);
      c->readable = std::make_unique<IoEvent>(loop_, c->fd.get(), EV_READ, [this, conn](short) { on_read(*conn); });
      c->writable = std::make_unique<IoEvent>(loop_, c->fd.get(), EV_WRITE, [this, conn](short) { on_write(*conn); });
      c->readable->enable();
      conns_.push_back(std::move(c));
    }
  }

  void on_read(Conn& c) {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
      if (n > 0) {
        c.request.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EAGAIN) break;
      c.peer_closed = true;
      c.readable->disable();
      c.writable->disable();
      if (c.drip) c.drip->cancel();
      return;
    }
    if (c.answering || silent_ || c.request.find("\r\n\r\n") == std::string::npos) return;
    c.answering = true;
    if (drip_.count() > 0) {
      c.drip = std::make_unique<Timer>(loop_, [this, &c] {
        if (c.out_at >= reply_.size() || c.peer_closed) return;
        if (::send(c.fd.get(), reply_.data() + c.out_at, 1, MSG_NOSIGNAL) == 1) ++c.out_at;
        c.drip->arm(drip_);
      });
      c.drip->arm(drip_);
      return;
    }
    c.out = reply_;
    c.writable->enable();
  }

  void on_write(Conn& c) {
    while (c.out_at < c.out.size()) {
      const ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_at, c.out.size() - c.out_at, MSG_NOSIGNAL);
      if (n > 0) {
        c.out_at += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EAGAIN) return;
      c.peer_closed = true;  // the probe had its verdict and closed
      c.writable->disable();
      return;
    }
    c.writable->disable();
    if (close_after_) ::shutdown(c.fd.get(), SHUT_WR);
  }

  EventLoop& loop_;
  UniqueFd listener_;
  std::uint16_t port_ = 0;
  std::unique_ptr<IoEvent> accept_;
  std::deque<std::unique_ptr<Conn>> conns_;
  std::string reply_ = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  bool close_after_ = true;
  bool silent_ = false;
  Duration drip_{0};
};

// A port nothing listens on: bound once, then closed.
std::uint16_t closed_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t len = sizeof sa;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

ProbeConfig http_probe(std::string url, Duration timeout = 5s) {
  ProbeConfig c;
  c.kind = ProbeKind::http;
  c.target = std::move(url);
  c.timeout = timeout;
  return c;
}

ProbeConfig tcp_probe(std::string address, Duration timeout = 5s) {
  ProbeConfig c;
  c.kind = ProbeKind::tcp;
  c.target = std::move(address);
  c.timeout = timeout;
  return c;
}

ProbeConfig exec_probe(std::vector<std::string> command, Duration timeout = 10s) {
  ProbeConfig c;
  c.kind = ProbeKind::exec;
  c.command = std::move(command);
  c.timeout = timeout;
  return c;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s, '\0');
  return s;
}

// Every process descending from this one: (pid, command name).
std::vector<std::pair<pid_t, std::string>> descendants() {
  std::vector<std::pair<pid_t, std::string>> out;
  std::vector<pid_t> todo{::getpid()};
  while (!todo.empty()) {
    const pid_t parent = todo.back();
    todo.pop_back();
    for (pid_t child : child_pids(parent)) {
      std::string comm = read_text("/proc/" + std::to_string(child) + "/comm");
      if (!comm.empty() && comm.back() == '\n') comm.pop_back();
      out.emplace_back(child, comm);
      todo.push_back(child);
    }
  }
  return out;
}

// The sleeps of `sh -c 'sleep 100 & sleep 100'` among them, and sh when
// it did not exec the second one itself.
std::vector<pid_t> sleep_tree() {
  std::vector<pid_t> out;
  std::size_t sleeps = 0;
  for (const auto& [pid, name] : descendants()) {
    if (name == "sleep" || name == "sh") out.push_back(pid);
    sleeps += name == "sleep";
  }
  return sleeps >= 2 ? out : std::vector<pid_t>{};
}

bool no_such_process(pid_t pid) {
  return process_gone(pid) && !fs::exists("/proc/" + std::to_string(pid));
}

class ProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    old_sigpipe_ = ::signal(SIGPIPE, SIG_IGN);
    // As vigil is: descendants of an exec probe that outlive their parent
    // are re-parented here and reaped by the Reaper.
    ::prctl(PR_GET_CHILD_SUBREAPER, &old_subreaper_);
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    loop_ = std::make_unique<EventLoop>();
    reaper_ = std::make_unique<Reaper>(*loop_);
    for (const auto& [pid, name] : descendants()) before_.push_back(pid);
  }
  void TearDown() override {
    probe_.reset();
    server_.reset();
    // Nothing this test started may be left running or unreaped.
    std::vector<pid_t> left;
    EXPECT_TRUE(loop_->run_until(
        [&] {
          left.clear();
          for (const auto& [pid, name] : descendants())
            if (std::find(before_.begin(), before_.end(), pid) == before_.end()) left.push_back(pid);
          return left.empty();
        },
        kEventually))
        << "processes left behind, the first " << (left.empty() ? 0 : left.front());
    reaper_.reset();
    loop_.reset();
    ::prctl(PR_SET_CHILD_SUBREAPER, old_subreaper_);
    ::signal(SIGPIPE, old_sigpipe_);
    EXPECT_EQ(fds_.leaks(), "") << "fds opened during the test and still open";
  }

  TestServer& server() {
    if (!server_) server_ = std::make_unique<TestServer>(*loop_);
    return *server_;
  }
  Probe& make_probe(ProbeConfig config, std::optional<int> port = std::nullopt,
                    fs::path cwd = {}, std::vector<std::string> env = {}) {
    probe_ = std::make_unique<Probe>(*loop_, *reaper_, std::move(config), port, std::move(cwd),
                                     std::move(env));
    return *probe_;
  }
  // Starts a run that records its outcome.
  void start() {
    probe_->run([this](const ProbeOutcome& o) {
      ++calls_;
      outcome_ = o;
    });
  }
  // Runs the loop until the run in flight reported; its outcome.
  ProbeOutcome await() {
    EXPECT_TRUE(loop_->run_until([this] { return calls_ > 0; }, kEventually)) << "no outcome";
    return outcome_;
  }
  ProbeOutcome run_once() {
    start();
    EXPECT_EQ(calls_, 0) << "done ran inside run()";
    return await();
  }
  // Runs the loop for `d`, whatever happens: for checking that something
  // does NOT happen (a callback after cancel), never for synchronising.
  void run_for(Duration d) {
    loop_->run_until([] { return false; }, d);
  }

  FdLeakCheck fds_;
  TempDir dir_;
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<Reaper> reaper_;
  std::unique_ptr<TestServer> server_;
  std::unique_ptr<Probe> probe_;
  int calls_ = 0;
  ProbeOutcome outcome_;
  sighandler_t old_sigpipe_ = SIG_DFL;
  int old_subreaper_ = 0;
  std::vector<pid_t> before_;  // descendants of earlier tests, not this one's
};

void expect_failure(const ProbeOutcome& o, ProbeFailure kind, std::string_view detail_part) {
  EXPECT_FALSE(o.ok) << o.detail;
  EXPECT_STREQ(to_string(o.failure), to_string(kind)) << o.detail;
  EXPECT_NE(o.detail.find(detail_part), std::string::npos) << o.detail;
}

// ---------------------------------------------------------------------------
// http

TEST_F(ProbeTest, Http200PassesAndTheRequestIsAsSpecified) {
  server().reply("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  make_probe(http_probe("http://127.0.0.1:{port}/health?deep=1"), server().port());
  const ProbeOutcome o = run_once();
  EXPECT_TRUE(o.ok) << o.detail;
  EXPECT_EQ(o.detail, "HTTP 200");
  EXPECT_LT(o.took, 5s);
  ASSERT_EQ(server().accepted(), 1u);
  EXPECT_EQ(server().conn(0).request,
            "GET /health?deep=1 HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server().port()) +
                "\r\nUser-Agent: vigil-probe\r\nConnection: close\r\nAccept: */*\r\n\r\n");
  EXPECT_TRUE(loop_->run_until([&] { return server().conn(0).peer_closed; }, kEventually))
      << "the probe closed its socket";
  EXPECT_FALSE(probe_->in_flight());
}

TEST_F(ProbeTest, Http503FailsWithKindStatus) {
  server().reply("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
  make_probe(http_probe(server().url()));
  expect_failure(run_once(), ProbeFailure::status, "HTTP 503");
}

TEST_F(ProbeTest, ExpectStatus503PassesOn503) {
  server().reply("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
  ProbeConfig c = http_probe(server().url());
  c.expect_status = 503;
  make_probe(c);
  const ProbeOutcome o = run_once();
  EXPECT_TRUE(o.ok) << o.detail;
  server().reply("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  calls_ = 0;
  expect_failure(run_once(), ProbeFailure::status, "HTTP 200 (expected 503)");
}

TEST_F(ProbeTest, BodyPresentPassesAndAbsentFails) {
  server().reply("HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\nstate: running\r\n");
  ProbeConfig c = http_probe(server().url());
  c.expect_body = "running";
  make_probe(c);
  const ProbeOutcome o = run_once();
  EXPECT_TRUE(o.ok) << o.detail;

  server().reply("HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\nstate: stopped\r\n");
  calls_ = 0;
  expect_failure(run_once(), ProbeFailure::body, "HTTP 200 but the body lacks \"running\"");
}

TEST_F(ProbeTest, AMebibyteBodyIsJudgedOnItsFirst64KiB) {
  // Content-Length announces 1 MiB; the connection stays open after it, so
  // a probe that read to the end or waited for EOF would time out.
  const std::size_t size = 1u << 20;
  std::string body(size, 'x');
  body.replace(size - 7, 7, "running");
  server().reply("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n" + body,
                 /*close_after=*/false);
  ProbeConfig c = http_probe(server().url(), 10s);
  c.expect_body = "running";
  make_probe(c);
  const ProbeOutcome o = run_once();
  expect_failure(o, ProbeFailure::body, "HTTP 200 but the first 64 KiB of the body lack \"running\"");
  EXPECT_LT(o.took, 10s);

  // The same body with the word at its start passes as soon as it arrives.
  body.replace(0, 7, "running");
  server().reply("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n" + body, false);
  calls_ = 0;
  const ProbeOutcome p = run_once();
  EXPECT_TRUE(p.ok) << p.detail;
  ASSERT_EQ(server().accepted(), 2u);
  EXPECT_TRUE(loop_->run_until([&] { return server().conn(1).peer_closed; }, kEventually))
      << "the probe closed without reading the rest";
}

TEST_F(ProbeTest, ChunkedBodyOnAKeptOpenConnection) {
  server().reply(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nstate: \r\n4\r\nrunn\r\n3\r\ning\r\n0\r\n\r\n",
      /*close_after=*/false);
  ProbeConfig c = http_probe(server().url());
  c.expect_body = "running";
  make_probe(c);
  const ProbeOutcome o = run_once();
  EXPECT_TRUE(o.ok) << o.detail;

  server().reply("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nstopped\r\n0\r\n\r\n", false);
  calls_ = 0;
  const ProbeOutcome p = run_once();
  expect_failure(p, ProbeFailure::body, "lacks \"running\"");
  EXPECT_LT(p.took, 5s) << "the last chunk ended the body, not the timeout";
}

TEST_F(ProbeTest, SilentServerTimesOutWhileTheLoopKeepsTurning) {
  server().silent();
  constexpr Duration kTimeout = 1s;
  make_probe(http_probe(server().url(), kTimeout));
  // A 50 ms timer on the same loop: if the probe blocked the loop, its
  // gaps would grow to the probe's timeout.
  std::vector<SteadyTime> ticks;
  Timer tick(*loop_, [&] {
    ticks.push_back(SteadyClock::now());
    tick.arm(50ms);
  });
  tick.arm(50ms);
  const auto started = SteadyClock::now();
  const ProbeOutcome o = run_once();
  const auto elapsed = SteadyClock::now() - started;
  tick.cancel();
  expect_failure(o, ProbeFailure::timeout, "no answer within 1s");
  EXPECT_GE(o.took, kTimeout);
  EXPECT_LT(o.took, kTimeout + 2s);
  EXPECT_LT(elapsed, kTimeout + 2s);
  ASSERT_EQ(server().accepted(), 1u) << "connected, request sent, nothing came back";
  EXPECT_NE(server().conn(0).request.find("GET /health"), std::string::npos);
  ASSERT_GE(ticks.size(), 8u) << "the timer kept firing during the probe";
  Duration worst{0};
  for (std::size_t i = 1; i < ticks.size(); ++i)
    worst = std::max(worst, std::chrono::duration_cast<Duration>(ticks[i] - ticks[i - 1]));
  EXPECT_LT(worst, 400ms) << "the loop stalled";
  EXPECT_TRUE(loop_->run_until([&] { return server().conn(0).peer_closed; }, kEventually))
      << "the timed-out socket was closed";
}

TEST_F(ProbeTest, NothingListeningIsRefused) {
  make_probe(http_probe("http://127.0.0.1:" + std::to_string(closed_port()) + "/"));
  const ProbeOutcome o = run_once();
  expect_failure(o, ProbeFailure::refused, "connection refused (127.0.0.1:");
}

TEST_F(ProbeTest, DribblingServerTimesOut) {
  server().reply("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  server().drip(100ms);
  constexpr Duration kTimeout = 800ms;
  make_probe(http_probe(server().url(), kTimeout));
  const ProbeOutcome o = run_once();
  expect_failure(o, ProbeFailure::timeout, "answer incomplete after 800ms (");
  EXPECT_GE(o.took, kTimeout);
  EXPECT_LT(o.took, kTimeout + 2s);
}

TEST_F(ProbeTest, ServerClosingEarlyIsRefused) {
  server().reply("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
  ProbeConfig c = http_probe(server().url());
  c.expect_body = "running";
  make_probe(c);
  expect_failure(run_once(), ProbeFailure::refused, "closed 95 bytes before the end of the body");
}

TEST_F(ProbeTest, GarbageIsAStatusFailure) {
  server().reply("SSH-2.0-OpenSSH_9.6\r\n", /*close_after=*/false);
  make_probe(http_probe(server().url()));
  expect_failure(run_once(), ProbeFailure::status, "not an HTTP/1.x response: \"SSH-2.0-OpenSSH_9.6\"");
}

// ---------------------------------------------------------------------------
// tcp

TEST_F(ProbeTest, TcpConnectPasses) {
  server().silent();
  make_probe(tcp_probe("127.0.0.1:{port}"), server().port());
  const ProbeOutcome o = run_once();
  EXPECT_TRUE(o.ok) << o.detail;
  EXPECT_EQ(o.detail, "connected to 127.0.0.1:" + std::to_string(server().port()));
}

TEST_F(ProbeTest, TcpNothingListeningIsRefused) {
  make_probe(tcp_probe("localhost:" + std::to_string(closed_port())));
  expect_failure(run_once(), ProbeFailure::refused, "connection refused (localhost:");
}

TEST_F(ProbeTest, TcpOverIpv6) {
  UniqueFd listener(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  if (!listener || ::bind(listener.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    GTEST_SKIP() << "no IPv6 loopback here: " << std::strerror(errno);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  socklen_t len = sizeof sa;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  const std::string port = std::to_string(ntohs(sa.sin6_port));
  make_probe(tcp_probe("[::1]:" + port));
  const ProbeOutcome o = run_once();
  EXPECT_TRUE(o.ok) << o.detail;
  EXPECT_EQ(o.detail, "connected to [::1]:" + port);
}

TEST_F(ProbeTest, AnInvalidTargetFailsOffTheStackOfRun) {
  make_probe(tcp_probe("example.com:80"));
  expect_failure(run_once(), ProbeFailure::refused, "cannot probe \"example.com:80\"");
}

// ---------------------------------------------------------------------------
// exec

TEST_F(ProbeTest, ExecTruePasses) {
  make_probe(exec_probe({"true"}));
  const ProbeOutcome o = run_once();
  EXPECT_TRUE(o.ok) << o.detail;
}

TEST_F(ProbeTest, ExecFalseFails) {
  make_probe(exec_probe({"false"}));
  expect_failure(run_once(), ProbeFailure::exec, "exit status 1");
}

TEST_F(ProbeTest, ExecOutputIsInTheDetailAndBounded) {
  make_probe(exec_probe({"sh", "-c", "echo 'not ready:'; echo ' db down' >&2; exit 3"}));
  expect_failure(run_once(), ProbeFailure::exec, "exit status 3: not ready: db down");
  // A flood: the first 4 KiB are kept, the rest drained so the command
  // never blocks on a full pipe.
  make_probe(exec_probe({"sh", "-c", "head -c 2000000 /dev/zero | tr '\\0' y; exit 1"}));
  calls_ = 0;
  const ProbeOutcome o = run_once();
  expect_failure(o, ProbeFailure::exec, "exit status 1: yyyy");
  EXPECT_LE(o.detail.size(), std::string("exit status 1: ").size() + kMaxProbeOutputBytes + 3);
}

TEST_F(ProbeTest, ExecSignalIsNamed) {
  // TERM rather than SEGV: no core file, whatever the machine's settings.
  make_probe(exec_probe({"sh", "-c", "kill -TERM $$"}));
  expect_failure(run_once(), ProbeFailure::exec, "killed by SIGTERM");
}

TEST_F(ProbeTest, ExecGetsPortCwdEnvAndNoStdin) {
  const std::string script =
      "test \"$(pwd -P)\" = \"$1\" || { echo cwd $(pwd -P); exit 1; }; "
      "test \"$PROBE_VAR\" = yes || { echo env; exit 1; }; "
      "test \"$2\" = 4321 || { echo port $2; exit 1; }; "
      "read line && { echo stdin; exit 1; }; exit 0";
  const std::string cwd = fs::canonical(dir_.path()).string();
  make_probe(exec_probe({"sh", "-c", script, "sh", cwd, "{port}"}), 4321, cwd,
             {"PATH=/usr/bin:/bin", "PROBE_VAR=yes"});
  const ProbeOutcome o = run_once();
  EXPECT_TRUE(o.ok) << o.detail;
}

TEST_F(ProbeTest, ExecMissingBinaryFailsWithSpawnsMessage) {
  make_probe(exec_probe({"no-such-probe-command-vigil-it"}));
  expect_failure(run_once(), ProbeFailure::exec,
                 "cannot execute \"no-such-probe-command-vigil-it\": No such file or directory");
}

TEST_F(ProbeTest, ExecTreeIsKilledAtTheTimeoutAndReaped) {
  constexpr Duration kTimeout = 3s;
  make_probe(exec_probe({"sh", "-c", "sleep 100 & sleep 100"}, kTimeout));
  start();
  // Both sleeps, whether sh forked the second or exec'd it.
  std::vector<pid_t> tree;
  ASSERT_TRUE(loop_->run_until(
      [&] {
        tree = sleep_tree();
        return tree.size() >= 2 && calls_ == 0;
      },
      kEventually))
      << "the command's processes did not show up before its timeout";
  const ProbeOutcome o = await();
  expect_failure(o, ProbeFailure::timeout, "still running after 3s (killed)");
  EXPECT_GE(o.took, kTimeout);
  EXPECT_LT(o.took, kTimeout + 2s);
  for (pid_t pid : tree)
    EXPECT_TRUE(loop_->run_until([pid] { return no_such_process(pid); }, kEventually))
        << "pid " << pid << " is still there (state " << process_state(pid) << ")";
  EXPECT_EQ(calls_, 1);
}

// ---------------------------------------------------------------------------
// At most one run; done once, never inside run(), never after cancel()

TEST_F(ProbeTest, RunWhileInFlightIsIgnored) {
  server().silent();
  make_probe(http_probe(server().url(), 500ms));
  start();
  int second = 0;
  probe_->run([&](const ProbeOutcome&) { ++second; });
  EXPECT_TRUE(probe_->in_flight());
  const ProbeOutcome o = await();
  EXPECT_EQ(o.failure, ProbeFailure::timeout);
  run_for(300ms);
  EXPECT_EQ(calls_, 1);
  EXPECT_EQ(second, 0);
  EXPECT_FALSE(probe_->in_flight());
}

TEST_F(ProbeTest, CancelHttpMidRun) {
  server().silent();
  make_probe(http_probe(server().url(), 300ms));
  start();
  ASSERT_TRUE(loop_->run_until(
      [&] { return server().accepted() == 1 && !server().conn(0).request.empty(); }, kEventually));
  probe_->cancel();
  EXPECT_FALSE(probe_->in_flight());
  EXPECT_TRUE(loop_->run_until([&] { return server().conn(0).peer_closed; }, kEventually))
      << "the socket was closed at once";
  run_for(600ms);  // past the timeout
  EXPECT_EQ(calls_, 0);
}

TEST_F(ProbeTest, CancelTcpMidRun) {
  server().silent();
  make_probe(tcp_probe("127.0.0.1:" + std::to_string(server().port()), 300ms));
  start();
  probe_->cancel();  // before the loop saw the connect complete
  run_for(600ms);
  EXPECT_EQ(calls_, 0);
  // The Probe is reusable after a cancel.
  EXPECT_TRUE(run_once().ok);
}

TEST_F(ProbeTest, CancelAfterTheVerdictBeforeDelivery) {
  make_probe(tcp_probe("127.0.0.1:" + std::to_string(closed_port()), 300ms));
  start();  // refused, possibly at connect(): the delivery is deferred
  probe_->cancel();
  run_for(600ms);
  EXPECT_EQ(calls_, 0);
}

TEST_F(ProbeTest, CancelExecMidRunKillsItsTree) {
  make_probe(exec_probe({"sh", "-c", "sleep 100 & sleep 100"}, 300ms));
  start();
  std::vector<pid_t> tree;
  ASSERT_TRUE(loop_->run_until(
      [&] {
        tree = sleep_tree();
        return tree.size() >= 2;
      },
      kEventually));
  probe_->cancel();
  for (pid_t pid : tree)
    EXPECT_TRUE(loop_->run_until([pid] { return no_such_process(pid); }, kEventually)) << "pid " << pid;
  run_for(600ms);
  EXPECT_EQ(calls_, 0);
}

TEST_F(ProbeTest, DestroyedInsideDone) {
  // Through each path to `done`: a socket event, the Reaper, the timer, a
  // failure at run().
  server().reply("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  const std::vector<ProbeConfig> configs = {
      http_probe(server().url()), exec_probe({"false"}), exec_probe({"sleep", "100"}, 200ms),
      exec_probe({"no-such-probe-command-vigil-it"}), tcp_probe("999.0.0.1:1")};
  for (const ProbeConfig& c : configs) {
    make_probe(c);
    bool called = false;
    probe_->run([&](const ProbeOutcome&) {
      called = true;
      probe_.reset();
    });
    ASSERT_TRUE(loop_->run_until([&] { return called; }, kEventually)) << c.target << c.command.size();
    EXPECT_EQ(probe_, nullptr);
    run_for(100ms);  // whatever was still pending finds nothing to call
  }
}

TEST_F(ProbeTest, RunAgainInsideDone) {
  server().reply("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  make_probe(http_probe(server().url()));
  int runs = 0;
  std::function<void(const ProbeOutcome&)> again = [&](const ProbeOutcome& o) {
    EXPECT_TRUE(o.ok) << o.detail;
    EXPECT_FALSE(probe_->in_flight());
    if (++runs < 3) probe_->run(again);
  };
  probe_->run(again);
  EXPECT_TRUE(loop_->run_until([&] { return runs == 3; }, kEventually));
  EXPECT_EQ(server().accepted(), 3u);
}

TEST_F(ProbeTest, UpdateAppliesFromTheNextRun) {
  server().reply("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n");
  make_probe(http_probe(server().url()));
  start();
  ProbeConfig c = http_probe(server().url());
  c.expect_status = 503;
  probe_->update(c, std::nullopt);
  EXPECT_EQ(await().failure, ProbeFailure::status) << "the run in flight keeps its settings";
  calls_ = 0;
  EXPECT_TRUE(run_once().ok);
}

}  // namespace
}  // namespace vigil::it
