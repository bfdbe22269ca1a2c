// The verbs. `run` wires signals to the supervisor: SIGTERM/SIGINT stop
// everything (a second SIGINT kills at once), SIGUSR2 reopens logs.
#include "cli_commands.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <algorithm>
#include <array>
#include <csignal>
#include <ctime>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include <spdlog/spdlog.h>

#include "api_json.h"
#include "config_parse.h"
#include "config_inputs.h"
#include "control_client.h"
#include "log_files.h"
#include "handover.h"
#include "history_recorder.h"
#include "log_tail.h"
#include "preflight.h"
#include "event_loop.h"
#include "fd.h"
#include "fd_budget.h"
#include "http_api.h"
#include "import_command.h"
#include "http_server.h"
#include "lifeline.h"
#include "listen_address.h"
#include "log.h"
#include "self_notify.h"
#include "spawn.h"
#include "start_lock.h"
#include "supervisor.h"
#include "upgrade.h"
#include "version.h"

namespace vigil {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;
constexpr int kExitUnreachable = 2;
constexpr int kExitFailed = 1;  // the action did not do what was asked (a rolling restart stopped)

// Reads and parses the config; prints every error. nullopt on failure.
// `text`, when given, receives the file's text (vigil check reads
// positions from it).
std::optional<Config> load_config(const std::string& path_text, std::string* text = nullptr) {
  std::error_code ec;
  std::filesystem::path path = std::filesystem::absolute(path_text, ec).lexically_normal();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "%s: cannot read the config: %s\n", path.c_str(),
                 std::strerror(errno));
    return std::nullopt;
  }
  std::string read = read_config_text(in);
  ConfigParseResult r = parse_config(read, path.string(), system_config_inputs());
  if (text) *text = std::move(read);
  for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
  if (!r.ok()) {
    std::fprintf(stderr, "%zu error%s in %s\n", r.errors.size(), r.errors.size() == 1 ? "" : "s",
                 path.c_str());
    return std::nullopt;
  }
  return std::move(r.config);
}

// The start-up lock beside `control_socket`, or nullopt after saying why
// this vigil does not start.
std::optional<StartLock> take_start_lock(const std::filesystem::path& control_socket) {
  const auto path = StartLock::path_for(control_socket);
  StartLockFailure failure;
  auto lock = StartLock::acquire(path, &failure);
  if (lock) return lock;
  if (failure.held)
    spdlog::critical("another vigil{} is already running on {} ({} is locked); vigil is not "
                     "starting",
                     failure.holder ? " (pid " + std::to_string(*failure.holder) + ")" : std::string(),
                     control_socket.string(), path.string());
  else
    spdlog::critical("{}; vigil is not starting", failure.why);
  return std::nullopt;
}

// One line naming what an earlier vigil left running and was killed now.
void log_survivors(const std::vector<Survivor>& survivors) {
  if (survivors.empty()) return;
  std::string names;
  for (const auto& s : survivors)
    names += (names.empty() ? "" : ", ") + std::to_string(s.pid) + " " +
             (s.label.empty() ? "" : s.label + " ") + "(" + s.name + ", vigil " +
             std::to_string(s.vigil_pid) + ")";
  spdlog::warn("killed {} process{} that a killed vigil of this config left running: {}",
               survivors.size(), survivors.size() == 1 ? "" : "es", names);
}

// The file this vigil runs from ("/usr/bin/vigil"): what `vigil upgrade`
// execs by default, as a package upgrade replaces it there.
std::filesystem::path own_binary() {
  std::error_code ec;
  std::string path = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  const std::string deleted = " (deleted)";
  if (path.size() > deleted.size() && path.compare(path.size() - deleted.size(), deleted.size(), deleted) == 0)
    path.resize(path.size() - deleted.size());
  return path;
}

// An fd `saved` names ({"fd": N, ...}), taken if it is open; else empty.
UniqueFd take_saved_fd(const nlohmann::json& saved, const char* key) {
  auto it = saved.find(key);
  if (it == saved.end() || !it->is_object() || !it->value("fd", nlohmann::json()).is_number_integer())
    return UniqueFd();
  return take_inherited_fd((*it)["fd"].get<long>());
}

