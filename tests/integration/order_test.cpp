// `after` with real children: a dependent starts only once what it names is
// running, and on shutdown it is stopped first.
#include <gtest/gtest.h>

#include "harness.h"

namespace vigil::it {
namespace {

using OrderTest = InProcessTest;

TEST_F(OrderTest, DependentStartsOnceItsDependencyRuns) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("a", {}, "min_uptime = \"500ms\"") +
      helper_program("b", {}, "min_uptime = \"100ms\"\nafter = [\"a\"]")));
  Instance& a = vigil().instance("a");
  Instance& b = vigil().instance("b");

  // A becomes running and B is started in the same loop turn, so on every
  // turn: B has started only if A runs.
  bool early = false;
  ASSERT_TRUE(vigil().run_until([&] {
    if (b.spawns() > 0 && a.state() != State::running) early = true;
    return b.state() == State::running;
  }));
  EXPECT_FALSE(early) << "b started before a was running";
  EXPECT_EQ(a.spawns(), 1);
  EXPECT_EQ(b.spawns(), 1);
  const auto gap = std::chrono::duration_cast<Duration>(b.start_steady() - a.start_steady());
  EXPECT_GE(gap.count(), 500) << "a is running only after min_uptime";
  EXPECT_LE(gap.count(), 3 * 500 + 300);
}

TEST_F(OrderTest, DependentIsStoppedFirst) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("a", {}, "min_uptime = \"100ms\"") +
      helper_program("b", {}, "min_uptime = \"100ms\"\nafter = [\"a\"]")));
  Instance& a = vigil().instance("a");
  Instance& b = vigil().instance("b");
  ASSERT_TRUE(vigil().wait_state("b", State::running));

  bool a_first = false;
  auto done = std::make_shared<bool>(false);
  vigil().supervisor().shutdown([done](int) { *done = true; });
  ASSERT_TRUE(vigil().run_until([&] {
    if (a.state() != State::running && b.pid() > 0) a_first = true;
    return *done;
  }));
  EXPECT_FALSE(a_first) << "a was stopped while b still ran";
  EXPECT_EQ(a.state(), State::stopped);
  EXPECT_EQ(b.state(), State::stopped);
}

// How many of this process's fds are open on `path`.
int fds_open_on(const fs::path& path) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc/self/fd", ec)) {
    std::error_code link_ec;
    if (fs::read_symlink(e.path(), link_ec) == path) ++n;
  }
  return n;
}

// Vigil's exit had every instance's log files and notify socket to close
// and unlink at once; an instance stopped for good lets go of them while
// the rest of the shutdown goes on.
TEST_F(OrderTest, AProgramStoppedInAShutdownLetsGoOfItsFilesWhileOthersStillStop) {
  // b names a, so b stops first; a ignores SIGTERM and holds the shutdown
  // for its stop_timeout, until the test kills it.
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("a", {"--ignore-term"}, "min_uptime = \"100ms\"\nstop_timeout = \"60s\"") +
      helper_program("b", {}, "min_uptime = \"100ms\"\nafter = [\"a\"]")));
  Instance& a = vigil().instance("a");
  Instance& b = vigil().instance("b");
  ASSERT_TRUE(vigil().wait_state("b", State::running));
  const fs::path socket = b.notify_socket_path();
  const fs::path out = vigil().log_path("b", 0, Stream::out);
  const fs::path err = vigil().log_path("b", 0, Stream::err);
  ASSERT_TRUE(fs::is_socket(socket)) << socket;
  ASSERT_EQ(fds_open_on(out), 1) << out;
  ASSERT_EQ(fds_open_on(err), 1) << err;

  auto done = std::make_shared<bool>(false);
  vigil().supervisor().shutdown([done](int) { *done = true; });
  ASSERT_TRUE(vigil().run_until([&] {
    return b.state() == State::stopped && !fs::exists(socket) && fds_open_on(out) == 0 && fds_open_on(err) == 0;
  })) << "b " << to_string(b.state()) << ", socket there: " << fs::exists(socket) << ", fds on its logs: "
      << fds_open_on(out) << " + " << fds_open_on(err);
  EXPECT_EQ(a.state(), State::stopping) << "a's stop is still under way";
  EXPECT_FALSE(*done);
  // Its log files keep what it wrote.
  EXPECT_TRUE(fs::exists(out));

  vigil().supervisor().kill_all_now();
  ASSERT_TRUE(vigil().run_until([&] { return *done; }));
  EXPECT_EQ(a.state(), State::stopped);
}

}  // namespace
}  // namespace vigil::it
