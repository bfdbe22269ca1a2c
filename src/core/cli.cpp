// Command-line grammar of DESIGN.md "Command line".
#include "cli.h"

#include <charconv>

namespace vigil {

std::string usage() {
  return R"(usage:
  vigil run   [-c vigil.toml]        run in the foreground
  vigil check [--strict] [-c FILE]   validate the config and what it needs to start;
                                     errors as FILE:LINE:COL: message
  vigil status [NAME] [--json]       programs, pids, states, restarts
  vigil start|stop|restart NAME|all  through the control socket; a restart of several
                                     instances rolls, one at a time (--all-at-once: not)
  vigil reload [--dry-run]           re-read the config; restart only what changed
  vigil upgrade [--binary PATH]      re-exec a new vigil in place; children keep running
  vigil logs [NAME] [-f] [-n N]      print (and follow) a program's logs, or all merged by time
  vigil import FILE [-o vigil.toml]  pm2 ecosystem file or supervisord.conf -> vigil.toml
  vigil version
  vigil help [COMMAND]               this, or one command in detail (also: COMMAND --help)
)";
}

namespace {

struct VerbHelp {
  std::string_view verb;
  std::string_view text;
};

// `vigil help VERB` and `vigil VERB --help`.
constexpr VerbHelp kHelp[] = {
    {"run", R"h(usage: vigil run [-c vigil.toml]

Runs in the foreground: starts every program with autostart, restarts them
by their policy, serves the control socket (and [http] listen, if set) until
SIGTERM or SIGINT, then stops the programs in reverse `after` order.
SIGHUP reloads the config, SIGUSR2 reopens vigil's log files, SIGUSR1
upgrades vigil in place (as `vigil upgrade`).

  -c, --config FILE   the config (default ./vigil.toml)

Exit: 0 after a clean stop, 1 when the config or the start-up fails, 3 when
an essential program went fatal.
)h"},
    {"check", R"h(usage: vigil check [--strict] [-c vigil.toml]

Validates the config without starting anything, then what it needs from
this machine to start: each program's executable (on its PATH, and
executable), its cwd, its user, a log_dir that exists or can be created,
and listen addresses (http, sticky, listen) nobody else holds. Every
problem as FILE:LINE:COL: error: message, then exit 1; "FILE: ok (...)"
and exit 0 when it is good. A listen address in use is a warning (the
running vigil may hold it) unless --strict. Warns when the instances need
more fds than the limit allows.

  --strict            warnings are errors too (the systemd unit's
                      ExecStartPre uses it: nothing else holds the ports then)
  -c, --config FILE   the config (default ./vigil.toml)
)h"},
    {"status", R"h(usage: vigil status [NAME] [--json] [-c vigil.toml]

Programs and their instances from the running vigil: state, pid, uptime,
restarts, memory, heartbeat. NAME: only that program.

  --json              the API's JSON instead of a table
  -c, --config FILE   find the control socket through this config
)h"},
    {"start", R"h(usage: vigil start NAME|all [-c vigil.toml]

Starts a stopped or fatal program (all: every one) in the running vigil.
A fatal program starts with its restart count cleared.
)h"},
    {"stop", R"h(usage: vigil stop NAME|all [-c vigil.toml]

Stops a program in the running vigil (stop_signal, then SIGKILL after
stop_timeout); it stays stopped until started. Reaches the processes it
left behind too.
)h"},
    {"restart", R"h(usage: vigil restart NAME|all [--all-at-once] [-c vigil.toml]

Restarts a program in the running vigil. Several instances roll: one at a
time, each waits for the one before to be running (and ready).

  --all-at-once       stop and start every instance together
)h"},
    {"reload", R"h(usage: vigil reload [--dry-run] [-c vigil.toml]

Re-reads the config in the running vigil (as SIGHUP does): programs added
start, removed ones stop, changed ones restart, the rest are untouched. A
config with errors changes nothing, and they are printed.

  --dry-run           print what would change, change nothing
)h"},
    {"upgrade", R"h(usage: vigil upgrade [--binary PATH] [-c vigil.toml]

Replaces the running vigil with a new binary in the same process: the
programs keep running (same pids, no restart), their output and heartbeats
are read on, and the counters carry over. The running vigil first runs
`PATH version` and `PATH check -c CONFIG`; if either fails, or the config
file changed since it was last read (reload first), nothing changes and the
error is printed. SIGUSR1 to vigil does the same with the default binary.

  --binary PATH       the new vigil (default: the file vigil was started from,
                      as a package upgrade replaces it)

Exit: 0 when the new vigil has taken over, 1 when the upgrade was refused
or failed (the running vigil carries on), 2 when no vigil answers.
)h"},
    {"logs", R"h(usage: vigil logs [NAME] [-f] [-n N] [-c vigil.toml]

Prints the last lines of a program's log files, stdout and stderr merged by
time, each line prefixed with its instance and stream. Without NAME, every
program's, merged by time. The files are those of the running vigil (found
like `vigil status` finds it); with -c, or when no vigil answers, those
named by the config.

