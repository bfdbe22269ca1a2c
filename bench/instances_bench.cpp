// 1,000 instances of `sleep 3600` (one program, instances = 1000,
// min_uptime "0s", log split: 2,000 log files and 2,000 pipes).
//
// In-process (EventLoop + Supervisor from the vigil libraries, spdlog at warn), the
// states are read directly: time from Supervisor::start() to every instance
// having a pid (spawned), and to every instance `running`. Cleaned up with a
// SIGKILL to every group (restart = "never"), so these runs stay short.
//
// Real binary (`vigil run`, log_level warn), seen from outside: time from
// launching vigil to 1,000 children (/proc/PID/task/PID/children), vigil's
// VmRSS / VmHWM and open fds with them, then SIGTERM → vigil exited, and
// whether any child had to be SIGKILLed (sleep dies on SIGTERM at once, so
// any "sending SIGKILL" means vigil was too slow, not the child).
//
//   instances_bench [--instances 1000] [--runs 3] [--binary-runs 1]
#include <cstdio>
#include <set>

#include <spdlog/spdlog.h>

#include "bench_util.h"
#include "config_parse.h"
#include "event_loop.h"
#include "log.h"
#include "supervisor.h"

namespace {

constexpr double kTargetSpawnS = 1.0;
constexpr double kTargetRssMiB = 32.0;

std::string config_text(const bench::TempDir& dir, int instances, const char* level, const char* restart) {
  return "[vigil]\n"
         "log_dir = " + bench::toml_str((dir.path() / "logs").string()) + "\n"
         "control_socket = " + bench::toml_str((dir.path() / "vigil.sock").string()) + "\n"
         "log_level = \"" + level + "\"\n"
         "\n"
         "[programs.sleeper]\n"
         "command = [\"sleep\", \"3600\"]\n"
         "instances = " + std::to_string(instances) + "\n"
         "min_uptime = \"0s\"\n"
         "restart = \"" + restart + "\"\n";
}

struct InProcess {
  double spawned_s, running_s;
};

InProcess in_process_measure(int instances, int run) {
  bench::TempDir dir("instances");
  ::setenv("XDG_RUNTIME_DIR", dir.path().c_str(), 1);  // this forked run only
  auto parsed = vigil::parse_config(config_text(dir, instances, "warn", "never"),
                                    (dir.path() / "vigil.toml").string());
  if (!parsed.ok()) throw bench::Broken("config: " + parsed.errors.front().to_string());
  vigil::EventLoop loop;
  vigil::Supervisor sup(loop, std::move(parsed.config));
  auto& insts = sup.programs().front()->instances();
  auto count = [&](auto pred) {
    int n = 0;
    for (auto& i : insts) n += pred(*i) ? 1 : 0;
    return n;
  };

  const long long t0 = bench::now_ns();
  sup.start();  // spawns every instance before returning
  const long long t_spawned = bench::now_ns();
  const int spawned = count([](const vigil::Instance& i) { return i.pid() > 0; });
  bool all_running = loop.run_until(
      [&] { return count([](const vigil::Instance& i) { return i.state() == vigil::State::running; }) == instances; },
      std::chrono::seconds(30), std::chrono::milliseconds(1));
  const long long t_running = bench::now_ns();
  const long rss = bench::status_kib(::getpid(), "VmRSS");

  // Clean-up, not measured: SIGKILL every group, reap, then the ordinary
  // shutdown over instances that are all down.
  sup.kill_all_now();
  bool down = loop.run_until([&] { return count([](const vigil::Instance& i) { return i.pid() > 0; }) == 0; },
                             std::chrono::seconds(30));
  bool finished = false;
  sup.shutdown([&](int) { finished = true; });
  loop.run_until([&] { return finished; }, std::chrono::seconds(60));
  if (spawned != instances)
    throw bench::Broken(std::to_string(spawned) + " of " + std::to_string(instances) + " spawned");
  if (!all_running) throw bench::Broken("not all instances running within 30 s");
  if (!down || !finished) throw bench::Broken("in-process clean-up did not finish");

  InProcess r{(t_spawned - t0) / 1e9, (t_running - t0) / 1e9};
  std::printf("  in-process run %d: %d spawned after %.3f s, all running after %.3f s (bench process VmRSS %.1f MiB)\n",
              run, instances, r.spawned_s, r.running_s, rss / 1024.0);
  std::fflush(stdout);
  return r;
}

// Each in-process run happens in a fresh fork of this process, so that one
// run's heap (and a bigger address space for fork to copy) does not slow
// the next.
InProcess in_process_run(int instances, int run) {
  std::string msg = bench::in_fork([&] {
    auto r = in_process_measure(instances, run);
    return std::to_string(r.spawned_s) + " " + std::to_string(r.running_s);
  });
  InProcess r{};
  std::sscanf(msg.c_str(), "%lf %lf", &r.spawned_s, &r.running_s);
  return r;
}

// The floor: this (small) process forks and execs `sleep 3600` N times,
// waiting for each exec through a CLOEXEC pipe as vigil's spawn does, with
// no setsid, pipes, log files or loop. Then kills and reaps them.
double floor_run(int instances) {
  std::vector<pid_t> pids;
  const long long t0 = bench::now_ns();
  for (int i = 0; i < instances; ++i) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) < 0) throw bench::Broken("pipe2 failed");
    pid_t pid = ::fork();
    if (pid == 0) {
      ::execlp("sleep", "sleep", "3600", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(p[1]);
    char c;
    while (::read(p[0], &c, 1) < 0 && errno == EINTR) {
    }
    ::close(p[0]);
    if (pid < 0) throw bench::Broken("fork failed");
    pids.push_back(pid);
  }
  const double s = (bench::now_ns() - t0) / 1e9;
  for (pid_t pid : pids) ::kill(pid, SIGKILL);
  for (pid_t pid : pids) {
    int st;
    ::waitpid(pid, &st, 0);
  }
  std::printf("  floor: bare fork+exec of %d sleeps, each exec waited for: %.3f s\n", instances, s);
  std::fflush(stdout);
  return s;
}

