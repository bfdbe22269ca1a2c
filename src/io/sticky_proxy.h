// The sticky TCP proxy of one program ([programs.X.sticky]): it listens on
// sticky.listen in vigil's loop and relays each accepted connection to
// 127.0.0.1:(port_base + index) of one instance, chosen by sticky_order over
// the routable instances (running, ready, not being replaced). Bytes are
// relayed with bounded buffers and back-pressure: a slow reader throttles
// its writer, never vigil's memory. Half-close is propagated; a failed
// connect tries the next instance in hash order; idle connections close
// after idle_timeout; beyond max_connections new ones are closed at once.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "event_loop.h"

namespace vigil {

struct StickyInstanceStats {
  std::uint64_t open = 0;            // connections open to this instance now
  std::uint64_t accepted = 0;        // connections relayed to it, ever
  std::uint64_t bytes_in = 0;        // client -> instance
  std::uint64_t bytes_out = 0;       // instance -> client
  std::uint64_t route_failures = 0;  // connects to it that failed (then the next was tried)
};

struct StickyProxyStats {
  std::uint64_t rejected_no_instance = 0;  // no routable instance took the connection
  std::uint64_t rejected_limit = 0;        // closed at once: max_connections reached
  std::uint64_t splice_fallbacks = 0;      // splice engine: no pipe (EMFILE) for bulk, copied instead
};

// How bytes are copied: libevent bufferevents (user-space buffers), or
// splice(2) through a pipe per direction that carries bulk (no copy to user
// space; small messages go through recv/send).
enum class RelayEngine { buffer, splice };
// What make bench found faster here (bench/sticky_bench.py prints both).
inline constexpr RelayEngine kDefaultRelayEngine = RelayEngine::splice;

class StickyProxy {
 public:
  // Binds and listens on config.listen (throws std::runtime_error
  // "cannot listen on ADDRESS: why"). `program` names it in log lines.
  StickyProxy(EventLoop& loop, std::string program, const StickyConfig& config, int port_base,
              int instances, RelayEngine engine = kDefaultRelayEngine);
  ~StickyProxy();  // closes the listener and every relayed connection
  StickyProxy(const StickyProxy&) = delete;
  StickyProxy& operator=(const StickyProxy&) = delete;

  // Whether instance `index` may get new connections (none is until told:
  // the owner marks an instance routable once it is ready). Open connections
  // are never cut by this: they end when either side closes (or at idle_timeout).
  void set_routable(int index, bool routable);
  // A reload: instances beyond the new count stop being routable (their
  // connections finish); port_base, max_connections, idle_timeout and
  // connect_timeout apply to new connections. config.listen must be unchanged
  // (a new listen address means a new proxy).
  void update(const StickyConfig& config, int port_base, int instances);

  std::uint16_t port() const;  // the bound port (for "127.0.0.1:0")
  const StickyInstanceStats& stats(int index) const;  // index < instances
  const StickyProxyStats& totals() const;
  // Client connections accepted and not yet closed, in any phase (being
  // routed or relayed): what max_connections limits.
  std::uint64_t open_connections() const;
  // Bytes held in vigil's buffers (or pipes) for all connections now: the
  // bound that back-pressure keeps.
  std::uint64_t buffered_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil
