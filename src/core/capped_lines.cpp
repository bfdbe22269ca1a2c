// Line cutting with two bounds; memchr for line ends, one buffer of at most
// max_line bytes whatever the output.
#include "capped_lines.h"

#include <algorithm>
#include <cstring>

namespace vigil {

CappedLines::CappedLines(std::size_t max_line, std::size_t max_total)
    : max_line_(std::max<std::size_t>(max_line, 1)), max_total_(max_total) {
  partial_.reserve(max_line_);
}

void CappedLines::end_line(const OnLine& on_line) {
  std::string_view line = partial_;
  if (!line.empty() && line.back() == '\r' && !over_long_) line.remove_suffix(1);
  if (!line.empty()) {
    if (given_ + line.size() > max_total_) {
      dropped_ += line.size();
    } else {
      given_ += line.size();
      if (on_line) on_line(line);
    }
  }
  partial_.clear();
  over_long_ = false;
}

void CappedLines::feed(std::string_view data, const OnLine& on_line) {
  while (!data.empty()) {
    const void* nl = std::memchr(data.data(), '\n', data.size());
    const std::size_t len =
        nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - data.data()) : data.size();
    const std::string_view piece = data.substr(0, len);
    if (over_long_) {
      dropped_ += piece.size();
    } else {
      const std::size_t room = max_line_ - partial_.size();
      partial_.append(piece.substr(0, room));
      if (piece.size() > room) {
        dropped_ += piece.size() - room;
        over_long_ = true;
      }
    }
    if (!nl) return;
    end_line(on_line);
    data.remove_prefix(len + 1);
  }
}

void CappedLines::finish(const OnLine& on_line) {
  if (!partial_.empty()) end_line(on_line);
  over_long_ = false;
}

}  // namespace vigil
