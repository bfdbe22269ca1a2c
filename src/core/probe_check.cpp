// Probe verdicts: failure names in the contract's words, the incremental
// HTTP/1.x response judge (status line, headers, Content-Length and chunked
// bodies, a bounded substring search), the exec exit judge and the words of
// a timeout.
#include "probe_check.h"

#include <algorithm>
#include <charconv>

namespace vigil {

const char* to_string(ProbeFailure f) {
  switch (f) {
    case ProbeFailure::timeout: return "timeout";
    case ProbeFailure::refused: return "refused";
    case ProbeFailure::status: return "status";
    case ProbeFailure::body: return "body";
    case ProbeFailure::exec: return "exec";
  }
  return "unknown";
}

namespace {

constexpr std::string_view kNotHttp = "not an HTTP/1.x response";

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether `line` can still begin "HTTP/1.x NNN" followed by a space or its
// end: checked on every partial status line, so a peer that is not an HTTP
// server fails at its first wrong byte rather than at the timeout.
bool status_prefix_ok(std::string_view line) {
  constexpr std::string_view kProto = "HTTP/1.";
  for (std::size_t i = 0; i < line.size() && i < 13; ++i) {
    const char c = line[i];
    if (i < kProto.size()) {
      if (c != kProto[i]) return false;
    } else if (i == 7 || (i >= 9 && i <= 11)) {
      if (!is_digit(c)) return false;
    } else if (i == 8) {
      if (c != ' ') return false;
    } else if (c != ' ' && c != '\r') {  // i == 12
      return false;
    }
  }
  return true;
}

std::string in_quotes(std::string_view text) { return "\"" + probe_excerpt(text, 100) + "\""; }

// Length of the valid UTF-8 sequence at the start of `s` (0: invalid).
std::size_t utf8_sequence(std::string_view s) {
  const auto c = static_cast<unsigned char>(s[0]);
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  const std::uint32_t min_cp = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
  if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  if (cp <= 0x9F) return 0;  // C1 controls
  return n;
}

}  // namespace

std::string probe_excerpt(std::string_view text, std::size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes) + 3);
  bool space = false;  // a whitespace run is pending
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f') {
      space = !out.empty();
      ++i;
      continue;
    }
    std::string_view piece;
    std::size_t advance = 1;
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      advance = utf8_sequence(text.substr(i));
      piece = advance ? text.substr(i, advance) : std::string_view("?");
      if (!advance) advance = 1;
    } else if (u < 0x20 || u == 0x7F) {
      piece = "?";
    } else {
      piece = text.substr(i, 1);
    }
    if (out.size() + (space ? 1 : 0) + piece.size() > max_bytes) {
      out += "...";
      return out;
    }
    if (space) out += ' ';
    space = false;
    out += piece;
    i += advance;
  }
  return out;
}

ProbeOutcome judge_exec_exit(const ExitStatus& exit, std::string_view output) {
  if (!exit.signaled && exit.code == 0) return ProbeOutcome::passed("exit status 0");
  std::string detail;
  if (exit.signaled) {
    const std::string name = signal_name(exit.signal);
    detail = is_digit(name.front()) ? "killed by signal " + name : "killed by SIG" + name;
    if (exit.core_dumped) detail += " (core dumped)";
  } else {
    detail = "exit status " + std::to_string(exit.code);
  }
  const std::string said = probe_excerpt(output, kMaxProbeOutputBytes);
  if (!said.empty()) detail += ": " + said;
  return ProbeOutcome::failed(ProbeFailure::exec, std::move(detail));
}

ProbeOutcome probe_timed_out(ProbeKind kind, Duration timeout, bool connected,
                             std::uint64_t bytes_received) {
  const std::string within = format_duration(timeout);
  std::string detail;
  if (kind == ProbeKind::exec)
    detail = "still running after " + within + " (killed)";
  else if (!connected)
    detail = "not connected within " + within;
  else if (bytes_received == 0)
    detail = "no answer within " + within;
  else
    detail = "answer incomplete after " + within + " (" + std::to_string(bytes_received) +
             " bytes received)";
  return ProbeOutcome::failed(ProbeFailure::timeout, std::move(detail));
}

// ---------------------------------------------------------------------------
// HttpResponseJudge

HttpResponseJudge::HttpResponseJudge(std::optional<int> expect_status, std::string expect_body)
    : expect_status_(expect_status), expect_body_(std::move(expect_body)) {}

