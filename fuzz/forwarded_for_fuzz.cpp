// libFuzzer harness for the X-Forwarded-For peek. Besides "no crash, no
// sanitizer report" it checks the promises the sticky proxy relies on: bytes
// past `limit` change nothing; need_more only below the limit; once given,
// an answer stays the same as more bytes arrive; a found client is one
// trimmed, non-empty entry taken from the bytes looked at.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "forwarded_for.h"

// Input: bytes 0-1 hold the limit (little-endian, mod 9000: the default
// 8192 and small ones both occur); the rest is what the client sent.

namespace {

using vigil::ForwardedFor;
using Status = ForwardedFor::Status;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "forwarded_for_fuzz: broken promise: %s\n", what);
    std::abort();
  }
}

bool same(const ForwardedFor& a, const ForwardedFor& b) {
  return a.status == b.status && a.client == b.client;
}

void check_result(std::string_view head, std::size_t limit, const ForwardedFor& r) {
  if (r.status == Status::need_more) check(head.size() < limit, "need_more only below the limit");
  if (r.status != Status::found) {
    check(r.client.empty(), "a client only when found");
    return;
  }
  const std::string_view c = r.client;
  check(!c.empty(), "a found client is not empty");
  check(c.front() != ' ' && c.front() != '\t' && c.back() != ' ' && c.back() != '\t',
        "a found client is trimmed");
  check(c.find(',') == std::string_view::npos, "a found client is one entry");
  check(c.find('\n') == std::string_view::npos, "a found client is on one line");
  check(head.substr(0, limit).find(c) != std::string_view::npos,
        "a found client was written in the bytes looked at");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t limit = (data[0] | (static_cast<std::size_t>(data[1]) << 8)) % 9000;
  const std::string_view head(reinterpret_cast<const char*>(data) + 2, size - 2);

  const ForwardedFor whole = vigil::peek_forwarded_for(head, limit);
  check_result(head, limit, whole);
  if (head.size() > limit)
    check(same(whole, vigil::peek_forwarded_for(head.substr(0, limit), limit)),
          "bytes past the limit change nothing");

  // The proxy asks again after each read: every prefix (every 7th one of a
  // long input, to stay fast) answers need_more, then the final answer.
  const std::size_t step = head.size() > 1024 ? 7 : 1;
  bool answered = false;
  for (std::size_t n = 0;; n = std::min(n + step, head.size())) {
    const ForwardedFor r = vigil::peek_forwarded_for(head.substr(0, n), limit);
    check_result(head.substr(0, n), limit, r);
    if (answered || r.status != Status::need_more) {
      check(same(r, whole), "an answer, once given, stays");
      answered = true;
    }
    if (n == head.size()) break;
  }
  return 0;
}
