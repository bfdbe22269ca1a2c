// Pipe → lines → sink. The read buffer is static: the loop is single-threaded.
#include "output_pipe.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <event2/event.h>

namespace vigil {

namespace {
constexpr std::size_t kReadChunk = 64 * 1024;
// At most this much per wake-up; the rest waits for the next loop turn.
constexpr int kMaxReadsPerWakeup = 16;
char g_read_buffer[kReadChunk];
}  // namespace

const char* to_string(Stream s) { return s == Stream::out ? "stdout" : "stderr"; }

OutputPipe::OutputPipe(EventLoop& loop, UniqueFd read_end, Stream stream,
                       std::shared_ptr<LogSink> sink, StreamCounters* counters,
                       std::function<void()> on_eof)
    : fd_(std::move(read_end)),
      stream_(stream),
      sink_(std::move(sink)),
      counters_(counters),
      on_eof_(std::move(on_eof)) {
  set_nonblocking(fd_.get());
  event_ = std::make_unique<IoEvent>(loop, fd_.get(), EV_READ, [this](short) { on_readable(); });
  event_->enable();
}

OutputPipe::~OutputPipe() = default;

void OutputPipe::write_line(std::string_view line, std::chrono::system_clock::time_point now) {
  std::size_t n = sink_ ? sink_->write_line(line, now) : line.size() + 1;
  if (n == 0)
    counters_->dropped += line.size() + 1;
  else
    counters_->bytes += n;
}

void OutputPipe::on_readable() {
  auto now = std::chrono::system_clock::now();
  auto emit = [&](std::string_view line) { write_line(line, now); };
  bool eof = false;
  for (int i = 0; i < kMaxReadsPerWakeup; ++i) {
    ssize_t n = ::read(fd_.get(), g_read_buffer, sizeof g_read_buffer);
    if (n > 0) {
      splitter_.feed(std::string_view(g_read_buffer, static_cast<std::size_t>(n)), emit);
      if (static_cast<std::size_t>(n) < sizeof g_read_buffer) break;  // drained for now
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    eof = true;  // 0 = EOF; any other error ends the stream too
    break;
  }
  if (eof) splitter_.finish(emit);
  if (sink_) sink_->flush();
  if (eof) close_pipe();
}

void OutputPipe::close_pipe() {
  event_->disable();
  fd_.reset();
  if (on_eof_) on_eof_();
}

}  // namespace vigil
