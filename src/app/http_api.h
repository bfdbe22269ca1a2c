// The routes of vigil's HTTP interface, served on TCP ([http] listen) and on
// the control socket: /metrics, /healthz, the JSON API and the status page.
// Mutations need the control socket or the bearer token of token_file.
#pragma once
#include <chrono>
#include <string>
#include <vector>

#include "event_loop.h"
#include "http_server.h"
#include "metrics.h"

namespace vigil {

class Supervisor;
class HistoryRecorder;
class Instance;

class HttpApi {
 public:
  explicit HttpApi(Supervisor& supervisor);

  HttpResponse handle(const HttpRequest& request);
  // Re-reads token_file (start-up and reload). Empty: POST on TCP is 401.
  void load_token();
  // A server whose connection figures /metrics shows (summed over all);
  // it must outlive this API's last request.
  void add_server(const HttpServer& server) { servers_.push_back(&server); }
  // The histories GET /api/v1/programs/NAME/history serves; without it
  // that route answers 404. It must outlive this API's last request.
  void set_history(const HistoryRecorder& history) { history_ = &history; }
  // /api/v1/upgrade (vigil upgrade), and the counts /metrics shows; without
  // it that route answers 404.
  struct UpgradeHooks {
    std::function<HttpResponse(const HttpRequest&)> handle;
    std::function<void(SelfSnapshot&)> counts;
  };
  void set_upgrade(UpgradeHooks hooks) { upgrade_ = std::move(hooks); }

 private:
  HttpResponse respond(const HttpRequest& r);
  HttpResponse metrics();
  HttpResponse programs(const HttpRequest& r, const std::string& rest);
  HttpResponse watches(const HttpRequest& r, const std::string& rest);
  HttpResponse action(const std::string& name, const std::string& verb, bool all_at_once);
  HttpResponse instance_action(const std::string& name, Instance& instance, const std::string& verb);
  HttpResponse action_answer(const std::string& verb, const std::vector<InstanceSnapshot>& acted);
  HttpResponse history(const std::string& name, const HttpRequest& r);
  HttpResponse logs(const std::string& name, const HttpRequest& r);
  HttpResponse self(const HttpRequest& r);
  HttpResponse page_asset(const HttpRequest& r);
  bool authorized(const HttpRequest& r) const;

  Supervisor& supervisor_;
  std::string token_;
  std::vector<const HttpServer*> servers_;
  const HistoryRecorder* history_ = nullptr;
  UpgradeHooks upgrade_;
  std::chrono::system_clock::time_point started_ = std::chrono::system_clock::now();
  MetricsRenderer metrics_;  // reuses the text of what did not change since the last scrape
  // Hands the heap a big answer took back to the system, shortly after.
  Timer trim_;
};

// Compares in time independent of where the strings differ.
bool constant_time_equal(const std::string& a, const std::string& b);

}  // namespace vigil
