// Programs written for systemd's notify protocol run under vigil unchanged:
// systemd-notify(1) from a shell, libsystemd's sd_notify() with
// sd_watchdog_enabled(), datagrams from any process (NotifyAccess=all), and
// the systemd-only keys that vigil accepts and ignores.
#include <gtest/gtest.h>

#include <string>

#include "harness.h"

namespace vigil::it {
namespace {

using NotifyCompatTest = InProcessTest;

std::uint64_t restarts(const Instance& i, RestartReason r) {
  return i.counters().restarts[static_cast<std::size_t>(r)];
}

std::string heartbeat_section(std::string_view name, std::string_view interval, int misses,
                              std::string_view grace) {
  return "[programs." + std::string(name) + ".heartbeat]\ninterval = \"" + std::string(interval) +
         "\"\nmisses = " + std::to_string(misses) + "\ngrace = \"" + std::string(grace) + "\"\n\n";
}

TEST_F(NotifyCompatTest, SystemdNotifyFromAShellChild) {
  // systemd-notify is a grandchild (sh runs it) and sends from its own pid,
  // with no --pid: vigil takes the datagrams from any process. Each call
  // waits for vigil to have read its message (BARRIER=1, an unknown key).
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      "[programs.shell]\ncommand = " +
      toml_string("systemd-notify --ready --status='shell is up'; "
                  "while :; do systemd-notify WATCHDOG=1; sleep 0.1; done") +
      "\nready = \"notify\"\nstart_timeout = \"20s\"\nlog_timestamps = false\n\n" +
      heartbeat_section("shell", "300ms", 3, "1s")));
  Instance& i = vigil().instance("shell");
  ASSERT_TRUE(vigil().wait_state("shell", State::running))
      << vigil().log_text() << read_file(vigil().log_path("shell", 0, Stream::err));
  EXPECT_EQ(i.status_text(), "shell is up");

  const auto running_at = SteadyClock::now();

  // A beat every ~0.1 s (plus a process start or two). Ignored beats would
  // make it hung 1 s + 2 * 300 ms after the start; run 2 s, over 6 intervals.
  ASSERT_TRUE(vigil().run_until([&] {
    return (i.heartbeats() >= 10 && SteadyClock::now() - running_at >= 2s) ||
           i.state() != State::running;
  })) << vigil().log_text();
  EXPECT_EQ(i.state(), State::running);
  EXPECT_EQ(i.spawns(), 1);
  EXPECT_EQ(restarts(i, RestartReason::hung), 0u);
  EXPECT_EQ(i.notify_counts().protocol_errors, 0u);
  EXPECT_EQ(read_file(vigil().log_path("shell", 0, Stream::err)), "")
      << "systemd-notify complained";
}

TEST_F(NotifyCompatTest, SdNotifyChildRunsWithoutAFalseHang) {
  const auto binary = sd_notify_child_binary();
  if (!binary) GTEST_SKIP() << "built without libsystemd (libsystemd-dev): no sd_notify_child";
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      "[programs.sd]\ncommand = " + toml_array({*binary}) +
      "\nready = \"notify\"\nstart_timeout = \"20s\"\nlog_timestamps = false\n\n" +
      heartbeat_section("sd", "200ms", 3, "1s")));
  Instance& i = vigil().instance("sd");
  ASSERT_TRUE(vigil().wait_state("sd", State::running))
      << vigil().log_text() << read_file(vigil().log_path("sd", 0, Stream::err));
  const auto running_at = SteadyClock::now();

  // sd_watchdog_enabled() accepted WATCHDOG_USEC and WATCHDOG_PID (its own
  // pid): it would have exited 2 otherwise.
  const auto out = read_lines(vigil().log_path("sd"));
  ASSERT_FALSE(out.empty()) << read_file(vigil().log_path("sd", 0, Stream::err));
  EXPECT_EQ(out[0], "watchdog usec=200000");
  EXPECT_EQ(i.status_text(), "beating");

  // It beats every 100 ms; run at least 2 s (10 intervals). Beats that did
  // not count would make it hung 1 s + 2 * 200 ms after the start.
  ASSERT_TRUE(vigil().run_until([&] {
    return (i.heartbeats() >= 20 && SteadyClock::now() - running_at >= 2s) ||
           i.state() != State::running;
  })) << vigil().log_text();
  EXPECT_EQ(i.state(), State::running);
  EXPECT_EQ(i.spawns(), 1);
  EXPECT_EQ(restarts(i, RestartReason::hung), 0u);
  EXPECT_EQ(i.notify_counts().protocol_errors, 0u);
}

TEST_F(NotifyCompatTest, AnyProcessMayNotify) {
  // READY=1 from the test itself, not of the child's process tree, as with
  // systemd's NotifyAccess=all.
  ASSERT_NO_FATAL_FAILURE(start_vigil(
      helper_program("waiting", {}, "ready = \"notify\"\nstart_timeout = \"20s\"")));
  Instance& i = vigil().instance("waiting");
  ASSERT_TRUE(vigil().run_until([&] { return i.pid() > 0; }));
  EXPECT_EQ(i.state(), State::starting);

  ASSERT_TRUE(send_datagram(i.notify_socket_path(), "READY=1\nSTATUS=told by a stranger"));
  ASSERT_TRUE(vigil().wait_state("waiting", State::running)) << vigil().log_text();
  EXPECT_EQ(i.status_text(), "told by a stranger");
  EXPECT_EQ(i.spawns(), 1);
}

TEST_F(NotifyCompatTest, SystemdOnlyKeysAreIgnoredAndCounted) {
  ASSERT_NO_FATAL_FAILURE(start_vigil(helper_program("plain", {})));
  Instance& i = vigil().instance("plain");
  ASSERT_TRUE(vigil().wait_state("plain", State::running));

  ASSERT_TRUE(send_datagram(i.notify_socket_path(), "MAINPID=1\nRELOADING=1\nFDSTORE=1\n"));
  ASSERT_TRUE(send_datagram(i.notify_socket_path(), "STATUS=done"));
  // Datagrams on one socket arrive in order: once STATUS is seen, so were
  // the three before.
  ASSERT_TRUE(vigil().run_until([&] { return i.status_text() == "done"; })) << vigil().log_text();
  EXPECT_EQ(i.notify_counts().unknown, 3u);
  EXPECT_EQ(i.notify_counts().protocol_errors, 0u);
  EXPECT_EQ(i.state(), State::running);
  EXPECT_EQ(i.spawns(), 1);
}

}  // namespace
}  // namespace vigil::it
