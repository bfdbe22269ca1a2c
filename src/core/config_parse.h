// Reads a vigil TOML file into a Config, collecting every error with its
// FILE:LINE:COL. Pure: the only input is the text and the file's path.
#pragma once
#include <cstddef>
#include <filesystem>
#include <functional>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "env_expand.h"

namespace vigil {

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when no position applies
  int column = 0;  // 1-based
  std::string message;
  // "FILE:LINE:COL: message" (or "FILE: message" without a position)
  std::string to_string() const;
};

struct ConfigParseResult {
  Config config;                    // meaningful only when errors is empty
  std::vector<ConfigError> errors;  // every error found, in file order
  bool ok() const { return errors.empty(); }
};

// The largest config text and the deepest nesting parse_config reads: past
// either it reports the limit without parsing (toml++ recurses on nesting,
// so a deep file would overflow the stack). A reader may stop reading at
// kMaxConfigBytes + 1 bytes: that is enough to be refused.
inline constexpr std::size_t kMaxConfigBytes = std::size_t{4} << 20;  // 4MiB
inline constexpr std::size_t kMaxConfigDepth = 64;

// Reads a config's text from `in`, stopping after kMaxConfigBytes + 1
// bytes: enough for parse_config to refuse it, so neither a huge file nor
// an endless one (a FIFO, /dev/zero) is read whole.
std::string read_config_text(std::istream& in);

// What a config may take from outside the file, passed in so that parsing
// stays pure (src/io/config_inputs.h gives the real ones).
struct ConfigInputs {
  int cpu_count = 1;        // instances = "max" (and 0, -1 as pm2 writes them)
  EnvLookup environment;    // ${VAR} in command and env; unset: no variable is set
  // Reads an env_file: its text, or nullopt with *error saying why and
  // *missing set when the file does not exist. Unset: no file can be read.
  std::function<std::optional<std::string>(const std::filesystem::path&, std::string* error,
                                           bool* missing)>
      read_file;
};

// `file` is used for messages and to resolve relative paths (against its
// folder); it should be absolute.
ConfigParseResult parse_config(std::string_view text, const std::string& file,
                               const ConfigInputs& inputs = {});

}  // namespace vigil
