// evhttp glue. Every request is answered; a throwing handler becomes a JSON
// 500, counted and logged at most once a minute.
#include "http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <unordered_map>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "api_json.h"

namespace vigil {

namespace {

std::string method_name(evhttp_cmd_type t) {
  switch (t) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
  }
  return "UNKNOWN";
}

// The listener's user data is evhttp's own: its error callback finds the
// server here (one thread, one loop: no lock).
std::unordered_map<evconnlistener*, HttpServer*>& servers_by_listener() {
  static std::unordered_map<evconnlistener*, HttpServer*> m;
  return m;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
  }
  return "Status";
}

// Bodies at least this large are sent by reference (HttpServer::handle).
constexpr std::size_t kBodyByReference = 64 * 1024;

void free_part(const void*, size_t, void* held) {
  delete static_cast<std::shared_ptr<const std::string>*>(held);
}

}  // namespace

// What evhttp holds for one connection is a filter bufferevent over a socket
// bufferevent (made by HttpServer::on_new_connection): the filter's
// free_context, HttpServer::on_connection_freed, runs when evhttp has freed
// the connection, however it ended. Reading goes through the filter as
// through a socket bufferevent. Writing cannot: in libevent 2.1.12 a filter
// (1) moves output only while its EV_WRITE is enabled, and evhttp adds a
// response first and enables EV_WRITE after, so the response would sit
// there until the idle timeout; and (2) reports "written" once the output is
// in the socket bufferevent's buffer, not in the kernel, so evhttp, closing a
// "Connection: close" connection at once (shutdown(SHUT_WR) first), would
// lose the response. So the filter's output function writes to the socket
// itself (evbuffer_write), only from `writable`, an EV_WRITE event of ours on
// the socket armed whenever output is added or the kernel buffer is full:
// "written" then means in the kernel, as with a socket bufferevent.
//
// A client that half-closes after its request (`nc -N`, socat, shell health
// checks) sends EOF right behind it. evhttp, hearing EOF while a response is
// unwritten, drops the connection and the response (it takes EOF as the
// client gone); with the write a loop turn later here, that would be every
// time. So reading from the socket stops while output waits (`reads_held`)
// and resumes once it is all in the kernel: the EOF then reaches evhttp after
// the response, as a close after it.
struct HttpConnection {
  HttpServer* server = nullptr;   // null once the server is gone
  bufferevent* filter = nullptr;  // evhttp's
  bufferevent* socket = nullptr;  // the filter's underlying one; owns the fd
  event* writable = nullptr;      // made on first use
  bool armed = false;             // writable pending: holds a reference on filter
  bool writing = false;           // inside on_writable's flush
  bool evicted = false;           // in server->closing_, else in server->open_
  bool reads_held = false;        // socket reading stopped by hold_reads
  timeval wait{};                 // how long writable waits at most
  HttpConnection* prev = nullptr;
  HttpConnection* next = nullptr;

  static void on_output_added(evbuffer*, const evbuffer_cb_info* info, void* arg);
  static void on_writable(evutil_socket_t, short, void* arg);
  static bufferevent_filter_result write_output(evbuffer* src, evbuffer* dst, ev_ssize_t limit,
                                                bufferevent_flush_mode mode, void* arg);
  void arm();
  // Stops and resumes reading the socket (see above). Resuming never reads
  // at once: it only waits for the socket again.
  void hold_reads();
  void release_reads();
  // Drops the reference `armed` holds. Last thing to do: the connection may
  // end with it.
  void disarm();
};

void HttpConnection::arm() {
  if (armed) return;
  const evutil_socket_t fd = bufferevent_getfd(socket);
  if (fd < 0) return;
  if (!writable)
    writable = event_new(bufferevent_get_base(filter), fd, EV_WRITE, &on_writable, this);
  if (!writable) return;
  // The reference keeps filter (and this) alive while the event is pending,
  // even if evhttp frees the connection meanwhile.
  bufferevent_incref(filter);
  armed = true;
  // Bounded: a socket nobody reads that evhttp has given up on (after its
  // own timeout) must not be kept forever.
  event_add(writable, &wait);
}

