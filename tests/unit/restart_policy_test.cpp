// RestartPolicy: backoff sequence, jitter, window tally, fatal, modes.
// Time is a parameter: every test builds its own instants from a fixed origin.
#include "restart_policy.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

using Action = RestartDecision::Action;

const SteadyTime kT0 = SteadyTime{} + std::chrono::hours(1000);

std::function<double()> fixed_jitter(double v) {
  return [v] { return v; };
}

RestartSettings settings(RestartMode mode = RestartMode::always) {
  RestartSettings s;
  s.mode = mode;
  s.exit_codes = {0};
  s.delay = 100ms;
  s.delay_max = 30s;
  s.backoff_reset = 60s;
  s.max_restarts = 5;
  s.window = 60s;
  return s;
}

const ExitStatus kCrash = ExitStatus::exited(1);
const ExitStatus kClean = ExitStatus::exited(0);
const ExitStatus kSegv = ExitStatus::killed(11);

TEST(RestartPolicy, DelayDoublesUpToTheCap) {
  auto s = settings();
  s.window = 0s;  // only the delays matter here
  s.delay = 100ms;
  s.delay_max = 1s;
  RestartPolicy p(s, fixed_jitter(0));
  std::vector<Duration> got;
  for (int i = 0; i < 7; ++i) {
    auto d = p.on_end(kT0 + i * 1s, 10ms, kCrash);
    ASSERT_EQ(d.action, Action::restart);
    got.push_back(d.delay);
  }
  EXPECT_EQ(got, (std::vector<Duration>{100ms, 200ms, 400ms, 800ms, 1s, 1s, 1s}));
  EXPECT_EQ(p.next_base_delay(), 1s);
}

TEST(RestartPolicy, JitterScalesByTenPercentExactly) {
  for (auto [j, want] : {std::pair{-1.0, 900ms}, std::pair{0.0, 1000ms}, std::pair{1.0, 1100ms},
                         std::pair{0.5, 1050ms}}) {
    auto s = settings();
    s.delay = 1s;
    RestartPolicy p(s, fixed_jitter(j));
    EXPECT_EQ(p.on_end(kT0, 10ms, kCrash).delay, want) << "jitter " << j;
    // The base sequence does not depend on the jitter.
    EXPECT_EQ(p.next_base_delay(), 2s);
  }
}

TEST(RestartPolicy, JitteredDelayNeverExceedsTheCap) {
  auto s = settings();
  s.delay = 1s;
  s.delay_max = 1s;
  RestartPolicy up(s, fixed_jitter(1));
  EXPECT_EQ(up.on_end(kT0, 10ms, kCrash).delay, 1s);
  RestartPolicy down(s, fixed_jitter(-1));
  EXPECT_EQ(down.on_end(kT0, 10ms, kCrash).delay, 900ms);
}

TEST(RestartPolicy, OutOfRangeJitterIsClamped) {
  auto s = settings();
  s.delay = 1s;
  RestartPolicy p(s, fixed_jitter(50));
  EXPECT_EQ(p.on_end(kT0, 10ms, kCrash).delay, 1100ms);
  RestartPolicy q(s, fixed_jitter(-50));
  EXPECT_EQ(q.on_end(kT0, 10ms, kCrash).delay, 900ms);
}

TEST(RestartPolicy, DefaultJitterStaysWithinTenPercent) {
  auto s = settings();
  s.window = 0s;
  s.delay = 1s;
  s.delay_max = 1s;  // keep the base at 1s for every call
  RestartPolicy p(s);
  for (int i = 0; i < 1000; ++i) {
    const auto d = p.on_end(kT0, 10ms, kCrash).delay;
    ASSERT_GE(d, 900ms);
    ASSERT_LE(d, 1s);  // capped at delay_max
  }
}

