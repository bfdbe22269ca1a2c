// Command-line grammar of DESIGN.md "Command line".
#include "cli.h"

#include <charconv>

namespace vigil {

std::string usage() {
  return R"(usage:
  vigil run   [-c vigil.toml]        run in the foreground
  vigil check [-c vigil.toml]        validate the config; errors as FILE:LINE:COL: message
  vigil status [NAME] [--json]       programs, pids, states, restarts
  vigil start|stop|restart NAME|all  through the control socket; a restart of several
                                     instances rolls, one at a time (--all-at-once: not)
  vigil reload [--dry-run]           re-read the config; restart only what changed
  vigil logs NAME [-f] [-n N]        print (and follow) a program's log
  vigil version
)";
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
                                 "restart", "reload", "logs",   "version", "help"};
  bool known = false;
  for (auto v : kVerbs) known |= cmd.verb == v;
  if (!known) {
    out.error = "unknown command \"" + cmd.verb + "\"";
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
    } else if (a == "--all-at-once" && cmd.verb == "restart") {
      cmd.all_at_once = true;
    } else if (a.size() > 1 && a[0] == '-') {
      out.error = "unknown option \"" + a + "\"";
      return out;
    } else {
      cmd.names.push_back(a);
    }
  }
  bool needs_name = cmd.verb == "start" || cmd.verb == "stop" || cmd.verb == "restart" ||
                    cmd.verb == "logs";
  if (needs_name && cmd.names.empty()) {
    out.error = cmd.verb + " needs a program name" + (cmd.verb == "logs" ? "" : " (or \"all\")");
    return out;
  }
  std::size_t max_names = (cmd.verb == "status" || cmd.verb == "logs") ? 1
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
