// What protects a running vigil, on the real binary: the control socket is
// private (0600 under any umask) and owned by one vigil at a time; on TCP
// only GET works without the bearer token; oversized and malformed HTTP
// (huge bodies, header floods, 1,000 fuzzed requests, slowloris) is refused
// without harming the loop, the children or vigil's own fds.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <random>

#include "control_harness.h"

namespace vigil::it {
namespace {

using control::Expected;
using control::Json;
using control::RawReply;

constexpr std::string_view kToken = "0123456789abcdef-s3cret";

// Refused: a 4xx answer, or the connection closed without any answer.
bool refused(const RawReply& r) {
  return (r.status >= 400 && r.status < 500) || (r.status == 0 && r.closed);
}

class SecurityTest : public BinaryTest {
 protected:
  // vigil with [http] on a port of its choosing, a token file ending in a
  // newline (when `with_token`) and one program "web".
  void start(bool with_token = true) {
    std::string toml = "[http]\nlisten = \"127.0.0.1:0\"\n";
    if (with_token) {
      const fs::path token = dir_.write("token", std::string(kToken) + "\n");
      toml += "token_file = " + toml_string(token.string()) + "\n";
    }
    toml += "\n" + helper_program("web", {}, "min_uptime = \"100ms\"");
    run_vigil_with(toml);
    ASSERT_TRUE(vigil_->wait_for_output("serving /metrics")) << vigil_->output();
    auto port = control::served_port(vigil_->output());
    ASSERT_TRUE(port) << vigil_->output();
    port_ = *port;
    Json all = control::wait_for_states(socket(), {{{"web", 0}, "running"}});
    ASSERT_EQ(control::find_instance(all, "web")["state"], "running")
        << all.dump() << vigil_->output();
    web_pid_ = control::pid_of(control::find_instance(all, "web"));
  }
  fs::path socket() const { return dir_ / "vigil.sock"; }
  Json web() {
    return control::find_instance(control::api_instances(socket()).value_or(Json::array()), "web");
  }
  // A request over TCP with an optional Authorization header.
  RawReply tcp(std::string_view method, std::string_view target, std::string_view auth = "") {
    std::string req = std::string(method) + " " + std::string(target) +
                      " HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n";
    if (!auth.empty()) req += "Authorization: " + std::string(auth) + "\r\n";
    return control::exchange(connect_loopback(port_), req + "\r\n", false, 10s);
  }
  // /healthz answers on both listeners and vigil still runs.
  void expect_serving(std::string_view after) {
    EXPECT_TRUE(vigil_->running()) << "vigil died after " << after << "\n" << vigil_->output();
    EXPECT_TRUE(control::healthz(connect_loopback(port_))) << "TCP, after " << after;
    EXPECT_TRUE(control::healthz(control::connect_unix(socket())))
        << "control socket, after " << after;
  }
  // The child was never touched: same pid, no restart.
  void expect_web_untouched() {
    Json w = web();
    EXPECT_EQ(control::pid_of(w), web_pid_) << w.dump();
    EXPECT_EQ(w["state"], "running") << w.dump();
    EXPECT_EQ(w["restarts"], 0) << w.dump();
    EXPECT_FALSE(process_dead(web_pid_));
  }
  std::size_t vigil_open_fds() const {
    std::size_t n = 0;
    std::error_code ec;
    for (auto it = fs::directory_iterator("/proc/" + std::to_string(vigil_->pid()) + "/fd", ec);
         !ec && it != fs::directory_iterator(); it.increment(ec))
      ++n;
    return n;
  }

