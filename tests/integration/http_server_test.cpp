// HttpServer in-process on a real loop, with real loopback clients: the cap
// on open connections (the oldest is closed, and counted), the count itself
// (a kept-alive client is one connection however many requests it makes;
// closed ones are forgotten), and responses that still arrive whole through
// the per-connection bufferevents the count needs ("Connection: close", a
// slow reader), and requests whose client half-closes right after sending
// them (`nc -N`), answered whole on TCP and AF_UNIX. The loop runs in the test thread: clients are non-blocking
// and every wait is the loop run until a condition, bounded.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "fd.h"
#include "harness.h"
#include "http_server.h"
#include "listen_address.h"

namespace vigil::it {
namespace {

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A client that leaves mid-response must not kill the test (vigil
    // itself ignores SIGPIPE).
    old_sigpipe_ = ::signal(SIGPIPE, SIG_IGN);
  }
  void TearDown() override {
    clients_.clear();
    server_.reset();
    loop_.reset();  // frees what libevent still finalizes
    EXPECT_EQ(fds_.leaks(), "") << "fds opened during the test and still open";
    ::signal(SIGPIPE, old_sigpipe_);
  }

  // Serves "hello PATH\n", or `body_size` bytes of 'x' for /big.
  void start(std::size_t max_connections) {
    HttpLimits limits;
    limits.max_connections = max_connections;
    server_ = std::make_unique<HttpServer>(
        *loop_,
        [this](const HttpRequest& r) {
          HttpResponse resp;
          if (r.path == "/throw") throw std::runtime_error("cannot \xff");
          resp.body = r.path == "/big" ? std::string(body_size_, 'x') : "hello " + r.path + "\n";
          return resp;
        },
        limits);
    if (unix_socket_)
      server_->listen_unix(dir_ / "http.sock");
    else
      server_->listen_tcp(*parse_listen_address("127.0.0.1:0", nullptr));
  }

  // A connected, non-blocking client (the handshake completes in the
  // kernel's backlog, whether or not the server accepted yet).
  int connect_client() {
    UniqueFd fd = unix_socket_ ? connect_unix() : connect_loopback(server_->port());
    EXPECT_TRUE(fd) << std::strerror(errno);
    if (fd) set_nonblocking(fd.get());
    clients_.push_back(std::move(fd));
    return clients_.back().get();
  }

  // To the server's AF_UNIX socket (blocking connect: the backlog has room).
  UniqueFd connect_unix() {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, (dir_ / "http.sock").c_str(), sizeof sa.sun_path - 1);
    if (fd && ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) fd.reset();
    return fd;
  }

  bool run_until(const std::function<bool()>& pred) { return loop_->run_until(pred, kEventually); }

  // What one non-blocking read says: data appended to `in`, EOF, or nothing yet.
  enum class Read { data, eof, nothing };
  static Read read_some(int fd, std::string& in, std::size_t at_most = 65536) {
    std::string buf(at_most, '\0');
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n > 0) {
      in.append(buf.data(), static_cast<std::size_t>(n));
      return Read::data;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return Read::eof;
    return Read::nothing;
  }

  bool send_all(int fd, const std::string& data) {
    std::size_t sent = 0;
    return run_until([&] {
      ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<std::size_t>(n);
      return sent == data.size();
    });
  }

  // The response read whole (by its Content-Length) from a kept-alive
  // connection: status line and headers, then body. nullopt on EOF first or
  // timeout.
  struct Reply {
    std::string head;
    std::string body;
  };
  std::optional<Reply> get(int fd, const std::string& path) {
    if (!send_all(fd, "GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n")) return std::nullopt;
    std::string in;
    bool eof = false;
    std::optional<Reply> reply;
    run_until([&] {
      while (!eof) {
        Read r = read_some(fd, in);
        if (r == Read::eof) eof = true;
        if (r != Read::data) break;
      }
      auto end = in.find("\r\n\r\n");
      if (end == std::string::npos) return eof;
      auto at = in.find("Content-Length: ");
      if (at == std::string::npos || at > end) return true;
      std::size_t length = std::stoul(in.substr(at + 16));
      if (in.size() < end + 4 + length) return eof;
      reply = Reply{in.substr(0, end), in.substr(end + 4, length)};
      return true;
    });
    return reply;
  }

