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
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "config.h"
#include "event_loop.h"
#include "fd.h"

namespace vigil {

struct StickyInstanceStats {
  std::uint64_t open = 0;            // connections open to this instance now
  std::uint64_t accepted = 0;        // connections relayed to it, ever
  std::uint64_t bytes_in = 0;        // client -> instance
  std::uint64_t bytes_out = 0;       // instance -> client
  std::uint64_t route_failures = 0;  // connects to it that failed (then the next was tried)
  // The counters an upgrade carries over (`open` is counted again).
  template <class Archive>
  void persist(Archive& a) {
    a("accepted", accepted);
    a("bytes_in", bytes_in);
    a("bytes_out", bytes_out);
    a("route_failures", route_failures);
  }
};

struct StickyProxyStats {
  std::uint64_t rejected_no_instance = 0;  // no routable instance took the connection
  std::uint64_t rejected_limit = 0;        // closed at once: max_connections reached
  std::uint64_t splice_fallbacks = 0;      // splice engine: no pipe (EMFILE) for bulk, copied instead
  template <class Archive>
  void persist(Archive& a) {
    a("rejected_no_instance", rejected_no_instance);
    a("rejected_limit", rejected_limit);
    a("splice_fallbacks", splice_fallbacks);
  }
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
  // Takes over `listener`, listening on config.listen already (the old
  // vigil's, across an upgrade), instead of binding; an empty one binds.
  StickyProxy(EventLoop& loop, std::string program, const StickyConfig& config, int port_base,
              int instances, RelayEngine engine, UniqueFd listener);
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

  // For a handover across exec (`vigil upgrade`): the counters and every
  // open connection (its sockets, its instance, the bytes it holds, how far
  // its EOFs got) as JSON, and the fds that must cross the exec (the
  // listener, the sockets, splice pipes holding bytes) added to `keep`.
  // Nothing changes: the proxy carries on if the exec fails.
  nlohmann::json save_handover(std::vector<int>& keep) const;
  // In the new vigil, on the proxy built on the saved listener: takes over
  // the counters and connections `saved` names (a relayed one goes on with
  // what it held; one still being routed is routed again). Returns what
  // could not be taken over (that connection is closed); `path` names
  // `saved` in those messages.
  std::vector<std::string> resume(const nlohmann::json& saved, const std::string& path);

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
