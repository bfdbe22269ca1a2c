// One child log file through spdlog's single-threaded rotating sink. Never
// throws and never stalls the loop on a bad path: what cannot be written is
// counted as dropped, and opening is retried at most once per second.
#include "log_sink.h"

#include <fcntl.h>
#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <unistd.h>

#include <cstdio>
#include <limits>
#include <system_error>

namespace vigil {

namespace {

using namespace std::chrono_literals;

constexpr auto kOpenRetryInterval = 1s;
constexpr std::size_t kMaxKeep = 200000;           // spdlog refuses more
constexpr std::size_t kStdioBufferBytes = 64 * 1024;  // fewer write(2)s than the 4 KiB default

const char* pattern_for(bool timestamps) {
  return timestamps ? "%Y-%m-%dT%H:%M:%S.%e %v" : "%v";
}

// spdlog's own open retries five times with 10 ms sleeps before it throws,
// which would stall the loop every second while a path is bad. Try once here,
// without blocking (O_NONBLOCK: a FIFO with no reader fails instead of
// waiting), creating the folder as spdlog would.
bool can_open_for_append(const std::filesystem::path& path) {
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

}  // namespace

LogSink::LogSink(LogFileOptions options) : options_(std::move(options)) { open(); }

LogSink::~LogSink() {
  try {
    if (sink_) sink_->flush();
  } catch (const std::exception&) {
    // Nothing to count into any more; the file is closed below regardless.
  }
}

void LogSink::open() {
  sink_.reset();
  // Set first, so that every failure below waits a second before the next try.
  next_open_attempt_ = std::chrono::steady_clock::now() + kOpenRetryInterval;
  if (!can_open_for_append(options_.path)) return;

  // 0 would make spdlog throw; read it as "no size limit".
  const std::size_t max_size = options_.max_size_bytes == 0
                                   ? std::numeric_limits<std::size_t>::max()
                                   : static_cast<std::size_t>(options_.max_size_bytes);
  // keep = 0: spdlog renames nothing and truncates the file when it is full.
  const std::size_t keep =
      options_.keep <= 0 ? 0 : std::min(static_cast<std::size_t>(options_.keep), kMaxKeep);

  spdlog::file_event_handlers handlers;
  // The buffer outlives every FILE that uses it: it is owned by the handler,
  // which the sink keeps, and spdlog closes the old FILE before opening the
  // next one on rotation.
  auto buffer = std::shared_ptr<char[]>(new char[kStdioBufferBytes]);
  handlers.after_open = [buffer](const spdlog::filename_t&, std::FILE* file) {
    // spdlog's fopen has no "e": without this every child would inherit the fd.
    ::fcntl(::fileno(file), F_SETFD, FD_CLOEXEC);
    std::setvbuf(file, buffer.get(), _IOFBF, kStdioBufferBytes);
  };
  try {
    // Appends (mode "ab"), never truncates on open: rotate_on_open is false.
    auto sink = std::make_shared<spdlog::sinks::rotating_file_sink_st>(
        options_.path.string(), max_size, keep, /*rotate_on_open=*/false, handlers);
    sink->set_pattern(pattern_for(options_.timestamps));
    sink_ = std::move(sink);
  } catch (const std::exception&) {
    // spdlog::spdlog_ex or bad_alloc: stay closed, retry after the interval.
  }
}

std::size_t LogSink::write_line(std::string_view line, std::chrono::system_clock::time_point when) {
  const std::size_t bytes = line.size() + 1;
  if (!sink_) {
    if (std::chrono::steady_clock::now() >= next_open_attempt_) open();
    if (!sink_) {
      dropped_bytes_ += bytes;
      return 0;
    }
  }
  try {
    const spdlog::details::log_msg msg(when, spdlog::source_loc{}, spdlog::string_view_t{},
                                       spdlog::level::info,
                                       spdlog::string_view_t(line.data(), line.size()));
    sink_->log(msg);
    return bytes;
  } catch (const std::exception&) {
    // A write or rotation failed (disk full, rename refused): start over
    // with a fresh open later rather than hammering a broken file.
    sink_.reset();
    next_open_attempt_ = std::chrono::steady_clock::now() + kOpenRetryInterval;
    dropped_bytes_ += bytes;
    return 0;
  }
}

void LogSink::flush() {
  if (!sink_) return;
  try {
    sink_->flush();
  } catch (const std::exception&) {
    sink_.reset();
    next_open_attempt_ = std::chrono::steady_clock::now() + kOpenRetryInterval;
  }
}

void LogSink::reopen() {
  // Closing flushes what is buffered into the old (possibly renamed) file,
  // which is where logrotate expects it. Reopening is asked for, so it is not
  // held back by the retry interval.
  sink_.reset();
  open();
}

void LogSink::update(const LogFileOptions& options) {
  // The rotating sink fixes its size and count at construction.
  const bool needs_reopen = options.path != options_.path ||
                            options.max_size_bytes != options_.max_size_bytes ||
                            options.keep != options_.keep;
  const bool pattern_changed = options.timestamps != options_.timestamps;
  options_ = options;
  if (needs_reopen) {
    reopen();
  } else if (pattern_changed && sink_) {
    sink_->set_pattern(pattern_for(options_.timestamps));
  }
}

}  // namespace vigil
