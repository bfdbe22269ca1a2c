// libFuzzer harness for the notify protocol parser. Besides "no crash, no
// sanitizer report" it checks the promises the shells rely on: the stream
// parses exactly as one datagram does, whatever the chunking; counts match
// the callbacks; STATUS text is bounded, valid UTF-8 and free of control
// characters; nothing kept or reported grows past the line limit.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "notify_protocol.h"

namespace {

using vigil::NotifyCounts;
using vigil::NotifyError;
using vigil::NotifyMessage;
using vigil::NotifyStreamParser;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "notify_protocol_fuzz: broken promise: %s\n", what);
    std::abort();
  }
}

// Written apart from the parser's own decoder, on purpose: a second opinion.
bool shown_safely(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t') || c == 0x7F) return false;
      ++i;
      continue;
    }
    std::uint32_t cp = 0;
    std::size_t n = 0;
    if ((c & 0xE0) == 0xC0) {
      cp = c & 0x1F;
      n = 2;
    } else if ((c & 0xF0) == 0xE0) {
      cp = c & 0x0F;
      n = 3;
    } else if ((c & 0xF8) == 0xF0) {
      cp = c & 0x07;
      n = 4;
    } else {
      return false;
    }
    if (i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    const std::uint32_t min_cp = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
    if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    if (cp >= 0x80 && cp <= 0x9F) return false;  // C1 controls
    i += n;
  }
  return true;
}

struct Event {
  int kind;  // NotifyKind, or 100 + NotifyError
  std::uint64_t value;
  std::string text;
  bool operator==(const Event&) const = default;
};

struct Recorder {
  std::vector<Event> events;
  std::uint64_t messages = 0;
  std::uint64_t errors = 0;

  vigil::NotifyMessageFn on_message() {
    return [this](const NotifyMessage& m) {
      ++messages;
      if (m.kind == vigil::NotifyKind::status) {
        check(m.text.size() <= vigil::kNotifyMaxStatusBytes, "STATUS within its bound");
        check(shown_safely(m.text), "STATUS safe to show");
      } else {
        check(m.text.empty(), "text only for STATUS");
      }
      events.push_back({static_cast<int>(m.kind), m.value, std::string(m.text)});
    };
  }
  vigil::NotifyErrorFn on_error() {
    return [this](NotifyError e, std::string_view line) {
      ++errors;
      check(line.size() <= vigil::kNotifyMaxLineBytes, "error line within the line bound");
      events.push_back({100 + static_cast<int>(e), 0, std::string(line)});
    };
  }
};

// A chunking schedule that depends on the input only, so a crash reproduces.
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
    // Mostly small pieces, sometimes large ones that cross the line limit.
    const std::size_t cap = (state & 7) == 0 ? 6000 : 64;
    const std::size_t n = 1 + static_cast<std::size_t>((state >> 8) % cap);
    return n < left ? n : left;
  }
};

void check_counts(const NotifyCounts& c, const Recorder& r) {
  check(c.messages == r.messages, "messages count matches the callbacks");
  check(c.protocol_errors == r.errors, "error count matches the callbacks");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  Recorder whole;
  const NotifyCounts dgram = vigil::parse_notify_datagram(in, whole.on_message(), whole.on_error());
  check_counts(dgram, whole);
  check(dgram.messages + dgram.unknown + dgram.protocol_errors <= size, "at most one result per byte");

  Recorder one;
  NotifyStreamParser s1;
  s1.feed(in, one.on_message(), one.on_error());
  check(s1.pending_bytes() < vigil::kNotifyMaxLineBytes, "partial line bounded");
  s1.finish(one.on_message(), one.on_error());
  check(s1.pending_bytes() == 0, "finish empties the parser");
  check_counts(s1.counts(), one);
  check(s1.counts() == dgram, "stream counts == datagram counts");
  check(one.events == whole.events, "stream events == datagram events");

  Recorder pieces;
  NotifyStreamParser s2;
  Chunker chunker(in);
  for (std::size_t at = 0; at < size;) {
    const std::size_t n = chunker.next(size - at);
    s2.feed(in.substr(at, n), pieces.on_message(), pieces.on_error());
    check(s2.pending_bytes() < vigil::kNotifyMaxLineBytes, "partial line bounded");
    at += n;
  }
  s2.finish(pieces.on_message(), pieces.on_error());
  check(s2.counts() == dgram, "chunked stream counts == datagram counts");
  check(pieces.events == whole.events, "chunked stream events == datagram events");
  return 0;
}
