// Sockets vigil holds for a program's `listen` (systemd socket activation),
// with real sockets and real children: the fd layout a child sees and its
// LISTEN_* variables, heartbeats on the fd after the sockets, four
// instances sharing one port with no connection refused while they
// restart, reloads that keep (or change) the socket, a taken address,
// the unix socket file's life, and real servers that speak socket
// activation: gunicorn (checks LISTEN_PID) and Node's listen({ fd: 3 }).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <string>

#include "control_harness.h"
#include "hammer.h"
#include "harness.h"
#include "listen_socket.h"

namespace vigil::it {
namespace {

using ListenTest = InProcessTest;
using ListenBinaryTest = BinaryTest;

// A socket of the test's own listening on 127.0.0.1:port.
UniqueFd listen_on(std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::listen(fd.get(), 8) != 0)
    return UniqueFd();
  return fd;
}

std::string loopback(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// "fd N: ..." lines of child_helper --describe-fds.
std::vector<std::string> fd_lines(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines)
    if (l.starts_with("fd ") && l.find(':') != std::string::npos) out.push_back(l);
  return out;
}

// The socket at fd 3 ("socket:[INODE]") of process `pid`, from a log of
// child_helper --print-env --describe-fds runs: each process prints its
// LISTEN_PID, then its fds.
std::optional<std::string> fd3_inode(const std::vector<std::string>& lines, pid_t pid) {
  static const std::regex re(R"(^fd 3: listening .* (socket:\[[0-9]+\])$)");
  const auto mine = std::find(lines.begin(), lines.end(), "LISTEN_PID=" + std::to_string(pid));
  std::smatch m;
  for (auto it = mine; it != lines.end(); ++it) {
    if (it->starts_with("LISTEN_PID=") && it != mine) break;
    if (std::regex_match(*it, m, re)) return m[1];
  }
  return std::nullopt;
}

// fd3_inode of instance `index`'s current process, once it has printed it.
std::optional<std::string> current_fd3_inode(InProcessVigil& vigil, std::string_view name,
                                             int index = 0) {
  std::optional<std::string> inode;
  vigil.run_until([&] {
    inode = fd3_inode(read_lines(vigil.log_path(name, index)), vigil.instance(name, index).pid());
    return inode.has_value();
  });
  return inode;
}

// What one connection to 127.0.0.1:port is answered, read while vigil's
// loop runs; "refused" when the connect itself fails (the port is not
// held), "" when nothing came in time.
std::string ask(InProcessVigil& vigil, std::uint16_t port) {
  UniqueFd fd = connect_loopback(port);
  if (!fd) return errno == ECONNREFUSED ? "refused" : std::string("connect: ") + std::strerror(errno);
  set_nonblocking(fd.get());
  std::string reply;
  bool eof = false;
  vigil.run_until([&] {
    char buf[256];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) reply.append(buf, static_cast<std::size_t>(n));
    eof = n == 0;
    return eof;
  });
  return reply;
}

// An HTTP/1.0 GET of `path` on 127.0.0.1:port: the whole response, read to
// its end (the children answer on their own; vigil's loop need not run).
std::string http_get(std::uint16_t port, const std::string& path) {
  UniqueFd fd = connect_loopback(port);
  if (!fd) return std::string("connect: ") + std::strerror(errno);
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) < 0) return "send failed";
  std::string response;
  const auto deadline = SteadyClock::now() + kEventually;
  while (SteadyClock::now() < deadline) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    response.append(buf, static_cast<std::size_t>(n));
  }
  return response;
}

// Retries http_get until the answer has status 200 (a server still
// starting refuses nothing, as the port is held, but may not answer yet).
std::string http_get_ok(std::uint16_t port, const std::string& path) {
  std::string last;
  poll_until([&] {
    last = http_get(port, path);
    return last.starts_with("HTTP/1.1 200") || last.starts_with("HTTP/1.0 200");
  });
  return last;
}

// --- what a child gets --------------------------------------------------------

