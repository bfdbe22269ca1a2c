// Routing and authorization; rendering lives in metrics / api_json.
#include "http_api.h"

#include <malloc.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include <spdlog/spdlog.h>

#include "api_json.h"
#include "json_out.h"
#include "history_recorder.h"
#include "log_files.h"
#include "log_tail.h"
#include "metrics.h"
#include "page_assets.h"
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

// The status page reaches nothing but vigil itself: no CDN, no inline
// script or style, no frames.
constexpr const char* kPagePolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// GET .../logs?n= at most: the tail is read from disk on the loop.
constexpr std::size_t kMaxLogLines = 1000;

// A non-negative decimal below `limit`, or none.
std::optional<std::size_t> parse_index(const std::string& text, std::size_t limit) {
  if (text.empty() || text.size() > 9) return std::nullopt;
  std::size_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::size_t>(c - '0');
  }
  if (n >= limit) return std::nullopt;
  return n;
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

HttpApi::HttpApi(Supervisor& supervisor)
    : supervisor_(supervisor), trim_(supervisor.loop(), [] { ::malloc_trim(0); }) {
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
  if (upgrade_.counts) upgrade_.counts(self);
  for (const HttpServer* server : servers_) {
    self.http_connections += server->connections();
    self.http_connections_dropped += server->dropped();
    self.http_handler_errors += server->handler_errors();
  }
  HttpResponse r;
  r.content_type = kMetricsContentType;
  r.body_parts = metrics_.render_parts(supervisor_.snapshots(), supervisor_.watch_snapshots(), self).parts;
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
  std::vector<InstanceSnapshot> acted;
  for (auto& s : supervisor_.snapshots())
    for (Program* p : targets)
      if (s.program == p->name()) acted.push_back(std::move(s));
  return action_answer(verb, acted);
}

// {"action": VERB, "instances": [...]}: the instances acted on, as they
// are now.
HttpResponse HttpApi::action_answer(const std::string& verb, const std::vector<InstanceSnapshot>& acted) {
  std::string body;
  JsonOut j(body);
  j.begin_object().key("action").value(verb).key("instances").begin_array();
  const double now = now_seconds();
  for (const auto& s : acted) append_instance_json(j, s, now);
  j.end_array().end_object();
  return HttpResponse::json(200, body + "\n");
}

HttpResponse HttpApi::instance_action(const std::string& name, Instance& instance,
                                      const std::string& verb) {
  if (verb != "stop" && supervisor_.shutting_down())
    return HttpResponse::error(503, "vigil is shutting down: " + verb + " refused");
  spdlog::info("program {}: {} of instance {} requested through the API", name, verb, instance.index());
  if (verb == "start")
    instance.start(true);
  else if (verb == "stop")
    instance.stop();
  else
    instance.restart_manual();
  return action_answer(verb, {instance.snapshot()});
}

HttpResponse HttpApi::history(const std::string& name, const HttpRequest& r) {
  const std::vector<InstanceHistory>* hs = history_ ? history_->find(name) : nullptr;
  if (!hs) return HttpResponse::error(404, "no history of a program named \"" + name + "\"");
  double after = 0;
  if (const std::string since = r.query_param("since"); !since.empty()) {
    char* end = nullptr;
    after = std::strtod(since.c_str(), &end);
    if (end == since.c_str() || *end != '\0')
      return HttpResponse::error(400, "since: a unix time in seconds, e.g. since=1765000000.5");
  }
  nlohmann::json instances = nlohmann::json::array();
  for (std::size_t i = 0; i < hs->size(); ++i)
    instances.push_back(history_json((*hs)[i], static_cast<int>(i), after));
  const auto interval = std::chrono::duration<double>(supervisor_.config().sample_interval).count();
  return HttpResponse::json(200, json_text(nlohmann::json{{"name", name},
                                                          {"sample_interval_seconds", interval},
                                                          {"window_seconds", InstanceHistory::kWindow.count()},
                                                          {"instances", std::move(instances)}}));
}

