// Whether a string `command` (run as /bin/sh -c STRING) can become
// "exec STRING": the shell then replaces itself with the program, which
// gets the instance's pid, its signals and its own exit status, and no
// shell stays behind as its parent. Pure: decided on the text alone; what
// is not plainly one simple command keeps the shell.
#pragma once
#include <string>
#include <string_view>

namespace vigil {

// "exec " + script when script is one simple command whose first word names
// a program (no ; & && || | ( ) newline, command substitution, leading
// assignment, shell keyword or builtin); otherwise script unchanged.
std::string exec_in_place(std::string_view script);

}  // namespace vigil