int command_run(const CliCommand& cmd) {
  // Started by `vigil upgrade`: the old vigil's state, read (and its
  // memory file closed) before anything else.
  std::optional<HandoverIn> handover;
  if (cmd.handover_fd >= 0) handover = read_handover(cmd.handover_fd);
  const nlohmann::json no_state = nlohmann::json::object();
  const nlohmann::json& app_state =
      handover && handover->state ? handover->state->value("app", no_state).is_object()
                                        ? (*handover->state)["app"]
                                        : no_state
                                  : no_state;
  auto config = load_config(cmd.config);
  if (!config) return kExitUsage;
  init_logging(config->log_level);
  if (handover && !handover->state)
    spdlog::error("upgrade: the state of vigil {} cannot be read ({}): taking its programs' "
                  "processes over from /proc",
                  handover->from_version.empty() ? "before" : handover->from_version, handover->error);
  ::signal(SIGPIPE, SIG_IGN);
  // The most fds it can have, before anything opens one. Below kMinFds not
  // even vigil's own loop, its sockets and one program fit (libevent would
  // exit with a message of its own): say so plainly, and start nothing.
  raise_fd_limit();
  constexpr rlim_t kMinFds = 32;
  if (rlimit limit{}; ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < kMinFds) {
    spdlog::critical("vigil needs at least {} open files, and its limit is {} (ulimit -n)",
                     kMinFds, limit.rlim_cur);
    return kExitUsage;
  }
  // One vigil per control socket, decided before anything shared (the
  // socket, listen sockets, children) is touched; held until return.
  auto start_lock = take_start_lock(config->control_socket);
  if (!start_lock) return kExitUsage;
  // Before the loop, the sockets and the logs open theirs: the fds spawning
  // keeps are then among the lowest, and a child's copy of vigil's fd table
  // stops at them.
  try {
    std::size_t listen_slots = 0;
    for (const auto& p : config->programs) listen_slots = std::max(listen_slots, p.listen.size());
    prepare_spawning(listen_slots);
  } catch (const std::exception& e) {
    spdlog::critical("cannot prepare to start programs: {}", e.what());
    return kExitUsage;
  }

  EventLoop loop;
  // Away with what an earlier vigil of this config, killed, left running;
  // then the lifeline, before any child and before vigil is a subreaper
  // (lifeline.h).
  const RunMarker marker = this_vigil_marker(config->control_socket);
  set_run_marker(marker);
  // (Not after an upgrade: the vigil before was this process, and what it
  // started is to be taken over.)
  if (!handover) log_survivors(kill_survivors(marker, std::chrono::seconds(5)));
  std::unique_ptr<Lifeline> lifeline;
  if (UniqueFd fd = take_saved_fd(app_state, "lifeline")) {
    lifeline = Lifeline::adopt(std::move(fd), app_state["lifeline"].value("pid", 0));
    lifeline->attach(loop);
  } else if (handover && (lifeline = Lifeline::find_inherited())) {
    // A state that could not be read: the old image's lifeline is found
    // by its pipe (a second one would leave the first waiting for ever).
    lifeline->attach(loop);
    spdlog::info("lifeline: pid {} taken over from the vigil before the upgrade", lifeline->pid());
  }
  if (!lifeline) try {
    lifeline = Lifeline::start(marker);
    lifeline->attach(loop);
    spdlog::info("lifeline: pid {} kills what vigil started if vigil is killed", lifeline->pid());
  } catch (const std::exception& e) {
    spdlog::warn("cannot start the lifeline ({}): if vigil is killed, what it started may outlive it",
                 e.what());
  }
  std::unique_ptr<Supervisor> supervisor_owner;
  const nlohmann::json* saved_supervisor = nullptr;
  bool state_unusable = false;
  if (handover && handover->state)
    if (auto it = handover->state->find("supervisor"); it != handover->state->end() && it->is_object())
      saved_supervisor = &*it;
  try {
    if (saved_supervisor) try {
      supervisor_owner = std::make_unique<Supervisor>(loop, *config, saved_supervisor);
    } catch (const HandoverError& e) {
      spdlog::error("upgrade: the state cannot be used ({}): taking the processes over from /proc",
                    e.what());
      state_unusable = true;  // its app part (listeners, lifeline) was taken already
      handover->error = e.what();
      saved_supervisor = nullptr;
    }
    if (!supervisor_owner) {
      // Without a state: the held `listen` sockets this process inherited,
      // found by address (children still serve them: binding anew would fail).
      std::map<std::string, UniqueFd> inherited;
      if (handover)
        for (const auto& pc : config->programs)
          for (const auto& l : pc.listen) {
            UniqueFd fd = l.kind == SocketKind::unix_stream ? find_inherited_unix_listener(l.path)
                                                            : find_inherited_tcp_listener(l.tcp.port);
            if (fd) inherited[l.address()] = std::move(fd);
          }
      // And the sticky proxies' listeners (by port: one of 0 was any).
      if (handover)
        for (const auto& pc : config->programs)
          if (pc.sticky && pc.sticky->listen.port != 0)
            if (UniqueFd fd = find_inherited_tcp_listener(pc.sticky->listen.port))
              inherited[sticky_listener_key(pc.sticky->listen.to_string())] = std::move(fd);
      supervisor_owner = std::make_unique<Supervisor>(loop, std::move(*config), nullptr, std::move(inherited));
    }
  } catch (const std::exception& e) {
    // A `listen` socket that cannot be bound: as when systemd's socket unit
    // fails, its service cannot start, and vigil does not start without it.
    spdlog::critical("{}; vigil is not starting", e.what());
    return kExitUsage;
  }
  Supervisor& supervisor = *supervisor_owner;
  int exit_code = kExitOk;
  auto on_done = [&](int code) {
    exit_code = code;
    loop.exit();
  };
  supervisor.set_exit_handler(on_done);

  std::function<void()> notify_stopping;
  auto on_stop_signal = [&](const char* name) {
    if (supervisor.shutting_down()) {
      // The second one: the operator will not wait for stop_timeout.
      spdlog::warn("{} again: killing every program now", name);
      supervisor.kill_all_now();
      return;
    }
    spdlog::info("{} received", name);
    if (notify_stopping) notify_stopping();
    supervisor.shutdown();
  };
  SignalEvent sigterm(loop, SIGTERM, [&] { on_stop_signal("SIGTERM"); });
  SignalEvent sigint(loop, SIGINT, [&] { on_stop_signal("SIGINT"); });
  SignalEvent sighup(loop, SIGHUP, [&] {
    spdlog::info("SIGHUP: reloading {}", supervisor.config().file.string());
    supervisor.reload_file(false);
  });
  SignalEvent sigusr2(loop, SIGUSR2, [&] {
    spdlog::info("SIGUSR2: reopening log files");
    supervisor.reopen_logs();
  });
  std::unique_ptr<Upgrader> upgrader;
  SignalEvent sigusr1(loop, SIGUSR1, [&] {
    spdlog::info("SIGUSR1: upgrading vigil in place");
    if (upgrader) upgrader->begin({}, "SIGUSR1");
  });
  // Blocked across the exec of an upgrade; handled from here on.
  unblock_handled_signals();

  // The control socket always, TCP when [http] is configured. A vigil that
  // cannot be reached would be unmanageable: failing to listen is fatal.
  HttpApi api(supervisor);
  HistoryRecorder history(loop, supervisor);
  api.set_history(history);
  auto handler = [&api](const HttpRequest& r) { return api.handle(r); };
  std::unique_ptr<HttpServer> control, tcp;
  try {
    control = std::make_unique<HttpServer>(loop, handler);
    // Across an upgrade, the same listening socket: a client that connects
    // during the exec is answered by the new vigil.
    UniqueFd saved_control = take_saved_fd(app_state, "control");
    if (!saved_control) saved_control = find_inherited_unix_listener(supervisor.config().control_socket);
    if (saved_control)
      control->adopt_unix(std::move(saved_control), supervisor.config().control_socket);
    else
      control->listen_unix(supervisor.config().control_socket);
    api.add_server(*control);
    UniqueFd saved_http = take_saved_fd(app_state, "http");
    if (const auto& http = supervisor.config().http) {
      std::string why;
      auto address = parse_listen_address(http->listen, &why);
      if (!address) throw std::runtime_error("[http] listen: " + why);
      tcp = std::make_unique<HttpServer>(loop, handler);
      if (saved_http && app_state["http"].value("listen", std::string()) == http->listen)
        tcp->adopt_tcp(std::move(saved_http));
      else if (UniqueFd found = find_inherited_tcp_listener(address->port); found && address->port != 0)
        tcp->adopt_tcp(std::move(found));
      else
        tcp->listen_tcp(*address);
      api.add_server(*tcp);
      spdlog::info("serving /metrics, /api/v1 and the status page on http://{}", [&] {
        ListenAddress shown = *address;
        shown.port = tcp->port();
        return shown.to_string();
      }());
    }
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return kExitUsage;
  }

  spdlog::info("vigil {} running {} ({} program{})", kVersion, supervisor.config().file.string(),
               supervisor.programs().size(), supervisor.programs().size() == 1 ? "" : "s");
  upgrader = std::make_unique<Upgrader>(loop, supervisor, own_binary(), [&](std::vector<int>& keep) {
    nlohmann::json app;
    app["lifeline"] = nullptr;
    if (lifeline) {
      app["lifeline"] = {{"fd", lifeline->fd()}, {"pid", lifeline->pid()}};
      keep.push_back(lifeline->fd());
    }
    app["control"] = {{"fd", control->listen_fd()}, {"path", supervisor.config().control_socket.string()}};
    keep.push_back(control->listen_fd());
    app["http"] = nullptr;
    if (tcp) {
      app["http"] = {{"fd", tcp->listen_fd()}, {"listen", supervisor.config().http->listen}};
      keep.push_back(tcp->listen_fd());
    }
    return app;
  });
  api.set_upgrade({[&](const HttpRequest& r) { return upgrader->handle(r); },
                   [&](SelfSnapshot& s) {
                     s.upgrades_handover = upgrader->counts().handover;
                     s.upgrades_adopted = upgrader->counts().adopted;
                     s.upgrades_failed = upgrader->counts().failed;
                   }});

  SelfNotify self_notify(loop);
  notify_stopping = [&] { self_notify.stopping(); };
  if (handover) {
    upgrader->counts() = handover->counts;
    const bool read = handover->state.has_value() && !state_unusable;
    if (!read) {
      // The old vigil counted this one as a handover in the state it wrote.
      if (upgrader->counts().handover > 0) --upgrader->counts().handover;
      ++upgrader->counts().adopted;
    }
    const Supervisor::Resumed r = supervisor.resume(saved_supervisor);
    for (const auto& e : r.errors) spdlog::error("upgrade: {}", e);
    upgrader->set_last(handover->attempt, read ? "handover" : "adopted", read ? "" : handover->error);
    spdlog::info("upgrade: vigil {} took over from vigil {} ({}): {} process{} kept{}", kVersion,
                 handover->from_version.empty() ? "?" : handover->from_version,
                 read ? "handover" : "adopted from /proc", r.from_state + r.from_proc,
                 r.from_state + r.from_proc == 1 ? "" : "es",
                 r.from_proc && read ? " (" + std::to_string(r.from_proc) + " from /proc)" : std::string());
  } else {
    supervisor.start();
  }
  self_notify.ready();
  loop.run();
  return exit_code;
}

