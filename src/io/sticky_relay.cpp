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

#include <cerrno>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>

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
  BufferRelay(EventLoop& loop, UniqueFd client, UniqueFd instance, std::string_view head,
              RelayOwner& owner)
      : owner_(owner) {
    sides_[0].relay = sides_[1].relay = this;
    sides_[0].index = 0;
    sides_[1].index = 1;
    UniqueFd fds[2] = {std::move(client), std::move(instance)};
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
    }
    if (!head.empty()) evbuffer_add(bufferevent_get_output(sides_[1].bev), head.data(), head.size());
    for (Side& s : sides_) bufferevent_enable(s.bev, EV_READ | EV_WRITE);
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
// `in_pipe` counts what it holds, never more than kRelayBoundBytes. A fill
// that finds no room (a pipe holds 16 buffers, whatever their sizes) parks
// the reader until the writer moves something, so that a readable source and
// a full pipe never spin the loop.
//
// A direction starts by copying: recv into a stack buffer, send at once, a
// short send's rest kept in `pending` (at most kCopyBytes). Measured on a new
// connection per request (bench/sticky_bench.py "close"): small messages
// cost less through recv/send than through two splices each, and a
// connection that never moves kCopyBytes in one read needs no pipe at all
// (no pipe2/close, nothing held in the pool). A read that fills the whole
// buffer means bulk: the direction takes a pipe and splices from then on.

constexpr unsigned kSpliceFlags = SPLICE_F_NONBLOCK | SPLICE_F_MOVE;
// Fill-and-drain rounds per readiness event: a busy connection yields.
constexpr int kRoundsPerEvent = 4;
// The copy buffer (on the stack): a read this full switches to splice.
constexpr std::size_t kCopyBytes = 16 * 1024;
static_assert(kCopyBytes <= kRelayBoundBytes);

class SpliceRelay final : public Relay {
 public:
  SpliceRelay(EventLoop& loop, UniqueFd client, UniqueFd instance, std::string_view head,
              RelayOwner& owner, PipePool& pool)
      : owner_(owner), pool_(pool), client_(std::move(client)), instance_(std::move(instance)) {
    client_readable_ = std::make_unique<IoEvent>(loop, client_.get(), EV_READ, [this](short) { pump(dirs_[0]); });
    instance_writable_ = std::make_unique<IoEvent>(loop, instance_.get(), EV_WRITE, [this](short) { pump(dirs_[0]); });
    instance_readable_ = std::make_unique<IoEvent>(loop, instance_.get(), EV_READ, [this](short) { pump(dirs_[1]); });
    client_writable_ = std::make_unique<IoEvent>(loop, client_.get(), EV_WRITE, [this](short) { pump(dirs_[1]); });
    Direction& to_instance = dirs_[0];
    to_instance.src = client_.get();
    to_instance.dst = instance_.get();
    to_instance.src_readable = client_readable_.get();
    to_instance.dst_writable = instance_writable_.get();
    to_instance.to_instance = true;
    to_instance.pending.assign(head.data(), head.size());
    Direction& to_client = dirs_[1];
    to_client.src = instance_.get();
    to_client.dst = client_.get();
    to_client.src_readable = instance_readable_.get();
    to_client.dst_writable = client_writable_.get();
    for (Direction& d : dirs_) watch(d);
  }

  ~SpliceRelay() override {
    // The events go before the fds they watch (declared after them).
    if (reset_) {
      set_linger_zero(client_.get());
      set_linger_zero(instance_.get());
    }
    // Emptied by a clean end: the next connection's.
    for (Direction& d : dirs_)
      if (!reset_ && d.in_pipe == 0 && d.pipe.read) pool_.give(std::move(d.pipe));
  }

  std::uint64_t buffered_bytes() const override {
    std::uint64_t n = 0;
    for (const Direction& d : dirs_) n += d.in_pipe + (d.pending.size() - d.pending_sent);
    return n;
  }

 private:
  struct Direction {
    Pipe pipe;  // taken when the direction turns to splice
    int src = -1;
    int dst = -1;
    IoEvent* src_readable = nullptr;
    IoEvent* dst_writable = nullptr;
    bool to_instance = false;
    bool splicing = false;  // a read filled kCopyBytes and a pipe was had
    // Bytes read and not yet sent, ahead of the pipe: the client's peeked
    // head, or the rest of a short send while copying.
    std::string pending;
    std::size_t pending_sent = 0;
    std::size_t in_pipe = 0;
    bool fill_parked = false;  // the pipe had no room; wait for the writer
    bool src_eof = false;
    bool shut = false;  // EOF passed on to dst

    bool has_pending() const { return pending_sent < pending.size(); }
  };

  // An I/O error on either socket ends the connection.
  static bool fatal(ssize_t n) { return n < 0 && errno != EAGAIN && errno != EINTR; }

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

