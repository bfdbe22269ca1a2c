// StickyProxy in-process, for both relay engines: the proxy runs on an
// EventLoop in the test's thread, driven by run_until; the instances are
// real loopback servers on threads of their own (one poll loop each, or a
// blocking reader), the clients real sockets bound to distinct 127.0.0.x
// source addresses so that they hash apart. Every wait is a condition
// polled under a deadline; the sleeps in the slow reader are load.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "fd.h"
#include "harness.h"
#include "listen_address.h"
#include "sticky_hash.h"
#include "sticky_proxy.h"
#include "sticky_relay.h"

namespace vigil {
// Test names and messages say the engine.
void PrintTo(RelayEngine e, std::ostream* os) { *os << (e == RelayEngine::splice ? "splice" : "buffer"); }
}  // namespace vigil

namespace vigil::it {
namespace {

// ---------------------------------------------------------------------------
// Ports and sockets

sockaddr_in loopback(std::uint16_t port, int last_octet = 1) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(0x7f000000u | static_cast<std::uint32_t>(last_octet));
  return sa;
}

// `n` consecutive loopback ports, bound but not listening (so a connect to
// one nobody serves is refused): the instances' ports from port_base.
struct PortRange {
  int base = 0;
  std::vector<UniqueFd> sockets;
};

PortRange reserve_ports(int n) {
  std::mt19937 rng(static_cast<unsigned>(::getpid()) ^ static_cast<unsigned>(std::random_device{}()));
  for (int attempt = 0; attempt < 200; ++attempt) {
    PortRange r;
    r.base = 20000 + static_cast<int>(rng() % 30000);
    for (int i = 0; i < n; ++i) {
      UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in sa = loopback(static_cast<std::uint16_t>(r.base + i));
      if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) break;
      r.sockets.push_back(std::move(fd));
    }
    if (static_cast<int>(r.sockets.size()) == n) return r;
  }
  ADD_FAILURE() << "no " << n << " consecutive free ports";
  return {};
}

// The raw address bytes the proxy hashes for a client from 127.0.0.`octet`.
std::string source_key(int octet) {
  const sockaddr_in sa = loopback(0, octet);
  return std::string(reinterpret_cast<const char*>(&sa.sin_addr), sizeof sa.sin_addr);
}

// The instance a key should land on, among `candidates`.
int expected_instance(std::string_view identity, std::vector<int> candidates) {
  return sticky_order(sticky_key(identity), candidates).front();
}

// A non-blocking client from 127.0.0.`octet` to the proxy.
UniqueFd connect_from(int octet, std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_in src = loopback(0, octet);
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) return {};
  sockaddr_in dst = loopback(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 && errno != EINPROGRESS)
    return {};
  return fd;
}

// A client's side of a connection, without blocking: what it sends waits in
// `out` for room, what comes is appended to `in`.
struct Client {
  UniqueFd fd;
  std::string in;
  std::string out;
  std::size_t out_at = 0;
  bool eof = false;
  bool reset = false;

  void send(std::string_view text) {
    out.append(text);
    flush();
  }
  bool flushed() const { return out_at == out.size(); }
  void flush() {
    while (out_at < out.size()) {
      const ssize_t n = ::send(fd.get(), out.data() + out_at, out.size() - out_at,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n <= 0) return;
      out_at += static_cast<std::size_t>(n);
    }
  }
  // Sends and reads what it can; true when something came.
  bool poll() {
    flush();
    char buf[65536];
    bool changed = false;
    while (!eof && !reset) {
      const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
      if (n > 0) {
        in.append(buf, static_cast<std::size_t>(n));
        changed = true;
      } else if (n == 0) {
        eof = changed = true;
      } else if (errno == EAGAIN) {
        break;
      } else if (errno != EINTR) {
        reset = changed = true;
      }
    }
    return changed;
  }
  bool closed() {
    poll();
    return eof || reset;
  }
  // The first line: the index the instance announces.
  std::optional<int> instance() {
    poll();
    auto nl = in.find('\n');
    if (nl == std::string::npos) return std::nullopt;
    return std::stoi(in.substr(0, nl));
  }
};

// ---------------------------------------------------------------------------
// Instances: one poll loop per instance on a thread of its own.

class Backend {
 public:
  enum class Mode {
    echo,        // "<index>\n" at once, then every byte back; on EOF "eof\n" and close
    shut_first,  // "<index>\n", then EOF at once; keeps reading (and counting) to EOF
    reset,       // RST at once
    close,       // FIN at once
  };

  Backend(int index, UniqueFd& port_socket, Mode mode = Mode::echo) : index_(index), mode_(mode) {
    listener_ = std::move(port_socket);
    set_nonblocking(listener_.get());
    if (::listen(listener_.get(), SOMAXCONN) != 0) ADD_FAILURE() << std::strerror(errno);
    Pipe p = make_pipe(O_NONBLOCK);
    wake_read_ = std::move(p.read);
    wake_write_ = std::move(p.write);
    thread_ = std::thread([this] { serve(); });
  }
  ~Backend() {
    (void)!::write(wake_write_.get(), "x", 1);
    thread_.join();
  }

