// What a probe found, in the contract's words: passed, or failed for one of
// five kinds of reason (vigil_probe_failures_total{kind}). Pure.
#pragma once
#include <array>
#include <string>

#include "units.h"

namespace vigil {

enum class ProbeFailure { timeout, refused, status, body, exec };
inline constexpr std::array<ProbeFailure, 5> kAllProbeFailures{
    ProbeFailure::timeout, ProbeFailure::refused, ProbeFailure::status, ProbeFailure::body,
    ProbeFailure::exec};
const char* to_string(ProbeFailure f);

struct ProbeOutcome {
  bool ok = false;
  ProbeFailure failure = ProbeFailure::timeout;  // when !ok
  Duration took{0};                              // start to verdict
  std::string detail;  // for vigil's log: "HTTP 503", "connection refused", "exit status 1"
};

}  // namespace vigil
