// The validated configuration: plain values, defaults as DESIGN.md documents
// them. Produced by config_parse; never touched by I/O code except to read.
#pragma once
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "listen_address.h"
#include "units.h"

namespace vigil {

using namespace std::chrono_literals;

enum class RestartMode { always, on_failure, never };
enum class ReadyMode { uptime, notify, probe };
enum class LogMode { split, combined, off };

const char* to_string(RestartMode m);
const char* to_string(ReadyMode m);
const char* to_string(LogMode m);

// [programs.X.heartbeat]: hang detection.
struct HeartbeatConfig {
  Duration interval = 5s;  // a heartbeat is expected at least this often
  int misses = 3;          // this many missed intervals in a row: hung
  Duration grace = 30s;    // after start, time allowed before the first heartbeat
  bool operator==(const HeartbeatConfig&) const = default;
};

// [programs.X.probe] and the check of a [watch.X]: a liveness probe
// (Kubernetes' liveness probe), run by vigil on its loop. `{port}` in the
// target or the command stands for the instance's port (port_base + index).
enum class ProbeKind { http, tcp, exec };
const char* to_string(ProbeKind k);

struct ProbeConfig {
  ProbeKind kind = ProbeKind::http;
  std::string target;                // http: "http://HOST:PORT/PATH"; tcp: "HOST:PORT"
  std::vector<std::string> command;  // exec: argv, run with the program's cwd
  std::optional<int> expect_status;  // http: this status only; default any of 200-399
  std::string expect_body;           // http: a substring the body must hold; empty: any body
  Duration interval = 10s;           // from the start of one probe to the next
  Duration timeout = 2s;             // a probe not done by then failed (kind timeout)
  int failures = 3;                  // this many failed probes in a row: restart (reason probe)
  Duration initial_delay = 5s;       // after each start, before the first probe
  bool operator==(const ProbeConfig&) const = default;
};

// [watch.NAME]: a service vigil does not spawn. Either a check (http, tcp
// or exec, as a probe) or a notify socket an outside process registers and
// beats on; on_failure runs once when the check has failed `failures`
// times in a row (or the heartbeat is missed), then waits a cool-down of
// interval x failures before acting again.
struct WatchConfig {
  std::string name;
  std::optional<ProbeConfig> check;     // http / tcp / exec
  std::filesystem::path notify_socket;  // absolute; set for a heartbeat watch (then no check)
  HeartbeatConfig heartbeat;            // with notify_socket
  std::vector<std::vector<std::string>> on_failure;  // argv lists; "{pid}" expands to MAINPID
  Duration action_timeout = 30s;                     // each on_failure command
  bool operator==(const WatchConfig&) const = default;
};

// [http]: metrics, health, API and status page over TCP.
struct HttpConfig {
  std::string listen = "127.0.0.1:9321";  // validated by parse_listen_address
  std::filesystem::path token_file;       // empty: read-only on TCP
  bool operator==(const HttpConfig&) const = default;
};

// One entry of a program's `listen`: a socket vigil binds once and holds,
// which every instance gets at fd 3 + its position (systemd socket
// activation: LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES).
enum class SocketKind { tcp, unix_stream };

struct ListenSocketConfig {
  SocketKind kind = SocketKind::tcp;
  ListenAddress tcp;           // kind tcp: host canonical ("0.0.0.0" for ":PORT"), port > 0
  std::filesystem::path path;  // kind unix_stream: absolute
  std::string name;            // its LISTEN_FDNAMES entry: "NAME=" as written, else the program's name
  // "0.0.0.0:8080", "[::]:8080", "unix:/run/web.sock": what identifies the
  // socket (a reload keeps the socket of an address it still lists).
  std::string address() const;
  bool operator==(const ListenSocketConfig&) const = default;
};

// [programs.X.sticky]: one public port in vigil's loop, the instances behind
// it on port_base + index, and each client kept on one instance (a
// consistent hash of its address, or of the first X-Forwarded-For entry of
// its first request) among those running and ready.
enum class StickyHash { ip, x_forwarded_for };
const char* to_string(StickyHash h);

struct StickyConfig {
  ListenAddress listen;                  // canonical; IPv4 or IPv6, port > 0 (0 in tests: any)
  StickyHash hash = StickyHash::ip;
  int max_connections = 10000;           // open proxied connections; beyond: accepted and closed
  Duration idle_timeout = 10min;         // no byte either way for this long: both sides closed
  Duration connect_timeout = 5s;         // to one instance; then the next in hash order
  bool operator==(const StickyConfig&) const = default;
};

struct ProgramConfig {
  std::string name;
  // argv. A TOML string command becomes {"/bin/sh", "-c", text}.
  std::vector<std::string> command;
  std::filesystem::path cwd;  // absolute (resolved against the config folder)
  std::map<std::string, std::string> env;
  int instances = 1;
  bool autostart = true;
  RestartMode restart = RestartMode::always;
  std::vector<int> exit_codes{0};
  Duration restart_delay = 100ms;
  Duration restart_delay_max = 30s;
  Duration backoff_reset = 60s;
  Duration min_uptime = 1s;
  ReadyMode ready = ReadyMode::uptime;
  Duration start_timeout = 60s;
  int max_restarts = 5;
  Duration restart_window = 10s;  // 0 = never give up (systemd's StartLimitIntervalSec)
  bool essential = false;
  std::vector<std::string> after;
  std::string user;  // empty: vigil's own user
  int stop_signal = SIGTERM;
  Duration stop_timeout = 10s;
  std::optional<std::uint64_t> memory_limit_bytes;
  std::optional<HeartbeatConfig> heartbeat;
  std::optional<ProbeConfig> probe;
  std::optional<int> port_base;  // instance i gets PORT=port_base+i; {port} in the probe
  std::vector<ListenSocketConfig> listen;  // held sockets, in fd order (3, 4, ...)
  std::optional<StickyConfig> sticky;      // needs port_base (here or as sticky.port_base)
  LogMode log = LogMode::split;
  std::uint64_t log_max_size_bytes = 50ull << 20;
  int log_keep = 5;
  bool log_timestamps = true;

  bool operator==(const ProgramConfig&) const = default;
};

struct Config {
  std::filesystem::path file;  // the config file, absolute
  std::filesystem::path log_dir;         // absolute; default <config dir>/logs
  std::filesystem::path control_socket;  // absolute; default <config dir>/vigil.sock
  std::string log_level = "info";        // trace|debug|info|warn|error|critical|off
  Duration sample_interval = 1s;
  std::optional<HttpConfig> http;  // absent: no TCP listener
  std::vector<ProgramConfig> programs;  // in file order
  std::vector<WatchConfig> watches;     // in file order

  const ProgramConfig* find(std::string_view name) const {
    for (const auto& p : programs)
      if (p.name == name) return &p;
    return nullptr;
  }
  const WatchConfig* find_watch(std::string_view name) const {
    for (const auto& w : watches)
      if (w.name == name) return &w;
    return nullptr;
  }
};

// Signal names as written in the config ("TERM", "SIGTERM", "INT", "HUP",
// "QUIT", "KILL", "USR1", "USR2"); nullopt for anything else.
std::optional<int> parse_signal(std::string_view name);
std::string signal_name(int sig);  // "TERM"

}  // namespace vigil
