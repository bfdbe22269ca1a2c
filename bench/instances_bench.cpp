// 1,000 instances of `sleep 3600` (one program, instances = 1000,
// min_uptime "0s", log split: 2,000 log files and 2,000 pipes).
//
// In-process (EventLoop + Supervisor from the vigil libraries, spdlog at warn), the
// states are read directly: time from Supervisor::start() to every instance
// having a pid (spawned), and to every instance `running`. Cleaned up with a
// SIGKILL to every group (restart = "never"), so these runs stay short.
//
// Real binary (`vigil run`, log_level warn, [http] on a loopback port), seen
// from outside: time from launching vigil to 1,000 children
// (/proc/PID/task/PID/children), vigil's VmRSS / VmHWM and open fds with
// them, GET /metrics and GET /api/v1/programs (median of 5, a fresh
// connection each), then SIGTERM → vigil exited while a client asks
// GET /api/v1/vigil every 10 ms (the slowest answer: does the loop answer
// throughout the stop?), and whether any child had to be SIGKILLed (sleep
// dies on SIGTERM at once, so any "sending SIGKILL" means vigil was too
// slow, not the child).
//
// The fds vigil needs for the config (what `vigil check` computes) are
// printed; when the hard RLIMIT_NOFILE cannot hold them the binary run uses
// as many instances as fit and says so (vigil would start the rest as fds
// free up, which is not what is measured). `make bench` runs it twice: at
// 1,000 instances with in-process runs, and at 10,000 (--scale).
//
// --log-off 1 runs the program with `log = "off"` (2 open files an instance
// instead of 6): at --scale that lets nearly 10,000 fit a hard limit of
// 20,000, so the figures at scale are measured rather than carried.
//
//   instances_bench [--instances 1000] [--runs 3] [--binary-runs 1] [--scale 1] [--log-off 1]
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include <spdlog/spdlog.h>

#include "bench_util.h"
#include "../tests/integration/metrics_client.h"
#include "config_parse.h"
#include "event_loop.h"
#include "fd_budget.h"
#include "log.h"
#include "supervisor.h"