  // Everything until EOF (nullopt at the deadline), reading at most
  // `per_turn` bytes a loop turn.
  std::optional<std::string> read_to_eof(int fd, std::size_t per_turn = 1 << 20) {
    std::string in;
    bool eof = run_until([&] {
      for (std::size_t got = 0; got < per_turn;) {
        std::size_t before = in.size();
        Read r = read_some(fd, in, std::min<std::size_t>(65536, per_turn - got));
        if (r == Read::eof) return true;
        if (r == Read::nothing) return false;
        got += in.size() - before;
      }
      return false;
    });
    if (!eof) return std::nullopt;
    return in;
  }

  // Reads (and drops) what the client has; true when the server closed it.
  static bool at_eof(int fd) {
    std::string ignored;
    for (;;) {
      Read r = read_some(fd, ignored);
      if (r != Read::data) return r == Read::eof;
    }
  }

  // A response read to EOF, whole: "" when it is, else what is wrong with it.
  static std::string whole_response(const std::string& in, const std::string& status_line,
                                    const std::string& body) {
    const auto end = in.find("\r\n\r\n");
    if (end == std::string::npos) return "no complete head in " + std::to_string(in.size()) + " bytes";
    const std::string head = in.substr(0, end);
    if (head.rfind(status_line + "\r\n", 0) != 0) return "status line: " + head.substr(0, 40);
    if ((head + "\r\n").find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n") ==
        std::string::npos)
      return "Content-Length is not " + std::to_string(body.size()) + ": " + head;
    if (in.size() - end - 4 != body.size())
      return "body of " + std::to_string(in.size() - end - 4) + " bytes, not " +
             std::to_string(body.size());
    if (in.compare(end + 4, std::string::npos, body) != 0) return "body differs";
    return "";
  }

  // Sends `request`, half-closes, reads to EOF; "" when `status_line` and
  // `body` came whole, else what went wrong.
  std::string half_closed_exchange(const std::string& request, const std::string& status_line,
                                   const std::string& body) {
    const int fd = connect_client();
    if (!send_all(fd, request)) return "could not send the request";
    if (::shutdown(fd, SHUT_WR) != 0) return std::string("shutdown: ") + std::strerror(errno);
    auto in = read_to_eof(fd);
    clients_.pop_back();
    if (!in) return "no EOF before the deadline";
    return whole_response(*in, status_line, body);
  }

  TempDir dir_;
  bool unix_socket_ = false;  // start() listens on dir_/http.sock instead of TCP
  FdLeakCheck fds_;
  std::unique_ptr<EventLoop> loop_ = std::make_unique<EventLoop>();
  std::unique_ptr<HttpServer> server_;
  std::vector<UniqueFd> clients_;
  std::size_t body_size_ = 0;
  sighandler_t old_sigpipe_ = SIG_DFL;
};

