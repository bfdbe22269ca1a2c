// The mark every process vigil starts carries in its environment,
// VIGIL_RUN=KEY.PID.START, by which vigil's lifeline finds, after vigil's
// death, the descendants that left their process group, and by which a
// later vigil on the same config finds what a killed one left running.
// KEY stands for the control socket (one running vigil per socket); PID and
// START (start time in clock ticks since boot) name the vigil process,
// and stay the same through an exec of a new vigil binary. Pure.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vigil {

inline constexpr std::string_view kRunVariable = "VIGIL_RUN";

struct RunMarker {
  std::string key;                 // run_key(control socket)
  long pid = 0;                    // the vigil process
  std::uint64_t start_ticks = 0;   // its starttime, /proc/PID/stat field 22

  // "KEY.PID.START", the variable's value.
  std::string value() const;
  // "VIGIL_RUN=KEY.PID.START", for an environment.
  std::string variable() const;
  // nullopt unless `value` is exactly KEY.PID.START.
  static std::optional<RunMarker> parse(std::string_view value);
  // The same vigil process.
  bool same_vigil(const RunMarker& o) const { return pid == o.pid && start_ticks == o.start_ticks; }
  bool operator==(const RunMarker&) const = default;
};

// 16 hex digits (FNV-1a, 64 bits) of the control socket's path.
std::string run_key(std::string_view control_socket);

}  // namespace vigil