HttpResponse HttpApi::logs(const std::string& name, const HttpRequest& r) {
  Program* p = supervisor_.find(name);
  const auto& instances = p->instances();
  std::size_t n = 100;
  if (const std::string text = r.query_param("n"); !text.empty()) {
    auto v = parse_index(text, kMaxLogLines + 1);
    if (!v) return HttpResponse::error(400, "n: a number of lines, 0 to " + std::to_string(kMaxLogLines));
    n = *v;
  }
  std::size_t index = 0;
  if (const std::string text = r.query_param("index"); !text.empty()) {
    auto v = parse_index(text, instances.size());
    if (!v) return HttpResponse::error(404, "program " + name + " has no instance " + text);
    index = *v;
  }
  if (p->config().log == LogMode::off)
    return HttpResponse::error(404, "program " + name + " has log = \"off\"");
  const int i = static_cast<int>(index);
  std::vector<std::filesystem::path> files{p->log_path(i, Stream::out)};
  const auto err = p->log_path(i, Stream::err);
  if (err != files[0]) files.push_back(err);
  std::vector<std::vector<std::string>> inputs;
  for (const auto& f : files) inputs.push_back(last_lines(f, n));
  auto merged = merge_by_time(std::move(inputs));
  if (merged.size() > n) merged.erase(merged.begin(), merged.end() - static_cast<std::ptrdiff_t>(n));
  nlohmann::json lines = nlohmann::json::array();
  for (auto& line : merged)
    lines.push_back({{"stream", files.size() > 1 && line.source == 1 ? "stderr" : "stdout"},
                     {"text", std::move(line.text)}});
  return HttpResponse::json(200, json_text(nlohmann::json{{"name", name},
                                                          {"index", index},
                                                          {"lines", std::move(lines)}}));
}

HttpResponse HttpApi::self(const HttpRequest& r) {
  if (r.method != "GET" && r.method != "HEAD") return method_not_allowed("GET, HEAD");
  // The process's start (/proc): an upgrade in place (a new image, the
  // same process) keeps it.
  double started = sample_self().start_time_seconds;
  if (started <= 0) started = std::chrono::duration<double>(started_.time_since_epoch()).count();
  nlohmann::json j{{"version", kVersion},
                   {"start_time_seconds", started},
                   {"uptime_seconds", std::max(0.0, now_seconds() - started)},
                   {"reloads", {{"success", supervisor_.reloads_succeeded()},
                                {"failure", supervisor_.reloads_failed()}}},
                   {"last_reload_ok", supervisor_.last_reload_ok()},
                   {"sample_interval_seconds",
                    std::chrono::duration<double>(supervisor_.config().sample_interval).count()},
                   {"history_bytes", history_ ? history_->bytes() : 0},
                   // What this request may do: the page shows its buttons by this.
                   {"control", authorized(r)},
                   {"control_possible", r.trusted || !token_.empty()}};
  return HttpResponse::json(200, json_text(j));
}

HttpResponse HttpApi::page_asset(const HttpRequest& r) {
  const std::string path = r.path == "/index.html" ? "/" : r.path;
  for (const PageAsset& a : page_assets()) {
    if (path != a.path) continue;
    if (r.method != "GET" && r.method != "HEAD") return method_not_allowed("GET, HEAD");
    HttpResponse resp;
    resp.headers["ETag"] = a.etag;
    // Cached, but asked again each time: a new vigil's page shows at once.
    resp.headers["Cache-Control"] = "no-cache";
    resp.headers["X-Content-Type-Options"] = "nosniff";
    resp.headers["Content-Security-Policy"] = kPagePolicy;
    resp.content_type = a.content_type;
    if (r.header("if-none-match") == a.etag) {
      resp.status = 304;
      return resp;
    }
    resp.body = std::string(a.body);
    return resp;
  }
  return HttpResponse::error(404, "not found: " + r.path);
}

