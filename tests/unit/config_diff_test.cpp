// diff_config: what a reload restarts, resizes, updates in place, starts
// and stops, for programs and watches; and that no config field escapes it.
#include "config_diff.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>

#include "config_parse.h"

namespace vigil {
namespace {

using namespace std::chrono_literals;

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

const WatchChange& watch_change(const ReloadPlan& plan, const std::string& name) {
  for (const auto& c : plan.watches)
    if (c.name == name) return c;
  static WatchChange none;
  ADD_FAILURE() << "no change for watch " << name;
  return none;
}

bool names(const std::vector<std::string>& fields, const std::string& field) {
  return std::find(fields.begin(), fields.end(), field) != fields.end();
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

TEST(ConfigDiff, ProbeChangesAreUpdatesInPlace) {
  const std::string with_probe = std::string(kBase) + "probe = { tcp = \"127.0.0.1:5432\" }\n";
  auto added = diff_config(parse(kBase), parse(with_probe));
  EXPECT_EQ(change(added, "db").action, ReloadAction::update);
  EXPECT_EQ(change(added, "db").fields, std::vector<std::string>{"probe"});

  std::string slower = with_probe;
  slower.replace(slower.find(" }"), 2, ", interval = \"30s\" }");
  auto changed = diff_config(parse(with_probe), parse(slower));
  EXPECT_EQ(change(changed, "db").action, ReloadAction::update);
  EXPECT_EQ(change(changed, "db").fields, std::vector<std::string>{"probe"});
  EXPECT_NE(describe(changed).find("db: update in place (probe changed)"), std::string::npos);
}

// PORT = port_base + index is in each child's environment.
TEST(ConfigDiff, PortBaseChangeRestarts) {
  std::string next = kBase;
  next.replace(next.find("instances = 2"), 13, "instances = 2\nport_base = 3000");
  auto plan = diff_config(parse(kBase), parse(next));
  EXPECT_EQ(change(plan, "web").action, ReloadAction::restart);
  EXPECT_EQ(change(plan, "web").fields, std::vector<std::string>{"port_base"});
}

// The children's fds and LISTEN_* come from `listen`: a change restarts the
// program (the supervisor keeps the sockets of addresses still listed);
// the same list, even written differently, changes nothing.
TEST(ConfigDiff, ListenChangeRestartsAndTheSameSocketsWrittenOtherwiseDoNot) {
  std::string with = kBase;
  with.replace(with.find("instances = 2"), 13, "instances = 2\nlisten = [\"0.0.0.0:8080\"]");
  std::string same = kBase;
  same.replace(same.find("instances = 2"), 13, "instances = 2\nlisten = [\":8080\"]");
  std::string more = kBase;
  more.replace(more.find("instances = 2"), 13,
               "instances = 2\nlisten = [\"0.0.0.0:8080\", \"unix:web.sock\"]");
  std::string renamed = kBase;
  renamed.replace(renamed.find("instances = 2"), 13,
                  "instances = 2\nlisten = [\"http=0.0.0.0:8080\"]");

  EXPECT_EQ(change(diff_config(parse(kBase), parse(with)), "web").action, ReloadAction::restart);
  EXPECT_EQ(change(diff_config(parse(kBase), parse(with)), "web").fields,
            std::vector<std::string>{"listen"});
  EXPECT_EQ(change(diff_config(parse(with), parse(same)), "web").action, ReloadAction::unchanged);
  EXPECT_EQ(change(diff_config(parse(with), parse(more)), "web").action, ReloadAction::restart);
  // LISTEN_FDNAMES changes with the name.
  EXPECT_EQ(change(diff_config(parse(with), parse(renamed)), "web").action,
            ReloadAction::restart);
  EXPECT_EQ(change(diff_config(parse(with), parse(kBase)), "web").action, ReloadAction::restart);
}

// The proxy is vigil's own: adding it, changing it or removing it keeps the
// instances running (a new port_base is what restarts them).
TEST(ConfigDiff, StickyChangesAreUpdatesInPlace) {
  std::string with = kBase;
  with.replace(with.find("instances = 2"), 13,
               "instances = 2\nport_base = 3000\nsticky = { listen = \"0.0.0.0:8080\" }");
  std::string hashed = with;
  hashed.replace(hashed.find(" }"), 2, ", hash = \"x-forwarded-for\" }");
  std::string moved = with;
  moved.replace(moved.find("8080"), 4, "8081");
  std::string port_only = kBase;
  port_only.replace(port_only.find("instances = 2"), 13, "instances = 2\nport_base = 3000");
  std::string same = with;
  same.replace(same.find("0.0.0.0:8080"), 12, ":8080");

  for (const auto& [from, to] : {std::pair{port_only, with}, std::pair{with, hashed},
                                 std::pair{with, moved}, std::pair{with, port_only}}) {
    auto plan = diff_config(parse(from), parse(to));
    EXPECT_EQ(change(plan, "web").action, ReloadAction::update) << from << "\n->\n" << to;
    EXPECT_EQ(change(plan, "web").fields, std::vector<std::string>{"sticky"});
  }
  EXPECT_NE(describe(diff_config(parse(with), parse(hashed)))
                .find("web: update in place (sticky changed)"),
            std::string::npos);
  EXPECT_EQ(change(diff_config(parse(with), parse(same)), "web").action, ReloadAction::unchanged);
  // port_base is in the children's environment.
  std::string rebased = with;
  rebased.replace(rebased.find("3000"), 4, "3100");
  EXPECT_EQ(change(diff_config(parse(with), parse(rebased)), "web").action, ReloadAction::restart);
}

// --- watches ----------------------------------------------------------------

constexpr const char* kWatches = R"(
[programs.web]
command = "x"

[watch.legacy]
http = "http://127.0.0.1:8000/status"
expect_body = "running"
on_failure = [["curl", "-fsS", "http://127.0.0.1:8000/restart"]]

[watch.guarded]
notify_socket = "/run/guarded.sock"
heartbeat = { interval = "5s" }
on_failure = [["kill", "-9", "{pid}"]]
)";

// kWatches with `from` replaced by `to` (which must be there).
std::string edited(std::string_view from, std::string_view to) {
  std::string text = kWatches;
  auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

TEST(ConfigDiff, UnchangedWatchesChangeNothing) {
  auto plan = diff_config(parse(kWatches), parse(kWatches));
  EXPECT_FALSE(plan.changes_anything());
  EXPECT_EQ(describe(plan),
            "web: unchanged\nwatch legacy: unchanged\nwatch guarded: unchanged\nnothing to do\n");
}

TEST(ConfigDiff, WatchActionsAreUpdatedInPlace) {
  const std::string next = edited("8000/restart\"]]", "8000/restart\"], \"logger restarted\"]");
  auto plan = diff_config(parse(kWatches), parse(next));
  EXPECT_TRUE(plan.changes_anything());  // the programs alone are unchanged
  EXPECT_EQ(watch_change(plan, "legacy").action, ReloadAction::update);
  EXPECT_EQ(watch_change(plan, "legacy").fields, std::vector<std::string>{"on_failure"});
  EXPECT_EQ(watch_change(plan, "guarded").action, ReloadAction::unchanged);
  EXPECT_NE(describe(plan).find("watch legacy: update in place (on_failure changed)\n"),
            std::string::npos)
      << describe(plan);
}

TEST(ConfigDiff, WatchTimingIsUpdatedInPlace) {
  auto check = diff_config(parse(kWatches),
                           parse(edited("expect_body", "interval = \"1m\"\nfailures = 5\n"
                                                       "action_timeout = \"5s\"\nexpect_body")));
  EXPECT_EQ(watch_change(check, "legacy").action, ReloadAction::update);
  EXPECT_EQ(watch_change(check, "legacy").fields,
            (std::vector<std::string>{"interval", "failures", "action_timeout"}));

  auto beat = diff_config(parse(kWatches), parse(edited("interval = \"5s\"", "misses = 5")));
  EXPECT_EQ(watch_change(beat, "guarded").action, ReloadAction::update);
  EXPECT_EQ(watch_change(beat, "guarded").fields, std::vector<std::string>{"heartbeat"});
}

TEST(ConfigDiff, ChangedCheckOrSocketRestartsTheWatch) {
  auto target = diff_config(parse(kWatches), parse(edited("8000/status", "8001/status")));
  EXPECT_EQ(watch_change(target, "legacy").action, ReloadAction::restart);
  EXPECT_EQ(watch_change(target, "legacy").fields, std::vector<std::string>{"http"});
  EXPECT_NE(describe(target).find("watch legacy: restart (http changed)\n"), std::string::npos);

  auto body = diff_config(parse(kWatches),
                          parse(edited("\"running\"\non_failure = [[\"curl\"",
                                       "\"up\"\non_failure = [[\"wget\"")));
  EXPECT_EQ(watch_change(body, "legacy").action, ReloadAction::restart);
  EXPECT_EQ(watch_change(body, "legacy").fields,
            (std::vector<std::string>{"expect_body", "on_failure"}));

  const std::string tcp = edited("http = \"http://127.0.0.1:8000/status\"\nexpect_body = \"running\"",
                                 "tcp = \"127.0.0.1:8000\"");
  auto kind = diff_config(parse(kWatches), parse(tcp));
  EXPECT_EQ(watch_change(kind, "legacy").action, ReloadAction::restart);
  EXPECT_EQ(watch_change(kind, "legacy").fields, (std::vector<std::string>{"http", "tcp"}));

  auto socket = diff_config(parse(kWatches), parse(edited("/run/guarded.sock", "/run/g2.sock")));
  EXPECT_EQ(watch_change(socket, "guarded").action, ReloadAction::restart);
  EXPECT_EQ(watch_change(socket, "guarded").fields, std::vector<std::string>{"notify_socket"});
}

TEST(ConfigDiff, AddedAndRemovedWatches) {
  const std::string next =
      edited("[watch.guarded]", "[watch.redis]\ntcp = \"127.0.0.1:6379\"\n\n[watch.g]");
  auto plan = diff_config(parse(kWatches), parse(next));
  EXPECT_EQ(watch_change(plan, "legacy").action, ReloadAction::unchanged);
  EXPECT_EQ(watch_change(plan, "redis").action, ReloadAction::start);
  EXPECT_EQ(watch_change(plan, "g").action, ReloadAction::start);
  EXPECT_EQ(watch_change(plan, "guarded").action, ReloadAction::stop);
  EXPECT_EQ(plan.watches.back().name, "guarded");  // removed ones last
  EXPECT_EQ(describe(plan),
            "web: unchanged\nwatch legacy: unchanged\nwatch redis: start\nwatch g: start\n"
            "watch guarded: stop\n");
}

// --- every field is compared ------------------------------------------------
//
// A field added to ProgramConfig, WatchConfig or ProbeConfig must be named
// by config_diff, or a reload would silently ignore a change to it. The
// tests below count each struct's members and fail until the new field has
// an edit here, which in turn fails until the diff names it.

// The number of members of an aggregate: the most initialisers T{...} takes.
// AnyField lives outside the anonymous namespace: its conversion is only
// named in unevaluated requires-expressions and never defined, which clang
// reports (-Wundefined-internal) for a function with internal linkage.
}  // namespace
namespace field_count_detail {
struct AnyField {
  template <class T>
  operator T() const;  // never defined: only asked whether it converts
};
}  // namespace field_count_detail
namespace {
using field_count_detail::AnyField;

template <class T, class... Fields>
constexpr std::size_t field_count() {
  if constexpr (requires { T{Fields{}..., AnyField{}}; })
    return field_count<T, Fields..., AnyField>();
  else
    return sizeof...(Fields);
}

template <class Config>
struct FieldEdit {
  const char* field;     // as the plan names it
  ReloadAction action;   // what the reload does about it
  void (*edit)(Config&);
};

const FieldEdit<ProgramConfig> kProgramEdits[] = {
    {"command", ReloadAction::restart, [](ProgramConfig& p) { p.command = {"other"}; }},
    {"cwd", ReloadAction::restart, [](ProgramConfig& p) { p.cwd = "/elsewhere"; }},
    {"env", ReloadAction::restart, [](ProgramConfig& p) { p.env["A"] = "1"; }},
    {"instances", ReloadAction::resize, [](ProgramConfig& p) { p.instances = 3; }},
    {"autostart", ReloadAction::update, [](ProgramConfig& p) { p.autostart = false; }},
    {"restart", ReloadAction::update, [](ProgramConfig& p) { p.restart = RestartMode::never; }},
    {"exit_codes", ReloadAction::update, [](ProgramConfig& p) { p.exit_codes = {0, 2}; }},
    {"restart_delay", ReloadAction::update, [](ProgramConfig& p) { p.restart_delay = 1s; }},
    {"restart_delay_max", ReloadAction::update, [](ProgramConfig& p) { p.restart_delay_max = 1s; }},
    {"backoff_reset", ReloadAction::update, [](ProgramConfig& p) { p.backoff_reset = 1s; }},
    {"min_uptime", ReloadAction::update, [](ProgramConfig& p) { p.min_uptime = 2s; }},
    {"ready", ReloadAction::update, [](ProgramConfig& p) { p.ready = ReadyMode::notify; }},
    {"start_timeout", ReloadAction::update, [](ProgramConfig& p) { p.start_timeout = 1s; }},
    {"max_restarts", ReloadAction::update, [](ProgramConfig& p) { p.max_restarts = 9; }},
    {"restart_window", ReloadAction::update, [](ProgramConfig& p) { p.restart_window = 0s; }},
    {"essential", ReloadAction::update, [](ProgramConfig& p) { p.essential = true; }},
    {"after", ReloadAction::update, [](ProgramConfig& p) { p.after = {"db"}; }},
    {"user", ReloadAction::restart, [](ProgramConfig& p) { p.user = "nobody"; }},
    {"stop_signal", ReloadAction::update, [](ProgramConfig& p) { p.stop_signal = SIGINT; }},
    {"stop_timeout", ReloadAction::update, [](ProgramConfig& p) { p.stop_timeout = 1s; }},
    {"memory_limit_bytes", ReloadAction::update,
     [](ProgramConfig& p) { p.memory_limit_bytes = 1 << 20; }},
    {"heartbeat", ReloadAction::update, [](ProgramConfig& p) { p.heartbeat = HeartbeatConfig{}; }},
    {"probe", ReloadAction::update, [](ProgramConfig& p) { p.probe = ProbeConfig{}; }},
    {"port_base", ReloadAction::restart, [](ProgramConfig& p) { p.port_base = 3000; }},
    {"listen", ReloadAction::restart,
     [](ProgramConfig& p) { p.listen = {ListenSocketConfig{}}; }},
    {"sticky", ReloadAction::update, [](ProgramConfig& p) { p.sticky = StickyConfig{}; }},
    {"log", ReloadAction::update, [](ProgramConfig& p) { p.log = LogMode::off; }},
    {"log_max_size_bytes", ReloadAction::update,
     [](ProgramConfig& p) { p.log_max_size_bytes = 1; }},
    {"log_keep", ReloadAction::update, [](ProgramConfig& p) { p.log_keep = 1; }},
    {"log_timestamps", ReloadAction::update, [](ProgramConfig& p) { p.log_timestamps = false; }},
};

TEST(ConfigDiff, EveryProgramFieldIsARestartAResizeOrAnUpdate) {
  // + 1: `name` is the program's identity (a new name is a start and a stop).
  ASSERT_EQ(std::size(kProgramEdits) + 1, field_count<ProgramConfig>())
      << "ProgramConfig has a field this table does not edit: name it in restart_fields or "
         "update_fields (config_diff.cpp), then add it to kProgramEdits";
  ProgramConfig base;
  base.name = "web";
  base.command = {"x"};
  for (const auto& e : kProgramEdits) {
    Config before, after;
    before.programs = {base};
    after.programs = {base};
    e.edit(after.programs[0]);
    ASSERT_FALSE(after.programs[0] == base) << e.field << ": the edit changes nothing";
    auto plan = diff_config(before, after);
    EXPECT_EQ(change(plan, "web").action, e.action) << e.field;
    EXPECT_TRUE(names(change(plan, "web").fields, e.field))
        << e.field << " is not named in the plan: " << describe(plan);
  }
}

const FieldEdit<WatchConfig> kWatchEdits[] = {
    {"http", ReloadAction::restart,  // a check where there was a socket
     [](WatchConfig& w) { w.check = ProbeConfig{}; }},
    {"notify_socket", ReloadAction::restart, [](WatchConfig& w) { w.notify_socket = "/run/b"; }},
    {"heartbeat", ReloadAction::update, [](WatchConfig& w) { w.heartbeat.misses = 9; }},
    {"on_failure", ReloadAction::update, [](WatchConfig& w) { w.on_failure = {{"true"}}; }},
    {"action_timeout", ReloadAction::update, [](WatchConfig& w) { w.action_timeout = 1s; }},
};

const FieldEdit<ProbeConfig> kCheckEdits[] = {
    {"tcp", ReloadAction::restart, [](ProbeConfig& c) { c.kind = ProbeKind::tcp; }},
    {"http", ReloadAction::restart, [](ProbeConfig& c) { c.target = "http://127.0.0.1:2/"; }},
    {"http", ReloadAction::restart, [](ProbeConfig& c) { c.command = {"unused"}; }},
    {"expect_status", ReloadAction::restart, [](ProbeConfig& c) { c.expect_status = 200; }},
    {"expect_body", ReloadAction::restart, [](ProbeConfig& c) { c.expect_body = "ok"; }},
    {"interval", ReloadAction::update, [](ProbeConfig& c) { c.interval = 1s; }},
    {"timeout", ReloadAction::restart, [](ProbeConfig& c) { c.timeout = 1s; }},
    {"failures", ReloadAction::update, [](ProbeConfig& c) { c.failures = 9; }},
    {"initial_delay", ReloadAction::restart, [](ProbeConfig& c) { c.initial_delay = 1s; }},
};

TEST(ConfigDiff, EveryWatchFieldIsARestartOrAnUpdate) {
  // + 1: `name`, the watch's identity.
  ASSERT_EQ(std::size(kWatchEdits) + 1, field_count<WatchConfig>())
      << "WatchConfig has a field this table does not edit: name it in watch_restart_fields or "
         "watch_update_fields (config_diff.cpp), then add it to kWatchEdits";
  ASSERT_EQ(std::size(kCheckEdits), field_count<ProbeConfig>())
      << "ProbeConfig has a field this table does not edit: name it in watch_restart_fields or "
         "watch_update_fields (config_diff.cpp), then add it to kCheckEdits";

  WatchConfig beats;
  beats.name = "w";
  beats.notify_socket = "/run/a";
  for (const auto& e : kWatchEdits) {
    Config before, after;
    before.watches = {beats};
    after.watches = {beats};
    e.edit(after.watches[0]);
    ASSERT_FALSE(after.watches[0] == beats) << e.field << ": the edit changes nothing";
    auto plan = diff_config(before, after);
    EXPECT_EQ(watch_change(plan, "w").action, e.action) << e.field;
    EXPECT_TRUE(names(watch_change(plan, "w").fields, e.field))
        << e.field << " is not named in the plan: " << describe(plan);
  }

  WatchConfig checks;
  checks.name = "w";
  checks.check = ProbeConfig{};
  checks.check->target = "http://127.0.0.1:1/";
  for (const auto& e : kCheckEdits) {
    Config before, after;
    before.watches = {checks};
    after.watches = {checks};
    e.edit(*after.watches[0].check);
    ASSERT_FALSE(after.watches[0] == checks) << e.field << ": the edit changes nothing";
    auto plan = diff_config(before, after);
    EXPECT_EQ(watch_change(plan, "w").action, e.action) << e.field;
    EXPECT_TRUE(names(watch_change(plan, "w").fields, e.field))
        << e.field << " is not named in the plan: " << describe(plan);
  }
}

}  // namespace
}  // namespace vigil
