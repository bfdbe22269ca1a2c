// The sticky proxy's shell: the listening socket, and per connection the
// peek (x-forwarded-for), the connect in hash order with a deadline, then a
// Relay (sticky_relay.h) until both sides are done, an error, or idle. The
// choice of instance is core's (sticky_order); nothing here blocks, and a
// connection never deletes itself inside its own callbacks (EventLoop::defer).
#include "sticky_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <unordered_map>

#include <event2/event.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "fd.h"
#include "forwarded_for.h"
#include "handover.h"
#include "real_clock.h"
#include "sticky_hash.h"
#include "listen_socket.h"
#include "sticky_relay.h"

namespace vigil {

namespace {

// Accepts per readiness event: a burst is taken, a flood does not hold the loop.
constexpr int kAcceptsPerEvent = 64;
// After accept fails for want of fds or memory: the connection stays in the
// backlog and would make the listener readable again at once.
constexpr Duration kAcceptPause = std::chrono::milliseconds(100);
// The most of a client's first bytes looked at for X-Forwarded-For.
constexpr std::size_t kPeekBytes = 8192;
// Route failures and accept errors are warned about at most this often.
constexpr Duration kWarnEvery = std::chrono::seconds(10);

void set_nodelay(int fd) {
  // A proxy must not add Nagle's delay to the small writes it relays.
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

// "127.0.0.2:41234" / "[::1]:41234", for log lines.
std::string peer_text(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    ::inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(a.sin_port));
  }
  const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
  ::inet_ntop(AF_INET6, &a.sin6_addr, host, sizeof host);
  return "[" + std::string(host) + "]:" + std::to_string(ntohs(a.sin6_port));
}

// The raw bytes of the peer's address: what `hash = "ip"` hashes.
std::string peer_key(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    return std::string(reinterpret_cast<const char*>(&a.sin_addr), sizeof a.sin_addr);
  }
  const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
  return std::string(reinterpret_cast<const char*>(&a.sin6_addr), sizeof a.sin6_addr);
}

// A non-blocking connect's outcome: 0, or why it failed.
int connect_error(int fd) {
  int error = 0;
  socklen_t len = sizeof error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) return errno;
  return error;
}

// Whether a warning is due (one at most every kWarnEvery).
bool warning_due(std::optional<SteadyTime>& last, SteadyTime now) {
  if (last && now - *last < kWarnEvery) return false;
  last = now;
  return true;
}

}  // namespace

struct StickyProxy::Impl {
  class Connection;

  Impl(EventLoop& l, std::string p, const StickyConfig& c, int base, int n, RelayEngine e)
      : loop(l), program(std::move(p)), config(c), port_base(base), instances(n), engine(e),
        resume_accept(l, [this] { acceptable->enable(); }) {
    grow(n);
  }

  // Binds config.listen, or takes `inherited` (listening on it already).
  void listen(UniqueFd inherited);
  void on_acceptable();
  void grow(int n) {
    if (n > static_cast<int>(stats.size())) {
      stats.resize(static_cast<std::size_t>(n));
      routable.resize(static_cast<std::size_t>(n), false);
    }
  }
  std::vector<int> candidates() const {
    std::vector<int> out;
    for (int i = 0; i < instances && i < static_cast<int>(routable.size()); ++i)
      if (routable[static_cast<std::size_t>(i)]) out.push_back(i);
    return out;
  }
  // `peer`: the client, named in the warning (if one is due).
  void note_route_failure(int index, int error, const sockaddr_storage& peer);
  // Frees a closed connection on the next loop turn (it may be inside its
  // own callback now).
  void retire(Connection* c);

  EventLoop& loop;
  std::string program;
  StickyConfig config;
  int port_base;
  int instances;
  RelayEngine engine;
  std::vector<StickyInstanceStats> stats;  // never shrinks: removed instances' connections finish
  std::vector<bool> routable;
  StickyProxyStats totals;
  std::uint64_t open = 0;  // connections accepted and not yet closed, in any phase
  std::uint16_t bound_port = 0;
  std::optional<SteadyTime> last_route_warning, last_accept_warning, last_limit_warning;
  std::uint64_t route_failures_unwarned = 0;

