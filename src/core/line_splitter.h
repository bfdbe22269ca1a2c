// Splits a byte stream into lines for the log: on '\n' only, never on a read
// boundary, and a line longer than the cap is cut into cap-sized pieces so
// memory stays bounded whatever a child writes. Pure.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace vigil {

class LineSplitter {
 public:
  static constexpr std::size_t kDefaultMaxLine = 64 * 1024;
  explicit LineSplitter(std::size_t max_line = kDefaultMaxLine) : max_line_(max_line) {}

  // Calls on_line(line) for each complete line in `data` (without the '\n'),
  // and for each max_line-sized piece of an over-long line. Bytes of an
  // unfinished line are kept (at most max_line - 1 of them) for the next call.
  void feed(std::string_view data, const std::function<void(std::string_view)>& on_line);

  // End of stream: emits the unfinished line, if any.
  void finish(const std::function<void(std::string_view)>& on_line);

  std::size_t pending_bytes() const { return partial_.size(); }

 private:
  std::size_t max_line_;
  std::string partial_;
  // The last piece emitted was a max_line cut and the line has not ended yet,
  // so the '\n' that ends it must not produce an extra empty line.
  bool cut_ = false;
};

}  // namespace vigil
