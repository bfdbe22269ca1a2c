// Probe verdicts: the HTTP response judge on every branch (status line,
// garbage, header bound, interim responses, Content-Length, chunked, body
// search across chunk boundaries and its 64 KiB bound, EOF at each phase),
// its independence from how the bytes are split, the exec exit judge, the
// excerpts put in log lines and the words of a timeout.
#include "probe_check.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vigil {
namespace {

using namespace std::string_literals;
using namespace std::chrono_literals;

// Feeds `response` whole, then EOF; the verdict.
ProbeOutcome judge(std::string_view response, std::optional<int> status = std::nullopt,
                   std::string body = "") {
  HttpResponseJudge j(status, std::move(body));
  if (const ProbeOutcome* v = j.feed(response)) return *v;
  return j.finish();
}

// The verdict reached without EOF (a server that keeps the connection open),
// or nullopt when the judge still waits for bytes.
std::optional<ProbeOutcome> judge_open(std::string_view response,
                                       std::optional<int> status = std::nullopt,
                                       std::string body = "") {
  HttpResponseJudge j(status, std::move(body));
  const ProbeOutcome* v = j.feed(response);
  return v ? std::optional<ProbeOutcome>(*v) : std::nullopt;
}

std::string with_length(std::string_view body, std::string_view status = "200 OK") {
  return "HTTP/1.1 "s + std::string(status) + "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + std::string(body);
}

std::string chunked(const std::vector<std::string>& chunks, std::string_view te = "chunked") {
  std::string out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: "s + std::string(te) + "\r\n\r\n";
  char size[32];
  for (const auto& c : chunks) {
    std::snprintf(size, sizeof size, "%zx", c.size());
    out += std::string(size) + "\r\n" + c + "\r\n";
  }
  return out + "0\r\n\r\n";
}

void expect_failure(const ProbeOutcome& o, ProbeFailure kind, std::string_view detail) {
  EXPECT_FALSE(o.ok) << o.detail;
  EXPECT_EQ(to_string(o.failure), std::string(to_string(kind))) << o.detail;
  EXPECT_EQ(o.detail, detail);
}

TEST(ProbeCheckTest, FailureKindsAreTheContractsWords) {
  std::vector<std::string> words;
  for (ProbeFailure f : kAllProbeFailures) words.push_back(to_string(f));
  EXPECT_EQ(words, (std::vector<std::string>{"timeout", "refused", "status", "body", "exec"}));
}

// ---------------------------------------------------------------------------
// Status

TEST(ProbeCheckTest, SuccessStatusesPassAtTheEndOfTheHeaders) {
  for (int status : {200, 204, 301, 302, 399}) {
    const std::string head = "HTTP/1.1 " + std::to_string(status) + " Whatever\r\nServer: x\r\n";
    HttpResponseJudge j(std::nullopt, "");
    EXPECT_EQ(j.feed(head), nullptr) << "a pass is certain only once the headers end";
    const ProbeOutcome* v = j.feed("\r\n");
    ASSERT_NE(v, nullptr) << status;
    EXPECT_TRUE(v->ok) << status;
    EXPECT_EQ(v->detail, "HTTP " + std::to_string(status));
  }
}

TEST(ProbeCheckTest, OtherStatusesFailOnTheStatusLineAlone) {
  for (int status : {400, 404, 500, 503, 101}) {
    auto v = judge_open("HTTP/1.1 " + std::to_string(status) + " Nope\r\n");
    ASSERT_TRUE(v) << status << ": a wrong status is certain before any header";
    expect_failure(*v, ProbeFailure::status, "HTTP " + std::to_string(status));
  }
}

TEST(ProbeCheckTest, ExpectStatusIsTheOnlyStatusThatPasses) {
  auto v = judge_open("HTTP/1.1 503 Service Unavailable\r\n\r\n", 503);
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->ok);
  EXPECT_EQ(v->detail, "HTTP 503");
  auto w = judge_open("HTTP/1.1 200 OK\r\n", 503);
  ASSERT_TRUE(w);
  expect_failure(*w, ProbeFailure::status, "HTTP 200 (expected 503)");
}

