// vigil's start-up against what other vigils left or hold (issue 13,
// defects 8 and 11): two vigils started at once on one config (exactly one
// runs: the start-up lock), a lock file left by a SIGKILLed vigil (does not
// block), and the runtime folders of vigils that are gone (removed; a live
// vigil's kept). The real binary, in a temp dir, with XDG_RUNTIME_DIR of its
// own so other vigils on the machine are not involved.
#include <gtest/gtest.h>
#include <signal.h>

#include <string>
#include <vector>

#include "harness.h"

namespace vigil::it {
namespace {

class StartupTest : public BinaryTest {
 protected:
  // vigil.PID.* in `runtime`.
  static std::vector<fs::path> runtime_dirs_of(const fs::path& runtime, pid_t pid) {
    std::vector<fs::path> out;
    const std::string prefix = "vigil." + std::to_string(pid) + ".";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(runtime, ec))
      if (e.path().filename().string().starts_with(prefix)) out.push_back(e.path());
    return out;
  }
};

TEST_F(StartupTest, TwoVigilsStartedAtOnceOnOneConfigOnlyOneRuns) {
  const fs::path config = write_config(helper_program("sleeper", {}, "min_uptime = \"100ms\""));
  const fs::path lock = dir_ / "vigil.sock.lock";
  constexpr int kTries = 20;
  for (int t = 0; t < kTries; ++t) {
    SCOPED_TRACE("try " + std::to_string(t));
    auto a = std::make_unique<VigilProcess>(dir_, std::vector<std::string>{"run", "-c", config.string()},
                                            "a.output");
    auto b = std::make_unique<VigilProcess>(dir_, std::vector<std::string>{"run", "-c", config.string()},
                                            "b.output");
    // One of them gives up at start-up; the other runs its program.
    ASSERT_TRUE(poll_until([&] { return !a->running() || !b->running(); }))
        << "a: " << a->output() << "\nb: " << b->output();
    VigilProcess& loser = a->running() ? *b : *a;
    VigilProcess& winner = a->running() ? *a : *b;
    EXPECT_EQ(loser.wait_exit(), 1) << loser.output();
    EXPECT_TRUE(winner.wait_for_output("started, pid")) << winner.output();
    EXPECT_TRUE(winner.running()) << winner.output();
    const std::string said = loser.output();
    EXPECT_NE(said.find("another vigil (pid " + std::to_string(winner.pid()) +
                        ") is already running on " + (dir_ / "vigil.sock").string() + " (" +
                        lock.string() + " is locked); vigil is not starting"),
              std::string::npos)
        << said;
    EXPECT_EQ(said.find("started, pid"), std::string::npos) << "the loser started a program: " << said;
    winner.signal(SIGTERM);
    EXPECT_EQ(winner.wait_exit(), 0) << winner.output();
    if (HasFailure()) break;
  }
}

TEST_F(StartupTest, LockLeftByASigkilledVigilDoesNotBlockTheNext) {
  const fs::path config = write_config(helper_program("sleeper", {}, "min_uptime = \"100ms\""));
  const fs::path lock = dir_ / "vigil.sock.lock";
  {
    VigilProcess first(dir_, {"run", "-c", config.string()}, "first.output");
    ASSERT_TRUE(first.wait_for_output("started, pid")) << first.output();
    EXPECT_EQ(read_file(lock), std::to_string(first.pid()) + "\n");
    first.signal(SIGKILL);
    EXPECT_EQ(first.wait_exit(), 128 + SIGKILL);
  }
  ASSERT_TRUE(fs::exists(lock)) << "the lock file stays; only the lock on it goes";
  VigilProcess second(dir_, {"run", "-c", config.string()}, "second.output");
  ASSERT_TRUE(second.wait_for_output("started, pid")) << second.output();
  EXPECT_TRUE(second.running()) << second.output();
  EXPECT_EQ(read_file(lock), std::to_string(second.pid()) + "\n");
  second.signal(SIGTERM);
  EXPECT_EQ(second.wait_exit(), 0) << second.output();
}

TEST_F(StartupTest, RuntimeDirsOfGoneVigilsAreRemovedAndALiveOnesKept) {
  const fs::path runtime = dir_ / "runtime";
  fs::create_directories(runtime);
  ScopedEnv xdg("XDG_RUNTIME_DIR", runtime.string());

  // A vigil that goes on living, on a config of its own.
  TempDir other;
  const fs::path other_config =
      other.write("vigil.toml", helper_program("live", {}, "min_uptime = \"100ms\""));
  VigilProcess live(other, {"run", "-c", other_config.string()}, "live.output");
  ASSERT_TRUE(live.wait_for_output("started, pid")) << live.output();
  ASSERT_EQ(runtime_dirs_of(runtime, live.pid()).size(), 1u);

  // A vigil that is SIGKILLed: it cannot remove its folder.
  const fs::path config = write_config(helper_program("web", {}, "min_uptime = \"100ms\""));
  pid_t killed_pid = -1;
  {
    VigilProcess killed(dir_, {"run", "-c", config.string()}, "killed.output");
    ASSERT_TRUE(killed.wait_for_output("started, pid")) << killed.output();
    killed_pid = killed.pid();
    killed.signal(SIGKILL);
    EXPECT_EQ(killed.wait_exit(), 128 + SIGKILL);
  }
  const auto left = runtime_dirs_of(runtime, killed_pid);
  ASSERT_EQ(left.size(), 1u) << "what a SIGKILLed vigil leaves behind";

  VigilProcess next(dir_, {"run", "-c", config.string()}, "next.output");
  ASSERT_TRUE(next.wait_for_output("started, pid")) << next.output();
  EXPECT_FALSE(fs::exists(left[0])) << left[0];
  EXPECT_NE(next.output().find("removed " + left[0].string() + ", left by vigil " +
                               std::to_string(killed_pid) + " which is gone"),
            std::string::npos)
      << next.output();
  EXPECT_EQ(runtime_dirs_of(runtime, live.pid()).size(), 1u) << "a live vigil's folder is kept";
  EXPECT_EQ(runtime_dirs_of(runtime, next.pid()).size(), 1u);
  EXPECT_TRUE(live.running()) << live.output();

  next.signal(SIGTERM);
  EXPECT_EQ(next.wait_exit(), 0) << next.output();
  live.signal(SIGTERM);
  EXPECT_EQ(live.wait_exit(), 0) << live.output();
  EXPECT_TRUE(runtime_dirs_of(runtime, live.pid()).empty()) << "a vigil removes its own on exit";
}

}  // namespace
}  // namespace vigil::it