TEST(RestartPolicy, LongRunResetsTheBackoff) {
  auto s = settings();
  s.window = 0s;
  RestartPolicy p(s, fixed_jitter(0));
  EXPECT_EQ(p.on_end(kT0, 1s, kCrash).delay, 100ms);
  EXPECT_EQ(p.on_end(kT0 + 1s, 1s, kCrash).delay, 200ms);
  EXPECT_EQ(p.on_end(kT0 + 2s, 1s, kCrash).delay, 400ms);
  // Just short of backoff_reset: keeps growing.
  EXPECT_EQ(p.on_end(kT0 + 3s, 59999ms, kCrash).delay, 800ms);
  // Exactly backoff_reset: the sequence starts over.
  EXPECT_EQ(p.on_end(kT0 + 70s, 60s, kCrash).delay, 100ms);
  EXPECT_EQ(p.on_end(kT0 + 71s, 1s, kCrash).delay, 200ms);
}

TEST(RestartPolicy, ZeroDelayIsAlwaysZero) {
  auto s = settings();
  s.delay = 0s;
  s.window = 0s;
  RestartPolicy p(s, fixed_jitter(1));
  for (int i = 0; i < 10; ++i) {
    auto d = p.on_end(kT0 + i * 1s, 10ms, kCrash);
    ASSERT_EQ(d.action, Action::restart);
    EXPECT_EQ(d.delay, 0ms);
  }
}

TEST(RestartPolicy, FatalOnRestartNumberMaxPlusOne) {
  auto s = settings();
  s.max_restarts = 3;
  s.window = 60s;
  RestartPolicy p(s, fixed_jitter(0));
  for (int i = 0; i < 3; ++i) {
    auto d = p.on_end(kT0 + i * 1s, 10ms, kCrash);
    EXPECT_EQ(d.action, Action::restart) << "restart " << i + 1;
  }
  EXPECT_EQ(p.restarts_in_window(kT0 + 3s), 3);
  auto d = p.on_end(kT0 + 3s, 10ms, kCrash);
  EXPECT_EQ(d.action, Action::fatal);
  EXPECT_EQ(d.reason, RestartReason::exit);
  // The refused restart is not counted.
  EXPECT_EQ(p.restarts_in_window(kT0 + 3s), 3);
}

TEST(RestartPolicy, RestartsSlideOutOfTheWindow) {
  auto s = settings();
  s.max_restarts = 2;
  s.window = 10s;
  RestartPolicy p(s, fixed_jitter(0));
  EXPECT_EQ(p.on_end(kT0, 10ms, kCrash).action, Action::restart);
  EXPECT_EQ(p.on_end(kT0 + 5s, 10ms, kCrash).action, Action::restart);
  EXPECT_EQ(p.restarts_in_window(kT0 + 9999ms), 2);
  // The window is (now - 10s, now]: at kT0 + 10s the first restart is out.
  EXPECT_EQ(p.restarts_in_window(kT0 + 10s), 1);
  EXPECT_EQ(p.on_end(kT0 + 10s, 10ms, kCrash).action, Action::restart);
  EXPECT_EQ(p.restarts_in_window(kT0 + 10s), 2);
  // kT0+5s and kT0+10s are both inside (kT0+4s, kT0+14s]: the next one is refused.
  EXPECT_EQ(p.on_end(kT0 + 14s, 10ms, kCrash).action, Action::fatal);
  // Later, once kT0+5s has left, a restart is allowed again.
  EXPECT_EQ(p.on_end(kT0 + 15s, 10ms, kCrash).action, Action::restart);
  EXPECT_EQ(p.restarts_in_window(kT0 + 30s), 0);
}

TEST(RestartPolicy, WindowZeroNeverGivesUp) {
  auto s = settings();
  s.max_restarts = 1;
  s.window = 0s;
  RestartPolicy p(s, fixed_jitter(0));
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(p.on_end(kT0 + i * 1ms, 0ms, kCrash).action, Action::restart);
  EXPECT_EQ(p.restarts_in_window(kT0 + 1s), 0);
}