  std::uint16_t port_ = 0;
  int web_pid_ = 0;
};

TEST_F(SecurityTest, ControlSocketIsPrivateEvenUnderUmaskZero) {
  const mode_t old = ::umask(0);
  start();
  ::umask(old);
  ASSERT_FALSE(HasFatalFailure());
  struct stat st {};
  ASSERT_EQ(::stat(socket().c_str(), &st), 0) << std::strerror(errno);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u) << std::oct << (st.st_mode & 07777);
  EXPECT_EQ(st.st_uid, ::getuid());
  EXPECT_TRUE(control::healthz(control::connect_unix(socket())));
}

TEST_F(SecurityTest, SecondVigilOnTheSameSocketRefusesToStart) {
  ASSERT_NO_FATAL_FAILURE(start());
  const fs::path pids = dir_ / "second.pids";
  // Its own program would start if it went on.
  const fs::path other =
      dir_.write("other.toml", "[vigil]\ncontrol_socket = " + toml_string(socket().string()) +
                                   "\n\n" + helper_program("second", {"--pidfile", pids.string()}));
  CommandResult second = run_vigil(dir_, {"run", "-c", other.string()});
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_NE(second.output.find("already running"), std::string::npos) << second.output;
  EXPECT_TRUE(read_pids(pids).empty()) << "the second vigil started a program";
  // The first one is untouched and still owns the socket.
  expect_serving("a second vigil");
  expect_web_untouched();
  EXPECT_TRUE(fs::is_socket(socket()));
}

TEST_F(SecurityTest, StaleSocketOfADeadVigilIsReplaced) {
  ASSERT_NO_FATAL_FAILURE(start());
  vigil_->signal(SIGKILL);
  ASSERT_EQ(vigil_->wait_exit(), 128 + SIGKILL);
  ASSERT_TRUE(fs::is_socket(socket())) << "a killed vigil leaves its socket file";
  EXPECT_FALSE(control::api_instances(socket())) << "nobody answers on it";

  vigil_ = VigilProcess::run(dir_, dir_ / "vigil.toml");
  Json all = control::wait_for_states(socket(), {{{"web", 0}, "running"}});
  EXPECT_EQ(control::find_instance(all, "web")["state"], "running")
      << all.dump() << vigil_->output();
  EXPECT_TRUE(vigil_->running()) << vigil_->output();
  EXPECT_NE(control::pid_of(control::find_instance(all, "web")), web_pid_);
}

TEST_F(SecurityTest, PostOverTcpNeedsTheToken) {
  ASSERT_NO_FATAL_FAILURE(start());
  RawReply none = tcp("POST", "/api/v1/programs/web/restart");
  EXPECT_EQ(none.status, 401) << none.text;
  EXPECT_NE(none.text.find("\"error\""), std::string::npos) << none.text;
  expect_web_untouched();

  for (std::string auth :
       {std::string("Bearer wrong"), "Bearer " + std::string(kToken) + "x",
        "Bearer " + std::string(kToken).substr(1), std::string("Basic ") + std::string(kToken),
        std::string(kToken), std::string("Bearer ")}) {
    RawReply wrong = tcp("POST", "/api/v1/programs/web/restart", auth);
    EXPECT_NE(wrong.status, 200) << "Authorization: " << auth << "\n" << wrong.text;
    if (wrong.status != 400) {
      EXPECT_EQ(wrong.status, 401) << "Authorization: " << auth << "\n" << wrong.text;
    }
  }
  RawReply reload = tcp("POST", "/api/v1/reload", "Bearer wrong");
  EXPECT_EQ(reload.status, 401) << reload.text;
  expect_web_untouched();

  // The token file's trailing newline is not part of the token.
  RawReply right = tcp("POST", "/api/v1/programs/web/restart", "Bearer " + std::string(kToken));
  EXPECT_EQ(right.status, 200) << right.text;
  EXPECT_TRUE(poll_until([&] {
    Json w = web();
    return w["state"] == "running" && control::pid_of(w) != web_pid_;
  })) << web().dump();
  EXPECT_EQ(web()["restarts_by_reason"]["manual"], 1);
}

TEST_F(SecurityTest, GetOverTcpNeedsNoToken) {
  ASSERT_NO_FATAL_FAILURE(start());
  RawReply programs = tcp("GET", "/api/v1/programs");
  ASSERT_EQ(programs.status, 200) << programs.text;
  EXPECT_NE(programs.text.find("\"name\":\"web\""), std::string::npos) << programs.text;
  EXPECT_EQ(tcp("GET", "/api/v1/programs/web").status, 200);
  EXPECT_EQ(tcp("GET", "/metrics").status, 200);
  EXPECT_EQ(tcp("GET", "/healthz").status, 200);
  EXPECT_EQ(tcp("GET", "/").status, 200);
  expect_web_untouched();
}

TEST_F(SecurityTest, WithoutTokenFilePostOverTcpIsAlwaysRefused) {
  ASSERT_NO_FATAL_FAILURE(start(/*with_token=*/false));
  for (std::string auth :
       {std::string(), std::string("Bearer "), "Bearer " + std::string(kToken)}) {
    RawReply r = tcp("POST", "/api/v1/programs/web/restart", auth);
    EXPECT_EQ(r.status, 401) << "Authorization: " << auth << "\n" << r.text;
  }
  EXPECT_EQ(tcp("POST", "/api/v1/reload").status, 401);
  expect_web_untouched();
  // The control socket needs no token.
  std::string error;
  auto r = control_request(socket(), "POST", "/api/v1/programs/web/restart", &error);
  ASSERT_TRUE(r) << error;
  EXPECT_EQ(r->status, 200) << r->body;
}

// The body of a whole reply parsed as JSON (which must be valid UTF-8:
// nlohmann's parser refuses anything else); null when it is not JSON.
Json json_body(const RawReply& r) {
  const auto end = r.text.find("\r\n\r\n");
  if (end == std::string::npos) return nullptr;
  try {
    return Json::parse(r.text.substr(end + 4));
  } catch (const std::exception&) {
    return nullptr;
  }
}

// A path that is not UTF-8 once decoded (`curl http://HOST/%ff`) is not
// found, said in valid JSON; and asking again and again writes nothing to
// vigil's log, so nobody without a token can grow it.
TEST_F(SecurityTest, NonUtf8PathsAreNotFoundInValidJsonAndNotLogged) {
  ASSERT_NO_FATAL_FAILURE(start());
  ASSERT_TRUE(control::healthz(connect_loopback(port_)));
  const std::string log_before = vigil_->output();

  const std::string replacement = "\xEF\xBF\xBD";  // U+FFFD, UTF-8
  for (int round = 0; round < 10; ++round) {
    for (std::string target : {"/%ff", "/%ff%fe?x=%ff", "/api/v1/programs/%ff",
                               "/api/v1/programs/web/%c3", "/api/v1/watches/%ff%ff"}) {
      RawReply r = tcp("GET", target);
      ASSERT_EQ(r.status, 404) << target << "\n" << r.text;
      EXPECT_NE(r.text.find("Content-Type: application/json"), std::string::npos) << r.text;
      Json j = json_body(r);
      ASSERT_TRUE(j.is_object() && j["error"].is_string()) << target << "\n" << r.text;
      EXPECT_NE(j["error"].get<std::string>().find(replacement), std::string::npos)
          << target << ": " << j["error"];
    }
    // Trusted and mutating: the name is looked up, and echoed, the same way.
    RawReply r = control::exchange(
        control::connect_unix(socket()),
        "POST /api/v1/programs/%ff/restart HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        "Content-Length: 0\r\n\r\n",
        false, 10s);
    ASSERT_EQ(r.status, 404) << r.text;
    EXPECT_TRUE(json_body(r).is_object()) << r.text;
  }
  expect_serving("non-UTF-8 paths");
  expect_web_untouched();
  const std::string log_after = vigil_->output();
  EXPECT_EQ(log_after.substr(std::min(log_before.size(), log_after.size())), "")
      << "vigil logged while answering 60 requests for non-UTF-8 paths";
}

// STATUS= text a child writes on fd 3 in no valid UTF-8 is still served as
// valid JSON by the API (and the status page).
TEST_F(SecurityTest, NonUtf8StatusTextIsServedAsValidJson) {
  // printf's octal escapes put raw bytes 0xE9, 0xFF, 0xFE on the pipe.
  run_vigil_with("[http]\nlisten = \"127.0.0.1:0\"\n\n[programs.talker]\ncommand = " +
                 toml_string("printf 'STATUS=caf\\351 \\377\\376 ok\\n' >&3; exec sleep 1000") +
                 "\n");
  ASSERT_TRUE(vigil_->wait_for_output("serving /metrics")) << vigil_->output();
  auto port = control::served_port(vigil_->output());
  ASSERT_TRUE(port) << vigil_->output();
  port_ = *port;
  Json talker;
  ASSERT_TRUE(poll_until([&] {
    RawReply r = tcp("GET", "/api/v1/programs");
    if (r.status != 200) return false;
    talker = control::find_instance(json_body(r), "talker");
    return talker.is_object() && talker["status_text"].is_string() &&
           talker["status_text"].get<std::string>().ends_with("ok");
  })) << talker.dump() << "\n" << vigil_->output();
  EXPECT_EQ(tcp("GET", "/api/v1/programs/talker").status, 200);
  EXPECT_EQ(tcp("GET", "/").status, 200);
  EXPECT_TRUE(vigil_->running());
}

// 10 MB announced and sent as the body of an authorized restart: refused
// before the handler runs (nothing restarts).
TEST_F(SecurityTest, HugeBodyIsRefused) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::string body(10 * 1000 * 1000, 'x');
  const std::string head =
      "POST /api/v1/programs/web/restart HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " +
      std::string(kToken) + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  for (bool unix_socket : {false, true}) {
    SCOPED_TRACE(unix_socket ? "control socket" : "TCP");
    RawReply r = control::exchange(
        unix_socket ? control::connect_unix(socket()) : connect_loopback(port_), head + body,
        false, 20s);
    ASSERT_TRUE(r.connected);
    EXPECT_FALSE(r.timed_out) << r.text;
    EXPECT_TRUE(refused(r)) << r.status << " " << r.text;
    expect_serving("a 10 MB body");
    expect_web_untouched();

    // Chunked, with no length announced.
    std::string chunked =
        "POST /api/v1/programs/web/restart HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " +
        std::string(kToken) + "\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 160; ++i) chunked += "10000\r\n" + std::string(0x10000, 'y') + "\r\n";
    chunked += "0\r\n\r\n";
    r = control::exchange(
        unix_socket ? control::connect_unix(socket()) : connect_loopback(port_), chunked, false,
        20s);
    EXPECT_FALSE(r.timed_out) << r.text;
    EXPECT_TRUE(refused(r)) << r.status << " " << r.text;
    expect_serving("a 10 MB chunked body");
    expect_web_untouched();
  }
}

