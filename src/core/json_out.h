// A JSON writer that appends to a std::string as it goes: what the large
// answers (GET /api/v1/programs with thousands of instances) are written
// with, where building an nlohmann::json tree and dumping it cost ten times
// the writing. Its text is the one nlohmann's dump() gives for the same
// values (numbers by the same shortest round-trip, strings escaped the same
// way, each invalid UTF-8 byte a U+FFFD): a client cannot tell which wrote it.
//
// Keys are written in the order given; the caller keeps them sorted where
// an answer used to be an nlohmann object.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vigil {

class JsonOut {
 public:
  explicit JsonOut(std::string& out) : out_(out) {}

  JsonOut& begin_object() { return open('{'); }
  JsonOut& end_object() { return close('}'); }
  JsonOut& begin_array() { return open('['); }
  JsonOut& end_array() { return close(']'); }
  // "name": ; the value follows.
  JsonOut& key(std::string_view name);

  JsonOut& value(std::string_view s);
  JsonOut& value(const char* s) { return value(std::string_view(s)); }
  JsonOut& value(const std::string& s) { return value(std::string_view(s)); }
  JsonOut& value(double v);  // not finite: null
  JsonOut& value(bool v);
  JsonOut& value(std::int64_t v);
  JsonOut& value(std::uint64_t v);
  JsonOut& value(int v) { return value(static_cast<std::int64_t>(v)); }
  JsonOut& null();
  template <typename T>
  JsonOut& value(const std::optional<T>& v) {
    return v ? value(*v) : null();
  }

  // Text that is already JSON (a value) as the next value.
  JsonOut& raw(std::string_view json);

 private:
  template <typename Integer>
  JsonOut& integer(Integer v);
  JsonOut& open(char c);
  JsonOut& close(char c);
  void separate() {
    if (comma_) out_ += ',';
    comma_ = true;
  }

  std::string& out_;
  bool comma_ = false;  // a value came before in this object or array
};

// A string as a JSON string literal, quotes included.
void append_json_string(std::string& out, std::string_view s);

}  // namespace vigil
