// Familiar spellings with the real binary (issue 14, item 4): `vigil import`
// on pm2's and supervisord's own documentation examples, whose result `vigil
// check` accepts; env_file, ${VAR} and instances = "max" in a running vigil.
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "harness.h"

namespace vigil::it {
namespace {

fs::path example(const char* name) {
  return source_dir() / "tests/integration/data/import" / name;
}

bool node_installed() {
  return std::system("node --version >/dev/null 2>&1") == 0;
}

class FamiliarConfigTest : public BinaryTest {
 protected:
  // `vigil import FILE -o DIR/vigil.toml`, then `vigil check` on the result.
  std::string import_and_check(const fs::path& source) {
    const fs::path out = dir_ / "vigil.toml";
    auto imported = run_vigil(dir_, {"import", source.string(), "-o", out.string()});
    EXPECT_EQ(imported.exit_code, 0) << imported.output;
    auto checked = run_vigil(dir_, {"check", "-c", out.string()});
    EXPECT_EQ(checked.exit_code, 0) << checked.output << "\n" << read_file(out);
    return imported.output;
  }
};

TEST_F(FamiliarConfigTest, ImportsPm2EcosystemConfigJsThroughNode) {
  if (!node_installed()) GTEST_SKIP() << "node is not installed";
  const std::string notes = import_and_check(example("ecosystem.config.js"));
  const std::string toml = read_file(dir_ / "vigil.toml");
  EXPECT_NE(toml.find("[programs.app]\ncommand = [\"node\", \"./app.js\"]\ninstances = \"max\"\n"),
            std::string::npos) << toml;
  EXPECT_NE(toml.find("env = { NODE_ENV = \"development\" }"), std::string::npos) << toml;
  EXPECT_NE(toml.find("[programs.WEB]\ncommand = [\"node\", \"web.js\"]\n"), std::string::npos)
      << toml;
  EXPECT_NE(notes.find("vigil import: deploy: pm2 deploy has no vigil equivalent"), std::string::npos)
      << notes;
  EXPECT_NE(notes.find("vigil import: app: env_production: pm2 applies it with --env production"),
            std::string::npos) << notes;
  EXPECT_NE(notes.find("vigil import: app: exec_mode: \"cluster\""), std::string::npos) << notes;
}

TEST_F(FamiliarConfigTest, ImportsPm2EcosystemJsonToStdout) {
  auto r = run_vigil(dir_, {"import", example("ecosystem.json").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[programs.API]\ncommand = [\"node\", \"api.js\"]\ninstances = 4\n"
                          "memory_limit = \"1G\"\n"),
            std::string::npos) << r.output;
  import_and_check(example("ecosystem.json"));
}

TEST_F(FamiliarConfigTest, ImportsSupervisordDocsExample) {
  // The example runs the program as the docs' author, "chrism"; `vigil
  // check` wants a user this host has: the one running the test.
  std::string conf = read_file(example("supervisord.conf"));
  const passwd* me = ::getpwuid(::getuid());
  ASSERT_NE(me, nullptr);
  const auto at = conf.find("user=chrism\n");
  ASSERT_NE(at, std::string::npos);
  conf.replace(at, 11, std::string("user=") + me->pw_name);
  const std::string notes = import_and_check(dir_.write("supervisord.conf", conf));
  const std::string toml = read_file(dir_ / "vigil.toml");
  for (const char* line : {"[programs.cat]", "command = [\"/bin/cat\"]", "cwd = \"/tmp\"",
                           "restart = \"on-failure\"", "min_uptime = \"10s\"", "max_restarts = 3",
                           "exit_codes = [0]", "stop_signal = \"TERM\"", "stop_timeout = \"10s\"",
                           "log_max_size = \"1MB\"", "log_keep = 10",
                           "env = { A = \"1\", B = \"2\" }"})
    EXPECT_NE(toml.find(std::string(line) + "\n"), std::string::npos) << line << "\n" << toml;
  EXPECT_NE(toml.find("user = \"" + std::string(me->pw_name) + "\"\n"), std::string::npos) << toml;
  for (const char* note : {"vigil import: [supervisord]: ", "vigil import: cat: umask: ",
                           "vigil import: cat: priority: ", "vigil import: cat: serverurl: ",
                           "vigil import: cat: stdout_logfile: "})
    EXPECT_NE(notes.find(note), std::string::npos) << note << "\n" << notes;
}

TEST_F(FamiliarConfigTest, ImportOfSomethingElseSaysWhat) {
  const fs::path f = dir_.write("notes.txt", "hello\n");
  auto r = run_vigil(dir_, {"import", f.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("neither a pm2 ecosystem file"), std::string::npos) << r.output;
  auto missing = run_vigil(dir_, {"import", (dir_ / "nope.conf").string()});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("cannot read"), std::string::npos) << missing.output;
}

TEST_F(FamiliarConfigTest, EnvFileAndVariablesReachTheProgram) {
  dir_.write("app.env", "# from the env file\nexport GREETING=\"hello there\"\nNODE_ENV=development\n");
  ::setenv("VIGIL_IT_SECRET", "s3cret", 1);
  // Each instance writes out.INDEX; "$GREETING" and "$VIGIL_INSTANCE" are
  // the shell's, "${VIGIL_IT_SECRET}" is vigil's, "$$" a literal "$".
  VigilProcess& vigil = run_vigil_with(
      "[programs.app]\n"
      "command = \"echo \\\"$GREETING|$NODE_ENV|$TOKEN|${VIGIL_IT_SECRET}|$$\\\" > " +
      (dir_ / "out.").string() + "$VIGIL_INSTANCE; exec sleep 100\"\n"
      "env_file = [\"app.env\", \"-missing.env\"]\n"
      "env = { NODE_ENV = \"production\", TOKEN = \"${VIGIL_IT_SECRET}-${VIGIL_IT_UNSET:-none}\" }\n"
      "instances = \"max\"\n");
  ::unsetenv("VIGIL_IT_SECRET");
  const long cpus = std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
  const fs::path last = dir_ / ("out." + std::to_string(cpus - 1));
  ASSERT_TRUE(poll_until([&] {
    const std::string text = read_file(last);
    return !text.empty() && text.back() == '\n';
  })) << vigil.output();
  EXPECT_EQ(read_file(last), "hello there|production|s3cret-none|s3cret|$\n");
  EXPECT_FALSE(fs::exists(dir_ / ("out." + std::to_string(cpus))));
}

TEST_F(FamiliarConfigTest, CheckNamesAMissingEnvFileAndAnUnsetVariable) {
  const fs::path config = write_config(
      "[programs.app]\n"
      "command = [\"app\", \"${VIGIL_IT_NEVER_SET}\"]\n"
      "env_file = \".env\"\n");
  dir_.write("bad.env", "");
  auto r = run_vigil(dir_, {"check", "-c", config.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find(config.string() + ":2:19: command[1]: ${VIGIL_IT_NEVER_SET} is not set"),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find(config.string() + ":3:12: env_file: \"" + (dir_ / ".env").string() +
                          "\" does not exist"),
            std::string::npos) << r.output;
}

}  // namespace
}  // namespace vigil::it
