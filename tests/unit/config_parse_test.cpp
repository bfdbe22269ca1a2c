// parse_config: defaults, every key, path resolution, and every class of
// error with its exact line and column.
#include "config_parse.h"

#include <gtest/gtest.h>

#include <csignal>

namespace vigil {
namespace {

using namespace std::chrono_literals;

const std::string kFile = "/etc/vigil/vigil.toml";

// Config text starts on the line after R"( so that line 1 is the first line
// written in the test.
ConfigParseResult parse(std::string_view text) {
  if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
  return parse_config(text, kFile);
}

// "LINE:COL: message" for each error, in the order reported.
std::vector<std::string> errors_of(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& e : parse(text).errors) {
    EXPECT_EQ(e.file, kFile);
    out.push_back(std::to_string(e.line) + ":" + std::to_string(e.column) + ": " + e.message);
  }
  return out;
}

using Errors = std::vector<std::string>;

// --- values -----------------------------------------------------------------

TEST(ConfigParse, MinimalProgramGetsEveryDefault) {
  auto r = parse(R"(
[programs.web]
command = ["node", "app.js"]
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config.file, "/etc/vigil/vigil.toml");
  EXPECT_EQ(r.config.log_dir, "/etc/vigil/logs");
  EXPECT_EQ(r.config.control_socket, "/etc/vigil/vigil.sock");
  EXPECT_EQ(r.config.log_level, "info");
  EXPECT_EQ(r.config.sample_interval, 1s);
  ASSERT_EQ(r.config.programs.size(), 1u);

  ProgramConfig expected;
  expected.name = "web";
  expected.command = {"node", "app.js"};
  expected.cwd = "/etc/vigil";
  EXPECT_EQ(r.config.programs[0], expected);

  const auto& p = r.config.programs[0];
  EXPECT_TRUE(p.env.empty());
  EXPECT_EQ(p.instances, 1);
  EXPECT_TRUE(p.autostart);
  EXPECT_EQ(p.restart, RestartMode::always);
  EXPECT_EQ(p.exit_codes, std::vector<int>{0});
  EXPECT_EQ(p.restart_delay, 100ms);
  EXPECT_EQ(p.restart_delay_max, 30s);
  EXPECT_EQ(p.backoff_reset, 60s);
  EXPECT_EQ(p.min_uptime, 1s);
  EXPECT_EQ(p.ready, ReadyMode::uptime);
  EXPECT_EQ(p.start_timeout, 60s);
  EXPECT_EQ(p.max_restarts, 5);
  EXPECT_EQ(p.restart_window, 10s);
  EXPECT_FALSE(p.essential);
  EXPECT_TRUE(p.after.empty());
  EXPECT_EQ(p.user, "");
  EXPECT_EQ(p.stop_signal, SIGTERM);
  EXPECT_EQ(p.stop_timeout, 10s);
  EXPECT_EQ(p.memory_limit_bytes, std::nullopt);
  EXPECT_EQ(p.log, LogMode::split);
  EXPECT_EQ(p.log_max_size_bytes, 50ull << 20);
  EXPECT_EQ(p.log_keep, 5);
  EXPECT_TRUE(p.log_timestamps);
  EXPECT_EQ(p.heartbeat, std::nullopt);
  EXPECT_EQ(p.probe, std::nullopt);
  EXPECT_EQ(p.port_base, std::nullopt);
  EXPECT_EQ(p.sticky, std::nullopt);
  EXPECT_TRUE(r.config.watches.empty());
}

TEST(ConfigParse, EmptyFileIsValidWithDefaults) {
  auto r = parse("");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.config.programs.empty());
  EXPECT_EQ(r.config.log_dir, "/etc/vigil/logs");
}

TEST(ConfigParse, ReadsEveryKey) {
  auto r = parse(R"(
[vigil]
log_dir        = "/var/log/vigil"
control_socket = "run/vigil.sock"
log_level      = "debug"
sample_interval = "250ms"

[programs.db]
command = ["postgres"]

[programs.web]
command       = ["node", "app.js"]
cwd           = "app"
env           = { NODE_ENV = "production", EMPTY = "" }
instances     = 4
autostart     = false
restart       = "on-failure"
exit_codes    = [0, 2, 255]
restart_delay = "1s"
restart_delay_max = "1m"
backoff_reset = "2m"
min_uptime    = "500ms"
ready         = "uptime"
start_timeout = "90s"
max_restarts  = 0
restart_window = "0"
essential     = true
after         = ["db"]
user          = "www-data"
stop_signal   = "SIGINT"
stop_timeout  = "1m30s"
memory_limit  = "512MiB"
log           = "combined"
log_max_size  = "1GB"
log_keep      = 0
log_timestamps = false
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config.log_dir, "/var/log/vigil");
  EXPECT_EQ(r.config.control_socket, "/etc/vigil/run/vigil.sock");
  EXPECT_EQ(r.config.log_level, "debug");
  EXPECT_EQ(r.config.sample_interval, 250ms);

  const ProgramConfig* p = r.config.find("web");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->command, (std::vector<std::string>{"node", "app.js"}));
  EXPECT_EQ(p->cwd, "/etc/vigil/app");
  EXPECT_EQ(p->env, (std::map<std::string, std::string>{{"NODE_ENV", "production"},
                                                        {"EMPTY", ""}}));
  EXPECT_EQ(p->instances, 4);
  EXPECT_FALSE(p->autostart);
  EXPECT_EQ(p->restart, RestartMode::on_failure);
  EXPECT_EQ(p->exit_codes, (std::vector<int>{0, 2, 255}));
  EXPECT_EQ(p->restart_delay, 1s);
  EXPECT_EQ(p->restart_delay_max, 1min);
  EXPECT_EQ(p->backoff_reset, 2min);
  EXPECT_EQ(p->min_uptime, 500ms);
  EXPECT_EQ(p->ready, ReadyMode::uptime);
  EXPECT_EQ(p->start_timeout, 90s);
  EXPECT_EQ(p->max_restarts, 0);
  EXPECT_EQ(p->restart_window, 0s);
  EXPECT_TRUE(p->essential);
  EXPECT_EQ(p->after, std::vector<std::string>{"db"});
  EXPECT_EQ(p->user, "www-data");
  EXPECT_EQ(p->stop_signal, SIGINT);
  EXPECT_EQ(p->stop_timeout, 90s);
  EXPECT_EQ(p->memory_limit_bytes, 512ull << 20);
  EXPECT_EQ(p->log, LogMode::combined);
  EXPECT_EQ(p->log_max_size_bytes, 1'000'000'000u);
  EXPECT_EQ(p->log_keep, 0);
  EXPECT_FALSE(p->log_timestamps);
}

TEST(ConfigParse, StringCommandRunsWithShell) {
  auto r = parse(R"(
[programs.web]
command = "node app.js >> out 2>&1"
)");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.programs[0].command,
            (std::vector<std::string>{"/bin/sh", "-c", "node app.js >> out 2>&1"}));
}

TEST(ConfigParse, RelativePathsResolveAgainstTheConfigFolder) {
  auto r = parse(R"(
[vigil]
log_dir = "../var/./log/"
control_socket = "/run/vigil/control.sock"

[programs.a]
command = "true"
cwd = "./srv/../app"

[programs.b]
command = "true"
cwd = "/opt/b"

[programs.c]
command = "true"
cwd = ".."
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config.log_dir, "/etc/var/log");
  EXPECT_EQ(r.config.control_socket, "/run/vigil/control.sock");
  EXPECT_EQ(r.config.find("a")->cwd, "/etc/vigil/app");
  EXPECT_EQ(r.config.find("b")->cwd, "/opt/b");
  EXPECT_EQ(r.config.find("c")->cwd, "/etc");
}

TEST(ConfigParse, ProgramsKeepFileOrder) {
  auto r = parse(R"(
[programs.zeta]
command = "true"
[programs.alpha]
command = "true"
[programs.mid]
command = "true"
)");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.config.programs.size(), 3u);
  EXPECT_EQ(r.config.programs[0].name, "zeta");
  EXPECT_EQ(r.config.programs[1].name, "alpha");
  EXPECT_EQ(r.config.programs[2].name, "mid");
}

