// The life cycle states of an instance, named as DESIGN.md names them.
#pragma once
#include <array>

namespace vigil {

enum class State { stopped, starting, running, stopping, exited, backoff, fatal };
inline constexpr std::array<State, 7> kAllStates{State::stopped, State::starting, State::running,
                                                 State::stopping, State::exited,  State::backoff,
                                                 State::fatal};
const char* to_string(State s);

// Why an instance was (or is being) restarted.
enum class RestartReason { exit, signal, hung, memory, probe, start_timeout, manual };
inline constexpr std::array<RestartReason, 7> kAllRestartReasons{
    RestartReason::exit,   RestartReason::signal,        RestartReason::hung,
    RestartReason::memory, RestartReason::probe,         RestartReason::start_timeout,
    RestartReason::manual};
const char* to_string(RestartReason r);

}  // namespace vigil
