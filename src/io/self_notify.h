// vigil's own sd_notify client, for when vigil runs under systemd
// (Type=notify, WatchdogSec=): READY=1 once supervising, WATCHDOG=1 at half
// of WATCHDOG_USEC from the loop (so a stuck loop is caught: who watches the
// watchman), STOPPING=1 on shutdown. Does nothing without NOTIFY_SOCKET.
#pragma once
#include <memory>
#include <string>

#include "event_loop.h"
#include "fd.h"

namespace vigil {

class SelfNotify {
 public:
  explicit SelfNotify(EventLoop& loop);  // reads NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID
  ~SelfNotify();

  bool enabled() const { return fd_.get() >= 0; }
  void ready();
  void stopping();
  void status(const std::string& text);
  Duration watchdog_interval() const { return interval_; }  // 0: no watchdog

 private:
  void send(const std::string& message);

  UniqueFd fd_;
  std::string address_;  // sun_path bytes ('\0' first for abstract)
  Duration interval_{0};
  std::unique_ptr<Timer> timer_;
};

}  // namespace vigil
