// URL and HOST:PORT grammar for probes, on top of the listen-address parser.
#include "probe_target.h"

#include "listen_address.h"

namespace vigil {

namespace {

std::optional<ProbeEndpoint> fail(std::string* error, std::string message) {
  if (error) *error = std::move(message);
  return std::nullopt;
}

}  // namespace

std::string expand_port(std::string_view text, std::optional<int> port) {
  std::string out;
  out.reserve(text.size());
  constexpr std::string_view kPlaceholder = "{port}";
  while (true) {
    auto at = text.find(kPlaceholder);
    if (at == std::string_view::npos || !port) {
      out += text;
      return out;
    }
    out += text.substr(0, at);
    out += std::to_string(*port);
    text.remove_prefix(at + kPlaceholder.size());
  }
}

std::optional<ProbeEndpoint> parse_probe_address(std::string_view text, std::string* error) {
  // "localhost" is the one name: it never needs DNS.
  std::string spelled(text);
  bool localhost = false;
  if (text.starts_with("localhost:")) {
    spelled = "127.0.0.1" + spelled.substr(9);
    localhost = true;
  }
  std::string why;
  auto a = parse_listen_address(spelled, &why);
  if (!a) return fail(error, why + " (write HOST:PORT with an IP address or localhost)");
  if (a->host.empty()) return fail(error, "missing host (write HOST:PORT, e.g. \"127.0.0.1:8080\")");
  if (a->port == 0) return fail(error, "port 0 is not a port a probe can connect to");
  ProbeEndpoint e;
  e.host = a->host;
  e.ipv6 = a->ipv6;
  e.port = a->port;
  e.host_header = localhost ? "localhost:" + std::to_string(e.port) : a->to_string();
  return e;
}

std::optional<ProbeEndpoint> parse_probe_url(std::string_view url, std::string* error) {
  constexpr std::string_view kScheme = "http://";
  if (url.starts_with("https://"))
    return fail(error, "https is not supported: probe the service over plain http");
  if (!url.starts_with(kScheme)) return fail(error, "expected a URL starting with \"http://\"");
  std::string_view rest = url.substr(kScheme.size());
  auto slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos)
    return fail(error, "user info (\"user@\") is not supported in a probe URL");
  if (path.find('#') != std::string_view::npos)
    return fail(error, "a fragment (\"#...\") is never sent: leave it out");
  for (char c : path)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return fail(error, "the path must not contain spaces or control characters (percent-encode them)");
  if (authority.empty()) return fail(error, "missing host after \"http://\"");

  // The port is optional in a URL: add the default before the HOST:PORT parser.
  const bool bracketed = authority.front() == '[';
  const auto close = authority.find(']');
  const bool has_port = bracketed ? close != std::string_view::npos && close + 1 < authority.size()
                                  : authority.find(':') != std::string_view::npos;
  std::string address(authority);
  if (!has_port) address += ":80";
  auto e = parse_probe_address(address, error);
  if (!e) return e;
  e->path = path.empty() ? "/" : std::string(path);
  if (e->path.front() == '?') e->path.insert(0, "/");
  e->host_header = std::string(authority);
  return e;
}

}  // namespace vigil