int command_check(const CliCommand& cmd) {
  std::string text;
  auto config = load_config(cmd.config, &text);
  if (!config) return kExitUsage;
  // The config is valid; now what it needs from this machine to start.
  std::size_t errors = 0, warnings = 0;
  for (const auto& f : preflight(*config, text)) {
    const bool error = f.error || cmd.strict;
    (error ? errors : warnings)++;
    ConfigError e = f.where;
    e.message = (error ? "error: " : "warning: ") + e.message;
    std::fprintf(stderr, "%s\n", e.to_string().c_str());
  }
  if (errors > 0) {
    std::fprintf(stderr, "%zu error%s in %s: the programs above would not start\n", errors,
                 errors == 1 ? "" : "s", config->file.c_str());
    return kExitUsage;
  }
  std::size_t instances = 0;
  for (const auto& p : config->programs) instances += static_cast<std::size_t>(p.instances);
  std::printf("%s: ok (%zu program%s, %zu instance%s, %zu watch%s%s)\n", config->file.c_str(),
              config->programs.size(), config->programs.size() == 1 ? "" : "s", instances,
              instances == 1 ? "" : "s", config->watches.size(),
              config->watches.size() == 1 ? "" : "es",
              warnings ? (", " + std::to_string(warnings) + " warning" + (warnings == 1 ? "" : "s")).c_str() : "");
  // vigil raises its soft fd limit to the hard one at start: compare with that.
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_max != RLIM_INFINITY)
    if (auto warning = fd_budget_warning(fd_budget(*config), static_cast<std::size_t>(limit.rlim_max)))
      std::fprintf(stderr, "%s: %s\n", config->file.c_str(), warning->c_str());
  return kExitOk;
}