TEST_F(SecurityTest, HeaderFloodIsRefused) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::string many = "GET /healthz HTTP/1.1\r\nHost: t\r\n";
  for (int i = 0; i < 10000; ++i) many += "X-Flood-" + std::to_string(i) + ": v\r\n";
  many += "\r\n";
  std::string huge =
      "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Huge: " + std::string(1 << 20, 'h') + "\r\n\r\n";
  std::string long_line = "GET /" + std::string(1 << 20, 'u') + " HTTP/1.1\r\nHost: t\r\n\r\n";
  for (bool unix_socket : {false, true}) {
    for (const auto* req : {&many, &huge, &long_line}) {
      SCOPED_TRACE(std::string(unix_socket ? "control socket: " : "TCP: ") + req->substr(0, 40));
      RawReply r = control::exchange(
          unix_socket ? control::connect_unix(socket()) : connect_loopback(port_), *req, false,
          20s);
      ASSERT_TRUE(r.connected);
      EXPECT_FALSE(r.timed_out) << r.text.substr(0, 200);
      EXPECT_TRUE(refused(r)) << r.status << " " << r.text.substr(0, 200);
      expect_serving("a header flood");
    }
  }
  expect_web_untouched();
}

// ---------------------------------------------------------------------------
// Fuzz-ish: 1,000 random or malformed requests to each listener

