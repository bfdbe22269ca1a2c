// vigil's own log: spdlog to stderr, synchronous, one line per event.
#pragma once
#include <string>

namespace vigil {
// Returns false for an unknown level name (the config parser validates it).
bool init_logging(const std::string& level);
}  // namespace vigil