  void set_mode(Mode m) { mode_ = m; }
  int open() const { return open_; }
  int accepted() const { return accepted_; }
  std::uint64_t received() const { return received_; }

 private:
  struct Conn {
    UniqueFd fd;
    std::string out;
    std::size_t out_at = 0;
    bool peer_eof = false;
    bool echo = true;
  };

  void serve() {
    std::vector<std::unique_ptr<Conn>> conns;
    std::vector<pollfd> fds;
    char buf[65536];
    for (;;) {
      fds.assign({{wake_read_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}});
      for (auto& c : conns) {
        short ev = 0;
        // Echo with a bound: stop reading while much is waiting to go back.
        if (!c->peer_eof && c->out.size() - c->out_at < (1u << 20)) ev |= POLLIN;
        if (c->out_at < c->out.size()) ev |= POLLOUT;
        fds.push_back({c->fd.get(), ev, 0});
      }
      if (::poll(fds.data(), fds.size(), -1) < 0) continue;
      if (fds[0].revents) return;
      if (fds[1].revents) accept_all(conns);
      for (std::size_t i = 2; i < fds.size(); ++i) {
        Conn& c = *conns[i - 2];
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
          const ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
          if (n > 0) {
            received_ += static_cast<std::uint64_t>(n);
            if (c.echo) c.out.append(buf, static_cast<std::size_t>(n));
          } else if (n == 0) {
            c.peer_eof = true;
            if (c.echo) c.out += "eof\n";
          } else if (errno != EAGAIN && errno != EINTR) {
            c.fd.reset();  // reset by the proxy
          }
        }
        if (c.fd && c.out_at < c.out.size()) {
          const ssize_t n = ::send(c.fd.get(), c.out.data() + c.out_at, c.out.size() - c.out_at,
                                   MSG_NOSIGNAL | MSG_DONTWAIT);
          if (n > 0) c.out_at += static_cast<std::size_t>(n);
          if (c.out_at == c.out.size()) {
            c.out.clear();
            c.out_at = 0;
          }
          if (n < 0 && errno != EAGAIN && errno != EINTR) c.fd.reset();
        }
        if (c.fd && c.peer_eof && c.out_at == c.out.size()) c.fd.reset();
      }
      std::erase_if(conns, [&](const std::unique_ptr<Conn>& c) {
        if (c->fd) return false;
        --open_;
        return true;
      });
    }
  }

  void accept_all(std::vector<std::unique_ptr<Conn>>& conns) {
    for (;;) {
      UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd) return;
      ++accepted_;
      const Mode mode = mode_;
      if (mode == Mode::reset) {
        const linger l{1, 0};
        ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
        continue;
      }
      if (mode == Mode::close) continue;
      auto c = std::make_unique<Conn>();
      c->echo = mode == Mode::echo;
      c->fd = std::move(fd);
      c->out = std::to_string(index_) + "\n";
      if (mode == Mode::shut_first) {
        (void)!::send(c->fd.get(), c->out.data(), c->out.size(), MSG_NOSIGNAL);
        c->out.clear();
        ::shutdown(c->fd.get(), SHUT_WR);
      }
      ++open_;
      conns.push_back(std::move(c));
    }
  }

  int index_;
  std::atomic<Mode> mode_;
  std::atomic<int> open_{0};
  std::atomic<int> accepted_{0};
  std::atomic<std::uint64_t> received_{0};
  UniqueFd listener_;
  UniqueFd wake_read_, wake_write_;
  std::thread thread_;
};

// ---------------------------------------------------------------------------

class StickyProxyTest : public ::testing::TestWithParam<RelayEngine> {
 protected:
  void SetUp() override { old_sigpipe_ = ::signal(SIGPIPE, SIG_IGN); }
  void TearDown() override {
    clients_.clear();
    proxy_.reset();
    backends_.clear();
    ports_.sockets.clear();
    loop_.reset();
    EXPECT_EQ(fds_.leaks(), "") << "fds opened during the test and still open";
    ::signal(SIGPIPE, old_sigpipe_);
  }

  // `instances` ports from a fresh base; the proxy on 127.0.0.1:0 with
  // every instance routable. Instances are started with serve().
  void start(int instances, StickyConfig config = {}) {
    ports_ = reserve_ports(instances);
    config.listen = *parse_listen_address("127.0.0.1:0", nullptr);
    config_ = config;
    proxy_ = std::make_unique<StickyProxy>(*loop_, "web", config, ports_.base, instances, GetParam());
    for (int i = 0; i < instances; ++i) proxy_->set_routable(i, true);
  }
  Backend& serve(int index, Backend::Mode mode = Backend::Mode::echo) {
    auto& b = backends_[index];
    b = std::make_unique<Backend>(index, ports_.sockets[static_cast<std::size_t>(index)], mode);
    return *b;
  }

