// vigil import's converters: pm2 ecosystem JSON and supervisord.conf to
// vigil.toml text, and the notes on what did not carry over. Each result
// is also parsed back with parse_config: what import writes must be valid.
#include "import_config.h"

#include <gtest/gtest.h>

#include "config_parse.h"

namespace vigil {
namespace {

const std::string kFile = "/srv/app/vigil.toml";

Config parsed(const ImportResult& r) {
  EXPECT_TRUE(r.ok()) << r.error;
  ConfigInputs in;
  in.cpu_count = 4;
  auto p = parse_config(r.toml, kFile, in);
  for (const auto& e : p.errors) ADD_FAILURE() << e.to_string() << "\n" << r.toml;
  return p.config;
}

std::vector<std::string> notes(const ImportResult& r) {
  std::vector<std::string> out;
  for (const auto& n : r.notes) out.push_back(n.program + ": " + n.setting);
  return out;
}

using Strings = std::vector<std::string>;

// --- pm2 ------------------------------------------------------------------------

TEST(ImportPm2, DocsExampleWithClusterAndEnvironments) {
  auto r = import_pm2(R"({
    "apps": [{"name": "app", "script": "./app.js", "instances": "max", "exec_mode": "cluster",
              "env": {"NODE_ENV": "development"}, "env_production": {"NODE_ENV": "production"}}],
    "deploy": {"production": {"user": "node"}}})",
                      "ecosystem.config.js");
  Config c = parsed(r);
  ASSERT_EQ(c.programs.size(), 1u);
  const auto& p = c.programs[0];
  EXPECT_EQ(p.name, "app");
  EXPECT_EQ(p.command, (Strings{"node", "./app.js"}));
  EXPECT_EQ(p.instances, 4);
  EXPECT_EQ(p.env, (std::map<std::string, std::string>{{"NODE_ENV", "development"}}));
  EXPECT_NE(r.toml.find("instances = \"max\""), std::string::npos) << r.toml;
  EXPECT_EQ(notes(r), (Strings{": deploy", "app: env_production", "app: exec_mode"}));
}

TEST(ImportPm2, EverySettingThatMaps) {
  auto r = import_pm2(R"([{
    "name": "api", "script": "server.js", "args": "--port 80 'a b'", "node_args": ["--max-old-space-size=512"],
    "cwd": "/srv/api", "env": {"N": 1, "B": true, "P": "a$b"}, "instances": 2, "autorestart": false,
    "max_memory_restart": "300M", "kill_timeout": 3000, "restart_delay": 250, "min_uptime": "5s",
    "max_restarts": 7, "autostart": false, "user": "www", "time": true, "port": 3000}])",
                      "x.json");
  Config c = parsed(r);
  ASSERT_EQ(c.programs.size(), 1u);
  const auto& p = c.programs[0];
  EXPECT_EQ(p.command, (Strings{"node", "--max-old-space-size=512", "server.js", "--port", "80", "a b"}));
  EXPECT_EQ(p.cwd, "/srv/api");
  EXPECT_EQ(p.env, (std::map<std::string, std::string>{
                       {"N", "1"}, {"B", "true"}, {"P", "a$b"}, {"PORT", "3000"}}));
  EXPECT_EQ(p.instances, 2);
  EXPECT_EQ(p.restart, RestartMode::never);
  EXPECT_EQ(p.memory_limit_bytes, 300ull << 20);
  EXPECT_EQ(p.stop_timeout, std::chrono::seconds(3));
  EXPECT_EQ(p.restart_delay, std::chrono::milliseconds(250));
  EXPECT_EQ(p.min_uptime, std::chrono::seconds(5));
  EXPECT_EQ(p.max_restarts, 7);
  EXPECT_FALSE(p.autostart);
  EXPECT_EQ(p.user, "www");
  EXPECT_TRUE(p.log_timestamps);
  EXPECT_TRUE(r.notes.empty()) << r.notes.front().to_string();
}

TEST(ImportPm2, InterpretersByExtensionOrAsWritten) {
  auto r = import_pm2(R"({"apps": [
    {"name": "py", "script": "worker.py"},
    {"name": "bin", "script": "/usr/bin/redis-server", "args": ["--port", "6380"]},
    {"name": "npm", "script": "npm", "args": "start"},
    {"name": "own", "script": "app.js", "interpreter": "/usr/local/bin/node18", "interpreter_args": "--inspect"},
    {"name": "none", "script": "./run.js", "interpreter": "none"},
    {"script": "lib/queue.js"}]})",
                      "e.json");
  Config c = parsed(r);
  ASSERT_EQ(c.programs.size(), 6u);
  EXPECT_EQ(c.programs[0].command, (Strings{"python3", "worker.py"}));
  EXPECT_EQ(c.programs[1].command, (Strings{"/usr/bin/redis-server", "--port", "6380"}));
  EXPECT_EQ(c.programs[2].command, (Strings{"npm", "start"}));
  EXPECT_EQ(c.programs[3].command, (Strings{"/usr/local/bin/node18", "--inspect", "app.js"}));
  EXPECT_EQ(c.programs[4].command, (Strings{"./run.js"}));
  EXPECT_EQ(c.programs[5].name, "queue");  // no name: the script's, as pm2 does
}

