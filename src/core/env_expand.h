// ${VAR} in a program's command and env values, from vigil's own
// environment. Pure: the environment is a lookup the caller passes in.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace vigil {

// The value of a variable in vigil's environment; nullopt when it is unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;

struct ExpandResult {
  std::string text;   // the expanded text, when error is empty
  std::string error;  // why it could not be expanded
  bool ok() const { return error.empty(); }
};

// "${NAME}": NAME's value; an unset NAME is an error (an empty one is "").
// "${NAME:-default}": NAME's value if set and non-empty, else `default`
// (taken literally, up to the first "}").
// "$$": one literal "$".
// Any other "$" stays as written: "$HOME", "$1", "${a.b}", "${NAME-x}" reach
// the program (or /bin/sh, for a string command) unchanged. NAME is
// [A-Za-z_][A-Za-z0-9_]*.
ExpandResult expand_variables(std::string_view text, const EnvLookup& lookup);

}  // namespace vigil
