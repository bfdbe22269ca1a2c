#include "config_inputs.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace vigil {

ConfigInputs system_config_inputs() {
  ConfigInputs in;
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  in.cpu_count = cpus > 0 ? static_cast<int>(std::min(cpus, 10000L)) : 1;
  in.environment = [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
  in.read_file = [](const std::filesystem::path& path, std::string* error,
                    bool* missing) -> std::optional<std::string> {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
      if (missing) *missing = errno == ENOENT;
      if (error) *error = std::strerror(errno);
      return std::nullopt;
    }
    // As big as a config may be, and no more: a FIFO or /dev/zero is not
    // read forever.
    std::string text = read_config_text(f);
    if (text.size() > kMaxConfigBytes) {
      if (error) *error = "longer than the maximum of 4MiB";
      return std::nullopt;
    }
    if (f.bad()) {
      if (error) *error = std::strerror(errno);
      return std::nullopt;
    }
    return text;
  };
  return in;
}

}  // namespace vigil
