// vigil's loop stalls (here: SIGSTOP, as a slow disk or a burst of spawns
// would) while its children keep beating. When it runs again, the beats
// waiting in the pipes must count before any deadline is judged: no child
// that never stopped beating may be restarted as hung. Checked through the
// API after the stall: vigil answers, every child keeps its pid, and no
// restart happened (a vigil that died would also log no "hung").
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
      "[programs.beat]\ncommand = [" + toml_string(helper_binary()) +
      ", \"--beat\", \"50\"]\ninstances = 20\nmin_uptime = \"100ms\"\n"
      "[programs.beat.heartbeat]\ninterval = \"200ms\"\nmisses = 3\ngrace = \"2s\"\n");
  ASSERT_TRUE(v.wait_for_output_count("started, pid", 20)) << v.output();
  const fs::path socket = dir_ / "vigil.sock";
  control::Expected running;
  for (int i = 0; i < 20; ++i) running[{"beat", i}] = "running";
  const auto before = control::wait_for_states(socket, running);
  ASSERT_EQ(before.size(), 20u) << before.dump() << "\n" << v.output();
  const auto pids = control::pids_of(before);

  // The stall itself is what is simulated here, not a synchronisation:
  // vigil is stopped for 5 heartbeat intervals while the children beat on.
  v.signal(SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
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
}

}  // namespace
}  // namespace vigil::it
