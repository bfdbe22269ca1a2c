// vigil as PID 1 of a container: the real binary as the first process of a
// new pid namespace (`unshare --pid --fork --mount-proc`, which needs root).
// It reaps every orphan re-parented to it, including processes it never
// spawned and cannot attribute to a program; SIGTERM sent from outside the
// namespace stops everything gracefully and exits 0 (the kernel delivers a
// signal to a namespace's PID 1 only when it has a handler); an essential
// program going fatal ends vigil with 3, as README documents. vigil's
// lifeline, re-parented to it there like every orphan, is no leftover to kill.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "harness.h"

namespace vigil::it {
namespace {

struct NsProcess {
  pid_t pid = 0;   // as the namespace sees it
  pid_t ppid = 0;  // likewise: 1 is vigil
  char state = 0;
  std::string comm;
};

// The processes of the namespace whose PID 1 is `outer_pid`, read from the
// namespace's own /proc (mounted by --mount-proc, reached through PID 1's root).
std::vector<NsProcess> namespace_processes(pid_t outer_pid) {
  std::vector<NsProcess> out;
  const std::string proc = "/proc/" + std::to_string(outer_pid) + "/root/proc";
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(proc.c_str()), ::closedir);
  if (!d) return out;
  while (dirent* e = ::readdir(d.get())) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    // read_file, not an istreambuf_iterator: a process that exits while its
    // stat is read makes the read fail (ESRCH), which the iterator throws.
    const std::string text = read_file(proc + "/" + e->d_name + "/stat");
    const auto open = text.find('(');
    const auto close = text.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;  // gone meanwhile
    NsProcess p;
    p.pid = static_cast<pid_t>(std::atoi(e->d_name));
    p.comm = text.substr(open + 1, close - open - 1);
    std::istringstream rest(text.substr(close + 1));
    rest >> p.state >> p.ppid;
    out.push_back(p);
  }
  return out;
}

bool root_and_unshare() {
  return ::geteuid() == 0 && ::access("/usr/bin/unshare", X_OK) == 0;
}

class Pid1Test : public BinaryTest {
 protected:
  // `unshare ... vigil run -c CONFIG`; returns vigil's pid outside the
  // namespace (unshare's one child), or 0.
  pid_t start_as_pid1(std::string_view toml) {
    const fs::path config = write_config(toml);
    vigil_ = std::make_unique<VigilProcess>(
        dir_, std::vector<std::string>{"run", "-c", config.string()}, "vigil.output",
        std::vector<std::string>{"/usr/bin/unshare", "--pid", "--fork", "--mount-proc",
                                 "--kill-child"});
    pid_t outer = 0;
    poll_until([&] {
      const std::string children = read_file("/proc/" + std::to_string(vigil_->pid()) + "/task/" +
                                             std::to_string(vigil_->pid()) + "/children");
      outer = static_cast<pid_t>(std::atoi(children.c_str()));
      if (outer <= 0) return false;
      // Its exec of vigil done, and PID 1 inside.
      const std::string status = read_file("/proc/" + std::to_string(outer) + "/status");
      return status.find("Name:\tvigil\n") != std::string::npos &&
             std::regex_search(status, std::regex("NSpid:\\s+\\d+\\s+1\\n"));
    });
    return outer;
  }
};

