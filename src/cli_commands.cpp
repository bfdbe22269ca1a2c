// The verbs. `run` wires signals to the supervisor: SIGTERM/SIGINT stop
// everything (a second SIGINT kills at once), SIGUSR2 reopens logs.
#include "cli_commands.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "config_parse.h"
#include "event_loop.h"
#include "fd.h"
#include "http_api.h"
#include "http_server.h"
#include "listen_address.h"
#include "log.h"
#include "supervisor.h"
#include "version.h"

namespace vigil {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;
constexpr int kExitUnreachable = 2;

// Reads and parses the config; prints every error. nullopt on failure.
std::optional<Config> load_config(const std::string& path_text) {
  std::error_code ec;
  std::filesystem::path path = std::filesystem::absolute(path_text, ec).lexically_normal();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "%s: cannot read the config: %s\n", path.c_str(),
                 std::strerror(errno));
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  ConfigParseResult r = parse_config(ss.str(), path.string());
  for (const auto& e : r.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
  if (!r.ok()) {
    std::fprintf(stderr, "%zu error%s in %s\n", r.errors.size(), r.errors.size() == 1 ? "" : "s",
                 path.c_str());
    return std::nullopt;
  }
  return std::move(r.config);
}

int command_run(const CliCommand& cmd) {
  auto config = load_config(cmd.config);
  if (!config) return kExitUsage;
  init_logging(config->log_level);
  ::signal(SIGPIPE, SIG_IGN);

  EventLoop loop;
  Supervisor supervisor(loop, std::move(*config));
  int exit_code = kExitOk;
  auto on_done = [&](int code) {
    exit_code = code;
    loop.exit();
  };
  supervisor.set_exit_handler(on_done);

  auto on_stop_signal = [&](const char* name) {
    if (supervisor.shutting_down()) {
      // The second one: the operator will not wait for stop_timeout.
      spdlog::warn("{} again: killing every program now", name);
      supervisor.kill_all_now();
      return;
    }
    spdlog::info("{} received", name);
    supervisor.shutdown();
  };
  SignalEvent sigterm(loop, SIGTERM, [&] { on_stop_signal("SIGTERM"); });
  SignalEvent sigint(loop, SIGINT, [&] { on_stop_signal("SIGINT"); });
  SignalEvent sighup(loop, SIGHUP, [&] {
    spdlog::warn("SIGHUP: live reload is not available in this version; configuration unchanged");
  });
  SignalEvent sigusr2(loop, SIGUSR2, [&] {
    spdlog::info("SIGUSR2: reopening log files");
    supervisor.reopen_logs();
  });

  // The control socket always, TCP when [http] is configured. A vigil that
  // cannot be reached would be unmanageable: failing to listen is fatal.
  HttpApi api(supervisor);
  auto handler = [&api](const HttpRequest& r) { return api.handle(r); };
  std::unique_ptr<HttpServer> control, tcp;
  try {
    control = std::make_unique<HttpServer>(loop, handler);
    control->listen_unix(supervisor.config().control_socket);
    if (const auto& http = supervisor.config().http) {
      std::string why;
      auto address = parse_listen_address(http->listen, &why);
      if (!address) throw std::runtime_error("[http] listen: " + why);
      tcp = std::make_unique<HttpServer>(loop, handler);
      tcp->listen_tcp(*address);
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
  supervisor.start();
  loop.run();
  return exit_code;
}

int command_check(const CliCommand& cmd) {
  auto config = load_config(cmd.config);
  if (!config) return kExitUsage;
  std::size_t instances = 0;
  for (const auto& p : config->programs) instances += static_cast<std::size_t>(p.instances);
  std::printf("%s: ok (%zu program%s, %zu instance%s)\n", config->file.c_str(),
              config->programs.size(), config->programs.size() == 1 ? "" : "s", instances,
              instances == 1 ? "" : "s");
  return kExitOk;
}

}  // namespace

int run_command(const CliCommand& cmd) {
  if (cmd.verb == "version") {
    std::printf("vigil %s\n", kVersion);
    return kExitOk;
  }
  if (cmd.verb == "help") {
    std::fputs(usage().c_str(), stdout);
    return kExitOk;
  }
  if (cmd.verb == "run") return command_run(cmd);
  if (cmd.verb == "check") return command_check(cmd);
  std::fprintf(stderr,
               "vigil %s: cannot reach a running vigil: this version has no control socket yet\n",
               cmd.verb.c_str());
  return kExitUnreachable;
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
