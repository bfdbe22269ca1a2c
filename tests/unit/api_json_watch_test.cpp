// The watch shapes of the API and the status page: every field of
// GET /api/v1/watches, nulls for what is not known, HTML escaped.
#include <gtest/gtest.h>

#include "api_json.h"

namespace vigil {
namespace {

WatchSnapshot notify_watch() {
  WatchSnapshot w;
  w.name = "guarded";
  w.kind = WatchKind::notify;
  w.target = "/run/vigil/guarded.sock";
  w.up = false;
  w.state = WatchState::cooldown;
  w.consecutive_failures = 3;
  w.failures = 7;
  w.actions = {2, 1, 0};
  w.last_check_seconds = 1000.0;
  w.last_error = "no heartbeat for 3 intervals of 5s";
  w.pid = 4242;
  w.registered = true;
  return w;
}

TEST(ApiJsonWatch, EveryFieldOfAWatch) {
  const nlohmann::json j = watch_json(notify_watch(), 1012.5);
  EXPECT_EQ(j["name"], "guarded");
  EXPECT_EQ(j["kind"], "notify");
  EXPECT_EQ(j["target"], "/run/vigil/guarded.sock");
  EXPECT_EQ(j["up"], false);
  EXPECT_EQ(j["state"], "cooldown");
  EXPECT_EQ(j["consecutive_failures"], 3);
  EXPECT_EQ(j["failures"], 7);
  EXPECT_EQ(j["actions"], (nlohmann::json{{"ok", 2}, {"failed", 1}, {"timeout", 0}}));
  EXPECT_EQ(j["last_check_seconds_ago"], 12.5);
  EXPECT_EQ(j["last_error"], "no heartbeat for 3 intervals of 5s");
  EXPECT_EQ(j["pid"], 4242);
  EXPECT_EQ(j["registered"], true);
}

TEST(ApiJsonWatch, WhatIsNotKnownIsNull) {
  WatchSnapshot w;
  w.name = "legacy";
  const nlohmann::json j = watch_json(w, 5);
  EXPECT_EQ(j["kind"], "http");
  EXPECT_TRUE(j["up"].is_null());
  EXPECT_EQ(j["state"], "waiting");
  EXPECT_TRUE(j["last_check_seconds_ago"].is_null());
  EXPECT_TRUE(j["pid"].is_null());
  EXPECT_TRUE(j["registered"].is_null());
  EXPECT_EQ(watches_json({w, notify_watch()}, 5).size(), 2u);
}

TEST(ApiJsonWatch, TheStatusPageHasAWatchesTableOnlyWithWatches) {
  SelfSnapshot self;
  self.version = "1.0";
  EXPECT_EQ(status_page_html({}, self, 0).find("Watches"), std::string::npos);
  WatchSnapshot w = notify_watch();
  w.last_error = "HTTP 200 but the body lacks \"<running>\"";
  const std::string html = status_page_html({}, self, 1012.5, {w});
  EXPECT_NE(html.find("<h2>Watches</h2>"), std::string::npos) << html;
  EXPECT_NE(html.find("<td>guarded</td><td>notify</td>"), std::string::npos) << html;
  EXPECT_NE(html.find("class=\"cooldown\">cooldown<"), std::string::npos) << html;
  EXPECT_NE(html.find("&quot;&lt;running&gt;&quot;"), std::string::npos) << html;
  EXPECT_NE(html.find(">4242<"), std::string::npos) << html;
}

}  // namespace
}  // namespace vigil