TEST_F(HttpServerTest, NewConnectionBeyondTheCapClosesTheOldest) {
  ASSERT_NO_FATAL_FAILURE(start(4));
  std::vector<int> fds;
  for (int k = 0; k < 4; ++k) {
    fds.push_back(connect_client());
    // One at a time: the server takes them in this order.
    ASSERT_TRUE(run_until([&] { return server_->connections() == fds.size(); }))
        << server_->connections();
  }
  EXPECT_EQ(server_->dropped(), 0u);

  const int newest = connect_client();
  ASSERT_TRUE(run_until([&] { return server_->dropped() == 1 && at_eof(fds[0]); }))
      << "the oldest was not closed; dropped " << server_->dropped();
  // evhttp has freed the evicted one: the count is back at the cap.
  ASSERT_TRUE(run_until([&] { return server_->connections() == 4; })) << server_->connections();
  for (int k = 1; k < 4; ++k)
    EXPECT_FALSE(at_eof(fds[k])) << "connection " << k << " was closed too";

  auto reply = get(newest, "/newest");
  ASSERT_TRUE(reply) << "no answer on the newest connection";
  EXPECT_EQ(reply->head.substr(0, 12), "HTTP/1.1 200") << reply->head;
  EXPECT_EQ(reply->body, "hello /newest\n");
  EXPECT_EQ(server_->connections(), 4u);
  EXPECT_EQ(server_->dropped(), 1u);

  // Closed by the clients: the server forgets each one (its bufferevents
  // were freed, which is what the count hangs on).
  clients_.clear();
  EXPECT_TRUE(run_until([&] { return server_->connections() == 0; })) << server_->connections();
  EXPECT_EQ(server_->dropped(), 1u);
}

TEST_F(HttpServerTest, EachNewConnectionBeyondTheCapClosesOneMore) {
  ASSERT_NO_FATAL_FAILURE(start(4));
  // Twelve at once: the server may take several in one loop turn, before
  // evhttp has freed the ones it evicted.
  std::vector<int> fds;
  for (int k = 0; k < 12; ++k) fds.push_back(connect_client());
  ASSERT_TRUE(run_until([&] { return server_->dropped() == 8 && server_->connections() == 4; }))
      << "dropped " << server_->dropped() << ", open " << server_->connections();
  for (int k = 0; k < 8; ++k) EXPECT_TRUE(run_until([&] { return at_eof(fds[k]); })) << k;
  for (int k = 8; k < 12; ++k) EXPECT_FALSE(at_eof(fds[k])) << k;
  for (int k = 8; k < 12; ++k) {
    auto reply = get(fds[k], "/" + std::to_string(k));
    ASSERT_TRUE(reply) << k;
    EXPECT_EQ(reply->body, "hello /" + std::to_string(k) + "\n");
  }
}

TEST_F(HttpServerTest, KeptAliveClientIsOneConnection) {
  ASSERT_NO_FATAL_FAILURE(start(4));
  const int fd = connect_client();
  for (int k = 0; k < 5; ++k) {
    auto reply = get(fd, "/" + std::to_string(k));
    ASSERT_TRUE(reply) << "request " << k;
    EXPECT_EQ(reply->body, "hello /" + std::to_string(k) + "\n");
    EXPECT_EQ(server_->connections(), 1u) << "after request " << k;
  }
  EXPECT_EQ(server_->requests(), 5u);
  EXPECT_EQ(server_->dropped(), 0u);
  clients_.clear();
  EXPECT_TRUE(run_until([&] { return server_->connections() == 0; }));
}

// The server closes right after answering "Connection: close" (and HTTP/1.0):
// the response must be in the kernel by then, not in a buffer of libevent's.
TEST_F(HttpServerTest, ResponseBeforeCloseArrivesWhole) {
  ASSERT_NO_FATAL_FAILURE(start(4));
  body_size_ = 4 << 20;
  for (const char* request : {"GET /big HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
                              "GET /big HTTP/1.0\r\n\r\n"}) {
    const int fd = connect_client();
    ASSERT_TRUE(send_all(fd, request));
    auto in = read_to_eof(fd);
    ASSERT_TRUE(in) << request;
    auto end = in->find("\r\n\r\n");
    ASSERT_NE(end, std::string::npos) << request;
    EXPECT_EQ(in->size() - end - 4, body_size_) << request;
    EXPECT_EQ(in->find_first_not_of('x', end + 4), std::string::npos) << request;
  }
  EXPECT_TRUE(run_until([&] { return server_->connections() == 0; }));
}

TEST_F(HttpServerTest, SlowReaderGetsAWholeLargeResponse) {
  ASSERT_NO_FATAL_FAILURE(start(4));
  body_size_ = 16 << 20;  // far more than the socket buffers hold
  const int fd = connect_client();
  ASSERT_TRUE(send_all(fd, "GET /big HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"));
  auto in = read_to_eof(fd, 256 * 1024);
  ASSERT_TRUE(in);
  auto end = in->find("\r\n\r\n");
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(in->size() - end - 4, body_size_);
}

