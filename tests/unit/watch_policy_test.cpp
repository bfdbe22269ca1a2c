// WatchPolicy: when on_failure runs, the cool-down, what counts as a
// failure, registration and {pid}, for check and notify watches. Time is a
// parameter: every instant is built from a fixed origin.
#include "watch_policy.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

using namespace std::chrono_literals;

const SteadyTime kT0 = SteadyTime{} + std::chrono::hours(1000);

const std::vector<std::vector<std::string>> kRestart{{"curl", "-fsS", "http://127.0.0.1/restart"}};

// A check watch: `failures` in a row, one check per `interval`.
WatchConfig check_watch(int failures = 3, Duration interval = 10s,
                        std::vector<std::vector<std::string>> on_failure = kRestart) {
  WatchConfig c;
  c.name = "legacy";
  ProbeConfig p;
  p.kind = ProbeKind::http;
  p.target = "http://127.0.0.1:8000/status";
  p.interval = interval;
  p.failures = failures;
  c.check = p;
  c.on_failure = std::move(on_failure);
  return c;
}

// A notify watch: heartbeat every `interval`, hung after `misses`.
WatchConfig notify_watch(Duration interval = 5s, int misses = 3, Duration grace = 30s,
                         std::vector<std::vector<std::string>> on_failure = {
                             {"kill", "-9", "{pid}"}, {"/usr/local/bin/start-guarded"}}) {
  WatchConfig c;
  c.name = "guarded";
  c.notify_socket = "/run/vigil/guarded.sock";
  c.heartbeat.interval = interval;
  c.heartbeat.misses = misses;
  c.heartbeat.grace = grace;
  c.on_failure = std::move(on_failure);
  return c;
}

// Feeds a failed check at kT0 + 10s*i for i in [from, to); returns the
// actions decided, by check number.
std::vector<std::pair<int, WatchAction>> fail_checks(WatchPolicy& p, int from, int to,
                                                     Duration interval = 10s) {
  std::vector<std::pair<int, WatchAction>> acts;
  for (int i = from; i < to; ++i)
    if (auto a = p.on_check(false, kT0 + interval * i)) acts.emplace_back(i, *a);
  return acts;
}

TEST(WatchPolicy, KindsAndWordsAreTheContracts) {
  EXPECT_EQ(watch_kind(check_watch()), WatchKind::http);
  EXPECT_EQ(watch_kind(notify_watch()), WatchKind::notify);
  WatchConfig exec = check_watch();
  exec.check->kind = ProbeKind::exec;
  EXPECT_EQ(watch_kind(exec), WatchKind::exec);
  EXPECT_STREQ(to_string(WatchKind::tcp), "tcp");
  EXPECT_STREQ(to_string(ActionResult::ok), "ok");
  EXPECT_STREQ(to_string(ActionResult::failed), "failed");
  EXPECT_STREQ(to_string(ActionResult::timeout), "timeout");
  EXPECT_STREQ(to_string(WatchState::cooldown), "cooldown");
}

// --- check watches

TEST(WatchPolicy, NoVerdictBeforeTheFirstCheck) {
  WatchPolicy p(check_watch());
  EXPECT_EQ(p.up(), std::nullopt);
  EXPECT_EQ(p.state(), WatchState::waiting);
  EXPECT_EQ(p.next_action_time(), std::nullopt);
  EXPECT_EQ(p.last_seen(), std::nullopt);
}

TEST(WatchPolicy, ActsOnceWhenFailuresInARowAreReached) {
  WatchPolicy p(check_watch(3));
  EXPECT_FALSE(p.on_check(false, kT0));
  EXPECT_EQ(p.state(), WatchState::failing);
  EXPECT_EQ(p.up(), false);
  EXPECT_FALSE(p.on_check(false, kT0 + 10s));
  auto a = p.on_check(false, kT0 + 20s);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->reason, ActReason::failures);
  EXPECT_EQ(a->pid, std::nullopt);
  EXPECT_EQ(p.state(), WatchState::acting);
  EXPECT_EQ(p.consecutive_failures(), 3);
  EXPECT_EQ(p.failures(), 3u);
  // Still failing while the commands run: counted, never a second run.
  EXPECT_TRUE(fail_checks(p, 3, 20).empty());
  EXPECT_EQ(p.failures(), 20u);
  EXPECT_EQ(p.next_action_time(), std::nullopt);
}

