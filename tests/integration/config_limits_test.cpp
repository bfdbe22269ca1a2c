// The config's limits on the real binary (issue 13, defects 2, 7, 9): a file
// nested too deep or too large is refused by `check` and by a reload of a
// running vigil, which keeps running with its children; durations past the
// maximum, a control socket path past sun_path and two programs writing one
// log file are refused by `check`, as `run` would fail on them.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstring>

#include "control_harness.h"

namespace vigil::it {
namespace {

using control::CliRun;
using control::Json;

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

// The file that crashed `check` and a running vigil on reload.
std::string deep_header() { return "[" + repeat("a.", 39999) + "a]\n"; }

constexpr std::string_view kDepthError =
    ":1:130: nested deeper than the maximum of 64 levels";

class ConfigLimitsTest : public BinaryTest {
 protected:
  CliRun check(const fs::path& config) {
    return control::run_cli(dir_.path(), {"check", "-c", config.string()});
  }
  fs::path socket() const { return dir_ / "vigil.sock"; }
};

TEST_F(ConfigLimitsTest, CheckRefusesADeepTableHeader) {
  const fs::path config = dir_.write("deep.toml", deep_header());
  CliRun r = check(config);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find(config.string() + std::string(kDepthError)), std::string::npos) << r.err;
}

TEST_F(ConfigLimitsTest, CheckRefusesDeepArraysAndInlineTables) {
  const fs::path config = dir_.write(
      "deep.toml", "x = " + repeat("[{a = ", 200) + "1" + repeat("}]", 200) + "\n");
  CliRun r = check(config);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("nested deeper than the maximum of 64 levels"), std::string::npos) << r.err;
}

TEST_F(ConfigLimitsTest, CheckRefusesAFileOverTheSizeLimit) {
  // 5 MiB of comments: valid TOML, only too long.
  std::string text = helper_program("web", {});
  const std::string line = "# " + repeat("x", 1021) + "\n";
  while (text.size() < (std::size_t{5} << 20)) text += line;
  const fs::path config = dir_.write("big.toml", text);
  CliRun r = check(config);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("the file is longer than the maximum of 4MiB for a config"),
            std::string::npos)
      << r.err;
}

TEST_F(ConfigLimitsTest, CheckStopsReadingAnEndlessConfigAtTheSizeLimit) {
  // A FIFO that gives 5 MiB and then nothing, without an end: reading it
  // whole would wait for ever (and /dev/zero would fill the memory).
  const fs::path fifo = dir_ / "endless.toml";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  const std::string script = "exec 3>" + fifo.string() +
                             "; head -c 5242880 /dev/zero >&3; exec sleep 120";
  const pid_t writer = start_test_process({"/bin/sh", "-c", script}, dir_.path(), 2, 2);
  CliRun r = check(fifo);
  ::kill(writer, SIGKILL);
  int status = 0;
  ::waitpid(writer, &status, 0);
  EXPECT_EQ(r.exit_code, 1) << "-1: still reading at the deadline\n" << r.out << r.err;
  EXPECT_NE(r.err.find("the file is longer than the maximum of 4MiB for a config"),
            std::string::npos)
      << r.err;
}

TEST_F(ConfigLimitsTest, ReloadOfADeepFileFailsAndKeepsVigilAndItsChild) {
  VigilProcess& vigil = run_vigil_with(helper_program("web", {}, "min_uptime = \"100ms\"\n"));
  Json all = control::wait_for_states(socket(), {{{"web", 0}, "running"}});
  const int pid = control::pid_of(control::find_instance(all, "web"));
  ASSERT_GT(pid, 0) << all.dump(1) << vigil.output();

  write_config(deep_header());
  CliRun r = control::run_cli(dir_.path(), {"reload", "-c", (dir_ / "vigil.toml").string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find((dir_ / "vigil.toml").string() + std::string(kDepthError)),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("unchanged"), std::string::npos) << r.err;

  // SIGHUP reads the same file: the same refusal, in vigil's log.
  vigil.signal(SIGHUP);
  EXPECT_TRUE(vigil.wait_for_output_count("nested deeper than the maximum of 64 levels", 2))
      << vigil.output();

  ASSERT_TRUE(vigil.running()) << vigil.output();
  auto now = control::api_instances(socket());
  ASSERT_TRUE(now) << vigil.output();
  Json web = control::find_instance(*now, "web");
  EXPECT_EQ(web["state"], "running") << now->dump(1);
  EXPECT_EQ(control::pid_of(web), pid) << "the same child";
  EXPECT_FALSE(process_dead(pid));
}

TEST_F(ConfigLimitsTest, CheckRefusesDurationsPastTheMaximum) {
  const fs::path config = write_config(
      helper_program("web", {}, "stop_timeout = \"8760h\"\n") +
      "[programs.web.heartbeat]\ninterval = \"1s\"\ngrace = \"3000000h\"\n");
  CliRun r = check(config);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find(": grace: \"3000000h\" is longer than the maximum of 8760h (365 days)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("stop_timeout"), std::string::npos) << "8760h is the maximum: " << r.err;
}

TEST_F(ConfigLimitsTest, CheckRefusesAControlSocketPathPastSunPath) {
  // Relative, as users write it: made absolute against the file's folder.
  const std::size_t room = 108 - (dir_.path().native().size() + 1);
  ASSERT_GT(room, 10u) << dir_.path();
  const fs::path config = write_config("[vigil]\ncontrol_socket = \"" + std::string(room, 's') +
                                       "\"\n" + helper_program("web", {}));
  CliRun r = check(config);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find(config.string() + ":2:18: control_socket: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("is 108 bytes long; a unix socket path holds at most 107"),
            std::string::npos)
      << r.err;

  // One byte shorter: check passes, and run binds it.
  write_config("[vigil]\ncontrol_socket = \"" + std::string(room - 1, 's') + "\"\n" +
               helper_program("web", {}, "min_uptime = \"100ms\"\n"));
  r = check(config);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  VigilProcess& vigil = run_vigil_with(read_file(config));
  const fs::path socket = dir_ / std::string(room - 1, 's');
  EXPECT_TRUE(poll_until([&] { return control::api_instances(socket).has_value(); }))
      << vigil.output();
}

TEST_F(ConfigLimitsTest, CheckRefusesTwoProgramsWritingOneLogFile) {
  const fs::path config =
      write_config(helper_program("a", {}, "instances = 2\n") + helper_program("a-0", {}));
  CliRun r = check(config);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("log: [programs.a-0] and [programs.a] (instance 0) would both write \"" +
                       (dir_ / "logs" / "a-0.out.log").string() + "\""),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace vigil::it