// Builds one hostile request. Paths never name an action, so even the
// trusted control socket has nothing to restart.
class RequestMaker {
 public:
  explicit RequestMaker(std::uint32_t seed) : rng_(seed) {}

  std::string next() {
    switch (pick(10)) {
      case 0:
        return random_bytes(1 + pick(2000));
      case 1:
        return truncated(request("GET", path()));
      case 2:
        return request(bad_method(), path());
      case 3:
        return request("GET",
                       "/" + std::string(1000 + pick(100000), 'a' + static_cast<char>(pick(26))));
      case 4:
        return bad_chunked();
      case 5:
        return request(pick(2) ? "GET" : "HEAD", path() + "?" + random_printable(pick(200)));
      case 6:
        return bad_version();
      case 7:
        return bad_headers();
      case 8:
        return with_noise(request(pick(2) ? "GET" : "POST", path()));
      default:
        return request(pick(2) ? "GET" : "OPTIONS", path());
    }
  }

 private:
  std::size_t pick(std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }
  std::string random_bytes(std::size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(pick(256));
    return s;
  }
  std::string random_printable(std::size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(0x21 + pick(94));
    return s;
  }
  std::string path() {
    static const char* kPaths[] = {"/",
                                   "/healthz",
                                   "/metrics",
                                   "/api/v1/programs",
                                   "/api/v1/programs/web",
                                   "/api/v1/programs/nosuch",
                                   "/api/v1",
                                   "/index.html",
                                   "/%zz%00",
                                   "/api/v1/programs/%2e%2e/%2e%2e",
                                   "*",
                                   "http://x/healthz",
                                   ""};
    return kPaths[pick(std::size(kPaths))];
  }
  std::string bad_method() {
    static const char* kMethods[] = {
        "FOO",   "G ET",  "get",     "DELETE",   "PUT",
        "PATCH", "TRACE", "CONNECT", "\x01\x02", "GETGETGETGETGETGETGETGETGETGETGETGETGETGET",
        "PRI"};
    return kMethods[pick(std::size(kMethods))];
  }
  std::string request(std::string_view method, std::string_view target) {
    return std::string(method) + " " + std::string(target) +
           " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  }
  std::string truncated(const std::string& full) { return full.substr(0, pick(full.size())); }
  std::string bad_chunked() {
    static const char* kChunks[] = {"zz\r\nabc\r\n0\r\n\r\n",
                                    "-1\r\nabc\r\n",
                                    "ffffffffffffffffff\r\nabc\r\n",
                                    "5\r\nab\r\n",
                                    "3\r\nabcdef\r\n0\r\n\r\n",
                                    "3;ext=\x01\r\nabc\r\n0\r\n\r\n",
                                    "0x10\r\n",
                                    "\r\n\r\n",
                                    "7fffffffffffffff\r\n"};
    return "POST /api/v1/programs HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
           std::string(kChunks[pick(std::size(kChunks))]);
  }
  std::string bad_version() {
    static const char* kVersions[] = {"HTTP/9.9",  "HTTP/1",   "HTTP/1.1.1",
                                      "HTTP/-1.1", "HTP/1.1",  "HTTP/1.1 extra",
                                      "",          "HTTP/0.9", "HTTP/1.10000000000000000000"};
    return "GET /healthz " + std::string(kVersions[pick(std::size(kVersions))]) +
           "\r\nHost: t\r\n\r\n";
  }
  std::string bad_headers() {
    static const char* kHeaders[] = {"NoColon\r\n",
                                     ": empty-name\r\n",
                                     "Content-Length: -5\r\n",
                                     "Content-Length: 99999999999999999999\r\n",
                                     "Content-Length: 5\r\nContent-Length: 6\r\n",
                                     " folded\r\n",
                                     "Transfer-Encoding: gzip, chunked\r\n",
                                     "Host: \x7f\xff\r\n",
                                     "Expect: 100-continue\r\nContent-Length: 10\r\n"};
    std::string h;
    for (std::size_t i = 0, n = 1 + pick(4); i < n; ++i) h += kHeaders[pick(std::size(kHeaders))];
    return "POST /healthz HTTP/1.1\r\nHost: t\r\n" + h + "\r\n";
  }
  std::string with_noise(std::string s) {
    for (std::size_t i = 0, n = 1 + pick(8); i < n && !s.empty(); ++i)
      s[pick(s.size())] = static_cast<char>(pick(256));
    return s;
  }

  std::mt19937 rng_;
};

TEST_F(SecurityTest, ThousandMalformedRequestsOnEachListenerLeaveVigilServing) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::size_t fds_before = vigil_open_fds();