const ProbeOutcome* HttpResponseJudge::feed(std::string_view bytes) {
  if (verdict_) return &*verdict_;
  bytes_received_ += bytes.size();
  while (!verdict_ && !bytes.empty()) {
    switch (phase_) {
      case Phase::status_line:
      case Phase::headers:
        consume_head_line(bytes);
        break;
      case Phase::body_sized: {
        const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), body_left_));
        on_body(bytes.substr(0, take));
        bytes.remove_prefix(take);
        body_left_ -= take;
        if (!verdict_ && body_left_ == 0) on_body_end();
        break;
      }
      case Phase::body_to_eof:
        on_body(bytes);
        bytes = {};
        break;
      case Phase::chunk_size:
        consume_chunk_size(bytes);
        break;
      case Phase::chunk_data: {
        const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), body_left_));
        on_body(bytes.substr(0, take));
        bytes.remove_prefix(take);
        body_left_ -= take;
        if (body_left_ == 0) {
          phase_ = Phase::chunk_data_end;
          chunk_cr_ = false;
        }
        break;
      }
      case Phase::chunk_data_end: {
        // The CRLF that closes a chunk's data (a bare LF is accepted).
        const char c = bytes.front();
        bytes.remove_prefix(1);
        if (c == '\r' && !chunk_cr_) {
          chunk_cr_ = true;
        } else if (c == '\n') {
          phase_ = Phase::chunk_size;
        } else {
          fail(ProbeFailure::status, status_words() + " with a malformed chunked body (no CRLF after a chunk)");
        }
        break;
      }
    }
  }
  return verdict_ ? &*verdict_ : nullptr;
}

void HttpResponseJudge::consume_head_line(std::string_view& bytes) {
  const auto nl = bytes.find('\n');
  const std::size_t take = nl == std::string_view::npos ? bytes.size() : nl + 1;
  if (head_bytes_ + take > kMaxProbeHeaderBytes) {
    if (phase_ == Phase::status_line) {
      // Whatever it is, an over-long first line is not a status line.
      line_.append(bytes.substr(0, std::min<std::size_t>(take, 64)));
      if (!status_prefix_ok(line_)) {
        fail(ProbeFailure::status, std::string(kNotHttp) + ": " + in_quotes(line_.substr(0, 40)));
        return;
      }
    }
    fail(ProbeFailure::status, "response headers over 16 KiB");
    return;
  }
  head_bytes_ += take;
  line_.append(bytes.substr(0, nl == std::string_view::npos ? take : nl));
  bytes.remove_prefix(take);
  if (phase_ == Phase::status_line && !status_prefix_ok(line_)) {
    fail(ProbeFailure::status, std::string(kNotHttp) + ": " + in_quotes(line_.substr(0, 40)));
    return;
  }
  if (nl == std::string_view::npos) return;  // the line goes on in the next bytes
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  if (phase_ == Phase::status_line)
    on_status_line();
  else
    on_header_line();
  line_.clear();
}

void HttpResponseJudge::on_status_line() {
  // status_prefix_ok held for every prefix; what is left is the length.
  if (line_.size() < 12 || (line_.size() > 12 && line_[12] != ' ')) {
    fail(ProbeFailure::status, std::string(kNotHttp) + ": " + in_quotes(line_.substr(0, 40)));
    return;
  }
  status_ = (line_[9] - '0') * 100 + (line_[10] - '0') * 10 + (line_[11] - '0');
  phase_ = Phase::headers;
  // 1xx responses (Early Hints, a stray 100 Continue) are interim: the
  // real one follows them. 101 switches protocols and is final.
  interim_ = status_ >= 100 && status_ < 200 && status_ != 101;
  if (interim_) return;
  if (!status_acceptable()) {
    std::string detail = status_words();
    if (expect_status_) detail += " (expected " + std::to_string(*expect_status_) + ")";
    fail(ProbeFailure::status, std::move(detail));
  }
}

void HttpResponseJudge::on_header_line() {
  if (line_.empty()) {
    on_headers_end();
    return;
  }
  if (interim_) return;
  // Folded continuation lines and lines without a colon carry nothing the
  // judge needs; a server with odd headers may still be alive.
  if (line_.front() == ' ' || line_.front() == '\t') return;
  const auto colon = line_.find(':');
  if (colon == std::string::npos) return;
  const std::string_view name = trim(std::string_view(line_).substr(0, colon));
  const std::string_view value = trim(std::string_view(line_).substr(colon + 1));
  if (iequals(name, "content-length")) {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    const bool valid = !value.empty() && ec == std::errc() && end == value.data() + value.size() &&
                       is_digit(value.front());
    if (!valid || (content_length_ && *content_length_ != n)) {
      fail(ProbeFailure::status, status_words() + " with an invalid Content-Length " + in_quotes(value));
      return;
    }
    content_length_ = n;
  } else if (iequals(name, "transfer-encoding")) {
    // Codings apply in order: the body is chunked when chunked comes last.
    const auto comma = value.rfind(',');
    const std::string_view last =
        trim(comma == std::string_view::npos ? value : value.substr(comma + 1));
    chunked_ = iequals(last, "chunked");
  }
}