  // One recv and one send through a stack buffer. Returns false when the
  // connection ended (an error). Sets `read` to the bytes read (0 at EOF or
  // when there was nothing).
  bool copy(Direction& d, ssize_t& read) {
    char buf[kCopyBytes];
    read = ::recv(d.src, buf, sizeof buf, 0);
    if (fatal(read)) return false;
    if (read <= 0) return true;
    const auto n = static_cast<std::size_t>(read);
    owner_.relayed(d.to_instance, n);
    const ssize_t sent = ::send(d.dst, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (fatal(sent)) return false;
    const std::size_t done = sent > 0 ? static_cast<std::size_t>(sent) : 0;
    if (done < n) {
      d.pending.assign(buf + done, n - done);
      d.pending_sent = 0;
    }
    if (n == sizeof buf && !d.splicing) start_splicing(d);
    return true;
  }

  void pump(Direction& d) {
    if (done_) return;
    for (int round = 0; round < kRoundsPerEvent; ++round) {
      bool moved = false;
      if (d.has_pending()) {
        const ssize_t n = ::send(d.dst, d.pending.data() + d.pending_sent, d.pending.size() - d.pending_sent,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (fatal(n)) return finish(true);
        if (n > 0) {
          d.pending_sent += static_cast<std::size_t>(n);
          moved = true;
          if (!d.has_pending()) {
            d.pending.clear();
            d.pending_sent = 0;
          }
        }
      }
      // A read shorter than asked found the socket drained (as nginx
      // assumes too): the next round would only meet EAGAIN. Level-
      // triggered events say so again if more arrives meanwhile.
      bool drained = false;
      if (!d.has_pending() && !d.src_eof && !d.splicing) {
        ssize_t n = 0;
        if (!copy(d, n)) return finish(true);
        if (n > 0) {
          drained = static_cast<std::size_t>(n) < kCopyBytes;
          moved = true;
        } else if (n == 0) {
          d.src_eof = true;
          moved = true;
        }
      } else if (!d.has_pending() && !d.src_eof && d.in_pipe < kRelayBoundBytes) {
        const std::size_t room = kRelayBoundBytes - d.in_pipe;
        const ssize_t n = ::splice(d.src, nullptr, d.pipe.write.get(), nullptr, room, kSpliceFlags);
        if (fatal(n)) return finish(true);
        if (n > 0) {
          drained = static_cast<std::size_t>(n) < room;
          d.in_pipe += static_cast<std::size_t>(n);
          owner_.relayed(d.to_instance, static_cast<std::size_t>(n));
          moved = true;
        } else if (n == 0) {
          d.src_eof = true;
          moved = true;
        } else if (errno == EAGAIN && d.in_pipe > 0) {
          d.fill_parked = true;  // no data, or no room: the drain below decides
        }
      }
      if (d.in_pipe > 0) {
        const ssize_t n = ::splice(d.pipe.read.get(), nullptr, d.dst, nullptr, d.in_pipe, kSpliceFlags);
        if (fatal(n)) return finish(true);
        if (n > 0) {
          d.in_pipe -= static_cast<std::size_t>(n);
          d.fill_parked = false;
          moved = true;
        }
      }
      if (!moved || (drained && d.in_pipe == 0)) break;
    }
    if (d.src_eof && d.in_pipe == 0 && !d.has_pending() && !d.shut) {
      d.shut = true;
      // The last direction to end: closing both sockets sends the FIN.
      if (dirs_[0].shut && dirs_[1].shut) return finish(false);
      ::shutdown(d.dst, SHUT_WR);
    }
    watch(d);
  }

  // Read while there is room, write while there is something to write.
  void watch(Direction& d) {
    if (!d.src_eof && !d.has_pending() && d.in_pipe < kRelayBoundBytes && !d.fill_parked)
      d.src_readable->enable();
    else
      d.src_readable->disable();
    if (d.in_pipe > 0 || d.has_pending())
      d.dst_writable->enable();
    else
      d.dst_writable->disable();
  }

  void finish(bool reset) {
    done_ = true;
    reset_ = reset;
    for (Direction& d : dirs_) {
      d.src_readable->disable();
      d.dst_writable->disable();
    }
    owner_.relay_done(reset);
  }

  RelayOwner& owner_;
  PipePool& pool_;
  UniqueFd client_;
  UniqueFd instance_;
  Direction dirs_[2];  // 0: client -> instance, 1: instance -> client
  std::unique_ptr<IoEvent> client_readable_, instance_writable_, instance_readable_, client_writable_;
  bool done_ = false;
  bool reset_ = false;
  bool fallback_told_ = false;
};

}  // namespace

std::unique_ptr<Relay> make_buffer_relay(EventLoop& loop, UniqueFd client, UniqueFd instance,
                                         std::string_view head, RelayOwner& owner) {
  return std::make_unique<BufferRelay>(loop, std::move(client), std::move(instance), head, owner);
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
                                         std::string_view head, RelayOwner& owner, PipePool& pool) {
  return std::make_unique<SpliceRelay>(loop, std::move(client), std::move(instance), head, owner, pool);
}

}  // namespace vigil
