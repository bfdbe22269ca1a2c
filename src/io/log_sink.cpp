// One child log file, written with write(2) from a buffer of whole lines.
// Never throws and never stalls the loop on a bad path or a full disk: what
// cannot be written is counted as dropped, a retry happens at most once a
// second, and a short write is cut back to the last whole line.
#include "log_sink.h"

#include <fcntl.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace vigil {

namespace {

using namespace std::chrono_literals;

constexpr auto kRetryInterval = 1s;         // an outage is retried this often at most
constexpr auto kDeletedCheckInterval = 1s;  // fstat for a deleted file this often at most
constexpr std::size_t kMaxKeep = 200000;    // as spdlog's rotating sink
// Lines are written once a batch (flush) or when this much is buffered:
// fewer write(2)s than a line each, as stdio's buffer gave before.
constexpr std::size_t kBufferBytes = 64 * 1024;

const char* pattern_for(bool timestamps) {
  return timestamps ? "%Y-%m-%dT%H:%M:%S.%e %v" : "%v";
}

std::unique_ptr<spdlog::formatter> make_formatter(bool timestamps) {
  return std::make_unique<spdlog::pattern_formatter>(pattern_for(timestamps),
                                                     spdlog::pattern_time_type::local, "\n");
}

// NAME.out.log, NAME.out.1.log, ...: spdlog's names, which `vigil logs` and
// users' scripts know.
std::filesystem::path rotated_name(const std::filesystem::path& path, std::size_t index) {
  return spdlog::sinks::rotating_file_sink_st::calc_filename(path.string(), index);
}

}  // namespace

LogSink::LogSink(LogFileOptions options)
    : options_(std::move(options)), formatter_(make_formatter(options_.timestamps)) {
  open_file(false);
}

LogSink::~LogSink() {
  if (fd_) write_pending();
  if (!pending_.empty()) {
    const auto lines = static_cast<std::size_t>(std::count(pending_.begin(), pending_.end(), '\n'));
    spdlog::warn("log {}: {} line{} could not be written before it was closed",
                 options_.path.string(), lines, lines == 1 ? "" : "s");
  }
}

bool LogSink::open_file(bool truncate) {
  const auto now = std::chrono::steady_clock::now();
  next_deleted_check_ = now + kDeletedCheckInterval;
  std::error_code ec;
  if (options_.path.has_parent_path()) std::filesystem::create_directories(options_.path.parent_path(), ec);
  // O_NONBLOCK: a FIFO with no reader fails instead of blocking the loop.
  UniqueFd fd(::open(options_.path.c_str(),
                     O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
                         (truncate ? O_TRUNC : 0),
                     0644));
  if (!fd) {
    begin_outage("cannot open it", errno);
    return false;
  }
  struct stat st{};
  file_bytes_ = ::fstat(fd.get(), &st) == 0 && S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
  fd_ = std::move(fd);
  return true;
}

void LogSink::close_file() {
  if (torn_) {
    // The start of the first buffered line stays in the old file, cut; its
    // rest must not begin the next file.
    const auto end = pending_.find('\n');
    const std::size_t bytes = end == std::string::npos ? pending_.size() : end + 1;
    pending_.erase(0, bytes);
    drop(bytes);
    torn_ = false;
  }
  fd_.reset();
  file_bytes_ = 0;
}

// Writes all of pending_, or begins (continues) an outage. After a failure
// pending_ still starts at a line boundary and the file ends at one: a short
// write that ended inside a line is cut back with ftruncate (which frees,
// so it works on a full disk).
bool LogSink::write_pending() {
  if (pending_.empty()) return true;
  if (!fd_) return false;
  std::size_t done = 0;
  int error = 0;
  while (done < pending_.size()) {
    const ssize_t n = ::write(fd_.get(), pending_.data() + done, pending_.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    error = n < 0 ? errno : ENOSPC;
    break;
  }
  if (done == pending_.size()) {
    file_bytes_ += done;
    pending_.clear();
    torn_ = false;
    return true;
  }
  const auto newline = done == 0 ? std::string::npos : pending_.rfind('\n', done - 1);
  if (newline != std::string::npos || !torn_) {
    // Cut what was written of an unfinished line, so the file ends whole.
    const std::size_t whole = newline == std::string::npos ? 0 : newline + 1;
    torn_ = false;
    if (done > whole) {
      // With O_APPEND the offset is the end of what was just written.
      const off_t end = ::lseek(fd_.get(), 0, SEEK_CUR);
      if (end >= 0 && ::ftruncate(fd_.get(), end - static_cast<off_t>(done - whole)) == 0)
        done = whole;
      else
        torn_ = true;  // the rest of the line must follow in this file
    }
  }  // else: still inside a line begun by an earlier torn write; its rest follows
  file_bytes_ += done;
  pending_.erase(0, done);
  begin_outage("cannot write it", error);
  return false;
}

bool LogSink::rotate() {
  close_file();
  const std::size_t keep =
      options_.keep <= 0 ? 0 : std::min(static_cast<std::size_t>(options_.keep), kMaxKeep);
  // keep = 0: nothing is renamed, the file is truncated when full (spdlog's
  // rule, kept).
  for (std::size_t i = keep; i > 0; --i) {
    const auto source = rotated_name(options_.path, i - 1);
    std::error_code ec;
    if (!std::filesystem::exists(source, ec)) continue;
    const auto target = rotated_name(options_.path, i);
    std::filesystem::remove(target, ec);
    if (::rename(source.c_str(), target.c_str()) != 0) {
      // The size limit still holds: the live file starts over, as spdlog does.
      spdlog::warn("log {}: cannot rotate ({} -> {}: {}); truncating it instead",
                   options_.path.string(), source.string(), target.string(), std::strerror(errno));
      break;
    }
  }
  return open_file(true);
}

void LogSink::begin_outage(std::string_view what, int error) {
  const auto now = std::chrono::steady_clock::now();
  next_retry_ = now + kRetryInterval;
  if (failing_) return;
  failing_ = true;
  outage_began_ = now;
  outage_dropped_lines_ = 0;
  outage_dropped_bytes_ = 0;
  spdlog::warn("log {}: {}: {}; dropping its lines (vigil_log_dropped_bytes_total) until it can be "
               "written again, retrying every second",
               options_.path.string(), what, std::strerror(error));
}

void LogSink::end_outage() {
  failing_ = false;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - outage_began_).count();
  spdlog::info("log {}: writing again after {:.1f}s; {} line{} ({} bytes) dropped meanwhile",
               options_.path.string(), seconds, outage_dropped_lines_,
               outage_dropped_lines_ == 1 ? "" : "s", outage_dropped_bytes_);
}