// Where the running vigil listens: $VIGIL_SOCKET, else the control_socket of
// the config (-c, or ./vigil.toml when it exists), else ./vigil.sock.
// A config with errors still names its socket: `vigil reload` runs right
// after an edit, and must reach vigil to report what is wrong. When even
// that is unknown (a TOML syntax error), the default place next to the file.
std::filesystem::path find_socket(const CliCommand& cmd) {
  if (const char* env = std::getenv("VIGIL_SOCKET"); env && *env && !cmd.config_given) return env;
  std::error_code ec;
  if (cmd.config_given || std::filesystem::exists(cmd.config, ec)) {
    std::filesystem::path path = std::filesystem::absolute(cmd.config, ec).lexically_normal();
    std::ifstream in(path, std::ios::binary);
    if (in) {
      ConfigParseResult r = parse_config(read_config_text(in), path.string());
      if (!r.config.control_socket.empty()) return r.config.control_socket;
    }
    return path.parent_path() / "vigil.sock";
  }
  return std::filesystem::absolute("vigil.sock", ec);
}

// One request; prints why and returns nullopt when no vigil answers.
std::optional<ControlResponse> ask(const CliCommand& cmd, const std::string& method,
                                   const std::string& target) {
  std::string error;
  auto socket = find_socket(cmd);
  auto r = control_request(socket, method, target, &error);
  if (!r)
    std::fprintf(stderr, "vigil %s: cannot reach a running vigil (%s)\n", cmd.verb.c_str(),
                 error.c_str());
  return r;
}

std::string error_text(const ControlResponse& r) {
  try {
    return nlohmann::json::parse(r.body).value("error", r.body);
  } catch (const std::exception&) {
    return r.body;
  }
}

