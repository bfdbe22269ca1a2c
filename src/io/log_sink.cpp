// One child log file, written with write(2) from a buffer of whole lines.
// Never throws and never stalls the loop on a bad path or a full disk: what
// cannot be written is counted as dropped, a retry happens at most once a
// second, and a short write is cut back to the last whole line.
//
// The hot path (a child flooding its output): the lines of one read are
// stamped into one buffer shared by every sink (the loop is
// single-threaded) and go out in one write(2) at flush(); the timestamp
// prefix is built once a millisecond (the broken-down time once a second);
// nothing is allocated per line. A sink keeps a buffer of its own only for
// what a failed or short write left over.
#include "log_sink.h"

#include <fcntl.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>

namespace vigil {

namespace {

using namespace std::chrono_literals;

constexpr auto kRetryInterval = 1s;         // an outage is retried this often at most
constexpr auto kDeletedCheckInterval = 1s;  // fstat for a deleted file this often at most
constexpr std::size_t kMaxKeep = 200000;    // as spdlog's rotating sink
// A batch is written when flush() ends it, or earlier when this much is
// buffered (a caller that never flushes must not grow it without end).
constexpr std::size_t kBatchLimit = 4u << 20;
constexpr std::size_t kStampBytes = 24;  // "2026-11-23T12:47:07.123 "

void put2(char* out, int v) {
  out[0] = static_cast<char>('0' + v / 10 % 10);
  out[1] = static_cast<char>('0' + v % 10);
}

// "YYYY-mm-ddTHH:MM:SS.mmm " in local time, as spdlog's "%Y-%m-%dT%H:%M:%S.%e"
// wrote it: rebuilt when the millisecond changes, localtime_r when the
// second does.
class StampCache {
 public:
  const char* at(std::chrono::system_clock::time_point when) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch()).count();
    if (ms == ms_ && valid_) return text_;
    const long long secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    const int milli = static_cast<int>(ms - secs * 1000);
    if (!valid_ || secs != secs_) {
      const std::time_t t = static_cast<std::time_t>(secs);
      std::tm tm{};
      ::localtime_r(&t, &tm);
      const int year = tm.tm_year + 1900;
      text_[0] = static_cast<char>('0' + year / 1000 % 10);
      text_[1] = static_cast<char>('0' + year / 100 % 10);
      put2(text_ + 2, year % 100);
      text_[4] = '-';
      put2(text_ + 5, tm.tm_mon + 1);
      text_[7] = '-';
      put2(text_ + 8, tm.tm_mday);
      text_[10] = 'T';
      put2(text_ + 11, tm.tm_hour);
      text_[13] = ':';
      put2(text_ + 14, tm.tm_min);
      text_[16] = ':';
      put2(text_ + 17, tm.tm_sec);
      text_[19] = '.';
      text_[23] = ' ';
      secs_ = secs;
    }
    text_[20] = static_cast<char>('0' + milli / 100);
    put2(text_ + 21, milli % 100);
    ms_ = ms;
    valid_ = true;
    return text_;
  }

 private:
  char text_[kStampBytes] = {};
  long long ms_ = 0, secs_ = 0;
  bool valid_ = false;
};

StampCache g_stamps;

// The batch being stamped: one buffer for every sink, owned by the sink
// whose lines it holds until that sink's flush() writes them.
struct Batch {
  std::string text;
  LogSink* owner = nullptr;
};
Batch g_batch;

// NAME.out.log, NAME.out.1.log, ...: spdlog's names, which `vigil logs` and
// users' scripts know.
std::filesystem::path rotated_name(const std::filesystem::path& path, std::size_t index) {
  return spdlog::sinks::rotating_file_sink_st::calc_filename(path.string(), index);
}

}  // namespace

LogSink::LogSink(LogFileOptions options) : options_(std::move(options)) { open_file(false); }

LogSink::~LogSink() {
  if (fd_)
    write_pending();
  else
    take_batch();
  if (!pending_.empty()) {
    const auto lines = static_cast<std::size_t>(std::count(pending_.begin(), pending_.end(), '\n'));
    spdlog::warn("log {}: {} line{} could not be written before it was closed",
                 options_.path, lines, lines == 1 ? "" : "s");
  }
}

