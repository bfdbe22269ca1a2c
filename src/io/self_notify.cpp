// The datagram socket of systemd's notify protocol, sender side.
#include "self_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

#include <spdlog/spdlog.h>

namespace vigil {

SelfNotify::SelfNotify(EventLoop& loop) {
  const char* socket_path = std::getenv("NOTIFY_SOCKET");
  if (!socket_path || !*socket_path) return;
  address_ = socket_path;
  if (address_[0] == '@') address_[0] = '\0';
  if (address_.size() >= sizeof(sockaddr_un::sun_path)) {
    spdlog::warn("NOTIFY_SOCKET too long; not notifying the service manager");
    return;
  }
  fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));

  // The watchdog applies to vigil only if WATCHDOG_PID is unset or is us.
  const char* pid_text = std::getenv("WATCHDOG_PID");
  bool ours = true;
  if (pid_text && *pid_text) {
    long pid = 0;
    std::from_chars(pid_text, pid_text + std::strlen(pid_text), pid);
    ours = pid == ::getpid();
  }
  const char* usec_text = std::getenv("WATCHDOG_USEC");
  unsigned long long usec = 0;
  if (ours && usec_text &&
      std::from_chars(usec_text, usec_text + std::strlen(usec_text), usec).ec == std::errc() &&
      usec > 0) {
    interval_ = std::chrono::duration_cast<Duration>(std::chrono::microseconds(usec / 2));
    if (interval_.count() <= 0) interval_ = Duration(1);
    timer_ = std::make_unique<Timer>(loop, [this] {
      send("WATCHDOG=1");
      timer_->arm(interval_);
    });
    timer_->arm(Duration(0));
  }
}

SelfNotify::~SelfNotify() = default;

void SelfNotify::send(const std::string& message) {
  if (!fd_) return;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, address_.data(), address_.size());
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() +
                                    (address_[0] == '\0' ? 0 : 1));
  if (::sendto(fd_.get(), message.data(), message.size(), MSG_NOSIGNAL,
               reinterpret_cast<sockaddr*>(&sa), len) < 0)
    spdlog::debug("sd_notify \"{}\" failed: {}", message, std::strerror(errno));
}

void SelfNotify::ready() { send("READY=1\nSTATUS=supervising"); }

void SelfNotify::stopping() {
  send("STOPPING=1\nSTATUS=stopping all programs");
}

void SelfNotify::status(const std::string& text) { send("STATUS=" + text); }

}  // namespace vigil
