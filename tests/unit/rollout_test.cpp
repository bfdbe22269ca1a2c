// Rollout: one instance at a time, the next only once the one before is
// ready, and a stop at the first replacement that is not.
#include "rollout.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

using V = Rollout::Verdict;

// The transitions of a restart of a running instance that comes back ready.
V replace_ok(Rollout& r, int i) {
  EXPECT_EQ(r.on_state(i, State::running, State::stopping), V::wait);
  EXPECT_EQ(r.on_state(i, State::stopping, State::starting), V::wait);
  return r.on_state(i, State::starting, State::running);
}

TEST(Rollout, OneAtATimeInOrder) {
  Rollout r(1, {0, 1, 2, 3}, "web");
  ASSERT_EQ(r.begin(), V::next);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r.current(), i);
    EXPECT_EQ(replace_ok(r, i), V::next);
    EXPECT_EQ(r.snapshot().done, i + 1);
  }
  EXPECT_EQ(replace_ok(r, 3), V::completed);
  EXPECT_TRUE(r.finished());
  auto s = r.snapshot();
  EXPECT_FALSE(s.in_progress);
  EXPECT_EQ(s.done, 4);
  EXPECT_EQ(s.total, 4);
  EXPECT_EQ(s.current, std::nullopt);
  EXPECT_EQ(s.error, "");
}

TEST(Rollout, OtherInstancesChangingStateDoNotAdvanceIt) {
  Rollout r(1, {0, 1}, "web");
  r.begin();
  EXPECT_EQ(r.on_state(1, State::running, State::stopping), V::wait);
  EXPECT_EQ(r.on_state(1, State::starting, State::running), V::wait);
  EXPECT_EQ(r.current(), 0);
}

TEST(Rollout, RunningBeforeItsNewProcessStartedIsNotReady) {
  // The old process's own transitions (a late READY=1 is ignored by the
  // machine, but a crash and restart by the policy is not ours) count only
  // once the new process started.
  Rollout r(1, {0, 1}, "web");
  r.begin();
  EXPECT_EQ(r.on_state(0, State::starting, State::running), V::wait);
  EXPECT_EQ(r.current(), 0);
}

TEST(Rollout, AnInstanceInBackoffIsRestartedAtOnceAndCounts) {
  Rollout r(1, {0}, "web");
  r.begin();
  EXPECT_EQ(r.on_state(0, State::backoff, State::starting), V::wait);
  EXPECT_EQ(r.on_state(0, State::starting, State::running), V::completed);
}

TEST(Rollout, AReplacementThatIsNotReadyStopsTheRoll) {
  Rollout r(7, {0, 1, 2, 3}, "web");
  r.begin();
  EXPECT_EQ(r.on_state(0, State::running, State::stopping), V::wait);
  EXPECT_EQ(r.on_state(0, State::stopping, State::starting), V::wait);
  EXPECT_EQ(r.on_state(0, State::starting, State::stopping), V::failed);  // start_timeout
  EXPECT_TRUE(r.finished());
  auto s = r.snapshot();
  EXPECT_EQ(s.id, 7u);
  EXPECT_FALSE(s.in_progress);
  EXPECT_EQ(s.done, 0);
  EXPECT_EQ(s.error,
            "rolling restart stopped at web[0]: its new process did not become ready (stopping); "
            "web[1], web[2], web[3] keep their previous processes");
  EXPECT_EQ(r.on_state(1, State::running, State::stopping), V::wait) << "finished";
}

TEST(Rollout, ACrashWhileStartingStopsItToo) {
  Rollout r(1, {0, 1, 2}, "web");
  r.begin();
  replace_ok(r, 0);
  r.on_state(1, State::running, State::stopping);
  r.on_state(1, State::stopping, State::starting);
  EXPECT_EQ(r.on_state(1, State::starting, State::exited), V::failed);
  EXPECT_EQ(r.snapshot().done, 1);
  EXPECT_NE(r.snapshot().error.find("(exited); web[2] keeps its previous process"), std::string::npos)
      << r.snapshot().error;
}

TEST(Rollout, NothingToReplaceIsCompletedAtOnce) {
  Rollout r(1, {}, "web");
  EXPECT_EQ(r.begin(), V::completed);
  EXPECT_FALSE(r.snapshot().in_progress);
}

TEST(Rollout, CancelSaysWhy) {
  Rollout r(1, {0, 1}, "web");
  r.begin();
  r.cancel("the program was stopped");
  EXPECT_TRUE(r.finished());
  EXPECT_EQ(r.snapshot().error, "rolling restart cancelled: the program was stopped");
  EXPECT_EQ(r.current(), std::nullopt);
}

}  // namespace
}  // namespace vigil
