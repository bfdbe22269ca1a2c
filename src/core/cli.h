// The command line, parsed into a value. Pure: no files, no sockets.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

struct CliCommand {
  std::string verb;                     // run, check, status, start, stop, restart, reload, logs, import, version, help
  std::string config = "vigil.toml";    // -c / --config
  bool config_given = false;
  std::vector<std::string> names;       // NAME arguments
  bool follow = false;                  // logs -f
  int lines = 20;                       // logs -n N
  bool dry_run = false;                 // reload --dry-run
  bool json = false;                    // status --json
  bool all_at_once = false;             // restart --all-at-once
  bool strict = false;                  // check --strict
  std::string output;                   // import -o FILE; empty: stdout
  std::string binary;                   // upgrade --binary PATH; empty: the running one's file
  int handover_fd = -1;                 // run --handover FD: the state of the vigil before exec
};

struct CliParse {
  std::optional<CliCommand> command;
  std::string error;  // usage error, when command is empty
};

CliParse parse_cli(const std::vector<std::string>& args);  // args without argv[0]
std::string usage();
// What `vigil help VERB` prints; nullopt for a verb vigil does not have.
std::optional<std::string> help_text(std::string_view verb);

}  // namespace vigil