  PipePool pipes;  // before the connections: their relays give their pipes back to it
  UniqueFd listen_fd;
  std::unique_ptr<IoEvent> acceptable;
  Timer resume_accept;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections;
  // Deferred frees hold this weakly: none runs after the proxy is gone.
  std::shared_ptr<char> alive = std::make_shared<char>();
};

// One client connection, through its phases. Members that watch an fd are
// declared after the fds, so they are destroyed first.
class StickyProxy::Impl::Connection final : public RelayOwner {
 public:
  Connection(Impl& proxy, UniqueFd client, std::string key, const sockaddr_storage& peer)
      : proxy_(proxy), client_(std::move(client)), key_(std::move(key)), peer_(peer),
        deadline_(proxy.loop, [this] { on_deadline(); }) {}

  void start() {
    if (proxy_.config.hash == StickyHash::ip) return route(key_);
    phase_ = Phase::peeking;
    head_.reserve(kPeekBytes);
    client_readable_ = std::make_unique<IoEvent>(proxy_.loop, client_.get(), EV_READ,
                                                 [this](short) { on_client_readable(); });
    client_readable_->enable();
    deadline_.arm(proxy_.config.connect_timeout);
  }

  std::uint64_t buffered_bytes() const { return relay_ ? relay_->buffered_bytes() : head_.size(); }

  // Across an upgrade: a connection the old vigil was relaying goes on
  // with what its relay held.
  void resume_relay(int instance, UniqueFd instance_fd, const RelayCarry& carry) {
    instance_ = instance;
    instance_fd_ = std::move(instance_fd);
    start_relay(carry, false);
  }
  // One it was still peeking at or connecting: peeked at on from `head`,
  // then routed again.
  void resume_route(std::string head) {
    head_ = std::move(head);
    if (proxy_.config.hash == StickyHash::ip) return route(key_);
    phase_ = Phase::peeking;
    client_readable_ = std::make_unique<IoEvent>(proxy_.loop, client_.get(), EV_READ,
                                                 [this](short) { on_client_readable(); });
    const ForwardedFor f = peek_forwarded_for(head_, kPeekBytes);
    if (f.status == ForwardedFor::Status::need_more && head_.size() < kPeekBytes) {
      client_readable_->enable();
      deadline_.arm(proxy_.config.connect_timeout);
      return;
    }
    route(f.status == ForwardedFor::Status::found ? f.client : key_);
  }

  // What save_handover keeps of it; null once it is closed.
  nlohmann::json save(std::vector<int>& keep) const {
    if (phase_ == Phase::closed) return nullptr;
    if (phase_ != Phase::relaying)
      return keep_fd(keep, nlohmann::json{{"client", client_.get()}, {"head", to_hex(head_)}, {"key", to_hex(key_)}},
                     client_.get());
    const RelayCarry c = relay_->snapshot();
    auto direction = [&keep](const RelayDirection& d) {
      nlohmann::json j{{"held", to_hex(d.held)}, {"src_eof", d.src_eof}, {"shut", d.shut}};
      if (d.pipe >= 0) {
        j["pipe"] = d.pipe;
        j["in_pipe"] = d.in_pipe;
        keep.push_back(d.pipe);
      }
      return j;
    };
    keep.push_back(relay_->client_fd());
    keep.push_back(relay_->instance_fd());
    return nlohmann::json{{"client", relay_->client_fd()},
                          {"server", relay_->instance_fd()},
                          {"instance", instance_},
                          {"to_instance", direction(c.to_instance)},
                          {"to_client", direction(c.to_client)}};
  }

  void relayed(bool to_instance, std::size_t bytes) override {
    auto& s = proxy_.stats[static_cast<std::size_t>(instance_)];
    (to_instance ? s.bytes_in : s.bytes_out) += bytes;
    last_activity_ = RealClock::get().steady();
  }

  void relay_done(bool reset) override { close(reset ? "reset" : "closed"); }
  void splice_unavailable() override { ++proxy_.totals.splice_fallbacks; }

 private:
  static nlohmann::json keep_fd(std::vector<int>& keep, nlohmann::json j, int fd) {
    keep.push_back(fd);
    return j;
  }

  enum class Phase { routing, peeking, connecting, relaying, closed };

