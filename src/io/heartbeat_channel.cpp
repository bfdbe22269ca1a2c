// Heartbeat transports. Each read is bounded per wake-up, so a child beating
// flat out shares the loop with everyone else; bad input is counted (and
// logged at debug level, sanitized), never fatal.
#include "heartbeat_channel.h"

#include "proc_sampler.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <signal.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>

#include <event2/event.h>
#include <spdlog/spdlog.h>

namespace vigil {

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr int kMaxReadsPerWakeup = 16;
// A datagram larger than this is cut by the kernel (MSG_TRUNC) and counted
// as one protocol error.
constexpr std::size_t kMaxDatagram = 16 * 1024;
char g_buffer[kReadChunk];

// Whether the vigil that made a folder named for `pid`, last changed at
// `changed_seconds`, is gone.
bool vigil_gone(pid_t pid, double changed_seconds) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  // Alive (or not ours to signal). A vigil is never judged gone: a wall
  // clock stepped forward could make it look younger than its folder.
  std::ifstream comm_file("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  if (!std::getline(comm_file, comm) || comm.rfind("vigil", 0) == 0) return false;
  // Another program: the pid was reused if it started after the folder
  // last changed. The margin covers btime's whole seconds.
  const auto started = process_start_seconds(pid);
  return started && *started > changed_seconds + 2.0;
}

}  // namespace

std::size_t RuntimeDir::remove_stale(const std::filesystem::path& base) {
  std::size_t removed = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    // vigil.PID.XXXXXX, as mkdtemp makes them below.
    if (name.rfind("vigil.", 0) != 0) continue;
    const auto dot = name.find('.', 6);
    if (dot == std::string::npos || dot == 6 || name.size() != dot + 7) continue;
    pid_t pid = 0;
    const auto [p, error] = std::from_chars(name.data() + 6, name.data() + dot, pid);
    if (error != std::errc() || p != name.data() + dot || pid <= 0) continue;
    struct stat st{};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid())
      continue;
    const double changed = static_cast<double>(st.st_mtim.tv_sec) + st.st_mtim.tv_nsec / 1e9;
    if (!vigil_gone(pid, changed)) continue;
    std::error_code rm;
    std::filesystem::remove_all(it->path(), rm);
    if (rm) {
      spdlog::debug("cannot remove {}, left by vigil {}: {}", it->path().string(), pid, rm.message());
      continue;
    }
    spdlog::info("removed {}, left by vigil {} which is gone", it->path().string(), pid);
    ++removed;
  }
  return removed;
}

RuntimeDir::RuntimeDir() {
  const char* env = std::getenv("XDG_RUNTIME_DIR");
  const std::string base = env && *env ? env : "/tmp";
  remove_stale(base);
  std::string tmpl = base + "/vigil." + std::to_string(::getpid()) + ".XXXXXX";
  if (!::mkdtemp(tmpl.data()))
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + tmpl);
  // Others may pass through to a socket they were given (a program's
  // `user`) but cannot list what is here.
  ::chmod(tmpl.c_str(), 0711);
  path_ = tmpl;
}

RuntimeDir::~RuntimeDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

HeartbeatPipe::HeartbeatPipe(EventLoop& loop, UniqueFd read_end, NotifyCounts* counts,
                             NotifyHandler on_message, std::string label)
    : fd_(std::move(read_end)),
      counts_(counts),
      on_message_(std::move(on_message)),
      label_(std::move(label)) {
  set_nonblocking(fd_.get());
  event_ = std::make_unique<IoEvent>(loop, fd_.get(), EV_READ, [this](short) { on_readable(); });
  event_->enable();
}

HeartbeatPipe::~HeartbeatPipe() = default;

void HeartbeatPipe::deliver(std::string_view chunk, bool eof) {
  NotifyCounts before = parser_.counts();
  auto on_error = [this](NotifyError e, std::string_view line) {
    spdlog::debug("program {}: heartbeat protocol error ({}): {}", label_, to_string(e),
                  sanitize_notify_text(line));
  };
  if (!chunk.empty()) parser_.feed(chunk, on_message_, on_error);
  if (eof) parser_.finish(on_message_, on_error);
  const NotifyCounts& after = parser_.counts();
  counts_->messages += after.messages - before.messages;
  counts_->unknown += after.unknown - before.unknown;
  counts_->protocol_errors += after.protocol_errors - before.protocol_errors;
}

