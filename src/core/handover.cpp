// The handover document's envelope and its hex strings (the archives are
// templates: handover.h).
#include "handover.h"

namespace vigil {

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (hex.size() % 2) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = digit(hex[i]), lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}


nlohmann::json handover_envelope(std::string_view version) {
  return nlohmann::json{{"format", kHandoverFormat}, {"vigil_version", std::string(version)}};
}

void check_handover_format(const nlohmann::json& doc) {
  if (!doc.is_object()) throw HandoverError("the state is not a JSON object");
  auto it = doc.find("format");
  if (it == doc.end() || !it->is_number_integer())
    throw HandoverError("the state names no format");
  const auto format = it->get<std::int64_t>();
  if (format != kHandoverFormat)
    throw HandoverError("the state is format " + std::to_string(format) +
                        "; this vigil reads format " + std::to_string(kHandoverFormat));
}

}  // namespace vigil