TEST(ConfigParse, ProgramNamesMayUseLettersDigitsDotsDashesUnderscores) {
  auto r = parse(R"(
[programs."api.v2"]
command = "true"
[programs.Worker_1-b]
command = "true"
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_NE(r.config.find("api.v2"), nullptr);
  EXPECT_NE(r.config.find("Worker_1-b"), nullptr);
}

TEST(ConfigParse, AfterAcceptsADiamondAndDropsDuplicates) {
  auto r = parse(R"(
[programs.a]
command = "true"
after = ["b", "c", "b"]
[programs.b]
command = "true"
after = ["d"]
[programs.c]
command = "true"
after = ["d"]
[programs.d]
command = "true"
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config.find("a")->after, (std::vector<std::string>{"b", "c"}));
}

// --- syntax -----------------------------------------------------------------

TEST(ConfigErrors, TomlSyntaxErrorIsOneErrorAtItsPosition) {
  auto errors = parse(R"(
[programs.web]
command = ["node",
restart = "always"
)").errors;
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 3);
  EXPECT_GT(errors[0].column, 0);
  EXPECT_FALSE(errors[0].message.empty());
}

TEST(ConfigErrors, MissingValueIsASyntaxError) {
  auto errors = parse("[vigil]\nlog_level =\n").errors;
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 2);
  EXPECT_EQ(errors[0].column, 12);
}

TEST(ConfigErrors, DuplicateKeyIsReportedWhereItIsRepeated) {
  auto errors = parse(R"(
[programs.web]
command = "a"
command = "b"
)").errors;
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 3);
  EXPECT_NE(errors[0].message.find("command"), std::string::npos) << errors[0].message;
}

TEST(ConfigErrors, DuplicateProgramTableIsReportedAtTheSecondHeader) {
  auto errors = parse(R"(
[programs.web]
command = "a"

[programs.web]
command = "b"
)").errors;
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 4);
  EXPECT_EQ(errors[0].column, 1);
  EXPECT_NE(errors[0].message.find("programs.web"), std::string::npos) << errors[0].message;
}

// --- unknown and unsupported keys ---------------------------------------------

TEST(ConfigErrors, UnknownKeysAtEveryLevel) {
  EXPECT_EQ(errors_of(R"(
colour = "blue"
[vigil]
log_dir = "logs"
  loglevel = "info"
[programs.web]
command = "x"
restart_dealy = "1s"
[programz.db]
)"),
            (Errors{
                R"(1:1: unknown key "colour" at the top level)",
                R"(4:3: unknown key "loglevel" in [vigil] (did you mean "log_level"?))",
                R"(7:1: unknown key "restart_dealy" in [programs.web] (did you mean "restart_delay"?))",
                R"(8:2: unknown key "programz" at the top level (did you mean "programs"?))",
            }));
}

// What pm2 and supervisord users type is named; a short or far-off key, or
// one as close to two keys, gets no guess.
TEST(ConfigErrors, UnknownKeysSuggestTheKeyMeant) {
  EXPECT_EQ(errors_of(R"([programs.web]
command = "x"
autorestart = true
max_memory_restart = "512M"
numprocs = 2
comand = "y"
ev = 1
zzzzzzzz = 1
[programs.web.heartbeat]
intervall = "1s"
)"),
            (Errors{
                R"(3:1: unknown key "autorestart" in [programs.web] (did you mean "restart"?))",
                R"(4:1: unknown key "max_memory_restart" in [programs.web] (did you mean "memory_limit"?))",
                R"(5:1: unknown key "numprocs" in [programs.web] (did you mean "instances"?))",
                R"(6:1: unknown key "comand" in [programs.web] (did you mean "command"?))",
                R"(7:1: unknown key "ev" in [programs.web])",
                R"(8:1: unknown key "zzzzzzzz" in [programs.web])",
                R"(10:1: unknown key "intervall" in [programs.web.heartbeat] (did you mean "interval"?))",
            }));
}

TEST(ConfigParse, HttpSection) {
  auto r = parse_config(R"(
[http]
listen = "[::1]:0"
token_file = "secret/token"
)", "/etc/vigil/vigil.toml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  ASSERT_TRUE(r.config.http);
  EXPECT_EQ(r.config.http->listen, "[::1]:0");
  EXPECT_EQ(r.config.http->token_file, "/etc/vigil/secret/token");
}

TEST(ConfigParse, NoHttpSectionMeansNoListener) {
  auto r = parse_config("", "/etc/vigil/vigil.toml");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.config.http);
}

TEST(ConfigParse, HttpDefaultsWhenSectionIsEmpty) {
  auto r = parse_config("[http]\n", "/etc/vigil/vigil.toml");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r.config.http);
  EXPECT_EQ(r.config.http->listen, "127.0.0.1:9321");
  EXPECT_TRUE(r.config.http->token_file.empty());
}

TEST(ConfigErrors, HttpBadListenAndUnknownKey) {
  EXPECT_EQ(errors_of(R"(
[http]
listen = "localhost:80"
port = 3
)"),
            (Errors{
                R"(2:10: listen: "localhost" is not an IPv4 address (host names are not resolved), got "localhost:80")",
                R"(3:1: unknown key "port" in [http])",
            }));
}

TEST(ConfigParse, HeartbeatAndNotify) {
  auto r = parse_config(R"(
[programs.web]
command = "x"
ready = "notify"

[programs.web.heartbeat]
interval = "2s"
misses = 4
grace = "10s"

[programs.db]
command = "y"
)", "/etc/vigil/vigil.toml");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto* web = r.config.find("web");
  ASSERT_TRUE(web && web->heartbeat);
  EXPECT_EQ(web->ready, ReadyMode::notify);
  EXPECT_EQ(web->heartbeat->interval, std::chrono::seconds(2));
  EXPECT_EQ(web->heartbeat->misses, 4);
  EXPECT_EQ(web->heartbeat->grace, std::chrono::seconds(10));
  EXPECT_FALSE(r.config.find("db")->heartbeat);
}

TEST(ConfigParse, HeartbeatDefaults) {
  auto r = parse_config("[programs.web]\ncommand = \"x\"\n[programs.web.heartbeat]\n",
                        "/etc/vigil/vigil.toml");
  ASSERT_TRUE(r.ok());
  const auto& hb = *r.config.find("web")->heartbeat;
  EXPECT_EQ(hb.interval, std::chrono::seconds(5));
  EXPECT_EQ(hb.misses, 3);
  EXPECT_EQ(hb.grace, std::chrono::seconds(30));
}

TEST(ConfigErrors, HeartbeatValues) {
  EXPECT_EQ(errors_of(R"(
[programs.web]
command = "x"
[programs.web.heartbeat]
interval = "1ms"
misses = 0
grace = "soon"
every = "1s"
)"),
            (Errors{
                R"(4:12: interval: must be at least 10ms, got 1ms)",
                R"(5:10: misses: must be between 1 and 1000, got 0)",
                R"(6:9: grace: invalid duration "soon" (expected e.g. "250ms", "5s", "1m30s"))",
                R"(7:1: unknown key "every" in [programs.web.heartbeat])",
            }));
}

// --- types and values ---------------------------------------------------------

TEST(ConfigErrors, WrongTomlTypes) {
  EXPECT_EQ(errors_of(R"(
[vigil]
log_dir = 5
sample_interval = 1
[programs.web]
command = 42
autostart = "yes"
instances = 2.5
env = "A=B"
exit_codes = 0
after = "db"
user = false
restart = true
memory_limit = 1024
)"),
            (Errors{
                "2:11: log_dir: expected a string, got an integer",
                R"(3:19: sample_interval: expected a duration string such as "5s", got an integer)",
                "5:11: command: expected an array of strings or a string, got an integer",
                "6:13: autostart: expected a boolean, got a string",
                "7:13: instances: expected an integer, got a float",
                R"(8:7: env: expected a table such as { NODE_ENV = "production" }, got a string)",
                "9:14: exit_codes: expected an array of integers, got an integer",
                "10:9: after: expected an array of program names, got a string",
                "11:8: user: expected a string, got a boolean",
                "12:11: restart: expected a string, got a boolean",
                R"(13:16: memory_limit: expected a size string such as "50MiB", got an integer)",
            }));
}