// Two held sockets, a TCP one and a unix one: fds 3 and 4 in `listen` order,
// the heartbeat pipe at 5, nothing else; LISTEN_PID and WATCHDOG_PID both
// the child's own pid.
TEST_F(ListenTest, ChildGetsTheSocketsAtFd3AndFd4AndTheHeartbeatPipeAt5) {
  const std::uint16_t port = free_port();
  const fs::path pids = dir_ / "pids";
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("web",
                     {"--pidfile", pids.string(), "--print-env", "--describe-fds", "--print",
                      "done"},
                     "log_timestamps = false\nrestart = \"never\"\nlisten = [\"" +
                         loopback(port) + "\", \"admin=unix:run/admin.sock\"]") +
      "[programs.web.heartbeat]\ninterval = \"5s\"\n"));
  auto lines = wait_for_line(vigil(), vigil().log_path("web"), "done");
  ASSERT_TRUE(has_line(lines, "done")) << read_file(vigil().log_path("web"));
  ASSERT_EQ(read_pids(pids).size(), 1u);
  const std::string pid = std::to_string(read_pids(pids)[0]);
  const fs::path unix_path = dir_ / "run" / "admin.sock";

  const auto fds = fd_lines(lines);
  ASSERT_EQ(fds.size(), 6u) << "0-2, two sockets, the heartbeat pipe:\n" << read_file(vigil().log_path("web"));
  EXPECT_TRUE(std::regex_match(fds[3], std::regex("fd 3: listening tcp " + loopback(port) +
                                                  R"( socket:\[[0-9]+\])")))
      << fds[3];
  EXPECT_TRUE(std::regex_match(fds[4], std::regex("fd 4: listening unix " + unix_path.string() +
                                                  R"( socket:\[[0-9]+\])")))
      << fds[4];
  EXPECT_TRUE(std::regex_match(fds[5], std::regex(R"(fd 5: pipe:\[[0-9]+\])"))) << fds[5];

  EXPECT_EQ(value_after(lines, "LISTEN_FDS="), "2");
  EXPECT_EQ(value_after(lines, "LISTEN_PID="), pid) << "the child's own pid";
  EXPECT_EQ(value_after(lines, "LISTEN_FDNAMES="), "web:admin");
  EXPECT_EQ(value_after(lines, "VIGIL_HEARTBEAT_FD="), "5");
  EXPECT_EQ(value_after(lines, "WATCHDOG_PID="), pid);

  // Anyone may connect to the unix socket (systemd's SocketMode default);
  // the folder's permissions say who.
  struct stat st;
  ASSERT_EQ(::lstat(unix_path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0666u);
}

// The exec probe runs with the program's environment: no LISTEN_* there,
// as it gets no sockets. Without `listen` nothing changes: fd 3 is the
// heartbeat pipe.
TEST_F(ListenTest, WithoutListenTheHeartbeatPipeStaysAtFd3AndNoListenVariables) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "plain", {"--print-env", "--describe-fds", "--print", "done"},
      "log_timestamps = false\nrestart = \"never\"")));
  auto lines = wait_for_line(vigil(), vigil().log_path("plain"), "done");
  const auto fds = fd_lines(lines);
  ASSERT_EQ(fds.size(), 4u) << read_file(vigil().log_path("plain"));
  EXPECT_TRUE(std::regex_match(fds[3], std::regex(R"(fd 3: pipe:\[[0-9]+\])"))) << fds[3];
  EXPECT_EQ(value_after(lines, "VIGIL_HEARTBEAT_FD="), "3");
  EXPECT_EQ(value_after(lines, "LISTEN_FDS="), std::nullopt);
  EXPECT_EQ(value_after(lines, "LISTEN_PID="), std::nullopt);
  EXPECT_EQ(value_after(lines, "LISTEN_FDNAMES="), std::nullopt);
}

// A child beating on $VIGIL_HEARTBEAT_FD (fd 4 here) is alive and ready; one
// writing to fd 3 would be writing to the listening socket.
TEST_F(ListenTest, HeartbeatsAndReadinessArriveOnTheFdAfterTheSockets) {
  const std::uint16_t port = free_port();
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("beater", {"--notify", "READY=1", "--beat", "50"},
                     "ready = \"notify\"\nlisten = [\"" + loopback(port) + "\"]") +
      "[programs.beater.heartbeat]\ninterval = \"300ms\"\nmisses = 2\ngrace = \"1s\"\n"));
  Instance& i = vigil().instance("beater");
  ASSERT_TRUE(vigil().wait_state("beater", State::running)) << vigil().log_text();
  const pid_t pid = i.pid();
  // Well past grace + misses x interval: a child whose beats went astray
  // would have been restarted as hung by now.
  ASSERT_TRUE(vigil().run_until([&] { return i.heartbeats() >= 40; })) << i.heartbeats();
  EXPECT_EQ(i.pid(), pid);
  EXPECT_EQ(i.heartbeat_misses(), 0u);
  EXPECT_EQ(i.notify_counts().protocol_errors, 0u);
}