  // Slowloris: partial requests held open over the whole run.
  std::vector<UniqueFd> slow;
  for (int i = 0; i < 40; ++i) {
    UniqueFd fd = i % 2 ? control::connect_unix(socket()) : connect_loopback(port_);
    ASSERT_TRUE(fd) << "connection " << i << " refused";
    const std::string part =
        i % 4 < 2 ? "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: aaa" : "POST /api/v1/progr";
    ASSERT_EQ(::send(fd.get(), part.data(), part.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(part.size()));
    slow.push_back(std::move(fd));
  }

  RequestMaker maker(20240611);
  int answered = 0, closed = 0;
  const auto t0 = SteadyClock::now();
  for (int n = 0; n < 1000; ++n) {
    for (bool unix_socket : {false, true}) {
      const std::string req = maker.next();
      // Half-closed after the request: a truncated one ends there instead
      // of waiting for the idle timeout. Each is bounded by its deadline.
      RawReply r = control::exchange(
          unix_socket ? control::connect_unix(socket()) : connect_loopback(port_), req, true,
          5s);
      ASSERT_TRUE(r.connected) << "request " << n << ": vigil no longer accepts\n"
                               << vigil_->output();
      ASSERT_FALSE(r.timed_out) << "request " << n << " got no answer nor close in 5s: "
                                << ::testing::PrintToString(req.substr(0, 200));
      if (r.status != 0) ++answered;
      if (r.closed) ++closed;
    }
    if (n % 100 == 99) {
      ASSERT_TRUE(control::healthz(connect_loopback(port_))) << "after request " << n;
      ASSERT_TRUE(control::healthz(control::connect_unix(socket()))) << "after request " << n;
    }
  }
  const auto took = SteadyClock::now() - t0;
  EXPECT_GT(answered, 100) << "most requests should get an HTTP answer (even an error)";
  EXPECT_EQ(closed, 2000) << "every connection ends";
  EXPECT_LT(took, 60s);

  // With the slow ones still open, vigil serves; the children never noticed.
  expect_serving("1,000 malformed requests with slowloris connections open");
  expect_web_untouched();
  std::string error;
  auto status = control_request(socket(), "GET", "/api/v1/programs", &error);
  ASSERT_TRUE(status) << error;
  EXPECT_EQ(status->status, 200);

  // Once the clients are gone, so are vigil's fds for them.
  slow.clear();
  EXPECT_TRUE(poll_until([&] { return vigil_open_fds() <= fds_before; }))
      << "vigil holds " << vigil_open_fds() << " fds, " << fds_before << " before";
}

}  // namespace
}  // namespace vigil::it
