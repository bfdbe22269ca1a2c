// Cuts a command's output into lines for vigil's own log, within bounds: a
// line is at most max_line bytes (the rest of a longer one is dropped), and
// at most max_total bytes of lines are given out in all (later lines are
// dropped). Dropped bytes are counted, never kept. Pure: it never logs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace vigil {

class CappedLines {
 public:
  using OnLine = std::function<void(std::string_view line)>;

  CappedLines(std::size_t max_line, std::size_t max_total);

  // Calls on_line for each complete line in `data` (without its '\n', one
  // trailing '\r' removed; empty lines are skipped). Keeps at most max_line
  // bytes of an unfinished line for the next call.
  void feed(std::string_view data, const OnLine& on_line);
  // End of output: gives out the unfinished last line, if any.
  void finish(const OnLine& on_line);

  // Bytes of output not given out (the newlines of dropped lines excluded).
  std::uint64_t dropped_bytes() const { return dropped_; }
  // Bytes of the lines given out.
  std::uint64_t given_bytes() const { return given_; }

 private:
  void end_line(const OnLine& on_line);

  std::size_t max_line_;
  std::size_t max_total_;
  std::string partial_;    // the unfinished line, at most max_line_ bytes
  bool over_long_ = false;  // the current line passed max_line_: skip to '\n'
  std::uint64_t dropped_ = 0;
  std::uint64_t given_ = 0;
};

}  // namespace vigil
