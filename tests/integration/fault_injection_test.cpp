// The fault-injection suite (`ctest -L fault`, part of `make test`): vigil
// attacked from outside, each case ending with "vigil alive, nothing lost or
// counted as dropped, no process left". This file holds the floods: a 1 GiB
// line and heartbeats as fast as vigil takes them. The other cases sit beside
// the defect they pin (tests/CMakeLists.txt lists the suite): out of fds at
// every spawn step (FdLimitTest), disk full and recovered, log dir deleted
// (LogDiskTest), the loop stalled 10 s (LoopStallTest), SIGKILL of vigil
// with every kind of descendant (LifelineTest), stopping thousands at once
// (StopManyTest).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "control_harness.h"
#include "harness.h"

namespace vigil::it {
namespace {

class FaultInjectionTest : public BinaryTest {
 protected:
  // ASan's quarantine alone holds 256 MiB of freed memory by default; the
  // memory bounds here are about what vigil keeps, so leave it out.
  void SetUp() override {
    if (!kAddressSanitizer) return;
    const char* options = ::getenv("ASAN_OPTIONS");
    asan_.emplace("ASAN_OPTIONS",
                  std::string(options ? options : "") + (options ? ":" : "") + "quarantine_size_mb=0");
  }

  // The peak of what vigil allocated, in KiB: the pages of its own binary
  // and libraries (RssFile, tens of MiB in a sanitizer build) are not data
  // it keeps, and do not grow with the input.
  static std::uint64_t peak_data_kib(VigilProcess& vigil) {
    const auto hwm_kib = status_kib(vigil.pid(), "VmHWM");
    const auto file_kib = status_kib(vigil.pid(), "RssFile");
    EXPECT_TRUE(hwm_kib.has_value() && file_kib.has_value());
    if (!hwm_kib || !file_kib) return 0;
    return *hwm_kib - std::min(*hwm_kib, *file_kib);
  }

