// `vigil import`: a pm2 ecosystem file or a supervisord.conf turned into
// vigil.toml text, with a note for each setting that has no vigil
// equivalent. Pure: the caller reads the file (and has node print a .js
// ecosystem file as JSON).
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

// A setting that was not carried over, or carried over only in part.
struct ImportNote {
  std::string program;  // the program's name in the source; empty: the whole file
  std::string setting;  // "exec_mode", "[supervisord]"
  std::string why;
  std::string to_string() const;  // "api: exec_mode: why" / "[supervisord]: why"
};

struct ImportResult {
  std::string toml;                // the vigil.toml text, when error is empty
  std::vector<ImportNote> notes;   // in source order
  std::string error;               // the source could not be read at all
  bool ok() const { return error.empty(); }
};

enum class ImportFormat { pm2_json, pm2_js, supervisord };

// `s` as a TOML basic string: quoted, with \" \\ \n \t \r and \uXXXX for
// the other control characters.
std::string toml_string(std::string_view s);

// By the file's name (".js", ".cjs", ".mjs": pm2 code; ".json": pm2 JSON;
// ".conf", ".ini": supervisord), else by its text ("[program:" or
// "[supervisord]": supervisord; a leading "{" or "[": pm2 JSON).
std::optional<ImportFormat> detect_import_format(std::string_view file_name, std::string_view text);

// `json`: an ecosystem file as JSON ({"apps": [...]}, or the apps array).
// `source`: the file's name, for the header comment.
ImportResult import_pm2(std::string_view json, std::string_view source);

// `conf_dir`: the file's folder, for %(here)s.
ImportResult import_supervisord(std::string_view text, std::string_view source,
                                std::string_view conf_dir);

// Splits a command line as supervisord does (Python's shlex in POSIX mode:
// blanks separate words, '...' is literal, "..." and \ escape); nullopt
// when a quote is not closed.
std::optional<std::vector<std::string>> split_command_line(std::string_view text);

}  // namespace vigil