TEST(WatchPolicy, APassResetsTheCount) {
  WatchPolicy p(check_watch(3));
  fail_checks(p, 0, 2);
  EXPECT_FALSE(p.on_check(true, kT0 + 20s));
  EXPECT_EQ(p.consecutive_failures(), 0);
  EXPECT_EQ(p.up(), true);
  EXPECT_EQ(p.state(), WatchState::up);
  EXPECT_EQ(p.failures(), 2u);  // the total stays
  EXPECT_TRUE(fail_checks(p, 3, 5).empty());
  EXPECT_EQ(fail_checks(p, 5, 6).size(), 1u);  // three in a row again
}

TEST(WatchPolicy, OneFailureIsEnoughWithFailuresOne) {
  WatchPolicy p(check_watch(1));
  EXPECT_TRUE(p.on_check(false, kT0));
}

TEST(WatchPolicy, CoolDownIsIntervalTimesFailuresFromWhenTheActionsFinished) {
  WatchPolicy p(check_watch(3, 10s));
  ASSERT_EQ(fail_checks(p, 0, 3).size(), 1u);  // acts at kT0 + 20s
  // The commands take 7s.
  p.on_actions_finished(kT0 + 27s, {ActionResult::ok});
  EXPECT_EQ(p.actions(ActionResult::ok), 1u);
  EXPECT_EQ(p.state(), WatchState::cooldown);
  ASSERT_TRUE(p.next_action_time());
  EXPECT_EQ(*p.next_action_time(), kT0 + 27s + 30s);
  // Failing checks inside the cool-down: no action.
  for (Duration t = 30s; t < 57s; t += 10s) EXPECT_FALSE(p.on_check(false, kT0 + t));
  EXPECT_FALSE(p.on_next_action_time(kT0 + 56s));  // early timer
  // The end of the cool-down, still failing: act again.
  auto again = p.on_next_action_time(kT0 + 57s);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->reason, ActReason::still_failing);
  EXPECT_EQ(p.state(), WatchState::acting);
}

TEST(WatchPolicy, AFailingCheckAfterTheCoolDownActsWhenNoTimerDidFirst) {
  WatchPolicy p(check_watch(2, 10s));
  ASSERT_EQ(fail_checks(p, 0, 2).size(), 1u);
  p.on_actions_finished(kT0 + 10s, {ActionResult::failed});
  EXPECT_FALSE(p.on_check(false, kT0 + 20s));  // cool-down until kT0 + 30s
  auto a = p.on_check(false, kT0 + 30s);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->reason, ActReason::still_failing);
  EXPECT_EQ(p.actions(ActionResult::failed), 1u);
}

TEST(WatchPolicy, RecoveringInsideTheCoolDownEndsIt) {
  WatchPolicy p(check_watch(3, 10s));
  fail_checks(p, 0, 3);
  p.on_actions_finished(kT0 + 21s, {ActionResult::ok});
  EXPECT_FALSE(p.on_check(true, kT0 + 30s));
  EXPECT_EQ(p.state(), WatchState::up);
  EXPECT_EQ(p.up(), true);
  EXPECT_EQ(p.next_action_time(), std::nullopt);
  EXPECT_FALSE(p.on_next_action_time(kT0 + 51s));
}

// Recovered, then failing again before the cool-down ended: the cool-down
// still holds, then the watch acts at its end.
TEST(WatchPolicy, TheCoolDownHoldsEvenForANewFailure) {
  WatchPolicy p(check_watch(2, 10s));
  fail_checks(p, 0, 2);                                  // acts at +10s
  p.on_actions_finished(kT0 + 11s, {ActionResult::ok});  // cool-down until +31s
  EXPECT_FALSE(p.on_check(true, kT0 + 12s));
  EXPECT_FALSE(p.on_check(false, kT0 + 20s));
  EXPECT_FALSE(p.on_check(false, kT0 + 30s));  // two in a row, inside the cool-down
  EXPECT_EQ(p.state(), WatchState::cooldown);
  auto a = p.on_next_action_time(kT0 + 31s);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->reason, ActReason::still_failing);
}

