#include "dotenv.h"

namespace vigil {

namespace {

bool name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }
bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

struct Cursor {
  std::string_view text;
  std::size_t pos = 0;
  int line = 1;
  int column = 1;

  bool done() const { return pos >= text.size(); }
  char peek() const { return text[pos]; }
  char next() {
    const char c = text[pos++];
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    return c;
  }
  void skip_line() {
    while (!done() && peek() != '\n') next();
    if (!done()) next();
  }
};

}  // namespace

DotenvResult parse_dotenv(std::string_view text) {
  DotenvResult out;
  Cursor c{text};
  auto fail = [&](int line, int column, std::string message) {
    out.errors.push_back(DotenvError{line, column, std::move(message)});
  };
  while (!c.done()) {
    while (!c.done() && blank(c.peek())) c.next();
    if (c.done()) break;
    if (c.peek() == '\n') {
      c.next();
      continue;
    }
    if (c.peek() == '#' || c.peek() == ';') {
      c.skip_line();
      continue;
    }
    const int key_line = c.line, key_column = c.column;
    std::string key;
    while (!c.done() && c.peek() != '=' && c.peek() != '\n' && !blank(c.peek())) key += c.next();
    if (key == "export" && !c.done() && blank(c.peek())) {
      while (!c.done() && blank(c.peek())) c.next();
      key.clear();
      while (!c.done() && c.peek() != '=' && c.peek() != '\n' && !blank(c.peek())) key += c.next();
    }
    while (!c.done() && blank(c.peek())) c.next();
    if (key.empty() && !c.done() && c.peek() == '=') {
      fail(key_line, key_column, "a variable name is missing before \"=\"");
      c.skip_line();
      continue;
    }
    if (c.done() || c.peek() != '=') {
      fail(key_line, key_column,
           "expected KEY=VALUE, got \"" + key + "\" without \"=\"");
      c.skip_line();
      continue;
    }
    bool valid = !key.empty() && name_start(key[0]);
    for (char k : key) valid = valid && name_char(k);
    if (!valid) {
      fail(key_line, key_column,
           "invalid variable name \"" + key + "\" (letters, digits and \"_\", not starting with a digit)");
      c.skip_line();
      continue;
    }
    c.next();  // '='
    while (!c.done() && blank(c.peek())) c.next();
    std::string value;
    std::size_t keep = 0;  // value.size() up to the last character that is not trailing blank
    bool ok = true;
    while (ok && !c.done() && c.peek() != '\n') {
      const char ch = c.next();
      if (ch == '\\') {
        if (c.done()) break;
        const char e = c.next();
        if (e != '\n') {  // "\" newline: the value goes on on the next line
          value += e;
          keep = value.size();
        }
      } else if (ch == '\'' || ch == '"') {
        const int open_line = c.line, open_column = c.column - 1;
        bool closed = false;
        while (!c.done()) {
          const char q = c.next();
          if (q == ch) {
            closed = true;
            break;
          }
          if (q == '\\' && ch == '"' && !c.done()) {
            const char e = c.next();
            if (e == '"' || e == '\\' || e == '$' || e == '`') {
              value += e;
            } else if (e != '\n') {
              value += '\\';
              value += e;
            }
            continue;
          }
          value += q;
        }
        if (!closed) {
          fail(open_line, open_column,
               std::string("the ") + (ch == '"' ? "double" : "single") + " quote opened here is not closed");
          ok = false;
        }
        keep = value.size();
      } else {
        value += ch;
        if (!blank(ch)) keep = value.size();
      }
    }
    if (!ok) break;  // the rest of the file was read as the quoted text
    value.resize(keep);
    out.entries.emplace_back(std::move(key), std::move(value));
    if (!c.done()) c.next();  // '\n'
  }
  return out;
}

}  // namespace vigil
