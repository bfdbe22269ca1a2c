// peek_forwarded_for: the first X-Forwarded-For entry of an HTTP/1.x request
// head, found, absent or not yet known; every prefix of a head as the proxy
// sees it arrive; the bound; and what is not HTTP at all.
#include "forwarded_for.h"

#include <gtest/gtest.h>

#include <string>

namespace vigil {
namespace {

using namespace std::string_literals;
using Status = ForwardedFor::Status;

// "found 1.2.3.4", "absent", "need_more": one readable word per outcome.
std::string peek(std::string_view head, std::size_t limit = 8192) {
  const ForwardedFor r = peek_forwarded_for(head, limit);
  switch (r.status) {
    case Status::need_more: return r.client.empty() ? "need_more" : "need_more?" + r.client;
    case Status::absent: return r.client.empty() ? "absent" : "absent?" + r.client;
    case Status::found: return "found " + r.client;
  }
  return "?";
}

TEST(ForwardedFor, FoundInACompleteHead) {
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n"),
            "found 203.0.113.7");
}

TEST(ForwardedFor, AbsentFromACompleteHead) {
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n"), "absent");
  EXPECT_EQ(peek("GET / HTTP/1.0\r\n\r\n"), "absent");
}

TEST(ForwardedFor, HeaderNameIsCaseInsensitive) {
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nx-forwarded-for: 1.1.1.1\r\n\r\n"), "found 1.1.1.1");
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-FORWARDED-FOR: 1.1.1.2\r\n\r\n"), "found 1.1.1.2");
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nx-Forwarded-fOr: 1.1.1.3\r\n\r\n"), "found 1.1.1.3");
}

TEST(ForwardedFor, SimilarNamesDoNotMatch) {
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Forwarded-Fo: 1.1.1.1\r\nX-Forwarded-For-X: 2.2.2.2\r\n"
                 "X-Forwarded-Host: h\r\nForwarded: for=3.3.3.3\r\n\r\n"),
            "absent");
  // No space is allowed before the colon (RFC 9112 5.1).
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Forwarded-For : 1.1.1.1\r\n\r\n"), "absent");
}

TEST(ForwardedFor, FirstEntryOfAListTrimmed) {
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Forwarded-For:203.0.113.7, 10.0.0.1,10.0.0.2\r\n\r\n"),
            "found 203.0.113.7");
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Forwarded-For: \t 203.0.113.7 \t, 10.0.0.1\r\n\r\n"),
            "found 203.0.113.7");
  // Empty list elements are skipped, as RFC 9110 5.6.1 asks.
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Forwarded-For: , ,198.51.100.1\r\n\r\n"),
            "found 198.51.100.1");
}

TEST(ForwardedFor, EntriesWithPortsAreKeptAsWritten) {
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Forwarded-For: [2001:db8::1]:1234, 10.0.0.1\r\n\r\n"),
            "found [2001:db8::1]:1234");
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4:5678\r\n\r\n"),
            "found 1.2.3.4:5678");
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Forwarded-For: 2001:db8::2\r\n\r\n"), "found 2001:db8::2");
}

TEST(ForwardedFor, EmptyValuesAreAbsent) {
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Forwarded-For:\r\n\r\n"), "absent");
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Forwarded-For:  \t \r\n\r\n"), "absent");
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Forwarded-For: , ,\r\n\r\n"), "absent");
}

// Several headers are one list: the first header's first entry, or the
// next header's when the first holds none.
TEST(ForwardedFor, SeveralHeadersTheFirstOneWins) {
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n"),
            "found 1.1.1.1");
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Forwarded-For:\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n"),
            "found 2.2.2.2");
}

TEST(ForwardedFor, HeaderInALaterPosition) {
  std::string head = "POST /submit?x=1 HTTP/1.1\r\n";
  for (int i = 0; i < 40; ++i)
    head += "X-Header-" + std::to_string(i) + ": value " + std::to_string(i) + "\r\n";
  head += "X-Forwarded-For: 192.0.2.44\r\nContent-Length: 5\r\n\r\nhello";
  EXPECT_EQ(peek(head), "found 192.0.2.44");
}

TEST(ForwardedFor, BareLineFeedsAndMixedLineEnds) {
  EXPECT_EQ(peek("GET / HTTP/1.1\nHost: a\nX-Forwarded-For: 10.1.2.3\n\n"), "found 10.1.2.3");
  EXPECT_EQ(peek("GET / HTTP/1.1\nHost: a\n\n"), "absent");
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nHost: a\nX-Forwarded-For: 10.1.2.4\r\n\n"), "found 10.1.2.4");
}

TEST(ForwardedFor, IncompleteHeadNeedsMore) {
  EXPECT_EQ(peek(""), "need_more");
  EXPECT_EQ(peek("GE"), "need_more");
  EXPECT_EQ(peek("GET /index.ht"), "need_more");
  EXPECT_EQ(peek("GET / HTTP/1.1\r"), "need_more");
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nHost: a\r\n"), "need_more");
  // The header's line is not complete: more of the value may follow.
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0"), "need_more");
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1\r"), "need_more");
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nHost: a\r\n\r"), "need_more");
}

// Found as soon as the header's line is complete: the rest of the head
// cannot change the answer, and the proxy need not wait for it.
TEST(ForwardedFor, FoundBeforeTheEndOfTheHead) {
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1\r\nHost: a"), "found 10.0.0.1");
}

