#include "config_diff.h"

#include <gtest/gtest.h>

#include "config_parse.h"

namespace vigil {
namespace {

Config parse(const std::string& text) {
  auto r = parse_config(text, "/etc/vigil/vigil.toml");
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors.front().to_string());
  return r.config;
}

const ProgramChange& change(const ReloadPlan& plan, const std::string& name) {
  for (const auto& c : plan.programs)
    if (c.name == name) return c;
  static ProgramChange none;
  ADD_FAILURE() << "no change for " << name;
  return none;
}

constexpr const char* kBase = R"(
[programs.web]
command = ["node", "app.js"]
instances = 2
restart_delay = "100ms"

[programs.db]
command = "db --serve"
)";

TEST(ConfigDiff, IdenticalConfigsChangeNothing) {
  auto plan = diff_config(parse(kBase), parse(kBase));
  EXPECT_FALSE(plan.changes_anything());
  EXPECT_EQ(change(plan, "web").action, ReloadAction::unchanged);
  EXPECT_EQ(describe(plan), "web: unchanged\ndb: unchanged\nnothing to do\n");
}

TEST(ConfigDiff, CommandChangeRestarts) {
  std::string next = kBase;
  next.replace(next.find("app.js"), 6, "main.js");
  auto plan = diff_config(parse(kBase), parse(next));
  EXPECT_EQ(change(plan, "web").action, ReloadAction::restart);
  EXPECT_EQ(change(plan, "web").fields, std::vector<std::string>{"command"});
  EXPECT_EQ(change(plan, "db").action, ReloadAction::unchanged);
}

TEST(ConfigDiff, EnvCwdUserChangesRestart) {
  for (const char* extra : {"env = { A = \"1\" }\n", "cwd = \"/srv\"\n", "user = \"nobody\"\n"}) {
    std::string next = std::string(kBase) + "\n[programs.db2]\ncommand = \"x\"\n";
    std::string base = next;
    next.replace(next.find("command = \"db --serve\""), 0, extra);
    auto plan = diff_config(parse(base), parse(next));
    EXPECT_EQ(change(plan, "db").action, ReloadAction::restart) << extra;
  }
}

TEST(ConfigDiff, PolicyChangeIsAnUpdateInPlace) {
  std::string next = kBase;
  next.replace(next.find("100ms"), 5, "2s");
  auto plan = diff_config(parse(kBase), parse(next));
  EXPECT_EQ(change(plan, "web").action, ReloadAction::update);
  EXPECT_EQ(change(plan, "web").fields, std::vector<std::string>{"restart_delay"});
}

TEST(ConfigDiff, HeartbeatAndLogChangesAreUpdates) {
  std::string next = std::string(kBase) + "log_keep = 9\n[programs.db.heartbeat]\ninterval = \"1s\"\n";
  auto plan = diff_config(parse(kBase), parse(next));
  EXPECT_EQ(change(plan, "db").action, ReloadAction::update);
  EXPECT_EQ(change(plan, "db").fields, (std::vector<std::string>{"heartbeat", "log_keep"}));
}

TEST(ConfigDiff, InstanceCountChangeResizes) {
  std::string next = kBase;
  next.replace(next.find("instances = 2"), 13, "instances = 4");
  auto plan = diff_config(parse(kBase), parse(next));
  const auto& c = change(plan, "web");
  EXPECT_EQ(c.action, ReloadAction::resize);
  EXPECT_EQ(c.old_instances, 2);
  EXPECT_EQ(c.new_instances, 4);
  EXPECT_NE(describe(plan).find("web: resize 2 -> 4 (instances changed)"), std::string::npos);
}

TEST(ConfigDiff, AddedAndRemovedPrograms) {
  std::string next = R"(
[programs.web]
command = ["node", "app.js"]
instances = 2
restart_delay = "100ms"

[programs.cache]
command = "redis-server"
)";
  auto plan = diff_config(parse(kBase), parse(next));
  EXPECT_EQ(change(plan, "cache").action, ReloadAction::start);
  EXPECT_EQ(change(plan, "db").action, ReloadAction::stop);
  EXPECT_EQ(plan.programs.back().name, "db");  // removed ones last
}

TEST(ConfigDiff, VigilSettings) {
  auto plan = diff_config(parse(std::string(kBase)),
                          parse(std::string("[vigil]\nlog_level = \"debug\"\n[http]\n") + kBase));
  EXPECT_EQ(plan.vigil_fields, std::vector<std::string>{"log_level"});
  EXPECT_EQ(plan.needs_restart, std::vector<std::string>{"[http] listen"});
}

}  // namespace
}  // namespace vigil
