// Translation of wait(2) statuses.
#include "exit_status.h"

#include <sys/wait.h>

#include <cstring>

#include "config.h"

namespace vigil {

const char* to_string(ExitKind k) {
  switch (k) {
    case ExitKind::clean: return "clean";
    case ExitKind::code: return "code";
    case ExitKind::signal: return "signal";
  }
  return "unknown";
}

ExitStatus ExitStatus::from_wait_status(int wstatus) {
  ExitStatus s;
  if (WIFSIGNALED(wstatus)) {
    s.signaled = true;
    s.signal = WTERMSIG(wstatus);
    s.core_dumped = WCOREDUMP(wstatus);
  } else {
    s.code = WEXITSTATUS(wstatus);
  }
  return s;
}

std::string ExitStatus::describe() const {
  if (!signaled) return "exit code " + std::to_string(code);
  std::string out = "signal " + signal_name(signal);
  if (core_dumped) out += " (core dumped)";
  return out;
}

}  // namespace vigil
