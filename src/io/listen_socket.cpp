// socket, bind and listen for the held sockets, and the unix socket file's
// life: stale ones replaced, live ones refused, ours removed at the end.
#include "listen_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace vigil {

namespace {

std::runtime_error listen_error(const ListenSocketConfig& c, int error, std::string hint = {}) {
  std::string message = "cannot listen on " + c.address() + ": " + std::strerror(error);
  if (hint.empty()) {
    if (error == EADDRINUSE)
      hint = "another process holds it; `ss -ltnp` names it";
    else if (error == EACCES && c.kind == SocketKind::tcp && c.tcp.port < 1024)
      hint = "ports below 1024 need root or CAP_NET_BIND_SERVICE";
    else if (error == EADDRNOTAVAIL)
      hint = "no interface of this machine has that address";
  }
  if (!hint.empty()) message += " (" + hint + ")";
  return std::runtime_error(message);
}

}  // namespace

ListenSocket::ListenSocket(const ListenSocketConfig& config) : config_(config) {
  if (config_.kind == SocketKind::tcp)
    bind_tcp();
  else
    bind_unix();
}

ListenSocket::ListenSocket(const ListenSocketConfig& config, UniqueFd adopted)
    : config_(config), fd_(std::move(adopted)) {
  struct stat st;
  if (config_.kind == SocketKind::unix_stream && ::lstat(config_.path.c_str(), &st) == 0 &&
      S_ISSOCK(st.st_mode)) {
    file_dev_ = st.st_dev;
    file_ino_ = st.st_ino;
  }
}

ListenSocket::~ListenSocket() {
  if (config_.kind != SocketKind::unix_stream || file_ino_ == 0) return;
  // Another process may have replaced the file since: that one is not ours.
  struct stat st;
  if (::lstat(config_.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == file_dev_ &&
      st.st_ino == file_ino_)
    ::unlink(config_.path.c_str());
}

UniqueFd listen_tcp(const ListenAddress& a, int socket_flags) {
  const std::string host = a.host.empty() ? (a.ipv6 ? "::" : "0.0.0.0") : a.host;
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (a.ipv6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(a.port);
    if (::inet_pton(AF_INET6, host.c_str(), &sa->sin6_addr) != 1) return errno = EINVAL, UniqueFd();
    len = sizeof *sa;
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(a.port);
    if (::inet_pton(AF_INET, host.c_str(), &sa->sin_addr) != 1) return errno = EINVAL, UniqueFd();
    len = sizeof *sa;
  }
  UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | socket_flags, 0));
  if (!fd) return fd;
  const int on = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
      (a.ipv6 && ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) != 0) ||
      ::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      ::listen(fd.get(), SOMAXCONN) != 0) {
    const int error = errno;
    fd.reset();
    errno = error;
  }
  return fd;
}

void ListenSocket::bind_tcp() {
  fd_ = listen_tcp(config_.tcp);
  if (!fd_) throw listen_error(config_, errno);
}

void ListenSocket::bind_unix() {
  const std::filesystem::path& path = config_.path;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof sa.sun_path) throw listen_error(config_, ENAMETOOLONG);
  std::memcpy(sa.sun_path, path.c_str(), path.native().size());

  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) throw listen_error(config_, ec.value(), "cannot create " + path.parent_path().string());

  // A socket file nobody answers on is what a process that died left
  // behind: replaced. One that answers is someone's. Non-blocking, so a
  // live socket with a full backlog answers EAGAIN rather than hold the loop.
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      throw listen_error(config_, EEXIST, "it is not a socket; vigil leaves it alone");
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!probe) throw listen_error(config_, errno);
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 ||
        errno == EAGAIN || errno == EINPROGRESS)
      throw listen_error(config_, EADDRINUSE, "another process is listening on it");
    if (errno != ECONNREFUSED && errno != ENOENT) throw listen_error(config_, errno);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw listen_error(config_, errno);
  }

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw listen_error(config_, errno);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    throw listen_error(config_, errno);
  // From here the file is ours: removed again if listen fails.
  if (::lstat(path.c_str(), &st) == 0) {
    file_dev_ = st.st_dev;
    file_ino_ = st.st_ino;
  }
  auto undo = [&](int error) {
    ::unlink(path.c_str());
    file_ino_ = 0;
    return listen_error(config_, error);
  };
  if (::chmod(path.c_str(), 0666) != 0) throw undo(errno);
  if (::listen(fd.get(), SOMAXCONN) != 0) throw undo(errno);
  fd_ = std::move(fd);
}

}  // namespace vigil