TEST(WatchPolicy, ResultsOfEveryCommandAreCounted) {
  WatchPolicy p(check_watch(1));
  ASSERT_TRUE(p.on_check(false, kT0));
  p.on_actions_finished(kT0 + 1s,
                        {ActionResult::ok, ActionResult::failed, ActionResult::timeout,
                         ActionResult::failed});
  EXPECT_EQ(p.actions(ActionResult::ok), 1u);
  EXPECT_EQ(p.actions(ActionResult::failed), 2u);
  EXPECT_EQ(p.actions(ActionResult::timeout), 1u);
}

TEST(WatchPolicy, WithoutOnFailureTheWatchOnlyReports) {
  WatchPolicy p(check_watch(2, 10s, {}));
  EXPECT_TRUE(fail_checks(p, 0, 10).empty());
  EXPECT_EQ(p.state(), WatchState::down);
  EXPECT_EQ(p.up(), false);
  EXPECT_EQ(p.failures(), 10u);
  EXPECT_EQ(p.next_action_time(), std::nullopt);
}

TEST(WatchPolicy, ReloadKeepsTheCountAndAppliesNewThresholds) {
  WatchPolicy p(check_watch(5, 10s));
  fail_checks(p, 0, 3);
  // A lower threshold the count already passed: the next failure acts.
  p.update(check_watch(2, 10s));
  EXPECT_EQ(p.consecutive_failures(), 3);
  auto a = p.on_check(false, kT0 + 30s);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->reason, ActReason::still_failing);
  p.on_actions_finished(kT0 + 31s, {ActionResult::ok});
  EXPECT_EQ(*p.next_action_time(), kT0 + 31s + 20s);
  // A longer interval lengthens the cool-down in force.
  p.update(check_watch(2, 60s));
  EXPECT_EQ(*p.next_action_time(), kT0 + 31s + 120s);
}

TEST(WatchPolicy, ReloadGivingCommandsToAFailingWatchActsAtOnce) {
  WatchPolicy p(check_watch(2, 10s, {}));
  fail_checks(p, 0, 4);
  EXPECT_EQ(p.state(), WatchState::down);
  p.update(check_watch(2, 10s));
  ASSERT_TRUE(p.next_action_time());
  EXPECT_LE(*p.next_action_time(), kT0 + 40s);
  auto a = p.on_next_action_time(kT0 + 40s);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->reason, ActReason::still_failing);
}

// --- notify watches

TEST(WatchPolicy, NothingIsWatchedBeforeReady) {
  WatchPolicy p(notify_watch());
  EXPECT_EQ(p.state(), WatchState::waiting);
  EXPECT_EQ(p.up(), std::nullopt);
  EXPECT_EQ(p.heartbeat_deadline(), std::nullopt);
  EXPECT_FALSE(p.on_heartbeat_deadline(kT0 + 1h));
  // A heartbeat without READY=1 is recorded, but registers nothing.
  p.on_beat(kT0);
  EXPECT_EQ(p.heartbeats(), 1u);
  EXPECT_FALSE(p.registered());
  EXPECT_EQ(p.heartbeat_deadline(), std::nullopt);
}

TEST(WatchPolicy, ReadyRegistersWithGraceThenIntervals) {
  WatchPolicy p(notify_watch(5s, 3, 30s));
  p.on_ready(kT0);
  EXPECT_TRUE(p.registered());
  EXPECT_EQ(p.up(), true);
  EXPECT_EQ(p.state(), WatchState::up);
  EXPECT_EQ(p.heartbeat_deadline(), kT0 + 30s);
  p.on_beat(kT0 + 2s);
  EXPECT_EQ(p.heartbeat_deadline(), kT0 + 7s);
  EXPECT_EQ(p.last_seen(), kT0 + 2s);
}

TEST(WatchPolicy, MissesInARowMakeItHungAndAct) {
  WatchPolicy p(notify_watch(5s, 3, 30s));
  p.on_ready(kT0);
  p.on_main_pid(4242);
  p.on_beat(kT0 + 1s);
  EXPECT_FALSE(p.on_heartbeat_deadline(kT0 + 6s));
  EXPECT_EQ(p.up(), false);  // a missed interval
  EXPECT_EQ(p.state(), WatchState::failing);
  EXPECT_EQ(p.failures(), 1u);
  EXPECT_FALSE(p.on_heartbeat_deadline(kT0 + 11s));
  auto a = p.on_heartbeat_deadline(kT0 + 16s);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->reason, ActReason::hung);
  EXPECT_EQ(a->pid, 4242);
  EXPECT_EQ(p.failures(), 3u);
  EXPECT_EQ(p.consecutive_failures(), 3);
  EXPECT_EQ(p.heartbeat_deadline(), std::nullopt);  // detection off once hung
  // The pid went to those commands; it is not named again.
  EXPECT_EQ(p.pid(), std::nullopt);
}