TEST_F(Pid1Test, ReapsEveryOrphanAndStopsGracefullyOnSigterm) {
  if (!root_and_unshare()) GTEST_SKIP() << "needs root and unshare(1)";
  // The grandchildren block reading a fifo the test holds open; they exit
  // once the test closes it, after their parent is gone.
  const fs::path fifo = dir_ / "release";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  UniqueFd release(::open(fifo.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(release) << std::strerror(errno);
  const fs::path pids = dir_ / "sleeper.pid";

  // 50 grandchildren in sessions of their own and without vigil's
  // VIGIL_PROGRAM/VIGIL_INSTANCE: orphans vigil cannot attribute to anything.
  // The spawner exits once each has left its process group (vigil kills
  // the group of a program whose process ended), bounded at 30s.
  const fs::path started = dir_ / "started";
  const std::string spawner =
      ": > " + started.string() +
      "; for i in $(seq 50); do env -u VIGIL_PROGRAM -u VIGIL_INSTANCE setsid sh -c 'echo >> " +
      started.string() + "; exec cat' < " + fifo.string() +
      " & done; n=0; while [ \"$(wc -l < " + started.string() +
      ")\" -lt 50 ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n + 1)); done; exit 0";
  const pid_t outer = start_as_pid1(
      "[programs.spawner]\ncommand = " + toml_string(spawner) +
      "\nrestart = \"never\"\n\n" +
      helper_program("sleeper", {"--pidfile", pids.string()}, "stop_timeout = \"60s\""));
  ASSERT_GT(outer, 0) << vigil_->output();

  // The spawner exited, and its 50 children are now vigil's (ppid 1).
  std::vector<NsProcess> procs;
  ASSERT_TRUE(poll_until([&] {
    procs = namespace_processes(outer);
    int orphans = 0;
    for (const auto& p : procs) orphans += p.comm == "cat" && p.ppid == 1;
    return orphans == 50;
  })) << vigil_->output();

  release.reset();  // EOF for every cat
  // Every one reaped: nothing in the namespace but vigil, its lifeline and
  // the sleeper, no zombie.
  ASSERT_TRUE(poll_until([&] {
    procs = namespace_processes(outer);
    std::erase_if(procs, [](const NsProcess& p) { return p.comm == "vigil-lifeline"; });
    return procs.size() == 2;
  })) << [&] {
    std::string left;
    for (const auto& p : procs)
      left += std::to_string(p.pid) + " " + p.comm + " " + p.state + " ppid " +
              std::to_string(p.ppid) + "\n";
    return left + vigil_->output();
  }();
  for (const auto& p : procs) EXPECT_NE(p.state, 'Z') << p.pid << " " << p.comm;
  EXPECT_TRUE(vigil_->running());
  // Reaping strangers is routine: no warning or error about it.
  EXPECT_EQ(vigil_->output().find(" warning: "), std::string::npos) << vigil_->output();
  EXPECT_EQ(vigil_->output().find(" error: "), std::string::npos) << vigil_->output();

  // SIGTERM from outside the namespace: the sleeper gets its stop_signal
  // (it dies of SIGTERM at once, well before the 60s stop_timeout) and
  // vigil exits 0, which unshare passes on.
  ASSERT_EQ(read_pids(pids).size(), 1u);
  const auto t0 = SteadyClock::now();
  ASSERT_EQ(::kill(outer, SIGTERM), 0);
  EXPECT_EQ(vigil_->wait_exit(30s), 0) << vigil_->output();
  EXPECT_LT(SteadyClock::now() - t0, 30s) << "a graceful stop, not the SIGKILL after stop_timeout";
  EXPECT_NE(vigil_->output().find("SIGTERM received"), std::string::npos) << vigil_->output();
  EXPECT_NE(vigil_->output().find("program sleeper: stopping"), std::string::npos)
      << vigil_->output();
  // Nothing was left to kill (every orphan was reaped, and vigil's own
  // lifeline, re-parented to it as PID 1, is no leftover), nothing to warn of.
  EXPECT_EQ(vigil_->output().find("killing leftover process"), std::string::npos)
      << vigil_->output();
  EXPECT_EQ(vigil_->output().find(" warning: "), std::string::npos) << vigil_->output();
  EXPECT_EQ(vigil_->output().find(" error: "), std::string::npos) << vigil_->output();
}

TEST_F(Pid1Test, EssentialProgramGoingFatalEndsTheContainerWithThree) {
  if (!root_and_unshare()) GTEST_SKIP() << "needs root and unshare(1)";
  const fs::path pids = dir_ / "bystander.pid";
  const pid_t outer = start_as_pid1(
      helper_program("bystander", {"--pidfile", pids.string()}) +
      helper_program("core", {"--exit-immediately", "7"},
                     "essential = true\nrestart_delay = \"50ms\"\nmax_restarts = 1"));
  ASSERT_GT(outer, 0) << vigil_->output();
  EXPECT_EQ(vigil_->wait_exit(30s), 3) << vigil_->output();
  EXPECT_NE(vigil_->output().find("essential"), std::string::npos) << vigil_->output();
}

}  // namespace
}  // namespace vigil::it
