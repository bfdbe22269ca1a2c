// `vigil import FILE [-o OUT]`: reads the file (an ecosystem.config.js
// through node), converts it with import_config, writes the result.
#pragma once
#include "cli.h"

namespace vigil {

int command_import(const CliCommand& cmd);

}  // namespace vigil
