// Names of probe failures: the contract's words.
#include "probe_check.h"

namespace vigil {

const char* to_string(ProbeFailure f) {
  switch (f) {
    case ProbeFailure::timeout: return "timeout";
    case ProbeFailure::refused: return "refused";
    case ProbeFailure::status: return "status";
    case ProbeFailure::body: return "body";
    case ProbeFailure::exec: return "exec";
  }
  return "unknown";
}

}  // namespace vigil