TEST_F(HttpServerTest, ClientLeavingMidResponseIsForgotten) {
  ASSERT_NO_FATAL_FAILURE(start(4));
  body_size_ = 32 << 20;
  const int fd = connect_client();
  ASSERT_TRUE(send_all(fd, "GET /big HTTP/1.1\r\nHost: test\r\n\r\n"));
  std::string in;
  ASSERT_TRUE(run_until([&] {
    read_some(fd, in);
    return in.size() > 100000;
  }));
  // A reset, not a FIN: the server's next write fails.
  linger hard{1, 0};
  ASSERT_EQ(::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard), 0);
  clients_.clear();
  EXPECT_TRUE(run_until([&] { return server_->connections() == 0; })) << server_->connections();
}

// The oldest connection is evicted while its large response waits for the
// client to read: its socket is shut down under the pending write, and evhttp
// still frees it.
TEST_F(HttpServerTest, ConnectionEvictedMidResponseIsFreed) {
  ASSERT_NO_FATAL_FAILURE(start(1));
  body_size_ = 32 << 20;
  const int busy = connect_client();
  ASSERT_TRUE(send_all(busy, "GET /big HTTP/1.1\r\nHost: test\r\n\r\n"));
  ASSERT_TRUE(run_until([&] { return server_->requests() == 1; }));
  const int newest = connect_client();
  ASSERT_TRUE(run_until([&] { return server_->dropped() == 1 && server_->connections() == 1; }))
      << "dropped " << server_->dropped() << ", open " << server_->connections();
  auto reply = get(newest, "/after");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->body, "hello /after\n");
}

// The server goes first, with connections open and one mid-response: no fd
// and no memory stays behind (TearDown checks fds; ASan checks leaks).
TEST_F(HttpServerTest, ServerDestroyedWithConnectionsOpen) {
  ASSERT_NO_FATAL_FAILURE(start(4));
  body_size_ = 32 << 20;
  const int idle = connect_client();
  const int busy = connect_client();
  ASSERT_TRUE(send_all(busy, "GET /big HTTP/1.1\r\nHost: test\r\n\r\n"));
  ASSERT_TRUE(run_until([&] { return server_->requests() == 1 && server_->connections() == 2; }));
  server_.reset();
  EXPECT_TRUE(run_until([&] { return at_eof(idle); }));
}

// A handler that throws (here with bytes that are not UTF-8 in its message)
// gets each request answered 500 with a JSON error, counted, and logged once
// for the streak rather than once per request.
TEST_F(HttpServerTest, ThrowingHandlerAnswersJson500AndLogsOnce) {
  std::ostringstream log;
  struct RestoreLogger {
    std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
    ~RestoreLogger() { spdlog::set_default_logger(previous); }
  } restore;
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_st>(log)));
  ASSERT_NO_FATAL_FAILURE(start(4));
  const int fd = connect_client();
  for (int k = 0; k < 5; ++k) {
    ASSERT_TRUE(send_all(fd, "GET /throw HTTP/1.1\r\nHost: test\r\n\r\n"));
    std::string in;
    std::optional<Reply> reply;
    ASSERT_TRUE(run_until([&] {
      read_some(fd, in);
      auto end = in.find("\r\n\r\n");
      if (end == std::string::npos) return false;
      auto at = in.find("Content-Length: ");
      if (at == std::string::npos) return false;
      std::size_t length = std::stoul(in.substr(at + 16));
      if (in.size() < end + 4 + length) return false;
      reply = Reply{in.substr(0, end), in.substr(end + 4, length)};
      return true;
    })) << "request " << k;
    EXPECT_EQ(reply->head.substr(0, 12), "HTTP/1.1 500") << reply->head;
    EXPECT_NE(reply->head.find("Content-Type: application/json"), std::string::npos);
    auto body = nlohmann::json::parse(reply->body, nullptr, false);
    EXPECT_TRUE(body.is_object() && body["error"].is_string()) << reply->body;
  }
  EXPECT_EQ(server_->handler_errors(), 5u);
  EXPECT_EQ(server_->requests(), 5u);
  auto reply = get(fd, "/after");  // the connection still serves
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->body, "hello /after\n");
  const std::string text = log.str();
  std::size_t lines = 0;
  for (std::size_t at = 0; (at = text.find("HTTP handler failed", at)) != std::string::npos; ++at)
    ++lines;
  EXPECT_EQ(lines, 1u) << text;
}

