// Where a probe connects, from what users write: "http://127.0.0.1:{port}/health"
// for http, "127.0.0.1:{port}" for tcp. Hosts are IP literals or "localhost"
// (127.0.0.1): names are not resolved, as the loop must never block on DNS.
// Pure.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vigil {

struct ProbeEndpoint {
  std::string host;         // IP literal, no brackets
  bool ipv6 = false;
  std::uint16_t port = 0;   // 1-65535
  std::string path = "/";   // http: path and query, as sent in the request line
  std::string host_header;  // http: the Host header ("127.0.0.1:8080", "localhost")
};

// Replaces every "{port}" in `text` with `port`; with no port, returns
// `text` unchanged.
std::string expand_port(std::string_view text, std::optional<int> port);

// "http://HOST[:PORT][/PATH]" (port 80 by default). nullopt and a message
// in *error otherwise (https, user info, a fragment, a host name, a bad port).
std::optional<ProbeEndpoint> parse_probe_url(std::string_view url, std::string* error);

// "HOST:PORT" or "[V6]:PORT", HOST an IP literal or "localhost".
std::optional<ProbeEndpoint> parse_probe_address(std::string_view text, std::string* error);

}  // namespace vigil