TEST(ConfigErrors, SectionsMustBeTables) {
  EXPECT_EQ(errors_of(R"(
vigil = 1
programs = { web = "node app.js" }
)"),
            (Errors{
                "1:9: vigil: expected a table, got an integer",
                "2:20: programs.web: expected a table, got a string",
            }));
  EXPECT_EQ(errors_of("programs = []\n"),
            Errors{"1:12: programs: expected a table of programs, got an array"});
}

TEST(ConfigErrors, BadDurationsAndSizes) {
  EXPECT_EQ(errors_of(R"(
[vigil]
sample_interval = "0s"
[programs.web]
command = "x"
restart_delay = "5x"
stop_timeout = "1.5s"
min_uptime = ""
memory_limit = "lots"
log_max_size = "100B"
)"),
            (Errors{
                "2:19: sample_interval: must be greater than 0s",
                R"(5:17: restart_delay: invalid duration "5x" (expected e.g. "250ms", "5s", "1m30s"))",
                R"(6:16: stop_timeout: invalid duration "1.5s" (expected e.g. "250ms", "5s", "1m30s"))",
                R"(7:14: min_uptime: invalid duration "" (expected e.g. "250ms", "5s", "1m30s"))",
                R"(8:16: memory_limit: invalid size "lots" (expected e.g. "512KiB", "50MiB", "512M", "1GB"))",
                "9:16: log_max_size: must be at least 1KiB, got 100B",
            }));
  EXPECT_EQ(errors_of(R"(
[programs.web]
command = "x"
memory_limit = "0"
)"),
            Errors{"3:16: memory_limit: must be greater than 0 (leave it out for no limit)"});
}

TEST(ConfigErrors, IntegerRanges) {
  EXPECT_EQ(errors_of(R"(
[programs.web]
command = "x"
instances = -5
max_restarts = -1
log_keep = 1001
exit_codes = [0, 256, -1]
[programs.api]
command = "x"
instances = 10001
max_restarts = 3000000000
)"),
            (Errors{
                "3:13: instances: must be between 1 and 10000, or \"max\" or 0 (one per CPU) or -1 (one per CPU but one), got -5",
                "4:16: max_restarts: must be between 0 and 2147483647, got -1",
                "5:12: log_keep: must be between 0 and 1000, got 1001",
                "6:18: exit_codes[1]: must be between 0 and 255, got 256",
                "6:23: exit_codes[2]: must be between 0 and 255, got -1",
                "9:13: instances: must be between 1 and 10000, or \"max\" or 0 (one per CPU) or -1 (one per CPU but one), got 10001",
                "10:16: max_restarts: must be between 0 and 2147483647, got 3000000000",
            }));
}

TEST(ConfigErrors, Words) {
  EXPECT_EQ(
      errors_of(R"(
[vigil]
log_level = "verbose"
[programs.web]
command = "x"
restart = "sometimes"
ready = "later"
log = "both"
stop_signal = "FOO"
)"),
      (Errors{
          R"(2:13: log_level: expected "trace", "debug", "info", "warn", "error", "critical" or "off", got "verbose")",
          R"(5:11: restart: expected "always", "on-failure" or "never", got "sometimes")",
          R"(6:9: ready: expected "uptime", "notify" or "probe", got "later")",
          R"(7:7: log: expected "split", "combined" or "off", got "both")",
          R"(8:15: stop_signal: unknown signal "FOO" (expected "TERM", "INT", "HUP", "QUIT", "KILL", "USR1" or "USR2"))",
      }));
}

TEST(ConfigErrors, Commands) {
  EXPECT_EQ(errors_of(R"(
[programs.a]
command = []
[programs.b]
command = ""
[programs.c]
command = ["node", ""]
[programs.d]
command = ["node", 1]
[programs.e]
cwd = "/srv"
[programs.f]
command = "   "
)"),
            (Errors{
                "2:11: command: must not be empty",
                "4:11: command: must not be empty",
                "6:20: command[1]: must not be empty",
                "8:20: command[1]: expected a string, got an integer",
                R"(9:11: [programs.e]: command is required (e.g. command = ["node", "app.js"]))",
                "12:11: command: must not be empty",
            }));
}

TEST(ConfigErrors, EnvNamesAndValues) {
  EXPECT_EQ(errors_of(R"(
[programs.web]
command = "x"
env = { PORT = 3000, "A=B" = "x", "" = "y" }
)"),
            (Errors{
                "3:16: env.PORT: expected a string, got an integer",
                R"(3:22: env: invalid variable name "A=B" (must be non-empty, without "="))",
                R"(3:35: env: invalid variable name "" (must be non-empty, without "="))",
            }));
}

TEST(ConfigErrors, RestartDelayMaxMustNotBeBelowRestartDelay) {
  EXPECT_EQ(errors_of(R"(
[programs.a]
command = "x"
restart_delay = "10s"
restart_delay_max = "5s"
[programs.b]
command = "x"
restart_delay = "1m"
[programs.c]
command = "x"
restart_delay = "bad"
restart_delay_max = "5s"
)"),
            (Errors{
                "4:21: restart_delay_max: must be at least restart_delay (10s), got 5s",
                "7:17: restart_delay: must be at most restart_delay_max (30s), got 1m",
                R"(10:17: restart_delay: invalid duration "bad" (expected e.g. "250ms", "5s", "1m30s"))",
            }));
}

TEST(ConfigErrors, ProgramNames) {
  EXPECT_EQ(errors_of(R"(
[programs."web app"]
command = "x"
[programs."caf\u00e9"]
command = "x"
[programs.""]
command = "x"
)"),
            (Errors{
                R"(1:11: program name "web app" is invalid (use letters, digits, "_", "." and "-"))",
                "3:11: program name \"caf\xc3\xa9\" is invalid (use letters, digits, \"_\", \".\" and \"-\")",
                R"(5:11: program name "" is invalid (use letters, digits, "_", "." and "-"))",
            }));
}

TEST(ConfigErrors, AfterMustNameOtherExistingPrograms) {
  EXPECT_EQ(errors_of(R"(
[programs.web]
command = "x"
after = ["db", "web", "cache", 3]
[programs.db]
command = "x"
)"),
            (Errors{
                R"(3:16: after: "web" is the program itself)",
                R"(3:23: after: no program named "cache")",
                "3:32: after[3]: expected a string, got an integer",
            }));
}

TEST(ConfigErrors, AfterCycleIsNamedAtTheFirstProgramsAfter) {
  EXPECT_EQ(errors_of(R"(
[programs.web]
command = "x"
after = ["db"]
[programs.db]
command = "x"
after = ["web"]
)"),
            Errors{"3:9: after: cycle web -> db -> web"});
}

TEST(ConfigErrors, LongerCyclesAndSeparateCyclesAreEachReportedOnce) {
  EXPECT_EQ(errors_of(R"(
[programs.ok]
command = "x"
after = ["c"]
[programs.c]
command = "x"
after = ["a"]
[programs.a]
command = "x"
after = ["b"]
[programs.b]
command = "x"
after = ["c"]
[programs.x]
command = "x"
after = ["y"]
[programs.y]
command = "x"
after = ["x"]
)"),
            (Errors{
                "6:9: after: cycle c -> a -> b -> c",
                "15:9: after: cycle x -> y -> x",
            }));
}

// --- probes -----------------------------------------------------------------

