// Parses the `listen` addresses users write: "127.0.0.1:9321", "[::1]:9321",
// ":9321" (all interfaces), "0.0.0.0:0" (any free port). Pure.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vigil {

struct ListenAddress {
  std::string host;  // literal IPv4 or IPv6 address (no brackets); "" = all interfaces
  std::uint16_t port = 0;
  bool ipv6 = false;
  std::string to_string() const;  // "127.0.0.1:9321", "[::1]:9321", ":9321"
  bool operator==(const ListenAddress&) const = default;
};

// The same address written one way, so that equal addresses compare equal:
// "" (all interfaces) becomes "0.0.0.0", an IPv6 address its shortest form
// ("0:0::0" -> "::"). `address` must have come from parse_listen_address.
ListenAddress canonical(const ListenAddress& address);

// nullopt and a message in *error for anything else (names are not
// resolved: the loop must never block on DNS).
std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string* error);

}  // namespace vigil
