// The CLI side of the control socket: one HTTP/1.1 request over AF_UNIX,
// blocking with a timeout (the CLI is not the loop).
#pragma once
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace vigil {

struct ControlResponse {
  int status = 0;
  std::string body;
};

// nullopt with *error set when nobody answers on `socket`.
std::optional<ControlResponse> control_request(const std::filesystem::path& socket,
                                               const std::string& method,
                                               const std::string& target, std::string* error,
                                               std::chrono::milliseconds timeout =
                                                   std::chrono::seconds(10));

}  // namespace vigil
