// The text of an env_file: dotenv syntax read with systemd's
// EnvironmentFile= rules. Pure: the caller reads the file.
//
//   # a comment (also "; ..."), on a line of its own
//   KEY=value            unquoted: surrounding blanks dropped, "\x" is x,
//                        a "\" at the end of a line joins the next line
//   KEY="a \"b\" $c"     double quotes: \" \\ \$ \` are escapes, "\" then
//                        a newline joins lines, any other "\x" stays "\x"
//   KEY='literal \n'     single quotes: nothing is an escape
//   export KEY=value     "export " is ignored, as dotenv does
//
// Quoted and unquoted parts may follow one another (A="x"y is "xy"); a
// quoted value may span lines. "#" after a value is part of the value, as
// in systemd. No ${VAR} expansion happens in the file.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil {

struct DotenvError {
  int line = 0;    // 1-based, in the env file
  int column = 0;  // 1-based
  std::string message;
};

struct DotenvResult {
  std::vector<std::pair<std::string, std::string>> entries;  // in file order; a key may repeat
  std::vector<DotenvError> errors;
  bool ok() const { return errors.empty(); }
};

DotenvResult parse_dotenv(std::string_view text);

}  // namespace vigil
