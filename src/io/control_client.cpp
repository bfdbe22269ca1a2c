// A minimal HTTP client: "Connection: close", read to EOF (bounded), parse
// status and body (Content-Length when present). What comes back is not
// trusted to be well-formed: whatever listens on the socket path answers.
#include "control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fd.h"

namespace vigil {

namespace {

// Bytes that would end or split the request line, encoded.
std::string encode_target(const std::string& target) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : target) {
    if (c <= 0x20 || c >= 0x7F || c == '#') {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Case-insensitive ASCII comparison of a header name.
bool same_name(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

std::optional<ControlResponse> parse_control_response(std::string_view raw, std::string* error) {
  auto fail = [&](const char* why) -> std::optional<ControlResponse> {
    if (error) *error = why;
    return std::nullopt;
  };
  // "HTTP/1.1 200 OK": the version's digits, a space, three digits, then
  // a space or the end of the line.
  if (raw.size() < 12 || raw.substr(0, 5) != "HTTP/" || !is_digit(raw[5]) || raw[6] != '.' ||
      !is_digit(raw[7]) || raw[8] != ' ' || !is_digit(raw[9]) || !is_digit(raw[10]) ||
      !is_digit(raw[11]) || (raw.size() > 12 && raw[12] != ' ' && raw[12] != '\r'))
    return fail("no HTTP status line");
  ControlResponse out;
  out.status = (raw[9] - '0') * 100 + (raw[10] - '0') * 10 + (raw[11] - '0');
  const std::size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return fail("the headers never end");
  std::string_view body = raw.substr(head_end + 4);

  // Content-Length, when given, must be one number: it bounds the body.
  std::size_t at = raw.find("\r\n");
  while (at < head_end) {
    const std::size_t start = at + 2;
    const std::size_t end = raw.find("\r\n", start);
    const std::string_view line = raw.substr(start, end - start);
    at = end;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || !same_name(line.substr(0, colon), "content-length"))
      continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (value.empty() || value.size() > 18) return fail("a bad Content-Length");
    std::size_t length = 0;
    for (char c : value) {
      if (!is_digit(c)) return fail("a bad Content-Length");
      length = length * 10 + static_cast<std::size_t>(c - '0');
    }
    if (body.size() < length) return fail("the answer ends before its Content-Length");
    body = body.substr(0, length);
  }
  out.body = std::string(body);
  return out;
}

std::optional<ControlResponse> control_request(const std::filesystem::path& socket,
                                               const std::string& method,
                                               const std::string& target, std::string* error,
                                               std::chrono::milliseconds timeout) {
  auto fail = [&](std::string why) -> std::optional<ControlResponse> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (socket.string().size() >= sizeof sa.sun_path) return fail("socket path too long");
  std::strncpy(sa.sun_path, socket.c_str(), sizeof sa.sun_path - 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail(std::strerror(errno));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    return fail(socket.string() + ": " + std::strerror(errno));

  std::string req = method + " " + encode_target(target) + " HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n" +
                    "Content-Length: 0\r\n\r\n";
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto wait = [&](short events) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd.get(), events, 0};
    int rc;
    do rc = ::poll(&p, 1, static_cast<int>(left.count()));
    while (rc < 0 && errno == EINTR);
    return rc > 0;
  };
  std::size_t sent = 0;
  while (sent < req.size()) {
    if (!wait(POLLOUT)) return fail("timed out sending to " + socket.string());
    ssize_t n = ::send(fd.get(), req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EINTR) return fail(std::strerror(errno));
    if (n > 0) sent += static_cast<std::size_t>(n);
  }
  std::string resp;
  char buf[65536];
  for (;;) {
    if (!wait(POLLIN)) return fail("timed out waiting for vigil on " + socket.string());
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(std::strerror(errno));
    if (n == 0) break;
    if (resp.size() + static_cast<std::size_t>(n) > kMaxControlResponseBytes)
      return fail("answer from " + socket.string() + " larger than " +
                  std::to_string(kMaxControlResponseBytes >> 20) + " MiB");
    resp.append(buf, static_cast<std::size_t>(n));
  }
  std::string why;
  auto out = parse_control_response(resp, &why);
  if (!out) return fail("malformed answer from " + socket.string() + ": " + why);
  return out;
}

}  // namespace vigil
