// The X-Forwarded-For peek: a small HTTP/1.x request-head scanner that looks
// only for that one header. It decides as early as the bytes allow (not HTTP
// at the first implausible byte; found once the header's line is complete)
// and never looks past head.size() or `limit`. Anything it cannot read is
// "absent", and the proxy falls back to the peer address.
#include "forwarded_for.h"

#include <algorithm>

namespace vigil {

namespace {

constexpr std::string_view kHeader = "x-forwarded-for";
// Longer than any registered method (the longest, UPDATEREDIRECTREF, is 17).
constexpr std::size_t kMaxMethodBytes = 32;

// RFC 9110 tchar: the characters of a method token.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equals_lower(std::string_view text, std::string_view lower_word) {
  return text.size() == lower_word.size() &&
         std::equal(text.begin(), text.end(), lower_word.begin(),
                    [](char a, char b) { return lower(a) == b; });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The first non-empty entry of a comma-separated list (RFC 9110 5.6.1:
// empty elements are ignored), trimmed; empty if there is none.
std::string_view first_entry(std::string_view list) {
  while (true) {
    const auto comma = list.find(',');
    std::string_view entry = trim(list.substr(0, comma));
    if (!entry.empty() || comma == std::string_view::npos) return entry;
    list.remove_prefix(comma + 1);
  }
}

// "METHOD SP TARGET SP HTTP/1.D" (the CR already removed).
bool is_request_line(std::string_view line) {
  const auto sp1 = line.find(' ');
  const auto sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return false;
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (target.empty() || target.find(' ') != std::string_view::npos) return false;
  return version.size() == 8 && version.starts_with("HTTP/1.") && version[7] >= '0' &&
         version[7] <= '9';
}

}  // namespace

ForwardedFor peek_forwarded_for(std::string_view head, std::size_t limit) {
  using Status = ForwardedFor::Status;
  const bool bounded = head.size() >= limit;
  const std::string_view view = head.substr(0, std::min(head.size(), limit));
  // Undecided in the bytes we may look at: wait for more, unless that was
  // all we may look at.
  const ForwardedFor undecided{bounded ? Status::absent : Status::need_more, {}};
  const ForwardedFor absent{Status::absent, {}};

  // The method: a token, then a space. A TLS hello or binary noise fails
  // here; HTTP/2's preface ("PRI * HTTP/2.0") at the request line.
  std::size_t i = 0;
  while (i < view.size() && view[i] != ' ') {
    if (!is_tchar(view[i]) || i >= kMaxMethodBytes) return absent;
    ++i;
  }
  if (i == view.size()) return undecided;
  if (i == 0) return absent;

  // The request line: no control bytes but a CR right before the LF.
  std::size_t eol = i;
  while (eol < view.size() && view[eol] != '\n') {
    const auto c = static_cast<unsigned char>(view[eol]);
    const bool cr_at_end = c == '\r' && (eol + 1 == view.size() || view[eol + 1] == '\n');
    if ((c < 0x20 && c != '\t' && !cr_at_end) || c == 0x7f) return absent;
    ++eol;
  }
  if (eol == view.size()) return undecided;
  std::string_view line = view.substr(0, eol);
  if (line.ends_with('\r')) line.remove_suffix(1);
  if (!is_request_line(line)) return absent;

  // Header lines up to the empty line. Lines without a colon and folded
  // continuations (obsolete) are skipped, not judged: the head is relayed
  // as it is, vigil only reads it.
  std::size_t at = eol + 1;
  while (true) {
    const auto lf = view.find('\n', at);
    if (lf == std::string_view::npos) return undecided;
    std::string_view header = view.substr(at, lf - at);
    at = lf + 1;
    if (header.ends_with('\r')) header.remove_suffix(1);
    if (header.empty()) return absent;  // the end of the head
    const auto colon = header.find(':');
    if (colon == std::string_view::npos || !equals_lower(header.substr(0, colon), kHeader))
      continue;
    // Several headers make one list (RFC 9110 5.3): an empty first one
    // defers to the next.
    const std::string_view entry = first_entry(header.substr(colon + 1));
    if (!entry.empty()) return {Status::found, std::string(entry)};
  }
}

}  // namespace vigil
