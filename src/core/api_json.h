// The JSON shapes of the HTTP API (DESIGN.md "HTTP API") and the HTML status
// page, rendered from snapshots. Pure.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "history.h"
#include "snapshot.h"

namespace vigil {

class JsonOut;

// One element of GET /api/v1/programs, written as it goes: with thousands
// of instances an nlohmann tree cost ten times the text.
void append_instance_json(JsonOut& out, const InstanceSnapshot& s, double now_seconds);
// GET /api/v1/programs[/NAME]: the instances (of `program` only, when not
// empty) as a JSON array, newline-terminated.
std::string instances_json_text(const std::vector<InstanceSnapshot>& all, double now_seconds,
                                std::string_view program = {});

// GET /api/v1/programs/NAME/history: one instance's samples newer than
// `after_seconds`, as columns ("t", "rss_bytes", "cpu_percent", "restarts",
// "heartbeat_age_seconds", "state"), oldest first.
nlohmann::json history_json(const InstanceHistory& h, int index, double after_seconds);

// One element of GET /api/v1/watches.
nlohmann::json watch_json(const WatchSnapshot& w, double now_seconds);
nlohmann::json watches_json(const std::vector<WatchSnapshot>& all, double now_seconds);

// GET / : a self-refreshing HTML table of every instance, then one of the
// watches when there are any.
std::string status_page_html(const std::vector<InstanceSnapshot>& all, const SelfSnapshot& self,
                             double now_seconds, const std::vector<WatchSnapshot>& watches = {});

// `j` as the text of a response body, newline-terminated. Strings from
// outside (a request's path, a name, a child's words) may hold invalid
// UTF-8: each bad byte becomes U+FFFD, where a plain dump() would throw.
// Every JSON vigil sends goes through here.
std::string json_text(const nlohmann::json& j);

// Whether the REASON column (`vigil status`, the page) shows an instance's
// last_error: not while it runs or after an operator stopped it, where an
// old error would read as a present one.
bool shows_reason(std::string_view state);

// "3d4h", "2h5m", "4m10s", "12s"
std::string format_uptime(double seconds);

}  // namespace vigil
