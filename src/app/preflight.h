// `vigil check`'s look at the machine: what a valid config still needs from
// the environment to start (each program's executable, its cwd, its user,
// the log folder, free listen addresses), reported at the config's own
// FILE:LINE:COL so an error reads like a config error.
#pragma once
#include <string>
#include <vector>

#include "config.h"
#include "config_parse.h"

namespace vigil {

struct PreflightFinding {
  ConfigError where;  // FILE:LINE:COL and the message
  // An error fails `vigil check`. A warning (a listen address in use: the
  // running vigil may hold it) fails only `vigil check --strict`.
  bool error = true;
};

// `text` is the config file's text `config` was parsed from: it gives the
// positions. Nothing is created or changed.
std::vector<PreflightFinding> preflight(const Config& config, const std::string& text);

}  // namespace vigil
