// What a scraper does, for the metrics tests and benchmarks: a blocking
// HTTP/1.1 client over loopback (one request per connection, bounded by a
// deadline), a parser of the Prometheus text format, and the port a real
// vigil says it serves on. Header-only and free of gtest, so the benchmarks
// include it too. Never used inside vigil's loop: it blocks.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::metrics_client {

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

namespace detail {

inline std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

inline std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

// "1a\r\n<26 bytes>\r\n0\r\n\r\n" -> the bytes; nullopt when malformed.
inline std::optional<std::string> unchunk(std::string_view in) {
  std::string out;
  for (;;) {
    auto eol = in.find("\r\n");
    if (eol == std::string_view::npos) return std::nullopt;
    std::size_t size = std::strtoul(std::string(in.substr(0, eol)).c_str(), nullptr, 16);
    in.remove_prefix(eol + 2);
    if (size == 0) return out;
    if (in.size() < size + 2) return std::nullopt;
    out.append(in.substr(0, size));
    in.remove_prefix(size + 2);
  }
}

// A connected, blocking TCP socket to 127.0.0.1:port; -1 on failure.
inline int connect_loopback(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Once the head is in: reserves `in` for the head and the Content-Length
// it announces. Whether the head was complete.
inline bool reserve_for_body(std::string& in) {
  const auto head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos) return false;
  const std::string head = lower(in.substr(0, head_end));
  if (auto at = head.find("\r\ncontent-length:"); at != std::string::npos) {
    const unsigned long long length = std::strtoull(head.c_str() + at + 17, nullptr, 10);
    if (length < (1ull << 32)) in.reserve(head_end + 4 + length);
  }
  return true;
}

}  // namespace detail

// One request on a fresh connection ("Connection: close"), read to EOF.
// nullopt when the server cannot be reached, answers garbage or does not
// finish before `timeout`.
inline std::optional<HttpReply> http_request(std::uint16_t port, std::string_view method,
                                             std::string_view target,
                                             std::chrono::milliseconds timeout =
                                                 std::chrono::milliseconds(5000)) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  int fd = detail::connect_loopback(port);
  if (fd < 0) return std::nullopt;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  std::string request = std::string(method) + " " + std::string(target) +
                        " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nConnection: close\r\n\r\n";
  std::string_view out = request;
  std::string in;
  bool sized = false;
  char buf[65536];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd, static_cast<short>(out.empty() ? POLLIN : POLLIN | POLLOUT), 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return std::nullopt;
    if (!out.empty() && (p.revents & POLLOUT)) {
      ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (n < 0) return std::nullopt;
      out.remove_prefix(static_cast<std::size_t>(n));
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return std::nullopt;
      if (n == 0) break;
      in.append(buf, static_cast<std::size_t>(n));
      // Room for the whole body at once: a body of megabytes grown by
      // doubling costs its copies and their page faults, which a benchmark
      // would count as the server's time.
      if (!sized) sized = detail::reserve_for_body(in);
    }
  }

  auto head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos) return std::nullopt;
  HttpReply reply;
  std::string_view head(in.data(), head_end);
  auto eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  // "HTTP/1.1 200 OK"
  auto sp = status_line.find(' ');
  if (sp == std::string_view::npos || !status_line.starts_with("HTTP/")) return std::nullopt;
  reply.status = std::atoi(std::string(status_line.substr(sp + 1, 3)).c_str());
  while (eol != std::string_view::npos) {
    head.remove_prefix(eol + 2);
    eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    reply.headers[detail::lower(std::string(line.substr(0, colon)))] =
        detail::trim(line.substr(colon + 1));
  }
  in.erase(0, head_end + 4);
  reply.body = std::move(in);
  if (detail::lower(reply.header("transfer-encoding")) == "chunked") {
    auto body = detail::unchunk(reply.body);
    if (!body) return std::nullopt;
    reply.body = std::move(*body);
  }
  return reply;
}

