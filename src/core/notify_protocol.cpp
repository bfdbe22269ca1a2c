// Parsing of KEY=VALUE notify lines: memchr for line ends, views into the
// caller's bytes, a fixed stack buffer when STATUS needs cleaning. No
// allocation per message, no exceptions; must not hold more than one line.
#include "notify_protocol.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace vigil {

namespace {

constexpr std::size_t kMaxContent = kNotifyMaxLineBytes - 1;  // bytes before the '\n'

enum class Key { other, ready, watchdog, status, memory, stopping, extend_timeout };

// Our keys, by length first so most lines cost one or two memcmp.
Key lookup(std::string_view key) {
  switch (key.size()) {
    case 5:
      if (key == "READY") return Key::ready;
      break;
    case 6:
      if (key == "STATUS") return Key::status;
      if (key == "MEMORY") return Key::memory;
      break;
    case 8:
      if (key == "WATCHDOG") return Key::watchdog;
      if (key == "STOPPING") return Key::stopping;
      break;
    case 19:
      if (key == "EXTEND_TIMEOUT_USEC") return Key::extend_timeout;
      break;
    default:
      break;
  }
  return Key::other;
}

// [A-Z_][A-Z0-9_]*, as systemd's keys and environment variable names are.
bool valid_key(std::string_view key) {
  if (key.empty()) return false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    const char c = key[i];
    const bool ok = (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Plain decimal digits only: no sign, no spaces, no hex; overflow is invalid.
bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  const char* const end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data(), end, out, 10);
  return ec == std::errc{} && ptr == end;
}

bool is_cont(unsigned char b) { return (b & 0xC0) == 0x80; }

// Length of the well-formed UTF-8 sequence starting at s[i] (a byte >= 0x80),
// or 0 when it is not one (overlongs, surrogates and > U+10FFFF included).
std::size_t utf8_len(std::string_view s, std::size_t i) {
  const auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const std::size_t left = s.size() - i;
  const unsigned char c = at(0);
  if (c >= 0xC2 && c <= 0xDF) return left >= 2 && is_cont(at(1)) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (left < 3) return 0;
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
    return at(1) >= lo && at(1) <= hi && is_cont(at(2)) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (left < 4) return 0;
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
    return at(1) >= lo && at(1) <= hi && is_cont(at(2)) && is_cont(at(3)) ? 4 : 0;
  }
  return 0;
}

// Whether a byte can pass through unchanged without looking further.
bool plain_ascii(unsigned char c) { return (c >= 0x20 && c < 0x7F) || c == '\t'; }

// Writes the shown form of `in` into out[0..cap): each control character
// (C0 but tab, DEL, C1) and each byte of an invalid sequence becomes '?'.
// Stops before a character that would not fit, so the result is never a
// broken sequence.
std::size_t sanitize_into(std::string_view in, char* out, std::size_t cap) {
  std::size_t o = 0;
  std::size_t i = 0;
  while (i < in.size() && o < cap) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c < 0x80) {
      out[o++] = plain_ascii(c) ? static_cast<char>(c) : '?';
      ++i;
      continue;
    }
    const std::size_t len = utf8_len(in, i);
    if (len == 0) {
      out[o++] = '?';
      ++i;
    } else if (len == 2 && c == 0xC2 && static_cast<unsigned char>(in[i + 1]) < 0xA0) {
      out[o++] = '?';  // U+0080..U+009F: C1 controls (CSI and friends)
      i += 2;
    } else {
      if (o + len > cap) break;
      std::memcpy(out + o, in.data() + i, len);
      o += len;
      i += len;
    }
  }
  return o;
}

struct LineSink {
  NotifyCounts& counts;
  const NotifyMessageFn& on_message;
  const NotifyErrorFn& on_error;
  const NotifyUnknownFn* on_unknown = nullptr;

  void error(NotifyError e, std::string_view line) const {
    ++counts.protocol_errors;
    if (on_error) on_error(e, line);
  }
  void message(const NotifyMessage& m) const {
    ++counts.messages;
    if (on_message) on_message(m);
  }
};

void deliver_status(std::string_view value, const LineSink& sink) {
  NotifyMessage m;
  m.kind = NotifyKind::status;
  // Nearly every status is printable ASCII: hand out a view, no copy.
  const std::size_t n = std::min(value.size(), kNotifyMaxStatusBytes);
  bool plain = true;
  for (std::size_t i = 0; i < n; ++i) {
    if (!plain_ascii(static_cast<unsigned char>(value[i]))) {
      plain = false;
      break;
    }
  }
  if (plain) {
    m.text = value.substr(0, n);
    sink.message(m);
    return;
  }
  char buf[kNotifyMaxStatusBytes];
  m.text = std::string_view(buf, sanitize_into(value, buf, sizeof buf));
  sink.message(m);
}