  // x-forwarded-for: the client's first bytes, kept to be sent on unchanged.
  void on_client_readable() {
    const std::size_t had = head_.size();
    head_.resize(kPeekBytes);
    ssize_t n;
    do n = ::recv(client_.get(), head_.data() + had, kPeekBytes - had, 0);
    while (n < 0 && errno == EINTR);
    head_.resize(had + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0) return close("reset before it was routed");
    const ForwardedFor f = peek_forwarded_for(head_, kPeekBytes);
    // EOF ends the head: what came is all there is to look at.
    if (f.status == ForwardedFor::Status::need_more && n > 0 && head_.size() < kPeekBytes) return;
    client_readable_->disable();
    deadline_.cancel();
    route(f.status == ForwardedFor::Status::found ? f.client : key_);
  }

  void route(const std::string& identity) {
    phase_ = Phase::routing;
    const std::vector<int> candidates = proxy_.candidates();
    order_ = sticky_order(sticky_key(identity), candidates);
    try_next();
  }

  // Connects to the next instance in hash order; none left: the client goes.
  void try_next() {
    while (next_ < order_.size()) {
      instance_ = order_[next_++];
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(static_cast<std::uint16_t>(proxy_.port_base + instance_));
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!fd) {
        proxy_.note_route_failure(instance_, errno, peer_);
        continue;
      }
      if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
        instance_fd_ = std::move(fd);
        return start_relay(head_carry(), true);
      }
      if (errno == EINPROGRESS) {
        // On loopback the handshake is over by the time connect returns:
        // one poll says so, instead of a write event added, waited for and
        // removed, and a getsockopt.
        pollfd p{fd.get(), POLLOUT, 0};
        if (::poll(&p, 1, 0) == 1) {
          if (!(p.revents & (POLLERR | POLLHUP))) {
            instance_fd_ = std::move(fd);
            return start_relay(head_carry(), true);
          }
          const int error = connect_error(fd.get());
          proxy_.note_route_failure(instance_, error != 0 ? error : ECONNREFUSED, peer_);
          continue;
        }
        instance_fd_ = std::move(fd);
        connecting_ = std::make_unique<IoEvent>(proxy_.loop, instance_fd_.get(), EV_WRITE,
                                                [this](short) { on_connect_ready(); });
        connecting_->enable();
        phase_ = Phase::connecting;
        deadline_.arm(proxy_.config.connect_timeout);
        return;
      }
      proxy_.note_route_failure(instance_, errno, peer_);
    }
    ++proxy_.totals.rejected_no_instance;
    instance_ = -1;
    close("no instance took it");
  }

  void on_connect_ready() {
    const int error = connect_error(instance_fd_.get());
    connecting_->disable();
    if (error == 0) {
      deadline_.cancel();
      return start_relay(head_carry(), true);
    }
    // The next try replaces connecting_, which is running now: it happens
    // on the deadline's callback instead, on the next loop turn.
    proxy_.note_route_failure(instance_, error, peer_);
    instance_fd_.reset();
    retry_ = true;
    deadline_.arm(Duration(0));
  }

  // A new connection's relay starts with the peeked head for the instance.
  RelayCarry head_carry() {
    RelayCarry c;
    c.to_instance.held = std::move(head_);
    return c;
  }

  // `accepted`: a connection new to this vigil (one taken over across an
  // upgrade was counted by the old one).
  void start_relay(const RelayCarry& carry, bool accepted) {
    // The client's socket has TCP_NODELAY from the listener (accept copies it).
    if (accepted) set_nodelay(instance_fd_.get());
    try {
      if (proxy_.engine == RelayEngine::splice)
        relay_ = make_splice_relay(proxy_.loop, std::move(client_), std::move(instance_fd_), carry, *this,
                                   proxy_.pipes);
      else
        relay_ = make_buffer_relay(proxy_.loop, std::move(client_), std::move(instance_fd_), carry, *this);
    } catch (const std::exception& e) {
      spdlog::error("program {}: sticky proxy: cannot relay {}: {}", proxy_.program, peer_text(peer_), e.what());
      return close("no relay");
    }
    std::string().swap(head_);
    phase_ = Phase::relaying;
    auto& s = proxy_.stats[static_cast<std::size_t>(instance_)];
    ++s.open;
    if (accepted) ++s.accepted;
    if (spdlog::should_log(spdlog::level::debug))
      spdlog::debug("program {}: sticky proxy: {} -> instance {}", proxy_.program, peer_text(peer_), instance_);
    last_activity_ = RealClock::get().steady();
    deadline_.arm(proxy_.config.idle_timeout);
  }

  // One timer, by phase: the peek's end, the connect's timeout (or the
  // next try), the idle check (re-armed from the last activity, so reads
  // never touch the timer).
  void on_deadline() {
    switch (phase_) {
      case Phase::peeking:
        client_readable_->disable();
        return route(key_);
      case Phase::connecting:
        connecting_.reset();
        if (!std::exchange(retry_, false)) {
          proxy_.note_route_failure(instance_, ETIMEDOUT, peer_);
          instance_fd_.reset();
        }
        return try_next();
      case Phase::relaying: {
        const auto idle = RealClock::get().steady() - last_activity_;
        if (idle < proxy_.config.idle_timeout)
          return deadline_.arm(std::chrono::ceil<Duration>(proxy_.config.idle_timeout - idle));
        relay_.reset();  // not inside the relay's callbacks: closed now
        return close("idle");
      }
      case Phase::routing:
      case Phase::closed:
        return;
    }
  }

  void close(const char* why) {
    if (phase_ == Phase::closed) return;
    if (phase_ == Phase::relaying) --proxy_.stats[static_cast<std::size_t>(instance_)].open;
    phase_ = Phase::closed;
    --proxy_.open;
    deadline_.cancel();
    if (client_readable_) client_readable_->disable();
    if (connecting_) connecting_->disable();
    // The peer's text is made only for a debug line.
    if (spdlog::should_log(spdlog::level::debug)) {
      if (instance_ >= 0)
        spdlog::debug("program {}: sticky proxy: {} (instance {}) {}", proxy_.program, peer_text(peer_),
                      instance_, why);
      else
        spdlog::debug("program {}: sticky proxy: {} {}", proxy_.program, peer_text(peer_), why);
    }
    proxy_.retire(this);
  }

  Impl& proxy_;
  UniqueFd client_;
  UniqueFd instance_fd_;
  std::string key_;   // raw address bytes
  sockaddr_storage peer_;  // for log lines (peer_text)
  std::string head_;  // peeked bytes, until the relay takes them
  std::vector<int> order_;
  std::size_t next_ = 0;
  int instance_ = -1;
  bool retry_ = false;
  Phase phase_ = Phase::routing;
  SteadyTime last_activity_{};
  Timer deadline_;
  std::unique_ptr<IoEvent> client_readable_;
  std::unique_ptr<IoEvent> connecting_;
  std::unique_ptr<Relay> relay_;
};