TEST(ProbeCheckTest, StatusLineVariantsThatAreFine) {
  EXPECT_TRUE(judge("HTTP/1.0 200 OK\r\n\r\n").ok) << "HTTP/1.0";
  EXPECT_TRUE(judge("HTTP/1.1 200\r\n\r\n").ok) << "no reason phrase";
  EXPECT_TRUE(judge("HTTP/1.1 200 \r\n\r\n").ok) << "empty reason phrase";
  EXPECT_TRUE(judge("HTTP/1.1 200 OK\nServer: x\n\n").ok) << "bare LF line ends";
  EXPECT_TRUE(judge("HTTP/1.1 200 OK\r\nno colon here\r\n folded\r\n\r\n").ok)
      << "odd header lines are ignored";
}

TEST(ProbeCheckTest, GarbageFailsWithWhatArrived) {
  auto v = judge_open("SSH-2.0-OpenSSH_9.6\r\n");
  ASSERT_TRUE(v);
  expect_failure(*v, ProbeFailure::status, "not an HTTP/1.x response: \"SSH-2.0-OpenSSH_9.6\"");
  // Certain at the first wrong byte: no waiting for a line end.
  auto early = judge_open("S");
  ASSERT_TRUE(early);
  EXPECT_EQ(early->failure, ProbeFailure::status);
  const char* garbage[] = {"HTTP/2 200\r\n",       "HTTP/1.1 2000 OK\r\n", "HTTP/1.1 200OK\r\n",
                           "HTTP/1.1 abc\r\n",     "http/1.1 200 OK\r\n",  "HTTP/1.1  200 OK\r\n",
                           "\r\nHTTP/1.1 200\r\n", "HTTP/1.1 20\r\n",      "HTTP/1.x 200\r\n"};
  for (const char* g : garbage) {
    auto o = judge(g);
    EXPECT_FALSE(o.ok) << g;
    EXPECT_EQ(o.failure, ProbeFailure::status) << g;
    EXPECT_TRUE(o.detail.starts_with("not an HTTP/1.x response: \"")) << g << " -> " << o.detail;
  }
}

TEST(ProbeCheckTest, GarbageDetailIsPrintableAndShort) {
  auto o = judge("\x01\x02garbage\xff" + std::string(200, 'x') + "\n");
  EXPECT_EQ(o.failure, ProbeFailure::status);
  EXPECT_EQ(o.detail, "not an HTTP/1.x response: \"??garbage?" + std::string(30, 'x') + "\"")
      << "the first 40 bytes of the line, printable";
  auto p = judge("HTTP/1.1 200 " + std::string(10, 'y') + "\n\n" + "HTTP/1.1 x");
  EXPECT_TRUE(p.ok) << "one response only: bytes after the headers are not judged";
}

TEST(ProbeCheckTest, HeadersUpTo16KiBAreRead) {
  const std::string status = "HTTP/1.1 200 OK\r\n";
  std::string head = status;
  // Fill to exactly kMaxProbeHeaderBytes with the final blank line.
  const std::size_t fill = kMaxProbeHeaderBytes - status.size() - 2 - std::string("X: \r\n").size();
  head += "X: " + std::string(fill, 'a') + "\r\n\r\n";
  ASSERT_EQ(head.size(), kMaxProbeHeaderBytes);
  EXPECT_TRUE(judge(head).ok);
  head.insert(status.size(), "Y: 1\r\n");
  auto o = judge(head);
  expect_failure(o, ProbeFailure::status, "response headers over 16 KiB");
}

TEST(ProbeCheckTest, EndlessHeadersFailAt16KiB) {
  HttpResponseJudge j(std::nullopt, "");
  ASSERT_EQ(j.feed("HTTP/1.1 200 OK\r\n"), nullptr);
  const ProbeOutcome* v = nullptr;
  std::size_t fed = 0;
  for (int i = 0; i < 10000 && !v; ++i) {
    v = j.feed("X-Header: value\r\n");
    fed += 17;
  }
  ASSERT_NE(v, nullptr);
  expect_failure(*v, ProbeFailure::status, "response headers over 16 KiB");
  EXPECT_LE(fed, kMaxProbeHeaderBytes + 17);
}