inline std::optional<HttpReply> http_get(std::uint16_t port, std::string_view target,
                                         std::chrono::milliseconds timeout =
                                             std::chrono::milliseconds(5000)) {
  return http_request(port, "GET", target, timeout);
}

// Percent-encoding of a query string value (RFC 3986 unreserved kept).
inline std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

// A loopback TCP port nobody listened on a moment ago (bind port 0, read
// it, close). For servers that cannot report the port they bound
// (Prometheus); a tiny race, so callers retry when the bind fails.
inline std::uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0)
    port = ntohs(sa.sin_port);
  ::close(fd);
  return port;
}

// The port in vigil's "serving /metrics, ... on http://127.0.0.1:PORT" line
// (with `listen = "127.0.0.1:0"` only vigil knows it).
inline std::optional<std::uint16_t> served_port(const std::string& vigil_output) {
  static const std::regex re(R"(serving [^\n]* on http://127\.0\.0\.1:([0-9]+))");
  std::smatch m;
  if (!std::regex_search(vigil_output, m, re)) return std::nullopt;
  return static_cast<std::uint16_t>(std::stoul(m[1].str()));
}

// ---------------------------------------------------------------------------
// Prometheus text format (0.0.4)

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Exposition {
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;  // "# TYPE name type"
  std::vector<std::string> errors;           // lines that did not parse

  // Samples named `name` whose labels include every pair of `match`.
  std::vector<const Sample*> find(std::string_view name,
                                  const std::map<std::string, std::string>& match = {}) const {
    std::vector<const Sample*> out;
    for (const auto& s : samples) {
      if (s.name != name) continue;
      bool ok = true;
      for (const auto& [k, v] : match) {
        auto it = s.labels.find(k);
        if (it == s.labels.end() || it->second != v) {
          ok = false;
          break;
        }
      }
      if (ok) out.push_back(&s);
    }
    return out;
  }
  // The value of the one sample that matches; nullopt when none or several.
  std::optional<double> value(std::string_view name,
                              const std::map<std::string, std::string>& match = {}) const {
    auto found = find(name, match);
    if (found.size() != 1) return std::nullopt;
    return found.front()->value;
  }
};

// Parses what vigil serves. Strict enough for tests: a line it cannot read
// goes to `errors` (promtool is the full check).
inline Exposition parse_exposition(std::string_view text) {
  Exposition e;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty()) continue;
    if (line.starts_with("# TYPE ")) {
      std::string_view rest = line.substr(7);
      auto sp = rest.find(' ');
      if (sp != std::string_view::npos)
        e.types[std::string(rest.substr(0, sp))] = std::string(rest.substr(sp + 1));
      continue;
    }
    if (line.front() == '#') continue;
    Sample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = std::string(line.substr(0, i));
    bool bad = s.name.empty();
    if (!bad && i < line.size() && line[i] == '{') {
      ++i;
      while (!bad && i < line.size() && line[i] != '}') {
        auto eq = line.find('=', i);
        if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
          bad = true;
          break;
        }
        std::string key(line.substr(i, eq - i));
        std::string value;
        std::size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) {
            ++j;
            value += line[j] == 'n' ? '\n' : line[j];
          } else {
            value += line[j];
          }
        }
        if (j >= line.size() || s.labels.count(key)) {
          bad = true;
          break;
        }
        s.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) bad = true;
      ++i;  // '}'
    }
    if (!bad) {
      if (i >= line.size() || line[i] != ' ') {
        bad = true;
      } else {
        std::string number(line.substr(i + 1));
        if (auto sp = number.find(' '); sp != std::string::npos) number.resize(sp);  // timestamp
        char* end = nullptr;
        s.value = std::strtod(number.c_str(), &end);
        bad = number.empty() || *end != '\0';
      }
    }
    if (bad)
      e.errors.emplace_back(line);
    else
      e.samples.push_back(std::move(s));
  }
  return e;
}

}  // namespace vigil::metrics_client
