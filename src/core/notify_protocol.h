// The heartbeat/notify protocol parser: KEY=VALUE lines from the fd 3 byte
// stream or from NOTIFY_SOCKET datagrams, turned into messages and counts.
// Pure and bounded: never throws, never keeps more than one line, never acts
// on a message (the instance shell decides what READY or WATCHDOG means).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace vigil {

// A line is at most this many bytes including its '\n' (DESIGN.md).
inline constexpr std::size_t kNotifyMaxLineBytes = 4096;
// STATUS text is cut to at most this many bytes (on a character boundary).
inline constexpr std::size_t kNotifyMaxStatusBytes = 1024;

enum class NotifyKind : std::uint8_t {
  ready,             // READY=1
  watchdog,          // WATCHDOG=1: a heartbeat
  watchdog_trigger,  // WATCHDOG=trigger: the child declares itself hung
  status,            // STATUS=text
  memory,            // MEMORY=bytes
  stopping,          // STOPPING=1
  extend_timeout,    // EXTEND_TIMEOUT_USEC=n
};
const char* to_string(NotifyKind k);  // "ready", "watchdog", "watchdog_trigger", ...

struct NotifyMessage {
  NotifyKind kind = NotifyKind::ready;
  // memory: bytes; extend_timeout: microseconds; 0 for the other kinds.
  std::uint64_t value = 0;
  // status only: the text, sanitized (valid UTF-8; control characters other
  // than tab, DEL, C1 controls and invalid bytes replaced by '?'; at most
  // kNotifyMaxStatusBytes). Points into the input or a scratch buffer: valid
  // only during the callback — copy it to keep it.
  std::string_view text;
};

enum class NotifyError : std::uint8_t {
  missing_equals,  // no '=' in the line
  invalid_key,     // key empty or not [A-Z_][A-Z0-9_]*
  nul_byte,        // a NUL byte in the value
  invalid_value,   // a known key with a value it cannot take (MEMORY=abc, WATCHDOG=2)
  line_too_long,   // more than kNotifyMaxLineBytes including the '\n'
};
const char* to_string(NotifyError e);  // "missing '='", "invalid key", ...

// What became of the lines seen. Blank lines (also a lone "\r") count nowhere.
struct NotifyCounts {
  std::uint64_t messages = 0;         // delivered to on_message
  std::uint64_t unknown = 0;          // well-formed, ignored: MAINPID=, RELOADING=1, READY=0, FOO=...
  std::uint64_t protocol_errors = 0;  // malformed: each also reported to on_error

  NotifyCounts& operator+=(const NotifyCounts& o) {
    messages += o.messages;
    unknown += o.unknown;
    protocol_errors += o.protocol_errors;
    return *this;
  }
  bool operator==(const NotifyCounts&) const = default;
};

using NotifyMessageFn = std::function<void(const NotifyMessage&)>;
// `line` is the raw offending bytes (for line_too_long: the part that was
// seen, at most kNotifyMaxLineBytes); sanitize before showing it.
using NotifyErrorFn = std::function<void(NotifyError, std::string_view line)>;
// A well-formed line vigil gives no message to (MAINPID=, RELOADING=1,
// READY=0, ...): its key and value, valid only during the call. Counted as
// unknown either way; a listener that knows a key (a watch reads MAINPID=)
// takes it from here.
using NotifyUnknownFn = std::function<void(std::string_view key, std::string_view value)>;

// One datagram from NOTIFY_SOCKET: newline-separated lines, the last '\n'
// optional. Each line is parsed exactly as on the stream. Returns this
// datagram's counts.
NotifyCounts parse_notify_datagram(std::string_view datagram, const NotifyMessageFn& on_message,
                                   const NotifyErrorFn& on_error = {},
                                   const NotifyUnknownFn& on_unknown = {});

// The fd 3 pipe: fed whatever read() returned. Complete lines are parsed
// straight from the chunk; only an unfinished line is kept (at most
// kNotifyMaxLineBytes - 1 bytes). A line that grows past the limit counts as
// one protocol error the moment it does, and the rest of it is skipped up to
// the next '\n'. One trailing '\r' is stripped from every line ("\r\n" works).
class NotifyStreamParser {
 public:
  NotifyStreamParser();

  void feed(std::string_view chunk, const NotifyMessageFn& on_message,
            const NotifyErrorFn& on_error = {});

  // End of stream: an unfinished last line is parsed as if its '\n' had come
  // (`printf READY=1 >&3` works); then the parser is empty again.
  void finish(const NotifyMessageFn& on_message, const NotifyErrorFn& on_error = {});

  const NotifyCounts& counts() const { return counts_; }
  std::size_t pending_bytes() const { return partial_.size(); }
  // The unfinished line and whether it is being skipped (over-long), handed
  // to a new vigil across exec (`vigil upgrade`) and given back there.
  const std::string& partial() const { return partial_; }
  bool discarding() const { return discarding_; }
  void restore(std::string partial, bool discarding) {
    partial_ = std::move(partial);
    if (partial_.size() >= kNotifyMaxLineBytes) partial_.resize(kNotifyMaxLineBytes - 1);
    discarding_ = discarding;
  }

 private:
  std::string partial_;     // the unfinished line, < kNotifyMaxLineBytes bytes
  bool discarding_ = false;  // inside an over-long line: skip to the next '\n'
  NotifyCounts counts_;
};

// `text` made safe to show, as STATUS is: valid UTF-8, no control characters
// but tab, at most max_bytes. For logging protocol errors.
std::string sanitize_notify_text(std::string_view text, std::size_t max_bytes = 200);

}  // namespace vigil
