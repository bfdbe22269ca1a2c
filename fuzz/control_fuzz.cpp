// libFuzzer harness for what the CLI parses from the control socket:
// parse_control_response, on whatever bytes the socket's owner sends back.
// Besides "no crash, no sanitizer report" it checks: a parsed answer has a
// three-digit status and a body taken from the input's tail, no longer than
// what follows the headers; and a well-formed answer built from the input
// (byte 0 odd) parses back to its status and body, whatever trails it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "control_client.h"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "control_fuzz: broken promise: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::string error;
  auto raw = vigil::parse_control_response(in, &error);
  if (!raw) {
    check(!error.empty(), "a failure says why");
  } else {
    check(raw->status >= 0 && raw->status <= 999, "a three-digit status");
    const std::size_t head_end = in.find("\r\n\r\n");
    check(head_end != std::string_view::npos, "a parsed answer has a head");
    const std::string_view after = in.substr(head_end + 4);
    check(raw->body.size() <= after.size(), "the body comes from what follows the head");
    check(after.substr(0, raw->body.size()) == raw->body, "the body is what follows the head");
  }

  if (data[0] & 1) {
    // Byte 1, 2: the status; the rest: a body, then (after a 0xFF byte, if
    // any) bytes that trail it past its Content-Length.
    if (in.size() < 2) return 0;
    const int status = 100 + (static_cast<unsigned char>(in[0]) * 256 +
                              static_cast<unsigned char>(in[1])) % 500;
    std::string_view rest = in.substr(2);
    const std::size_t cut = rest.find('\xFF');
    const std::string_view body = rest.substr(0, cut);
    const std::string_view trailing =
        cut == std::string_view::npos ? std::string_view() : rest.substr(cut + 1);
    const std::string answer = "HTTP/1.1 " + std::to_string(status) +
                               " Whatever\r\nContent-Type: application/json\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
                               std::string(body) + std::string(trailing);
    auto built = vigil::parse_control_response(answer, &error);
    check(built.has_value(), "a well-formed answer parses");
    check(built->status == status, "its status");
    check(built->body == body, "exactly its body");
  }
  return 0;
}
