// GET /api/v1/programs/NAME/history, /logs and one instance's actions on
// the real binary: the history grows at the sample interval, follows a
// reload that removes a program (gone, 404) or shrinks one (fewer
// instances), and keeps the others' samples.
#include <gtest/gtest.h>

#include "control_harness.h"

namespace vigil::it {
namespace {

using control::Json;

class HistoryApiTest : public BinaryTest {
 protected:
  fs::path socket() const { return dir_ / "vigil.sock"; }
  // The reply's status and parsed body (null when not JSON).
  std::pair<int, Json> get(const std::string& target) {
    std::string error;
    auto r = control_request(socket(), "GET", target, &error, std::chrono::seconds(5));
    if (!r) return {0, nullptr};
    return {r->status, Json::parse(r->body, nullptr, false)};
  }
  std::size_t samples(const std::string& program, int index) {
    auto [status, j] = get("/api/v1/programs/" + program + "/history");
    if (status != 200) return 0;
    for (const auto& i : j["instances"])
      if (i["index"] == index) return i["t"].size();
    return 0;
  }
};

TEST_F(HistoryApiTest, FollowsAReloadThatRemovesAProgram) {
  const std::string fast = "sample_interval = \"100ms\"\n";
  const std::string head = "[vigil]\n" + fast + "\n";
  run_vigil_with(head + helper_program("web", {}, "instances = 2\nmin_uptime = \"100ms\"") +
                 helper_program("worker", {}, "min_uptime = \"100ms\""));
  control::wait_for_states(socket(), {{{"web", 0}, "running"}, {{"web", 1}, "running"}, {{"worker", 0}, "running"}});
  ASSERT_TRUE(poll_until([&] { return samples("worker", 0) >= 5 && samples("web", 1) >= 5; }))
      << vigil_->output();

  auto [status, web] = get("/api/v1/programs/web/history");
  ASSERT_EQ(status, 200);
  EXPECT_EQ(web["name"], "web");
  EXPECT_DOUBLE_EQ(web["sample_interval_seconds"].get<double>(), 0.1);
  ASSERT_EQ(web["instances"].size(), 2u);
  const Json& first = web["instances"][0];
  for (const char* column : {"rss_bytes", "cpu_percent", "restarts", "heartbeat_age_seconds", "state"})
    EXPECT_EQ(first[column].size(), first["t"].size()) << column;
  EXPECT_EQ(first["state"].back(), "running");
  EXPECT_GT(first["rss_bytes"].back().get<double>(), 0) << first.dump();
  // Times never fall, and since= gives only the newer samples. The history
  // keeps times to a tenth of a second: at this 100 ms interval a late tick
  // and the one after it (98 ms apart, 10.151 and 10.249) share a tenth.
  const auto& t = first["t"];
  for (std::size_t k = 1; k < t.size(); ++k) EXPECT_GE(t[k].get<double>(), t[k - 1].get<double>());
  EXPECT_GT(t.back().get<double>(), t.front().get<double>());
  const double mid = t[t.size() / 2].get<double>();
  auto [s2, newer] = get("/api/v1/programs/web/history?since=" + std::to_string(mid));
  ASSERT_EQ(s2, 200);
  for (const auto& v : newer["instances"][0]["t"]) EXPECT_GT(v.get<double>(), mid);
  EXPECT_EQ(get("/api/v1/programs/web/history?since=soon").first, 400);

  const std::size_t web_before = samples("web", 0);
  // worker goes, web shrinks to one instance.
  write_config(head + helper_program("web", {}, "instances = 1\nmin_uptime = \"100ms\""));
  auto r = control::run_cli(dir_.path(), {"reload", "-c", (dir_ / "vigil.toml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  control::wait_for_states(socket(), {{{"web", 0}, "running"}});
  EXPECT_EQ(get("/api/v1/programs/worker/history").first, 404);
  ASSERT_TRUE(poll_until([&] {
    auto [st, j] = get("/api/v1/programs/web/history");
    return st == 200 && j["instances"].size() == 1;
  })) << get("/api/v1/programs/web/history").second.dump();
  // web[0] kept its samples across the reload and goes on.
  EXPECT_TRUE(poll_until([&] { return samples("web", 0) > web_before; }));
  auto [s3, self] = get("/api/v1/vigil");
  ASSERT_EQ(s3, 200);
  EXPECT_TRUE(self["last_reload_ok"].get<bool>());
  EXPECT_TRUE(self["control"].get<bool>());  // the control socket may act
  EXPECT_GT(self["history_bytes"].get<double>(), 0);
}

TEST_F(HistoryApiTest, OneInstanceRestartsAndItsLogTails) {
  run_vigil_with(helper_program("web", {"--print", "hello from web"},
                                "instances = 2\nmin_uptime = \"100ms\""));
  auto all = control::wait_for_states(socket(), {{{"web", 0}, "running"}, {{"web", 1}, "running"}});
  const int pid0 = control::pid_of(control::find_instance(all, "web", 0));
  const int pid1 = control::pid_of(control::find_instance(all, "web", 1));

  std::string error;
  auto r = control_request(socket(), "POST", "/api/v1/programs/web/restart?index=1", &error,
                           std::chrono::seconds(5));
  ASSERT_TRUE(r) << error;
  EXPECT_EQ(r->status, 200) << r->body;
  ASSERT_TRUE(poll_until([&] {
    auto now = control::api_instances(socket());
    if (!now) return false;
    Json one = control::find_instance(*now, "web", 1);
    return control::pid_of(one) != pid1 && control::pid_of(one) > 0 && one["state"] == "running";
  })) << vigil_->output();
  EXPECT_EQ(control::pid_of(control::find_instance(*control::api_instances(socket()), "web", 0)), pid0);
  auto bad = control_request(socket(), "POST", "/api/v1/programs/web/restart?index=2", &error,
                             std::chrono::seconds(5));
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 404);

  ASSERT_TRUE(poll_until([&] {
    auto [st, j] = get("/api/v1/programs/web/logs?n=5&index=0");
    return st == 200 && j["lines"].dump().find("hello from web") != std::string::npos;
  })) << get("/api/v1/programs/web/logs?n=5&index=0").second.dump();
  EXPECT_EQ(get("/api/v1/programs/web/logs?n=lots").first, 400);
  EXPECT_EQ(get("/api/v1/programs/nope/logs").first, 404);
}

}  // namespace
}  // namespace vigil::it
