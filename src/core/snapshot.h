// A plain copy of what vigil knows about each instance at one moment: what
// the metrics, the JSON API and `vigil status` show. Filled by the shells,
// rendered by pure code.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "exit_status.h"
#include "rollout.h"
#include "state.h"
#include "watch_policy.h"

namespace vigil {

struct ExitRecord {
  ExitStatus status;
  double time_seconds = 0;  // unix time
  double run_seconds = 0;   // how long the process ran (0 for a failed start)
  std::string reason;       // why it ended: "exited with exit code 1", "hung: ..."
};

struct ProbeSnapshot {
  std::optional<bool> success;  // last result, none yet when empty
  std::array<std::uint64_t, 5> failures{};      // by ProbeFailure
  std::vector<double> bucket_bounds;            // upper bounds in seconds
  std::vector<std::uint64_t> bucket_counts;     // cumulative, same length
  std::uint64_t count = 0;
  double sum_seconds = 0;
};

// An instance behind its program's sticky proxy ([programs.X.sticky]).
struct StickySnapshot {
  std::string listen;           // the proxy's address, as "host:port"
  bool routable = false;        // new connections may reach this instance now
  std::uint64_t open = 0;       // connections open to it
  std::uint64_t accepted = 0;   // connections relayed to it, ever
  std::uint64_t bytes_in = 0;   // client -> instance
  std::uint64_t bytes_out = 0;  // instance -> client
  std::uint64_t route_failures = 0;  // connects to it that failed
  // The program's, the same in each of its instances: connections closed
  // at once because no instance took them, or max_connections was reached.
  std::uint64_t rejected_no_instance = 0;
  std::uint64_t rejected_limit = 0;
};

struct InstanceSnapshot {
  std::string program;
  int index = 0;
  int pid = 0;  // 0 when no process
  State state = State::stopped;
  bool up = false;  // running and ready
  double uptime_seconds = 0;
  double start_time_seconds = 0;  // unix time of the current process start, 0 if none
  std::array<std::uint64_t, 7> restarts{};  // by RestartReason
  std::array<std::uint64_t, 3> exits{};     // by ExitKind
  std::optional<int> last_exit_code;
  std::optional<RestartReason> last_restart_reason;
  std::optional<double> next_restart_in_seconds;  // while in backoff
  std::vector<ExitRecord> recent_exits;           // newest last
  std::string last_error;                         // what went wrong last, with its evidence
  std::optional<double> last_error_seconds;       // unix time of last_error
  std::uint64_t heartbeats = 0;
  std::uint64_t heartbeat_misses = 0;
  std::optional<double> heartbeat_last_seconds;      // unix time
  std::optional<double> heartbeat_interval_seconds;  // configured
  std::uint64_t protocol_errors = 0;
  std::uint64_t rss_bytes = 0;
  double cpu_seconds = 0;
  std::optional<std::uint64_t> reported_memory_bytes;
  std::optional<std::uint64_t> memory_limit_bytes;
  std::string status_text;
  std::array<std::uint64_t, 2> log_bytes{};  // stdout, stderr
  std::array<std::string, 2> log_files;       // stdout, stderr (the same when combined); empty: log off
  std::uint64_t log_dropped_bytes = 0;
  std::optional<ProbeSnapshot> probe;
  std::optional<StickySnapshot> sticky;
  // The program's rolling restart under way, or its last one (the same in
  // every instance of the program), and how many completed or failed.
  std::optional<RolloutSnapshot> rollout;
  std::uint64_t rollouts_completed = 0;
  std::uint64_t rollouts_failed = 0;

  std::uint64_t total_restarts() const {
    std::uint64_t n = 0;
    for (auto r : restarts) n += r;
    return n;
  }
};

// One [watch.NAME], for the metrics, the API, the status page and
// `vigil status`.
struct WatchSnapshot {
  std::string name;
  WatchKind kind = WatchKind::http;
  std::string target;                    // the URL, address, command or socket path
  std::optional<bool> up;                // the last result; none yet (or nothing registered)
  WatchState state = WatchState::waiting;
  int consecutive_failures = 0;
  std::uint64_t failures = 0;            // failed checks; missed heartbeat intervals and triggers
  std::array<std::uint64_t, 3> actions{};  // on_failure commands, by ActionResult
  std::optional<double> last_check_seconds;  // unix time of the last check (heartbeat, READY=1)
  std::string last_error;                // what failed last, with its evidence
  std::optional<int> pid;                // notify: MAINPID= of the registered process
  std::optional<bool> registered;        // notify watches only
};

struct SelfSnapshot {
  std::string version;
  std::uint64_t rss_bytes = 0;
  double cpu_seconds = 0;
  int open_fds = 0;
  std::uint64_t max_fds = 0;
  double start_time_seconds = 0;
  std::uint64_t reloads_success = 0;
  std::uint64_t reloads_failure = 0;
  bool last_reload_ok = true;
  // `vigil upgrade`s of this process, by result: handed over, adopted from
  // /proc (the state could not be read), failed (refused, or exec failed).
  std::uint64_t upgrades_handover = 0;
  std::uint64_t upgrades_adopted = 0;
  std::uint64_t upgrades_failed = 0;
  // HTTP connections open now (TCP and control socket), and those vigil
  // closed itself because its connection cap was reached.
  std::uint64_t http_connections = 0;
  std::uint64_t http_connections_dropped = 0;
  std::uint64_t http_handler_errors = 0;  // requests answered 500 because a handler threw
};

}  // namespace vigil
