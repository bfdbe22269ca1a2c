// A listening socket vigil holds for a program's `listen` (systemd socket
// activation): bound once, passed to every process of the program, kept
// open across their restarts. vigil itself never accepts on it and decides
// nothing about who gets it.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "config.h"
#include "fd.h"

namespace vigil {

class ListenSocket {
 public:
  // Binds and listens (backlog SOMAXCONN), CLOEXEC and blocking, as systemd
  // passes sockets. TCP: SO_REUSEADDR, and IPV6_V6ONLY on an IPv6 socket so
  // "[::]:80" and "0.0.0.0:80" coexist. unix: missing folders are created,
  // a stale socket file (nobody answers) is replaced, a live one or any
  // other file is left alone (an error); the file is made 0666, as
  // systemd's SocketMode default, so that users other than vigil's can
  // connect (the folder's permissions say who may). Throws
  // std::runtime_error("cannot listen on ADDRESS: why (what next)").
  explicit ListenSocket(const ListenSocketConfig& config);
  // The socket an earlier vigil bound for `config`, kept across exec
  // (`vigil upgrade`); a unix socket's file stays this socket's.
  ListenSocket(const ListenSocketConfig& config, UniqueFd adopted);
  // Closes the socket; a unix socket's file is removed if it is still the
  // one this socket created.
  ~ListenSocket();
  ListenSocket(const ListenSocket&) = delete;
  ListenSocket& operator=(const ListenSocket&) = delete;

  int fd() const { return fd_.get(); }
  const ListenSocketConfig& config() const { return config_; }

 private:
  void bind_tcp();
  void bind_unix();

  ListenSocketConfig config_;
  UniqueFd fd_;
  dev_t file_dev_ = 0;  // the unix socket's file, to remove only that one
  ino_t file_ino_ = 0;
};

// A TCP socket bound to `address` ("" host: all interfaces of its family)
// and listening (backlog SOMAXCONN): SO_REUSEADDR, so a restarted vigil
// binds at once although connections of its last run linger in TIME_WAIT,
// and IPV6_V6ONLY on IPv6. `socket_flags` adds to SOCK_CLOEXEC (e.g.
// SOCK_NONBLOCK). Empty, with errno saying why, on failure.
UniqueFd listen_tcp(const ListenAddress& address, int socket_flags = 0);

// A program's held sockets in `listen` order. Shared: a program restarted
// by a reload hands the sockets of the addresses it still lists to its
// successor, and the last owner closes them.
using ListenSockets = std::vector<std::shared_ptr<const ListenSocket>>;

}  // namespace vigil