TEST(ImportPm2, NamesBecomeValidAndUnique) {
  auto r = import_pm2(R"({"apps": [{"name": "my app", "script": "a.js"}, {"name": "my-app", "script": "b.js"}]})", "e.json");
  Config c = parsed(r);
  ASSERT_EQ(c.programs.size(), 2u);
  EXPECT_EQ(c.programs[0].name, "my-app");
  EXPECT_EQ(c.programs[1].name, "my-app-2");
  EXPECT_EQ(notes(r), (Strings{"my app: name", "my-app: name"}));
}

TEST(ImportPm2, LogsAndWhatHasNoEquivalent) {
  auto r = import_pm2(R"({"apps": [
    {"name": "a", "script": "a.js", "out_file": "/var/log/a.log", "error_file": "/var/log/a.log",
     "log_date_format": "YYYY-MM-DD", "watch": true, "cron_restart": "0 0 * * *", "wait_ready": true,
     "exp_backoff_restart_delay": 100, "increment_var": "PORT", "vizion": false},
    {"name": "b", "script": "b.js", "out_file": "/dev/null", "error_file": "/dev/null", "watch": false}]})",
                      "e.json");
  Config c = parsed(r);
  ASSERT_EQ(c.programs.size(), 2u);
  EXPECT_EQ(c.programs[0].log, LogMode::combined);
  EXPECT_EQ(c.programs[0].restart_delay, std::chrono::milliseconds(100));
  EXPECT_EQ(c.programs[1].log, LogMode::off);
  EXPECT_EQ(notes(r), (Strings{"a: cron_restart", "a: exp_backoff_restart_delay", "a: increment_var",
                               "a: log_date_format", "a: vizion", "a: wait_ready", "a: watch",
                               "a: out_file"}));
}

TEST(ImportPm2, WhatCannotBeReadIsAnError) {
  EXPECT_NE(import_pm2("module.exports = {}", "e.js").error.find("not JSON"), std::string::npos);
  EXPECT_EQ(import_pm2(R"({"app": []})", "e.json").error,
            R"(no "apps" array (expected {"apps": [{"name": ..., "script": ...}]}))");
  auto r = import_pm2(R"({"apps": [{"name": "x"}]})", "e.json");
  EXPECT_EQ(r.error, "no app with a script to convert");
  EXPECT_EQ(notes(r), (Strings{"x: script"}));
}

// --- supervisord ------------------------------------------------------------------

TEST(ImportSupervisord, DocsProgramSection) {
  auto r = import_supervisord(R"(
[supervisord]
logfile=/tmp/supervisord.log ; main log file

[program:cat]
command=/bin/cat
process_name=%(program_name)s
numprocs=1
directory=/tmp
umask=022
priority=999
autostart=true
autorestart=unexpected
startsecs=10
startretries=3
exitcodes=0
stopsignal=TERM
stopwaitsecs=10
stopasgroup=false
killasgroup=false
user=chrism
redirect_stderr=false
stdout_logfile=/a/path
stdout_logfile_maxbytes=1MB
stdout_logfile_backups=10
stdout_capture_maxbytes=1MB
stdout_events_enabled=false
stderr_logfile=/a/path
stderr_logfile_maxbytes=1MB
stderr_logfile_backups=10
stderr_capture_maxbytes=1MB
stderr_events_enabled=false
environment=A="1",B="2"
serverurl=AUTO
)",
                              "supervisord.conf", "/etc/supervisor");
  Config c = parsed(r);
  ASSERT_EQ(c.programs.size(), 1u);
  const auto& p = c.programs[0];
  EXPECT_EQ(p.name, "cat");
  EXPECT_EQ(p.command, (Strings{"/bin/cat"}));
  EXPECT_EQ(p.instances, 1);
  EXPECT_EQ(p.cwd, "/tmp");
  EXPECT_TRUE(p.autostart);
  EXPECT_EQ(p.restart, RestartMode::on_failure);
  EXPECT_EQ(p.min_uptime, std::chrono::seconds(10));
  EXPECT_EQ(p.max_restarts, 3);
  EXPECT_EQ(p.exit_codes, (std::vector<int>{0}));
  EXPECT_EQ(p.stop_signal, SIGTERM);
  EXPECT_EQ(p.stop_timeout, std::chrono::seconds(10));
  EXPECT_EQ(p.user, "chrism");
  EXPECT_EQ(p.log, LogMode::split);
  EXPECT_EQ(p.log_max_size_bytes, 1'000'000u);
  EXPECT_EQ(p.log_keep, 10);
  EXPECT_EQ(p.env, (std::map<std::string, std::string>{{"A", "1"}, {"B", "2"}}));
  EXPECT_EQ(notes(r), (Strings{": [supervisord]", "cat: umask", "cat: priority",
                               "cat: stopasgroup", "cat: killasgroup",
                               "cat: stdout_capture_maxbytes", "cat: stdout_events_enabled",
                               "cat: stderr_capture_maxbytes", "cat: stderr_events_enabled",
                               "cat: serverurl", "cat: stdout_logfile", "cat: stderr_logfile"}));
}

