// Logger set-up. Synchronous on purpose: one thread, and stderr is vigil's
// own supervisor's concern (journald, a terminal, a container runtime).
#include "log.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace vigil {

bool init_logging(const std::string& level) {
  auto logger = std::make_shared<spdlog::logger>(
      "vigil", std::make_shared<spdlog::sinks::stderr_color_sink_st>());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e vigil %^%l%$: %v");
  auto lvl = spdlog::level::from_str(level);
  bool ok = lvl != spdlog::level::off || level == "off";
  logger->set_level(ok ? lvl : spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  return ok;
}

}  // namespace vigil
