// Carries out a parsed command line: run, check, version (and the control
// commands once the control socket exists). Returns the process exit code.
#pragma once
#include "cli.h"

namespace vigil {

int run_cli(int argc, char** argv);
int run_command(const CliCommand& cmd);

}  // namespace vigil
