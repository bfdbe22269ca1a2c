// JsonOut writes what nlohmann's dump() writes for the same values, and the
// instance objects of GET /api/v1/programs are that text: every field,
// nulls for what is not known, keys sorted, strings from children (any
// bytes) escaped into valid JSON.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include <nlohmann/json.hpp>

#include "api_json.h"
#include "json_out.h"

namespace vigil {
namespace {

using nlohmann::json;

std::string nlohmann_text(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string written(double v) {
  std::string out;
  JsonOut(out).value(v);
  return out;
}

TEST(JsonOut, NumbersAreWrittenAsNlohmannDumpsThem) {
  std::vector<double> values{0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 1e15, 1e16, 1e17, 1e21, 1e-5, 1e-7,
                             123.456, 1796613223.515899, 12345678901234567.0, 5e-324,
                             std::numeric_limits<double>::max(), std::numeric_limits<double>::lowest()};
  std::mt19937_64 rng(7);
  for (int i = 0; i < 5000; ++i) {
    values.push_back(std::bit_cast<double>(rng()));
    values.push_back(static_cast<double>(rng() % 100000000) / 1000.0);
    values.push_back(std::round(static_cast<double>(rng() % 10000000)) / 1000);
  }
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    EXPECT_EQ(written(v), nlohmann_text(json(v))) << v;
  }
  EXPECT_EQ(written(std::numeric_limits<double>::quiet_NaN()), "null");
  EXPECT_EQ(written(std::numeric_limits<double>::infinity()), "null");

  std::string ints;
  JsonOut j(ints);
  j.begin_array()
      .value(std::int64_t{0})
      .value(std::numeric_limits<std::int64_t>::min())
      .value(std::numeric_limits<std::uint64_t>::max())
      .value(-12)
      .value(true)
      .value(false)
      .null()
      .value(std::optional<int>())
      .value(std::optional<int>(3))
      .end_array();
  EXPECT_EQ(ints, nlohmann_text(json::array({0, std::numeric_limits<std::int64_t>::min(),
                                             std::numeric_limits<std::uint64_t>::max(), -12, true, false,
                                             nullptr, nullptr, 3})));
}

TEST(JsonOut, StringsOfAnyBytesAreEscapedAsNlohmannEscapesThem) {
  std::vector<std::string> strings{"", "plain", "quote \" and \\ backslash", "tab\tnew\nline\r\x01\x1f\x7f",
                                   "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "bad \xff byte",
                                   "cut \xe2\x82", "\xc0\xaf overlong", std::string("nul\0inside", 10)};
  std::mt19937_64 rng(11);
  for (int i = 0; i < 3000; ++i) {
    std::string s(rng() % 24, ' ');
    for (char& c : s) c = static_cast<char>(rng() % 4 == 0 ? rng() : 0x20 + rng() % 95);
    strings.push_back(s);
  }
  for (const auto& s : strings) {
    std::string out;
    JsonOut(out).value(s);
    EXPECT_EQ(out, nlohmann_text(json(s))) << s;
    // Valid JSON, whatever the bytes.
    EXPECT_TRUE(json::accept(out)) << out;
  }
}

TEST(JsonOut, CommasSeparateValuesAtEveryLevel) {
  std::string out;
  JsonOut j(out);
  j.begin_object()
      .key("a").begin_array().end_array()
      .key("b").begin_object().end_object()
      .key("c").begin_array().value(1).begin_object().key("x").value(2).key("y").null().end_object().value("z").end_array()
      .end_object();
  EXPECT_EQ(out, R"({"a":[],"b":{},"c":[1,{"x":2,"y":null},"z"]})");
}

InstanceSnapshot everything_set() {
  InstanceSnapshot s;
  s.program = "web";
  s.index = 2;
  s.pid = 4242;
  s.state = State::running;
  s.up = true;
  s.uptime_seconds = 12.34567;
  s.start_time_seconds = 1000;
  s.restarts = {1, 2, 3, 4, 5, 6, 7};
  s.last_exit_code = 137;
  s.last_restart_reason = RestartReason::memory;
  s.next_restart_in_seconds = 0.25;
  ExitRecord killed;
  killed.status.signaled = true;
  killed.status.signal = 9;
  killed.time_seconds = 990.5;
  killed.run_seconds = 3.14159;
  killed.reason = "memory 120MiB over the limit of 64MiB";
  ExitRecord exited;
  exited.status.code = 3;
  exited.time_seconds = 995;
  exited.reason = "exited with exit code 3";
  s.recent_exits = {killed, exited};
  s.last_error = "said \"no\" \xff";
  s.last_error_seconds = 995;
  s.heartbeats = 77;
  s.heartbeat_misses = 2;
  s.heartbeat_last_seconds = 999.5;
  s.rss_bytes = 123456789;
  s.cpu_seconds = 1.5;
  s.reported_memory_bytes = 1000;
  s.memory_limit_bytes = 64ull << 20;
  s.status_text = "serving\t42 requests";
  s.log_files = {"/var/log/vigil/web-2.out.log", "/var/log/vigil/web-2.err.log"};
  ProbeSnapshot p;
  p.success = false;
  p.failures = {1, 2, 0, 0, 1};
  p.count = 9;
  s.probe = p;
  StickySnapshot k;
  k.listen = "127.0.0.1:8080";
  k.routable = true;
  k.open = 3;
  k.accepted = 10;
  k.bytes_in = 100;
  k.bytes_out = 2000;
  k.route_failures = 1;
  s.sticky = k;
  RolloutSnapshot r;
  r.id = 4;
  r.in_progress = true;
  r.done = 1;
  r.total = 3;
  r.current = 2;
  s.rollout = r;
  return s;
}

std::string one_instance(const InstanceSnapshot& s, double now) {
  std::string out;
  JsonOut j(out);
  append_instance_json(j, s, now);
  return out;
}

TEST(InstanceJson, EveryFieldWithItsValue) {
  const std::string text = one_instance(everything_set(), 1000);
  const json j = json::parse(text);
  // Sorted keys and nlohmann's formatting: the text an nlohmann object of
  // the same values dumps.
  EXPECT_EQ(text, nlohmann_text(j));
  EXPECT_EQ(j["name"], "web");
  EXPECT_EQ(j["index"], 2);
  EXPECT_EQ(j["pid"], 4242);
  EXPECT_EQ(j["state"], "running");
  EXPECT_EQ(j["uptime_seconds"], 12.346);
  EXPECT_EQ(j["restarts"], 28);
  EXPECT_EQ(j["restarts_by_reason"],
            (json{{"exit", 1}, {"signal", 2}, {"hung", 3}, {"memory", 4}, {"probe", 5}, {"start_timeout", 6},
                  {"manual", 7}}));
  EXPECT_EQ(j["memory_rss_bytes"], 123456789);
  EXPECT_EQ(j["memory_reported_bytes"], 1000);
  EXPECT_EQ(j["memory_limit_bytes"], 64 << 20);
  EXPECT_EQ(j["last_heartbeat_seconds_ago"], 0.5);
  EXPECT_EQ(j["heartbeats"], 77);
  EXPECT_EQ(j["heartbeat_misses"], 2);
  EXPECT_EQ(j["status_text"], "serving\t42 requests");
  EXPECT_EQ(j["last_exit_code"], 137);
  EXPECT_EQ(j["reason"], "memory");
  EXPECT_EQ(j["next_restart_in_seconds"], 0.25);
  EXPECT_EQ(j["last_error"], "said \"no\" \xef\xbf\xbd");
  EXPECT_EQ(j["last_error_seconds_ago"], 5.0);
  EXPECT_EQ(j["cpu_seconds"], 1.5);
  ASSERT_EQ(j["recent_exits"].size(), 2u);
  EXPECT_EQ(j["recent_exits"][0], (json{{"time", 990.5},
                                        {"signal", 9},
                                        {"description", ExitStatus::killed(9).describe()},
                                        {"reason", "memory 120MiB over the limit of 64MiB"},
                                        {"run_seconds", 3.142}}));
  EXPECT_EQ(j["recent_exits"][1]["code"], 3);
  EXPECT_FALSE(j["recent_exits"][1].contains("signal"));
  EXPECT_EQ(j["log_files"], (json{{"stdout", "/var/log/vigil/web-2.out.log"}, {"stderr", "/var/log/vigil/web-2.err.log"}}));
  EXPECT_EQ(j["probe"], (json{{"success", false}, {"checks", 9}, {"failures", 4}}));
  EXPECT_EQ(j["sticky"], (json{{"listen", "127.0.0.1:8080"},
                               {"routable", true},
                               {"connections", 3},
                               {"accepted", 10},
                               {"bytes_in", 100},
                               {"bytes_out", 2000},
                               {"route_failures", 1}}));
  EXPECT_EQ(j["rollout"], (json{{"id", 4}, {"in_progress", true}, {"done", 1}, {"total", 3}, {"current", 2}, {"error", ""}}));
}

TEST(InstanceJson, WhatIsNotKnownIsNull) {
  InstanceSnapshot s;
  s.program = "idle";
  s.uptime_seconds = 5;  // of a process gone: not shown
  const std::string text = one_instance(s, 1000);
  const json j = json::parse(text);
  EXPECT_EQ(text, nlohmann_text(j));
  for (const char* key : {"pid", "memory_reported_bytes", "memory_limit_bytes", "last_heartbeat_seconds_ago",
                          "last_exit_code", "reason", "next_restart_in_seconds", "last_error_seconds_ago",
                          "log_files", "probe", "sticky", "rollout"})
    EXPECT_TRUE(j.at(key).is_null()) << key;
  EXPECT_EQ(j["uptime_seconds"], 0.0);
  EXPECT_EQ(j["recent_exits"], json::array());
  EXPECT_EQ(j["state"], "stopped");
  EXPECT_EQ(j.size(), 25u) << text;
}

TEST(InstanceJson, AListOfOneProgramOrOfAll) {
  InstanceSnapshot a = everything_set(), b;
  b.program = "worker";
  const std::string all = instances_json_text({a, b, a}, 1000);
  ASSERT_EQ(all.back(), '\n');
  const json j = json::parse(all);
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[1]["name"], "worker");
  EXPECT_EQ(json::parse(instances_json_text({a, b, a}, 1000, "web")).size(), 2u);
  EXPECT_EQ(instances_json_text({a, b}, 1000, "none"), "[]\n");
  EXPECT_EQ(instances_json_text({}, 1000), "[]\n");
}

}  // namespace
}  // namespace vigil
