// The two transports of the heartbeat protocol, both feeding the one parser:
// the fd-3 pipe of one process (a byte stream, read until EOF) and the
// NOTIFY_SOCKET datagram socket of one instance (it outlives restarts). They
// only read, bound and parse; the instance decides what a message means.
#pragma once
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>

#include "event_loop.h"
#include "fd.h"
#include "notify_protocol.h"

namespace vigil {

using NotifyHandler = std::function<void(const NotifyMessage&)>;

// A private folder (mode 0711) for the instances' notify sockets,
// $XDG_RUNTIME_DIR/vigil.PID.XXXXXX (else /tmp), removed with everything in
// it when destroyed. A vigil that was SIGKILLed or crashed cannot remove its
// own: creating one first removes the siblings left by vigils that are gone.
class RuntimeDir {
 public:
  RuntimeDir();  // throws std::system_error
  // The folder an earlier vigil of this process made, kept across exec
  // (`vigil upgrade`): its sockets are in use.
  explicit RuntimeDir(std::filesystem::path adopted) : path_(std::move(adopted)) {}
  ~RuntimeDir();
  const std::filesystem::path& path() const { return path_; }

  // Removes the vigil.PID.XXXXXX folders in `base` (ours: owned by this
  // user) whose PID is not a live process, or is a process that is not a
  // vigil (comm) and started after the folder last changed (the pid was
  // reused). Never one of a live vigil. Returns how many were removed.
  static std::size_t remove_stale(const std::filesystem::path& base);

 private:
  std::filesystem::path path_;
};

// Reads heartbeat lines from the read end of a process's fd-3 pipe.
class HeartbeatPipe {
 public:
  HeartbeatPipe(EventLoop& loop, UniqueFd read_end, NotifyCounts* counts, NotifyHandler on_message,
                std::string label);
  ~HeartbeatPipe();
  // Reads what is waiting now (before a deadline is judged).
  void drain() { on_readable(); }
  int fd() const { return fd_.get(); }  // kept across exec by `vigil upgrade`
  // Its parser, whose unfinished line crosses the exec too.
  NotifyStreamParser& parser() { return parser_; }
  const NotifyStreamParser& parser() const { return parser_; }

 private:
  void on_readable();
  void deliver(std::string_view chunk, bool eof);

  UniqueFd fd_;
  NotifyCounts* counts_;
  NotifyHandler on_message_;
  std::string label_;
  NotifyStreamParser parser_;
  std::unique_ptr<IoEvent> event_;
};

// One instance's AF_UNIX datagram socket (systemd's NOTIFY_SOCKET protocol).
class NotifySocket {
 public:
  // Binds `path` (mode 0600, owned by `owner` when the program runs as
  // another user); throws std::system_error.
  NotifySocket(EventLoop& loop, std::filesystem::path path, std::optional<uid_t> owner,
               NotifyCounts* counts, NotifyHandler on_message, std::string label);
  // The socket an earlier vigil bound at `path`, kept across exec.
  NotifySocket(EventLoop& loop, std::filesystem::path path, UniqueFd adopted, NotifyCounts* counts,
               NotifyHandler on_message, std::string label);
  int fd() const { return fd_.get(); }
  ~NotifySocket();
  const std::string& path() const { return path_; }
  // Reads what is waiting now (before a deadline is judged).
  void drain() { on_readable(); }
  // Lines that carry no message (MAINPID=, ...), for a listener that knows
  // their key.
  void set_unknown_handler(NotifyUnknownFn fn) { on_unknown_ = std::move(fn); }

  // Whether some process has a datagram socket bound at `path` (a datagram
  // sent there would be received): a live socket, not a stale file.
  static bool in_use(const std::filesystem::path& path);

 private:
  void on_readable();

  // Not a filesystem::path, whose parsed components would cost each of
  // thousands of instances 200 bytes more.
  std::string path_;
  UniqueFd fd_;
  NotifyCounts* counts_;
  NotifyHandler on_message_;
  NotifyUnknownFn on_unknown_;
  std::string label_;
  std::unique_ptr<IoEvent> event_;
};

}  // namespace vigil