// --- one port, several instances, restarts ------------------------------------

// Four instances share one held port, the kernel spreading connections
// among them. While one restarts, and while all four restart at once, every
// connection is accepted (queued in the held socket's backlog) and
// answered; the socket is the very same one throughout.
TEST_F(ListenTest, FourInstancesShareOnePortAndNoConnectionIsRefusedAcrossRestarts) {
  const std::uint16_t port = free_port();
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program(
      "web", {"--print-env", "--describe-fds", "--serve"},
      "instances = 4\nmin_uptime = \"100ms\"\nrestart_delay = \"0s\"\nlog_timestamps = false\n"
      "listen = [\"" + loopback(port) + "\"]")));
  for (int k = 0; k < 4; ++k) ASSERT_TRUE(vigil().wait_state("web", State::running, k));
  const std::optional<std::string> inode = current_fd3_inode(vigil(), "web", 0);
  ASSERT_TRUE(inode);
  for (int k = 1; k < 4; ++k)
    EXPECT_EQ(current_fd3_inode(vigil(), "web", k), inode) << "web[" << k << "] has another socket";

  // The kernel hands each connection to whichever instance accepts first:
  // more than one of them answers.
  std::set<std::string> answered_by;
  for (int n = 0; n < 200 && answered_by.size() < 4; ++n) {
    const std::string reply = ask(vigil(), port);
    ASSERT_TRUE(reply.starts_with("pid ")) << reply;
    answered_by.insert(reply);
  }
  EXPECT_GE(answered_by.size(), 2u) << "connections reached one instance only";

  // One instance restarting: the others answer, nothing is refused.
  Instance& one = vigil().instance("web", 1);
  const pid_t old_pid = one.pid();
  one.restart_manual();
  for (int n = 0; n < 20; ++n) EXPECT_TRUE(ask(vigil(), port).starts_with("pid ")) << "during the restart of web[1]";
  ASSERT_TRUE(vigil().run_until([&] { return one.pid() > 0 && one.pid() != old_pid && one.ready(); }));

  // All four at once: no process accepts for a while, yet the connections
  // made meanwhile wait in the backlog and are answered by the new ones.
  std::set<pid_t> before;
  for (int k = 0; k < 4; ++k) before.insert(vigil().instance("web", k).pid());
  for (int k = 0; k < 4; ++k) vigil().instance("web", k).restart_manual();
  std::vector<UniqueFd> waiting;
  for (int n = 0; n < 8; ++n) {
    UniqueFd fd = connect_loopback(port);
    ASSERT_TRUE(fd) << "connect during the restart of all instances: " << std::strerror(errno);
    set_nonblocking(fd.get());
    waiting.push_back(std::move(fd));
  }
  std::vector<std::string> replies(waiting.size());
  ASSERT_TRUE(vigil().run_until([&] {
    bool all = true;
    for (std::size_t n = 0; n < waiting.size(); ++n) {
      char buf[64];
      ssize_t got;
      while ((got = ::read(waiting[n].get(), buf, sizeof buf)) > 0) replies[n].append(buf, static_cast<std::size_t>(got));
      if (replies[n].empty() || replies[n].back() != '\n') all = false;
    }
    return all;
  })) << "connections queued during the restart were never answered";
  for (const auto& r : replies) {
    ASSERT_TRUE(r.starts_with("pid ")) << r;
    EXPECT_FALSE(before.count(std::stoi(r.substr(4)))) << "answered by a process that was stopping: " << r;
  }

  // The new processes got the very same socket.
  for (int k = 0; k < 4; ++k) {
    ASSERT_TRUE(vigil().wait_state("web", State::running, k));
    EXPECT_FALSE(before.count(vigil().instance("web", k).pid()));
    EXPECT_EQ(current_fd3_inode(vigil(), "web", k), inode) << "web[" << k << "] after the restart";
  }
}

// --- reload -----------------------------------------------------------------------

