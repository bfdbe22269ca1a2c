// vigil's loop stalls for 10 s (here: SIGSTOP, as a slow disk or a burst of
// spawns would) while its children keep beating, on fd 3 and on the notify
// socket, and writing. When it runs again, the beats waiting in the pipes
// and the socket queues must count before any deadline is judged: no child
// that never stopped beating may be restarted as hung. And nothing written
// during the stall is lost. Checked through the API after the stall: vigil
// answers, every child keeps its pid, no restart happened (a vigil that
// died would also log no "hung"), and the log holds every line in order.
#include <signal.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "control_harness.h"
#include "harness.h"

namespace vigil::it {
namespace {

class LoopStallTest : public BinaryTest {};

TEST_F(LoopStallTest, BeatsWaitingAfterAStallAreReadBeforeDeadlinesAreJudged) {
  VigilProcess& v = run_vigil_with(
      "[vigil]\ncontrol_socket = \"vigil.sock\"\n" +
      helper_program("beat", {"--beat", "50"}, "instances = 16\nmin_uptime = \"100ms\"") +
      "[programs.beat.heartbeat]\ninterval = \"200ms\"\nmisses = 3\ngrace = \"2s\"\n" +
      helper_program("dgram", {"--via-socket", "--beat", "50"},
                     "instances = 4\nmin_uptime = \"100ms\"") +
      "[programs.dgram.heartbeat]\ninterval = \"200ms\"\nmisses = 3\ngrace = \"2s\"\n" +
      helper_program("ticker", {"--tick", "10"}, "log_timestamps = false"));
  const fs::path socket = dir_ / "vigil.sock";
  control::Expected running;
  for (int i = 0; i < 16; ++i) running[{"beat", i}] = "running";
  for (int i = 0; i < 4; ++i) running[{"dgram", i}] = "running";
  running[{"ticker", 0}] = "running";
  const auto before = control::wait_for_states(socket, running);
  ASSERT_EQ(before.size(), running.size()) << before.dump() << "\n" << v.output();
  const auto pids = control::pids_of(before);

  // The stall itself is what is simulated here, not a synchronisation:
  // vigil is stopped for 50 heartbeat intervals while the children beat on.
  v.signal(SIGSTOP);
  std::this_thread::sleep_for(std::chrono::seconds(10));
  v.signal(SIGCONT);

  // A wrong verdict shows within one interval of the resume; give it ten.
  // The marker is a line vigil logs whatever happens (the children keep
  // beating, so a stop/start of one program is the observable end).
  EXPECT_FALSE(v.wait_for_output("hung", std::chrono::milliseconds(2000))) << v.output();

  // vigil lives, and judged nobody: same pids, no restart.
  ASSERT_TRUE(v.running()) << v.output();
  const auto after = control::api_instances(socket);
  ASSERT_TRUE(after.has_value()) << "vigil does not answer\n" << v.output();
  EXPECT_EQ(control::pids_of(*after), pids) << after->dump();
  for (const auto& i : *after) {
    EXPECT_EQ(i["restarts"], 0) << i.dump();
    EXPECT_EQ(i["state"], "running") << i.dump();
  }

  // 10 s of ticks every 10 ms waited in the pipe (about 10 KiB): every one
  // reaches the log, in order.
  const fs::path log = dir_ / "logs" / "ticker.out.log";
  std::vector<std::string> lines;
  ASSERT_TRUE(poll_until([&] {
    lines = read_lines(log);
    return lines.size() >= 1000;
  })) << lines.size() << " lines";
  for (std::size_t k = 0; k < lines.size(); ++k)
    ASSERT_EQ(lines[k], "tick " + std::to_string(k)) << "line " << k;
}

}  // namespace
}  // namespace vigil::it