std::string field_text(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

constexpr std::size_t kNoColour = ~std::size_t{0};

// Rows of cells in aligned columns (two spaces between), the first row a
// header. Cells of column `coloured` below the header get the ANSI colour
// code that colour_of gives them.
void print_aligned(const std::vector<std::vector<std::string>>& rows, std::size_t coloured,
                   const char* (*colour_of)(const std::string& cell)) {
  std::vector<std::size_t> width(rows.empty() ? 0 : rows.front().size());
  for (const auto& r : rows)
    for (std::size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  for (std::size_t n = 0; n < rows.size(); ++n) {
    std::string line;
    for (std::size_t c = 0; c < rows[n].size(); ++c) {
      std::string cell = rows[n][c];
      std::string pad(c + 1 < rows[n].size() ? width[c] - cell.size() + 2 : 0, ' ');
      if (c == coloured && n > 0) cell = std::string("\033[") + colour_of(cell) + "m" + cell + "\033[0m";
      line += cell + pad;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  }
}

// The status table: aligned columns, state coloured on a terminal.
void print_table(const nlohmann::json& instances, bool colour) {
  // CONNS (open proxied connections) only when a program has a sticky proxy.
  const bool sticky = std::any_of(instances.begin(), instances.end(),
                                  [](const auto& i) { return i.value("sticky", nlohmann::json()).is_object(); });
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"PROGRAM", "INDEX", "PID", "STATE", "UPTIME", "RESTARTS", "MEMORY",
                  "HEARTBEAT", "STATUS", "REASON"});
  if (sticky) rows.back().insert(rows.back().end() - 2, "CONNS");
  for (const auto& i : instances) {
    std::string mem = i["memory_rss_bytes"].is_number() && i["memory_rss_bytes"].get<std::uint64_t>()
                          ? format_size(i["memory_rss_bytes"].get<std::uint64_t>())
                          : "-";
    std::string hb = i["last_heartbeat_seconds_ago"].is_number()
                         ? format_uptime(i["last_heartbeat_seconds_ago"].get<double>()) + " ago"
                         : "-";
    std::string uptime = i["pid"].is_number() ? format_uptime(i["uptime_seconds"].get<double>()) : "-";
    std::string state = i["state"].get<std::string>();
    if (state == "backoff" && i["next_restart_in_seconds"].is_number())
      state += " (" + format_uptime(i["next_restart_in_seconds"].get<double>()) + ")";
    // The instance a rolling restart is replacing now.
    if (const auto& r = i["rollout"]; r.is_object() && r["in_progress"].get<bool>() &&
                                      r["current"] == i["index"])
      state += " (rolling " + std::to_string(r["done"].get<int>() + 1) + "/" +
               std::to_string(r["total"].get<int>()) + ")";
    const std::string reason =
        shows_reason(i["state"].get<std::string>()) ? i.value("last_error", std::string()) : "";
    rows.push_back({i["name"].get<std::string>(), field_text(i["index"]), field_text(i["pid"]),
                    state, uptime, field_text(i["restarts"]), mem, hb,
                    i["status_text"].get<std::string>(), reason});
    if (sticky) {
      const auto k = i.value("sticky", nlohmann::json());
      rows.back().insert(rows.back().end() - 2, k.is_object() ? field_text(k["connections"]) : "-");
    }
  }
  print_aligned(rows, colour ? 3 : kNoColour, [](const std::string& cell) {
    return cell.rfind("running", 0) == 0                                   ? "32"
           : cell.rfind("stopped", 0) == 0                                 ? "2"
           : (cell.rfind("fatal", 0) == 0 || cell.rfind("exited", 0) == 0) ? "31"
                                                                            : "33";
  });
}

// `vigil status NAME`: after the table, each instance in detail: its last
// error and its recent exits, newest first.
void print_details(const nlohmann::json& instances) {
  auto ago = [](const nlohmann::json& seconds) {
    return seconds.is_number() ? format_uptime(seconds.get<double>()) + " ago" : std::string("-");
  };
  for (const auto& i : instances) {
    std::printf("\n%s[%d]\n", i["name"].get<std::string>().c_str(), i["index"].get<int>());
    std::vector<std::vector<std::string>> rows;
    auto row = [&rows](std::string key, std::string value) {
      rows.push_back({"  " + std::move(key), std::move(value)});
    };
    row("state", i["state"].get<std::string>());
    row("pid", field_text(i["pid"]));
    std::string restarts = field_text(i["restarts"]);
    std::string by;
    for (const auto& [reason, n] : i["restarts_by_reason"].items())
      if (n.get<std::uint64_t>() > 0) by += (by.empty() ? "" : ", ") + reason + " " + n.dump();
    if (!by.empty()) restarts += " (" + by + ")";
    row("restarts", restarts);
    if (i["next_restart_in_seconds"].is_number())
      row("next start", "in " + format_uptime(i["next_restart_in_seconds"].get<double>()));
    row("last exit", field_text(i["last_exit_code"]));
    const std::string error = i.value("last_error", std::string());
    row("last error", error.empty() ? "-" : error + " (" + ago(i["last_error_seconds_ago"]) + ")");
    print_aligned(rows, kNoColour, nullptr);
    const auto& exits = i["recent_exits"];
    if (!exits.is_array() || exits.empty()) {
      std::printf("  recent exits: none\n");
      continue;
    }
    std::printf("  recent exits, newest first:\n");
    const double now = static_cast<double>(std::time(nullptr));
    std::vector<std::vector<std::string>> table{{"    WHEN", "EXIT", "RAN", "REASON"}};
    for (auto e = exits.rbegin(); e != exits.rend(); ++e) {
      const std::string exit = e->contains("signal") ? "signal " + (*e)["signal"].dump()
                                                     : "code " + (*e)["code"].dump();
      table.push_back({"    " + format_uptime(std::max(0.0, now - (*e)["time"].get<double>())) + " ago",
                       exit, format_uptime((*e).value("run_seconds", 0.0)),
                       (*e).value("reason", std::string())});
    }
    print_aligned(table, kNoColour, nullptr);
  }
}

// The watches table, after the programs: aligned columns, state coloured
// on a terminal.
void print_watch_table(const nlohmann::json& watches, bool colour) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"WATCH", "KIND", "STATE", "UP", "IN A ROW", "FAILURES", "ACTIONS", "LAST CHECK",
                  "LAST ERROR"});
  for (const auto& w : watches) {
    std::string actions;
    for (const char* r : {"ok", "failed", "timeout"}) {
      const auto n = w["actions"].value(r, std::uint64_t{0});
      if (n > 0) actions += (actions.empty() ? "" : ", ") + std::to_string(n) + " " + r;
    }
    std::string state = w["state"].get<std::string>();
    if (w["pid"].is_number()) state += " (pid " + std::to_string(w["pid"].get<int>()) + ")";
    std::string up = w["up"].is_boolean() ? (w["up"].get<bool>() ? "1" : "0") : "-";
    std::string seen = w["last_check_seconds_ago"].is_number()
                           ? format_uptime(w["last_check_seconds_ago"].get<double>()) + " ago"
                           : "-";
    rows.push_back({w["name"].get<std::string>(), w["kind"].get<std::string>(), state, up,
                    field_text(w["consecutive_failures"]), field_text(w["failures"]),
                    actions.empty() ? "-" : actions, seen,
                    w["last_error"].get<std::string>()});
  }
  print_aligned(rows, colour ? 2 : kNoColour, [](const std::string& cell) {
    return cell.rfind("up", 0) == 0        ? "32"
           : cell.rfind("waiting", 0) == 0 ? "2"
           : cell.rfind("failing", 0) == 0 ? "33"
                                           : "31";
  });
}

