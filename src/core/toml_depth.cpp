// The depth pre-scan of TOML text (see toml_depth.h). A small lexer that
// knows only what changes depth: comments, the four kinds of strings,
// table headers, dotted keys, and the arrays and inline tables of values.
// Iterative, with a stack no deeper than the limit: bounded work and memory
// whatever the text.
#include "toml_depth.h"

#include <vector>

namespace vigil {

namespace {

bool is_bare_key_char(char c) {
  // Bytes past ASCII too: toml++ may accept Unicode bare keys, and a wider
  // segment never hides a '.' between segments.
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '-' || static_cast<unsigned char>(c) >= 0x80;
}

class Scanner {
 public:
  Scanner(std::string_view text, std::size_t max_depth) : text_(text), max_depth_(max_depth) {}

  std::optional<TextPosition> run();

 private:
  struct Frame {
    bool array;          // else an inline table
    std::size_t depth;   // the depth of the container itself
  };
  enum class Expect { statement, value, after_value, inline_key };

  bool at_end() const { return i_ >= text_.size(); }
  char peek(std::size_t ahead = 0) const {
    return i_ + ahead < text_.size() ? text_[i_ + ahead] : '\0';
  }
  void advance() {
    const char c = text_[i_++];
    if (c == '\n') {
      ++at_.line;
      at_.column = 1;
    } else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      ++at_.column;
    }
  }
  // A node starts here at `depth`: the first one past the limit is the answer.
  void node(std::size_t depth) {
    if (depth > max_depth_ && !found_) found_ = at_;
  }

  void skip_blanks() {
    while (!at_end() && (peek() == ' ' || peek() == '\t')) advance();
  }
  // Blanks, line breaks and comments: between the values of an array.
  void skip_space() {
    while (!at_end()) {
      const char c = peek();
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        advance();
      } else if (c == '#') {
        skip_comment();
      } else {
        break;
      }
    }
  }
  void skip_comment() {
    while (!at_end() && peek() != '\n') advance();
  }
  void skip_string();
  std::size_t read_key(std::size_t base);
  void skip_header();
  void skip_scalar(bool in_container);

  std::string_view text_;
  std::size_t max_depth_;
  std::size_t i_ = 0;
  TextPosition at_;
  std::optional<TextPosition> found_;
};

// At a quote: past the string, honouring escapes in basic strings. A
// multi-line string may end in up to two more quotes of its own.
void Scanner::skip_string() {
  const char quote = peek();
  const bool multi = peek(1) == quote && peek(2) == quote;
  const bool escapes = quote == '"';
  if (multi) {
    for (int k = 0; k < 3; ++k) advance();
    while (!at_end()) {
      if (escapes && peek() == '\\') {
        advance();
        if (!at_end()) advance();
        continue;
      }
      if (peek() == quote && peek(1) == quote && peek(2) == quote) {
        for (int k = 0; k < 3; ++k) advance();
        for (int k = 0; k < 2 && peek() == quote; ++k) advance();
        return;
      }
      advance();
    }
    return;
  }
  advance();
  while (!at_end() && peek() != '\n') {
    const char c = peek();
    advance();
    if (c == quote) return;
    if (escapes && c == '\\' && !at_end() && peek() != '\n') advance();
  }
}

// A key, dotted or not: each segment is a node one level below the one
// before, the first at base + 1. Returns the number of segments.
std::size_t Scanner::read_key(std::size_t base) {
  std::size_t segments = 0;
  while (!at_end()) {
    skip_blanks();
    const char c = peek();
    if (is_bare_key_char(c)) {
      node(base + ++segments);
      while (!at_end() && is_bare_key_char(peek())) advance();
    } else if (c == '"' || c == '\'') {
      node(base + ++segments);
      skip_string();
    } else {
      break;
    }
    skip_blanks();
    if (peek() != '.') break;
    advance();
  }
  return segments;
}

