// The test for "one simple command": a scan that follows quoting and
// rejects every operator that would make `exec` change what the script
// does. Doubt keeps the shell (the old behaviour, always correct).
#include "shell_exec.h"

#include <algorithm>
#include <array>

namespace vigil {

namespace {

// Keywords and builtins with no program of the same name: `exec exit 3`
// would fail where `exit 3` works. `exec` itself is already in place.
constexpr std::array<std::string_view, 40> kNotPrograms = {
    "!",      "{",       "}",       "case",   "do",      "done",     "elif",   "else",
    "esac",   "fi",      "for",     "if",     "in",      "then",     "until",  "while",
    "function", "select", "time",   ".",      ":",       "break",    "continue", "eval",
    "exec",   "exit",    "export",  "readonly", "return", "set",     "shift",  "trap",
    "unset",  "cd",      "alias",   "read",   "wait",    "umask",    "ulimit", "source"};

constexpr std::array<std::string_view, 8> kMoreNotPrograms = {
    "getopts", "hash", "type", "command", "jobs", "fg", "bg", "local"};

bool plain_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("_./+,:@%-").find(c) != std::string_view::npos;
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// No operator outside quotes but redirections (2>&1, >|, <&0 included).
bool one_simple_command(std::string_view s) {
  char quote = 0;  // '\'' or '"' while inside one
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quote == '\'') {
      if (c == '\'') quote = 0;
      continue;
    }
    if (c == '\\') {
      if (++i >= s.size() || s[i] == '\n') return false;  // a line continuation: keep the shell
      continue;
    }
    if (c == '`' || (c == '$' && i + 1 < s.size() && s[i + 1] == '(')) return false;
    if (quote == '"') {
      if (c == '"') quote = 0;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      continue;
    }
    const char before = i > 0 ? s[i - 1] : 0;
    const bool after_redirect = before == '>' || before == '<';
    switch (c) {
      case ';': case '(': case ')': case '\n': case '\r':
        return false;
      case '&': case '|':
        if (!after_redirect) return false;
        break;
      default:
        break;
    }
  }
  return quote == 0;
}

}  // namespace

std::string exec_in_place(std::string_view script) {
  std::size_t start = 0;
  while (start < script.size() && is_blank(script[start])) ++start;
  std::size_t end = start;
  while (end < script.size() && !is_blank(script[end])) ++end;
  const std::string_view first = script.substr(start, end - start);
  if (first.empty() || !std::all_of(first.begin(), first.end(), plain_word_char))
    return std::string(script);
  auto names = [first](const auto& list) {
    return std::find(list.begin(), list.end(), first) != list.end();
  };
  if (names(kNotPrograms) || names(kMoreNotPrograms) || !one_simple_command(script))
    return std::string(script);
  return "exec " + std::string(script);
}

}  // namespace vigil