int command_status(const CliCommand& cmd) {
  std::string target = "/api/v1/programs";
  if (!cmd.names.empty()) target += "/" + cmd.names[0];
  auto r = ask(cmd, "GET", target);
  if (!r) return kExitUnreachable;
  if (r->status == 404 && !cmd.names.empty()) {
    // Not a program: maybe a watch.
    auto w = ask(cmd, "GET", "/api/v1/watches/" + cmd.names[0]);
    if (!w) return kExitUnreachable;
    if (w->status == 200) {
      if (cmd.json)
        std::fputs(w->body.c_str(), stdout);
      else
        print_watch_table(nlohmann::json::parse(w->body), ::isatty(STDOUT_FILENO));
      return kExitOk;
    }
    std::fprintf(stderr, "vigil status: no program named \"%s\", nor a watch\n",
                 cmd.names[0].c_str());
    return kExitUsage;
  }
  if (r->status != 200) {
    std::fprintf(stderr, "vigil status: %s\n", error_text(*r).c_str());
    return kExitUsage;
  }
  if (cmd.json) {
    std::fputs(r->body.c_str(), stdout);
    return kExitOk;
  }
  const bool colour = ::isatty(STDOUT_FILENO);
  const nlohmann::json instances = nlohmann::json::parse(r->body);
  print_table(instances, colour);
  if (!cmd.names.empty()) print_details(instances);
  if (cmd.names.empty()) {
    auto w = ask(cmd, "GET", "/api/v1/watches");
    if (!w) return kExitUnreachable;
    if (w->status == 200) {
      nlohmann::json watches = nlohmann::json::parse(w->body, nullptr, false);
      if (watches.is_array() && !watches.empty()) {
        std::printf("\n");
        print_watch_table(watches, colour);
      }
    }
  }
  return kExitOk;
}

