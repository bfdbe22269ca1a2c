// Splits a byte stream into lines for the log: on '\n' only, never on a read
// boundary, and a line longer than the cap is cut into cap-sized pieces so
// memory stays bounded whatever a child writes. Pure.
//
// memchr over the input, complete lines handed out as views into the
// caller's buffer; only the unfinished tail of a read is copied. The
// callback is a template parameter: it runs once a line, on the log's hot
// path, where a std::function's indirect call per line showed in profiles.
#pragma once
#include <cstddef>
#include <cstring>
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
  template <class OnLine>
  void feed(std::string_view data, OnLine&& on_line);

  // End of stream: emits the unfinished line, if any.
  template <class OnLine>
  void finish(OnLine&& on_line) {
    if (!partial_.empty()) on_line(std::string_view(partial_));
    partial_.clear();
    cut_ = false;
  }

  std::size_t pending_bytes() const { return partial_.size(); }
  // The unfinished line, handed to a new vigil across exec (`vigil
  // upgrade`), and given back there (cut to max_line - 1 bytes).
  const std::string& partial() const { return partial_; }
  void restore(std::string partial) {
    partial_ = std::move(partial);
    if (partial_.size() >= max_line_) partial_.resize(max_line_ - 1);
  }

 private:
  std::size_t max_line_;
  std::string partial_;
  // The last piece emitted was a max_line cut and the line has not ended yet,
  // so the '\n' that ends it must not produce an extra empty line.
  bool cut_ = false;
};

template <class OnLine>
void LineSplitter::feed(std::string_view data, OnLine&& on_line) {
  const std::size_t cap = max_line_ > 0 ? max_line_ : 1;
  const char* p = data.data();
  const char* const end = p + data.size();
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    const char* const line_end = nl ? nl : end;

    // Bytes kept from an earlier read begin this line: complete them first.
    if (!partial_.empty()) {
      const std::size_t room = cap - partial_.size();  // >= 1: partial_ stays below cap
      const auto avail = static_cast<std::size_t>(line_end - p);
      if (avail < room) {
        partial_.append(p, avail);
        if (!nl) return;  // the whole read went into the still-unfinished line
        on_line(std::string_view(partial_));
        partial_.clear();
        cut_ = false;
        p = nl + 1;
        continue;
      }
      partial_.append(p, room);
      p += room;
      on_line(std::string_view(partial_));
      partial_.clear();
      cut_ = true;
    }

    // Over-long stretches go out in cap-sized pieces, straight from `data`.
    while (static_cast<std::size_t>(line_end - p) >= cap) {
      on_line(std::string_view(p, cap));
      p += cap;
      cut_ = true;
    }

    if (!nl) {
      partial_.assign(p, static_cast<std::size_t>(line_end - p));
      return;
    }
    // A line that ended exactly on a cut has been emitted in full already.
    if (p < line_end || !cut_) on_line(std::string_view(p, static_cast<std::size_t>(line_end - p)));
    cut_ = false;
    p = nl + 1;
  }
}

}  // namespace vigil