// A client that half-closes right after its request (`nc -N`, socat, shell
// health checks) sends EOF behind it: every such request is answered whole,
// on TCP and on the control socket's AF_UNIX, with the cap in force.
class HttpServerHalfCloseTest : public HttpServerTest,
                                public ::testing::WithParamInterface<bool> {
 protected:
  void SetUp() override {
    HttpServerTest::SetUp();
    unix_socket_ = GetParam();
  }
};

TEST_P(HttpServerHalfCloseTest, FiftyHalfClosedRequestsAreAllAnswered) {
  ASSERT_NO_FATAL_FAILURE(start(4));
  int answered = 0;
  std::string first_failure;
  for (int k = 0; k < 50; ++k) {
    const std::string path = "/" + std::to_string(k);
    std::string why = half_closed_exchange("GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n",
                                           "HTTP/1.1 200 OK", "hello " + path + "\n");
    if (why.empty())
      ++answered;
    else if (first_failure.empty())
      first_failure = "request " + std::to_string(k) + ": " + why;
  }
  EXPECT_EQ(answered, 50) << first_failure;
  EXPECT_EQ(server_->requests(), 50u);
  EXPECT_EQ(server_->dropped(), 0u);
  EXPECT_TRUE(run_until([&] { return server_->connections() == 0; })) << server_->connections();
}

TEST_P(HttpServerHalfCloseTest, HalfClosedHttp10RequestIsAnswered) {
  ASSERT_NO_FATAL_FAILURE(start(4));
  EXPECT_EQ(half_closed_exchange("GET /old HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK", "hello /old\n"),
            "");
  EXPECT_EQ(half_closed_exchange("GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                                 "HTTP/1.0 200 OK", "hello /old\n"),
            "");
}

// Kept alive for a first request, half-closed after the second.
TEST_P(HttpServerHalfCloseTest, KeptAliveThenHalfClosedIsAnswered) {
  ASSERT_NO_FATAL_FAILURE(start(4));
  const int fd = connect_client();
  auto first = get(fd, "/first");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body, "hello /first\n");
  ASSERT_TRUE(send_all(fd, "GET /second HTTP/1.1\r\nHost: test\r\nConnection: keep-alive\r\n\r\n"));
  ASSERT_EQ(::shutdown(fd, SHUT_WR), 0) << std::strerror(errno);
  auto in = read_to_eof(fd);
  ASSERT_TRUE(in) << "no EOF before the deadline";
  EXPECT_EQ(whole_response(*in, "HTTP/1.1 200 OK", "hello /second\n"), "");
  EXPECT_EQ(server_->requests(), 2u);
}

// More than the socket buffers hold: the EOF waits behind all of it.
TEST_P(HttpServerHalfCloseTest, HalfClosedRequestGetsAWholeLargeResponse) {
  ASSERT_NO_FATAL_FAILURE(start(4));
  body_size_ = 8 << 20;
  EXPECT_EQ(half_closed_exchange("GET /big HTTP/1.1\r\nHost: test\r\n\r\n", "HTTP/1.1 200 OK",
                                 std::string(body_size_, 'x')),
            "");
}

INSTANTIATE_TEST_SUITE_P(Transports, HttpServerHalfCloseTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Unix" : "Tcp"; });

}  // namespace
}  // namespace vigil::it