HttpResponse HttpApi::programs(const HttpRequest& r, const std::string& rest) {
  // rest: "" | "NAME" | "NAME/VERB"
  if (rest.empty()) {
    if (r.method != "GET" && r.method != "HEAD") return method_not_allowed("GET, HEAD");
    return HttpResponse::json(200, instances_json_text(supervisor_.snapshots(), now_seconds()));
  }
  auto slash = rest.find('/');
  std::string name = rest.substr(0, slash);
  if (slash == std::string::npos) {
    if (r.method != "GET" && r.method != "HEAD") return method_not_allowed("GET, HEAD");
    if (!supervisor_.find(name)) return HttpResponse::error(404, "no program named \"" + name + "\"");
    return HttpResponse::json(200, instances_json_text(supervisor_.snapshots(), now_seconds(), name));
  }
  std::string verb = rest.substr(slash + 1);
  if (verb == "history" || verb == "logs") {
    if (r.method != "GET" && r.method != "HEAD") return method_not_allowed("GET, HEAD");
    if (!supervisor_.find(name)) return HttpResponse::error(404, "no program named \"" + name + "\"");
    return verb == "history" ? history(name, r) : logs(name, r);
  }
  if (verb != "start" && verb != "stop" && verb != "restart")
    return HttpResponse::error(404, "unknown action \"" + verb + "\" (start, stop or restart)");
  if (r.method != "POST") return method_not_allowed("POST");
  if (!authorized(r))
    return HttpResponse::error(401, "unauthorized: use the control socket or a bearer token");
  if (const std::string index = r.query_param("index"); !index.empty()) {
    Program* p = supervisor_.find(name);
    if (!p) return HttpResponse::error(404, "no program named \"" + name + "\"");
    auto i = parse_index(index, p->instances().size());
    if (!i) return HttpResponse::error(404, "program " + name + " has no instance " + index);
    return instance_action(name, *p->instances()[*i], verb);
  }
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

namespace {
// An answer this large took megabytes of small blocks to build (a thousand
// instances' JSON, /metrics): glibc keeps what was freed, so vigil's RSS
// would stay at the high-water mark of the largest answer ever asked for.
constexpr std::size_t kTrimAfterBytes = 64 * 1024;
// Once after a burst of them (a status page polling), not after each.
constexpr Duration kTrimDelay = std::chrono::milliseconds(500);
}  // namespace

HttpResponse HttpApi::handle(const HttpRequest& r) {
  HttpResponse resp = respond(r);
  if (resp.body_size() >= kTrimAfterBytes && !trim_.armed()) trim_.arm(kTrimDelay);
  return resp;
}

HttpResponse HttpApi::respond(const HttpRequest& r) {
  const std::string& path = r.path;
  const bool read = r.method == "GET" || r.method == "HEAD";
  // /metrics shows no tree's memory and CPU staler than one
  // sample_interval: the trees the sampling timer has not read since are
  // read now (a still tree is read by the timer only once a minute). The
  // API's instance lists and the plain table take the figures as the
  // timer keeps them (a still tree's did not move when last read): a
  // status page polling every 2 s would otherwise have every still tree
  // read every 2 s. History and logs show no current figures.
  if (read && path == "/metrics") supervisor_.prepare_scrape();
  const bool instance_list =
      path == "/api/v1/programs" ||
      (path.starts_with("/api/v1/programs/") &&
       path.find('/', std::string_view("/api/v1/programs/").size()) == std::string::npos);
  if (read && (path == "/status.html" || instance_list)) supervisor_.sample_stale(Freshness::schedule);
  if (path == "/metrics") return read ? metrics() : method_not_allowed("GET, HEAD");
  if (path == "/healthz")
    return read ? HttpResponse::json(200, "{\"status\":\"ok\"}\n") : method_not_allowed("GET, HEAD");
  if (path == "/api/v1/vigil") return self(r);
  // The server-rendered table: for a browser without JavaScript, and curl.
  if (path == "/status.html") {
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
  if (path == "/api/v1/upgrade" && upgrade_.handle) {
    if (r.method != "GET" && !authorized(r))
      return HttpResponse::error(401, "unauthorized: use the control socket or a bearer token");
    return upgrade_.handle(r);
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
  return page_asset(r);
}

}  // namespace vigil
