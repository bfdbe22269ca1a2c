// How many file descriptors vigil needs for a config: what one running
// instance holds, what vigil holds for itself, and the total `vigil check`
// compares with the limit vigil can raise itself to. Pure: the limit is an
// argument, read by the caller.
#pragma once
#include <cstddef>
#include <optional>
#include <string>

#include "config.h"

namespace vigil {

// Kept free at every start, for vigil's own needs while it runs: a client
// of the control socket or /metrics, a probe, a reopened log. A start that
// would leave fewer fails as out of fds (EMFILE), so a vigil out of fds
// still answers. A sixteenth of the limit, from 8 to kReservedFds.
inline constexpr std::size_t kReservedFds = 32;
std::size_t reserved_fds(std::size_t limit);

// What vigil holds whatever the config: the loop, its signal pipe, spawn's
// slots and /dev/null, the control socket, the HTTP listener, its log.
inline constexpr std::size_t kVigilBaseFds = 24;

// Fds one running instance of `program` holds: its notify socket, the
// read end of its heartbeat pipe, its output pipes and log files, and a
// probe in flight.
std::size_t fds_per_instance(const ProgramConfig& program);

struct FdBudget {
  std::size_t instances = 0;
  std::size_t per_instances = 0;  // every instance's fds, summed
  std::size_t per_programs = 0;   // held sockets and sticky listeners
  std::size_t vigil = 0;          // kVigilBaseFds + kReservedFds (the most reserved)
  std::size_t total() const { return per_instances + per_programs + vigil; }
};

FdBudget fd_budget(const Config& config);

// A warning when `budget` needs more than `limit` (the hard RLIMIT_NOFILE,
// as vigil raises its soft limit to it), naming the numbers; nullopt when
// it fits.
std::optional<std::string> fd_budget_warning(const FdBudget& budget, std::size_t limit);

}  // namespace vigil
