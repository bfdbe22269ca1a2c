// The byte pump of one proxied connection, between a client socket and an
// instance socket, behind one interface for the two engines: libevent
// bufferevents, or splice(2) through a pipe per direction once a direction
// carries bulk (small messages are copied with recv/send). Each direction
// holds at most kRelayBoundBytes; EOF is passed on as shutdown(SHUT_WR).
// It decides nothing about routing or time: StickyProxy does (sticky_proxy.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "event_loop.h"
#include "fd.h"

namespace vigil {

// The most bytes held for one direction of one connection (64 KiB, a pipe's
// default capacity).
inline constexpr std::size_t kRelayBoundBytes = 64 * 1024;

// What a relay tells its connection. relay_done is its last call: the relay
// has stopped its events by then, and is destroyed by the owner later
// (never inside that call).
class RelayOwner {
 public:
  virtual void relayed(bool to_instance, std::size_t bytes) = 0;
  // Both directions ended (EOF passed on and everything delivered), or,
  // with `reset`, an error or reset on either side (both are closed with
  // SO_LINGER 0 when the relay is destroyed).
  virtual void relay_done(bool reset) = 0;
  // The splice engine could not make a pipe (EMFILE, ENFILE) and copies
  // through user space instead; told once per relay.
  virtual void splice_unavailable() {}

 protected:
  ~RelayOwner() = default;
};

class Relay {
 public:
  virtual ~Relay() = default;  // closes both sockets
  virtual std::uint64_t buffered_bytes() const = 0;
};

// Empty pipes of connections that ended cleanly, for the next ones: a
// connection per request otherwise pays two pipe2() and four close() calls.
// Bounded; a pipe that may still hold bytes (a reset) is closed, never kept.
class PipePool {
 public:
  static constexpr std::size_t kMaxPipes = 64;
  // A pooled pipe, or a new one (O_NONBLOCK, O_CLOEXEC); throws
  // std::system_error when none can be made.
  Pipe take();
  void give(Pipe pipe);
  std::size_t size() const { return pipes_.size(); }

 private:
  std::vector<Pipe> pipes_;
};

// `head`: bytes already read from the client (the X-Forwarded-For peek),
// sent to the instance before anything else.
std::unique_ptr<Relay> make_buffer_relay(EventLoop& loop, UniqueFd client, UniqueFd instance,
                                         std::string_view head, RelayOwner& owner);
// Copies through a stack buffer until a read fills it, then takes a pipe per
// such direction from `pool` (without one, it keeps copying and tells the
// owner). The pipes go back to `pool` when both directions ended with
// nothing left in them; `pool` outlives the relay.
std::unique_ptr<Relay> make_splice_relay(EventLoop& loop, UniqueFd client, UniqueFd instance,
                                         std::string_view head, RelayOwner& owner, PipePool& pool);
}  // namespace vigil