TEST(ProbeCheckTest, AnOverlongStatusLineFails) {
  auto v = judge_open("HTTP/1.1 200 " + std::string(kMaxProbeHeaderBytes, 'r'));
  ASSERT_TRUE(v) << "no line end needed to know it is too long";
  expect_failure(*v, ProbeFailure::status, "response headers over 16 KiB");
  auto g = judge_open(std::string(kMaxProbeHeaderBytes + 10, 'z'));
  ASSERT_TRUE(g);
  EXPECT_EQ(g->detail, "not an HTTP/1.x response: \"" + std::string(40, 'z') + "\"");
}

TEST(ProbeCheckTest, InterimResponsesAreSkipped) {
  EXPECT_TRUE(judge("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n").ok);
  auto o = judge("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 503 Busy\r\n\r\n");
  expect_failure(o, ProbeFailure::status, "HTTP 503");
  // The interim response's headers do not frame the final body.
  EXPECT_TRUE(judge("HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\n" + with_length("running"),
                    std::nullopt, "running")
                  .ok);
  // The header bound covers interim responses too.
  std::string many;
  for (int i = 0; i < 2000; ++i) many += "HTTP/1.1 100 Continue\r\n\r\n";
  expect_failure(judge(many), ProbeFailure::status, "response headers over 16 KiB");
}

// ---------------------------------------------------------------------------
// Body

TEST(ProbeCheckTest, WithoutExpectBodyTheBodyIsNeverRead) {
  auto v = judge_open("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nsome");
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->ok);
}

TEST(ProbeCheckTest, BodyHoldingTheSubstringPassesAsItArrives) {
  HttpResponseJudge j(std::nullopt, "running");
  ASSERT_EQ(j.feed("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nstate: "), nullptr);
  const ProbeOutcome* v = j.feed("running, and more to come");
  ASSERT_NE(v, nullptr) << "no need to wait for the other bytes of the body";
  EXPECT_TRUE(v->ok);
  EXPECT_EQ(v->detail, "HTTP 200");
}

TEST(ProbeCheckTest, BodyLackingTheSubstringFailsAtItsEnd) {
  auto v = judge_open(with_length("stopped"), std::nullopt, "running");
  ASSERT_TRUE(v) << "Content-Length ends the body: no EOF needed";
  expect_failure(*v, ProbeFailure::body, "HTTP 200 but the body lacks \"running\"");
  // The expected status and the body are both checked.
  auto w = judge(with_length("running", "503 Busy"), 503, "running");
  EXPECT_TRUE(w.ok) << w.detail;
  auto x = judge(with_length("stopped", "503 Busy"), 503, "running");
  expect_failure(x, ProbeFailure::body, "HTTP 503 but the body lacks \"running\"");
  // Status first: a wrong status is a status failure whatever the body.
  auto y = judge(with_length("running", "500 Oops"), std::nullopt, "running");
  expect_failure(y, ProbeFailure::status, "HTTP 500");
}

TEST(ProbeCheckTest, BodySearchCrossesEveryChunkBoundary) {
  const std::string response = with_length("....running....");
  for (std::size_t cut = 0; cut <= response.size(); ++cut) {
    for (std::size_t cut2 = cut; cut2 <= response.size(); ++cut2) {
      HttpResponseJudge j(std::nullopt, "running");
      j.feed(std::string_view(response).substr(0, cut));
      j.feed(std::string_view(response).substr(cut, cut2 - cut));
      j.feed(std::string_view(response).substr(cut2));
      ASSERT_NE(j.verdict(), nullptr) << cut << " " << cut2;
      EXPECT_TRUE(j.verdict()->ok) << cut << " " << cut2 << ": " << j.verdict()->detail;
    }
  }
  // Byte by byte, with a one-byte and a near-miss substring.
  for (std::string needle : {"r"s, "runnings"s, "..running.."s, "ng...."s}) {
    HttpResponseJudge j(std::nullopt, needle);
    for (char c : response) j.feed(std::string_view(&c, 1));
    ASSERT_NE(j.verdict(), nullptr) << needle;
    EXPECT_EQ(j.verdict()->ok, needle != "runnings") << needle;
  }
}

TEST(ProbeCheckTest, BodyEndsAtEofWithoutFraming) {
  HttpResponseJudge j(std::nullopt, "running");
  ASSERT_EQ(j.feed("HTTP/1.0 200 OK\r\n\r\nstill "), nullptr);
  ASSERT_EQ(j.feed("starting"), nullptr) << "the body may go on until EOF";
  expect_failure(j.finish(), ProbeFailure::body, "HTTP 200 but the body lacks \"running\"");
  EXPECT_TRUE(judge("HTTP/1.0 200 OK\r\n\r\nrunning", std::nullopt, "running").ok);
  // A transfer coding that is not chunked last leaves the body to EOF.
  EXPECT_TRUE(judge("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, x\r\n\r\n7\r\nrunning",
                    std::nullopt, "running")
                  .ok);
}