  Client& connect(int octet = 1) {
    auto c = std::make_unique<Client>();
    c->fd = connect_from(octet, proxy_->port());
    EXPECT_TRUE(c->fd) << std::strerror(errno);
    clients_.push_back(std::move(c));
    return *clients_.back();
  }
  // The index the instance announced to a new client from 127.0.0.`octet`.
  int instance_for(int octet) {
    Client& c = connect(octet);
    EXPECT_TRUE(run_until([&] { return c.instance().has_value() || c.closed(); })) << octet;
    return c.instance().value_or(-1);
  }

  bool run_until(const std::function<bool()>& pred, Duration timeout = kEventually) {
    return loop_->run_until(pred, timeout);
  }
  bool all_closed() {
    if (proxy_->open_connections() != 0) return false;
    for (auto& [i, b] : backends_)
      if (b->open() != 0) return false;
    return true;
  }
  // What an upgrade does to the proxy, in-process: its state saved, the
  // fds it keeps duplicated (the exec would keep them open), the proxy
  // destroyed (closing its own), and a new one made on the saved listener
  // takes the rest over. Returns resume()'s complaints.
  std::vector<std::string> hand_over(int instances) {
    std::vector<int> keep;
    nlohmann::json saved = proxy_->save_handover(keep);
    std::map<int, int> copy;
    for (int fd : keep) copy[fd] = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    auto renumber = [&](nlohmann::json& j, const char* key) {
      if (j.contains(key)) j[key] = copy.at(j[key].get<int>());
    };
    renumber(saved, "listener");
    for (auto& c : saved["connections"]) {
      renumber(c, "client");
      renumber(c, "server");
      for (const char* d : {"to_instance", "to_client"})
        if (c.contains(d)) renumber(c[d], "pipe");
    }
    proxy_.reset();
    proxy_ = std::make_unique<StickyProxy>(*loop_, "web", config_, ports_.base, instances, GetParam(),
                                           UniqueFd(saved["listener"].get<int>()));
    auto errors = proxy_->resume(saved, "proxy");
    for (int i = 0; i < instances; ++i) proxy_->set_routable(i, true);
    return errors;
  }
  std::uint64_t open_sum(int instances) {
    std::uint64_t n = 0;
    for (int i = 0; i < instances; ++i) n += proxy_->stats(i).open;
    return n;
  }

  FdLeakCheck fds_;
  std::unique_ptr<EventLoop> loop_ = std::make_unique<EventLoop>();
  PortRange ports_;
  StickyConfig config_;
  std::unique_ptr<StickyProxy> proxy_;
  std::map<int, std::unique_ptr<Backend>> backends_;
  std::vector<std::unique_ptr<Client>> clients_;
  void (*old_sigpipe_)(int) = nullptr;
};

std::string engine_name(const ::testing::TestParamInfo<RelayEngine>& info) {
  return info.param == RelayEngine::splice ? "splice" : "buffer";
}

// ---------------------------------------------------------------------------
// Routing

TEST_P(StickyProxyTest, SameSourceSameInstanceAndOnlyTheLeaversClientsMove) {
  start(3);
  for (int i = 0; i < 3; ++i) serve(i);
  std::map<int, int> home;  // source octet -> instance
  for (int octet = 2; octet < 14; ++octet) {
    home[octet] = instance_for(octet);
    EXPECT_EQ(home[octet], expected_instance(source_key(octet), {0, 1, 2})) << octet;
  }
  std::set<int> used;
  for (auto& [octet, i] : home) used.insert(i);
  ASSERT_GE(used.size(), 2u) << "12 sources all hashed to one instance";
  for (auto& [octet, i] : home) EXPECT_EQ(instance_for(octet), i) << "source 127.0.0." << octet;

  // An instance leaves: only its clients move; its open connection goes on.
  const int leaver = home.begin()->second;
  Client& held = connect(home.begin()->first);
  ASSERT_TRUE(run_until([&] { return held.instance().has_value(); }));
  proxy_->set_routable(leaver, false);
  const int accepted_before = backends_[leaver]->accepted();
  for (auto& [octet, i] : home) {
    const int now = instance_for(octet);
    if (i == leaver)
      EXPECT_NE(now, leaver) << octet;
    else
      EXPECT_EQ(now, i) << "source 127.0.0." << octet << " moved though its instance stayed";
  }
  EXPECT_EQ(backends_[leaver]->accepted(), accepted_before);
  held.send("still here\n");
  EXPECT_TRUE(run_until([&] { return held.poll(), held.in.ends_with("still here\n"); }));

  // Back: its clients return.
  proxy_->set_routable(leaver, true);
  for (auto& [octet, i] : home) EXPECT_EQ(instance_for(octet), i) << octet;
  clients_.clear();
  EXPECT_TRUE(run_until([&] { return all_closed(); }));
  EXPECT_EQ(open_sum(3), 0u);
  std::uint64_t accepted = 0;
  for (int i = 0; i < 3; ++i) accepted += proxy_->stats(i).accepted;
  EXPECT_EQ(accepted, 12u * 4 + 1);
}

