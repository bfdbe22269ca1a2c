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

}  // namespace
}  // namespace vigil::it