class ListenReloadTest : public ListenTest {
 protected:
  std::string config(const std::vector<std::string>& listen, std::string_view extra = "") {
    std::string list;
    for (const auto& l : listen) list += (list.empty() ? "\"" : ", \"") + l + "\"";
    return helper_program("web", {"--print-env", "--describe-fds", "--serve"},
                          "min_uptime = \"100ms\"\nlog_timestamps = false\nlisten = [" + list +
                              "]\n" + std::string(extra));
  }
  // Rewrites the config file and reloads it (as SIGHUP does).
  ReloadResult reload(const std::string& toml) {
    dir_.write("vigil.toml", toml);
    return vigil().supervisor().reload_file(false);
  }
  std::optional<std::string> current_inode() { return current_fd3_inode(vigil(), "web"); }
  bool running_again(pid_t old_pid) {
    return vigil().run_until([&] {
      Instance& i = vigil().instance("web");
      return i.pid() > 0 && i.pid() != old_pid && i.ready();
    });
  }
};

// An unchanged `listen` keeps the socket whatever else changes: in place
// (same process), or with a restart (new processes, the same socket); a
// changed one keeps the addresses it still lists and closes the rest.
TEST_F(ListenReloadTest, AReloadKeepsTheSocketOfEveryAddressStillListed) {
  const auto [a, b] = free_ports();
  ASSERT_NO_FATAL_FAILURE(start_vigil(config({loopback(a)})));
  ASSERT_TRUE(vigil().wait_state("web", State::running));
  const int fd_a = vigil().program("web").listen_sockets().at(0)->fd();
  const pid_t first = vigil().instance("web").pid();

  // In place: same process, same socket.
  ReloadResult r = reload(config({loopback(a)}, "restart_delay = \"1s\""));
  ASSERT_TRUE(r.ok) << r.plan;
  EXPECT_EQ(r.plan, "web: update in place (restart_delay changed)\n");
  EXPECT_EQ(vigil().instance("web").pid(), first);
  EXPECT_EQ(vigil().program("web").listen_sockets().at(0)->fd(), fd_a);

  // A restart (env changed): new process, the same socket, no refusal.
  const auto inode_a = current_inode();
  ASSERT_TRUE(inode_a);
  r = reload(config({loopback(a)}, "restart_delay = \"1s\"\nenv = { X = \"1\" }"));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.plan, "web: restart (env changed)\n");
  EXPECT_TRUE(ask(vigil(), a).starts_with("pid ")) << "during the restart";
  ASSERT_TRUE(running_again(first));
  EXPECT_EQ(vigil().program("web").listen_sockets().at(0)->fd(), fd_a);
  EXPECT_EQ(current_inode(), inode_a);

  // Another address added: the first kept, the second bound.
  const pid_t second = vigil().instance("web").pid();
  r = reload(config({loopback(a), loopback(b)}));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.plan, "web: restart (env, listen, restart_delay changed)\n");
  ASSERT_TRUE(running_again(second));
  ASSERT_EQ(vigil().program("web").listen_sockets().size(), 2u);
  EXPECT_EQ(vigil().program("web").listen_sockets()[0]->fd(), fd_a);
  EXPECT_EQ(current_inode(), inode_a);
  EXPECT_TRUE(ask(vigil(), b).starts_with("pid "));

  // The first dropped: closed once the old processes are gone.
  const pid_t third = vigil().instance("web").pid();
  r = reload(config({loopback(b)}));
  ASSERT_TRUE(r.ok);
  ASSERT_TRUE(running_again(third));
  EXPECT_FALSE(connect_loopback(a)) << "the dropped address is still held";
  EXPECT_EQ(errno, ECONNREFUSED);
  EXPECT_TRUE(ask(vigil(), b).starts_with("pid "));
}

// --- errors ----------------------------------------------------------------------

// As a systemd socket unit that fails: the service cannot start, and vigil
// does not start without it.
TEST_F(ListenTest, ATakenAddressStopsVigilFromStartingWithAClearError) {
  const std::uint16_t port = free_port();
  UniqueFd taken = listen_on(port);
  ASSERT_TRUE(taken);
  InProcessVigil v(dir_, helper_program("web", {}, "listen = [\"" + loopback(port) + "\"]"));
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.errors(), "program web: cannot listen on " + loopback(port) +
                            ": Address already in use (another process holds it; `ss -ltnp` "
                            "names it)\n");
}

