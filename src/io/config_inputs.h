// What parse_config takes from the system: the CPU count, vigil's own
// environment, and the env_files' text.
#pragma once
#include "config_parse.h"

namespace vigil {

ConfigInputs system_config_inputs();

}  // namespace vigil
