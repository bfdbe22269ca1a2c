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
#include <string>
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

// One direction of a relay: what it holds and how far its EOF got. A new
// connection starts with the client's peeked head held for the instance;
// one taken over across an upgrade with what the old vigil's relay held.
struct RelayDirection {
  std::string held;  // read and not yet passed on, in order
  // In a snapshot of the splice engine: the read end of the pipe holding
  // `in_pipe` more bytes, after `held` (left in the pipe, which crosses the
  // exec). Starting a relay takes none: `held` has them all.
  int pipe = -1;
  std::size_t in_pipe = 0;
  bool src_eof = false;  // its source sent EOF (nothing more is read from it)
  bool shut = false;     // that EOF was passed on (shutdown SHUT_WR)
};
struct RelayCarry {
  RelayDirection to_instance, to_client;
};

class Relay {
 public:
  virtual ~Relay() = default;  // closes both sockets
  virtual std::uint64_t buffered_bytes() const = 0;
  // For a handover across exec: the relay's state (bytes copied, nothing
  // consumed, so it carries on if the exec fails) and its sockets.
  virtual RelayCarry snapshot() const = 0;
  virtual int client_fd() const = 0;
  virtual int instance_fd() const = 0;
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

// `carry`: what the relay starts with: for a new connection, the bytes
// already read from the client (the X-Forwarded-For peek), sent to the
// instance before anything else; across an upgrade, the old relay's state
// (a direction whose source sent EOF is not read; one with nothing held is
// shut already: StickyProxy sees to that).
std::unique_ptr<Relay> make_buffer_relay(EventLoop& loop, UniqueFd client, UniqueFd instance,
                                         const RelayCarry& carry, RelayOwner& owner);
// Copies through a stack buffer until a read fills it, then takes a pipe per
// such direction from `pool` (without one, it keeps copying and tells the
// owner). The pipes go back to `pool` when both directions ended with
// nothing left in them; `pool` outlives the relay.
std::unique_ptr<Relay> make_splice_relay(EventLoop& loop, UniqueFd client, UniqueFd instance,
                                         const RelayCarry& carry, RelayOwner& owner, PipePool& pool);
}  // namespace vigil