TEST_F(ListenBinaryTest, ATakenAddressMakesVigilRunExit1) {
  const std::uint16_t port = free_port();
  UniqueFd taken = listen_on(port);
  ASSERT_TRUE(taken);
  VigilProcess& v = run_vigil_with(helper_program("web", {}, "listen = [\"" + loopback(port) + "\"]"));
  EXPECT_EQ(v.wait_exit(), 1) << v.output();
  EXPECT_NE(v.output().find("program web: cannot listen on " + loopback(port) +
                            ": Address already in use"),
            std::string::npos)
      << v.output();
}

// A reload whose new socket cannot be bound changes nothing at all.
TEST_F(ListenReloadTest, ATakenAddressFailsTheReloadAndChangesNothing) {
  const auto [a, b] = free_ports();
  ASSERT_NO_FATAL_FAILURE(start_vigil(config({loopback(a)})));
  ASSERT_TRUE(vigil().wait_state("web", State::running));
  const pid_t pid = vigil().instance("web").pid();
  UniqueFd taken = listen_on(b);
  ASSERT_TRUE(taken);

  ReloadResult r = reload(config({loopback(a), loopback(b)}));
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], "program web: cannot listen on " + loopback(b) +
                             ": Address already in use (another process holds it; `ss -ltnp` "
                             "names it)");
  EXPECT_EQ(vigil().supervisor().reloads_failed(), 1u);
  EXPECT_EQ(vigil().supervisor().config().programs[0].listen.size(), 1u);
  EXPECT_EQ(vigil().instance("web").pid(), pid);
  EXPECT_TRUE(ask(vigil(), a).starts_with("pid "));
}

// --- the socket itself --------------------------------------------------------

ListenSocketConfig unix_socket(const fs::path& path) {
  ListenSocketConfig c;
  c.kind = SocketKind::unix_stream;
  c.path = path;
  c.name = "test";
  return c;
}

ListenSocketConfig tcp_socket(std::string host, std::uint16_t port, bool ipv6) {
  ListenSocketConfig c;
  c.tcp.host = std::move(host);
  c.tcp.port = port;
  c.tcp.ipv6 = ipv6;
  c.name = "test";
  return c;
}

// A socket file nobody answers on (a process died) is replaced; one that
// answers, or any other file, is left alone; the file goes with the socket,
// unless someone else's took its place.
TEST(ListenSocketTest, UnixSocketFileStaleReplacedLiveRefusedOursRemoved) {
  TempDir dir;
  FdLeakCheck fds;
  const fs::path path = dir / "deep" / "er" / "web.sock";
  {
    ListenSocket first(unix_socket(path));  // folders created
    EXPECT_TRUE(fs::is_socket(path));
    // Live: the first one answers.
    try {
      ListenSocket second(unix_socket(path));
      ADD_FAILURE() << "bound over a live socket";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()), "cannot listen on unix:" + path.string() +
                                           ": Address already in use (another process is "
                                           "listening on it)");
    }
    EXPECT_TRUE(fs::is_socket(path)) << "the live socket's file was removed";
  }
  EXPECT_FALSE(fs::exists(path)) << "the file outlived its socket";

  // Stale: bound and closed without removing the file.
  {
    UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strcpy(sa.sun_path, path.c_str());
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  }
  ASSERT_TRUE(fs::is_socket(path));
  {
    ListenSocket replaced(unix_socket(path));
    UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strcpy(sa.sun_path, path.c_str());
    EXPECT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0)
        << std::strerror(errno);

    // Someone else's file in its place is not removed with the socket.
    fs::remove(path);
    dir.write("deep/er/web.sock", "not ours");
  }
  EXPECT_EQ(read_file(path), "not ours");

  // Not a socket: left alone.
  try {
    ListenSocket over_a_file(unix_socket(path));
    ADD_FAILURE() << "bound over a regular file";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "cannot listen on unix:" + path.string() +
                                         ": File exists (it is not a socket; vigil leaves it alone)");
  }
  EXPECT_EQ(read_file(path), "not ours");
  EXPECT_EQ(fds.leaks(), "");
}

