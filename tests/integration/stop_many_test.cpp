// Starting and stopping hundreds or thousands of instances.
//
// Stopping thousands (issue 13, defect 5): `vigil stop all`
// with 2,000 instances returns 0, and vigil's loop answers /healthz all
// through the stop. Before, every reap re-read the children of vigil for
// strays, for every stopping instance: seconds of frozen loop, and a CLI
// that gave up ("cannot reach", exit 2).
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <thread>

#include <nlohmann/json.hpp>

#include "harness.h"
#include "metrics_client.h"

namespace vigil::it {
namespace {

using metrics_client::http_get;

constexpr int kInstances = 2000;

TEST(StopManyTest, StopAllOfTwoThousandInstancesKeepsTheLoopAnswering) {
  if (kAddressSanitizer)
    GTEST_SKIP() << "2,000 starts of a sanitized vigil (fork, not clone) take minutes";
  // log = "off": 2 fds an instance (notify socket, heartbeat pipe).
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < 2 * kInstances + 1000)
    GTEST_SKIP() << "the hard fd limit " << limit.rlim_max << " is too low for " << kInstances
                 << " instances";

  TempDir dir;
  const std::uint16_t port = free_port();
  const fs::path config = dir.write(
      "vigil.toml", "[vigil]\ncontrol_socket = \"vigil.sock\"\nlog_level = \"warn\"\n[http]\nlisten = "
                    "\"127.0.0.1:" + std::to_string(port) + "\"\n[programs.sleeper]\n"
                    "command = [\"sleep\", \"1000\"]\ninstances = " + std::to_string(kInstances) +
                    "\nlog = \"off\"\nmin_uptime = \"100ms\"\n");
  VigilProcess vigil(dir, {"run", "-c", config.string()});
  std::vector<pid_t> pids;
  ASSERT_TRUE(poll_until(
      [&] {
        auto r = http_get(port, "/api/v1/programs", 30s);
        if (!r || r->status != 200) return false;
        pids.clear();
        for (const auto& i : nlohmann::json::parse(r->body))
          if (i["state"] == "running") pids.push_back(i["pid"].get<pid_t>());
        return pids.size() == kInstances;
      },
      120s, 500ms))
      << pids.size() << " running\n" << vigil.output().substr(0, 4000);

  // /healthz from another thread all through the stop: the longest answer.
  std::atomic<bool> stopping{true};
  std::atomic<long> worst_ms{0};
  std::atomic<int> failures{0};
  std::thread poller([&] {
    while (stopping) {
      const auto t0 = SteadyClock::now();
      auto r = http_get(port, "/healthz", 30s);
      const long ms = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t0).count();
      if (!r || r->status != 200) ++failures;
      if (ms > worst_ms) worst_ms = ms;
      std::this_thread::sleep_for(20ms);  // a client's pace, not synchronisation
    }
  });
  const auto t0 = SteadyClock::now();
  auto stop = run_vigil(dir, {"stop", "all", "-c", config.string()}, 120s);
  const double took = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  stopping = false;
  poller.join();
  std::printf("stop all of %d instances: %.2fs; slowest /healthz %ldms\n", kInstances, took,
              worst_ms.load());

  EXPECT_EQ(stop.exit_code, 0) << stop.output.substr(0, 2000);
  EXPECT_EQ(failures, 0) << "/healthz went unanswered during the stop";
  EXPECT_LT(worst_ms, 2000) << "the loop froze during the stop";
  for (pid_t pid : pids) EXPECT_TRUE(process_dead(pid)) << "instance pid " << pid;
  vigil.signal(SIGTERM);
  EXPECT_EQ(vigil.wait_exit(60s), 0);
}

// A start of hundreds goes a slice per loop turn (a spawn costs from 50 µs
// on bare metal to milliseconds here), so the loop answers in between, and
// a stop asked for before every slice went cancels the starts still to
// come: none of those instances ever gets a process.
class StartManyTest : public InProcessTest {
 protected:
  // Fewer under ASan, where a spawn is a fork of the whole sanitized test.
  static constexpr int kMany = kAddressSanitizer ? 60 : 300;
  // kMany instances of `sleep`, started: start() runs the first slice.
  void start_sleepers() {
    start_vigil("[programs.sleeper]\ncommand = [\"sleep\", \"1000\"]\ninstances = " +
                std::to_string(kMany) + "\nlog = \"off\"\nmin_uptime = \"0s\"\n");
  }
};

TEST_F(StartManyTest, AStopCancelsTheSlicesOfAStartStillToCome) {
  ASSERT_NO_FATAL_FAILURE(start_sleepers());
  Program& p = vigil().program("sleeper");
  auto with_process = [&] {
    int n = 0;
    for (const auto& i : p.instances()) n += i->pid() > 0 ? 1 : 0;
    return n;
  };
  // start() ran the first slice only: 2 ms hold a few spawns, not 300.
  const int first_slice = with_process();
  EXPECT_GT(first_slice, 0);
  EXPECT_LT(first_slice, kMany);

  bool stopped = false;
  p.stop([&] { stopped = true; });
  ASSERT_TRUE(vigil().run_until([&] { return stopped; }));
  EXPECT_EQ(with_process(), 0);
  // Nothing of the start comes back on a later turn.
  EXPECT_FALSE(vigil().run_until([&] { return with_process() > 0; }, 300ms));
  for (const auto& i : p.instances()) EXPECT_EQ(i->state(), State::stopped) << i->index();
}

// A restart all at once signals each instance's tree: in slices too, and
// every instance is replaced.
TEST_F(StartManyTest, ARestartAllAtOnceGoesInSlicesAndReplacesEveryInstance) {
  ASSERT_NO_FATAL_FAILURE(start_sleepers());
  Program& p = vigil().program("sleeper");
  auto all_running = [&] {
    for (const auto& i : p.instances())
      if (i->state() != State::running) return false;
    return true;
  };
  ASSERT_TRUE(vigil().run_until(all_running));
  std::vector<pid_t> before;
  for (const auto& i : p.instances()) before.push_back(i->pid());

  p.restart(/*all_at_once=*/true);
  // restart() ran the first slice only: most instances are not asked yet.
  int asked = 0;
  for (const auto& i : p.instances()) asked += i->state() != State::running ? 1 : 0;
  EXPECT_GT(asked, 0);
  EXPECT_LT(asked, kMany);

  ASSERT_TRUE(vigil().run_until([&] {
    if (!all_running()) return false;
    for (std::size_t n = 0; n < before.size(); ++n)
      if (p.instances()[n]->pid() == before[n]) return false;
    return true;
  })) << "every instance running with a new process";
  for (const auto& i : p.instances()) EXPECT_EQ(i->spawns(), 2) << i->index();
}

TEST_F(StartManyTest, EveryInstanceOfAStartInSlicesRuns) {
  ASSERT_NO_FATAL_FAILURE(start_sleepers());
  Program& p = vigil().program("sleeper");
  EXPECT_TRUE(vigil().run_until([&] {
    for (const auto& i : p.instances())
      if (i->state() != State::running) return false;
    return true;
  }));
}

}  // namespace
}  // namespace vigil::it
