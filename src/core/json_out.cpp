#include "json_out.h"

#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

namespace vigil {

void append_json_string(std::string& out, std::string_view s) {
  // Printable ASCII, the common case (names, states, paths, most status
  // text), is escaped here; anything else (control characters, UTF-8,
  // invalid bytes) as nlohmann escapes it, replacing what is not UTF-8.
  const std::size_t start = out.size();
  out += '"';
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) {
      out.resize(start);
      out += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

JsonOut& JsonOut::open(char c) {
  separate();
  out_ += c;
  comma_ = false;
  return *this;
}

JsonOut& JsonOut::close(char c) {
  out_ += c;
  comma_ = true;
  return *this;
}

JsonOut& JsonOut::key(std::string_view name) {
  separate();
  append_json_string(out_, name);
  out_ += ':';
  comma_ = false;
  return *this;
}

JsonOut& JsonOut::value(std::string_view s) {
  separate();
  append_json_string(out_, s);
  return *this;
}

JsonOut& JsonOut::value(double v) {
  if (!std::isfinite(v)) return null();
  separate();
  char buf[64];
  // nlohmann's own shortest round-trip (Grisu2), with ".0" on an integral
  // value: std::to_chars picks exponents by another rule.
  char* end = nlohmann::detail::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, static_cast<std::size_t>(end - buf));
  return *this;
}

JsonOut& JsonOut::value(bool v) {
  separate();
  out_ += v ? "true" : "false";
  return *this;
}

template <typename Integer>
JsonOut& JsonOut::integer(Integer v) {
  separate();
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
  return *this;
}

JsonOut& JsonOut::value(std::int64_t v) { return integer(v); }
JsonOut& JsonOut::value(std::uint64_t v) { return integer(v); }

JsonOut& JsonOut::null() {
  separate();
  out_ += "null";
  return *this;
}

JsonOut& JsonOut::raw(std::string_view json) {
  separate();
  out_ += json;
  return *this;
}

}  // namespace vigil