TEST(WatchPolicy, ALateTimerCountsEveryMissedIntervalUpToHung) {
  WatchPolicy p(notify_watch(5s, 3, 0s));
  p.on_ready(kT0);
  auto a = p.on_heartbeat_deadline(kT0 + 1h);
  ASSERT_TRUE(a);
  EXPECT_EQ(p.failures(), 3u);
}

TEST(WatchPolicy, SilenceAfterActingActsAgainAfterEachCoolDown) {
  WatchPolicy p(notify_watch(5s, 3, 0s));
  p.on_ready(kT0);
  p.on_main_pid(100);
  ASSERT_TRUE(p.on_heartbeat_deadline(kT0 + 10s));  // hung at +10s
  p.on_actions_finished(kT0 + 12s, {ActionResult::ok, ActionResult::ok});
  EXPECT_EQ(p.state(), WatchState::cooldown);
  EXPECT_EQ(p.up(), false);
  EXPECT_EQ(p.next_action_time(), kT0 + 12s + 15s);
  EXPECT_FALSE(p.on_next_action_time(kT0 + 26s));
  auto again = p.on_next_action_time(kT0 + 27s);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->reason, ActReason::still_failing);
  EXPECT_EQ(again->pid, std::nullopt);  // no MAINPID= since the last action
  p.on_actions_finished(kT0 + 28s, {ActionResult::failed, ActionResult::ok});
  EXPECT_EQ(p.next_action_time(), kT0 + 28s + 15s);
  EXPECT_TRUE(p.on_next_action_time(kT0 + 43s));
  // Silence counts once: one failure per hang, not per interval after it.
  EXPECT_EQ(p.failures(), 3u);
}

TEST(WatchPolicy, ReRegisteringEndsTheFailureAndNamesTheNewPid) {
  WatchPolicy p(notify_watch(5s, 2, 0s));
  p.on_ready(kT0);
  p.on_main_pid(100);
  ASSERT_TRUE(p.on_heartbeat_deadline(kT0 + 5s));
  // The restarted process registers while the commands still run.
  p.on_ready(kT0 + 6s);
  p.on_main_pid(200);
  p.on_actions_finished(kT0 + 7s, {ActionResult::ok});
  EXPECT_EQ(p.state(), WatchState::up);
  EXPECT_EQ(p.next_action_time(), std::nullopt);
  EXPECT_EQ(p.pid(), 200);
  // Hung again after the cool-down: the new pid.
  auto a = p.on_heartbeat_deadline(kT0 + 30s);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->pid, 200);
}

TEST(WatchPolicy, AHeartbeatFromAHungProcessEndsTheFailure) {
  WatchPolicy p(notify_watch(5s, 2, 0s, {}));
  p.on_ready(kT0);
  EXPECT_FALSE(p.on_heartbeat_deadline(kT0 + 5s));
  EXPECT_FALSE(p.on_heartbeat_deadline(kT0 + 10s));
  EXPECT_EQ(p.state(), WatchState::down);
  p.on_beat(kT0 + 12s);
  EXPECT_EQ(p.state(), WatchState::up);
  EXPECT_EQ(p.up(), true);
  EXPECT_EQ(p.consecutive_failures(), 0);
  EXPECT_EQ(p.heartbeat_deadline(), kT0 + 17s);  // detection again
}

TEST(WatchPolicy, StoppingDisposesWithoutAction) {
  WatchPolicy p(notify_watch(5s, 2, 0s));
  p.on_ready(kT0);
  p.on_main_pid(100);
  EXPECT_FALSE(p.on_heartbeat_deadline(kT0));  // one miss of two
  p.on_stopping();
  EXPECT_FALSE(p.registered());
  EXPECT_EQ(p.state(), WatchState::waiting);
  EXPECT_EQ(p.up(), std::nullopt);
  EXPECT_EQ(p.pid(), std::nullopt);
  EXPECT_EQ(p.heartbeat_deadline(), std::nullopt);
  EXPECT_FALSE(p.on_heartbeat_deadline(kT0 + 1h));
  EXPECT_EQ(p.next_action_time(), std::nullopt);
  // Until the next READY=1.
  p.on_ready(kT0 + 2h);
  EXPECT_EQ(p.heartbeat_deadline(), kT0 + 2h);
}

