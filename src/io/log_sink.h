// One log file of a program's output (NAME.out.log, NAME.err.log or the
// combined NAME.log): a timestamp prefix per line (local time, as spdlog's
// "%Y-%m-%dT%H:%M:%S.%e" wrote it), size
// rotation keeping `keep` old files (spdlog's names: NAME.out.1.log ...),
// reopen for logrotate. A failing disk never throws out of here and never
// leaves a torn line: a line is in the file whole or counted as dropped.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "fd.h"

namespace vigil {

struct LogFileOptions {
  // A string, not a filesystem::path: two sinks an instance, thousands of
  // instances, and a path's parsed components cost 300 bytes more each.
  std::string path;
  std::uint64_t max_size_bytes = 50ull << 20;  // rotate when the file would grow past this
  int keep = 5;                                // rotated files kept: NAME.1.log .. NAME.keep.log
  bool timestamps = true;                      // "2026-11-23T12:47:07.123 " before each line
};

// The lines given between two flush() calls are one batch, written with
// one write(2) (a buffer shared by all sinks: the loop is single-threaded).
// The file is written with write(2) from a buffer of whole lines, never
// through stdio: after a short or failed write the sink knows exactly which
// lines reached the file. When writing fails (disk full, I/O error, the file
// cannot be opened) an outage begins: one warning, new lines are dropped
// and counted, the lines already buffered are kept and written first when
// a retry (at most once a second) succeeds; then one message says how many
// were dropped. A log file (or its folder) deleted while open is noticed
// within a second and created again.
class LogSink {
 public:
  explicit LogSink(LogFileOptions options);
  ~LogSink();
  LogSink(const LogSink&) = delete;
  LogSink& operator=(const LogSink&) = delete;

  // Appends one line (a '\n' is added). `when` is the time stamped on it.
  // Returns the bytes of `line` accepted (line.size() + 1), or 0 when the
  // line was dropped (counted). An accepted line reaches the file whole,
  // unless vigil exits in the middle of an outage.
  std::size_t write_line(std::string_view line, std::chrono::system_clock::time_point when);

  // Writes the buffered lines. Called once per batch of lines; also where a
  // deleted file is noticed and an outage retried.
  void flush();

  // Closes and reopens the file at its path (SIGUSR2, after logrotate moved it).
  void reopen();

  // Applies changed size/keep/timestamp settings (reload); a changed path
  // reopens.
  void update(const LogFileOptions& options);

  const LogFileOptions& options() const { return options_; }
  // Bytes of lines dropped (line + '\n', as given to write_line).
  std::uint64_t bytes_dropped() const { return dropped_bytes_; }
  std::uint64_t lines_dropped() const { return dropped_lines_; }
  // Whether an outage is going on (the last write or open failed).
  bool failing() const { return failing_; }

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;

  bool open_file(bool truncate);
  void close_file();
  bool write_pending();
  bool write_buffer(std::string& buf);
  void take_batch();
  bool rotate();
  bool retry_if_due(SteadyTime now);
  void check_deleted(SteadyTime now);
  void begin_outage(std::string_view what, int error);
  void end_outage();
  void drop(std::size_t bytes);

  LogFileOptions options_;
  UniqueFd fd_;
  std::uint64_t file_bytes_ = 0;  // size of the open file, for rotation
  // Whole lines a failed or short write left over, kept for the retry
  // (empty, and holding no memory, while the file is written).
  std::string pending_;
  // The file holds the start of pending_'s first line (a torn write whose
  // ftruncate failed): the rest must follow in the same file.
  bool torn_ = false;
  std::uint64_t dropped_bytes_ = 0;
  std::uint64_t dropped_lines_ = 0;

  bool failing_ = false;
  std::uint64_t outage_dropped_lines_ = 0;
  std::uint64_t outage_dropped_bytes_ = 0;
  SteadyTime outage_began_{};
  SteadyTime next_retry_{};
  SteadyTime next_deleted_check_{};
};

}  // namespace vigil