TEST(ProbeCheckTest, OnlyTheFirst64KiBOfTheBodyAreSearched) {
  const std::string head = "HTTP/1.1 200 OK\r\n\r\n";
  // Ends exactly at the bound: found.
  std::string at_end = std::string(kMaxProbeBodyBytes - 7, 'x') + "running";
  auto found = judge_open(head + at_end, std::nullopt, "running");
  ASSERT_TRUE(found);
  EXPECT_TRUE(found->ok);
  // Straddles the bound: not searched.
  std::string straddles = std::string(kMaxProbeBodyBytes - 3, 'x') + "running";
  auto v = judge_open(head + straddles, std::nullopt, "running");
  ASSERT_TRUE(v) << "certain once 64 KiB were searched, with no EOF";
  expect_failure(*v, ProbeFailure::body, "HTTP 200 but the first 64 KiB of the body lack \"running\"");
  // A 1 MiB body fed in 4 KiB reads: the verdict comes after 64 KiB.
  HttpResponseJudge j(std::nullopt, "running");
  j.feed(head);
  const std::string piece(4096, 'y');
  std::size_t fed = 0;
  while (!j.verdict() && fed < (1u << 20)) {
    j.feed(piece);
    fed += piece.size();
  }
  EXPECT_EQ(fed, kMaxProbeBodyBytes);
  ASSERT_NE(j.verdict(), nullptr);
  EXPECT_EQ(j.verdict()->failure, ProbeFailure::body);
}

TEST(ProbeCheckTest, EmptyBodies) {
  auto no_content = judge_open("HTTP/1.1 204 No Content\r\n\r\n", std::nullopt, "running");
  ASSERT_TRUE(no_content) << "204 has no body: certain at the end of the headers";
  expect_failure(*no_content, ProbeFailure::body, "HTTP 204 but the body lacks \"running\"");
  auto empty = judge_open("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", std::nullopt, "running");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->failure, ProbeFailure::body);
}

TEST(ProbeCheckTest, ContentLengthStopsTheBody) {
  // Bytes past Content-Length (a pipelined next response) are not body.
  auto v = judge_open("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nrunning", std::nullopt, "running");
  ASSERT_TRUE(v);
  expect_failure(*v, ProbeFailure::body, "HTTP 200 but the body lacks \"running\"");
  EXPECT_TRUE(judge("HTTP/1.1 200 OK\r\ncontent-length:  7 \r\nContent-Length: 7\r\n\r\nrunning",
                    std::nullopt, "running")
                  .ok)
      << "names are case-insensitive, repeated equal values are fine";
}

TEST(ProbeCheckTest, InvalidContentLengthIsAStatusFailure) {
  for (const char* value : {"abc", "-1", "+1", "1, 1", "", "99999999999999999999999", "0x10"}) {
    auto o = judge("HTTP/1.1 200 OK\r\nContent-Length: "s + value + "\r\n\r\n", std::nullopt, "x");
    EXPECT_EQ(o.failure, ProbeFailure::status) << value << ": " << o.detail;
    EXPECT_TRUE(o.detail.starts_with("HTTP 200 with an invalid Content-Length")) << o.detail;
  }
  auto twice = judge("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
  expect_failure(twice, ProbeFailure::status, "HTTP 200 with an invalid Content-Length \"2\"");
}

TEST(ProbeCheckTest, ChunkedBodiesAreDecoded) {
  auto v = judge_open(chunked({"state: run", "ning"}), std::nullopt, "running");
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->ok) << "the match spans two chunks; the framing between them is not body";
  auto w = judge_open(chunked({"state: ", "stopped"}), std::nullopt, "running");
  ASSERT_TRUE(w) << "the last chunk ends the body: no EOF needed";
  expect_failure(*w, ProbeFailure::body, "HTTP 200 but the body lacks \"running\"");
  // The chunk framing itself never matches.
  auto x = judge_open(chunked({"ab", "cd"}), std::nullopt, "b\r\n2");
  ASSERT_TRUE(x);
  EXPECT_FALSE(x->ok);
  EXPECT_TRUE(judge(chunked({"running"}, "gzip, Chunked"), std::nullopt, "running").ok);
}