  std::optional<ScopedEnv> asan_;
};

// Far below what holding the input would take (1 GiB). A sanitized vigil
// carries a fixed overhead besides (shadow memory, the allocator's
// metadata: ~60 MiB, growing a little with the code), which is not data it
// keeps.
constexpr std::uint64_t kMemoryBoundKib = (kAddressSanitizer ? 96 : 64) * 1024;

// A child writes 1 GiB with no newline: vigil's memory stays flat, the log
// holds every byte, cut into 64 KiB lines, and nothing is counted dropped.
TEST_F(FaultInjectionTest, OneGibLineKeepsMemoryBoundedAndReachesTheLogInPieces) {
  constexpr std::uint64_t kBytes = 1ull << 30;
  constexpr std::uint64_t kPiece = 64 * 1024;
  constexpr std::uint64_t kPieces = kBytes / kPiece;  // exactly 16384
  VigilProcess& vigil = run_vigil_with(
      "[vigil]\ncontrol_socket = \"vigil.sock\"\n" +
      helper_program("blob", {"--no-newline", std::to_string(kBytes)},
                     "restart = \"never\"\nlog_timestamps = false\nlog_max_size = \"2GiB\""));
  const fs::path log = dir_ / "logs" / "blob.out.log";
  ASSERT_TRUE(vigil.wait_for_output("program blob: exited with exit code 0", 100s))
      << vigil.output();
  ASSERT_TRUE(poll_until([&] {
    std::error_code ec;
    return fs::file_size(log, ec) >= kBytes + kPieces;
  }, 60s)) << "log holds " << fs::file_size(log) << " bytes";

  EXPECT_LT(peak_data_kib(vigil), kMemoryBoundKib) << "vigil's peak RSS in KiB, less its mapped files";
  std::string error;
  const auto metrics = vigil::control_request(dir_ / "vigil.sock", "GET", "/metrics", &error, 5s);
  ASSERT_TRUE(metrics.has_value()) << "vigil does not answer: " << error << "\n" << vigil.output();
  EXPECT_EQ(control::metric_line(metrics->body,
                                 "vigil_log_dropped_bytes_total{index=\"0\",program=\"blob\"}"),
            "vigil_log_dropped_bytes_total{index=\"0\",program=\"blob\"} 0");
  vigil.signal(SIGTERM);
  EXPECT_EQ(vigil.wait_exit(), 0) << vigil.output();

  EXPECT_EQ(fs::file_size(log), kBytes + kPieces);
  std::ifstream in(log, std::ios::binary);
  std::string line;
  std::uint64_t pieces = 0;
  const std::string expected(kPiece, 'a');
  while (std::getline(in, line)) {
    ASSERT_EQ(line.size(), kPiece) << "piece " << pieces;
    ASSERT_EQ(line, expected) << "piece " << pieces;
    ++pieces;
  }
  EXPECT_EQ(pieces, kPieces);
}

// Two children send WATCHDOG=1 as fast as they can, one on its fd 3 pipe,
// one on its notify socket, for 3 s. Meanwhile vigil answers its API
// promptly, a calm child beating every 50 ms is never judged late, nobody
// is restarted, and vigil's memory stays flat; then it stops them all.
TEST_F(FaultInjectionTest, HeartbeatFloodsStarveNobodyAndCostNoMemory) {
  const std::string heartbeat = "interval = \"200ms\"\nmisses = 3\ngrace = \"2s\"\n";
  VigilProcess& vigil = run_vigil_with(
      "[vigil]\ncontrol_socket = \"vigil.sock\"\n" +
      helper_program("pipe", {"--beat-flood"}) + "[programs.pipe.heartbeat]\n" + heartbeat +
      helper_program("socket", {"--via-socket", "--beat-flood"}) +
      "[programs.socket.heartbeat]\n" + heartbeat + helper_program("calm", {"--beat", "50"}) +
      // The calm child's interval is 20 of its beats: a miss there is the
      // loop (or the child) kept from running for a whole second, which a
      // flood must never cause; 200ms is within what a loaded 2-core
      // machine's scheduler alone can take from either.
      "[programs.calm.heartbeat]\ninterval = \"1s\"\nmisses = 3\ngrace = \"2s\"\n");
  const fs::path socket = dir_ / "vigil.sock";
  const control::Expected running{
      {{"pipe", 0}, "running"}, {{"socket", 0}, "running"}, {{"calm", 0}, "running"}};
  const auto before = control::wait_for_states(socket, running);
  ASSERT_EQ(before.size(), 3u) << before.dump() << "\n" << vigil.output();
  const auto pids = control::pids_of(before);

  // The flood lasting 3 s is the fault simulated, not a synchronisation:
  // the API is asked all along, each answer timed.
  const auto flood_end = SteadyClock::now() + 3s;
  SteadyClock::duration slowest{};
  int answers = 0;
  std::optional<control::Json> last;
  while (SteadyClock::now() < flood_end) {
    const auto t0 = SteadyClock::now();
    last = control::api_instances(socket);
    ASSERT_TRUE(last.has_value()) << "vigil does not answer during the flood\n" << vigil.output();
    slowest = std::max(slowest, SteadyClock::now() - t0);
    ++answers;
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(slowest).count();
  const auto beats = [&](std::string_view name) {
    return control::find_instance(*last, name)["heartbeats"].get<std::uint64_t>();
  };
  const auto misses = [&](std::string_view name) {
    return control::find_instance(*last, name)["heartbeat_misses"].get<std::uint64_t>();
  };
  std::printf("[ figures  ] heartbeat flood: %llu beats on fd 3, %llu on the socket in 3 s "
              "(missed intervals: %llu, %llu); %d API answers, the slowest %lld ms\n",
              static_cast<unsigned long long>(beats("pipe")),
              static_cast<unsigned long long>(beats("socket")),
              static_cast<unsigned long long>(misses("pipe")),
              static_cast<unsigned long long>(misses("socket")), answers,
              static_cast<long long>(ms));
  EXPECT_LT(ms, 2000) << "the loop answered late during the flood";
  // It was a flood: far more than the calm child's 60 beats.
  EXPECT_GT(beats("pipe"), 10'000u) << last->dump();
  EXPECT_GT(beats("socket"), 1'000u) << last->dump();

  EXPECT_EQ(control::pids_of(*last), pids) << last->dump();
  for (const auto& i : *last) {
    EXPECT_EQ(i["state"], "running") << i.dump();
    EXPECT_EQ(i["restarts"], 0) << i.dump();
  }
  // The calm child is never late. A flooder, burning a core, is what the
  // kernel descheduled first when another test loads the machine: a missed
  // interval of its own is possible (never the three in a row of a hang).
  EXPECT_EQ(misses("calm"), 0u) << last->dump();
  EXPECT_EQ(vigil.output().find("hung"), std::string::npos) << vigil.output();
  EXPECT_LT(peak_data_kib(vigil), kMemoryBoundKib) << "vigil's peak RSS in KiB, less its mapped files";

  vigil.signal(SIGTERM);
  EXPECT_EQ(vigil.wait_exit(), 0) << vigil.output();
  for (const auto& [instance, pid] : pids)
    EXPECT_TRUE(poll_until([&] { return process_dead(pid); })) << instance.first << " " << pid;
}

}  // namespace
}  // namespace vigil::it
