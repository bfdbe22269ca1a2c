// parse_config with what it takes from outside (ConfigInputs): instances =
// "max", env_file, ${VAR} in command and env (issue 14, item 4).
#include "config_parse.h"

#include <gtest/gtest.h>

#include <map>

namespace vigil {
namespace {

const std::string kFile = "/etc/vigil/vigil.toml";

struct World {
  int cpus = 8;
  std::map<std::string, std::string> env{{"HOME", "/home/app"}, {"PORT", "8080"}};
  std::map<std::string, std::string> files;  // absolute path -> text
  std::vector<std::string> read;             // paths asked for

  ConfigInputs inputs() {
    ConfigInputs in;
    in.cpu_count = cpus;
    in.environment = [this](std::string_view name) -> std::optional<std::string> {
      auto it = env.find(std::string(name));
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
    in.read_file = [this](const std::filesystem::path& p, std::string* error,
                          bool* missing) -> std::optional<std::string> {
      read.push_back(p.string());
      auto it = files.find(p.string());
      if (it != files.end()) return it->second;
      if (p.string().find("unreadable") != std::string::npos) {
        *error = "Permission denied";
        *missing = false;
      } else {
        *error = "No such file or directory";
        *missing = true;
      }
      return std::nullopt;
    };
    return in;
  }

  ConfigParseResult parse(std::string_view text) {
    if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
    return parse_config(text, kFile, inputs());
  }

  std::vector<std::string> errors(std::string_view text) {
    std::vector<std::string> out;
    for (const auto& e : parse(text).errors) out.push_back(e.to_string());
    return out;
  }
};

using Errors = std::vector<std::string>;

// --- instances ----------------------------------------------------------------

TEST(ConfigInstances, MaxAndZeroAreOnePerCpuMinusOneLeavesOne) {
  World w;
  w.cpus = 6;
  auto r = w.parse(R"(
[programs.a]
command = "x"
instances = "max"
[programs.b]
command = "x"
instances = 0
[programs.c]
command = "x"
instances = -1
[programs.d]
command = "x"
instances = 3
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config.programs[0].instances, 6);
  EXPECT_EQ(r.config.programs[1].instances, 6);
  EXPECT_EQ(r.config.programs[2].instances, 5);
  EXPECT_EQ(r.config.programs[3].instances, 3);
}

TEST(ConfigInstances, MinusOneOnOneCpuIsStillOneInstance) {
  World w;
  w.cpus = 1;
  auto r = w.parse("[programs.a]\ncommand = \"x\"\ninstances = -1\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.programs[0].instances, 1);
}

TEST(ConfigInstances, DefaultInputsCountOneCpu) {
  auto r = parse_config("[programs.a]\ncommand = \"x\"\ninstances = \"max\"\n", kFile);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.programs[0].instances, 1);
}

TEST(ConfigInstances, OtherValuesAreErrorsAtTheValue) {
  World w;
  EXPECT_EQ(w.errors(R"(
[programs.a]
command = "x"
instances = "all"
[programs.b]
command = "x"
instances = -2
[programs.c]
command = "x"
instances = 10001
[programs.d]
command = "x"
instances = 1.5
)"),
            (Errors{
                kFile + R"(:3:13: instances: expected a number or "max", got "all")",
                kFile + R"(:6:13: instances: must be between 1 and 10000, or "max" or 0 (one per CPU) or -1 (one per CPU but one), got -2)",
                kFile + R"(:9:13: instances: must be between 1 and 10000, or "max" or 0 (one per CPU) or -1 (one per CPU but one), got 10001)",
                kFile + ":12:13: instances: expected an integer, got a float",
            }));
}

TEST(ConfigInstances, MaxCountsForThePortRange) {
  World w;
  w.cpus = 4;
  EXPECT_EQ(w.errors("[programs.a]\ncommand = \"x\"\ninstances = \"max\"\nport_base = 65534\n"),
            (Errors{kFile + ":4:13: port_base: 65534 + 4 instances goes past port 65535 (the "
                            "last would get 65537); use a port_base of at most 65532"}));
}

// --- env_file -----------------------------------------------------------------

TEST(ConfigEnvFile, ValuesComeFromTheFileAndEnvWins) {
  World w;
  w.files["/etc/vigil/.env"] = "# app settings\nDB_URL=postgres://db/app\nNODE_ENV=development\n";
  auto r = w.parse(R"(
[programs.web]
command = "x"
env_file = ".env"
env = { NODE_ENV = "production" }
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config.programs[0].env,
            (std::map<std::string, std::string>{{"DB_URL", "postgres://db/app"},
                                                {"NODE_ENV", "production"}}));
  EXPECT_EQ(w.read, (std::vector<std::string>{"/etc/vigil/.env"}));
}

TEST(ConfigEnvFile, AListIsReadInOrderALaterFileWins) {
  World w;
  w.files["/etc/vigil/base.env"] = "A=base\nB=base\n";
  w.files["/srv/app/local.env"] = "B=local\n";
  auto r = w.parse(R"(
[programs.web]
command = "x"
env_file = ["base.env", "/srv/app/local.env", "-missing.env"]
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config.programs[0].env,
            (std::map<std::string, std::string>{{"A", "base"}, {"B", "local"}}));
  EXPECT_EQ(w.read, (std::vector<std::string>{"/etc/vigil/base.env", "/srv/app/local.env",
                                              "/etc/vigil/missing.env"}));
}

TEST(ConfigEnvFile, AMissingFileIsAnErrorAtTheKeyUnlessDashed) {
  World w;
  EXPECT_EQ(w.errors(R"(
[programs.web]
command = "x"
env_file = "nope.env"
[programs.ok]
command = "x"
env_file = "-nope.env"
[programs.bad]
command = "x"
env_file = ["-a.env", "b.env", "unreadable.env"]
)"),
            (Errors{
                kFile + R"(:3:12: env_file: "/etc/vigil/nope.env" does not exist (write "-nope.env" to go on without it))",
                kFile + R"(:9:23: env_file[1]: "/etc/vigil/b.env" does not exist (write "-b.env" to go on without it))",
                kFile + R"(:9:32: env_file[2]: cannot read "/etc/vigil/unreadable.env": Permission denied)",
            }));
}

TEST(ConfigEnvFile, ErrorsInTheFileNameItsOwnLines) {
  World w;
  w.files["/etc/vigil/.env"] = "A=1\n\nnot a line\nB=\"open\n";
  auto r = w.parse("[programs.web]\ncommand = \"x\"\nenv_file = \".env\"\n");
  std::vector<std::string> got;
  for (const auto& e : r.errors) got.push_back(e.to_string());
  EXPECT_EQ(got, (Errors{
                     R"(/etc/vigil/.env:3:1: expected KEY=VALUE, got "not" without "=" ([programs.web] env_file))",
                     R"(/etc/vigil/.env:4:3: the double quote opened here is not closed ([programs.web] env_file))",
                 }));
}

TEST(ConfigEnvFile, BadValuesAreTypeErrors) {
  World w;
  EXPECT_EQ(w.errors(R"(
[programs.web]
command = "x"
env_file = 3
[programs.b]
command = "x"
env_file = ["", 4]
)"),
            (Errors{
                kFile + R"(:3:12: env_file: expected a path or an array of paths such as [".env", "-.env.local"], got an integer)",
                kFile + ":6:13: env_file[0]: must not be empty",
                kFile + ":6:17: env_file[1]: expected a string, got an integer",
            }));
}

TEST(ConfigEnvFile, WithoutAReaderNoFileCanBeRead) {
  auto r = parse_config("[programs.web]\ncommand = \"x\"\nenv_file = \".env\"\n", kFile);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(),
            kFile + R"(:3:12: env_file: cannot read "/etc/vigil/.env": vigil reads no files here)");
}

TEST(ConfigEnvFile, ListenVariablesFromAFileAreRefused) {
  World w;
  w.files["/etc/vigil/.env"] = "LISTEN_FDS=2\n";
  auto r = w.parse("[programs.web]\ncommand = \"x\"\nenv_file = \".env\"\nlisten = [\":8080\"]\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].message.find("LISTEN_FDS"), std::string::npos);
}

// --- ${VAR} -------------------------------------------------------------------

TEST(ConfigExpand, CommandAndEnvValuesExpand) {
  World w;
  auto r = w.parse(R"(
[programs.web]
command = ["${HOME}/bin/app", "--port", "${PORT}", "--name=${NAME:-web}", "$${literal}"]
env = { DATA = "${HOME}/data", PRICE = "5$$", RAW = "$HOME" }
[programs.sh]
command = "exec ${HOME}/run.sh --user $USER $$"
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config.programs[0].command,
            (std::vector<std::string>{"/home/app/bin/app", "--port", "8080", "--name=web",
                                      "${literal}"}));
  EXPECT_EQ(r.config.programs[0].env,
            (std::map<std::string, std::string>{
                {"DATA", "/home/app/data"}, {"PRICE", "5$"}, {"RAW", "$HOME"}}));
  EXPECT_EQ(r.config.programs[1].command,
            (std::vector<std::string>{"/bin/sh", "-c", "exec /home/app/run.sh --user $USER $"}));
}

TEST(ConfigExpand, EnvFileValuesAreNotExpanded) {
  World w;
  w.files["/etc/vigil/.env"] = "A=${HOME}\n";
  auto r = w.parse("[programs.web]\ncommand = \"x\"\nenv_file = \".env\"\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.programs[0].env.at("A"), "${HOME}");
}

TEST(ConfigExpand, AnUnsetVariableIsAnErrorAtItsValue) {
  World w;
  EXPECT_EQ(w.errors(R"(
[programs.web]
command = ["app", "${SECRET}"]
env = { TOKEN = "${TOKEN}" }
[programs.sh]
command = "run ${GONE}"
[programs.empty]
command = ["${EMPTY:-}", "x"]
)"),
            (Errors{
                kFile + ":2:19: command[1]: ${SECRET} is not set in vigil's environment (write "
                        "${SECRET:-default} for a default, or $${SECRET} for the text itself)",
                kFile + ":3:17: env.TOKEN: ${TOKEN} is not set in vigil's environment (write "
                        "${TOKEN:-default} for a default, or $${TOKEN} for the text itself)",
                kFile + ":5:11: command: ${GONE} is not set in vigil's environment (write "
                        "${GONE:-default} for a default, or $${GONE} for the text itself)",
                kFile + ":7:12: command[0]: empty after expanding variables",
            }));
}

TEST(ConfigExpand, ProbeAndWatchCommandsAreNotExpanded) {
  World w;
  auto r = w.parse(R"(
[programs.web]
command = "x"
[programs.web.probe]
exec = ["sh", "-c", "kill $$ ${NOPE}"]
)");
  ASSERT_TRUE(r.ok()) << r.errors.front().to_string();
  EXPECT_EQ(r.config.programs[0].probe->command,
            (std::vector<std::string>{"sh", "-c", "kill $$ ${NOPE}"}));
}

// --- familiar spellings that were there already --------------------------------

TEST(ConfigFamiliar, Pm2MemorySizeReads) {
  World w;
  auto r = w.parse("[programs.web]\ncommand = \"x\"\nmemory_limit = \"512M\"\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.programs[0].memory_limit_bytes, 512ull << 20);
}

}  // namespace
}  // namespace vigil