struct Binary {
  double spawned_s, rss_mib, hwm_mib, stop_s;
  std::size_t fds;
  int sigkilled;
};

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::istringstream in(bench::read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children"));
  pid_t c;
  while (in >> c) out.push_back(c);
  return out;
}

bool is_live_sleep(pid_t pid) {
  std::string stat = bench::read_file("/proc/" + std::to_string(pid) + "/stat");
  return stat.find("(sleep)") != std::string::npos && stat.find(") Z") == std::string::npos;
}

Binary binary_run(int instances, int run) {
  bench::TempDir dir("instances-bin");
  auto config = dir.path() / "vigil.toml";
  bench::write_file(config, config_text(dir, instances, "warn", "always"));
  auto err = dir.path() / "vigil.stderr";
  std::vector<pid_t> kids;
  Binary r{};
  {
    bench::VigilProcess vigil(VIGIL_BINARY, config, err);
    while (bench::child_count(vigil.pid()) < static_cast<std::size_t>(instances)) {
      if (!vigil.alive())
        throw bench::Broken("vigil exited (code " + std::to_string(vigil.exit_code()) + "):\n" +
                            bench::tail_of(err));
      if ((bench::now_ns() - vigil.start_ns()) / 1e9 > 60)
        throw bench::Broken("not all children spawned within 60 s:\n" + bench::tail_of(err));
      bench::sleep_ms(2);
    }
    r.spawned_s = (bench::now_ns() - vigil.start_ns()) / 1e9;
    bench::sleep_ms(300);  // min_uptime 0s: every instance is running by now
    kids = children_of(vigil.pid());
    r.rss_mib = bench::status_kib(vigil.pid(), "VmRSS") / 1024.0;
    r.hwm_mib = bench::status_kib(vigil.pid(), "VmHWM") / 1024.0;
    r.fds = bench::open_fds(vigil.pid());
    r.stop_s = vigil.terminate(150);
    if (r.stop_s < 0) throw bench::Broken("vigil did not exit within 150 s of SIGTERM");
    if (vigil.exit_code() != 0)
      throw bench::Broken("vigil exited " + std::to_string(vigil.exit_code()) + " after SIGTERM:\n" +
                          bench::tail_of(err));
  }
  std::string log = bench::read_file(err);
  for (std::size_t at = 0; (at = log.find("sending SIGKILL", at)) != std::string::npos; ++at) ++r.sigkilled;
  // Nothing of ours may be left: any survivor is killed here (by pid) and
  // the run counts as broken.
  std::size_t left = 0;
  for (pid_t k : kids)
    if (is_live_sleep(k)) {
      ++left;
      ::kill(k, SIGKILL);
    }
  if (left) throw bench::Broken(std::to_string(left) + " children survived vigil's shutdown");
  std::printf("  binary run %d: %zu children after %.3f s; VmRSS %.1f MiB (peak %.1f MiB), %zu fds;"
              " SIGTERM -> exit %.2f s, %d instance(s) escalated to SIGKILL\n",
              run, kids.size(), r.spawned_s, r.rss_mib, r.hwm_mib, r.fds, r.stop_s, r.sigkilled);
  std::fflush(stdout);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const int instances = static_cast<int>(bench::option(argc, argv, "--instances", 1000));
  const int runs = static_cast<int>(bench::option(argc, argv, "--runs", 3));
  const int binary_runs = static_cast<int>(bench::option(argc, argv, "--binary-runs", 1));
  // Log files and vigil's runtime dir (notify sockets, $XDG_RUNTIME_DIR)
  // go on tmpfs unless BENCH_TMPDIR says otherwise: each run creates and
  // deletes ~3,000 inodes, and on an ext4 without a journal (this VM's /)
  // inode allocation skips inodes deleted in the last minutes, reading each
  // one: later runs would measure the benchmark's own churn, not vigil.
  const std::string tmp = bench::prefer_tmpfs();
  std::printf("%d instances of `sleep 3600` (min_uptime 0s, log split; logs and runtime dir under %s)\n",
              instances, tmp.c_str());
  vigil::init_logging("warn");
  try {
    // Floor and vigil alternate, so that both see the same machine load;
    // the ratio of each pair is the steadier figure on a busy machine.
    std::vector<double> spawned, running, floors, ratios;
    for (int r = 1; r <= runs; ++r) {
      floors.push_back(floor_run(instances));
      auto res = in_process_run(instances, r);
      ratios.push_back(res.spawned_s / floors.back());
      spawned.push_back(res.spawned_s);
      running.push_back(res.running_s);
    }
    std::vector<double> bspawned, rss, stop;
    int sigkilled = 0;
    for (int r = 1; r <= binary_runs; ++r) {
      auto res = binary_run(instances, r);
      bspawned.push_back(res.spawned_s);
      rss.push_back(res.rss_mib);
      stop.push_back(res.stop_s);
      sigkilled += res.sigkilled;
    }
    const std::string n = std::to_string(instances);
    if (runs > 0) {
      double s = bench::median(spawned), u = bench::median(running);
      bench::result(n + " instances: all spawned (s)", bench::fmt("%.3f", s), "< 1 s", s < kTargetSpawnS);
      bench::result(n + " instances: all running (s)", bench::fmt("%.3f", u), "< 1 s", u < kTargetSpawnS);
    }
    if (runs > 0) {
      bench::result("  floor: bare fork+exec of " + n + " sleeps (s)", bench::fmt("%.3f", bench::median(floors)),
                    "-", true);
      bench::result("  vigil spawn time / floor, same-run pairs", bench::fmt("%.2fx", bench::median(ratios)), "-",
                    true);
    }
    if (binary_runs > 0) {
      double s = bench::median(bspawned), m = bench::median(rss), t = bench::median(stop);
      bench::result("  binary: launch -> " + n + " children (s)", bench::fmt("%.3f", s), "< 1 s", s < kTargetSpawnS);
      bench::result(n + " instances: vigil VmRSS (MiB)", bench::fmt("%.1f", m), "< 32 MiB", m < kTargetRssMiB);
      // Not a target from the brief: sleep exits on SIGTERM at once, so a
      // stop that outlasts stop_timeout (10s) is vigil's own time.
      bench::result(n + " instances: SIGTERM -> vigil exited (s)", bench::fmt("%.2f", t), "< 10 s",
                    t < 10.0);
      bench::result("  instances escalated to SIGKILL on stop", std::to_string(sigkilled), "0", sigkilled == 0);
    }
  } catch (const bench::Broken& e) {
    std::fprintf(stderr, "instances_bench: BROKEN RUN: %s\n", e.what());
    return 1;
  }
  return 0;
}
