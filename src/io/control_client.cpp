// A minimal HTTP client: "Connection: close", read to EOF, parse status and
// body (Content-Length when present).
#include "control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fd.h"

namespace vigil {

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

  std::string req = method + " " + target + " HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n" +
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
    resp.append(buf, static_cast<std::size_t>(n));
  }
  auto header_end = resp.find("\r\n\r\n");
  if (resp.compare(0, 5, "HTTP/") != 0 || header_end == std::string::npos)
    return fail("malformed answer from " + socket.string());
  ControlResponse out;
  out.status = std::atoi(resp.c_str() + resp.find(' ') + 1);
  out.body = resp.substr(header_end + 4);
  return out;
}

}  // namespace vigil