TEST(RestartPolicy, NeverStaysForEveryEnd) {
  RestartPolicy p(settings(RestartMode::never), fixed_jitter(0));
  EXPECT_EQ(p.on_end(kT0, 10ms, kClean).action, Action::stay);
  EXPECT_EQ(p.on_end(kT0, 10ms, kCrash).action, Action::stay);
  auto d = p.on_end(kT0, 10ms, kSegv);
  EXPECT_EQ(d.action, Action::stay);
  EXPECT_EQ(d.reason, RestartReason::signal);
  for (auto r : {RestartReason::hung, RestartReason::memory, RestartReason::probe,
                 RestartReason::start_timeout}) {
    auto f = p.on_end(kT0, 10ms, ExitStatus::killed(9), r);
    EXPECT_EQ(f.action, Action::stay);
    EXPECT_EQ(f.reason, r);
  }
  EXPECT_EQ(p.restarts_in_window(kT0), 0);
}

TEST(RestartPolicy, AlwaysRestartsCleanExitsToo) {
  RestartPolicy p(settings(RestartMode::always), fixed_jitter(0));
  auto d = p.on_end(kT0, 10ms, kClean);
  EXPECT_EQ(d.action, Action::restart);
  EXPECT_EQ(d.reason, RestartReason::exit);
}

TEST(RestartPolicy, OnFailureHonoursExitCodes) {
  auto s = settings(RestartMode::on_failure);
  s.exit_codes = {0, 2};
  RestartPolicy p(s, fixed_jitter(0));
  EXPECT_EQ(p.on_end(kT0, 10ms, ExitStatus::exited(0)).action, Action::stay);
  EXPECT_EQ(p.on_end(kT0, 10ms, ExitStatus::exited(2)).action, Action::stay);
  auto d = p.on_end(kT0, 10ms, ExitStatus::exited(1));
  EXPECT_EQ(d.action, Action::restart);
  EXPECT_EQ(d.reason, RestartReason::exit);
  auto k = p.on_end(kT0 + 1s, 10ms, kSegv);
  EXPECT_EQ(k.action, Action::restart);
  EXPECT_EQ(k.reason, RestartReason::signal);
}

TEST(RestartPolicy, OnFailureWithEmptyExitCodesRestartsEverything) {
  auto s = settings(RestartMode::on_failure);
  s.exit_codes = {};
  RestartPolicy p(s, fixed_jitter(0));
  EXPECT_EQ(p.on_end(kT0, 10ms, kClean).action, Action::restart);
}

TEST(RestartPolicy, ForcedReasonsAreFailuresUnderOnFailure) {
  for (auto r : {RestartReason::hung, RestartReason::memory, RestartReason::probe,
                 RestartReason::start_timeout}) {
    RestartPolicy p(settings(RestartMode::on_failure), fixed_jitter(0));
    // Even if the killed process managed to exit 0.
    auto d = p.on_end(kT0, 10ms, kClean, r);
    EXPECT_EQ(d.action, Action::restart) << static_cast<int>(r);
    EXPECT_EQ(d.reason, r);
    auto k = p.on_end(kT0 + 1s, 10ms, ExitStatus::killed(9), r);
    EXPECT_EQ(k.reason, r) << "the forced reason wins over signal";
  }
}

TEST(RestartPolicy, ForcedRestartsCountTowardsFatal) {
  auto s = settings();
  s.max_restarts = 1;
  RestartPolicy p(s, fixed_jitter(0));
  EXPECT_EQ(p.on_end(kT0, 10ms, kSegv, RestartReason::hung).action, Action::restart);
  auto d = p.on_end(kT0 + 1s, 10ms, kSegv, RestartReason::memory);
  EXPECT_EQ(d.action, Action::fatal);
  EXPECT_EQ(d.reason, RestartReason::memory);
}