TEST(WatchPolicy, StoppingWhileHungCancelsTheNextAction) {
  WatchPolicy p(notify_watch(5s, 1, 0s));
  p.on_ready(kT0);
  ASSERT_TRUE(p.on_heartbeat_deadline(kT0));
  p.on_actions_finished(kT0 + 1s, {ActionResult::ok});
  ASSERT_TRUE(p.next_action_time());
  p.on_stopping();
  EXPECT_EQ(p.next_action_time(), std::nullopt);
}

TEST(WatchPolicy, TriggerIsAFailureNow) {
  WatchPolicy p(notify_watch(5s, 3, 30s));
  p.on_ready(kT0);
  p.on_main_pid(77);
  auto a = p.on_trigger(kT0 + 1s);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->reason, ActReason::trigger);
  EXPECT_EQ(a->pid, 77);
  EXPECT_EQ(p.failures(), 1u);
  EXPECT_EQ(p.up(), false);
  EXPECT_EQ(p.heartbeat_deadline(), std::nullopt);
  // Inside the cool-down a second trigger is counted, not acted upon.
  p.on_actions_finished(kT0 + 2s, {ActionResult::ok});
  EXPECT_FALSE(p.on_trigger(kT0 + 3s));
  EXPECT_EQ(p.failures(), 2u);
}

TEST(WatchPolicy, MainPidIsKeptAcrossReadyAndReplacedByANewOne) {
  WatchPolicy p(notify_watch());
  p.on_main_pid(10);  // before READY=1, as systemd allows
  p.on_ready(kT0);
  EXPECT_EQ(p.pid(), 10);
  p.on_main_pid(11);
  EXPECT_EQ(p.pid(), 11);
  p.on_main_pid(0);
  EXPECT_EQ(p.pid(), 11);
}

TEST(WatchPolicy, ReloadOfTheHeartbeatKeepsTheRegistration) {
  WatchPolicy p(notify_watch(5s, 3, 0s));
  p.on_ready(kT0);
  p.on_beat(kT0 + 1s);
  p.update(notify_watch(20s, 2, 0s));
  EXPECT_TRUE(p.registered());
  EXPECT_EQ(p.heartbeat_deadline(), kT0 + 21s);
  EXPECT_EQ(p.cooldown(), 40s);
}

// --- parsing and expansion

TEST(WatchPolicy, MainPidParsing) {
  EXPECT_EQ(parse_main_pid("1234"), 1234);
  EXPECT_EQ(parse_main_pid("2147483647"), 2147483647);
  EXPECT_EQ(parse_main_pid("0"), std::nullopt);
  EXPECT_EQ(parse_main_pid("-5"), std::nullopt);
  EXPECT_EQ(parse_main_pid("+5"), std::nullopt);
  EXPECT_EQ(parse_main_pid("12a"), std::nullopt);
  EXPECT_EQ(parse_main_pid(""), std::nullopt);
  EXPECT_EQ(parse_main_pid(" 5"), std::nullopt);
  EXPECT_EQ(parse_main_pid("2147483648"), std::nullopt);
  EXPECT_EQ(parse_main_pid("99999999999999999999"), std::nullopt);
}

TEST(WatchPolicy, PidExpansion) {
  using Argv = std::vector<std::string>;
  EXPECT_EQ(expand_pid({"kill", "-9", "{pid}"}, 42), (Argv{"kill", "-9", "42"}));
  EXPECT_EQ(expand_pid({"sh", "-c", "echo {pid} > /tmp/{pid}.txt"}, 7),
            (Argv{"sh", "-c", "echo 7 > /tmp/7.txt"}));
  EXPECT_EQ(expand_pid({"restart"}, std::nullopt), (Argv{"restart"}));
  EXPECT_EQ(expand_pid({"kill", "{pid}"}, std::nullopt), std::nullopt);
  EXPECT_EQ(expand_pid({"echo", "{pi}", "{pid"}, std::nullopt), (Argv{"echo", "{pi}", "{pid"}));
}

}  // namespace
}  // namespace vigil