void StickyProxy::Impl::listen(UniqueFd inherited) {
  const ListenAddress& a = config.listen;
  auto fail = [&](int error) {
    return std::runtime_error("cannot listen on " + a.to_string() + ": " + std::strerror(error));
  };
  UniqueFd fd = inherited ? std::move(inherited) : listen_tcp(a, SOCK_NONBLOCK);
  if (!fd) throw fail(errno);
  set_nonblocking(fd.get());
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) throw fail(errno);
  bound_port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(bound).sin6_port
                                                 : reinterpret_cast<sockaddr_in&>(bound).sin_port);
  // Accepted sockets inherit it: one setsockopt per connection fewer.
  set_nodelay(fd.get());
  listen_fd = std::move(fd);
  acceptable = std::make_unique<IoEvent>(loop, listen_fd.get(), EV_READ, [this](short) { on_acceptable(); });
  acceptable->enable();
}

void StickyProxy::Impl::on_acceptable() {
  for (int i = 0; i < kAcceptsPerEvent; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    UniqueFd client(::accept4(listen_fd.get(), reinterpret_cast<sockaddr*>(&ss), &len,
                              SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!client) {
      const int error = errno;
      if (error == EAGAIN || error == EWOULDBLOCK) return;
      if (error == EINTR || error == ECONNABORTED || error == EPROTO) continue;
      acceptable->disable();
      resume_accept.arm(kAcceptPause);
      if (warning_due(last_accept_warning, RealClock::get().steady()))
        spdlog::warn("program {}: sticky proxy on {}: cannot accept connections: {}; pausing accepts "
                     "for {}ms",
                     program, config.listen.to_string(), std::strerror(error),
                     std::chrono::duration_cast<std::chrono::milliseconds>(kAcceptPause).count());
      return;
    }
    if (open >= static_cast<std::uint64_t>(std::max(config.max_connections, 0))) {
      ++totals.rejected_limit;  // closed here, by `client`
      if (warning_due(last_limit_warning, RealClock::get().steady()))
        spdlog::warn("program {}: sticky proxy on {}: {} connections open, the most allowed "
                     "(max_connections): closing new ones at once ({} so far)",
                     program, config.listen.to_string(), open, totals.rejected_limit);
      continue;
    }
    auto c = std::make_unique<Connection>(*this, std::move(client), peer_key(ss), ss);
    Connection* raw = c.get();
    connections.emplace(raw, std::move(c));
    ++open;
    raw->start();
  }
}

void StickyProxy::Impl::note_route_failure(int index, int error, const sockaddr_storage& peer) {
  ++stats[static_cast<std::size_t>(index)].route_failures;
  ++route_failures_unwarned;
  if (!warning_due(last_route_warning, RealClock::get().steady())) return;
  spdlog::warn("program {}: sticky proxy: cannot connect {} to instance {} (127.0.0.1:{}): {}; "
               "trying the next instance ({} connect failure{} since the last warning)",
               program, peer_text(peer), index, port_base + index, std::strerror(error), route_failures_unwarned,
               route_failures_unwarned == 1 ? "" : "s");
  route_failures_unwarned = 0;
}

void StickyProxy::Impl::retire(Connection* c) {
  loop.defer([this, c, alive = std::weak_ptr<char>(alive)] {
    if (!alive.expired()) connections.erase(c);
  });
}

StickyProxy::StickyProxy(EventLoop& loop, std::string program, const StickyConfig& config,
                         int port_base, int instances, RelayEngine engine)
    : StickyProxy(loop, std::move(program), config, port_base, instances, engine, UniqueFd()) {}

StickyProxy::StickyProxy(EventLoop& loop, std::string program, const StickyConfig& config,
                         int port_base, int instances, RelayEngine engine, UniqueFd listener)
    : impl_(std::make_unique<Impl>(loop, std::move(program), config, port_base, instances, engine)) {
  impl_->listen(std::move(listener));
}

nlohmann::json StickyProxy::save_handover(std::vector<int>& keep) const {
  auto connections = nlohmann::json::array();
  for (const auto& [raw, c] : impl_->connections)
    if (nlohmann::json j = c->save(keep); !j.is_null()) connections.push_back(std::move(j));
  keep.push_back(impl_->listen_fd.get());
  return nlohmann::json{{"listener", impl_->listen_fd.get()},
                        {"stats", save_state(impl_->stats)},
                        {"totals", save_state(impl_->totals)},
                        {"connections", std::move(connections)}};
}

namespace {

// A direction of a saved relay, with the bytes its splice pipe held read
// out of the pipe (which the old vigil passed on; closed here).
RelayDirection load_direction(const nlohmann::json& j, const std::string& path) {
  RelayDirection d;
  if (!j.is_object()) throw HandoverError(path + ": not an object");
  auto held = from_hex(j.value("held", std::string()));
  if (!held) throw HandoverError(path + ".held: not hex");
  d.held = std::move(*held);
  d.src_eof = j.value("src_eof", false);
  d.shut = j.value("shut", false);
  if (j.contains("pipe")) {
    UniqueFd pipe = take_inherited_fd(j.value("pipe", -1L));
    std::size_t left = j.value("in_pipe", std::size_t{0});
    if (!pipe) throw HandoverError(path + ".pipe: not open");
    if (left > kRelayBoundBytes) throw HandoverError(path + ".in_pipe: more than a relay holds");
    char buf[16 * 1024];
    while (left > 0) {
      const ssize_t n = ::read(pipe.get(), buf, std::min(left, sizeof buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw HandoverError(path + ".pipe: " + std::to_string(left) + " bytes missing");
      d.held.append(buf, static_cast<std::size_t>(n));
      left -= static_cast<std::size_t>(n);
    }
  }
  return d;
}

sockaddr_storage peer_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ss;
}

}  // namespace

std::vector<std::string> StickyProxy::resume(const nlohmann::json& saved, const std::string& path) {
  std::vector<std::string> errors;
  Impl& p = *impl_;
  try {
    LoadArchive a(saved, path);
    a("stats", p.stats);
    a("totals", p.totals);
  } catch (const HandoverError& e) {
    errors.push_back(e.what());
  }
  for (auto& s : p.stats) s.open = 0;
  p.grow(p.instances);
  p.routable.resize(std::max(p.routable.size(), p.stats.size()), false);
  const auto connections = saved.value("connections", nlohmann::json::array());
  for (std::size_t n = 0; n < connections.size(); ++n) {
    const auto& j = connections[n];
    const std::string at = path + ".connections[" + std::to_string(n) + "]";
    try {
      if (!j.is_object()) throw HandoverError(at + ": not an object");
      UniqueFd client = take_inherited_fd(j.value("client", -1L));
      if (!client) throw HandoverError(at + ".client: not open");
      if (j.contains("server")) {
        UniqueFd server = take_inherited_fd(j.value("server", -1L));
        if (!server) throw HandoverError(at + ".server: not open");
        const int index = j.value("instance", -1);
        if (index < 0 || index >= (1 << 20)) throw HandoverError(at + ".instance: out of range");
        RelayCarry carry{load_direction(j.value("to_instance", nlohmann::json()), at + ".to_instance"),
                         load_direction(j.value("to_client", nlohmann::json()), at + ".to_client")};
        // An EOF with nothing left before it is passed on here: the relay
        // would wait for bytes to deliver first.
        for (auto [d, dst] : {std::pair{&carry.to_instance, server.get()}, std::pair{&carry.to_client, client.get()}})
          if (d->src_eof && d->held.empty() && !d->shut) {
            ::shutdown(dst, SHUT_WR);
            d->shut = true;
          }
        if (carry.to_instance.shut && carry.to_client.shut) continue;  // it had ended: closed here
        p.grow(index + 1);
        const sockaddr_storage peer = peer_of(client.get());
        auto c = std::make_unique<Impl::Connection>(p, std::move(client), peer_key(peer), peer);
        Impl::Connection* raw = c.get();
        p.connections.emplace(raw, std::move(c));
        ++p.open;
        raw->resume_relay(index, std::move(server), carry);
      } else {
        auto head = from_hex(j.value("head", std::string()));
        auto key = from_hex(j.value("key", std::string()));
        if (!head || !key) throw HandoverError(at + ": head or key not hex");
        const sockaddr_storage peer = peer_of(client.get());
        auto c = std::make_unique<Impl::Connection>(p, std::move(client), std::move(*key), peer);
        Impl::Connection* raw = c.get();
        p.connections.emplace(raw, std::move(c));
        ++p.open;
        raw->resume_route(std::move(*head));
      }
    } catch (const std::exception& e) {
      errors.push_back(std::string("program ") + p.program + ": sticky proxy: a connection was closed: " + e.what());
    }
  }
  return errors;
}

StickyProxy::~StickyProxy() = default;

void StickyProxy::set_routable(int index, bool routable) {
  if (index < 0) return;
  impl_->grow(index + 1);
  impl_->routable[static_cast<std::size_t>(index)] = routable;
}

void StickyProxy::update(const StickyConfig& config, int port_base, int instances) {
  impl_->config = config;
  impl_->port_base = port_base;
  impl_->instances = instances;
  impl_->grow(instances);
}

std::uint16_t StickyProxy::port() const { return impl_->bound_port; }

const StickyInstanceStats& StickyProxy::stats(int index) const {
  return impl_->stats.at(static_cast<std::size_t>(index));
}

const StickyProxyStats& StickyProxy::totals() const { return impl_->totals; }

std::uint64_t StickyProxy::open_connections() const { return impl_->open; }

std::uint64_t StickyProxy::buffered_bytes() const {
  std::uint64_t n = 0;
  for (const auto& [raw, c] : impl_->connections) n += c->buffered_bytes();
  return n;
}

}  // namespace vigil
