// Routing and authorization; rendering lives in metrics / api_json.
#include "http_api.h"

#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "api_json.h"
#include "metrics.h"
#include "proc_sampler.h"
#include "supervisor.h"
#include "version.h"

namespace vigil {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

HttpResponse method_not_allowed(const char* allow) {
  HttpResponse r = HttpResponse::error(405, std::string("method not allowed; use ") + allow);
  r.headers["Allow"] = allow;
  return r;
}

}  // namespace

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const std::string& longer = a.size() >= b.size() ? a : b;
  for (std::size_t i = 0; i < longer.size(); ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

HttpApi::HttpApi(Supervisor& supervisor) : supervisor_(supervisor) {
  load_token();
  supervisor_.set_reload_listener([this] { load_token(); });
}

void HttpApi::load_token() {
  token_.clear();
  const auto& http = supervisor_.config().http;
  if (!http || http->token_file.empty()) return;
  std::ifstream in(http->token_file, std::ios::binary);
  if (!in) {
    spdlog::warn("cannot read token_file {}: POST over TCP stays disabled", http->token_file.string());
    return;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  token_ = ss.str();
  while (!token_.empty() && (token_.back() == '\n' || token_.back() == '\r')) token_.pop_back();
  if (token_.empty()) spdlog::warn("token_file {} is empty: POST over TCP stays disabled", http->token_file.string());
}

bool HttpApi::authorized(const HttpRequest& r) const {
  if (r.trusted) return true;
  if (token_.empty()) return false;
  const std::string auth = r.header("authorization");
  const std::string prefix = "Bearer ";
  if (auth.compare(0, prefix.size(), prefix) != 0) return false;
  return constant_time_equal(auth.substr(prefix.size()), token_);
}

HttpResponse HttpApi::metrics() {
  SelfUsage u = sample_self();
  SelfSnapshot self;
  self.version = kVersion;
  self.rss_bytes = u.rss_bytes;
  self.cpu_seconds = u.cpu_seconds;
  self.open_fds = u.open_fds;
  self.max_fds = u.max_fds;
  self.start_time_seconds = u.start_time_seconds;
  self.reloads_success = supervisor_.reloads_succeeded();
  self.reloads_failure = supervisor_.reloads_failed();
  self.last_reload_ok = supervisor_.last_reload_ok();
  for (const HttpServer* server : servers_) {
    self.http_connections += server->connections();
    self.http_connections_dropped += server->dropped();
    self.http_handler_errors += server->handler_errors();
  }
  HttpResponse r;
  r.content_type = kMetricsContentType;
  r.body = metrics_.render(supervisor_.snapshots(), supervisor_.watch_snapshots(), self);
  return r;
}

HttpResponse HttpApi::action(const std::string& name, const std::string& verb, bool all_at_once) {
  std::vector<Program*> targets;
  if (name == "all") {
    for (auto& p : supervisor_.programs()) targets.push_back(p.get());
  } else if (Program* p = supervisor_.find(name)) {
    targets.push_back(p);
  } else {
    return HttpResponse::error(404, "no program named \"" + name + "\"");
  }
  // The shutdown stops programs in order and waits only for those: one
  // started behind its back would keep it from ever ending.
  if (verb != "stop" && supervisor_.shutting_down())
    return HttpResponse::error(503, "vigil is shutting down: " + verb + " refused");
  for (Program* p : targets) {
    spdlog::info("program {}: {} requested through the API", p->name(), verb);
    if (verb == "start")
      p->start(true);
    else if (verb == "stop")
      p->stop();
    else
      p->restart(all_at_once);
  }
  nlohmann::json out = nlohmann::json::array();
  double now = now_seconds();
  for (const auto& s : supervisor_.snapshots())
    for (Program* p : targets)
      if (s.program == p->name()) out.push_back(instance_json(s, now));
  return HttpResponse::json(200, json_text(nlohmann::json{{"action", verb}, {"instances", out}}));
}

HttpResponse HttpApi::programs(const HttpRequest& r, const std::string& rest) {
  // rest: "" | "NAME" | "NAME/VERB"
  if (rest.empty()) {
    if (r.method != "GET" && r.method != "HEAD") return method_not_allowed("GET, HEAD");
    return HttpResponse::json(200, json_text(programs_json(supervisor_.snapshots(), now_seconds())));
  }
  auto slash = rest.find('/');
  std::string name = rest.substr(0, slash);
  if (slash == std::string::npos) {
    if (r.method != "GET" && r.method != "HEAD") return method_not_allowed("GET, HEAD");
    if (!supervisor_.find(name)) return HttpResponse::error(404, "no program named \"" + name + "\"");
    nlohmann::json out = nlohmann::json::array();
    double now = now_seconds();
    for (const auto& s : supervisor_.snapshots())
      if (s.program == name) out.push_back(instance_json(s, now));
    return HttpResponse::json(200, json_text(out));
  }
  std::string verb = rest.substr(slash + 1);
  if (verb != "start" && verb != "stop" && verb != "restart")
    return HttpResponse::error(404, "unknown action \"" + verb + "\" (start, stop or restart)");
  if (r.method != "POST") return method_not_allowed("POST");
  if (!authorized(r))
    return HttpResponse::error(401, "unauthorized: use the control socket or a bearer token");
  const std::string all = r.query_param("all_at_once");
  return action(name, verb, all == "1" || all == "true");
}

HttpResponse HttpApi::watches(const HttpRequest& r, const std::string& rest) {
  // rest: "" (every watch) | "NAME" (a list of that one, as for programs)
  if (r.method != "GET" && r.method != "HEAD") return method_not_allowed("GET, HEAD");
  if (!rest.empty() && !supervisor_.find_watch(rest))
    return HttpResponse::error(404, "no watch named \"" + rest + "\"");
  nlohmann::json out = nlohmann::json::array();
  const double now = now_seconds();
  for (const auto& w : supervisor_.watch_snapshots())
    if (rest.empty() || w.name == rest) out.push_back(watch_json(w, now));
  return HttpResponse::json(200, json_text(out));
}

HttpResponse HttpApi::handle(const HttpRequest& r) {
  const std::string& path = r.path;
  const bool read = r.method == "GET" || r.method == "HEAD";
  if (path == "/metrics") return read ? metrics() : method_not_allowed("GET, HEAD");
  if (path == "/healthz")
    return read ? HttpResponse::json(200, "{\"status\":\"ok\"}\n") : method_not_allowed("GET, HEAD");
  if (path == "/" || path == "/index.html") {
    if (!read) return method_not_allowed("GET, HEAD");
    HttpResponse resp;
    resp.content_type = "text/html; charset=utf-8";
    SelfSnapshot self;
    self.version = kVersion;
    resp.body = status_page_html(supervisor_.snapshots(), self, now_seconds(),
                                 supervisor_.watch_snapshots());
    return resp;
  }
  const std::string prefix = "/api/v1/programs";
  if (path == prefix || path.rfind(prefix + "/", 0) == 0) {
    std::string rest = path.size() > prefix.size() ? path.substr(prefix.size() + 1) : "";
    return programs(r, rest);
  }
  const std::string watches_prefix = "/api/v1/watches";
  if (path == watches_prefix || path.rfind(watches_prefix + "/", 0) == 0) {
    std::string rest =
        path.size() > watches_prefix.size() ? path.substr(watches_prefix.size() + 1) : "";
    return watches(r, rest);
  }
  if (path == "/api/v1/reload") {
    if (r.method != "POST") return method_not_allowed("POST");
    if (!authorized(r))
      return HttpResponse::error(401, "unauthorized: use the control socket or a bearer token");
    bool dry_run = r.query_param("dry_run") == "1" || r.query_param("dry_run") == "true";
    ReloadResult res = supervisor_.reload_file(dry_run);
    nlohmann::json j{{"ok", res.ok}, {"dry_run", dry_run}, {"plan", res.plan},
                     {"changes", res.changes}, {"errors", res.errors}};
    return HttpResponse::json(res.ok ? 200 : 422, json_text(j));
  }
  return HttpResponse::error(404, "not found: " + path);
}

}  // namespace vigil
