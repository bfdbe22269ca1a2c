// vigil out of file descriptors (issue 13, defect 1): a start that cannot
// have its pipes, sockets or files is a failed start like any other (a log
// line naming EMFILE, backoff, fatal), never an exception that kills vigil
// or leaves an instance stuck in starting; vigil keeps fds for itself, so
// it still answers; `vigil check` warns when the instances need more fds
// than the limit vigil can raise itself to. The real binary, under a low
// limit set by a bash wrapper (`ulimit -n` sets the hard limit too).
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include "harness.h"
#include "metrics_client.h"

namespace vigil::it {
namespace {

using metrics_client::http_get;

std::vector<std::string> fd_limit_wrapper(int limit) {
  return {"/bin/bash", "-c", "ulimit -n " + std::to_string(limit) + " && exec \"$@\"", "bash"};
}

std::string head(std::uint16_t port) {
  return "[vigil]\ncontrol_socket = \"vigil.sock\"\n[http]\nlisten = \"127.0.0.1:" +
         std::to_string(port) + "\"\n";
}

// A program of `sleep 1000` that gives up quickly when it cannot start.
std::string sleeper(std::string_view name, std::string_view extra = "") {
  return "[programs." + std::string(name) +
         "]\ncommand = [\"sleep\", \"1000\"]\nrestart_delay = \"50ms\"\nmax_restarts = 2\n"
         "min_uptime = \"100ms\"\n" +
         std::string(extra);
}

// name -> states of its instances, from the API; empty when vigil does not answer.
std::map<std::string, std::vector<std::string>> states(std::uint16_t port) {
  std::map<std::string, std::vector<std::string>> out;
  auto r = http_get(port, "/api/v1/programs");
  if (!r || r->status != 200) return out;
  for (const auto& i : nlohmann::json::parse(r->body))
    out[i["name"].get<std::string>()].push_back(i["state"].get<std::string>());
  return out;
}

std::vector<pid_t> running_pids(std::uint16_t port) {
  std::vector<pid_t> out;
  auto r = http_get(port, "/api/v1/programs");
  if (!r || r->status != 200) return out;
  for (const auto& i : nlohmann::json::parse(r->body))
    if (i["state"] == "running" && i["pid"].is_number()) out.push_back(i["pid"].get<pid_t>());
  return out;
}

// Every instance started settled: running, or fatal after its retries
// (stopped ones, never started, are not counted).
bool settled(const std::map<std::string, std::vector<std::string>>& s, std::size_t instances) {
  std::size_t n = 0;
  for (const auto& [name, list] : s)
    for (const auto& st : list) {
      if (st == "stopped") continue;
      if (st != "running" && st != "fatal") return false;
      ++n;
    }
  return n == instances;
}

std::size_t count(const std::map<std::string, std::vector<std::string>>& s, std::string_view state) {
  std::size_t n = 0;
  for (const auto& [name, list] : s) n += std::count(list.begin(), list.end(), state);
  return n;
}

class FdLimitTest : public BinaryTest {
 protected:
  // vigil under `ulimit -n limit`; waits until every instance is running or
  // fatal and checks vigil survived with some of each.
  void run_settled(const std::string& toml, int limit, std::size_t instances) {
    write_config(toml);
    vigil_ = std::make_unique<VigilProcess>(
        dir_, std::vector<std::string>{"run", "-c", (dir_ / "vigil.toml").string()}, "vigil.output",
        fd_limit_wrapper(limit));
    std::map<std::string, std::vector<std::string>> s;
    ASSERT_TRUE(poll_until([&] {
      if (!vigil_->running()) return true;
      s = states(port_);
      return settled(s, instances);
    })) << vigil_->output();
    ASSERT_TRUE(vigil_->running()) << "vigil died out of fds:\n" << vigil_->output();
    EXPECT_GE(count(s, "running"), 1u) << vigil_->output();
    EXPECT_GE(count(s, "fatal"), 1u) << "the limit was meant to be too low for them all";
  }

