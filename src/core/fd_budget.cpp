// The fd count of a config, instance by instance, and the warning when it
// exceeds the limit.
#include "fd_budget.h"

#include <algorithm>

namespace vigil {

std::size_t reserved_fds(std::size_t limit) {
  return std::clamp<std::size_t>(limit / 16, 8, kReservedFds);
}

std::size_t fds_per_instance(const ProgramConfig& program) {
  std::size_t n = 2;  // notify socket, heartbeat pipe (read end)
  switch (program.log) {
    case LogMode::split: n += 4; break;     // two pipes, two files
    case LogMode::combined: n += 3; break;  // two pipes, one file
    case LogMode::off: break;
  }
  if (program.probe) n += program.probe->kind == ProbeKind::exec ? 3 : 1;
  return n;
}

FdBudget fd_budget(const Config& config) {
  FdBudget b;
  b.vigil = kVigilBaseFds + kReservedFds;
  for (const auto& p : config.programs) {
    const auto count = static_cast<std::size_t>(p.instances);
    b.instances += count;
    b.per_instances += count * fds_per_instance(p);
    b.per_programs += p.listen.size() + (p.sticky ? 1 : 0);
  }
  return b;
}

std::optional<std::string> fd_budget_warning(const FdBudget& b, std::size_t limit) {
  if (b.total() <= limit) return std::nullopt;
  return "warning: " + std::to_string(b.instances) + " instance" + (b.instances == 1 ? "" : "s") +
         " need about " + std::to_string(b.total()) + " open files (" +
         std::to_string(b.per_instances) + " for the instances, " +
         std::to_string(b.per_programs + b.vigil) + " for vigil and held sockets), more than the " +
         std::to_string(limit) +
         " vigil can raise its limit to (RLIMIT_NOFILE hard limit): starts beyond it fail "
         "(EMFILE) and retry. Raise the limit (ulimit -Hn, LimitNOFILE= in a systemd unit) or "
         "run fewer instances.";
}

}  // namespace vigil
