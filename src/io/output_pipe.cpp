// Pipe → lines → sink. The read buffer is static: the loop is single-threaded.
// One read a wake-up, as large as the pipe holds (instances give their
// output pipes 1 MiB), its lines stamped into one batch and written with
// one write(2) by the sink's flush.
#include "output_pipe.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <event2/event.h>

namespace vigil {

namespace {
// The output pipes' size (F_SETPIPE_SZ at spawn): a full pipe in one read.
// At most this much per wake-up, so a flooding child cannot starve the
// loop: the rest waits for the next turn. Its pages are touched only as
// far as reads have filled it.
constexpr std::size_t kReadChunk = 1 << 20;
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
  for (;;) {
    ssize_t n = ::read(fd_.get(), g_read_buffer, sizeof g_read_buffer);
    if (n > 0) {
      splitter_.feed(std::string_view(g_read_buffer, static_cast<std::size_t>(n)), emit);
      break;  // drained, or the rest on the next turn
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
