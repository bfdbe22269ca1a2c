// The two relay engines. Both copy in both directions, stop reading a side
// while the other side's share of the bound is full (back-pressure), pass
// EOF on once its bytes are delivered, and end at once on an error of either
// side. Neither allocates per read: bufferevents reuse libevent's chains,
// splice moves pages through the pipe.
#include "sticky_relay.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace vigil {

namespace {

// Callbacks from libevent's C frames: nothing may escape them.
template <typename F>
void guarded(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    spdlog::error("internal error in a sticky proxy relay callback: {}", e.what());
  } catch (...) {
    spdlog::error("internal error in a sticky proxy relay callback: unknown exception");
  }
}

// Close with RST rather than FIN: how a reset of one side reaches the other.
void set_linger_zero(int fd) {
  if (fd < 0) return;
  const linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

// ---------------------------------------------------------------------------
// bufferevents: libevent's le-proxy pattern. Input is moved to the other
// side's output at once; when that output reaches kStopReadingAt the reader
// is disabled until it drains to kResumeAt. One read is at most kMaxRead, so
// an output never holds more than kRelayBoundBytes.

constexpr std::size_t kMaxRead = 16 * 1024;
constexpr std::size_t kStopReadingAt = kRelayBoundBytes - kMaxRead;
constexpr std::size_t kResumeAt = kStopReadingAt / 2;

class BufferRelay final : public Relay {
 public:
  BufferRelay(EventLoop& loop, UniqueFd client, UniqueFd instance, const RelayCarry& carry,
              RelayOwner& owner)
      : owner_(owner) {
    sides_[0].relay = sides_[1].relay = this;
    sides_[0].index = 0;
    sides_[1].index = 1;
    UniqueFd fds[2] = {std::move(client), std::move(instance)};
    // What goes to side i (its output), and from it.
    const RelayDirection* to[2] = {&carry.to_client, &carry.to_instance};
    for (int i = 0; i < 2; ++i) {
      Side& s = sides_[i];
      s.bev = bufferevent_socket_new(loop.base(), fds[i].get(), BEV_OPT_CLOSE_ON_FREE);
      if (!s.bev) {
        if (i == 1) bufferevent_free(sides_[0].bev);
        throw std::runtime_error("cannot create a bufferevent");
      }
      fds[i].release();  // closed by bufferevent_free from here
      bufferevent_set_max_single_read(s.bev, kMaxRead);
      bufferevent_setcb(s.bev, &BufferRelay::on_read, &BufferRelay::on_write,
                        &BufferRelay::on_event, &s);
      s.read_eof = to[1 - i]->src_eof;
      s.write_shut = to[i]->shut;
      if (!to[i]->held.empty()) evbuffer_add(bufferevent_get_output(s.bev), to[i]->held.data(), to[i]->held.size());
    }
    for (Side& s : sides_) bufferevent_enable(s.bev, s.read_eof ? EV_WRITE : EV_READ | EV_WRITE);
  }

  ~BufferRelay() override {
    for (Side& s : sides_) {
      if (!s.bev) continue;
      if (reset_) set_linger_zero(bufferevent_getfd(s.bev));
      bufferevent_free(s.bev);
    }
  }

  std::uint64_t buffered_bytes() const override {
    std::uint64_t n = 0;
    for (const Side& s : sides_)
      n += evbuffer_get_length(bufferevent_get_input(s.bev)) +
           evbuffer_get_length(bufferevent_get_output(s.bev));
    return n;
  }

  RelayCarry snapshot() const override {
    RelayCarry c;
    RelayDirection* to[2] = {&c.to_client, &c.to_instance};
    for (int i = 0; i < 2; ++i) {
      // Older bytes first: the output toward side i, then what the other
      // side's input holds still.
      RelayDirection& d = *to[i];
      for (evbuffer* b : {bufferevent_get_output(sides_[i].bev), bufferevent_get_input(sides_[1 - i].bev)}) {
        // Peeked, not evbuffer_copyout: that refuses a buffer whose start
        // is frozen, as a bufferevent's output is.
        const int chunks = evbuffer_peek(b, -1, nullptr, nullptr, 0);
        std::vector<evbuffer_iovec> v(static_cast<std::size_t>(std::max(chunks, 0)));
        evbuffer_peek(b, -1, nullptr, v.data(), chunks);
        for (const evbuffer_iovec& c : v) d.held.append(static_cast<const char*>(c.iov_base), c.iov_len);
      }
      d.src_eof = sides_[1 - i].read_eof;
      d.shut = sides_[i].write_shut;
    }
    return c;
  }
  int client_fd() const override { return bufferevent_getfd(sides_[0].bev); }
  int instance_fd() const override { return bufferevent_getfd(sides_[1].bev); }

 private:
  struct Side {
    BufferRelay* relay = nullptr;
    int index = 0;  // 0: the client, 1: the instance
    bufferevent* bev = nullptr;
    bool read_eof = false;    // this side sent EOF
    bool write_shut = false;  // EOF passed on to this side
    bool draining = false;    // the other side is paused until this output drains
  };

  Side& other(const Side& s) { return sides_[1 - s.index]; }

  static void on_read(bufferevent*, void* arg) {
    auto& s = *static_cast<Side*>(arg);
    guarded([&] { s.relay->forward(s); });
  }
  static void on_write(bufferevent*, void* arg) {
    auto& s = *static_cast<Side*>(arg);
    guarded([&] { s.relay->drained(s); });
  }
  static void on_event(bufferevent*, short what, void* arg) {
    auto& s = *static_cast<Side*>(arg);
    guarded([&] { s.relay->event(s, what); });
  }

  void forward(Side& src) {
    Side& dst = other(src);
    evbuffer* in = bufferevent_get_input(src.bev);
    evbuffer* out = bufferevent_get_output(dst.bev);
    const std::size_t n = evbuffer_get_length(in);
    evbuffer_add_buffer(out, in);
    owner_.relayed(src.index == 0, n);
    if (evbuffer_get_length(out) >= kStopReadingAt) {
      bufferevent_disable(src.bev, EV_READ);
      dst.draining = true;
      bufferevent_setwatermark(dst.bev, EV_WRITE, kResumeAt, 0);
    }
  }

  // `dst`'s output fell to its low watermark.
  void drained(Side& dst) {
    Side& src = other(dst);
    if (dst.draining) {
      dst.draining = false;
      bufferevent_setwatermark(dst.bev, EV_WRITE, 0, 0);
      if (!src.read_eof) bufferevent_enable(src.bev, EV_READ);
    }
    if (src.read_eof) pass_eof(dst);
  }

  void event(Side& s, short what) {
    if (what & BEV_EVENT_ERROR) {
      finish(true);
      return;
    }
    if ((what & BEV_EVENT_EOF) && !s.read_eof) {
      s.read_eof = true;
      bufferevent_disable(s.bev, EV_READ);
      Side& dst = other(s);
      if (!dst.draining) bufferevent_setwatermark(dst.bev, EV_WRITE, 0, 0);
      pass_eof(dst);
    }
  }

  // Once its output is empty, `dst` gets the EOF its peer sent.
  void pass_eof(Side& dst) {
    if (dst.write_shut || evbuffer_get_length(bufferevent_get_output(dst.bev)) != 0) return;
    dst.write_shut = true;
    ::shutdown(bufferevent_getfd(dst.bev), SHUT_WR);
    if (sides_[0].write_shut && sides_[1].write_shut) finish(false);
  }

  void finish(bool reset) {
    if (done_) return;
    done_ = true;
    reset_ = reset;
    for (Side& s : sides_) {
      bufferevent_disable(s.bev, EV_READ | EV_WRITE);
      bufferevent_setcb(s.bev, nullptr, nullptr, nullptr, nullptr);
    }
    owner_.relay_done(reset);
  }

  RelayOwner& owner_;
  Side sides_[2];
  bool done_ = false;
  bool reset_ = false;
};

// ---------------------------------------------------------------------------
// splice: per direction, socket -> pipe -> socket. The pipe is the buffer;
// `in_pipe` counts what it holds, never more than kRelayBoundBytes.
//
// A direction starts by copying: recv into a stack buffer, send at once, a
// short send's rest kept in `pending` (at most kCopyBytes). Measured on a new
// connection per request (bench/sticky_bench.py "close"): small messages
// cost less through recv/send than through two splices each, and a
// connection that never moves kCopyBytes in one read needs no pipe at all
// (no pipe2/close, nothing held in the pool). A read that fills the whole
// buffer means bulk: the direction takes a pipe and splices from then on.
//
// Each socket is registered once, edge-triggered for reading and writing
// (as nginx does), and never re-registered: interest is not toggled with
// back-pressure, which cost an epoll_ctl at each turn. So the relay keeps
// what the edges said: a source is `readable` until a read finds it drained,
// a destination `writable` until a write is cut short; an edge sets them
// again. Back-pressure is simply not reading while the direction holds
// bytes it cannot pass on.

constexpr unsigned kSpliceFlags = SPLICE_F_NONBLOCK | SPLICE_F_MOVE;
// Fill-and-drain rounds per readiness event: a busy connection yields (and
// is activated again on the next loop turn: no edge would come for bytes
// already there).
constexpr int kRoundsPerEvent = 4;
// The copy buffer (on the stack): a read this full switches to splice.
constexpr std::size_t kCopyBytes = 16 * 1024;
static_assert(kCopyBytes <= kRelayBoundBytes);

class SpliceRelay final : public Relay {
 public:
  SpliceRelay(EventLoop& loop, UniqueFd client, UniqueFd instance, const RelayCarry& carry,
              RelayOwner& owner, PipePool& pool)
      : owner_(owner), pool_(pool), client_(std::move(client)), instance_(std::move(instance)) {
    Direction& to_instance = dirs_[0];
    to_instance.src = client_.get();
    to_instance.dst = instance_.get();
    to_instance.to_instance = true;
    Direction& to_client = dirs_[1];
    to_client.src = instance_.get();
    to_client.dst = client_.get();
    for (auto [d, from] : {std::pair{&to_instance, &carry.to_instance}, std::pair{&to_client, &carry.to_client}}) {
      d->pending = from->held;
      d->src_eof = from->src_eof;
      d->shut = from->shut;
    }
    constexpr short kEdges = EV_READ | EV_WRITE | EV_ET | EV_CLOSED;
    // Registering reports what is ready already: the client's first bytes
    // are read on the next loop turn.
    client_ev_ = std::make_unique<IoEvent>(loop, client_.get(), kEdges, [this](short what) {
      on_ready(what, dirs_[0], dirs_[1]);
    });
    instance_ev_ = std::make_unique<IoEvent>(loop, instance_.get(), kEdges, [this](short what) {
      on_ready(what, dirs_[1], dirs_[0]);
    });
    to_instance.src_event = client_ev_.get();
    to_client.src_event = instance_ev_.get();
    client_ev_->enable();
    instance_ev_->enable();
  }

  ~SpliceRelay() override {
    if (reset_) {
      set_linger_zero(client_.get());
      set_linger_zero(instance_.get());
    }
    // Emptied by a clean end: the next connection's.
    for (Direction& d : dirs_)
      if (!reset_ && d.in_pipe == 0 && d.pipe.read) pool_.give(std::move(d.pipe));
    // Closing a socket takes it out of epoll: close first, so that freeing
    // the events (after this body) costs no epoll_ctl that does real work.
    client_.reset();
    instance_.reset();
  }

  std::uint64_t buffered_bytes() const override {
    std::uint64_t n = 0;
    for (const Direction& d : dirs_) n += d.in_pipe + (d.pending.size() - d.pending_sent);
    return n;
  }

  RelayCarry snapshot() const override {
    RelayCarry c;
    for (auto [d, to] : {std::pair{&dirs_[0], &c.to_instance}, std::pair{&dirs_[1], &c.to_client}}) {
      to->held = d->pending.substr(d->pending_sent);  // ahead of the pipe's bytes
      if (d->in_pipe > 0) {
        to->pipe = d->pipe.read.get();
        to->in_pipe = d->in_pipe;
      }
      to->src_eof = d->src_eof;
      to->shut = d->shut;
    }
    return c;
  }
  int client_fd() const override { return client_.get(); }
  int instance_fd() const override { return instance_.get(); }

 private:
  struct Direction {
    Pipe pipe;  // taken when the direction turns to splice
    int src = -1;
    int dst = -1;
    IoEvent* src_event = nullptr;  // to be run again after yielding
    bool to_instance = false;
    bool splicing = false;  // a read filled kCopyBytes and a pipe was had
    // Bytes read and not yet sent, ahead of the pipe: the client's peeked
    // head, or the rest of a short send while copying.
    std::string pending;
    std::size_t pending_sent = 0;
    std::size_t in_pipe = 0;
    bool readable = false;  // src may have bytes (or EOF): an edge said so, no read drained it since
    bool writable = true;   // dst took all of the last write (a connected socket starts so)
    // The source's EOF is queued (EPOLLRDHUP): a short read no longer means
    // drained, as no edge would come for the EOF behind the bytes.
    bool eof_queued = false;
    bool src_eof = false;
    bool shut = false;  // EOF passed on to dst

    bool has_pending() const { return pending_sent < pending.size(); }
  };

  // An I/O error on either socket ends the connection.
  static bool fatal(ssize_t n) { return n < 0 && errno != EAGAIN && errno != EINTR; }

  // `in`: the direction whose source is this fd; `out`: the one whose
  // destination it is.
  void on_ready(short what, Direction& in, Direction& out) {
    if (what & EV_CLOSED) in.eof_queued = true;
    if (what & (EV_READ | EV_CLOSED)) in.readable = true;
    if (what & EV_WRITE) out.writable = true;
    if (what & (EV_READ | EV_CLOSED)) pump(in);
    if ((what & EV_WRITE) && (out.has_pending() || out.in_pipe > 0)) pump(out);
  }

  // The pipe for a direction that turned out to carry bulk; without one (no
  // fds) it keeps copying, which relays the same bytes.
  void start_splicing(Direction& d) {
    try {
      d.pipe = pool_.take();
      d.splicing = true;
    } catch (const std::system_error& e) {
      if (!fallback_told_) {
        fallback_told_ = true;
        spdlog::debug("sticky proxy: cannot make a splice pipe ({}); copying through user space",
                      e.code().message());
        owner_.splice_unavailable();
      }
    }
  }

  // Sends what `pending` holds. Returns false on an error.
  bool send_pending(Direction& d, bool& moved) {
    const std::size_t want = d.pending.size() - d.pending_sent;
    const ssize_t n = ::send(d.dst, d.pending.data() + d.pending_sent, want, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (fatal(n)) return false;
    if (n <= 0 || static_cast<std::size_t>(n) < want) d.writable = false;
    if (n > 0) {
      d.pending_sent += static_cast<std::size_t>(n);
      moved = true;
      if (!d.has_pending()) {
        d.pending.clear();
        d.pending_sent = 0;
      }
    }
    return true;
  }

  // One recv and one send through a stack buffer. Returns false on an
  // error. A read shorter than asked found the socket drained (as nginx
  // assumes too): more bytes will bring a new edge, and an EOF already
  // queued was flagged by EV_CLOSED.
  bool copy(Direction& d, bool& moved) {
    char buf[kCopyBytes];
    const ssize_t read = ::recv(d.src, buf, sizeof buf, 0);
    if (fatal(read)) return false;
    if (read < 0) {
      if (errno == EAGAIN) d.readable = false;
      return true;
    }
    moved = true;
    if (read == 0) {
      d.src_eof = true;
      return true;
    }
    const auto n = static_cast<std::size_t>(read);
    if (n < sizeof buf && !d.eof_queued) d.readable = false;
    owner_.relayed(d.to_instance, n);
    ssize_t sent = 0;
    if (d.writable) {
      sent = ::send(d.dst, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (fatal(sent)) return false;
    }
    const std::size_t done = sent > 0 ? static_cast<std::size_t>(sent) : 0;
    if (done < n) {
      d.writable = false;
      d.pending.assign(buf + done, n - done);
      d.pending_sent = 0;
    }
    if (n == sizeof buf && !d.splicing) start_splicing(d);
    return true;
  }

  // Socket -> pipe. EAGAIN with an empty pipe means the socket is drained;
  // with bytes in the pipe it may mean the pipe is full, so the source is
  // tried again once the pipe drained.
  bool fill(Direction& d, bool& moved) {
    const std::size_t room = kRelayBoundBytes - d.in_pipe;
    const ssize_t n = ::splice(d.src, nullptr, d.pipe.write.get(), nullptr, room, kSpliceFlags);
    if (fatal(n)) return false;
    if (n < 0) {
      if (errno == EAGAIN && d.in_pipe == 0) d.readable = false;
      return true;
    }
    moved = true;
    if (n == 0) {
      d.src_eof = true;
      return true;
    }
    d.in_pipe += static_cast<std::size_t>(n);
    owner_.relayed(d.to_instance, static_cast<std::size_t>(n));
    return true;
  }

  // Pipe -> socket.
  bool drain(Direction& d, bool& moved) {
    const ssize_t n = ::splice(d.pipe.read.get(), nullptr, d.dst, nullptr, d.in_pipe, kSpliceFlags);
    if (fatal(n)) return false;
    if (n <= 0 || static_cast<std::size_t>(n) < d.in_pipe) d.writable = false;
    if (n > 0) {
      d.in_pipe -= static_cast<std::size_t>(n);
      moved = true;
    }
    return true;
  }

  void pump(Direction& d) {
    if (done_) return;
    bool more = false;
    for (int round = 0; round < kRoundsPerEvent; ++round) {
      bool moved = false;
      if (d.has_pending() && d.writable && !send_pending(d, moved)) return finish(true);
      const bool room = !d.has_pending() && d.in_pipe < kRelayBoundBytes;
      if (room && d.readable && !d.src_eof) {
        if (!(d.splicing ? fill(d, moved) : copy(d, moved))) return finish(true);
      }
      if (d.in_pipe > 0 && d.writable && !drain(d, moved)) return finish(true);
      more = moved;
      if (!moved) break;
    }
    if (d.src_eof && d.in_pipe == 0 && !d.has_pending() && !d.shut) {
      d.shut = true;
      // The last direction to end: closing both sockets sends the FIN.
      if (dirs_[0].shut && dirs_[1].shut) return finish(false);
      ::shutdown(d.dst, SHUT_WR);
      return;
    }
    // Out of rounds with work left: no edge would come for bytes already
    // there, so the direction runs again on the next loop turn.
    const bool can_read = d.readable && !d.src_eof && !d.has_pending() && d.in_pipe < kRelayBoundBytes;
    const bool can_write = d.writable && (d.has_pending() || d.in_pipe > 0);
    if (more && (can_read || can_write)) d.src_event->activate(EV_READ);
  }

  void finish(bool reset) {
    done_ = true;
    reset_ = reset;
    owner_.relay_done(reset);
  }

  RelayOwner& owner_;
  PipePool& pool_;
  UniqueFd client_;
  UniqueFd instance_;
  Direction dirs_[2];  // 0: client -> instance, 1: instance -> client
  std::unique_ptr<IoEvent> client_ev_, instance_ev_;
  bool done_ = false;
  bool reset_ = false;
  bool fallback_told_ = false;
};

}  // namespace

std::unique_ptr<Relay> make_buffer_relay(EventLoop& loop, UniqueFd client, UniqueFd instance,
                                         const RelayCarry& carry, RelayOwner& owner) {
  return std::make_unique<BufferRelay>(loop, std::move(client), std::move(instance), carry, owner);
}

Pipe PipePool::take() {
  if (pipes_.empty()) return make_pipe(O_NONBLOCK);
  Pipe p = std::move(pipes_.back());
  pipes_.pop_back();
  return p;
}

void PipePool::give(Pipe pipe) {
  if (pipes_.size() < kMaxPipes) pipes_.push_back(std::move(pipe));
}

std::unique_ptr<Relay> make_splice_relay(EventLoop& loop, UniqueFd client, UniqueFd instance,
                                         const RelayCarry& carry, RelayOwner& owner, PipePool& pool) {
  // Edge-triggered events and EV_CLOSED need epoll; another backend
  // (EVENT_NOEPOLL set) gets bufferevents.
  constexpr int kNeeds = EV_FEATURE_ET | EV_FEATURE_EARLY_CLOSE;
  if ((event_base_get_features(loop.base()) & kNeeds) != kNeeds)
    return make_buffer_relay(loop, std::move(client), std::move(instance), carry, owner);
  return std::make_unique<SpliceRelay>(loop, std::move(client), std::move(instance), carry, owner, pool);
}

}  // namespace vigil