void HttpConnection::hold_reads() {
  if (reads_held || !(bufferevent_get_enabled(socket) & EV_READ)) return;
  // The filter suspends and resumes the socket's reading on its own
  // (evhttp's EV_READ); a disabled bufferevent stays off through that.
  bufferevent_disable(socket, EV_READ);
  reads_held = true;
}

void HttpConnection::release_reads() {
  if (!reads_held) return;
  reads_held = false;
  bufferevent_enable(socket, EV_READ);
}

void HttpConnection::disarm() {
  if (!armed) return;
  armed = false;
  event_del(writable);
  bufferevent_decref(filter);
}

void HttpConnection::on_output_added(evbuffer*, const evbuffer_cb_info* info, void* arg) {
  if (info->n_added == 0) return;
  auto* c = static_cast<HttpConnection*>(arg);
  c->hold_reads();
  c->arm();
}

void HttpConnection::on_writable(evutil_socket_t, short, void* arg) {
  auto* c = static_cast<HttpConnection*>(arg);
  // Still evhttp's? bufferevent_free clears the callbacks, and evhttp always
  // sets an event callback.
  bufferevent_event_cb eventcb = nullptr;
  bufferevent_getcb(c->filter, nullptr, nullptr, &eventcb, nullptr);
  if (eventcb && (bufferevent_get_enabled(c->filter) & EV_WRITE)) {
    // Dropped before flushing: write_output may arm again.
    c->armed = false;
    c->writing = true;
    bufferevent_flush(c->filter, EV_WRITE, BEV_NORMAL);  // runs write_output
    c->writing = false;
    bufferevent_decref(c->filter);
    return;
  }
  c->disarm();
}

bufferevent_filter_result HttpConnection::write_output(evbuffer* src, evbuffer*, ev_ssize_t,
                                                       bufferevent_flush_mode, void* arg) {
  auto* c = static_cast<HttpConnection*>(arg);
  // Added output arms `writable`; only its flush writes.
  if (!c->writing) return BEV_NEED_MORE;
  const evutil_socket_t fd = bufferevent_getfd(c->socket);
  bool wrote = false;
  while (evbuffer_get_length(src) > 0) {
    const int n = evbuffer_write(src, fd);
    if (n > 0) {
      wrote = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      c->arm();
      // BEV_OK resets the write timeout; the filter reports "written" only
      // once src is empty.
      return wrote ? BEV_OK : BEV_NEED_MORE;
    }
    // The peer is gone (EPIPE, ECONNRESET): evhttp hears it as from a socket
    // bufferevent, on a later turn.
    evbuffer_drain(src, evbuffer_get_length(src));
    bufferevent_trigger_event(c->filter, BEV_EVENT_WRITING | BEV_EVENT_ERROR,
                              BEV_TRIG_DEFER_CALLBACKS);
    return BEV_ERROR;
  }
  // All in the kernel: a pending EOF may reach evhttp now.
  c->release_reads();
  return BEV_OK;
}

void HttpConnectionList::push_back(HttpConnection* c) {
  c->prev = tail_;
  c->next = nullptr;
  (tail_ ? tail_->next : head_) = c;
  tail_ = c;
  ++size_;
}

void HttpConnectionList::remove(HttpConnection* c) {
  (c->prev ? c->prev->next : head_) = c->next;
  (c->next ? c->next->prev : tail_) = c->prev;
  c->prev = c->next = nullptr;
  --size_;
}

std::string HttpRequest::query_param(const std::string& name) const {
  std::size_t pos = 0;
  while (pos <= query.size()) {
    auto amp = query.find('&', pos);
    if (amp == std::string::npos) amp = query.size();
    std::string_view kv(query.data() + pos, amp - pos);
    auto eq = kv.find('=');
    if (kv.substr(0, eq) == name) return eq == std::string_view::npos ? "1" : std::string(kv.substr(eq + 1));
    pos = amp + 1;
  }
  return {};
}

std::size_t HttpResponse::body_size() const {
  std::size_t n = body.size();
  for (const auto& part : body_parts) n += part->size();
  return n;
}

HttpResponse HttpResponse::json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::error(int status, const std::string& message) {
  return json(status, json_text(nlohmann::json{{"error", message}}));
}