TEST(ProbeCheckTest, ChunkedFramingVariants) {
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n";
  EXPECT_TRUE(judge(head + "7;name=value\r\nrunning\r\n0\r\n\r\n", std::nullopt, "running").ok)
      << "extensions ignored; chunked wins over Content-Length";
  EXPECT_TRUE(judge(head + "A\r\n...running\r\n0\r\n\r\n", std::nullopt, "running").ok) << "hex A";
  EXPECT_TRUE(judge(head + "a\n...running\n0\n\n", std::nullopt, "running").ok) << "bare LF";
  EXPECT_TRUE(judge(head + "3\r\nrun\r\n4\r\nning\r\n0\r\n", std::nullopt, "running").ok);
}

TEST(ProbeCheckTest, MalformedChunkedBodiesAreStatusFailures) {
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  expect_failure(judge(head + "zz\r\n", std::nullopt, "x"), ProbeFailure::status,
                 "HTTP 200 with a malformed chunked body (chunk size \"zz\")");
  expect_failure(judge(head + "\r\n", std::nullopt, "x"), ProbeFailure::status,
                 "HTTP 200 with a malformed chunked body (chunk size \"\")");
  expect_failure(judge(head + "-1\r\n", std::nullopt, "x"), ProbeFailure::status,
                 "HTTP 200 with a malformed chunked body (chunk size \"-1\")");
  expect_failure(judge(head + "fffffffffffffffffffff\r\n", std::nullopt, "x"), ProbeFailure::status,
                 "HTTP 200 with a malformed chunked body (chunk size \"fffffffffffffffffffff\")");
  expect_failure(judge(head + "2\r\nabXY", std::nullopt, "x"), ProbeFailure::status,
                 "HTTP 200 with a malformed chunked body (no CRLF after a chunk)");
  auto endless = judge_open(head + "1;" + std::string(2000, 'e'), std::nullopt, "x");
  ASSERT_TRUE(endless) << "a chunk-size line is bounded";
  expect_failure(*endless, ProbeFailure::status,
                 "HTTP 200 with a malformed chunked body (chunk-size line over 1 KiB)");
}

// ---------------------------------------------------------------------------
// EOF at every phase

TEST(ProbeCheckTest, EofBeforeTheResponseEndsIsRefused) {
  expect_failure(judge(""), ProbeFailure::refused, "connection closed without an answer");
  expect_failure(judge("HTTP/1.1 2"), ProbeFailure::refused, "connection closed inside the status line");
  expect_failure(judge("HTTP/1.1 200 OK\r\nServer: x"), ProbeFailure::refused,
                 "connection closed inside the response headers");
  expect_failure(judge("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", std::nullopt, "running"),
                 ProbeFailure::refused,
                 "HTTP 200 but the connection closed 7 bytes before the end of the body (Content-Length 10)");
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const char* cut : {"", "5", "5\r\nab", "5\r\nabcde", "5\r\nabcde\r"}) {
    expect_failure(judge(head + cut, std::nullopt, "running"), ProbeFailure::refused,
                   "HTTP 200 but the connection closed inside the chunked body");
  }
}

TEST(ProbeCheckTest, TheVerdictSticks) {
  HttpResponseJudge j(std::nullopt, "");
  const ProbeOutcome* v = j.feed("HTTP/1.1 503 Busy\r\n");
  ASSERT_NE(v, nullptr);
  const std::uint64_t received = j.bytes_received();
  const ProbeOutcome* again = j.feed("HTTP/1.1 200 OK\r\n\r\n");
  ASSERT_EQ(again, v);
  EXPECT_EQ(j.bytes_received(), received) << "bytes after the verdict are not read";
  EXPECT_EQ(j.finish().detail, "HTTP 503");
}

