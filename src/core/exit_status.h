// A wait status in words and numbers. Pure.
#pragma once
#include <string>

namespace vigil {

enum class ExitKind { clean, code, signal };
const char* to_string(ExitKind k);

struct ExitStatus {
  bool signaled = false;
  int code = 0;    // exit code when !signaled
  int signal = 0;  // terminating signal when signaled

  static ExitStatus from_wait_status(int wstatus);
  static ExitStatus exited(int code) { return {false, code, 0}; }
  static ExitStatus killed(int sig) { return {true, 0, sig}; }

  // 128+signal when killed, as shells report it.
  int as_code() const { return signaled ? 128 + signal : code; }
  // "exit code 3", "signal SEGV (core dumped)" ...
  std::string describe() const;
  bool core_dumped = false;

  // Its fields, named, for the handover to a new vigil (core/handover.h).
  template <class Archive>
  void persist(Archive& a) {
    a("signaled", signaled);
    a("code", code);
    a("signal", signal);
    a("core_dumped", core_dumped);
  }
};

}  // namespace vigil