// The proxy calls it again with all the bytes so far, after each read:
// every prefix of a head gives need_more until the answer, then the answer.
TEST(ForwardedFor, HeadArrivingInPiecesAnswersOnceAndKeepsTheAnswer) {
  const std::string heads[] = {
      "GET /chat HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.9, 10.0.0.1\r\n\r\n",
      "GET / HTTP/1.1\nHost: a\n\n",
      "GET / HTTP/1.1\r\nHost: a\r\n\r\nbody",
  };
  for (const auto& head : heads) {
    const std::string final = peek(head);
    bool answered = false;
    for (std::size_t n = 0; n <= head.size(); ++n) {
      const std::string now = peek(std::string_view(head).substr(0, n));
      if (answered) {
        EXPECT_EQ(now, final) << "prefix of " << n << " bytes of " << head;
      } else if (now != "need_more") {
        EXPECT_EQ(now, final) << "prefix of " << n << " bytes of " << head;
        answered = true;
      }
    }
    EXPECT_TRUE(answered) << head;
  }
}

TEST(ForwardedFor, LimitReachedWithoutTheEndOfTheHeadIsAbsent) {
  const std::string head = "GET / HTTP/1.1\r\nCookie: " + std::string(200, 'c') +
                           "\r\nX-Forwarded-For: 10.9.9.9\r\n\r\n";
  EXPECT_EQ(peek(head, 64), "absent");
  // Bytes beyond the limit are never looked at, even though they are there.
  EXPECT_EQ(peek(head, head.find("X-Forwarded-For") + 20), "absent");
  // Exactly enough: the header's line ends inside the limit.
  EXPECT_EQ(peek(head, head.find("10.9.9.9") + 10), "found 10.9.9.9");
  EXPECT_EQ(peek(head, head.size()), "found 10.9.9.9");
  // Fewer bytes than the limit: wait for more.
  EXPECT_EQ(peek(head.substr(0, 60), 64), "need_more");
  EXPECT_EQ(peek(head.substr(0, 64), 64), "absent");
  EXPECT_EQ(peek("", 0), "absent");
}

TEST(ForwardedFor, DefaultLimitIs8KiB) {
  const std::string start = "GET / HTTP/1.1\r\nCookie: ";
  EXPECT_EQ(peek(start + std::string(8192 - start.size() - 1, 'c')), "need_more");
  EXPECT_EQ(peek(start + std::string(8192 - start.size(), 'c')), "absent");
}

TEST(ForwardedFor, NotHttpIsAbsentAtOnce) {
  // A TLS ClientHello.
  EXPECT_EQ(peek("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s), "absent");
  // HTTP/2 with prior knowledge.
  EXPECT_EQ(peek("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), "absent");
  // Protocols that start with text but not a request line.
  EXPECT_EQ(peek("SSH-2.0-OpenSSH_9.2\r\n"), "absent");
  EXPECT_EQ(peek("HELLO\r\n"), "absent");
  EXPECT_EQ(peek("GET /\r\n"), "absent");  // HTTP/0.9 has no headers
  EXPECT_EQ(peek("GET / HTTP/1.1 extra\r\n\r\n"), "absent");
  EXPECT_EQ(peek(" GET / HTTP/1.1\r\n\r\n"), "absent");
  EXPECT_EQ(peek("\r\nGET / HTTP/1.1\r\n\r\n"), "absent");
  // A method longer than any: noise, not a method.
  EXPECT_EQ(peek(std::string(40, 'A')), "absent");
}

TEST(ForwardedFor, BinaryGarbageIsAbsent) {
  EXPECT_EQ(peek("\x00\x01\x02\x03"s), "absent");
  EXPECT_EQ(peek("\xff\xfe\xfd"s), "absent");
  EXPECT_EQ(peek("GET /\x01 HTTP/1.1\r\n\r\n"s), "absent");
  EXPECT_EQ(peek("GET / HTTP/1.1\x00\r\n\r\n"s), "absent");
  EXPECT_EQ(peek("GET / HT\rTP/1.1\r\n"s), "absent");
  // In a header line, noise is skipped: the head is only read, not judged.
  EXPECT_EQ(peek("GET / HTTP/1.1\r\n\x01\x02\xff\r\nX-Forwarded-For: 7.7.7.7\r\n\r\n"s),
            "found 7.7.7.7");
}

TEST(ForwardedFor, WebSocketUpgradeRequest) {
  EXPECT_EQ(peek("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                 "Host: chat.example.com\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "X-Forwarded-For: 198.51.100.77, 10.0.0.5\r\n"
                 "\r\n"),
            "found 198.51.100.77");
}

TEST(ForwardedFor, OtherMethodsAndTargets) {
  EXPECT_EQ(peek("OPTIONS * HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n"), "found 1.1.1.1");
  EXPECT_EQ(peek("CONNECT example.com:443 HTTP/1.1\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n"),
            "found 2.2.2.2");
  EXPECT_EQ(peek("M-SEARCH * HTTP/1.1\r\nX-Forwarded-For: 3.3.3.3\r\n\r\n"), "found 3.3.3.3");
}

// Folded (obsolete) continuation lines are not headers of their own.
TEST(ForwardedFor, FoldedLinesAreNotHeaders) {
  EXPECT_EQ(peek("GET / HTTP/1.1\r\nX-Note: a\r\n X-Forwarded-For: 1.1.1.1\r\n\r\n"), "absent");
}

}  // namespace
}  // namespace vigil