// start/stop/restart: asks, then waits (bounded) until every instance has
// settled, and prints the result.
int command_action(const CliCommand& cmd) {
  std::map<std::string, std::map<int, int>> pids_before;  // program -> index -> pid
  if (cmd.verb == "restart") {
    auto before = ask(cmd, "GET", "/api/v1/programs");
    if (!before) return kExitUnreachable;
    for (const auto& i : nlohmann::json::parse(before->body))
      pids_before[i["name"]][i["index"]] = i["pid"].is_number() ? i["pid"].get<int>() : 0;
  }
  std::set<std::string> names(cmd.names.begin(), cmd.names.end());
  // A restart of several instances rolls: which rolling restart is ours,
  // per program, to wait for its end and report how it ended.
  std::map<std::string, std::uint64_t> rollouts;
  for (const auto& name : cmd.names) {
    const std::string query = cmd.all_at_once ? "?all_at_once=1" : "";
    auto r = ask(cmd, "POST", "/api/v1/programs/" + name + "/" + cmd.verb + query);
    if (!r) return kExitUnreachable;
    if (r->status != 200) {
      std::fprintf(stderr, "vigil %s %s: %s\n", cmd.verb.c_str(), name.c_str(),
                   error_text(*r).c_str());
      return kExitUsage;
    }
    for (const auto& i : nlohmann::json::parse(r->body).value("instances", nlohmann::json::array()))
      if (i["rollout"].is_object() && i["rollout"]["in_progress"].get<bool>())
        rollouts[i["name"].get<std::string>()] = i["rollout"]["id"].get<std::uint64_t>();
  }
  auto ours = [&](const nlohmann::json& i) -> const nlohmann::json* {
    auto it = rollouts.find(i["name"].get<std::string>());
    if (it == rollouts.end() || !i["rollout"].is_object()) return nullptr;
    if (i["rollout"]["id"].get<std::uint64_t>() != it->second) return nullptr;
    return &i["rollout"];
  };
  auto settled = [&](const nlohmann::json& i) {
    std::string st = i["state"];
    if (cmd.verb == "stop") return st == "stopped" || st == "exited" || st == "fatal";
    if (rollouts.count(i["name"].get<std::string>())) {
      // Rolled: settled when its rolling restart ended, however it ended.
      const nlohmann::json* r = ours(i);
      return !r || !(*r)["in_progress"].get<bool>();
    }
    if (st == "starting" || st == "stopping") return false;
    if (cmd.verb == "restart") {
      int before = pids_before[i["name"]][i["index"]];
      int now = i["pid"].is_number() ? i["pid"].get<int>() : 0;
      if (before != 0 && now == before) return false;
    }
    return true;
  };
  // Two minutes without progress: a rolling restart of many instances may
  // take longer in all, but each of its steps ends by start_timeout.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  int progress = -1;
  nlohmann::json shown = nlohmann::json::array();
  for (;;) {
    auto r = ask(cmd, "GET", "/api/v1/programs");
    if (!r) return kExitUnreachable;
    shown = nlohmann::json::array();
    bool all = true;
    int done = 0;
    for (const auto& i : nlohmann::json::parse(r->body)) {
      if (!names.count("all") && !names.count(i["name"].get<std::string>())) continue;
      shown.push_back(i);
      all &= settled(i);
      if (const nlohmann::json* ro = ours(i)) done += (*ro)["done"].get<int>();
    }
    if (done != progress) {
      progress = done;
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    }
    if (all || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  print_table(shown, ::isatty(STDOUT_FILENO));
  // A rolling restart that stopped early is a failure of the command.
  std::set<std::string> failed;
  for (const auto& i : shown) {
    const nlohmann::json* r = ours(i);
    if (!r || (*r)["error"].get<std::string>().empty()) continue;
    if (!failed.insert(i["name"].get<std::string>()).second) continue;
    std::fprintf(stderr, "vigil restart %s: %s\n", i["name"].get<std::string>().c_str(),
                 (*r)["error"].get<std::string>().c_str());
  }
  return failed.empty() ? kExitOk : kExitFailed;
}

int command_reload(const CliCommand& cmd) {
  auto r = ask(cmd, "POST", std::string("/api/v1/reload") + (cmd.dry_run ? "?dry_run=1" : ""));
  if (!r) return kExitUnreachable;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(r->body);
  } catch (const std::exception&) {
    std::fprintf(stderr, "vigil reload: %s\n", r->body.c_str());
    return kExitUsage;
  }
  if (!j.value("ok", false)) {
    for (const auto& e : j.value("errors", nlohmann::json::array()))
      std::fprintf(stderr, "%s\n", e.get<std::string>().c_str());
    if (j.contains("error")) std::fprintf(stderr, "vigil reload: %s\n", j["error"].get<std::string>().c_str());
    std::fprintf(stderr, "vigil reload: the running configuration is unchanged\n");
    return kExitUsage;
  }
  std::printf("%s%s", cmd.dry_run ? "plan (dry run, nothing changed):\n" : "",
              j.value("plan", std::string()).c_str());
  return kExitOk;
}

// `vigil upgrade`: asks, then follows the attempt until the new vigil
// answers (the exec is done) or the old one says why it refused.
int command_upgrade(const CliCommand& cmd) {
  auto parse = [](const ControlResponse& r) {
    return nlohmann::json::parse(r.body, nullptr, false);
  };
  auto before_r = ask(cmd, "GET", "/api/v1/upgrade");
  if (!before_r) return kExitUnreachable;
  const nlohmann::json before = parse(*before_r);
  if (before_r->status != 200 || !before.is_object()) {
    std::fprintf(stderr, "vigil upgrade: the running vigil cannot upgrade in place (%s)\n",
                 error_text(*before_r).c_str());
    return kExitFailed;
  }
  std::string binary;
  if (!cmd.binary.empty()) {
    std::error_code ec;
    binary = std::filesystem::absolute(cmd.binary, ec).string();
  }
  std::string query;
  for (unsigned char c : binary) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      query += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      query += hex;
    }
  }
  auto posted = ask(cmd, "POST", "/api/v1/upgrade" + (binary.empty() ? "" : "?binary=" + query));
  if (!posted) return kExitUnreachable;
  const nlohmann::json started = parse(*posted);
  if (posted->status != 202 || !started.is_object()) {
    std::string why = started.is_object() ? started.value("error", std::string()) : "";
    if (why.empty()) why = error_text(*posted);
    std::fprintf(stderr, "vigil upgrade: %s\nvigil upgrade: the running vigil is unchanged\n", why.c_str());
    return kExitFailed;
  }
  const auto attempt = started.value("attempt", std::uint64_t{0});
  const auto image = before.value("image", std::uint64_t{0});
  // The checks run `check` on the config; the exec and the takeover follow.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::string error;
    auto r = control_request(find_socket(cmd), "GET", "/api/v1/upgrade", &error);
    if (!r || r->status != 200) continue;  // the exec under way
    const nlohmann::json now = parse(*r);
    if (!now.is_object()) continue;
    const bool same_attempt = now.value("attempt", std::uint64_t{0}) == attempt;
    const std::string result = now["result"].is_string() ? now["result"].get<std::string>() : "";
    if (now.value("image", std::uint64_t{0}) == image) {
      if (same_attempt && !now.value("in_progress", false) && result == "failed") {
        std::fprintf(stderr, "vigil upgrade: %s\nvigil upgrade: the running vigil is unchanged\n",
                     now.value("error", std::string()).c_str());
        return kExitFailed;
      }
      continue;
    }
    // A new image answers.
    std::printf("vigil upgraded in place: %s -> %s (pid %d, %s)\n",
                before.value("version", std::string("?")).c_str(),
                now.value("version", std::string("?")).c_str(), now.value("pid", 0),
                result == "adopted" ? "the state could not be read: processes taken over from /proc"
                                    : "every process kept");
    return kExitOk;
  }
  std::fprintf(stderr, "vigil upgrade: no answer from the new vigil within 120s\n");
  return kExitFailed;
}

// The log files of `vigil logs [NAME]`: those the running vigil writes (its
// API names them), found as `vigil status` finds it; with -c, or when no
// vigil answers, those the config names.
struct LogFiles {
  std::vector<TailFile> files;  // prefix: "web[1] err | " (cleared later when alone)
  std::string where;            // "the running vigil" or the config file
  bool found = false;           // NAME (when given) is a program there
};

void add_instance_logs(LogFiles& out, const std::string& label, const std::string& stdout_file,
                       const std::string& stderr_file) {
  if (stdout_file == stderr_file) {
    out.files.push_back({stdout_file, label + " | "});
  } else {
    out.files.push_back({stdout_file, label + " out | "});
    out.files.push_back({stderr_file, label + " err | "});
  }
}

