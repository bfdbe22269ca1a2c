// What a probe found, in the contract's words: passed, or failed for one of
// five kinds of reason (vigil_probe_failures_total{kind}); and the judges
// that decide it from what arrived: an incremental HTTP/1.x response judge,
// an exec exit judge, the timeout's words. Pure: bytes and statuses in,
// verdicts out; no socket, no clock.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config.h"
#include "exit_status.h"
#include "units.h"

namespace vigil {

enum class ProbeFailure { timeout, refused, status, body, exec };
inline constexpr std::array<ProbeFailure, 5> kAllProbeFailures{
    ProbeFailure::timeout, ProbeFailure::refused, ProbeFailure::status, ProbeFailure::body,
    ProbeFailure::exec};
const char* to_string(ProbeFailure f);

struct ProbeOutcome {
  bool ok = false;
  ProbeFailure failure = ProbeFailure::timeout;  // when !ok
  std::chrono::microseconds took{0};             // start to verdict (loopback probes take less than 1 ms)
  std::string detail;  // for vigil's log: "HTTP 503", "connection refused", "exit status 1"

  static ProbeOutcome passed(std::string detail) { return {true, ProbeFailure::timeout, {}, std::move(detail)}; }
  static ProbeOutcome failed(ProbeFailure kind, std::string detail) {
    return {false, kind, {}, std::move(detail)};
  }
};

// A status line and its headers: more is not an HTTP server worth waiting on.
inline constexpr std::size_t kMaxProbeHeaderBytes = 16 * 1024;
// Only this much of a body is searched for expect_body; a longer body is
// judged on its start and never read to its end.
inline constexpr std::size_t kMaxProbeBodyBytes = 64 * 1024;
// A chunk-size line of a chunked body, extensions included.
inline constexpr std::size_t kMaxProbeChunkLineBytes = 1024;
// An exec probe's output (stdout and stderr together) kept for the detail.
inline constexpr std::size_t kMaxProbeOutputBytes = 4 * 1024;

// Judges one HTTP/1.x response as its bytes arrive. Success: a status of
// 200-399 (exactly expect_status when set) and, when expect_body is set, a
// body holding it within its first kMaxProbeBodyBytes. The verdict comes as
// soon as it is certain: a wrong status on the status line, a pass at the
// end of the headers when no body is expected, a found substring mid-body,
// the end of the body by Content-Length or the chunked encoding, so a
// server that keeps the connection open still gets one. Memory is bounded
// by the header limit and the length of expect_body, whatever the peer sends.
class HttpResponseJudge {
 public:
  HttpResponseJudge(std::optional<int> expect_status, std::string expect_body);

  // The next bytes from the peer. Returns the verdict once it is certain
  // (nullptr until then); bytes fed after it are ignored.
  const ProbeOutcome* feed(std::string_view bytes);
  // The peer closed its side: a verdict, always (a response cut short
  // before its end is kind refused).
  const ProbeOutcome& finish();

  const ProbeOutcome* verdict() const { return verdict_ ? &*verdict_ : nullptr; }
  std::uint64_t bytes_received() const { return bytes_received_; }

 private:
  enum class Phase { status_line, headers, body_sized, body_to_eof, chunk_size, chunk_data,
                     chunk_data_end };

  void consume_head_line(std::string_view& bytes);
  void on_status_line();
  void on_header_line();
  void on_headers_end();
  void consume_chunk_size(std::string_view& bytes);
  void on_body(std::string_view bytes);
  void on_body_end();
  bool status_acceptable() const;
  void pass();
  void fail(ProbeFailure kind, std::string detail);
  std::string status_words() const;  // "HTTP 200"

  std::optional<int> expect_status_;
  std::string expect_body_;
  Phase phase_ = Phase::status_line;
  std::optional<ProbeOutcome> verdict_;
  std::uint64_t bytes_received_ = 0;

  std::string line_;             // the unfinished line (status, header or chunk size)
  std::size_t head_bytes_ = 0;   // status lines and headers so far, interim responses too
  int status_ = 0;
  bool interim_ = false;         // a 1xx response whose headers are being skipped
  std::optional<std::uint64_t> content_length_;
  bool chunked_ = false;
  std::uint64_t body_left_ = 0;  // of Content-Length, or of the current chunk
  bool chunk_cr_ = false;        // the CR of a chunk's closing CRLF arrived

  // Body search across chunk boundaries: `carry_` holds the last
  // expect_body.size() - 1 bytes searched, `bridge_` joins them to the next
  // bytes. Both stay below twice the length of expect_body.
  std::size_t body_searched_ = 0;
  std::string carry_;
  std::string bridge_;
};

// A printable excerpt of `text` for a log line: whitespace runs become one
// space, other control bytes and invalid UTF-8 '?', trimmed, cut at a
// character boundary to at most `max_bytes` (then "..." is added).
std::string probe_excerpt(std::string_view text, std::size_t max_bytes);

// An exec probe's command ended: exit 0 passes; anything else is kind exec,
// "exit status 1: <what it printed>", "killed by SIGSEGV".
ProbeOutcome judge_exec_exit(const ExitStatus& exit, std::string_view output);

// The timeout of one run passed before a verdict. `connected`: the socket
// was connected (http, tcp); `bytes_received`: of the response so far.
ProbeOutcome probe_timed_out(ProbeKind kind, Duration timeout, bool connected,
                             std::uint64_t bytes_received);

}  // namespace vigil