TEST(RestartPolicy, IsCleanExit) {
  EXPECT_TRUE(is_clean_exit(ExitStatus::exited(0), {0}));
  EXPECT_FALSE(is_clean_exit(ExitStatus::exited(1), {0}));
  EXPECT_TRUE(is_clean_exit(ExitStatus::exited(143), {0, 143}));
  EXPECT_FALSE(is_clean_exit(ExitStatus::killed(15), {0, 15, 143}));
}

TEST(RestartPolicy, ResetAfterFatalAllowsRestartsAgain) {
  auto s = settings();
  s.max_restarts = 2;
  RestartPolicy p(s, fixed_jitter(0));
  EXPECT_EQ(p.on_end(kT0, 10ms, kCrash).action, Action::restart);
  EXPECT_EQ(p.on_end(kT0 + 1s, 10ms, kCrash).action, Action::restart);
  EXPECT_EQ(p.on_end(kT0 + 2s, 10ms, kCrash).action, Action::fatal);
  EXPECT_EQ(p.next_base_delay(), 400ms);

  p.reset();
  EXPECT_EQ(p.restarts_in_window(kT0 + 3s), 0);
  EXPECT_EQ(p.next_base_delay(), 100ms);
  auto d = p.on_end(kT0 + 3s, 10ms, kCrash);
  EXPECT_EQ(d.action, Action::restart);
  EXPECT_EQ(d.delay, 100ms);
  EXPECT_EQ(p.on_end(kT0 + 4s, 10ms, kCrash).action, Action::restart);
  EXPECT_EQ(p.on_end(kT0 + 5s, 10ms, kCrash).action, Action::fatal);
}

TEST(RestartPolicy, UpdateKeepsTallyAndClampsDelay) {
  auto s = settings();
  s.max_restarts = 5;
  RestartPolicy p(s, fixed_jitter(0));
  for (int i = 0; i < 4; ++i) p.on_end(kT0 + i * 1s, 10ms, kCrash);
  EXPECT_EQ(p.next_base_delay(), 1600ms);

  // Lower cap: the current delay comes down to it; the tally stays.
  auto lower = s;
  lower.delay_max = 500ms;
  lower.max_restarts = 4;
  p.update(lower);
  EXPECT_EQ(p.settings().delay_max, 500ms);
  EXPECT_EQ(p.next_base_delay(), 500ms);
  EXPECT_EQ(p.restarts_in_window(kT0 + 4s), 4);
  EXPECT_EQ(p.on_end(kT0 + 4s, 10ms, kCrash).action, Action::fatal);

  // Higher first delay: the current delay goes up to it.
  auto higher = lower;
  higher.delay = 2s;
  higher.delay_max = 10s;
  higher.max_restarts = 10;
  p.update(higher);
  EXPECT_EQ(p.next_base_delay(), 2s);
  auto d = p.on_end(kT0 + 5s, 10ms, kCrash);
  EXPECT_EQ(d.action, Action::restart);
  EXPECT_EQ(d.delay, 2s);

  // Mode changes apply at once.
  auto never = higher;
  never.mode = RestartMode::never;
  p.update(never);
  EXPECT_EQ(p.on_end(kT0 + 6s, 10ms, kCrash).action, Action::stay);
}

TEST(RestartPolicy, SettingsFromProgramConfig) {
  ProgramConfig c;
  c.restart = RestartMode::on_failure;
  c.exit_codes = {0, 3};
  c.restart_delay = 250ms;
  c.restart_delay_max = 5s;
  c.backoff_reset = 2min;
  c.max_restarts = 7;
  c.restart_window = 90s;
  const auto s = RestartSettings::from(c);
  EXPECT_EQ(s.mode, RestartMode::on_failure);
  EXPECT_EQ(s.exit_codes, (std::vector<int>{0, 3}));
  EXPECT_EQ(s.delay, 250ms);
  EXPECT_EQ(s.delay_max, 5s);
  EXPECT_EQ(s.backoff_reset, 2min);
  EXPECT_EQ(s.max_restarts, 7);
  EXPECT_EQ(s.window, 90s);
}

}  // namespace
}  // namespace vigil
