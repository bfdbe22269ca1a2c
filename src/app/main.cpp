// Entry point: everything happens in cli_commands.
#include "cli_commands.h"

int main(int argc, char** argv) { return vigil::run_cli(argc, argv); }
