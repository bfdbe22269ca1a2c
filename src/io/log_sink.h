// One log file of a program's output (NAME.out.log, NAME.err.log or the
// combined NAME.log), written through spdlog's rotating file sink: a
// timestamp prefix per line, size rotation keeping `keep` old files, reopen
// for logrotate. A failing disk never throws out of here: what cannot be
// written is counted as dropped.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>

namespace spdlog::sinks {
class sink;
}

namespace vigil {

struct LogFileOptions {
  std::filesystem::path path;
  std::uint64_t max_size_bytes = 50ull << 20;  // rotate when the file would grow past this
  int keep = 5;                                // rotated files kept: path.1 .. path.keep
  bool timestamps = true;                      // "2026-11-23T12:47:07.123 " before each line
};

class LogSink {
 public:
  explicit LogSink(LogFileOptions options);
  ~LogSink();
  LogSink(const LogSink&) = delete;
  LogSink& operator=(const LogSink&) = delete;

  // Appends one line (a '\n' is added). `when` is the time stamped on it.
  // Returns the bytes of `line` accepted (line.size() + 1), or 0 when the
  // line was dropped (file cannot be opened or written; counted).
  std::size_t write_line(std::string_view line, std::chrono::system_clock::time_point when);

  // Pushes buffered bytes to the kernel. Called once per batch of lines.
  void flush();

  // Closes and reopens the file at its path (SIGUSR2, after logrotate moved it).
  void reopen();

  // Applies changed size/keep/timestamp settings (reload); same path.
  void update(const LogFileOptions& options);

  const LogFileOptions& options() const { return options_; }
  std::uint64_t bytes_dropped() const { return dropped_bytes_; }

 private:
  void open();

  LogFileOptions options_;
  std::shared_ptr<spdlog::sinks::sink> sink_;
  std::uint64_t dropped_bytes_ = 0;
  std::chrono::steady_clock::time_point next_open_attempt_{};
};

}  // namespace vigil
