// Drains one of a child's output pipes (stdout or stderr) on the loop into a
// log sink, line by line. Reads a bounded amount per wake-up so a flooding
// child cannot starve the rest of the loop; keeps draining after the child
// exited until EOF, so the last lines of a crash reach the log.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "event_loop.h"
#include "fd.h"
#include "line_splitter.h"
#include "log_sink.h"

namespace vigil {

enum class Stream { out = 0, err = 1 };
const char* to_string(Stream s);  // "stdout", "stderr"

struct StreamCounters {
  std::uint64_t bytes = 0;    // bytes of output written to the log (incl. newlines)
  std::uint64_t dropped = 0;  // bytes that could not be kept
};

class OutputPipe {
 public:
  // `sink` may be null (log = "off"): output is read and discarded.
  // `counters` must outlive this object. on_eof runs (from the loop) once
  // the pipe is closed; the owner must destroy this object later (defer),
  // never inside on_eof.
  OutputPipe(EventLoop& loop, UniqueFd read_end, Stream stream, std::shared_ptr<LogSink> sink,
             StreamCounters* counters, std::function<void()> on_eof);
  ~OutputPipe();

  // Redirects future lines (reload of log settings, SIGUSR2 reopen).
  void set_sink(std::shared_ptr<LogSink> sink) { sink_ = std::move(sink); }
  bool open() const { return fd_.get() >= 0; }
  Stream stream() const { return stream_; }
  // For the handover to a new vigil across exec: the read end, and the
  // unfinished line read so far (given back with restore_partial).
  int fd() const { return fd_.get(); }
  const std::string& partial() const { return splitter_.partial(); }
  void restore_partial(std::string partial) { splitter_.restore(std::move(partial)); }

 private:
  void on_readable();
  void close_pipe();
  void write_line(std::string_view line, std::chrono::system_clock::time_point now);

  UniqueFd fd_;
  Stream stream_;
  std::shared_ptr<LogSink> sink_;
  StreamCounters* counters_;
  std::function<void()> on_eof_;
  LineSplitter splitter_;
  std::unique_ptr<IoEvent> event_;
};

}  // namespace vigil
