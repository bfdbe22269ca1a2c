// The CLI side of the control socket: one HTTP/1.1 request over AF_UNIX,
// blocking with a timeout (the CLI is not the loop).
#pragma once
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace vigil {

struct ControlResponse {
  int status = 0;
  std::string body;
};

// nullopt with *error set when nobody answers on `socket`, or the answer is
// not HTTP. `target` is sent with its spaces, control characters, '#' and
// bytes past ASCII percent-encoded (the server decodes them back), so a
// program name cannot end the request line or add a header.
std::optional<ControlResponse> control_request(const std::filesystem::path& socket,
                                               const std::string& method,
                                               const std::string& target, std::string* error,
                                               std::chrono::milliseconds timeout =
                                                   std::chrono::seconds(10));

// An answer read to EOF: "HTTP/1.x NNN ...", headers, a blank line, then
// the body: Content-Length bytes when the header is there (fewer is an
// error, more are ignored), else the rest. nullopt with *error saying why
// ("no status line", ...) otherwise. Pure: what control_request parses.
std::optional<ControlResponse> parse_control_response(std::string_view raw, std::string* error);

// The largest answer control_request reads; past it the answer is an error.
inline constexpr std::size_t kMaxControlResponseBytes = 64 * 1024 * 1024;

}  // namespace vigil