void HeartbeatPipe::on_readable() {
  for (int i = 0; i < kMaxReadsPerWakeup && fd_; ++i) {
    ssize_t n = ::read(fd_.get(), g_buffer, sizeof g_buffer);
    if (n > 0) {
      deliver(std::string_view(g_buffer, static_cast<std::size_t>(n)), false);
      if (static_cast<std::size_t>(n) < sizeof g_buffer) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    // EOF: every writer closed fd 3. Parse the last unfinished line and stop
    // listening; the instance drops this object when its process ends.
    event_->disable();
    fd_.reset();
    deliver({}, true);
    return;
  }
}

namespace {

// A datagram socket bound at `path` (mode 0600, given to `owner` when set).
UniqueFd bind_notify_socket(const std::filesystem::path& path, std::optional<uid_t> owner,
                            const std::string& label) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof sa.sun_path)
    throw std::system_error(ENAMETOOLONG, std::generic_category(), "notify socket " + path.string());
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) throw std::system_error(errno, std::generic_category(), "socket(AF_UNIX, SOCK_DGRAM)");
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    throw std::system_error(errno, std::generic_category(), "bind " + path.string());
  ::chmod(path.c_str(), 0600);
  if (owner) {
    if (::chown(path.c_str(), *owner, static_cast<gid_t>(-1)) != 0)
      spdlog::warn("program {}: cannot give the notify socket to uid {}: {}", label, *owner,
                   std::strerror(errno));
  }
  // Heartbeats must not be lost to a small default buffer while vigil is
  // busy; best effort.
  int bytes = 1 << 20;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  return fd;
}

}  // namespace

NotifySocket::NotifySocket(EventLoop& loop, std::filesystem::path path, std::optional<uid_t> owner,
                           NotifyCounts* counts, NotifyHandler on_message, std::string label)
    // Copies, not moves: the arguments' order of evaluation is unspecified
    // and bind_notify_socket reads `path` and `label`.
    : NotifySocket(loop, path, bind_notify_socket(path, owner, label), counts, std::move(on_message), label) {}

NotifySocket::NotifySocket(EventLoop& loop, std::filesystem::path path, UniqueFd adopted,
                           NotifyCounts* counts, NotifyHandler on_message, std::string label)
    : path_(std::move(path).native()),
      fd_(std::move(adopted)),
      counts_(counts),
      on_message_(std::move(on_message)),
      label_(std::move(label)) {
  set_nonblocking(fd_.get());
  event_ = std::make_unique<IoEvent>(loop, fd_.get(), EV_READ, [this](short) { on_readable(); });
  event_->enable();
}

NotifySocket::~NotifySocket() {
  event_.reset();
  ::unlink(path_.c_str());
}

bool NotifySocket::in_use(const std::filesystem::path& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof sa.sun_path) return false;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  // connect() on a datagram socket only names the peer: it succeeds when a
  // socket is bound there and fails (ECONNREFUSED) on a file nobody binds.
  UniqueFd probe(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  return probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
}

void NotifySocket::on_readable() {
  static char buf[kMaxDatagram];
  auto on_error = [this](NotifyError e, std::string_view line) {
    spdlog::debug("program {}: notify protocol error ({}): {}", label_, to_string(e),
                  sanitize_notify_text(line));
  };
  for (int i = 0; i < 256; ++i) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // EAGAIN: drained
    }
    if (static_cast<std::size_t>(n) > sizeof buf) {
      counts_->protocol_errors++;
      spdlog::debug("program {}: notify datagram of {} bytes is too large; ignored", label_, n);
      continue;
    }
    *counts_ += parse_notify_datagram(std::string_view(buf, static_cast<std::size_t>(n)),
                                      on_message_, on_error, on_unknown_);
  }
}

}  // namespace vigil