TEST(ConfigParse, ProbeDefaults) {
  auto r = parse(R"(
[programs.web]
command = "x"
[programs.web.probe]
tcp = "127.0.0.1:8080"
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& p = *r.config.find("web");
  ASSERT_TRUE(p.probe);
  EXPECT_EQ(p.probe->kind, ProbeKind::tcp);
  EXPECT_EQ(p.probe->target, "127.0.0.1:8080");
  EXPECT_TRUE(p.probe->command.empty());
  EXPECT_EQ(p.probe->expect_status, std::nullopt);
  EXPECT_EQ(p.probe->expect_body, "");
  EXPECT_EQ(p.probe->interval, 10s);
  EXPECT_EQ(p.probe->timeout, 2s);
  EXPECT_EQ(p.probe->failures, 3);
  EXPECT_EQ(p.probe->initial_delay, 5s);
  // A probe alone is a liveness check: readiness stays as configured.
  EXPECT_EQ(p.ready, ReadyMode::uptime);
  EXPECT_EQ(p.port_base, std::nullopt);
}

TEST(ConfigParse, ProbeReadsEveryKey) {
  auto r = parse(R"(
[programs.web]
command = ["node", "app.js"]
instances = 3
port_base = 3000
ready = "probe"
start_timeout = "30s"

[programs.web.probe]
http = "http://127.0.0.1:{port}/health?deep=1"
expect_status = 204
expect_body = "running"
interval = "100ms"
timeout = "5s"
failures = 1000
initial_delay = "0s"
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& p = *r.config.find("web");
  EXPECT_EQ(p.ready, ReadyMode::probe);
  EXPECT_EQ(p.port_base, 3000);
  ProbeConfig expected;
  expected.kind = ProbeKind::http;
  expected.target = "http://127.0.0.1:{port}/health?deep=1";  // expanded per instance
  expected.expect_status = 204;
  expected.expect_body = "running";
  expected.interval = 100ms;
  expected.timeout = 5s;  // may exceed interval: a probe in flight skips a tick
  expected.failures = 1000;
  expected.initial_delay = 0s;
  EXPECT_EQ(p.probe, expected);
}

TEST(ConfigParse, ProbeExecIsAnArgvOrAShellCommand) {
  auto r = parse(R"(
[programs.a]
command = "x"
probe = { exec = ["check-health", "--quick"] }
[programs.b]
command = "x"
port_base = 8000
probe = { exec = "curl -fsS http://127.0.0.1:{port}/ | grep -q ok" }
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& a = *r.config.find("a")->probe;
  EXPECT_EQ(a.kind, ProbeKind::exec);
  EXPECT_EQ(a.command, (std::vector<std::string>{"check-health", "--quick"}));
  EXPECT_EQ(a.target, "");
  EXPECT_EQ(r.config.find("b")->probe->command,
            (std::vector<std::string>{"/bin/sh", "-c",
                                      "curl -fsS http://127.0.0.1:{port}/ | grep -q ok"}));
}

TEST(ConfigErrors, ProbeNeedsExactlyOneOfHttpTcpExec) {
  EXPECT_EQ(errors_of(R"(
[programs.a]
command = "x"
[programs.a.probe]
interval = "5s"
[programs.b]
command = "x"
[programs.b.probe]
http = "http://127.0.0.1:80/"
tcp = "127.0.0.1:80"
[programs.c]
command = "x"
probe = { exec = "true", tcp = "127.0.0.1:1", http = "http://127.0.0.1/" }
)"),
            (Errors{
                R"(3:13: [programs.a.probe]: one of http, tcp or exec is required (e.g. tcp = "127.0.0.1:8080"))",
                "9:1: [programs.b.probe] sets http and tcp: a probe takes exactly one of http, tcp or exec",
                "12:26: [programs.c.probe] sets exec, tcp and http: a probe takes exactly one of http, tcp or exec",
            }));
}

TEST(ConfigErrors, ExpectStatusAndBodyOnlyWithHttp) {
  EXPECT_EQ(errors_of(R"(
[programs.a]
command = "x"
[programs.a.probe]
tcp = "127.0.0.1:80"
expect_status = 200
expect_body = "ok"
[programs.b]
command = "x"
probe = { exec = "true", expect_body = "ok" }
)"),
            (Errors{
                "5:1: expect_status: only an http probe has it (this probe is tcp)",
                "6:1: expect_body: only an http probe has it (this probe is tcp)",
                "9:26: expect_body: only an http probe has it (this probe is exec)",
            }));
}

TEST(ConfigErrors, ProbeValues) {
  EXPECT_EQ(errors_of(R"(
[programs.a]
command = "x"
[programs.a.probe]
http = ""
expect_status = 99
expect_body = ""
interval = "50ms"
timeout = "0s"
failures = 0
initial_delay = "soon"
retries = 3
[programs.b]
command = "x"
[programs.b.probe]
exec = ["check", ""]
expect_status = 600
failures = 1001
timeout = 2
[programs.c]
command = "x"
probe = "tcp://127.0.0.1:80"
[programs.d]
command = "x"
probe = { tcp = 80 }
[programs.e]
command = "x"
probe = { exec = [] }
)"),
            (Errors{
                "4:8: http: must not be empty",
                "5:17: expect_status: must be between 100 and 599, got 99",
                "6:15: expect_body: must not be empty (leave it out to accept any body)",
                "7:12: interval: must be at least 100ms, got 50ms",
                "8:11: timeout: must be greater than 0s",
                "9:12: failures: must be between 1 and 1000, got 0",
                R"(10:17: initial_delay: invalid duration "soon" (expected e.g. "250ms", "5s", "1m30s"))",
                R"(11:1: unknown key "retries" in [programs.a.probe])",
                "15:18: exec[1]: must not be empty",
                "16:1: expect_status: only an http probe has it (this probe is exec)",
                "16:17: expect_status: must be between 100 and 599, got 600",
                "17:12: failures: must be between 1 and 1000, got 1001",
                R"(18:11: timeout: expected a duration string such as "5s", got an integer)",
                R"(21:9: probe: expected a table such as { tcp = "127.0.0.1:{port}" }, got a string)",
                "24:17: tcp: expected a string, got an integer",
                "27:18: exec: must not be empty",
            }));
}

// The target parser's own words reach the user, after the key and before
// what was written.
TEST(ConfigErrors, ProbeTargetsAreValidatedByTheTargetParser) {
  EXPECT_EQ(errors_of(R"(
[programs.a]
command = "x"
probe = { http = "http://example.com/health" }
[programs.b]
command = "x"
probe = { http = "https://127.0.0.1/" }
[programs.c]
command = "x"
probe = { tcp = "127.0.0.1" }
[programs.d]
command = "x"
probe = { tcp = "localhost:6379" }
[programs.e]
command = "x"
port_base = 65530
instances = 6
probe = { http = "http://[::1]:{port}/" }
)"),
            (Errors{
                R"(3:18: http: "example.com" is not an IPv4 address (host names are not resolved) (write HOST:PORT with an IP address or localhost), got "http://example.com/health")",
                R"(6:18: http: https is not supported: probe the service over plain http, got "https://127.0.0.1/")",
                R"(9:17: tcp: expected HOST:PORT, e.g. "127.0.0.1:9321" (write HOST:PORT with an IP address or localhost), got "127.0.0.1")",
            }));
}

TEST(ConfigErrors, PortPlaceholderNeedsPortBase) {
  EXPECT_EQ(errors_of(R"(
[programs.a]
command = "x"
probe = { http = "http://127.0.0.1:{port}/" }
[programs.b]
command = "x"
probe = { exec = ["check", "--port", "{port}"] }
[programs.c]
command = "x"
probe = { exec = "nc -z 127.0.0.1 {port}" }
)"),
            (Errors{
                "3:18: http: {port} needs port_base = N in [programs.a]",
                "6:38: exec[2]: {port} needs port_base = N in [programs.b]",
                "9:18: exec: {port} needs port_base = N in [programs.c]",
            }));
}

// {port} is validated as the first and the last instance's port.
TEST(ConfigErrors, PortPlaceholderIsCheckedWithEveryInstancesPort) {
  EXPECT_EQ(errors_of(R"(
[programs.a]
command = "x"
port_base = 65535
probe = { http = "http://127.0.0.1:{port}0/" }
[programs.b]
command = "x"
port_base = 6000
instances = 1000
probe = { tcp = "127.0.0.1:{port}0" }
[programs.c]
command = "x"
port_base = 5000
instances = 1000
probe = { tcp = "127.0.0.1:{port}" }
)"),
            (Errors{
                R"(4:18: http: invalid port "655350" (expected 0-65535) (write HOST:PORT with an IP address or localhost), got "http://127.0.0.1:{port}0/" (with {port} = 65535))",
                R"(9:17: tcp: invalid port "69990" (expected 0-65535) (write HOST:PORT with an IP address or localhost), got "127.0.0.1:{port}0" (with {port} = 6999))",
            }));
}

TEST(ConfigErrors, PortBase) {
  EXPECT_EQ(errors_of(R"(
[programs.a]
command = "x"
port_base = 0
[programs.b]
command = "x"
port_base = 65536
[programs.c]
command = "x"
port_base = "3000"
[programs.d]
command = "x"
instances = 10
port_base = 65530
probe = { tcp = "127.0.0.1:{port}" }
[programs.e]
command = "x"
instances = 10
port_base = 65526
[programs.f]
command = "x"
port_base = 65535
)"),
            (Errors{
                "3:13: port_base: must be between 1 and 65535, got 0",
                "6:13: port_base: must be between 1 and 65535, got 65536",
                "9:13: port_base: expected an integer, got a string",
                "13:13: port_base: 65530 + 10 instances goes past port 65535 (the last would get "
                "65539); use a port_base of at most 65526",
            }));
}

TEST(ConfigErrors, ReadyProbeNeedsAProbeThatCanRunInTime) {
  EXPECT_EQ(errors_of(R"(
[programs.a]
command = "x"
ready = "probe"
[programs.b]
command = "x"
ready = "probe"
start_timeout = "5s"
probe = { tcp = "127.0.0.1:80" }
[programs.c]
command = "x"
ready = "probe"
probe = { tcp = "127.0.0.1:80", initial_delay = "1m" }
[programs.d]
command = "x"
ready = "probe"
probe = { tcp = 1 }
[programs.e]
command = "x"
ready = "probe"
probe = 3
[programs.f]
command = "x"
ready = "probe"
start_timeout = "6s"
probe = { tcp = "127.0.0.1:80" }
)"),
            (Errors{
                R"(3:9: ready = "probe" needs a [programs.a.probe] section saying what to probe (e.g. tcp = "127.0.0.1:8080"))",
                R"(7:17: start_timeout: with ready = "probe" it must be longer than the probe's initial_delay (5s), or no probe runs before it ends; got 5s)",
                R"(12:49: initial_delay: with ready = "probe" it must be shorter than start_timeout (1m), or no probe runs before it ends; got 1m)",
                "16:17: tcp: expected a string, got an integer",
                R"(20:9: probe: expected a table such as { tcp = "127.0.0.1:{port}" }, got an integer)",
            }));
}

// --- watches ----------------------------------------------------------------

TEST(ConfigParse, WatchesAsTheDesignShowsThem) {
  auto r = parse(R"(
[watch.legacy]
http     = "http://127.0.0.1:8000/SocketServer.ashx?Action=getThreadStatus"
expect_status = 200
expect_body   = "running"
interval = "10s"
failures = 3
on_failure = [ ["curl", "-fsS", "http://127.0.0.1:8000/SocketServer.ashx?Action=startSocketServer"] ]
action_timeout = "30s"

[watch.guarded]
notify_socket = "/run/vigil/guarded.sock"
heartbeat = { interval = "5s", misses = 3 }
on_failure = [ ["kill", "-9", "{pid}"], ["/usr/local/bin/start-guarded"] ]
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  ASSERT_EQ(r.config.watches.size(), 2u);

  WatchConfig legacy;
  legacy.name = "legacy";
  legacy.check = ProbeConfig{};
  legacy.check->kind = ProbeKind::http;
  legacy.check->target = "http://127.0.0.1:8000/SocketServer.ashx?Action=getThreadStatus";
  legacy.check->expect_status = 200;
  legacy.check->expect_body = "running";
  legacy.check->initial_delay = 0s;
  legacy.on_failure = {
      {"curl", "-fsS", "http://127.0.0.1:8000/SocketServer.ashx?Action=startSocketServer"}};
  EXPECT_EQ(r.config.watches[0], legacy);

  WatchConfig guarded;
  guarded.name = "guarded";
  guarded.notify_socket = "/run/vigil/guarded.sock";
  guarded.heartbeat = HeartbeatConfig{5s, 3, 30s};
  guarded.on_failure = {{"kill", "-9", "{pid}"}, {"/usr/local/bin/start-guarded"}};
  EXPECT_EQ(r.config.watches[1], guarded);
}

TEST(ConfigParse, WatchDefaultsKindsAndFileOrder) {
  auto r = parse(R"(
[watch.redis]
tcp = "127.0.0.1:6379"
[watch.disk]
exec = "test $(df --output=pcent / | tail -1 | tr -dc 0-9) -lt 90"
on_failure = ["logger disk almost full", ["touch", "/tmp/disk-full"]]
[watch.agent]
notify_socket = "run/agent.sock"
[watch.agent.heartbeat]
interval = "1s"
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  ASSERT_EQ(r.config.watches.size(), 3u);
  EXPECT_EQ(r.config.watches[0].name, "redis");
  EXPECT_EQ(r.config.watches[1].name, "disk");
  EXPECT_EQ(r.config.watches[2].name, "agent");

  const auto& redis = *r.config.find_watch("redis");
  ASSERT_TRUE(redis.check);
  EXPECT_EQ(redis.check->kind, ProbeKind::tcp);
  EXPECT_EQ(redis.check->target, "127.0.0.1:6379");
  EXPECT_EQ(redis.check->interval, 10s);
  EXPECT_EQ(redis.check->timeout, 2s);
  EXPECT_EQ(redis.check->failures, 3);
  EXPECT_EQ(redis.check->initial_delay, 0s);  // not 5s as for a program's probe
  EXPECT_TRUE(redis.notify_socket.empty());
  EXPECT_TRUE(redis.on_failure.empty());  // a watch may only report
  EXPECT_EQ(redis.action_timeout, 30s);

  const auto& disk = *r.config.find_watch("disk");
  EXPECT_EQ(disk.check->kind, ProbeKind::exec);
  EXPECT_EQ(disk.check->command[0], "/bin/sh");
  EXPECT_EQ(disk.on_failure,
            (std::vector<std::vector<std::string>>{{"/bin/sh", "-c", "logger disk almost full"},
                                                   {"touch", "/tmp/disk-full"}}));

  const auto& agent = *r.config.find_watch("agent");
  EXPECT_FALSE(agent.check);
  EXPECT_EQ(agent.notify_socket, "/etc/vigil/run/agent.sock");  // relative to the config
  EXPECT_EQ(agent.heartbeat, (HeartbeatConfig{1s, 3, 30s}));
  EXPECT_EQ(r.config.find_watch("nope"), nullptr);
}

TEST(ConfigParse, EmptyWatchTableHasNoWatches) {
  auto r = parse("[watch]\n");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_TRUE(r.config.watches.empty());
}

TEST(ConfigParse, PidPlaceholderInANotifyWatchIsKeptForRunTime) {
  auto r = parse(R"(
[watch.g]
notify_socket = "/run/g.sock"
on_failure = [["kill", "-9", "{pid}"], "kill -0 {pid} || start-g"]
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config.watches[0].on_failure,
            (std::vector<std::vector<std::string>>{
                {"kill", "-9", "{pid}"}, {"/bin/sh", "-c", "kill -0 {pid} || start-g"}}));
}

TEST(ConfigErrors, WatchNeedsExactlyOneKind) {
  EXPECT_EQ(errors_of(R"(
[watch.a]
on_failure = ["true"]
[watch.b]
http = "http://127.0.0.1/"
notify_socket = "b.sock"
)"),
            (Errors{
                R"(1:8: [watch.a]: one of http, tcp, exec or notify_socket is required (e.g. http = "http://127.0.0.1:8000/status"))",
                "5:1: [watch.b] sets http and notify_socket: a watch takes exactly one of http, tcp, exec or notify_socket",
            }));
}

TEST(ConfigErrors, WatchNamesAndTables) {
  EXPECT_EQ(errors_of("watch = 3\n"),
            Errors{"1:9: watch: expected a table of watches, got an integer"});
  EXPECT_EQ(errors_of(R"(
[watch]
"bad name" = { tcp = "127.0.0.1:1" }
legacy = "http://127.0.0.1/"
)"),
            (Errors{
                R"(2:1: watch name "bad name" is invalid (use letters, digits, "_", "." and "-"))",
                "3:10: watch.legacy: expected a table, got a string",
            }));
}

TEST(ConfigErrors, NotifySocketWatchRejectsCheckKeys) {
  const std::string kWhy =
      ": not used by a notify_socket watch, which is judged by its heartbeat = { interval, "
      "misses, grace }";
  EXPECT_EQ(errors_of(R"(
[watch.g]
notify_socket = "g.sock"
interval = "5s"
timeout = "1s"
failures = 2
initial_delay = "1s"
expect_status = 200
expect_body = "ok"
heartbeat = { interval = "5s" }
)"),
            (Errors{
                "3:1: interval" + kWhy,
                "4:1: timeout" + kWhy,
                "5:1: failures" + kWhy,
                "6:1: initial_delay" + kWhy,
                "7:1: expect_status" + kWhy,
                "8:1: expect_body" + kWhy,
            }));
}

TEST(ConfigErrors, CheckWatchRejectsHeartbeatAndPid) {
  EXPECT_EQ(errors_of(R"(
[watch.a]
tcp = "127.0.0.1:80"
heartbeat = { interval = "1s" }
on_failure = [["kill", "{pid}"], "kill -9 {pid}"]
expect_body = "x"
[watch.b]
exec = ["check"]
[watch.b.heartbeat]
misses = 2
)"),
            (Errors{
                "3:1: heartbeat: only a notify_socket watch has one (this tcp watch fails after `failures` failed checks in a row)",
                "4:24: on_failure[0][1]: {pid} is only known to a notify_socket watch (MAINPID=)",
                "4:34: on_failure[1]: {pid} is only known to a notify_socket watch (MAINPID=)",
                "5:1: expect_body: only an http check has it (this check is tcp)",
                "8:10: heartbeat: only a notify_socket watch has one (this exec watch fails after `failures` failed checks in a row)",
            }));
}

TEST(ConfigErrors, PortPlaceholderHasNoValueInAWatch) {
  const std::string kWhy = ": {port} has no value in a watch (no port is known); write the port number";
  EXPECT_EQ(errors_of(R"(
[watch.a]
http = "http://127.0.0.1:{port}/"
[watch.b]
exec = ["probe", "{port}"]
on_failure = ["curl http://127.0.0.1:{port}/restart"]
[watch.c]
notify_socket = "c.sock"
on_failure = [["restart", "--port={port}"]]
)"),
            (Errors{
                "2:8: http" + kWhy,
                "4:18: exec[1]" + kWhy,
                "5:15: on_failure[0]" + kWhy,
                "8:27: on_failure[0][1]" + kWhy,
            }));
}

TEST(ConfigErrors, WatchValues) {
  EXPECT_EQ(errors_of(R"(
[watch.a]
http = "http://localhost:8000/"
on_failure = "curl x"
action_timeout = "0s"
[watch.b]
tcp = "db.internal:5432"
on_failure = [[], [""], ["a", 2], 3]
action_timeout = 30
[watch.c]
notify_socket = ""
colour = "red"
[watch.c.heartbeat]
interval = "1ms"
)"),
            (Errors{
                R"(3:14: on_failure: expected an array of commands such as [["curl", "-fsS", "URL"]] or ["systemctl restart app"], got a string)",
                "4:18: action_timeout: must be greater than 0s",
                R"(6:7: tcp: "db.internal" is not an IPv4 address (host names are not resolved) (write HOST:PORT with an IP address or localhost), got "db.internal:5432")",
                "7:15: on_failure[0]: must not be empty",
                "7:20: on_failure[1][0]: must not be empty",
                "7:31: on_failure[2][1]: expected a string, got an integer",
                "7:35: on_failure[3]: expected an array of strings or a string, got an integer",
                R"(8:18: action_timeout: expected a duration string such as "5s", got an integer)",
                "10:17: notify_socket: must not be empty",
                R"(11:1: unknown key "colour" in [watch.c])",
                "13:12: interval: must be at least 10ms, got 1ms",
            }));
}

TEST(ConfigErrors, NotifySocketsAreOneWatchEachAndNotTheControlSocket) {
  const std::string long_path = "/run/" + std::string(100, 'x') + ".sock";
  EXPECT_EQ(errors_of(R"(
[watch.a]
notify_socket = "run/a.sock"
[watch.b]
notify_socket = "/etc/vigil/run/./a.sock"
[watch.c]
notify_socket = "run/vigil.sock"
[watch.d]
notify_socket = ")" + long_path + R"("
[vigil]
control_socket = "run/vigil.sock"
)"),
            (Errors{
                R"(4:17: notify_socket: "/etc/vigil/run/a.sock" is already the socket of [watch.a])",
                R"(6:17: notify_socket: "/etc/vigil/run/vigil.sock" is vigil's control_socket; give the watch a path of its own)",
                "8:17: notify_socket: \"" + long_path +
                    "\" is 110 bytes long; a unix socket path holds at most 107 (choose a shorter one)",
            }));
}

TEST(ConfigErrors, WatchNameMustNotNameAProgram) {
  EXPECT_EQ(errors_of(R"(
[programs.web]
command = "x"
[watch.web]
tcp = "127.0.0.1:80"
)"),
            Errors{R"(3:8: [watch.web]: "web" already names a program; give the watch another name (vigil status NAME must name one thing))"});
}

// --- several at once --------------------------------------------------------

TEST(ConfigErrors, EveryErrorIsReportedInFileOrder) {
  auto r = parse(R"(
[vigil]
log_level = "loud"

[programs.web]
command = []
instances = -2
zzz = 1
autostart = "yes"
restart_delay = "5x"

[programs.api]
command = "x"
after = ["nope"]
aaa = true
)");
  ASSERT_EQ(r.errors.size(), 8u);
  std::vector<std::string> lines;
  for (const auto& e : r.errors) lines.push_back(e.to_string());
  EXPECT_EQ(lines, (Errors{
                       R"(/etc/vigil/vigil.toml:2:13: log_level: expected "trace", "debug", "info", "warn", "error", "critical" or "off", got "loud")",
                       "/etc/vigil/vigil.toml:5:11: command: must not be empty",
                       "/etc/vigil/vigil.toml:6:13: instances: must be between 1 and 10000, or \"max\" or 0 (one per CPU) or -1 (one per CPU but one), got -2",
                       R"(/etc/vigil/vigil.toml:7:1: unknown key "zzz" in [programs.web])",
                       "/etc/vigil/vigil.toml:8:13: autostart: expected a boolean, got a string",
                       R"(/etc/vigil/vigil.toml:9:17: restart_delay: invalid duration "5x" (expected e.g. "250ms", "5s", "1m30s"))",
                       R"(/etc/vigil/vigil.toml:13:10: after: no program named "nope")",
                       R"(/etc/vigil/vigil.toml:14:1: unknown key "aaa" in [programs.api])",
                   }));
}

TEST(ConfigError, ToStringWithAndWithoutPosition) {
  EXPECT_EQ((ConfigError{"/a/b.toml", 3, 7, "oops"}).to_string(), "/a/b.toml:3:7: oops");
  EXPECT_EQ((ConfigError{"/a/b.toml", 0, 0, "oops"}).to_string(), "/a/b.toml: oops");
}

// --- words and signals --------------------------------------------------------

TEST(ConfigWords, EnumsPrintTheirConfigWords) {
  EXPECT_STREQ(to_string(RestartMode::always), "always");
  EXPECT_STREQ(to_string(RestartMode::on_failure), "on-failure");
  EXPECT_STREQ(to_string(RestartMode::never), "never");
  EXPECT_STREQ(to_string(ReadyMode::uptime), "uptime");
  EXPECT_STREQ(to_string(ReadyMode::notify), "notify");
  EXPECT_STREQ(to_string(ReadyMode::probe), "probe");
  EXPECT_STREQ(to_string(LogMode::split), "split");
  EXPECT_STREQ(to_string(LogMode::combined), "combined");
  EXPECT_STREQ(to_string(LogMode::off), "off");
  EXPECT_STREQ(to_string(ProbeKind::http), "http");
  EXPECT_STREQ(to_string(ProbeKind::tcp), "tcp");
  EXPECT_STREQ(to_string(ProbeKind::exec), "exec");
  EXPECT_STREQ(to_string(StickyHash::ip), "ip");
  EXPECT_STREQ(to_string(StickyHash::x_forwarded_for), "x-forwarded-for");
}

TEST(Signals, ParseWithAndWithoutPrefix) {
  const std::pair<const char*, int> kNames[] = {
      {"TERM", SIGTERM}, {"INT", SIGINT},   {"HUP", SIGHUP},   {"QUIT", SIGQUIT},
      {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
  };
  for (const auto& [name, sig] : kNames) {
    EXPECT_EQ(parse_signal(name), sig) << name;
    EXPECT_EQ(parse_signal(std::string("SIG") + name), sig) << name;
    EXPECT_EQ(signal_name(sig), name);
  }
}

TEST(Signals, RejectsOtherNames) {
  for (const char* bad : {"", "SIG", "term", "sigterm", "SIGFOO", "15", "SEGV", "SIGSIGTERM",
                          " TERM", "TERM "}) {
    EXPECT_EQ(parse_signal(bad), std::nullopt) << bad;
  }
}

TEST(Signals, NamesSignalsAChildMayDieOf) {
  EXPECT_EQ(signal_name(SIGSEGV), "SEGV");
  EXPECT_EQ(signal_name(SIGABRT), "ABRT");
  EXPECT_EQ(signal_name(SIGPIPE), "PIPE");
  EXPECT_EQ(signal_name(SIGCHLD), "CHLD");
  EXPECT_EQ(signal_name(99), "99");
}

// --- listen: the sockets vigil holds ------------------------------------------

TEST(ConfigParse, ListenDefaultsToNoSockets) {
  auto r = parse("[programs.web]\ncommand = \"x\"\n");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.config.programs[0].listen.empty());
}

TEST(ConfigParse, ListenTcpUnixAndNamesInOrder) {
  auto r = parse(R"(
[programs.web]
command = "x"
listen = ["0.0.0.0:8080", "[::]:8080", "unix:/run/web.sock", "admin=unix:run/admin.sock",
          "http=127.0.0.1:80", ":8081", "[0:0::1]:9000", "unix:/srv/a=b.sock"]
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& l = r.config.programs[0].listen;
  ASSERT_EQ(l.size(), 8u);
  EXPECT_EQ(l[0].kind, SocketKind::tcp);
  EXPECT_EQ(l[0].address(), "0.0.0.0:8080");
  EXPECT_EQ(l[0].name, "web");  // systemd's default: the unit's name
  EXPECT_FALSE(l[0].tcp.ipv6);
  EXPECT_EQ(l[1].address(), "[::]:8080");
  EXPECT_TRUE(l[1].tcp.ipv6);
  EXPECT_EQ(l[2].kind, SocketKind::unix_stream);
  EXPECT_EQ(l[2].path, "/run/web.sock");
  EXPECT_EQ(l[2].address(), "unix:/run/web.sock");
  EXPECT_EQ(l[3].name, "admin");
  EXPECT_EQ(l[3].path, "/etc/vigil/run/admin.sock");  // relative to the config's folder
  EXPECT_EQ(l[4].name, "http");
  EXPECT_EQ(l[4].address(), "127.0.0.1:80");
  EXPECT_EQ(l[5].address(), "0.0.0.0:8081");  // ":PORT" is every IPv4 address
  EXPECT_EQ(l[6].address(), "[::1]:9000");    // one spelling per address
  EXPECT_EQ(l[7].name, "web");                // "=" in a path is no name
  EXPECT_EQ(l[7].path, "/srv/a=b.sock");
}

TEST(ConfigErrors, ListenEntries) {
  EXPECT_EQ(errors_of(R"(
[programs.web]
command = "x"
listen = ["0.0.0.0:0", "localhost:80", "unix:", 8080, "bad name=:80", "0.0.0.0"]
[programs.api]
command = "x"
listen = "0.0.0.0:8080"
[programs.long]
command = "x"
listen = ["unix:/tmp/)" + std::string(100, 'x') + R"(.sock"]
)"),
            (Errors{
                R"(3:11: listen[0]: port 0 would be any free port, which no client could find; give the port clients connect to, got "0.0.0.0:0")",
                R"(3:24: listen[1]: "localhost" is not an IPv4 address (host names are not resolved) (or unix:PATH), got "localhost:80")",
                R"(3:40: listen[2]: "unix:" needs a path, e.g. "unix:/run/web.sock")",
                "3:49: listen[3]: expected a string, got an integer",
                R"(3:55: listen[4]: invalid socket name "bad name" (use letters, digits, "_", "." and "-"), got "bad name=:80")",
                R"(3:71: listen[5]: expected HOST:PORT, e.g. "127.0.0.1:9321" (or unix:PATH), got "0.0.0.0")",
                R"(6:10: listen: expected an array of addresses such as ["0.0.0.0:8080", "unix:/run/web.sock"], got a string)",
                R"(9:11: listen[0]: "/tmp/)" + std::string(100, 'x') +
                    R"(.sock" is 110 bytes long; a unix socket path holds at most 107 (choose a shorter one))",
            }));
}

TEST(ConfigErrors, ListenClaimsEachAddressOnce) {
  EXPECT_EQ(errors_of(R"(
[vigil]
control_socket = "/run/vigil.sock"
[http]
listen = "127.0.0.1:9321"
[programs.web]
command = "x"
listen = ["0.0.0.0:8080", "[::]:8080", "unix:/run/web.sock", "0.0.0.0:8080"]
[programs.api]
command = "x"
listen = ["127.0.0.1:8080", "[::1]:8081", "unix:/run/web.sock", "0.0.0.0:9321"]
[programs.ctl]
command = "x"
listen = ["unix:/run/vigil.sock", "unix:/run/guarded.sock", "10.0.0.1:8081"]
[watch.guarded]
notify_socket = "/run/guarded.sock"
)"),
            (Errors{
                R"(7:62: listen: "0.0.0.0:8080" is already claimed by [programs.web]; a socket is held for one program only)",
                R"(10:11: listen: "127.0.0.1:8080" overlaps "0.0.0.0:8080" of [programs.web]; a socket is held for one program only)",
                R"(10:43: listen: "unix:/run/web.sock" is already claimed by [programs.web]; a socket is held for one program only)",
                R"(10:65: listen: "0.0.0.0:9321" overlaps "127.0.0.1:9321" of [http] listen; a socket is held for one program only)",
                R"(13:11: listen: "unix:/run/vigil.sock" is already claimed by vigil's control_socket; a socket is held for one program only)",
                R"(13:35: listen: "unix:/run/guarded.sock" is already claimed by [watch.guarded] notify_socket; a socket is held for one program only)",
            }));
}

TEST(ConfigErrors, ListenVariablesAreNotSetInEnvToo) {
  EXPECT_EQ(errors_of(R"(
[programs.web]
command = "x"
env = { LISTEN_FDS = "1", LISTEN_PID = "1" }
listen = ["0.0.0.0:8080"]
[programs.plain]
command = "x"
env = { LISTEN_FDS = "1" }
)"),
            (Errors{
                "4:10: listen: env sets LISTEN_FDS, which vigil sets from listen; remove it from env",
                "4:10: listen: env sets LISTEN_PID, which vigil sets from listen; remove it from env",
            }));
}

// --- sticky: one public port for the instances ---------------------------------

TEST(ConfigParse, StickyDefaults) {
  auto r = parse(R"(
[programs.web]
command = "x"
instances = 4
[programs.web.sticky]
listen = "0.0.0.0:8080"
port_base = 3131
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& p = r.config.programs[0];
  EXPECT_EQ(p.port_base, 3131);
  ASSERT_TRUE(p.sticky);
  EXPECT_EQ(p.sticky->listen, (ListenAddress{"0.0.0.0", 8080, false}));
  EXPECT_EQ(p.sticky->hash, StickyHash::ip);
  EXPECT_EQ(p.sticky->max_connections, 10000);
  EXPECT_EQ(p.sticky->idle_timeout, 10min);
  EXPECT_EQ(p.sticky->connect_timeout, 5s);
  EXPECT_EQ(*p.sticky, StickyConfig{p.sticky->listen});
}

TEST(ConfigParse, StickyReadsEveryKey) {
  auto r = parse(R"(
[programs.web]
command = "x"
instances = 2
probe = { http = "http://127.0.0.1:{port}/health" }
[programs.web.sticky]
listen = ":8080"
port_base = 4000
hash = "x-forwarded-for"
max_connections = 500
idle_timeout = "1m30s"
connect_timeout = "250ms"

[programs.api]
command = "x"
sticky = { listen = "[0:0::1]:0", port_base = 5000, hash = "ip" }
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  const auto& web = r.config.programs[0];
  ASSERT_TRUE(web.sticky);
  // Written as ":8080", kept as the canonical address.
  EXPECT_EQ(web.sticky->listen, (ListenAddress{"0.0.0.0", 8080, false}));
  EXPECT_EQ(web.sticky->hash, StickyHash::x_forwarded_for);
  EXPECT_EQ(web.sticky->max_connections, 500);
  EXPECT_EQ(web.sticky->idle_timeout, 90s);
  EXPECT_EQ(web.sticky->connect_timeout, 250ms);
  // sticky.port_base is the program's: PORT and {port} use it.
  EXPECT_EQ(web.port_base, 4000);
  ASSERT_TRUE(web.probe);

  const auto& api = r.config.programs[1];
  ASSERT_TRUE(api.sticky);
  EXPECT_EQ(api.sticky->listen, (ListenAddress{"::1", 0, true}));
  EXPECT_EQ(api.sticky->hash, StickyHash::ip);
  EXPECT_EQ(api.port_base, 5000);
}

TEST(ConfigParse, StickyUsesTheProgramsPortBase) {
  auto r = parse(R"(
[programs.web]
command = "x"
port_base = 3131
sticky = { listen = "127.0.0.1:8080" }

[programs.api]
command = "x"
port_base = 4000
[programs.api.sticky]
listen = "127.0.0.1:8081"
port_base = 4000
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config.programs[0].port_base, 3131);
  ASSERT_TRUE(r.config.programs[0].sticky);
  EXPECT_EQ(r.config.programs[1].port_base, 4000);
}

TEST(ConfigErrors, StickyNeedsPortBase) {
  EXPECT_EQ(errors_of(R"(
[programs.web]
command = "x"
sticky = { listen = "0.0.0.0:8080" }

[programs.api]
command = "x"
[programs.api.sticky]
listen = "0.0.0.0:8081"
)"),
            (Errors{
                "3:1: sticky needs port_base = N (instance i gets PORT=port_base+i and is "
                "reached at 127.0.0.1:port_base+i)",
                "7:15: sticky needs port_base = N (instance i gets PORT=port_base+i and is "
                "reached at 127.0.0.1:port_base+i)",
            }));
}

TEST(ConfigErrors, StickyNeedsListen) {
  EXPECT_EQ(errors_of(R"(
[programs.web]
command = "x"
port_base = 3000
[programs.web.sticky]
hash = "ip"
)"),
            (Errors{
                R"(4:15: [programs.web.sticky]: listen is required (e.g. listen = "0.0.0.0:8080"))",
            }));
}

// One value, written in one place or the other, or in both alike.
TEST(ConfigErrors, StickyPortBaseDiffersFromTheProgramsAtTheSecond) {
  EXPECT_EQ(errors_of(R"(
[programs.web]
command = "x"
port_base = 3000
[programs.web.sticky]
listen = "0.0.0.0:8080"
port_base = 3001

[programs.api]
command = "x"
sticky = { listen = "0.0.0.0:8081", port_base = 4000 }
port_base = 4001
)"),
            (Errors{
                "6:13: port_base: 3001 differs from port_base = 3000 in [programs.web]; it is "
                "one value, write it once",
                "11:13: port_base: 4001 differs from port_base = 4000 in [programs.api.sticky]; "
                "it is one value, write it once",
            }));
}

// A bad port_base (either one) has its own error: no "needs port_base" on top.
TEST(ConfigErrors, StickyWithABadPortBaseSaysItOnce) {
  EXPECT_EQ(errors_of(R"(
[programs.web]
command = "x"
sticky = { listen = "0.0.0.0:8080", port_base = 0 }

[programs.api]
command = "x"
port_base = "4000"
sticky = { listen = "0.0.0.0:8081" }

[programs.db]
command = "x"
instances = 10
sticky = { listen = "0.0.0.0:8082", port_base = 65530 }
)"),
            (Errors{
                "3:49: port_base: must be between 1 and 65535, got 0",
                "7:13: port_base: expected an integer, got a string",
                "13:49: port_base: 65530 + 10 instances goes past port 65535 (the last would get "
                "65539); use a port_base of at most 65526",
            }));
}

TEST(ConfigErrors, StickyValues) {
  EXPECT_EQ(errors_of(R"(
[programs.web]
command = "x"
port_base = 3000
[programs.web.sticky]
listen = "localhost:8080"
hash = "cookie"
max_connections = 0
idle_timeout = "0s"
connect_timeout = "soon"
colour = "blue"

[programs.api]
command = "x"
port_base = 4000
[programs.api.sticky]
listen = 8080
hash = 1
max_connections = 1000001
idle_timeout = 5
connect_timeout = "0ms"

[programs.db]
command = "x"
port_base = 5000
sticky = "0.0.0.0:8080"
)"),
            (Errors{
                R"(5:10: listen: "localhost" is not an IPv4 address (host names are not resolved), got "localhost:8080")",
                R"(6:8: hash: expected "ip" or "x-forwarded-for", got "cookie")",
                "7:19: max_connections: must be between 1 and 1000000, got 0",
                "8:16: idle_timeout: must be greater than 0s",
                R"(9:19: connect_timeout: invalid duration "soon" (expected e.g. "250ms", "5s", "1m30s"))",
                R"(10:1: unknown key "colour" in [programs.web.sticky])",
                "16:10: listen: expected a string, got an integer",
                "17:8: hash: expected a string, got an integer",
                "18:19: max_connections: must be between 1 and 1000000, got 1000001",
                R"(19:16: idle_timeout: expected a duration string such as "5s", got an integer)",
                "20:19: connect_timeout: must be greater than 0s",
                R"(25:10: sticky: expected a table such as { listen = "0.0.0.0:8080", port_base = 3131 }, got a string)",
            }));
}

TEST(ConfigErrors, StickyListenMustNotBeAnInstancesPort) {
  EXPECT_EQ(errors_of(R"(
[programs.web]
command = "x"
instances = 4
port_base = 3131
sticky = { listen = "0.0.0.0:3134" }

[programs.api]
command = "x"
sticky = { listen = "127.0.0.1:4000", port_base = 4000 }

[programs.ok]
command = "x"
instances = 4
sticky = { listen = "0.0.0.0:3130", port_base = 3131 }

[programs.ok2]
command = "x"
instances = 4
sticky = { listen = "0.0.0.0:5004", port_base = 5000 }
)"),
            (Errors{
                "5:21: listen: port 3134 is instance 3's port (port_base 3131 + 3); the proxy "
                "needs a port outside the instances' (3131-3134)",
                "9:21: listen: port 4000 is instance 0's port (port_base 4000 + 0); the proxy "
                "needs a port outside the instances' (4000)",
            }));
}

TEST(ConfigErrors, StickyListenClaimsItsAddressOnce) {
  EXPECT_EQ(errors_of(R"(
[http]
listen = "127.0.0.1:9321"

[programs.web]
command = "x"
port_base = 3000
listen = ["0.0.0.0:9000"]
sticky = { listen = "0.0.0.0:8080" }

[programs.api]
command = "x"
port_base = 4000
sticky = { listen = "0.0.0.0:8080" }

[programs.admin]
command = "x"
port_base = 5000
sticky = { listen = "0.0.0.0:9321" }

[programs.db]
command = "x"
port_base = 6000
sticky = { listen = "127.0.0.1:9000" }

[programs.self]
command = "x"
port_base = 7000
listen = ["127.0.0.1:7777"]
sticky = { listen = "127.0.0.1:7777" }

[programs.late]
command = "x"
listen = ["127.0.0.1:8080"]

[programs.v6]
command = "x"
port_base = 8000
sticky = { listen = "[::]:8080" }

[programs.any1]
command = "x"
port_base = 8100
sticky = { listen = "127.0.0.1:0" }

[programs.any2]
command = "x"
port_base = 8200
sticky = { listen = "127.0.0.1:0" }
)"),
            (Errors{
                R"(13:21: listen: "0.0.0.0:8080" is already claimed by [programs.web.sticky]; the sticky proxy needs an address of its own)",
                R"(18:21: listen: "0.0.0.0:9321" overlaps "127.0.0.1:9321" of [http] listen; the sticky proxy needs an address of its own)",
                R"(23:21: listen: "127.0.0.1:9000" overlaps "0.0.0.0:9000" of [programs.web]; the sticky proxy needs an address of its own)",
                R"(29:21: listen: "127.0.0.1:7777" is already claimed by [programs.self]; the sticky proxy needs an address of its own)",
                R"(33:11: listen: "127.0.0.1:8080" overlaps "0.0.0.0:8080" of [programs.web.sticky]; a socket is held for one program only)",
            }));
}

}  // namespace
}  // namespace vigil