void LogSink::drop(std::size_t bytes) {
  dropped_bytes_ += bytes;
  dropped_lines_ += 1;
  outage_dropped_bytes_ += bytes;
  outage_dropped_lines_ += 1;
}

// During an outage: one attempt a second to open and write what is kept.
// Returns whether the outage is over.
bool LogSink::retry_if_due(SteadyTime now) {
  if (!failing_) return true;
  if (now < next_retry_) return false;
  next_retry_ = now + kRetryInterval;
  if (!fd_ && !open_file(false)) return false;
  if (!write_pending()) return false;
  end_outage();
  return true;
}

// A file unlinked while open (its folder removed, or the file deleted)
// would swallow every line until the next rotation: st_nlink says so.
void LogSink::check_deleted(SteadyTime now) {
  if (!fd_ || now < next_deleted_check_) return;
  next_deleted_check_ = now + kDeletedCheckInterval;
  struct stat st{};
  if (::fstat(fd_.get(), &st) != 0 || st.st_nlink > 0) return;
  spdlog::warn("log {}: the file was deleted while open; creating it again", options_.path.string());
  close_file();
  open_file(false);
}

std::size_t LogSink::write_line(std::string_view line, std::chrono::system_clock::time_point when) {
  const std::size_t bytes = line.size() + 1;
  if (failing_ && !retry_if_due(std::chrono::steady_clock::now())) {
    drop(bytes);
    return 0;
  }
  spdlog::memory_buf_t formatted;
  try {
    const spdlog::details::log_msg msg(when, spdlog::source_loc{}, spdlog::string_view_t{},
                                       spdlog::level::info,
                                       spdlog::string_view_t(line.data(), line.size()));
    formatter_->format(msg, formatted);
  } catch (const std::exception&) {
    drop(bytes);  // bad_alloc, or a time fmt cannot print
    return 0;
  }
  // Rotate before a line that would take the file past its size. A file
  // that is empty (written and buffered) is not rotated, whatever the line
  // (spdlog's rule: a full disk must not turn into a rotation per line).
  const std::uint64_t projected = file_bytes_ + pending_.size();
  if (options_.max_size_bytes > 0 && projected > 0 &&
      projected + formatted.size() > options_.max_size_bytes) {
    if (!write_pending() || !rotate()) {
      drop(bytes);
      return 0;
    }
  }
  pending_.append(formatted.data(), formatted.size());
  // A failure here keeps this line buffered: it was accepted.
  if (pending_.size() >= kBufferBytes) write_pending();
  return bytes;
}

void LogSink::flush() {
  const auto now = std::chrono::steady_clock::now();
  if (failing_) {
    retry_if_due(now);
    return;
  }
  check_deleted(now);
  write_pending();
}

void LogSink::reopen() {
  // What is buffered goes to the old (possibly renamed) file first, which is
  // where logrotate expects it; if that fails it goes to the new one.
  // Reopening is asked for, so it is not held back by the retry interval.
  if (!failing_) write_pending();
  close_file();
  if (open_file(false) && write_pending() && failing_) end_outage();
}

void LogSink::update(const LogFileOptions& options) {
  const bool path_changed = options.path != options_.path;
  if (options.timestamps != options_.timestamps) formatter_ = make_formatter(options.timestamps);
  options_ = options;
  // Size and keep are read at each line; only a new path needs a new file.
  if (path_changed) reopen();
}

}  // namespace vigil