  -f, --follow        go on printing lines as they are written
  -n, --lines N       how many lines (default 20)
)h"},
    {"import", R"h(usage: vigil import FILE [-o vigil.toml]

Converts a pm2 ecosystem file (ecosystem.config.js, evaluated with node, or
JSON) or a supervisord.conf ([program:NAME] sections) into a vigil.toml,
printed on stdout. Each setting that has no vigil equivalent is named on
stderr, with why. Check the result with `vigil check`.

  -o, --output FILE   write the vigil.toml to FILE instead

Exit: 0 when converted (notes or not), 1 when FILE cannot be read or holds
no program.
)h"},
    {"version", R"h(usage: vigil version

Prints vigil's version.
)h"},
    {"help", R"h(usage: vigil help [COMMAND]

Lists the commands, or explains one. `vigil COMMAND --help` does the same.
)h"},
};

}  // namespace

std::optional<std::string> help_text(std::string_view verb) {
  for (const auto& h : kHelp)
    if (h.verb == verb) return std::string(h.text);
  return std::nullopt;
}

CliParse parse_cli(const std::vector<std::string>& args) {
  CliParse out;
  CliCommand cmd;
  if (args.empty()) {
    out.error = "missing command";
    return out;
  }
  cmd.verb = args[0];
  if (cmd.verb == "-h" || cmd.verb == "--help") cmd.verb = "help";
  if (cmd.verb == "--version" || cmd.verb == "-V") cmd.verb = "version";
  static const char* kVerbs[] = {"run",    "check",  "status", "start", "stop",
                                 "restart", "reload", "logs",   "import", "version", "help", "upgrade"};
  bool known = false;
  for (auto v : kVerbs) known |= cmd.verb == v;
  if (!known) {
    out.error = "unknown command \"" + cmd.verb + "\"";
    return out;
  }
  // `vigil VERB --help`, whatever else is there: `vigil help VERB`.
  for (std::size_t i = 1; i < args.size(); ++i)
    if (args[i] == "-h" || args[i] == "--help") {
      cmd.names = {cmd.verb};
      cmd.verb = "help";
      out.command = std::move(cmd);
      return out;
    }
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const char* what) -> std::optional<std::string> {
      if (i + 1 >= args.size()) {
        out.error = std::string(what) + " needs a value";
        return std::nullopt;
      }
      return args[++i];
    };
    if (a == "-c" || a == "--config") {
      auto v = value("-c");
      if (!v) return out;
      cmd.config = *v;
      cmd.config_given = true;
    } else if (a.rfind("--config=", 0) == 0) {
      cmd.config = a.substr(9);
      cmd.config_given = true;
    } else if (a == "-f" || a == "--follow") {
      cmd.follow = true;
    } else if (a == "-n" || a == "--lines") {
      auto v = value("-n");
      if (!v) return out;
      int n = -1;
      auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
      if (ec != std::errc() || p != v->data() + v->size() || n < 0) {
        out.error = "-n: expected a number of lines, got \"" + *v + "\"";
        return out;
      }
      cmd.lines = n;
    } else if (a == "--dry-run") {
      cmd.dry_run = true;
    } else if (a == "--json") {
      cmd.json = true;
    } else if ((a == "-o" || a == "--output") && cmd.verb == "import") {
      auto v = value("-o");
      if (!v) return out;
      cmd.output = *v;
    } else if (a == "--strict" && cmd.verb == "check") {
      cmd.strict = true;
    } else if (a == "--all-at-once" && cmd.verb == "restart") {
      cmd.all_at_once = true;
    } else if (a == "--binary" && cmd.verb == "upgrade") {
      auto v = value("--binary");
      if (!v) return out;
      cmd.binary = *v;
    } else if (a == "--handover" && cmd.verb == "run") {
      // Internal: how `vigil upgrade` starts the new vigil.
      auto v = value("--handover");
      if (!v) return out;
      int fd = -1;
      auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), fd);
      if (ec != std::errc() || p != v->data() + v->size() || fd < 3) {
        out.error = "--handover: expected an fd number, got \"" + *v + "\"";
        return out;
      }
      cmd.handover_fd = fd;
    } else if (a.size() > 1 && a[0] == '-') {
      out.error = "unknown option \"" + a + "\"";
      return out;
    } else {
      cmd.names.push_back(a);
    }
  }
  bool needs_name = cmd.verb == "start" || cmd.verb == "stop" || cmd.verb == "restart";
  if (cmd.verb == "import" && cmd.names.empty()) {
    out.error = "import needs a file (a pm2 ecosystem file or a supervisord.conf)";
    return out;
  }
  if (needs_name && cmd.names.empty()) {
    out.error = cmd.verb + " needs a program name (or \"all\")";
    return out;
  }
  if (cmd.verb == "help" && !cmd.names.empty() && !help_text(cmd.names[0])) {
    out.error = "unknown command \"" + cmd.names[0] + "\"";
    return out;
  }
  std::size_t max_names = (cmd.verb == "status" || cmd.verb == "logs" || cmd.verb == "help" ||
                           cmd.verb == "import")
                              ? 1
                          : needs_name                                   ? 1000
                                                                         : 0;
  if (cmd.names.size() > max_names) {
    out.error = "unexpected argument \"" + cmd.names[max_names] + "\"";
    return out;
  }
  out.command = std::move(cmd);
  return out;
}

}  // namespace vigil
