// Formatting and strict parsing of VIGIL_RUN values: a value that does not
// parse is no vigil's, and nothing is done to its process.
#include "run_marker.h"

#include <charconv>

namespace vigil {

std::string RunMarker::value() const {
  return key + "." + std::to_string(pid) + "." + std::to_string(start_ticks);
}

std::string RunMarker::variable() const { return std::string(kRunVariable) + "=" + value(); }

std::optional<RunMarker> RunMarker::parse(std::string_view value) {
  const auto dot1 = value.find('.');
  if (dot1 != 16) return std::nullopt;
  const auto dot2 = value.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) return std::nullopt;
  RunMarker m;
  m.key = std::string(value.substr(0, dot1));
  for (char c : m.key)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  auto number = [](std::string_view text, auto& out) {
    if (text.empty() || text.front() == '-' || text.front() == '+') return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
  };
  if (!number(value.substr(dot1 + 1, dot2 - dot1 - 1), m.pid) || m.pid <= 0) return std::nullopt;
  if (!number(value.substr(dot2 + 1), m.start_ticks)) return std::nullopt;
  return m;
}

std::string run_key(std::string_view control_socket) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : control_socket) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<std::size_t>(i)] = kHex[h & 0xf];
  return out;
}

}  // namespace vigil