TEST(ProbeCheckTest, TheVerdictDoesNotDependOnHowBytesAreSplit) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {with_length("....running...."), "running"},
      {with_length("stopped"), "running"},
      {chunked({"ru", "nn", "ing"}), "running"},
      {chunked({"abc", "def"}), "running"},
      {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nrunning", "running"},
      {"HTTP/1.1 404 Not Found\r\n\r\n", ""},
      {"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", ""},
      {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "running"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX", "running"},
  };
  for (const auto& [response, needle] : cases) {
    const ProbeOutcome whole = judge(response, std::nullopt, needle);
    for (std::size_t cut = 0; cut <= response.size(); ++cut) {
      HttpResponseJudge j(std::nullopt, needle);
      j.feed(std::string_view(response).substr(0, cut));
      j.feed(std::string_view(response).substr(cut));
      const ProbeOutcome& split = j.finish();
      EXPECT_EQ(split.ok, whole.ok) << response << " cut at " << cut;
      EXPECT_EQ(split.failure, whole.failure) << response << " cut at " << cut;
      EXPECT_EQ(split.detail, whole.detail) << response << " cut at " << cut;
    }
  }
}

// ---------------------------------------------------------------------------
// exec, excerpts, timeouts

TEST(ProbeCheckTest, ExecExitJudge) {
  auto ok = judge_exec_exit(ExitStatus::exited(0), "noise on stdout");
  EXPECT_TRUE(ok.ok);
  expect_failure(judge_exec_exit(ExitStatus::exited(1), ""), ProbeFailure::exec, "exit status 1");
  expect_failure(judge_exec_exit(ExitStatus::exited(2), "curl: (7) Failed to connect\n"),
                 ProbeFailure::exec, "exit status 2: curl: (7) Failed to connect");
  expect_failure(judge_exec_exit(ExitStatus::killed(SIGSEGV), ""), ProbeFailure::exec,
                 "killed by SIGSEGV");
  ExitStatus cored = ExitStatus::killed(SIGABRT);
  cored.core_dumped = true;
  expect_failure(judge_exec_exit(cored, "boom"), ProbeFailure::exec,
                 "killed by SIGABRT (core dumped): boom");
  expect_failure(judge_exec_exit(ExitStatus::killed(64), ""), ProbeFailure::exec, "killed by signal 64");
  auto long_output = judge_exec_exit(ExitStatus::exited(1), std::string(10000, 'o'));
  EXPECT_EQ(long_output.detail.size(), std::string("exit status 1: ").size() + kMaxProbeOutputBytes + 3);
  EXPECT_TRUE(long_output.detail.ends_with("o..."));
}

TEST(ProbeCheckTest, ExcerptsAreOneShortPrintableLine) {
  EXPECT_EQ(probe_excerpt("  line one\r\n\tline two \n\n", 100), "line one line two");
  EXPECT_EQ(probe_excerpt("bell\a nul\0x"s, 100), "bell? nul?x");
  EXPECT_EQ(probe_excerpt("caf\xc3\xa9 \xe2\x9c\x93", 100), "caf\xc3\xa9 \xe2\x9c\x93") << "UTF-8 kept";
  EXPECT_EQ(probe_excerpt("bad \xc3( \xff \xc2\x85 \xed\xa0\x80", 100), "bad ?( ? ?? ???")
      << "invalid UTF-8, C1 controls and surrogates";
  EXPECT_EQ(probe_excerpt("abcdef", 4), "abcd...");
  EXPECT_EQ(probe_excerpt("ab\xc3\xa9", 3), "ab...") << "never half a character";
  EXPECT_EQ(probe_excerpt("abc", 3), "abc");
  EXPECT_EQ(probe_excerpt("", 3), "");
}

TEST(ProbeCheckTest, TimeoutWords) {
  expect_failure(probe_timed_out(ProbeKind::http, 2s, false, 0), ProbeFailure::timeout,
                 "not connected within 2s");
  expect_failure(probe_timed_out(ProbeKind::http, 2s, true, 0), ProbeFailure::timeout,
                 "no answer within 2s");
  expect_failure(probe_timed_out(ProbeKind::http, 1500ms, true, 12), ProbeFailure::timeout,
                 "answer incomplete after 1s500ms (12 bytes received)");
  expect_failure(probe_timed_out(ProbeKind::tcp, 2s, false, 0), ProbeFailure::timeout,
                 "not connected within 2s");
  expect_failure(probe_timed_out(ProbeKind::exec, 2s, false, 0), ProbeFailure::timeout,
                 "still running after 2s (killed)");
}

}  // namespace
}  // namespace vigil