// One line without its '\n', at most kMaxContent bytes.
void parse_line(std::string_view line, const LineSink& sink) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return;  // blank lines are harmless: not counted

  const void* eq = std::memchr(line.data(), '=', line.size());
  if (!eq) return sink.error(NotifyError::missing_equals, line);
  const auto key_len = static_cast<std::size_t>(static_cast<const char*>(eq) - line.data());
  const std::string_view key = line.substr(0, key_len);
  const std::string_view value = line.substr(key_len + 1);
  if (!valid_key(key)) return sink.error(NotifyError::invalid_key, line);
  if (std::memchr(value.data(), '\0', value.size())) return sink.error(NotifyError::nul_byte, line);

  NotifyMessage m;
  const Key k = lookup(key);
  switch (k) {
    case Key::ready:
      // systemd ignores READY=0 and friends; so do we (counted as unknown).
      if (value != "1") break;
      m.kind = NotifyKind::ready;
      return sink.message(m);
    case Key::stopping:
      if (value != "1") break;
      m.kind = NotifyKind::stopping;
      return sink.message(m);
    case Key::watchdog:
      if (value == "1") {
        m.kind = NotifyKind::watchdog;
      } else if (value == "trigger") {
        m.kind = NotifyKind::watchdog_trigger;
      } else {
        return sink.error(NotifyError::invalid_value, line);
      }
      return sink.message(m);
    case Key::status:
      return deliver_status(value, sink);
    case Key::memory:
    case Key::extend_timeout:
      if (!parse_u64(value, m.value)) return sink.error(NotifyError::invalid_value, line);
      m.kind = k == Key::memory ? NotifyKind::memory : NotifyKind::extend_timeout;
      return sink.message(m);
    case Key::other:
      break;
  }
  // MAINPID=, RELOADING=1, FDSTORE=1, BARRIER=1, ... and keys we never heard of.
  ++sink.counts.unknown;
  if (sink.on_unknown && *sink.on_unknown) (*sink.on_unknown)(key, value);
}

}  // namespace

const char* to_string(NotifyKind k) {
  switch (k) {
    case NotifyKind::ready: return "ready";
    case NotifyKind::watchdog: return "watchdog";
    case NotifyKind::watchdog_trigger: return "watchdog_trigger";
    case NotifyKind::status: return "status";
    case NotifyKind::memory: return "memory";
    case NotifyKind::stopping: return "stopping";
    case NotifyKind::extend_timeout: return "extend_timeout";
  }
  return "?";
}

const char* to_string(NotifyError e) {
  switch (e) {
    case NotifyError::missing_equals: return "missing '='";
    case NotifyError::invalid_key: return "invalid key";
    case NotifyError::nul_byte: return "NUL byte";
    case NotifyError::invalid_value: return "invalid value";
    case NotifyError::line_too_long: return "line too long";
  }
  return "?";
}

NotifyCounts parse_notify_datagram(std::string_view datagram, const NotifyMessageFn& on_message,
                                   const NotifyErrorFn& on_error,
                                   const NotifyUnknownFn& on_unknown) {
  NotifyCounts counts;
  const LineSink sink{counts, on_message, on_error, &on_unknown};
  const char* p = datagram.data();
  const char* const end = p + datagram.size();
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    const char* const line_end = nl ? nl : end;
    const std::string_view line(p, static_cast<std::size_t>(line_end - p));
    if (line.size() > kMaxContent) {
      sink.error(NotifyError::line_too_long, line.substr(0, kNotifyMaxLineBytes));
    } else {
      parse_line(line, sink);
    }
    p = nl ? nl + 1 : end;
  }
  return counts;
}

// No room is reserved up front: every instance has a parser and most never
// see a line split across two reads; partial_ grows only when one is, and
// never past kNotifyMaxLineBytes.
NotifyStreamParser::NotifyStreamParser() = default;

void NotifyStreamParser::feed(std::string_view chunk, const NotifyMessageFn& on_message,
                              const NotifyErrorFn& on_error) {
  const LineSink sink{counts_, on_message, on_error, nullptr};
  const char* p = chunk.data();
  const char* const end = p + chunk.size();
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    const char* const line_end = nl ? nl : end;
    const auto avail = static_cast<std::size_t>(line_end - p);

    if (discarding_) {
      if (!nl) return;  // still inside the over-long line
      discarding_ = false;
      p = nl + 1;
      continue;
    }

    if (partial_.size() + avail > kMaxContent) {
      // Counted now, once, even if the '\n' never comes.
      std::string_view seen(p, kNotifyMaxLineBytes);
      if (!partial_.empty()) {
        partial_.append(p, kNotifyMaxLineBytes - partial_.size());
        seen = partial_;
      }
      sink.error(NotifyError::line_too_long, seen);
      partial_.clear();
      if (!nl) {
        discarding_ = true;
        return;
      }
      p = nl + 1;
      continue;
    }

    if (!nl) {
      partial_.append(p, avail);
      return;
    }
    if (partial_.empty()) {
      parse_line(std::string_view(p, avail), sink);
    } else {
      partial_.append(p, avail);
      parse_line(partial_, sink);
      partial_.clear();
    }
    p = nl + 1;
  }
}

void NotifyStreamParser::finish(const NotifyMessageFn& on_message, const NotifyErrorFn& on_error) {
  const LineSink sink{counts_, on_message, on_error, nullptr};
  if (!discarding_ && !partial_.empty()) parse_line(partial_, sink);
  partial_.clear();
  discarding_ = false;
}

std::string sanitize_notify_text(std::string_view text, std::size_t max_bytes) {
  std::string out(std::min(max_bytes, text.size()), '\0');
  out.resize(sanitize_into(text, out.data(), out.size()));
  return out;
}

}  // namespace vigil
