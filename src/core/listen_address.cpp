// Listen address grammar: [HOST]:PORT with HOST an IPv4 literal or a
// bracketed IPv6 literal.
#include "listen_address.h"

#include <arpa/inet.h>

#include <charconv>

namespace vigil {

std::string ListenAddress::to_string() const {
  std::string h = ipv6 ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

ListenAddress canonical(const ListenAddress& address) {
  ListenAddress out = address;
  if (out.host.empty()) {
    out.host = out.ipv6 ? "::" : "0.0.0.0";
    return out;
  }
  unsigned char buf[16];
  char text[INET6_ADDRSTRLEN];
  const int family = out.ipv6 ? AF_INET6 : AF_INET;
  if (inet_pton(family, out.host.c_str(), buf) == 1 && inet_ntop(family, buf, text, sizeof text))
    out.host = text;
  return out;
}

std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string* error) {
  auto fail = [&](std::string msg) -> std::optional<ListenAddress> {
    if (error) *error = std::move(msg);
    return std::nullopt;
  };
  ListenAddress a;
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return fail("missing ']' after the IPv6 address");
    host = text.substr(1, close - 1);
    if (close + 1 >= text.size() || text[close + 1] != ':')
      return fail("expected \":PORT\" after \"]\"");
    port = text.substr(close + 2);
    a.ipv6 = true;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("expected HOST:PORT, e.g. \"127.0.0.1:9321\"");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return fail("an IPv6 address must be written in brackets, e.g. \"[::1]:9321\"");
  }
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || p != port.data() + port.size() || value > 65535)
    return fail("invalid port \"" + std::string(port) + "\" (expected 0-65535)");
  a.port = static_cast<std::uint16_t>(value);
  a.host = std::string(host);
  if (!a.host.empty()) {
    unsigned char buf[16];
    int family = a.ipv6 ? AF_INET6 : AF_INET;
    if (inet_pton(family, a.host.c_str(), buf) != 1)
      return fail("\"" + a.host + "\" is not an IP" + (a.ipv6 ? "v6" : "v4") +
                  " address (host names are not resolved)");
  } else if (a.ipv6) {
    return fail("empty IPv6 address");
  }
  return a;
}

}  // namespace vigil