void HttpResponseJudge::on_headers_end() {
  if (interim_) {
    interim_ = false;
    content_length_.reset();
    chunked_ = false;
    phase_ = Phase::status_line;
    return;
  }
  if (expect_body_.empty()) {
    pass();
    return;
  }
  // Framing as RFC 9112 section 6.3 has it for a response to a GET.
  if (status_ == 204 || status_ == 304) {
    on_body_end();
  } else if (chunked_) {
    phase_ = Phase::chunk_size;
  } else if (content_length_) {
    body_left_ = *content_length_;
    phase_ = Phase::body_sized;
    if (body_left_ == 0) on_body_end();
  } else {
    phase_ = Phase::body_to_eof;
  }
}

void HttpResponseJudge::consume_chunk_size(std::string_view& bytes) {
  const auto nl = bytes.find('\n');
  const std::size_t take = nl == std::string_view::npos ? bytes.size() : nl + 1;
  if (line_.size() + take > kMaxProbeChunkLineBytes) {
    fail(ProbeFailure::status, status_words() + " with a malformed chunked body (chunk-size line over 1 KiB)");
    return;
  }
  line_.append(bytes.substr(0, nl == std::string_view::npos ? take : nl));
  bytes.remove_prefix(take);
  if (nl == std::string_view::npos) return;
  std::string_view size = line_;
  if (!size.empty() && size.back() == '\r') size.remove_suffix(1);
  size = trim(size.substr(0, size.find(';')));  // chunk extensions are ignored
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(size.data(), size.data() + size.size(), n, 16);
  const bool valid = !size.empty() && ec == std::errc() && end == size.data() + size.size() &&
                     size.front() != '-' && size.front() != '+';
  if (!valid) {
    fail(ProbeFailure::status, status_words() + " with a malformed chunked body (chunk size " + in_quotes(size) + ")");
    return;
  }
  line_.clear();
  if (n == 0) {
    // The last chunk: the body is complete (trailers carry nothing judged).
    on_body_end();
    return;
  }
  body_left_ = n;
  phase_ = Phase::chunk_data;
}

void HttpResponseJudge::on_body(std::string_view bytes) {
  if (verdict_ || bytes.empty()) return;
  const std::size_t room = kMaxProbeBodyBytes - body_searched_;
  bytes = bytes.substr(0, room);
  body_searched_ += bytes.size();
  const std::size_t keep = expect_body_.size() - 1;  // expect_body_ is not empty here
  if (!carry_.empty()) {
    // A match that starts in earlier bytes and ends in these.
    bridge_.assign(carry_);
    bridge_.append(bytes.substr(0, keep));
    if (bridge_.find(expect_body_) != std::string::npos) {
      pass();
      return;
    }
  }
  if (bytes.find(expect_body_) != std::string_view::npos) {
    pass();
    return;
  }
  if (bytes.size() >= keep) {
    carry_.assign(bytes.substr(bytes.size() - keep));
  } else {
    carry_.append(bytes);
    if (carry_.size() > keep) carry_.erase(0, carry_.size() - keep);
  }
  if (body_searched_ == kMaxProbeBodyBytes)
    fail(ProbeFailure::body,
         status_words() + " but the first 64 KiB of the body lack " + in_quotes(expect_body_));
}

void HttpResponseJudge::on_body_end() {
  if (verdict_) return;
  // A match would have passed as it arrived.
  fail(ProbeFailure::body, status_words() + " but the body lacks " + in_quotes(expect_body_));
}

const ProbeOutcome& HttpResponseJudge::finish() {
  if (verdict_) return *verdict_;
  switch (phase_) {
    case Phase::status_line:
      fail(ProbeFailure::refused, bytes_received_ == 0 ? "connection closed without an answer"
                                                       : "connection closed inside the status line");
      break;
    case Phase::headers:
      fail(ProbeFailure::refused, "connection closed inside the response headers");
      break;
    case Phase::body_sized:
      fail(ProbeFailure::refused, status_words() + " but the connection closed " +
                                      std::to_string(body_left_) +
                                      " bytes before the end of the body (Content-Length " +
                                      std::to_string(*content_length_) + ")");
      break;
    case Phase::body_to_eof:
      on_body_end();
      break;
    case Phase::chunk_size:
    case Phase::chunk_data:
    case Phase::chunk_data_end:
      fail(ProbeFailure::refused, status_words() + " but the connection closed inside the chunked body");
      break;
  }
  return *verdict_;
}

bool HttpResponseJudge::status_acceptable() const {
  if (expect_status_) return status_ == *expect_status_;
  return status_ >= 200 && status_ <= 399;
}

void HttpResponseJudge::pass() { verdict_ = ProbeOutcome::passed(status_words()); }

void HttpResponseJudge::fail(ProbeFailure kind, std::string detail) {
  verdict_ = ProbeOutcome::failed(kind, std::move(detail));
  // Nothing more is read: let go of what the partial line held.
  line_ = std::string();
  carry_ = std::string();
  bridge_ = std::string();
}

std::string HttpResponseJudge::status_words() const { return "HTTP " + std::to_string(status_); }

}  // namespace vigil