std::optional<LogFiles> logs_of_running_vigil(const CliCommand& cmd, const std::string& only) {
  if (cmd.config_given) return std::nullopt;
  std::string error;
  auto r = control_request(find_socket(cmd), "GET", "/api/v1/programs", &error);
  if (!r || r->status != 200) return std::nullopt;
  const nlohmann::json all = nlohmann::json::parse(r->body, nullptr, false);
  if (!all.is_array()) return std::nullopt;
  LogFiles out;
  out.where = "the running vigil";
  std::map<std::string, int> instances;
  for (const auto& i : all) instances[i.value("name", std::string())]++;
  for (const auto& i : all) {
    const std::string name = i.value("name", std::string());
    if (!only.empty() && name != only) continue;
    out.found = true;
    const auto& files = i["log_files"];
    if (!files.is_object()) continue;  // log = "off"
    const std::string label =
        instances[name] > 1 ? name + "[" + std::to_string(i.value("index", 0)) + "]" : name;
    add_instance_logs(out, label, files.value("stdout", std::string()), files.value("stderr", std::string()));
  }
  return out;
}

std::optional<LogFiles> logs_of_config(const CliCommand& cmd, const std::string& only) {
  auto config = load_config(cmd.config);
  if (!config) return std::nullopt;
  LogFiles out;
  out.where = config->file.string();
  for (const auto& pc : config->programs) {
    if (!only.empty() && pc.name != only) continue;
    out.found = true;
    if (pc.log == LogMode::off) continue;
    for (int i = 0; i < pc.instances; ++i)
      add_instance_logs(out, pc.instances > 1 ? pc.name + "[" + std::to_string(i) + "]" : pc.name,
                        log_file_path(config->log_dir, pc, i, false).string(),
                        log_file_path(config->log_dir, pc, i, true).string());
  }
  return out;
}

int command_logs(const CliCommand& cmd) {
  const std::string only = cmd.names.empty() ? "" : cmd.names[0];
  auto logs = logs_of_running_vigil(cmd, only);
  if (!logs) logs = logs_of_config(cmd, only);
  if (!logs) return kExitUsage;
  if (!only.empty() && !logs->found) {
    std::fprintf(stderr, "vigil logs: no program named \"%s\" in %s\n", only.c_str(), logs->where.c_str());
    return kExitUsage;
  }
  if (!only.empty() && logs->files.empty()) {
    std::fprintf(stderr, "vigil logs: %s has log = \"off\"\n", only.c_str());
    return kExitUsage;
  }
  auto& files = logs->files;
  // Prefixes only when lines of several files mix.
  if (files.size() == 1 && !cmd.follow) files[0].prefix.clear();
  // Nothing written yet (never started, or log_dir elsewhere): say where
  // vigil looked rather than print nothing.
  if (std::none_of(files.begin(), files.end(), [](const TailFile& f) {
        std::error_code ec;
        return std::filesystem::exists(f.path, ec);
      })) {
    std::string looked;
    for (const auto& f : files) looked += (looked.empty() ? "" : ", ") + f.path.string();
    std::fprintf(stderr, "vigil logs: %s no log yet (%s)%s\n",
                 only.empty() ? "there is" : (only + " has").c_str(),
                 looked.empty() ? "no program logs" : looked.c_str(), cmd.follow ? "; waiting for it" : "");
  }
  static volatile std::sig_atomic_t stop = 0;
  std::signal(SIGINT, [](int) { stop = 1; });
  std::signal(SIGTERM, [](int) { stop = 1; });
  tail_logs(files, static_cast<std::size_t>(cmd.lines), cmd.follow, stdout, [] { return !stop; });
  return kExitOk;
}

}  // namespace

int run_command(const CliCommand& cmd) {
  if (cmd.verb == "version") {
    std::printf("vigil %s\n", kVersion);
    return kExitOk;
  }
  if (cmd.verb == "help") {
    // parse_cli accepts only a verb help_text knows.
    const std::string text =
        cmd.names.empty() ? usage() : help_text(cmd.names.front()).value_or(usage());
    std::fputs(text.c_str(), stdout);
    return kExitOk;
  }
  if (cmd.verb == "run") return command_run(cmd);
  if (cmd.verb == "check") return command_check(cmd);
  if (cmd.verb == "status") return command_status(cmd);
  if (cmd.verb == "start" || cmd.verb == "stop" || cmd.verb == "restart") return command_action(cmd);
  if (cmd.verb == "reload") return command_reload(cmd);
  if (cmd.verb == "upgrade") return command_upgrade(cmd);
  if (cmd.verb == "logs") return command_logs(cmd);
  if (cmd.verb == "import") return command_import(cmd);
  std::fprintf(stderr, "vigil: unknown command \"%s\"\n", cmd.verb.c_str());
  return kExitUsage;
}

int run_cli(int argc, char** argv) {
  ensure_std_fds_open();
  std::vector<std::string> args(argv + 1, argv + argc);
  CliParse p = parse_cli(args);
  if (!p.command) {
    std::fprintf(stderr, "vigil: %s\n%s", p.error.c_str(), usage().c_str());
    return kExitUsage;
  }
  try {
    return run_command(*p.command);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vigil: %s\n", e.what());
    return kExitUsage;
  }
}

}  // namespace vigil
