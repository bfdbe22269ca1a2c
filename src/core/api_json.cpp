// API field names are the contract's; numbers carry their unit in the name.
#include "api_json.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "json_out.h"
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

namespace {

double millis(double seconds) { return std::round(seconds * 1000) / 1000; }

// The restart reasons by name, as the keys of restarts_by_reason are sorted.
std::array<RestartReason, kAllRestartReasons.size()> reasons_by_name() {
  auto out = kAllRestartReasons;
  std::sort(out.begin(), out.end(), [](RestartReason a, RestartReason b) {
    return std::string_view(to_string(a)) < to_string(b);
  });
  return out;
}

}  // namespace

// Keys in sorted order, as the nlohmann object this once was dumped them.
void append_instance_json(JsonOut& j, const InstanceSnapshot& s, double now_seconds) {
  static const auto kReasonsByName = reasons_by_name();
  j.begin_object();
  j.key("cpu_seconds").value(s.cpu_seconds);
  j.key("heartbeat_misses").value(s.heartbeat_misses);
  j.key("heartbeats").value(s.heartbeats);
  j.key("index").value(s.index);
  j.key("last_error").value(s.last_error);
  j.key("last_error_seconds_ago");
  if (s.last_error_seconds)
    j.value(millis(std::max(0.0, now_seconds - *s.last_error_seconds)));
  else
    j.null();
  j.key("last_exit_code").value(s.last_exit_code);
  j.key("last_heartbeat_seconds_ago");
  if (s.heartbeat_last_seconds)
    j.value(millis(now_seconds - *s.heartbeat_last_seconds));
  else
    j.null();
  j.key("log_files");
  if (s.log_files[0].empty())
    j.null();
  else
    j.begin_object().key("stderr").value(s.log_files[1]).key("stdout").value(s.log_files[0]).end_object();
  j.key("memory_limit_bytes").value(s.memory_limit_bytes);
  j.key("memory_reported_bytes").value(s.reported_memory_bytes);
  j.key("memory_rss_bytes").value(s.rss_bytes);
  j.key("name").value(s.program);
  j.key("next_restart_in_seconds");
  if (s.next_restart_in_seconds)
    j.value(millis(*s.next_restart_in_seconds));
  else
    j.null();
  j.key("pid");
  if (s.pid > 0)
    j.value(s.pid);
  else
    j.null();
  j.key("probe");
  if (s.probe) {
    std::uint64_t failures = 0;
    for (auto f : s.probe->failures) failures += f;
    j.begin_object()
        .key("checks").value(s.probe->count)
        .key("failures").value(failures)
        .key("success").value(s.probe->success)
        .end_object();
  } else {
    j.null();
  }
  j.key("reason");
  if (s.last_restart_reason)
    j.value(to_string(*s.last_restart_reason));
  else
    j.null();
  j.key("recent_exits").begin_array();
  for (const auto& e : s.recent_exits) {
    j.begin_object();
    if (!e.status.signaled) j.key("code").value(e.status.code);
    j.key("description").value(e.status.describe());
    j.key("reason").value(e.reason);
    j.key("run_seconds").value(millis(e.run_seconds));
    if (e.status.signaled) j.key("signal").value(e.status.signal);
    j.key("time").value(e.time_seconds);
    j.end_object();
  }
  j.end_array();
  j.key("restarts").value(s.total_restarts());
  j.key("restarts_by_reason").begin_object();
  for (RestartReason r : kReasonsByName) j.key(to_string(r)).value(s.restarts[static_cast<std::size_t>(r)]);
  j.end_object();
  j.key("rollout");
  if (s.rollout) {
    const RolloutSnapshot& r = *s.rollout;
    j.begin_object()
        .key("current").value(r.current)
        .key("done").value(r.done)
        .key("error").value(r.error)
        .key("id").value(r.id)
        .key("in_progress").value(r.in_progress)
        .key("total").value(r.total)
        .end_object();
  } else {
    j.null();
  }
  j.key("state").value(to_string(s.state));
  j.key("status_text").value(s.status_text);
  j.key("sticky");
  if (s.sticky) {
    const StickySnapshot& k = *s.sticky;
    j.begin_object()
        .key("accepted").value(k.accepted)
        .key("bytes_in").value(k.bytes_in)
        .key("bytes_out").value(k.bytes_out)
        .key("connections").value(k.open)
        .key("listen").value(k.listen)
        .key("routable").value(k.routable)
        .key("route_failures").value(k.route_failures)
        .end_object();
  } else {
    j.null();
  }
  j.key("uptime_seconds").value(s.pid > 0 ? millis(s.uptime_seconds) : 0.0);
  j.end_object();
}

std::string instances_json_text(const std::vector<InstanceSnapshot>& all, double now_seconds,
                                 std::string_view program) {
  std::string out;
  out.reserve(768 * all.size() + 16);
  JsonOut j(out);
  j.begin_array();
  for (const auto& s : all)
    if (program.empty() || s.program == program) append_instance_json(j, s, now_seconds);
  j.end_array();
  out += '\n';
  return out;
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
