// libFuzzer harness for the HTTP probe judge. Besides "no crash, no
// sanitizer report" it checks the promises the probe relies on: a verdict
// at EOF, the same whole or split (garbage excerpts aside), never changed
// once given, a pass only on an accepted status, details one printable,
// bounded line.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "probe_check.h"

// Input: byte 0 holds flags (bit 0: expect_status is set, from byte 1;
// bit 1: pad the response with 70 KiB of 'x' before EOF, to reach the
// header and body bounds), byte 2 the length of expect_body (mod 16), which
// follows; the rest is the response.

namespace {

using vigil::HttpResponseJudge;
using vigil::ProbeOutcome;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "probe_http_fuzz: broken promise: %s\n", what);
    std::abort();
  }
}

// No control characters; UTF-8 as the excerpts promise (written apart from
// the judge's own decoder, on purpose).
bool one_printable_line(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7F) return false;
      ++i;
      continue;
    }
    std::size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

struct Chunker {
  std::uint64_t state;
  explicit Chunker(std::string_view in) : state(1469598103934665603ull) {
    for (unsigned char c : in) state = (state ^ c) * 1099511628211ull;
    state |= 1;
  }
  std::size_t next(std::size_t left) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    const std::size_t cap = (state & 7) == 0 ? 20000 : 16;
    const std::size_t n = 1 + static_cast<std::size_t>((state >> 8) % cap);
    return n < left ? n : left;
  }
};

struct Settings {
  std::optional<int> expect_status;
  std::string expect_body;
  bool pad = false;
};

// Feeds `response` in pieces (`chunker` null: whole), checking that a
// verdict once given sticks and stops the reading; then EOF.
ProbeOutcome run(const Settings& s, std::string_view response, Chunker* chunker) {
  HttpResponseJudge judge(s.expect_status, s.expect_body);
  const ProbeOutcome* first = nullptr;
  std::uint64_t received_at_verdict = 0;
  auto feed = [&](std::string_view bytes) {
    const ProbeOutcome* v = judge.feed(bytes);
    if (first) {
      check(v == first, "the verdict never changes");
      check(judge.bytes_received() == received_at_verdict, "nothing is read after the verdict");
    } else if (v) {
      first = v;
      received_at_verdict = judge.bytes_received();
    }
  };
  for (std::size_t at = 0; at < response.size();) {
    const std::size_t n = chunker ? chunker->next(response.size() - at) : response.size() - at;
    feed(response.substr(at, n));
    at += n;
  }
  if (s.pad) {
    const std::string padding(70 * 1024, 'x');
    feed(padding);
  }
  const ProbeOutcome& end = judge.finish();
  if (first) check(&end == first, "finish gives the verdict already given");
  return end;
}

void check_outcome(const Settings& s, const ProbeOutcome& o) {
  check(!o.detail.empty(), "a detail, always");
  check(o.detail.size() < 400, "details are short");
  check(one_printable_line(o.detail), "details are one printable line");
  if (!o.ok) return;
  // "HTTP NNN", a status the settings accept.
  check(o.detail.size() == 8 && o.detail.starts_with("HTTP "), "a pass says its status");
  const int status = std::atoi(o.detail.c_str() + 5);
  if (s.expect_status)
    check(status == *s.expect_status, "a pass has the expected status");
  else
    check(status >= 200 && status <= 399, "a pass has a 2xx or 3xx status");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in.size() < 3) return 0;
  Settings s;
  const auto flags = static_cast<unsigned char>(in[0]);
  if (flags & 1) s.expect_status = 100 + static_cast<unsigned char>(in[1]) % 500;
  s.pad = (flags & 2) != 0;
  const std::size_t body_len = static_cast<unsigned char>(in[2]) % 16;
  in.remove_prefix(3);
  if (in.size() < body_len) return 0;
  s.expect_body = std::string(in.substr(0, body_len));
  in.remove_prefix(body_len);

  const ProbeOutcome whole = run(s, in, nullptr);
  check_outcome(s, whole);

  Chunker chunker(in);
  const ProbeOutcome pieces = run(s, in, &chunker);
  check_outcome(s, pieces);
  check(pieces.ok == whole.ok, "split or whole: same verdict");
  check(pieces.failure == whole.failure, "split or whole: same kind");
  constexpr std::string_view kGarbage = "not an HTTP/1.x response: ";
  if (!whole.detail.starts_with(kGarbage))
    check(pieces.detail == whole.detail, "split or whole: same detail");
  else
    check(pieces.detail.starts_with(kGarbage), "split or whole: garbage either way");
  return 0;
}