bool LogSink::open_file(bool truncate) {
  const auto now = std::chrono::steady_clock::now();
  next_deleted_check_ = now + kDeletedCheckInterval;
  std::error_code ec;
  if (const std::filesystem::path p(options_.path); p.has_parent_path())
    std::filesystem::create_directories(p.parent_path(), ec);
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
  if (g_batch.owner == this && pending_.empty()) {
    // The common case: the batch goes out straight from the shared buffer;
    // only what is left over (a failure) is copied into this sink's own.
    g_batch.owner = nullptr;
    const bool ok = write_buffer(g_batch.text);
    if (!g_batch.text.empty()) pending_.assign(g_batch.text);
    g_batch.text.clear();
    return ok;
  }
  take_batch();
  const bool ok = write_buffer(pending_);
  // An outage's buffer is let go once it is written.
  if (pending_.empty() && pending_.capacity() > 0) std::string().swap(pending_);
  return ok;
}

// The shared batch's lines, if they are this sink's, join its own buffer.
void LogSink::take_batch() {
  if (g_batch.owner != this) return;
  g_batch.owner = nullptr;
  pending_.append(g_batch.text);
  g_batch.text.clear();
}

// Writes all of `buf` (pending_ or the batch), erasing what was written.
bool LogSink::write_buffer(std::string& buf) {
  if (buf.empty()) return true;
  if (!fd_) return false;
  std::size_t done = 0;
  int error = 0;
  while (done < buf.size()) {
    const ssize_t n = ::write(fd_.get(), buf.data() + done, buf.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    error = n < 0 ? errno : ENOSPC;
    break;
  }
  if (done == buf.size()) {
    file_bytes_ += done;
    buf.clear();
    torn_ = false;
    return true;
  }
  const auto newline = done == 0 ? std::string::npos : buf.rfind('\n', done - 1);
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
  buf.erase(0, done);
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
                   options_.path, source.string(), target.string(), std::strerror(errno));
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
               options_.path, what, std::strerror(error));
}

void LogSink::end_outage() {
  failing_ = false;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - outage_began_).count();
  spdlog::info("log {}: writing again after {:.1f}s; {} line{} ({} bytes) dropped meanwhile",
               options_.path, seconds, outage_dropped_lines_,
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
  spdlog::warn("log {}: the file was deleted while open; creating it again", options_.path);
  close_file();
  open_file(false);
}

std::size_t LogSink::write_line(std::string_view line, std::chrono::system_clock::time_point when) {
  const std::size_t bytes = line.size() + 1;
  if (failing_ && !retry_if_due(std::chrono::steady_clock::now())) {
    drop(bytes);
    return 0;
  }
  if (g_batch.owner != this) {
    // Another sink's batch is still open (a caller that did not flush):
    // its lines go out first.
    if (g_batch.owner) g_batch.owner->write_pending();
    g_batch.owner = this;
  }
  const std::size_t stamp = options_.timestamps ? kStampBytes : 0;
  const std::size_t size = stamp + bytes;
  // Rotate before a line that would take the file past its size. A file
  // that is empty (written and buffered) is not rotated, whatever the line
  // (spdlog's rule: a full disk must not turn into a rotation per line).
  const std::uint64_t projected = file_bytes_ + pending_.size() + g_batch.text.size();
  if (options_.max_size_bytes > 0 && projected > 0 && projected + size > options_.max_size_bytes) {
    if (!write_pending() || !rotate()) {
      drop(bytes);
      return 0;
    }
    g_batch.owner = this;
  }
  std::string& text = g_batch.text;
  const std::size_t at = text.size();
  try {
    // Grows to the largest batch once; after that no allocation.
    if (text.capacity() < at + size) text.reserve(std::max(at + size, 2 * text.capacity()));
  } catch (const std::bad_alloc&) {
    drop(bytes);
    return 0;
  }
  // resize_and_overwrite is C++23: a resize's zero fill of ~125 bytes is
  // cheaper than a second pass of appends.
  text.resize(at + size);
  char* out = text.data() + at;
  if (stamp) std::memcpy(out, g_stamps.at(when), kStampBytes);
  std::memcpy(out + stamp, line.data(), line.size());
  out[size - 1] = '\n';
  // A failure here keeps the batch buffered: its lines were accepted.
  if (text.size() >= kBatchLimit) write_pending();
  return bytes;
}

void LogSink::flush() {
  const auto now = std::chrono::steady_clock::now();
  if (failing_) {
    take_batch();
    retry_if_due(now);
    return;
  }
  // Nothing to write (a stream's end, most often) loses nothing to a
  // deleted file: the look waits for the next lines.
  if (g_batch.owner != this && pending_.empty()) return;
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
  options_ = options;
  // Size and keep are read at each line; only a new path needs a new file.
  if (path_changed) reopen();
}

}  // namespace vigil
