// SignalEvent with real signals: libevent calls once per delivery; a
// coalesced event makes the deliveries that came in before the loop got to
// them one call (the reaper's SIGCHLD: one waitpid loop serves them all).
#include <gtest/gtest.h>

#include <csignal>

#include "event_loop.h"
#include "harness.h"

namespace vigil::it {
namespace {

// SIGURG: ignored by default, used by nothing else in vigil.
constexpr int kSignal = SIGURG;

TEST(SignalEventTest, DeliveriesBeforeTheLoopTurnsAreOneCallWhenCoalesced) {
  EventLoop loop;
  int each = 0, coalesced = 0;
  SignalEvent every(loop, kSignal, [&] { ++each; });
  SignalEvent once(loop, kSignal, [&] { ++coalesced; }, SignalEvent::Deliveries::coalesced);

  for (int i = 0; i < 3; ++i) ASSERT_EQ(::raise(kSignal), 0);
  ASSERT_TRUE(loop.run_until([&] { return each == 3; }, kEventually));
  EXPECT_EQ(coalesced, 1);

  // Not once for ever: a later delivery is a later call.
  ASSERT_EQ(::raise(kSignal), 0);
  ASSERT_TRUE(loop.run_until([&] { return each == 4; }, kEventually));
  ASSERT_TRUE(loop.run_until([&] { return coalesced == 2; }, kEventually));
  EXPECT_EQ(coalesced, 2);
}

TEST(SignalEventTest, ACoalescedEventDestroyedWhileActiveIsNotCalled) {
  EventLoop loop;
  int each = 0, coalesced = 0;
  std::unique_ptr<SignalEvent> once;
  // libevent runs the events of one signal newest first: `once` takes the
  // delivery (its call now waits in the turn), then `destroyer` destroys
  // it, then `every` counts.
  SignalEvent every(loop, kSignal, [&] { ++each; });
  SignalEvent destroyer(loop, kSignal, [&] { once.reset(); });
  once = std::make_unique<SignalEvent>(loop, kSignal, [&] { ++coalesced; }, SignalEvent::Deliveries::coalesced);
  ASSERT_EQ(::raise(kSignal), 0);
  ASSERT_TRUE(loop.run_until([&] { return each == 1; }, kEventually));
  EXPECT_FALSE(once);
  // A turn more: nothing left behind runs.
  ASSERT_EQ(::raise(kSignal), 0);
  ASSERT_TRUE(loop.run_until([&] { return each == 2; }, kEventually));
  EXPECT_EQ(coalesced, 0);
}

}  // namespace
}  // namespace vigil::it