// IPv6 sockets are IPV6_V6ONLY: "[::]:P" and "0.0.0.0:P" coexist, as two
// sockets of one program.
TEST(ListenSocketTest, Ipv6AndIpv4WildcardsOnOnePortCoexist) {
  FdLeakCheck fds;
  const std::uint16_t port = free_port();
  {
    ListenSocket v4(tcp_socket("0.0.0.0", port, false));
    std::optional<ListenSocket> v6;
    try {
      v6.emplace(tcp_socket("::", port, true));
    } catch (const std::runtime_error& e) {
      if (std::string(e.what()).find("Address family not supported") != std::string::npos)
        GTEST_SKIP() << "no IPv6 here: " << e.what();
      throw;
    }
    UniqueFd client = connect_loopback(port);
    EXPECT_TRUE(client) << std::strerror(errno);
    int blocking = ::fcntl(v4.fd(), F_GETFL);
    EXPECT_FALSE(blocking & O_NONBLOCK) << "passed blocking, as systemd does";
    EXPECT_TRUE(::fcntl(v4.fd(), F_GETFD) & FD_CLOEXEC);
  }
  EXPECT_EQ(fds.leaks(), "");
}

// --- real servers that speak socket activation ------------------------------------

std::optional<std::string> find_in_path(const std::string& name) {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"}) {
    fs::path p = fs::path(dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return std::nullopt;
}

// gunicorn takes LISTEN_FDS only when LISTEN_PID is its own pid, so a 200
// through the held port (on which gunicorn could not bind itself) shows
// the pid was right; its workers, forked, share the socket.
TEST_F(ListenTest, GunicornServesThroughTheHeldPort) {
  auto gunicorn = find_in_path("gunicorn");
  if (!gunicorn) GTEST_SKIP() << "gunicorn is not installed (scripts/deps.sh installs it)";
  const std::uint16_t port = free_port();
  dir_.write("hello.py",
             "import os\n"
             "def app(environ, start_response):\n"
             "    body = ('hello from gunicorn ' + environ['PATH_INFO']).encode()\n"
             "    start_response('200 OK', [('Content-Type', 'text/plain'),\n"
             "                              ('Content-Length', str(len(body)))])\n"
             "    return [body]\n");
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      "[programs.gunicorn]\ncommand = " +
      toml_array({*gunicorn, "--workers", "2", "--chdir", dir_.path().string(), "hello:app"}) +
      "\nstop_timeout = \"20s\"\nlisten = [\"" + loopback(port) + "\"]\n"));
  const std::string response = http_get_ok(port, "/activated");
  EXPECT_TRUE(response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"))
      << response << "\n" << read_file(vigil().log_path("gunicorn", 0, Stream::err));
  EXPECT_NE(response.find("hello from gunicorn /activated"), std::string::npos) << response;
}

// Node's server.listen({ fd: 3 }), the systemd way for Node services.
TEST_F(ListenTest, NodeServerListensOnFd3) {
  auto node = find_in_path("node");
  if (!node) GTEST_SKIP() << "node is not installed";
  const std::uint16_t port = free_port();
  dir_.write("server.js",
             "const http = require('http');\n"
             "if (process.env.LISTEN_PID !== String(process.pid) || process.env.LISTEN_FDS !== '1') {\n"
             "  console.error('not socket-activated');\n"
             "  process.exit(2);\n"
             "}\n"
             "http.createServer((req, res) => res.end(`node ${process.pid} ${req.url}`))\n"
             "    .listen({ fd: 3 });\n");
  ASSERT_NO_FATAL_FAILURE(start_vigil("[programs.node]\ncommand = " +
                                      toml_array({*node, (dir_ / "server.js").string()}) +
                                      "\nlisten = [\"" + loopback(port) + "\"]\n"));
  const std::string response = http_get_ok(port, "/fd3");
  EXPECT_TRUE(response.starts_with("HTTP/1.1 200")) << response << "\n"
                                                    << read_file(vigil().log_path("node", 0, Stream::err));
  EXPECT_NE(response.find("node " + std::to_string(vigil().instance("node").pid()) + " /fd3"),
            std::string::npos)
      << response;
}

// --- zero downtime: real servers hammered through rolling restarts ---------------

// What the issue asks of a deploy: gunicorn (checks LISTEN_PID; graceful on
// SIGTERM) as 4 instances on one held port and a Node server on { fd: 3 }
// beside it (READY=1 through the shipped client, on the heartbeat fd after
// the socket), hammered while `vigil restart` rolls each, then while a
// reload that changes both commands rolls both at once: no connection
// refused, no request failed, never fewer than 3 instances of either
// running.
class ZeroDowntimeTest : public BinaryTest {};