TEST(ImportSupervisord, NumprocsAndExpansions) {
  auto r = import_supervisord(R"(
[program:worker]
command = php %(here)s/artisan queue:work --name=%(program_name)s_%(process_num)02d --env=%(ENV_APP_ENV)s
process_name=%(program_name)s_%(process_num)02d
numprocs = 3
redirect_stderr = true
environment = HOME="/home/%(program_name)s",KEY=%(ENV_KEY)s, PRICE='5$'
autorestart = true

[program:one]
command = /usr/bin/tool "%(program_name)s arg" --n=%(process_num)d 'it''s' $HOME
stdout_logfile = NONE
stderr_logfile = NONE
autorestart = false
stopsignal = SIGINT
)",
                              "s.conf", "/etc/supervisor");
  ConfigInputs in;
  in.environment = [](std::string_view n) -> std::optional<std::string> {
    return n == "APP_ENV" ? "prod" : n == "KEY" ? "k" : std::optional<std::string>{};
  };
  auto pc = parse_config(r.toml, kFile, in);
  ASSERT_TRUE(pc.ok()) << pc.errors.front().to_string() << "\n" << r.toml;
  ASSERT_EQ(pc.config.programs.size(), 2u);
  const auto& w = pc.config.programs[0];
  EXPECT_EQ(w.instances, 3);
  EXPECT_EQ(w.command, (Strings{"/bin/sh", "-c",
                                "php /etc/supervisor/artisan queue:work "
                                "--name=worker_$VIGIL_INSTANCE --env=prod"}));
  EXPECT_EQ(w.log, LogMode::combined);
  EXPECT_EQ(w.restart, RestartMode::always);
  EXPECT_EQ(w.env, (std::map<std::string, std::string>{
                       {"HOME", "/home/worker"}, {"KEY", "k"}, {"PRICE", "5$"}}));
  const auto& o = pc.config.programs[1];
  EXPECT_EQ(o.command, (Strings{"/usr/bin/tool", "one arg", "--n=0", "its", "$HOME"}));
  EXPECT_EQ(o.log, LogMode::off);
  EXPECT_EQ(o.restart, RestartMode::never);
  EXPECT_EQ(o.stop_signal, SIGINT);
  EXPECT_EQ(notes(r), (Strings{"worker: command", "worker: command"}));
}

TEST(ImportSupervisord, OtherSectionsAreNamed) {
  auto r = import_supervisord(
      "[unix_http_server]\nfile=/tmp/s.sock\n[include]\nfiles = conf.d/*.conf\n"
      "[group:g]\nprograms=a\n[eventlistener:e]\ncommand=x\n[program:a]\ncommand=sleep 1\n",
      "s.conf", "/etc");
  Config c = parsed(r);
  EXPECT_EQ(c.programs.size(), 1u);
  EXPECT_EQ(notes(r), (Strings{": [unix_http_server]", ": [include]", ": [group:g]",
                               ": [eventlistener:e]"}));
}

TEST(ImportSupervisord, NoProgramIsAnError) {
  EXPECT_EQ(import_supervisord("[supervisord]\n", "s.conf", "/etc").error,
            "no [program:NAME] section with a command to convert");
}

// --- shared -----------------------------------------------------------------------

TEST(ImportSplit, ShlexRules) {
  EXPECT_EQ(split_command_line(R"(a  'b c' "d \"e\" \\" f\ g h'i'j)"),
            (Strings{"a", "b c", R"(d "e" \)", "f g", "hij"}));
  EXPECT_EQ(split_command_line("  "), Strings{});
  EXPECT_EQ(split_command_line("a 'b"), std::nullopt);
  EXPECT_EQ(split_command_line("a \"b"), std::nullopt);
}

TEST(ImportDetect, ByNameThenByText) {
  EXPECT_EQ(detect_import_format("ecosystem.config.js", ""), ImportFormat::pm2_js);
  EXPECT_EQ(detect_import_format("ecosystem.json", ""), ImportFormat::pm2_json);
  EXPECT_EQ(detect_import_format("supervisord.conf", ""), ImportFormat::supervisord);
  EXPECT_EQ(detect_import_format("x", "; c\n[program:a]\n"), ImportFormat::supervisord);
  EXPECT_EQ(detect_import_format("x", "  {\"apps\": []}"), ImportFormat::pm2_json);
  EXPECT_EQ(detect_import_format("x", "hello"), std::nullopt);
}

}  // namespace
}  // namespace vigil