// A number, date, boolean or anything else that is not a string or a
// container: up to what ends a value. A date-time may hold a space.
void Scanner::skip_scalar(bool in_container) {
  while (!at_end()) {
    const char c = peek();
    if (c == '\n' || c == '#' || c == '"' || c == '\'') return;
    if (in_container && (c == ',' || c == ']' || c == '}' || c == '[' || c == '{')) return;
    advance();
  }
}

std::optional<TextPosition> Scanner::run() {
  std::vector<Frame> stack;
  std::size_t header_depth = 0;  // the table the last header opened
  std::size_t value_depth = 0;   // the depth of the value about to be read
  Expect expect = Expect::statement;

  while (!at_end() && !found_) {
    switch (expect) {
      case Expect::statement: {
        skip_space();
        if (at_end()) break;
        const char c = peek();
        if (c == '[') {
          advance();
          if (peek() == '[') advance();
          header_depth = read_key(0);
          // The rest of the line (the closing brackets, a comment) holds
          // nothing deeper; whatever else is there is skipped as a statement.
        } else if (is_bare_key_char(c) || c == '"' || c == '\'') {
          value_depth = header_depth + read_key(header_depth);
          skip_blanks();
          if (peek() == '=') {
            advance();
            expect = Expect::value;
          }
        } else {
          advance();  // not TOML; toml++ reports it
        }
        break;
      }
      case Expect::value: {
        if (stack.empty()) {
          skip_blanks();
        } else {
          skip_space();
        }
        if (at_end()) break;
        const char c = peek();
        if (stack.empty() && (c == '\n' || c == '\r' || c == '#')) {
          expect = Expect::statement;  // a missing value
        } else if (c == '[') {
          node(value_depth);
          advance();
          stack.push_back({true, value_depth});
          ++value_depth;
        } else if (c == '{') {
          node(value_depth);
          advance();
          stack.push_back({false, value_depth});
          expect = Expect::inline_key;
        } else if (c == '"' || c == '\'') {
          node(value_depth);
          skip_string();
          expect = Expect::after_value;
        } else if (!stack.empty() && c == ']' && stack.back().array) {
          advance();  // an empty array, or a trailing comma
          stack.pop_back();
          expect = Expect::after_value;
        } else if (!stack.empty() && (c == ',' || c == ']' || c == '}')) {
          advance();  // not TOML
        } else {
          node(value_depth);
          const std::size_t before = i_;
          skip_scalar(!stack.empty());
          if (i_ == before) advance();
          expect = Expect::after_value;
        }
        break;
      }
      case Expect::after_value: {
        if (stack.empty()) {
          expect = Expect::statement;
          break;
        }
        skip_space();
        if (at_end()) break;
        const char c = peek();
        const Frame top = stack.back();
        if (c == ',') {
          advance();
          if (top.array) {
            value_depth = top.depth + 1;
            expect = Expect::value;
          } else {
            expect = Expect::inline_key;
          }
        } else if ((c == ']' && top.array) || (c == '}' && !top.array)) {
          advance();
          stack.pop_back();
        } else if (top.array && (c == '[' || c == '{' || c == '"' || c == '\'')) {
          // A value with no comma before it: not TOML, counted anyway.
          value_depth = top.depth + 1;
          expect = Expect::value;
        } else {
          advance();  // not TOML
        }
        break;
      }
      case Expect::inline_key: {
        skip_space();
        if (at_end()) break;
        const char c = peek();
        const Frame top = stack.back();
        if (c == '}') {
          advance();
          stack.pop_back();
          expect = Expect::after_value;
        } else if (is_bare_key_char(c) || c == '"' || c == '\'') {
          value_depth = top.depth + read_key(top.depth);
          skip_blanks();
          if (peek() == '=') advance();
          expect = Expect::value;
        } else {
          advance();  // not TOML
        }
        break;
      }
    }
  }
  return found_;
}

}  // namespace

std::optional<TextPosition> find_too_deep(std::string_view text, std::size_t max_depth) {
  return Scanner(text, max_depth).run();
}

TextPosition position_of(std::string_view text, std::size_t offset) {
  TextPosition at;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++at.line;
      at.column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++at.column;
    }
  }
  return at;
}

}  // namespace vigil