HttpServer::HttpServer(EventLoop& loop, HttpHandler handler, HttpLimits limits)
    : loop_(loop),
      handler_(std::move(handler)),
      resume_accept_(loop, [this] {
        if (listener_) evconnlistener_enable(listener_);
      }),
      limits_(limits) {
  http_ = evhttp_new(loop_.base());
  if (!http_) throw std::runtime_error("cannot create the HTTP server (evhttp_new)");
  evhttp_set_max_headers_size(http_, static_cast<ev_ssize_t>(limits.max_header_bytes));
  evhttp_set_max_body_size(http_, static_cast<ev_ssize_t>(limits.max_body_bytes));
  evhttp_set_timeout(http_, limits.idle_timeout_seconds);
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                        EVHTTP_REQ_PATCH);
  evhttp_set_gencb(http_, &HttpServer::on_request, this);
  evhttp_set_bevcb(http_, &HttpServer::on_new_connection, this);
}

HttpServer::~HttpServer() {
  if (listener_) servers_by_listener().erase(listener_);
  // libevent frees a connection's bufferevents a loop turn after evhttp
  // lets go of them (or in event_base_free): the connections forget the
  // server, and a pending write wait ends now.
  for (HttpConnectionList* list : {&open_, &closing_}) {
    for (HttpConnection* c = list->front(); c;) {
      HttpConnection* next = c->next;
      c->server = nullptr;
      c->prev = c->next = nullptr;
      c->disarm();
      c = next;
    }
  }
  evhttp_free(http_);
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
}

void HttpServer::listen_tcp(const ListenAddress& address) {
  const bool v6 = address.ipv6;
  UniqueFd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) throw std::runtime_error(std::string("cannot create a socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(address.port);
    inet_pton(AF_INET6, address.host.c_str(), &sa->sin6_addr);
    len = sizeof *sa;
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(address.port);
    if (address.host.empty())
      sa->sin_addr.s_addr = htonl(INADDR_ANY);
    else
      inet_pton(AF_INET, address.host.c_str(), &sa->sin_addr);
    len = sizeof *sa;
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd.get(), 128) != 0)
    throw std::runtime_error("cannot listen on " + address.to_string() + ": " + std::strerror(errno));
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                   : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  evhttp_bound_socket* bound_socket = evhttp_accept_socket_with_handle(http_, fd.get());
  if (!bound_socket) throw std::runtime_error("cannot serve HTTP on " + address.to_string());
  fd.release();  // evhttp closes it when freed
  watch_accept_errors(bound_socket);
}

void HttpServer::listen_unix(const std::filesystem::path& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof sa.sun_path)
    throw std::runtime_error("control socket path too long: " + path.string());
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);

  // A socket file left by a vigil that died is replaced; one that answers
  // belongs to a running vigil.
  {
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe && ::connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0)
      throw std::runtime_error("another vigil is already running on " + path.string());
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode))
        throw std::runtime_error("control socket path " + path.string() +
                                 " exists and is not a socket");
      ::unlink(path.c_str());
    }
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) throw std::runtime_error(std::string("cannot create a socket: ") + std::strerror(errno));
  // Created 0600 regardless of the umask in force: bind under a 0177 umask.
  mode_t old = ::umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  int err = errno;
  ::umask(old);
  if (rc != 0 || ::listen(fd.get(), 64) != 0)
    throw std::runtime_error("cannot listen on " + path.string() + ": " +
                             std::strerror(rc != 0 ? err : errno));
  ::chmod(path.c_str(), 0600);
  unix_path_ = path;
  trusted_ = true;
  evhttp_bound_socket* bound_socket = evhttp_accept_socket_with_handle(http_, fd.get());
  if (!bound_socket) throw std::runtime_error("cannot serve HTTP on " + path.string());
  fd.release();
  watch_accept_errors(bound_socket);
}

void HttpServer::adopt_tcp(UniqueFd fd) {
  set_nonblocking(fd.get());
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  evhttp_bound_socket* bound_socket = evhttp_accept_socket_with_handle(http_, fd.get());
  if (!bound_socket) throw std::runtime_error("cannot serve HTTP on an inherited socket");
  fd.release();
  watch_accept_errors(bound_socket);
}

