// vigil under a service manager (systemd Type=notify, WatchdogSec=): it
// tells its own NOTIFY_SOCKET READY=1 once supervising, WATCHDOG=1 at half
// of WATCHDOG_USEC from its loop, and STOPPING=1 when told to stop.
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "fd.h"
#include "harness.h"

namespace vigil::it {
namespace {

class SelfNotifyTest : public BinaryTest {
 protected:
  void TearDown() override {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    socket_.reset();
    BinaryTest::TearDown();
  }

  void listen(const fs::path& path) {
    socket_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    ASSERT_EQ(::bind(socket_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  }

  // The next datagram, or "" when none comes before the deadline.
  std::string receive(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    pollfd p{socket_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return "";
    char buf[4096];
    ssize_t n = ::recv(socket_.get(), buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  }

  UniqueFd socket_;
};

TEST_F(SelfNotifyTest, ReadyThenWatchdogAtHalfTheIntervalThenStopping) {
  const fs::path sock = dir_.path() / "manager.sock";
  ASSERT_NO_FATAL_FAILURE(listen(sock));
  ::setenv("NOTIFY_SOCKET", sock.c_str(), 1);
  ::setenv("WATCHDOG_USEC", "200000", 1);  // beats expected every 100 ms
  VigilProcess& v = run_vigil_with("[programs.idle]\ncommand = [" + toml_string(helper_binary()) +
                                   "]\n");

  bool ready = false;
  std::vector<std::chrono::steady_clock::time_point> beats;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (beats.size() < 12 && std::chrono::steady_clock::now() < deadline) {
    std::string m = receive();
    if (m.find("READY=1") != std::string::npos) ready = true;
    if (m == "WATCHDOG=1") beats.push_back(std::chrono::steady_clock::now());
  }
  EXPECT_TRUE(ready) << v.output();
  ASSERT_GE(beats.size(), 12u) << v.output();
  std::vector<double> gaps;
  for (std::size_t i = 1; i < beats.size(); ++i)
    gaps.push_back(std::chrono::duration<double, std::milli>(beats[i] - beats[i - 1]).count());
  std::sort(gaps.begin(), gaps.end());
  const double median = gaps[gaps.size() / 2];
  // Half of 200 ms; bounds loose enough for a loaded machine, tight enough
  // to tell half the interval from the whole.
  EXPECT_GT(median, 60) << "median gap " << median << " ms";
  EXPECT_LT(median, 160) << "median gap " << median << " ms";

  v.signal(SIGTERM);
  bool stopping = false;
  for (int i = 0; i < 50 && !stopping; ++i) {
    std::string m = receive();
    if (m.empty()) break;
    stopping = m.find("STOPPING=1") != std::string::npos;
  }
  EXPECT_TRUE(stopping);
  EXPECT_EQ(v.wait_exit(), 0) << v.output();
}

}  // namespace
}  // namespace vigil::it
