// Line splitting for child output: memchr over the input, complete lines
// handed out as views into the caller's buffer; only the unfinished tail of
// a read is copied. Must not hold more than max_line - 1 bytes.
#include "line_splitter.h"

#include <cstring>

namespace vigil {

void LineSplitter::feed(std::string_view data,
                        const std::function<void(std::string_view)>& on_line) {
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
        on_line(partial_);
        partial_.clear();
        cut_ = false;
        p = nl + 1;
        continue;
      }
      partial_.append(p, room);
      p += room;
      on_line(partial_);
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

void LineSplitter::finish(const std::function<void(std::string_view)>& on_line) {
  if (!partial_.empty()) on_line(partial_);
  partial_.clear();
  cut_ = false;
}

}  // namespace vigil