void HttpServer::adopt_unix(UniqueFd fd, const std::filesystem::path& path) {
  set_nonblocking(fd.get());
  evhttp_bound_socket* bound_socket = evhttp_accept_socket_with_handle(http_, fd.get());
  if (!bound_socket) throw std::runtime_error("cannot serve HTTP on " + path.string());
  fd.release();
  unix_path_ = path;
  trusted_ = true;
  watch_accept_errors(bound_socket);
}

int HttpServer::listen_fd() const { return listener_ ? evconnlistener_get_fd(listener_) : -1; }

void HttpServer::watch_accept_errors(evhttp_bound_socket* bound_socket) {
  listener_ = evhttp_bound_socket_get_listener(bound_socket);
  servers_by_listener()[listener_] = this;
  evconnlistener_set_error_cb(listener_, &HttpServer::on_accept_error);
}

void HttpServer::on_accept_error(evconnlistener* listener, void*) {
  const int err = EVUTIL_SOCKET_ERROR();
  auto it = servers_by_listener().find(listener);
  if (it == servers_by_listener().end()) {
    evconnlistener_disable(listener);  // cannot happen; never spin
    return;
  }
  HttpServer& self = *it->second;
  ++self.accept_errors_;
  // Stop accepting for a moment: the failed connection stays in the
  // backlog and would make the listener readable again at once.
  evconnlistener_disable(listener);
  self.resume_accept_.arm(kAcceptPause);
  // One warning when a streak begins, then one a minute with the count.
  const auto now = std::chrono::steady_clock::now();
  const bool new_streak = now - self.last_accept_error_ > std::chrono::seconds(10);
  self.last_accept_error_ = now;
  if (new_streak || now - self.last_accept_warning_ >= std::chrono::minutes(1)) {
    spdlog::warn("HTTP: cannot accept connections: {} ({} failure{} so far); pausing accepts for {}ms",
                 std::strerror(err), self.accept_errors_, self.accept_errors_ == 1 ? "" : "s",
                 std::chrono::duration_cast<std::chrono::milliseconds>(kAcceptPause).count());
    self.last_accept_warning_ = now;
  }
}

bufferevent* HttpServer::on_new_connection(event_base* base, void* arg) {
  auto& self = *static_cast<HttpServer*>(arg);
  if (self.limits_.max_connections > 0)
    while (self.open_.size() >= self.limits_.max_connections) self.evict_oldest();
  // On failure evhttp makes a bufferevent of its own: served, not counted.
  auto c = std::make_unique<HttpConnection>();
  c->socket = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  if (!c->socket) return nullptr;
  // evhttp sets the fd on the filter, which passes it to the socket
  // bufferevent; evhttp's free closes it through both (BEV_OPT_CLOSE_ON_FREE).
  c->filter = bufferevent_filter_new(c->socket, nullptr, &HttpConnection::write_output,
                                     BEV_OPT_CLOSE_ON_FREE, &HttpServer::on_connection_freed,
                                     c.get());
  if (!c->filter) {
    bufferevent_free(c->socket);
    return nullptr;
  }
  evbuffer_add_cb(bufferevent_get_output(c->filter), &HttpConnection::on_output_added, c.get());
  c->server = &self;
  c->wait.tv_sec = self.limits_.idle_timeout_seconds + 1;
  self.open_.push_back(c.get());
  return c.release()->filter;
}

void HttpServer::on_connection_freed(void* arg) {
  std::unique_ptr<HttpConnection> c(static_cast<HttpConnection*>(arg));
  if (c->writable) event_free(c->writable);  // not pending: it would hold a reference
  if (HttpServer* self = c->server) (c->evicted ? self->closing_ : self->open_).remove(c.get());
}

void HttpServer::evict_oldest() {
  HttpConnection* c = open_.front();
  open_.remove(c);
  c->evicted = true;
  closing_.push_back(c);
  // evhttp must read the EOF, even with a response waiting.
  c->release_reads();
  // Both ways: evhttp reads EOF (or fails a write) and frees the
  // connection, as when a client leaves; the client reads EOF.
  const evutil_socket_t fd = bufferevent_getfd(c->socket);
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
  ++dropped_;
  // One warning when a streak begins, then one a minute with the count.
  const auto now = std::chrono::steady_clock::now();
  const bool new_streak = now - last_drop_ > std::chrono::seconds(10);
  last_drop_ = now;
  if (new_streak || now - last_drop_warning_ >= std::chrono::minutes(1)) {
    const std::string where =
        unix_path_.empty() ? "port " + std::to_string(port_) : unix_path_.string();
    spdlog::warn("HTTP on {}: {} connections open, the most allowed: closing the oldest ({} "
                 "closed so far)",
                 where, limits_.max_connections, dropped_);
    last_drop_warning_ = now;
  }
}

