// API field names are the contract's; numbers carry their unit in the name.
#include "api_json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "units.h"

namespace vigil {

using nlohmann::json;

std::string format_uptime(double seconds) {
  if (seconds < 0) seconds = 0;
  auto s = static_cast<long long>(seconds);
  long long d = s / 86400, h = (s / 3600) % 24, m = (s / 60) % 60, sec = s % 60;
  char buf[48];
  if (d > 0)
    std::snprintf(buf, sizeof buf, "%lldd%lldh", d, h);
  else if (h > 0)
    std::snprintf(buf, sizeof buf, "%lldh%lldm", h, m);
  else if (m > 0)
    std::snprintf(buf, sizeof buf, "%lldm%llds", m, sec);
  else
    std::snprintf(buf, sizeof buf, "%llds", sec);
  return buf;
}

bool shows_reason(std::string_view state) { return state != "running" && state != "stopped"; }

std::string json_text(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

json instance_json(const InstanceSnapshot& s, double now_seconds) {
  json j;
  j["name"] = s.program;
  j["index"] = s.index;
  j["pid"] = s.pid > 0 ? json(s.pid) : json(nullptr);
  j["state"] = to_string(s.state);
  j["uptime_seconds"] = s.pid > 0 ? std::round(s.uptime_seconds * 1000) / 1000 : 0.0;
  j["restarts"] = s.total_restarts();
  j["memory_rss_bytes"] = s.rss_bytes;
  j["memory_reported_bytes"] = s.reported_memory_bytes ? json(*s.reported_memory_bytes) : json(nullptr);
  j["last_heartbeat_seconds_ago"] =
      s.heartbeat_last_seconds
          ? json(std::round((now_seconds - *s.heartbeat_last_seconds) * 1000) / 1000)
          : json(nullptr);
  j["status_text"] = s.status_text;
  j["last_exit_code"] = s.last_exit_code ? json(*s.last_exit_code) : json(nullptr);
  j["reason"] = s.last_restart_reason ? json(to_string(*s.last_restart_reason)) : json(nullptr);
  j["next_restart_in_seconds"] = s.next_restart_in_seconds
                                     ? json(std::round(*s.next_restart_in_seconds * 1000) / 1000)
                                     : json(nullptr);
  json restarts = json::object();
  for (RestartReason r : kAllRestartReasons)
    restarts[to_string(r)] = s.restarts[static_cast<std::size_t>(r)];
  j["restarts_by_reason"] = restarts;
  json exits = json::array();
  for (const auto& e : s.recent_exits) {
    json x;
    x["time"] = e.time_seconds;
    if (e.status.signaled)
      x["signal"] = e.status.signal;
    else
      x["code"] = e.status.code;
    x["description"] = e.status.describe();
    x["reason"] = e.reason;
    x["run_seconds"] = std::round(e.run_seconds * 1000) / 1000;
    exits.push_back(std::move(x));
  }
  j["recent_exits"] = exits;
  j["last_error"] = s.last_error;
  j["last_error_seconds_ago"] =
      s.last_error_seconds ? json(std::round(std::max(0.0, now_seconds - *s.last_error_seconds) * 1000) / 1000)
                           : json(nullptr);
  if (s.rollout) {
    const RolloutSnapshot& r = *s.rollout;
    j["rollout"] = json{{"id", r.id},
                        {"in_progress", r.in_progress},
                        {"done", r.done},
                        {"total", r.total},
                        {"current", r.current ? json(*r.current) : json(nullptr)},
                        {"error", r.error}};
  } else {
    j["rollout"] = nullptr;
  }
  if (s.sticky) {
    const StickySnapshot& k = *s.sticky;
    j["sticky"] = json{{"listen", k.listen},
                       {"routable", k.routable},
                       {"connections", k.open},
                       {"accepted", k.accepted},
                       {"bytes_in", k.bytes_in},
                       {"bytes_out", k.bytes_out},
                       {"route_failures", k.route_failures}};
  } else {
    j["sticky"] = nullptr;
  }
  if (s.probe) {
    std::uint64_t failures = 0;
    for (auto f : s.probe->failures) failures += f;
    j["probe"] = json{{"success", s.probe->success ? json(*s.probe->success) : json(nullptr)},
                      {"checks", s.probe->count},
                      {"failures", failures}};
  } else {
    j["probe"] = nullptr;
  }
  j["log_files"] = s.log_files[0].empty() ? json(nullptr)
                                           : json{{"stdout", s.log_files[0]}, {"stderr", s.log_files[1]}};
  j["heartbeats"] = s.heartbeats;
  j["heartbeat_misses"] = s.heartbeat_misses;
  j["cpu_seconds"] = s.cpu_seconds;
  j["memory_limit_bytes"] = s.memory_limit_bytes ? json(*s.memory_limit_bytes) : json(nullptr);
  return j;
}

json programs_json(const std::vector<InstanceSnapshot>& all, double now_seconds) {
  json arr = json::array();
  for (const auto& s : all) arr.push_back(instance_json(s, now_seconds));
  return arr;
}

json history_json(const InstanceHistory& h, int index, double after_seconds) {
  json t = json::array(), rss = json::array(), cpu = json::array(), restarts = json::array(),
       beat = json::array(), state = json::array();
  for (const HistoryPoint& p : h.points(after_seconds)) {
    t.push_back(p.time_seconds);
    rss.push_back(p.rss_bytes);
    cpu.push_back(p.cpu_percent ? json(*p.cpu_percent) : json(nullptr));
    restarts.push_back(p.restarts);
    beat.push_back(p.heartbeat_age_seconds ? json(*p.heartbeat_age_seconds) : json(nullptr));
    state.push_back(to_string(p.state));
  }
  return json{{"index", index},
              {"t", std::move(t)},
              {"rss_bytes", std::move(rss)},
              {"cpu_percent", std::move(cpu)},
              {"restarts", std::move(restarts)},
              {"heartbeat_age_seconds", std::move(beat)},
              {"state", std::move(state)}};
}

json watch_json(const WatchSnapshot& w, double now_seconds) {
  json j;
  j["name"] = w.name;
  j["kind"] = to_string(w.kind);
  j["target"] = w.target;
  j["up"] = w.up ? json(*w.up) : json(nullptr);
  j["state"] = to_string(w.state);
  j["consecutive_failures"] = w.consecutive_failures;
  j["failures"] = w.failures;
  json actions = json::object();
  for (ActionResult r : kAllActionResults)
    actions[to_string(r)] = w.actions[static_cast<std::size_t>(r)];
  j["actions"] = actions;
  j["last_check_seconds_ago"] =
      w.last_check_seconds
          ? json(std::round(std::max(0.0, now_seconds - *w.last_check_seconds) * 1000) / 1000)
          : json(nullptr);
  j["last_error"] = w.last_error;
  j["pid"] = w.pid ? json(*w.pid) : json(nullptr);
  j["registered"] = w.registered ? json(*w.registered) : json(nullptr);
  return j;
}

json watches_json(const std::vector<WatchSnapshot>& all, double now_seconds) {
  json arr = json::array();
  for (const auto& w : all) arr.push_back(watch_json(w, now_seconds));
  return arr;
}

namespace {

std::string html_escape(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string status_page_html(const std::vector<InstanceSnapshot>& all, const SelfSnapshot& self,
                             double now_seconds, const std::vector<WatchSnapshot>& watches) {
  std::string h;
  h += "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" "
       "content=\"5\"><title>vigil</title><style>"
       "body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
       "table{border-collapse:collapse}th,td{padding:4px 12px;text-align:left;"
       "border-bottom:1px solid #ddd}th{background:#f4f4f4}"
       ".running{color:#070}.fatal,.exited{color:#b00}.backoff,.starting,.stopping{color:#a60}"
       ".stopped{color:#777}.up{color:#070}.down,.cooldown,.acting{color:#b00}"
       ".failing{color:#a60}.waiting{color:#777}td.num{text-align:right;font-variant-numeric:tabular-nums}"
       "</style></head><body>";
  h += "<h1>vigil " + html_escape(self.version) + "</h1>";
  h += "<p>" + std::to_string(all.size()) + " instance" + (all.size() == 1 ? "" : "s") +
       " &middot; <a href=\"/metrics\">metrics</a> &middot; <a "
       "href=\"/api/v1/programs\">API</a></p>";
  const bool sticky = std::any_of(all.begin(), all.end(), [](const auto& s) { return s.sticky; });
  h += "<table><tr><th>program</th><th>index</th><th>pid</th><th>state</th><th>uptime</th>"
       "<th>restarts</th><th>memory</th><th>last heartbeat</th>";
  if (sticky) h += "<th>connections</th>";
  h += "<th>status</th><th>reason</th></tr>";
  for (const auto& s : all) {
    const char* st = to_string(s.state);
    h += "<tr><td>" + html_escape(s.program) + "</td><td class=\"num\">" +
         std::to_string(s.index) + "</td><td class=\"num\">" +
         (s.pid > 0 ? std::to_string(s.pid) : "-") + "</td><td class=\"" + st + "\">" + st +
         (s.rollout && s.rollout->in_progress && s.rollout->current == s.index
              ? " (rolling " + std::to_string(s.rollout->done + 1) + "/" +
                    std::to_string(s.rollout->total) + ")"
              : std::string()) +
         "</td><td class=\"num\">" + (s.pid > 0 ? format_uptime(s.uptime_seconds) : "-") +
         "</td><td class=\"num\">" + std::to_string(s.total_restarts()) +
         "</td><td class=\"num\">" + (s.rss_bytes ? format_size(s.rss_bytes) : "-") +
         "</td><td class=\"num\">" +
         (s.heartbeat_last_seconds
              ? format_uptime(now_seconds - *s.heartbeat_last_seconds) + " ago"
              : "-") +
         "</td>" +
         (sticky ? "<td class=\"num\">" + (s.sticky ? std::to_string(s.sticky->open) : "-") +
                       "</td>"
                 : std::string()) +
         "<td>" + html_escape(s.status_text) + "</td><td>" + html_escape(shows_reason(st) ? s.last_error : std::string()) +
         "</td></tr>";
  }
  h += "</table>";
  if (!watches.empty()) {
    h += "<h2>Watches</h2><table><tr><th>watch</th><th>kind</th><th>target</th><th>state</th>"
         "<th>up</th><th>failures</th><th>actions ok/failed/timeout</th><th>last check</th>"
         "<th>pid</th><th>last error</th></tr>";
    for (const auto& w : watches) {
      const char* st = to_string(w.state);
      auto n = [&w](ActionResult r) { return std::to_string(w.actions[static_cast<std::size_t>(r)]); };
      h += "<tr><td>" + html_escape(w.name) + "</td><td>" + to_string(w.kind) + "</td><td>" +
           html_escape(w.target) + "</td><td class=\"" + st + "\">" + st + "</td><td>" +
           (w.up ? (*w.up ? "1" : "0") : "-") + "</td><td class=\"num\">" +
           std::to_string(w.consecutive_failures) + " in a row, " + std::to_string(w.failures) +
           " in all</td><td class=\"num\">" + n(ActionResult::ok) + "/" +
           n(ActionResult::failed) + "/" + n(ActionResult::timeout) + "</td><td class=\"num\">" +
           (w.last_check_seconds ? format_uptime(now_seconds - *w.last_check_seconds) + " ago"
                                 : "-") +
           "</td><td class=\"num\">" + (w.pid ? std::to_string(*w.pid) : "-") + "</td><td>" +
           html_escape(w.last_error) + "</td></tr>";
    }
    h += "</table>";
  }
  h += "</body></html>\n";
  return h;
}

}  // namespace vigil