TEST_P(StickyProxyTest, RefusedInstanceFallsBackToTheNextAndIsCounted) {
  start(2);
  serve(1);  // instance 0's port: bound, nobody listening
  int preferring_0 = 0;
  int clients = 0;
  // At least ten sources, and more until one prefers instance 0.
  for (int octet = 2; octet < 12 || (preferring_0 == 0 && octet < 250); ++octet, ++clients) {
    if (expected_instance(source_key(octet), {0, 1}) == 0) ++preferring_0;
    EXPECT_EQ(instance_for(octet), 1) << octet;
  }
  ASSERT_GT(preferring_0, 0) << "no source preferred instance 0: the test shows nothing";
  EXPECT_EQ(proxy_->stats(0).route_failures, static_cast<std::uint64_t>(preferring_0));
  EXPECT_EQ(proxy_->stats(1).route_failures, 0u);
  EXPECT_EQ(proxy_->stats(1).accepted, static_cast<std::uint64_t>(clients));
  EXPECT_EQ(proxy_->stats(0).accepted, 0u);
}

TEST_P(StickyProxyTest, ConnectTimeoutFallsBackToTheNext) {
  StickyConfig config;
  config.connect_timeout = std::chrono::milliseconds(300);
  start(2, config);
  serve(1);
  // Instance 0 listens with a full accept queue and never accepts: a SYN
  // to it is dropped, so the proxy's connect can only time out.
  ASSERT_EQ(::listen(ports_.sockets[0].get(), 0), 0);
  std::vector<UniqueFd> fillers;
  for (int k = 0; k < 4; ++k) {
    UniqueFd f(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_in sa = loopback(static_cast<std::uint16_t>(ports_.base));
    (void)::connect(f.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    fillers.push_back(std::move(f));
  }
  int octet = 2;
  while (expected_instance(source_key(octet), {0, 1}) != 0) ++octet;
  const auto started = SteadyClock::now();
  EXPECT_EQ(instance_for(octet), 1);
  EXPECT_GE(SteadyClock::now() - started, std::chrono::milliseconds(250));
  EXPECT_EQ(proxy_->stats(0).route_failures, 1u);
}

TEST_P(StickyProxyTest, NoInstanceClosesTheClientAndCountsIt) {
  start(2);
  serve(0);
  serve(1);
  proxy_->set_routable(0, false);
  proxy_->set_routable(1, false);
  Client& c = connect(2);
  EXPECT_TRUE(run_until([&] { return c.closed(); }));
  EXPECT_EQ(c.in, "");
  EXPECT_EQ(proxy_->totals().rejected_no_instance, 1u);

  // Routable but nobody listening: each tried once, then the same.
  PortRange unserved = reserve_ports(2);
  proxy_->update(config_, unserved.base, 2);
  proxy_->set_routable(0, true);
  proxy_->set_routable(1, true);
  Client& d = connect(3);
  EXPECT_TRUE(run_until([&] { return d.closed(); }));
  EXPECT_EQ(proxy_->totals().rejected_no_instance, 2u);
  EXPECT_EQ(proxy_->stats(0).route_failures + proxy_->stats(1).route_failures, 2u);
  EXPECT_TRUE(run_until([&] { return proxy_->open_connections() == 0; }));
}

TEST_P(StickyProxyTest, XForwardedForRoutesByTheHeaderAndForwardsItUnchanged) {
  StickyConfig config;
  config.hash = StickyHash::x_forwarded_for;
  start(3, config);
  for (int i = 0; i < 3; ++i) serve(i);
  const std::vector<std::string> names = {"203.0.113.7", "198.51.100.1", "2001:db8::1", "192.0.2.44",
                                          "10.1.2.3", "172.16.0.9"};
  for (std::size_t k = 0; k < names.size(); ++k) {
    // From different sources each time: the header decides, not the source.
    for (int octet : {2, 3}) {
      const std::string request = "GET /x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: " + names[k] +
                                  ", 10.0.0.1\r\n\r\n";
      Client& c = connect(octet + static_cast<int>(k) * 2);
      c.send(request);
      ASSERT_TRUE(run_until([&] { return c.poll(), c.in.size() >= request.size() + 2; }));
      EXPECT_EQ(c.instance(), expected_instance(names[k], {0, 1, 2})) << names[k];
      EXPECT_EQ(c.in.substr(c.in.find('\n') + 1), request) << "the head reached the instance changed";
    }
  }
  // No header: the source address.
  const std::string plain = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  Client& c = connect(40);
  c.send(plain);
  ASSERT_TRUE(run_until([&] { return c.poll(), c.in.size() >= plain.size() + 2; }));
  EXPECT_EQ(c.instance(), expected_instance(source_key(40), {0, 1, 2}));
}

TEST_P(StickyProxyTest, XForwardedForClientThatSendsNothingIsRoutedAtConnectTimeout) {
  StickyConfig config;
  config.hash = StickyHash::x_forwarded_for;
  config.connect_timeout = std::chrono::milliseconds(300);
  start(2, config);
  serve(0);
  serve(1);
  Client& silent = connect(5);
  const auto started = SteadyClock::now();
  // Others are served meanwhile.
  Client& other = connect(6);
  other.send("GET / HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n");
  ASSERT_TRUE(run_until([&] { return other.instance().has_value(); }));
  EXPECT_FALSE(silent.instance().has_value());
  ASSERT_TRUE(run_until([&] { return silent.instance().has_value(); }));
  EXPECT_GE(SteadyClock::now() - started, std::chrono::milliseconds(250));
  EXPECT_EQ(silent.instance(), expected_instance(source_key(5), {0, 1}));
}

// ---------------------------------------------------------------------------
// Relaying

TEST_P(StickyProxyTest, HalfCloseFromTheClientLetsTheInstanceAnswer) {
  start(1);
  serve(0);
  Client& c = connect(2);
  c.send("question");
  ::shutdown(c.fd.get(), SHUT_WR);
  ASSERT_TRUE(run_until([&] { return c.closed(); }));
  EXPECT_FALSE(c.reset);
  EXPECT_EQ(c.in, "0\nquestioneof\n");
  EXPECT_TRUE(run_until([&] { return all_closed(); }));
  EXPECT_EQ(proxy_->stats(0).open, 0u);
  EXPECT_EQ(proxy_->stats(0).bytes_in, 8u);
  EXPECT_EQ(proxy_->stats(0).bytes_out, 2u + 8 + 4);
}

TEST_P(StickyProxyTest, HalfCloseFromTheInstanceLetsTheClientGoOnSending) {
  start(1);
  Backend& b = serve(0, Backend::Mode::shut_first);
  Client& c = connect(2);
  ASSERT_TRUE(run_until([&] { return c.closed(); }));
  EXPECT_FALSE(c.reset);
  EXPECT_EQ(c.in, "0\n");
  EXPECT_EQ(proxy_->open_connections(), 1u) << "the client's direction is still open";
  c.send(std::string(100000, 'a'));
  EXPECT_TRUE(run_until([&] { return c.poll(), b.received() == 100000; }));
  ::shutdown(c.fd.get(), SHUT_WR);
  EXPECT_TRUE(run_until([&] { return all_closed(); }));
}

TEST_P(StickyProxyTest, IdleConnectionIsClosedAfterIdleTimeout) {
  StickyConfig config;
  config.idle_timeout = std::chrono::milliseconds(300);
  start(1, config);
  serve(0);
  Client& busy = connect(3);
  Client& idle = connect(2);
  ASSERT_TRUE(run_until([&] { return idle.instance().has_value() && busy.instance().has_value(); }));
  const auto started = SteadyClock::now();
  // `busy` talks every 100ms for 700ms, and stays open until 300ms after.
  auto next = started;
  int pings = 0;
  std::optional<SteadyClock::duration> idle_closed_after;
  ASSERT_TRUE(run_until([&] {
    if (SteadyClock::now() >= next && pings < 8) {
      busy.send("p");
      ++pings;
      next += std::chrono::milliseconds(100);
    }
    if (!idle_closed_after && idle.closed()) idle_closed_after = SteadyClock::now() - started;
    return busy.closed();
  }));
  const auto busy_closed_after = SteadyClock::now() - started;
  ASSERT_TRUE(idle_closed_after.has_value());
  EXPECT_GE(*idle_closed_after, std::chrono::milliseconds(250));
  EXPECT_LT(*idle_closed_after, std::chrono::milliseconds(950)) << "busy's bytes kept idle open";
  EXPECT_GE(busy_closed_after, std::chrono::milliseconds(900));
  EXPECT_EQ(busy.in, "0\npppppppp");
  EXPECT_TRUE(run_until([&] { return all_closed(); }));
}

TEST_P(StickyProxyTest, BeyondMaxConnectionsTheNewOneIsClosed) {
  StickyConfig config;
  config.max_connections = 2;
  start(1, config);
  serve(0);
  Client& a = connect(2);
  Client& b = connect(3);
  ASSERT_TRUE(run_until([&] { return a.instance().has_value() && b.instance().has_value(); }));
  Client& extra = connect(4);
  EXPECT_TRUE(run_until([&] { return extra.closed(); }));
  EXPECT_EQ(extra.in, "");
  EXPECT_EQ(proxy_->totals().rejected_limit, 1u);
  EXPECT_EQ(proxy_->open_connections(), 2u);
  // A freed place is taken again.
  clients_.erase(clients_.begin());
  ASSERT_TRUE(run_until([&] { return proxy_->open_connections() == 1; }));
  EXPECT_EQ(instance_for(5), 0);
}

TEST_P(StickyProxyTest, TwoThousandConcurrentConnectionsEchoAndClose) {
  constexpr int kClients = 2000;
  raise_fd_limit();  // about 8 fds a connection here, as vigil does for itself
  start(2);
  serve(0);
  serve(1);
  for (int k = 0; k < kClients; ++k) connect(2 + k % 200);
  ASSERT_TRUE(run_until([&] { return open_sum(2) == kClients; }, 60s))
      << open_sum(2) << " relayed of " << kClients;
  EXPECT_EQ(proxy_->open_connections(), static_cast<std::uint64_t>(kClients));
  for (int k = 0; k < kClients; ++k) clients_[static_cast<std::size_t>(k)]->send("msg " + std::to_string(k) + "\n");
  std::size_t answered = 0;
  ASSERT_TRUE(run_until(
      [&] {
        answered = 0;
        for (int k = 0; k < kClients; ++k) {
          Client& c = *clients_[static_cast<std::size_t>(k)];
          c.poll();
          answered += c.in.ends_with("\nmsg " + std::to_string(k) + "\n");
        }
        return answered == kClients;
      },
      60s))
      << answered << " answered";
  clients_.clear();
  EXPECT_TRUE(run_until([&] { return all_closed(); }, 60s)) << proxy_->open_connections() << " open";
  EXPECT_EQ(open_sum(2), 0u);
  EXPECT_EQ(proxy_->stats(0).accepted + proxy_->stats(1).accepted, static_cast<std::uint64_t>(kClients));
}

// Garbage, resets and silence from either side: each ends its own
// connection only, and the proxy goes on serving.
TEST_P(StickyProxyTest, ResetsGarbageAndSilenceHarmOnlyTheirOwnConnection) {
  start(1);
  Backend& b = serve(0);
  auto still_serving = [&] {
    Client& c = connect(9);
    c.send("ok?");
    return run_until([&] { return c.poll(), c.in == "0\nok?"; });
  };
  Client& silent = connect(2);  // connects, never sends, never reads
  ASSERT_TRUE(run_until([&] { return proxy_->stats(0).open == 1; }));

  // A client resets mid-transfer.
  {
    Client& c = connect(3);
    c.send(std::string(200000, 'r'));
    ASSERT_TRUE(run_until([&] { return c.poll(), proxy_->stats(0).bytes_in > 0; }));
    const linger l{1, 0};
    ::setsockopt(c.fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    c.fd.reset();
  }
  EXPECT_TRUE(still_serving());

  // Random bytes come back as they were.
  {
    std::mt19937 rng(7);
    std::string noise(100000, '\0');
    for (auto& ch : noise) ch = static_cast<char>(rng());
    Client& c = connect(4);
    c.send(noise);
    ASSERT_TRUE(run_until([&] { return c.poll(), c.in.size() >= noise.size() + 2; }));
    EXPECT_TRUE(c.in == "0\n" + noise);
  }

  // The instance resets, then closes, at once.
  b.set_mode(Backend::Mode::reset);
  Client& r = connect(5);
  r.send("hello");
  EXPECT_TRUE(run_until([&] { return r.closed(); }));
  b.set_mode(Backend::Mode::close);
  Client& f = connect(6);
  EXPECT_TRUE(run_until([&] { return f.closed(); }));
  EXPECT_EQ(f.in, "");
  b.set_mode(Backend::Mode::echo);
  EXPECT_TRUE(still_serving());

  // A client that never reads while the instance answers a flood: the
  // proxy holds at most its bound, and the others go on.
  {
    Client& c = connect(7);
    std::string chunk(1 << 20, 'f');
    for (int k = 0; k < 8; ++k) {
      const ssize_t n = ::send(c.fd.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
    }
    EXPECT_TRUE(still_serving());
    EXPECT_LE(proxy_->buffered_bytes(), 2 * kRelayBoundBytes * proxy_->open_connections());
  }

  EXPECT_EQ(silent.in, "");
  EXPECT_FALSE(silent.closed());
  clients_.clear();
  EXPECT_TRUE(run_until([&] { return all_closed(); }));
  EXPECT_EQ(proxy_->stats(0).open, 0u);
}

// 1 GB from a client writing as fast as it can to an instance that keeps
// stopping to read: the proxy holds at most its bound, its memory does not
// grow, and every byte arrives in order.
TEST_P(StickyProxyTest, OneGigabyteToASlowReaderStaysWithinTheBound) {
  constexpr std::uint64_t kTotal = 1ull << 30;
  constexpr std::size_t kChunk = 1 << 20;
  start(1);
  UniqueFd listener = std::move(ports_.sockets[0]);
  ASSERT_EQ(::listen(listener.get(), 4), 0);

  auto fnv = [](std::uint64_t h, const char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(p[i])) * 0x100000001b3ull;
    return h;
  };
  std::atomic<bool> reader_done{false}, writer_done{false};
  std::uint64_t got = 0, got_sum = 0xcbf29ce484222325ull, sent_sum = 0xcbf29ce484222325ull;
  std::vector<char> buf(256 * 1024);
  std::thread reader([&] {
    UniqueFd fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    std::uint64_t next_pause = 64ull << 20;
    for (;;) {
      const ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), 0);
      if (n <= 0) break;
      got += static_cast<std::uint64_t>(n);
      got_sum = fnv(got_sum, buf.data(), static_cast<std::size_t>(n));
      if (got >= next_pause) {  // load: the reader stops for a while
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        next_pause += 64ull << 20;
      }
    }
    reader_done = true;
  });

  Client& c = connect(2);
  set_nonblocking(c.fd.get(), false);
  // The proxy's memory before the transfer, with every buffer of the test allocated.
  std::vector<char> chunk(kChunk);
  std::mt19937_64 rng(42);
  for (std::size_t i = 0; i < kChunk; i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(chunk.data() + i, &v, 8);
  }
  const std::uint64_t rss_before = status_kib(::getpid(), "VmRSS").value_or(0);
  std::thread writer([&] {
    for (std::uint64_t k = 0; k < kTotal / kChunk; ++k) {
      std::memcpy(chunk.data(), &k, sizeof k);  // chunk order shows in the checksum
      sent_sum = fnv(sent_sum, chunk.data(), kChunk);
      std::size_t off = 0;
      while (off < kChunk) {
        const ssize_t n = ::send(c.fd.get(), chunk.data() + off, kChunk - off, MSG_NOSIGNAL);
        if (n <= 0) return;
        off += static_cast<std::size_t>(n);
      }
    }
    ::shutdown(c.fd.get(), SHUT_WR);
    writer_done = true;
  });

  std::uint64_t max_buffered = 0, max_rss = rss_before;
  auto next_rss = SteadyClock::now();
  const bool finished = run_until(
      [&] {
        max_buffered = std::max(max_buffered, proxy_->buffered_bytes());
        if (SteadyClock::now() >= next_rss) {
          max_rss = std::max(max_rss, status_kib(::getpid(), "VmRSS").value_or(0));
          next_rss += std::chrono::milliseconds(50);
        }
        return reader_done.load();
      },
      120s);
  if (!finished) ::shutdown(c.fd.get(), SHUT_RDWR);  // unblock the threads
  writer.join();
  if (!finished) ::shutdown(listener.get(), SHUT_RDWR);
  reader.join();
  set_nonblocking(c.fd.get());
  ASSERT_TRUE(finished) << got << " bytes arrived";
  EXPECT_TRUE(writer_done);
  EXPECT_EQ(got, kTotal);
  EXPECT_EQ(got_sum, sent_sum);
  EXPECT_EQ(proxy_->stats(0).bytes_in, kTotal);
  EXPECT_LE(max_buffered, kRelayBoundBytes);
  EXPECT_GT(max_buffered, 0u);
  // (AddressSanitizer's quarantine keeps freed buffers resident.)
  if (!kAddressSanitizer) {
    EXPECT_LT(max_rss - rss_before, 32u * 1024) << "KiB of VmRSS growth";
  }
  EXPECT_TRUE(run_until([&] { return c.closed() && proxy_->open_connections() == 0; }));
}

TEST_P(StickyProxyTest, DeletingTheProxyClosesEverything) {
  start(1);
  Backend& b = serve(0);
  Client& c = connect(2);
  ASSERT_TRUE(run_until([&] { return c.instance().has_value(); }));
  Client& waiting = connect(3);  // perhaps not yet accepted
  (void)waiting;
  proxy_.reset();
  EXPECT_TRUE(run_until([&] { return c.closed() && b.open() == 0; }));
  EXPECT_TRUE(run_until([&] { return waiting.closed(); }));
}

TEST_P(StickyProxyTest, ListensOnIpv6AndHashesTheSixteenByteAddress) {
  if (read_file("/proc/net/if_inet6").find("00000000000000000000000000000001") == std::string::npos)
    GTEST_SKIP() << "no IPv6 loopback in this environment";
  ports_ = reserve_ports(2);
  StickyConfig config;
  config.listen = *parse_listen_address("[::1]:0", nullptr);
  proxy_ = std::make_unique<StickyProxy>(*loop_, "web", config, ports_.base, 2, GetParam());
  for (int i = 0; i < 2; ++i) {
    proxy_->set_routable(i, true);
    serve(i);
  }
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(proxy_->port());
  sa.sin6_addr = in6addr_loopback;
  auto c = std::make_unique<Client>();
  c->fd = UniqueFd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  ASSERT_TRUE(::connect(c->fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 || errno == EINPROGRESS);
  ASSERT_TRUE(run_until([&] { return c->instance().has_value(); }));
  const std::string key(reinterpret_cast<const char*>(&in6addr_loopback), sizeof in6addr_loopback);
  EXPECT_EQ(c->instance(), expected_instance(key, {0, 1}));
  // The port is taken now: a second proxy on it says so.
  StickyConfig same = config;
  same.listen.port = proxy_->port();
  try {
    StickyProxy second(*loop_, "web", same, ports_.base, 2, GetParam());
    ADD_FAILURE() << "a second proxy listened on a taken port";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on [::1]:"), std::string::npos) << e.what();
  }
}

// Out of fds for the pipes: the splice engine copies small messages without
// a pipe anyway; bulk, which would take one, is copied through user space
// instead and counted. The buffer engine needs no pipes.
TEST_P(StickyProxyTest, WithoutFdsForPipesTheConnectionFallsBackToCopying) {
  // UBSan's vptr check opens a pipe of its own to test memory, and reports
  // a false "invalid vptr" when the fd limit leaves it none.
  if (kAddressSanitizer) GTEST_SKIP() << "the sanitizer runtime needs fds under the lowered limit";
  start(1);
  serve(0);
  Client& c = connect(2);
  c.send("small");
  ASSERT_TRUE(run_until([&] { return c.poll(), c.in == "0\nsmall"; }));
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  // Not one more fd: the lowest free one is over the limit.
  const auto used = open_fds();
  rlim_t limit = 0;
  while (used.contains(static_cast<int>(limit))) ++limit;
  rlimit low = old;
  low.rlim_cur = limit;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  const std::string bulk(256 * 1024, 'b');  // reads that fill the copy buffer: bulk
  c.send(bulk);
  const bool echoed = run_until([&] { return c.poll(), c.in == "0\nsmall" + bulk; });
  ::setrlimit(RLIMIT_NOFILE, &old);
  ASSERT_TRUE(echoed);
  EXPECT_EQ(proxy_->totals().splice_fallbacks, GetParam() == RelayEngine::splice ? 1u : 0u);
  clients_.clear();
  EXPECT_TRUE(run_until([&] { return all_closed(); }));
}

// ---------------------------------------------------------------------------
// Upgrade in place

// Across a handover: an idle connection, one half-closed by its instance,
// and one holding bytes both ways (the client not reading, the instance's
// echo backed up) all go on; the last delivers every byte once, in order.
TEST_P(StickyProxyTest, AHandoverKeepsEveryConnectionAndTheBytesItsRelayHeld) {
  start(1);
  Backend& backend = serve(0);
  Client& idle = connect(2);
  idle.send("before\n");
  ASSERT_TRUE(run_until([&] { return idle.poll(), idle.in == "0\nbefore\n"; })) << idle.in;
  backend.set_mode(Backend::Mode::shut_first);
  Client& half = connect(3);
  ASSERT_TRUE(run_until([&] { return half.closed(); }));
  ASSERT_EQ(half.in, "0\n");
  ASSERT_FALSE(half.reset);
  backend.set_mode(Backend::Mode::echo);
  Client& busy = connect(4);
  // More than every socket buffer on the way can take (loopback buffers
  // grow to several MiB each).
  std::string payload(64 << 20, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + (i * 7 + i / 4099) % 26);
  busy.send(payload);
  // Nothing read: the bytes back up until the relay holds some.
  ASSERT_TRUE(run_until([&] { return busy.flush(), proxy_->buffered_bytes() >= 16 * 1024; }))
      << proxy_->buffered_bytes();
  const std::uint64_t received = backend.received();

  const auto errors = hand_over(1);
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(proxy_->open_connections(), 3u);
  EXPECT_EQ(proxy_->stats(0).open, 3u);
  EXPECT_EQ(proxy_->stats(0).accepted, 3u);

  idle.send("after\n");
  EXPECT_TRUE(run_until([&] { return idle.poll(), idle.in == "0\nbefore\nafter\n"; })) << idle.in;
  half.send("still read\n");
  EXPECT_TRUE(run_until([&] { return backend.received() >= received + 11; }));
  EXPECT_TRUE(run_until([&] {
    busy.poll();
    return busy.in.size() >= 2 + payload.size();
  })) << busy.in.size() << " of " << 2 + payload.size();
  EXPECT_EQ(busy.in.size(), 2 + payload.size());
  {
    const std::string want = "0\n" + payload;
    const auto at = std::mismatch(busy.in.begin(), busy.in.end(), want.begin(), want.end()).first - busy.in.begin();
    EXPECT_TRUE(busy.in == want) << "bytes lost, doubled or reordered across the handover: from byte " << at
                                 << " of " << want.size();
  }
  ::shutdown(busy.fd.get(), SHUT_WR);
  EXPECT_TRUE(run_until([&] { return busy.closed(); }));
  EXPECT_TRUE(busy.in.ends_with("eof\n"));
  clients_.clear();
  EXPECT_TRUE(run_until([&] { return all_closed(); }));
  EXPECT_EQ(open_sum(1), 0u);
  // A new connection after it, on the listener taken over.
  EXPECT_EQ(instance_for(5), 0);
  EXPECT_EQ(proxy_->stats(0).accepted, 4u);
}

INSTANTIATE_TEST_SUITE_P(Engines, StickyProxyTest,
                         ::testing::Values(RelayEngine::buffer, RelayEngine::splice), engine_name);

}  // namespace
}  // namespace vigil::it
