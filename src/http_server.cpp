// evhttp glue. Every request is answered; a throwing handler becomes a 500.
#include "http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <unordered_map>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

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

}  // namespace

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

HttpResponse HttpResponse::json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

HttpResponse HttpResponse::error(int status, const std::string& message) {
  return json(status, nlohmann::json{{"error", message}}.dump() + "\n");
}

HttpServer::HttpServer(EventLoop& loop, HttpHandler handler, HttpLimits limits)
    : loop_(loop), handler_(std::move(handler)), resume_accept_(loop, [this] {
        if (listener_) evconnlistener_enable(listener_);
      }) {
  http_ = evhttp_new(loop_.base());
  if (!http_) throw std::runtime_error("cannot create the HTTP server (evhttp_new)");
  evhttp_set_max_headers_size(http_, static_cast<ev_ssize_t>(limits.max_header_bytes));
  evhttp_set_max_body_size(http_, static_cast<ev_ssize_t>(limits.max_body_bytes));
  evhttp_set_timeout(http_, limits.idle_timeout_seconds);
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                        EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                        EVHTTP_REQ_PATCH);
  evhttp_set_gencb(http_, &HttpServer::on_request, this);
}

HttpServer::~HttpServer() {
  if (listener_) servers_by_listener().erase(listener_);
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

void HttpServer::on_request(evhttp_request* req, void* arg) {
  auto* self = static_cast<HttpServer*>(arg);
  try {
    self->handle(req);
  } catch (const std::exception& e) {
    spdlog::error("HTTP handler failed: {}", e.what());
    evhttp_send_error(req, 500, "Internal Server Error");
  } catch (...) {
    evhttp_send_error(req, 500, "Internal Server Error");
  }
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

  HttpResponse resp = handler_(r);
  evkeyvalq* out = evhttp_request_get_output_headers(req);
  evhttp_add_header(out, "Content-Type", resp.content_type.c_str());
  // Explicit, so a HEAD answer carries the length its GET would have.
  evhttp_add_header(out, "Content-Length", std::to_string(resp.body.size()).c_str());
  for (const auto& [k, v] : resp.headers) evhttp_add_header(out, k.c_str(), v.c_str());
  evbuffer* buf = evbuffer_new();
  // evhttp sends whatever the buffer holds, HEAD or not: a HEAD answer gets
  // the headers (with its GET's Content-Length, set above) and no body, or
  // the next response on a kept-alive connection would be garbage.
  if (r.method != "HEAD") evbuffer_add(buf, resp.body.data(), resp.body.size());
  evhttp_send_reply(req, resp.status, reason_phrase(resp.status), buf);
  evbuffer_free(buf);
}

}  // namespace vigil