namespace {

constexpr double kTargetSpawnS = 1.0;
constexpr double kTargetRssMiB = 32.0;

const char* g_log = "split";  // the program's `log`, --log-off 1: "off"

std::string config_text(const bench::TempDir& dir, int instances, const char* level, const char* restart,
                        int http_port = 0) {
  return "[vigil]\n"
         "log_dir = " + bench::toml_str((dir.path() / "logs").string()) + "\n"
         "control_socket = " + bench::toml_str((dir.path() / "vigil.sock").string()) + "\n"
         "log_level = \"" + level + "\"\n"
         + (http_port > 0 ? "[http]\nlisten = \"127.0.0.1:" + std::to_string(http_port) + "\"\n" : "") +
         "\n"
         "[programs.sleeper]\n"
         "command = [\"sleep\", \"3600\"]\n"
         "instances = " + std::to_string(instances) + "\n"
         "min_uptime = \"0s\"\n"
         "restart = \"" + restart + "\"\n"
         "log = \"" + g_log + "\"\n";
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
  sup.start();  // the first slice of spawns; the rest a slice per loop turn
  auto spawned_now = [&] { return count([](const vigil::Instance& i) { return i.pid() > 0; }); };
  loop.run_until([&] { return spawned_now() == instances; }, std::chrono::seconds(30),
                 std::chrono::milliseconds(1));
  const long long t_spawned = bench::now_ns();
  const int spawned = spawned_now();
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
  double scraped_rss_mib;  // after the GETs: cached metrics texts, heap the answers left
  std::size_t fds;
  int sigkilled;
  double metrics_ms, api_ms, slowest_answer_ms;
  int launch_answers;
  double slowest_launch_answer_ms;  // during the launch
  double rhythm_ms;  // GET /metrics every 2 s, once the rhythm is known
  std::size_t metrics_bytes, api_bytes;
  int answers;
  // Whose CPU the launch and the stop were: vigil's own, and its
  // children's (their start-up, read from each once all run; their exits,
  // from what vigil reaped during the stop less that start-up).
  double launch_cpu_s, children_start_cpu_s;
  double stop_cpu_s, stop_runqueue_s, children_exit_cpu_s;
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

// Median wall ms of 5 GETs of `target` (a fresh connection each) and the body's size.
std::pair<double, std::size_t> timed_get(std::uint16_t port, const char* target) {
  std::vector<double> ms;
  std::size_t bytes = 0;
  for (int i = 0; i < 5; ++i) {
    const long long t0 = bench::now_ns();
    auto r = vigil::metrics_client::http_get(port, target, std::chrono::seconds(30));
    if (!r || r->status != 200) throw bench::Broken(std::string("GET ") + target + " failed");
    ms.push_back((bench::now_ns() - t0) / 1e6);
    bytes = r->body.size();
  }
  return {bench::median(ms), bytes};
}

Binary binary_run(int instances, int run) {
  bench::TempDir dir("instances-bin");
  auto config = dir.path() / "vigil.toml";
  const std::uint16_t port = vigil::metrics_client::free_loopback_port();
  bench::write_file(config, config_text(dir, instances, "warn", "always", port));
  auto err = dir.path() / "vigil.stderr";
  std::vector<pid_t> kids;
  Binary r{};
  {
    bench::VigilProcess vigil(VIGIL_BINARY, config, err);
    // The launch, asked about every 10 ms once vigil listens: does the loop
    // answer while thousands are spawned?
    long long next_ask = 0;
    while (bench::child_count(vigil.pid()) < static_cast<std::size_t>(instances)) {
      if (!vigil.alive())
        throw bench::Broken("vigil exited (code " + std::to_string(vigil.exit_code()) + "):\n" +
                            bench::tail_of(err));
      if ((bench::now_ns() - vigil.start_ns()) / 1e9 > 300)
        throw bench::Broken("not all children spawned within 300 s:\n" + bench::tail_of(err));
      if (bench::now_ns() >= next_ask) {
        const long long q = bench::now_ns();
        auto a = vigil::metrics_client::http_get(port, "/api/v1/vigil", std::chrono::seconds(60));
        if (a && a->status == 200) {
          ++r.launch_answers;
          r.slowest_launch_answer_ms = std::max(r.slowest_launch_answer_ms, (bench::now_ns() - q) / 1e6);
        }
        next_ask = bench::now_ns() + 10'000'000;
      }
      bench::sleep_ms(2);
    }
    r.spawned_s = (bench::now_ns() - vigil.start_ns()) / 1e9;
    bench::sleep_ms(300);  // min_uptime 0s: every instance is running by now
    kids = children_of(vigil.pid());
    r.launch_cpu_s = bench::cpu_seconds(vigil.pid());
    for (pid_t k : kids)
      if (const double cpu = bench::on_cpu_s(k); cpu > 0) r.children_start_cpu_s += cpu;
    r.rss_mib = bench::status_kib(vigil.pid(), "VmRSS") / 1024.0;
    r.hwm_mib = bench::status_kib(vigil.pid(), "VmHWM") / 1024.0;
    r.fds = bench::open_fds(vigil.pid());
    std::tie(r.metrics_ms, r.metrics_bytes) = timed_get(port, "/metrics");
    std::tie(r.api_ms, r.api_bytes) = timed_get(port, "/api/v1/programs");
    // As Prometheus scrapes: one GET every 2 s (> sample_interval, so each
    // would find every tree stale), fresh connections. From the third the
    // rhythm is known and the trees are read ahead of it.
    {
      std::vector<double> ms;
      for (int k = 0; k < 5; ++k) {
        if (k > 0) bench::sleep_ms(2000);  // the scrape interval itself
        const long long t0 = bench::now_ns();
        auto g = vigil::metrics_client::http_get(port, "/metrics", std::chrono::seconds(30));
        if (!g || g->status != 200) throw bench::Broken("GET /metrics failed");
        if (k >= 2) ms.push_back((bench::now_ns() - t0) / 1e6);
      }
      r.rhythm_ms = bench::median(ms);
    }
    // Read once the last answer has been sent and freed, and vigil has
    // handed the heap it left back (malloc_trim, 0.5 s after a large
    // answer): what stays.
    bench::sleep_ms(1500);
    r.scraped_rss_mib = bench::status_kib(vigil.pid(), "VmRSS") / 1024.0;
    // The stop, asked about every 10 ms: every answer's time until vigil
    // closes its listener (its last steps) or exits.
    const double cpu0 = bench::cpu_seconds(vigil.pid()), reaped0 = bench::reaped_children_cpu_seconds(vigil.pid()),
                 wait0 = bench::runqueue_wait_s(vigil.pid());
    // Read before each look at whether vigil lives (which reaps it): the
    // last reading is of the exiting or exited vigil.
    auto read_stop_cpu = [&] {
      const double cpu = bench::cpu_seconds(vigil.pid()), reaped = bench::reaped_children_cpu_seconds(vigil.pid()),
                   wait = bench::runqueue_wait_s(vigil.pid());
      if (cpu < 0 || reaped < 0) return;
      r.stop_cpu_s = cpu - cpu0;
      r.children_exit_cpu_s = reaped - reaped0 - r.children_start_cpu_s;
      r.stop_runqueue_s = wait - wait0;
    };
    const long long t0 = bench::now_ns();
    ::kill(vigil.pid(), SIGTERM);
    for (read_stop_cpu(); vigil.alive(); read_stop_cpu()) {
      if ((bench::now_ns() - t0) / 1e9 > 150) break;
      const long long q = bench::now_ns();
      auto a = vigil::metrics_client::http_get(port, "/api/v1/vigil", std::chrono::seconds(5));
      if (a && a->status == 200) {
        ++r.answers;
        r.slowest_answer_ms = std::max(r.slowest_answer_ms, (bench::now_ns() - q) / 1e6);
      }
      bench::sleep_ms(10);
    }
    r.stop_s = vigil.terminate(1);  // already exited: 0; else what is left of 150 s failed
    if (r.stop_s < 0) throw bench::Broken("vigil did not exit within 150 s of SIGTERM");
    r.stop_s = (bench::now_ns() - t0) / 1e9;
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
  std::printf("  binary run %d: %zu children after %.3f s (%d answers meanwhile, slowest %.1f ms); VmRSS %.1f MiB (after the GETs %.1f, peak %.1f MiB), %zu fds;"
              " GET /metrics %.1f ms (%zu bytes; every 2 s: %.1f ms), GET /api/v1/programs %.1f ms (%zu bytes);"
              " SIGTERM -> exit %.2f s, %d answers meanwhile (slowest %.1f ms), %d instance(s) escalated to SIGKILL\n",
              run, kids.size(), r.spawned_s, r.launch_answers, r.slowest_launch_answer_ms, r.rss_mib, r.scraped_rss_mib, r.hwm_mib, r.fds, r.metrics_ms, r.metrics_bytes, r.rhythm_ms, r.api_ms,
              r.api_bytes, r.stop_s, r.answers, r.slowest_answer_ms, r.sigkilled);
  const double n = static_cast<double>(kids.size());
  std::printf("    CPU: launch, vigil %.2f s, the children's own start-up %.2f s (%.2f ms each); stop, vigil %.2f s "
              "(waiting for a core %.2f s), the children's exits %.2f s (%.2f ms each)\n",
              r.launch_cpu_s, r.children_start_cpu_s, 1e3 * r.children_start_cpu_s / n, r.stop_cpu_s,
              r.stop_runqueue_s, r.children_exit_cpu_s, 1e3 * r.children_exit_cpu_s / n);
  std::fflush(stdout);
  return r;
}

// The fds vigil needs for `instances` of the bench's program, as `vigil
// check` counts them.
std::size_t fds_needed(int instances) {
  bench::TempDir dir("instances-fds");
  auto parsed = vigil::parse_config(config_text(dir, instances, "warn", "always", 1),
                                    (dir.path() / "vigil.toml").string());
  if (!parsed.ok()) throw bench::Broken("config: " + parsed.errors.front().to_string());
  return vigil::fd_budget(parsed.config).total();
}

}  // namespace

int main(int argc, char** argv) {
  // --scale: the 10,000-instance run (binary only, no floor).
  const bool scale = bench::option(argc, argv, "--scale", 0) != 0;
  int instances = static_cast<int>(bench::option(argc, argv, "--instances", scale ? 10000 : 1000));
  const int asked = instances;
  const int runs = static_cast<int>(bench::option(argc, argv, "--runs", scale ? 0 : 3));
  const int binary_runs = static_cast<int>(bench::option(argc, argv, "--binary-runs", 1));
  if (bench::option(argc, argv, "--log-off", 0) != 0) g_log = "off";
  // Log files and vigil's runtime dir (notify sockets, $XDG_RUNTIME_DIR)
  // go on tmpfs unless BENCH_TMPDIR says otherwise: each run creates and
  // deletes ~3,000 inodes, and on an ext4 without a journal (this VM's /)
  // inode allocation skips inodes deleted in the last minutes, reading each
  // one: later runs would measure the benchmark's own churn, not vigil.
  const std::string tmp = bench::prefer_tmpfs();
  std::printf("%d instances of `sleep 3600` (min_uptime 0s, log %s; logs and runtime dir under %s)\n",
              instances, g_log, tmp.c_str());
  vigil::init_logging("warn");
  try {
    // vigil raises its soft fd limit to the hard one; so does the bench,
    // for its own clients.
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    const std::size_t need = fds_needed(instances);
    std::printf("  %d instances need %zu open files (ulimit -Hn / LimitNOFILE=); the hard limit here is %llu\n",
                instances, need, static_cast<unsigned long long>(lim.rlim_max));
    bench::result("  open files " + std::to_string(instances) + " instances need", std::to_string(need), "-", true);
    if (lim.rlim_max != RLIM_INFINITY && need > lim.rlim_max) {
      const std::size_t per = fds_needed(2) - fds_needed(1), base = fds_needed(1) - per;
      const int fit = static_cast<int>((lim.rlim_max - base) / per);
      std::printf("  the hard limit holds %d of them (%zu open files each): measuring %d instances\n", fit, per, fit);
      instances = fit;
    }
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
    std::vector<Binary> bins;
    int sigkilled = 0;
    for (int r = 1; r <= binary_runs; ++r) {
      auto res = binary_run(instances, r);
      bins.push_back(res);
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
      // The 10,000-instance targets: all running within 3 s, RSS <= 80 MB.
      // 80 MB, in the MiB /proc's kB are.
      const double spawn_target = scale ? 3.0 : kTargetSpawnS, rss_target = scale ? 80e6 / (1 << 20) : kTargetRssMiB;
      bench::result("  binary: launch -> " + n + " children (s)", bench::fmt("%.3f", s),
                    "< " + bench::fmt("%.0f", spawn_target) + " s", s < spawn_target);
      bench::result(n + " instances: vigil VmRSS (MiB)", bench::fmt("%.1f", m),
                    "< " + bench::fmt("%.1f", rss_target) + " MiB", m < rss_target);
      // sleep exits on SIGTERM at once, so the stop is vigil's own time.
      // Targets: 500 in 0.2 s; 10,000 (--scale) in 2 s.
      const double stop_target = scale ? 2.0 : 0.2 * std::max(1.0, instances / 500.0);
      bench::result(n + " instances: SIGTERM -> vigil exited (s)", bench::fmt("%.2f", t),
                    "< " + bench::fmt("%.1f", stop_target) + " s", t < stop_target);
      double slowest = 0, slowest_launch = 0, metrics = 0, api = 0, rhythm = 0;
      for (const auto& b : bins) {
        slowest = std::max(slowest, b.slowest_answer_ms);
        slowest_launch = std::max(slowest_launch, b.slowest_launch_answer_ms);
        metrics += b.metrics_ms / static_cast<double>(bins.size());
        api += b.api_ms / static_cast<double>(bins.size());
        rhythm += b.rhythm_ms / static_cast<double>(bins.size());
      }
      bench::result(n + " instances: GET /metrics (ms)", bench::fmt("%.1f", metrics), "< 50 ms", metrics < 50);
      bench::result("  GET /metrics every 2 s, trees read ahead (ms)", bench::fmt("%.1f", rhythm), "< 50 ms",
                    rhythm < 50);
      bench::result(n + " instances: GET /api/v1/programs (ms)", bench::fmt("%.1f", api), "< 50 ms", api < 50);
      // What the children's own CPU leaves of the targets: spread over
      // every core, with nothing else to run, the launch and the stop
      // cannot take less on this machine whatever the supervisor does.
      const double cores = static_cast<double>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
      std::vector<double> start_cpu, exit_cpu, vigil_stop_cpu;
      for (const auto& b : bins) {
        start_cpu.push_back(b.children_start_cpu_s);
        exit_cpu.push_back(b.children_exit_cpu_s);
        vigil_stop_cpu.push_back(b.stop_cpu_s);
      }
      bench::result("  the children's own start-up CPU over " + bench::fmt("%.0f", cores) + " cores (s)",
                    bench::fmt("%.2f", bench::median(start_cpu) / cores), "-", true);
      bench::result("  the children's exits CPU over " + bench::fmt("%.0f", cores) + " cores (s)",
                    bench::fmt("%.2f", bench::median(exit_cpu) / cores), "-", true);
      bench::result("  vigil's CPU in the stop (s)", bench::fmt("%.2f", bench::median(vigil_stop_cpu)), "-", true);
      bench::result("  slowest answer during the launch (ms)", bench::fmt("%.1f", slowest_launch), "-", true);
      bench::result("  slowest answer during the stop (ms)", bench::fmt("%.1f", slowest), "-", true);
      std::vector<double> scraped;
      for (const auto& b : bins) scraped.push_back(b.scraped_rss_mib);
      const double after = bench::median(scraped);
      bench::result(n + " instances: vigil VmRSS after the GETs (MiB)", bench::fmt("%.1f", after), "-", true);
      // Fewer instances than asked fit the fd limit: what each costs, from
      // a run of 100 beside them, carries the figure to the number asked.
      if (asked > instances && instances > 200) {
        constexpr int kFew = 100;
        const Binary few = binary_run(kFew, 0);
        const double per_kib = (after - few.scraped_rss_mib) * 1024.0 / (instances - kFew);
        const double projected = after + per_kib * (asked - instances) / 1024.0;
        bench::result("  vigil VmRSS per instance after the GETs (" + n + " vs " + std::to_string(kFew) +
                          "), KiB",
                      bench::fmt("%.2f", per_kib), "-", true);
        bench::result("  projected to " + std::to_string(asked) + " instances (MiB)", bench::fmt("%.1f", projected),
                      "< " + bench::fmt("%.1f", rss_target) + " MiB", projected < rss_target);
      }
      bench::result("  instances escalated to SIGKILL on stop", std::to_string(sigkilled), "0", sigkilled == 0);
    }
  } catch (const bench::Broken& e) {
    std::fprintf(stderr, "instances_bench: BROKEN RUN: %s\n", e.what());
    return 1;
  }
  return 0;
}
