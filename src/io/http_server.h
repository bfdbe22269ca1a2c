// A small HTTP/1.1 server on the loop (libevent evhttp) for /metrics, the
// API and the status page. Bounded: header and body size caps and an idle
// timeout, so a slow or hostile client costs an fd and nothing else; the
// handler runs synchronously and must not block.
//
// And a cap on open connections (HttpLimits::max_connections, 256 per
// server): a connection beyond it closes the oldest one, so a flood of idle
// clients cannot take every fd and shut out the scrape or the CLI. Evicting
// is a shutdown() of the oldest socket: evhttp sees EOF and frees the
// connection itself, as for a client that left; each one is counted
// (dropped()) and logged, once when a streak starts and then at most once a
// minute. libevent 2.1 evhttp keeps no count and has no such setting: each
// accepted connection gets its bufferevent from HttpServer
// (evhttp_set_bevcb), a filter over a socket bufferevent whose free callback
// tells the server evhttp let go of it (and whose output path HttpServer
// supplies: see HttpConnection in http_server.cpp). A client that
// half-closes right after its request (`nc -N`) is answered whole: the
// socket is not read while a response waits to be written.
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "event_loop.h"
#include "fd.h"
#include "listen_address.h"

struct evhttp;
struct evhttp_request;
struct evconnlistener;
struct evhttp_bound_socket;
struct event_base;
struct bufferevent;

namespace vigil {

struct HttpRequest {
  std::string method;  // "GET", "HEAD", "POST", ...
  std::string path;    // decoded path, e.g. "/api/v1/programs/web"
  std::string query;   // raw query string, without '?'
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  bool trusted = false;  // came through the control socket (AF_UNIX, mode 0600)

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
  // Value of `name` in the query string ("dry_run=1"), "" when absent.
  std::string query_param(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Sent after `body` as they are, by reference: pieces shared with a cache
  // (/metrics), megabytes that need no copy into one string.
  std::vector<std::shared_ptr<const std::string>> body_parts;
  std::map<std::string, std::string> headers;

  std::size_t body_size() const;

  static HttpResponse json(int status, std::string body);
  static HttpResponse error(int status, const std::string& message);  // {"error": "..."}
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpLimits {
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 64 * 1024;
  int idle_timeout_seconds = 10;
  // Open connections at most; one more closes the oldest. 0: no cap.
  std::size_t max_connections = 256;
};

// One accepted connection (defined in http_server.cpp).
struct HttpConnection;

// Connections in accept order, oldest first; intrusive, so adding, removing
// any one and finding the oldest are O(1).
class HttpConnectionList {
 public:
  void push_back(HttpConnection* c);
  void remove(HttpConnection* c);
  HttpConnection* front() const { return head_; }
  std::size_t size() const { return size_; }

 private:
  HttpConnection* head_ = nullptr;
  HttpConnection* tail_ = nullptr;
  std::size_t size_ = 0;
};

class HttpServer {
 public:
  HttpServer(EventLoop& loop, HttpHandler handler, HttpLimits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; throws std::runtime_error with a readable message
  // ("cannot listen on 127.0.0.1:9321: Address already in use").
  void listen_tcp(const ListenAddress& address);
  // AF_UNIX control socket, created with mode 0600 whatever the umask.
  // A stale socket file (nobody answering) is replaced; a live one is an
  // error ("another vigil is already running on ...").
  void listen_unix(const std::filesystem::path& path);

  // Serves a listening socket an earlier vigil of this process bound (kept
  // across exec by `vigil upgrade`): TCP, or the control socket at `path`.
  void adopt_tcp(UniqueFd fd);
  void adopt_unix(UniqueFd fd, const std::filesystem::path& path);
  // The listening socket, -1 before listen (kept across exec).
  int listen_fd() const;

  std::uint16_t port() const { return port_; }  // the bound TCP port (for port 0)
  std::uint64_t requests() const { return requests_; }
  // accept() failures (out of fds, ...): each one pauses accepting.
  std::uint64_t accept_errors() const { return accept_errors_; }
  // Connections open now. An evicted one counts until evhttp has freed it
  // (the same loop turn, or the next), so this can pass the cap briefly.
  std::uint64_t connections() const { return open_.size() + closing_.size(); }
  // Connections closed because a new one came with the cap reached.
  std::uint64_t dropped() const { return dropped_; }
  // Requests the handler threw on (each answered 500).
  std::uint64_t handler_errors() const { return handler_errors_; }

  // How long accepting pauses after accept() fails. Without the pause, a
  // listener whose backlog holds a connection it cannot take (EMFILE) is
  // readable forever: the loop would spin and libevent warn on every turn.
  static constexpr Duration kAcceptPause = std::chrono::milliseconds(500);

 private:
  static void on_request(evhttp_request* req, void* arg);
  static void on_accept_error(evconnlistener* listener, void* arg);
  static bufferevent* on_new_connection(event_base* base, void* arg);
  static void on_connection_freed(void* arg);
  void handle(evhttp_request* req);
  void watch_accept_errors(evhttp_bound_socket* bound_socket);
  void evict_oldest();
  HttpResponse handler_failed(const char* what);

  EventLoop& loop_;
  HttpHandler handler_;
  evhttp* http_ = nullptr;
  bool trusted_ = false;
  std::uint16_t port_ = 0;
  std::filesystem::path unix_path_;
  std::uint64_t requests_ = 0;
  evconnlistener* listener_ = nullptr;  // owned by http_
  std::uint64_t accept_errors_ = 0;
  std::chrono::steady_clock::time_point last_accept_error_{};
  std::chrono::steady_clock::time_point last_accept_warning_{};
  Timer resume_accept_;
  HttpLimits limits_;
  HttpConnectionList open_;     // oldest first
  HttpConnectionList closing_;  // evicted, until evhttp frees them
  std::uint64_t dropped_ = 0;
  std::chrono::steady_clock::time_point last_drop_{};
  std::chrono::steady_clock::time_point last_drop_warning_{};
  std::uint64_t handler_errors_ = 0;
  std::chrono::steady_clock::time_point last_handler_error_{};
  std::chrono::steady_clock::time_point last_handler_error_log_{};
};

}  // namespace vigil