TEST_F(ZeroDowntimeTest, HammeredThroughRollingRestartsAndACommandChangingReload) {
  auto gunicorn = find_in_path("gunicorn");
  auto node = find_in_path("node");
  if (!gunicorn || !node) GTEST_SKIP() << "gunicorn and node are needed (scripts/deps.sh installs them)";
  // Named copies, not a structured binding: a lambda below captures them.
  const auto ports = free_ports();
  const auto web_port = ports.first, api_port = ports.second;
  dir_.write("hello.py",
             "import os\n"
             "def app(environ, start_response):\n"
             "    body = ('gunicorn %d %s' % (os.getpid(), os.environ.get('VERSION', 'v1'))).encode()\n"
             "    start_response('200 OK', [('Content-Type', 'text/plain'),\n"
             "                              ('Content-Length', str(len(body)))])\n"
             "    return [body]\n");
  dir_.write("server.js",
             "const http = require('http');\n"
             "const vigil = require(" + toml_string((source_dir() / "clients" / "node").string()) + ");\n"
             "const version = process.argv[2] || 'v1';\n"
             "const server = http.createServer((req, res) => res.end(`node ${process.pid} ${version}`));\n"
             "server.listen({ fd: 3 }, () => vigil.ready());\n"
             "// Finish what was accepted, take nothing new: the other instances and\n"
             "// the socket's backlog take the rest.\n"
             "process.on('SIGTERM', () => server.close(() => process.exit(0)));\n");
  auto config = [&](std::string_view version) {
    return "[vigil]\nlog_level = \"debug\"\n"
           "[programs.web]\ncommand = " +
           toml_array({*gunicorn, "--workers", "1", "--chdir", dir_.path().string(), "hello:app"}) +
           "\ninstances = 4\nlisten = [\"" + loopback(web_port) +
           "\"]\nmin_uptime = \"1s\"\nstop_timeout = \"20s\"\nenv = { VERSION = \"" +
           std::string(version) + "\" }\n"
           "[programs.api]\ncommand = " +
           toml_array({*node, (dir_ / "server.js").string(), std::string(version)}) +
           "\ninstances = 4\nlisten = [\"" + loopback(api_port) +
           "\"]\nready = \"notify\"\nstart_timeout = \"30s\"\nstop_timeout = \"20s\"\n";
  };
  VigilProcess& v = run_vigil_with(config("v1"));
  const fs::path config_file = dir_ / "vigil.toml";
  const fs::path socket = dir_ / "vigil.sock";
  auto all_running = [&] {
    auto all = control::api_instances(socket);
    if (!all || all->size() != 8) return false;
    for (const auto& i : *all)
      if (i["state"] != "running") return false;
    return true;
  };
  ASSERT_TRUE(poll_until([&] { return all_running() || !v.running(); }, 60s) && all_running())
      << v.output();
  ASSERT_NE(http_get_ok(web_port, "/").find("gunicorn"), std::string::npos) << v.output();
  ASSERT_NE(http_get_ok(api_port, "/").find("node"), std::string::npos) << v.output();

  Hammer web(dir_, "web", web_port), api(dir_, "api", api_port);
  ASSERT_TRUE(web.started() && api.started());

  for (const char* name : {"web", "api"}) {
    auto r = control::run_cli(dir_.path(), {"restart", name, "-c", config_file.string()}, {}, 120s);
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.out << r.err;
  }
  // Both at once, each one at a time.
  dir_.write("vigil.toml", config("v2"));
  auto r = control::run_cli(dir_.path(), {"reload", "-c", config_file.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* name : {"web", "api"})
    EXPECT_TRUE(v.wait_for_output_count(std::string("program ") + name +
                                            ": rolling restart done: 4 instances replaced",
                                        2, 120s))
        << v.output();
  EXPECT_NE(http_get_ok(web_port, "/").find(" v2"), std::string::npos);
  EXPECT_NE(http_get_ok(api_port, "/").find(" v2"), std::string::npos);

  for (auto* h : {&web, &api}) {
    const std::string line = h->stop();
    const auto [ok, refused, failed] = counts(line);
    EXPECT_EQ(refused, 0) << line << "\n" << h->errors();
    EXPECT_EQ(failed, 0) << line << "\n" << h->errors();
    EXPECT_GE(ok, 100) << line << ": too few requests to say anything";
  }
  const std::string log = v.output();
  EXPECT_GE(fewest_running(log, "web", 4), 3) << log;
  EXPECT_GE(fewest_running(log, "api", 4), 3) << log;
}

}  // namespace
}  // namespace vigil::it