void HttpServer::on_request(evhttp_request* req, void* arg) {
  auto* self = static_cast<HttpServer*>(arg);
  // handle() answers a throwing handler itself; this is for the rest
  // (out of memory), which must not unwind through evhttp.
  try {
    self->handle(req);
  } catch (...) {
    evhttp_send_error(req, 500, "Internal Server Error");
  }
}

HttpResponse HttpServer::handler_failed(const char* what) {
  ++handler_errors_;
  // A request that makes the handler throw can be sent again and again:
  // one error when a streak begins, then one a minute with the count.
  const auto now = std::chrono::steady_clock::now();
  const bool new_streak = now - last_handler_error_ > std::chrono::seconds(10);
  last_handler_error_ = now;
  if (new_streak || now - last_handler_error_log_ >= std::chrono::minutes(1)) {
    spdlog::error("HTTP handler failed: {} ({} failure{} so far)", what, handler_errors_,
                  handler_errors_ == 1 ? "" : "s");
    last_handler_error_log_ = now;
  }
  return HttpResponse::error(500, "internal error");
}

void HttpServer::handle(evhttp_request* req) {
  ++requests_;
  HttpRequest r;
  r.method = method_name(evhttp_request_get_command(req));
  r.trusted = trusted_;
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  const char* raw_path = uri ? evhttp_uri_get_path(uri) : nullptr;
  if (raw_path) {
    char* decoded = evhttp_uridecode(raw_path, 0, nullptr);
    r.path = decoded ? decoded : raw_path;
    std::free(decoded);
  }
  if (r.path.empty()) r.path = "/";
  if (const char* q = uri ? evhttp_uri_get_query(uri) : nullptr) r.query = q;
  evkeyvalq* in = evhttp_request_get_input_headers(req);
  for (evkeyval* h = in->tqh_first; h; h = h->next.tqe_next) {
    std::string name = h->key;
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = h->value;
  }
  evbuffer* body = evhttp_request_get_input_buffer(req);
  if (std::size_t n = evbuffer_get_length(body)) {
    r.body.resize(n);
    evbuffer_remove(body, r.body.data(), n);
  }

  HttpResponse resp;
  try {
    resp = handler_(r);
  } catch (const std::exception& e) {
    resp = handler_failed(e.what());
  } catch (...) {
    resp = handler_failed("unknown exception");
  }
  evkeyvalq* out = evhttp_request_get_output_headers(req);
  evhttp_add_header(out, "Content-Type", resp.content_type.c_str());
  // Explicit, so a HEAD answer carries the length its GET would have.
  evhttp_add_header(out, "Content-Length", std::to_string(resp.body_size()).c_str());
  for (const auto& [k, v] : resp.headers) evhttp_add_header(out, k.c_str(), v.c_str());
  evbuffer* buf = evbuffer_new();
  // evhttp sends whatever the buffer holds, HEAD or not: a HEAD answer gets
  // the headers (with its GET's Content-Length, set above) and no body, or
  // the next response on a kept-alive connection would be garbage.
  if (r.method != "HEAD") {
    // A large body is handed to the buffer as one more part, not copied:
    // megabytes of /api/v1/programs would be a second allocation faulted
    // in page by page.
    if (resp.body.size() >= kBodyByReference)
      resp.body_parts.insert(resp.body_parts.begin(), std::make_shared<const std::string>(std::move(resp.body)));
    else
      evbuffer_add(buf, resp.body.data(), resp.body.size());
    for (auto& part : resp.body_parts)
      if (!part->empty())
        evbuffer_add_reference(buf, part->data(), part->size(), &free_part,
                               new std::shared_ptr<const std::string>(part));
  }
  evhttp_send_reply(req, resp.status, reason_phrase(resp.status), buf);
  evbuffer_free(buf);
}

}  // namespace vigil
