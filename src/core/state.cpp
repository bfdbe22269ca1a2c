// Names of states and restart reasons: the contract's words.
#include "state.h"

namespace vigil {

const char* to_string(State s) {
  switch (s) {
    case State::stopped: return "stopped";
    case State::starting: return "starting";
    case State::running: return "running";
    case State::stopping: return "stopping";
    case State::exited: return "exited";
    case State::backoff: return "backoff";
    case State::fatal: return "fatal";
  }
  return "unknown";
}

const char* to_string(RestartReason r) {
  switch (r) {
    case RestartReason::exit: return "exit";
    case RestartReason::signal: return "signal";
    case RestartReason::hung: return "hung";
    case RestartReason::memory: return "memory";
    case RestartReason::probe: return "probe";
    case RestartReason::start_timeout: return "start_timeout";
    case RestartReason::manual: return "manual";
  }
  return "unknown";
}

}  // namespace vigil