  void expect_alive_and_clean_exit() {
    auto health = http_get(port_, "/healthz");
    ASSERT_TRUE(health.has_value()) << "vigil does not answer /healthz";
    EXPECT_EQ(health->status, 200);
    for (pid_t pid : running_pids(port_)) EXPECT_FALSE(process_dead(pid)) << "child " << pid;
    vigil_->signal(SIGTERM);
    EXPECT_EQ(vigil_->wait_exit(), 0) << vigil_->output();
  }

  std::uint16_t port_ = free_port();
};

TEST_F(FdLimitTest, FiftyProgramsAtSixtyFourFdsStartWhatFitsAndVigilLivesOn) {
  std::string toml = head(port_);
  for (int i = 0; i < 50; ++i) toml += sleeper("p" + std::to_string(i));
  ASSERT_NO_FATAL_FAILURE(run_settled(toml, 64, 50));
  const std::string out = vigil_->output();
  EXPECT_NE(out.find("cannot create pipes: Too many open files (EMFILE"), std::string::npos) << out;
  EXPECT_NE(out.find("giving up"), std::string::npos) << "failed starts go fatal:\n" << out;
  EXPECT_NE(out.find("50 instances need about"), std::string::npos)
      << "the start-up warns of the limit:\n" << out;
  // The control socket answers too.
  auto status = run_vigil(dir_, {"status", "-c", (dir_ / "vigil.toml").string()});
  EXPECT_EQ(status.exit_code, 0) << status.output;
  expect_alive_and_clean_exit();
}

// The 10,000 instances at 20,000 fds of the report, scaled down.
TEST_F(FdLimitTest, ManyInstancesOfOneProgramAtALowLimit) {
  ASSERT_NO_FATAL_FAILURE(run_settled(head(port_) + sleeper("many", "instances = 100\n"), 256, 100));
  expect_alive_and_clean_exit();
}

TEST_F(FdLimitTest, StartWhenOutOfFdsIsAnsweredThenWorksOnceFdsAreFree) {
  const std::string config = (dir_ / "vigil.toml").string();
  ASSERT_NO_FATAL_FAILURE(run_settled(head(port_) + sleeper("fill", "instances = 12\n") +
                                          sleeper("late", "autostart = false\n"),
                                      64, 12));
  // vigil is full: the start is answered (not a 500), and fails as a start.
  auto start = run_vigil(dir_, {"start", "late", "-c", config});
  EXPECT_EQ(start.exit_code, 0) << start.output;
  EXPECT_EQ(start.output.find("500"), std::string::npos) << start.output;
  ASSERT_TRUE(vigil_->wait_for_output("program late: cannot create pipes: Too many open files"))
      << vigil_->output();
  ASSERT_TRUE(poll_until([&] { return states(port_)["late"] == std::vector<std::string>{"fatal"}; }))
      << "late retries in backoff, then gives up:\n" << vigil_->output();

  // Once fds are free, a start works.
  auto stop = run_vigil(dir_, {"stop", "fill", "-c", config});
  EXPECT_EQ(stop.exit_code, 0) << stop.output;
  start = run_vigil(dir_, {"start", "late", "-c", config});
  EXPECT_EQ(start.exit_code, 0) << start.output;
  EXPECT_TRUE(poll_until([&] { return states(port_)["late"] == std::vector<std::string>{"running"}; }))
      << vigil_->output();
  expect_alive_and_clean_exit();
}

// Out of fds at every step: fd_fault.c, preloaded, fails the Nth call of
// vigil's that creates an fd, for N = 1, 2, ... until a run of vigil no
// longer makes N such calls. So each pipe, socket, file, epoll and timer fd
// of the start-up, the spawn, the API's connections and the shutdown fails
// once in turn. At each, vigil either refuses to start (exit 1, before any
// program ran) or goes on: the failed start is retried, the program runs,
// the API answers, SIGTERM ends vigil with 0, and no process is left.
TEST_F(FdLimitTest, OutOfFdsAtEveryStepIsSurvived) {
  const fs::path pidfile = dir_ / "pids";
  const fs::path config = write_config(
      head(port_) + helper_program("one", {"--pidfile", pidfile.string()},
                                   "restart_delay = \"20ms\"\nmin_uptime = \"50ms\"\n"
                                   "max_restarts = 10"));
  ScopedEnv preload("LD_PRELOAD", FD_FAULT_LIBRARY);
  // A sanitizer runtime must come first among the libraries; here it comes
  // second, on purpose.
  const char* asan = ::getenv("ASAN_OPTIONS");
  ScopedEnv asan_order("ASAN_OPTIONS",
                       std::string(asan ? asan : "") + (asan ? ":" : "") + "verify_asan_link_order=0");
  std::map<std::string, int> failed;  // the call that failed -> runs
  int refused = 0;
  long n = 1;
  for (;; ++n) {
    ASSERT_LE(n, 500) << "vigil makes more fd calls than expected";
    SCOPED_TRACE("VIGIL_FD_FAULT=" + std::to_string(n));
    ScopedEnv fault("VIGIL_FD_FAULT", std::to_string(n));
    VigilProcess v(dir_, {"run", "-c", config.string()}, "vigil-" + std::to_string(n));
    ASSERT_TRUE(poll_until([&] {
      return !v.running() || states(port_)["one"] == std::vector<std::string>{"running"};
    })) << v.output();
    if (v.running()) {
      auto health = http_get(port_, "/healthz");
      ASSERT_TRUE(health.has_value()) << v.output();
      EXPECT_EQ(health->status, 200);
      v.signal(SIGTERM);
      EXPECT_EQ(v.wait_exit(), 0) << v.output();
    } else {
      ++refused;
      EXPECT_EQ(v.wait_exit(), 1) << v.output();
      EXPECT_TRUE(read_pids(pidfile).empty()) << "vigil refused after starting a program\n"
                                              << v.output();
    }
    for (pid_t pid : read_pids(pidfile)) EXPECT_TRUE(poll_until([&] { return process_dead(pid); }));
    const std::string out = v.output();
    EXPECT_EQ(out.find("terminate called"), std::string::npos) << out;
    std::error_code ec;
    fs::remove(pidfile, ec);
    const auto at = out.find("fd-fault: call ");
    if (at == std::string::npos) break;  // vigil made fewer than n calls: all were failed
    const auto open = out.find('(', at), close = out.find(')', at);
    ++failed[out.substr(open + 1, close - open - 1)];
  }
  std::string calls;
  for (const auto& [call, runs] : failed) calls += " " + call + " x" + std::to_string(runs);
  std::printf("[ figures  ] %ld fd calls failed in turn (%d refused to start):%s\n", n - 1, refused,
              calls.c_str());
  EXPECT_GE(n, 20) << "fewer fd calls than vigil makes for one program: was the library preloaded?";
  EXPECT_TRUE(failed.count("pipe2")) << calls;
  EXPECT_TRUE(failed.count("socket")) << calls;
}

TEST_F(FdLimitTest, CheckWarnsWhenTheInstancesNeedMoreFdsThanTheLimit) {
  const fs::path config = write_config(sleeper("web", "instances = 200\n"));
  auto check = [&](int limit) {
    VigilProcess p(dir_, {"check", "-c", config.string()}, "check-" + std::to_string(limit),
                   fd_limit_wrapper(limit));
    EXPECT_EQ(p.wait_exit(), 0) << p.output();
    return p.output();
  };
  // 200 instances x 6 fds (notify socket, heartbeat pipe, two output pipes,
  // two log files) and vigil's own.
  const std::string low = check(1000);
  EXPECT_NE(low.find("warning: 200 instances need about 1256 open files"), std::string::npos) << low;
  EXPECT_NE(low.find("more than the 1000"), std::string::npos) << low;
  EXPECT_NE(low.find(": ok (1 program, 200 instances"), std::string::npos) << "a warning, not an error";
  const std::string high = check(4096);
  EXPECT_EQ(high.find("warning"), std::string::npos) << high;

  // The report's case: 10,000 instances at a limit of 20,000.
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < 20000) return;
  write_config(sleeper("web", "instances = 10000\n"));
  const std::string report = check(20000);
  EXPECT_NE(report.find("warning: 10000 instances need about 60056 open files"), std::string::npos)
      << report;
}

}  // namespace
}  // namespace vigil::it
