// Restart latency: how long after a child exits its replacement is running
// its first instruction. Runs the real vigil binary (log_level "warn") on a
// program that restarts with no delay and never goes fatal; the child
// (bench_child restart) appends "R start_ns exit_ns pid" to a file, one
// O_APPEND write per run, CLOCK_MONOTONIC read first thing in main and just
// before exiting. gap(n) = start(n+1) - exit(n): exit, SIGCHLD, vigil's reap
// and restart decision, fork, exec, the child's own startup (static binary).
//
// For scale, the same gaps are measured with the least a supervisor can do:
// this process in a blocking waitpid → fork → exec loop (no pipes, no
// setsid, no loop). vigil's own cost is the difference.
//
//   restart_bench [--runs 5] [--restarts 300]
#include <cstdio>
#include <map>

#include "bench_util.h"

namespace {

constexpr double kTargetMedianMs = 2.0;

struct Record {
  long long start_ns, exit_ns;
  int pid;
};

std::vector<Record> read_records(const std::filesystem::path& p) {
  std::vector<Record> out;
  std::ifstream f(p);
  std::string tag;
  Record r{};
  while (f >> tag >> r.start_ns >> r.exit_ns >> r.pid) {
    if (tag != "R") throw bench::Broken("malformed record in " + p.string());
    out.push_back(r);
  }
  return out;
}

std::size_t count_lines(const std::filesystem::path& p) {
  std::string s = bench::read_file(p);
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

// Gaps in microseconds between consecutive runs (first n+1 records).
std::vector<double> gaps_us(const std::vector<Record>& recs, std::size_t n) {
  if (recs.size() < n + 1)
    throw bench::Broken("only " + std::to_string(recs.size()) + " records, wanted " + std::to_string(n + 1));
  std::vector<double> g;
  std::map<int, int> pids;
  for (std::size_t i = 0; i + 1 < n + 1; ++i) {
    if (recs[i + 1].start_ns < recs[i].exit_ns)
      throw bench::Broken("overlapping runs: record " + std::to_string(i + 1) + " started before " +
                          std::to_string(i) + " exited (two processes at once?)");
    g.push_back(static_cast<double>(recs[i + 1].start_ns - recs[i].exit_ns) / 1e3);
  }
  for (std::size_t i = 0; i < n + 1; ++i)
    if (++pids[recs[i].pid] > 1) throw bench::Broken("pid reused within a run: bad records");
  return g;
}

struct RunStats {
  double median_us, p90_us, p99_us, max_us;
};

RunStats stats(const std::vector<double>& g) {
  return {bench::median(g), bench::percentile(g, 90), bench::percentile(g, 99),
          *std::max_element(g.begin(), g.end())};
}

void print_run(const char* what, int run, std::size_t n, const RunStats& s, double wall_s) {
  std::printf("  %s run %d: %zu restarts in %.2f s  median %7.0f us  p90 %7.0f us  p99 %7.0f us  max %7.0f us\n",
              what, run, n, wall_s, s.median_us, s.p90_us, s.p99_us, s.max_us);
  std::fflush(stdout);
}

RunStats vigil_run(const std::string& child, std::size_t restarts, int run) {
  bench::TempDir dir("restart");
  auto records = dir.path() / "records";
  auto config = dir.path() / "vigil.toml";
  bench::write_file(config,
                    "[vigil]\n"
                    "log_dir = " + bench::toml_str((dir.path() / "logs").string()) + "\n"
                    "control_socket = " + bench::toml_str((dir.path() / "vigil.sock").string()) + "\n"
                    "log_level = \"warn\"\n"
                    "\n"
                    "[programs.flap]\n"
                    "command = [" + bench::toml_str(child) + ", \"restart\", " +
                        bench::toml_str(records.string()) + "]\n"
                    "restart = \"always\"\n"
                    "restart_delay = \"0s\"\n"
                    "restart_window = \"0s\"\n"
                    "min_uptime = \"10ms\"\n");
  auto err = dir.path() / "vigil.stderr";
  long long t0 = bench::now_ns();
  {
    bench::VigilProcess vigil(VIGIL_BINARY, config, err);
    while (true) {
      std::error_code ec;
      if (std::filesystem::exists(records, ec) && count_lines(records) >= restarts + 1) break;
      if (!vigil.alive())
        throw bench::Broken("vigil exited (code " + std::to_string(vigil.exit_code()) + ") early:\n" +
                            bench::tail_of(err));
      if ((bench::now_ns() - t0) / 1e9 > 60)
        throw bench::Broken("fewer than " + std::to_string(restarts) + " restarts in 60 s:\n" +
                            bench::tail_of(err));
      bench::sleep_ms(5);
    }
    if (vigil.terminate(20) < 0) throw bench::Broken("vigil did not exit within 20 s of SIGTERM");
    if (vigil.exit_code() != 0)
      throw bench::Broken("vigil exited " + std::to_string(vigil.exit_code()) + ":\n" + bench::tail_of(err));
  }
  auto recs = read_records(records);
  auto g = gaps_us(recs, restarts);
  auto s = stats(g);
  print_run("vigil   ", run, restarts, s,
            static_cast<double>(recs[restarts].start_ns - recs[0].start_ns) / 1e9);
  return s;
}

// The floor: blocking waitpid → fork → exec, nothing else.
RunStats floor_run(const std::string& child, std::size_t restarts, int run) {
  bench::TempDir dir("restart-floor");
  auto records = dir.path() / "records";
  for (std::size_t i = 0; i < restarts + 1; ++i) {
    pid_t pid = ::fork();
    if (pid < 0) throw bench::Broken("fork failed");
    if (pid == 0) {
      ::execl(child.c_str(), child.c_str(), "restart", records.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    int st;
    ::waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) throw bench::Broken("bench_child failed");
  }
  auto recs = read_records(records);
  auto g = gaps_us(recs, restarts);
  auto s = stats(g);
  print_run("floor   ", run, restarts, s,
            static_cast<double>(recs[restarts].start_ns - recs[0].start_ns) / 1e9);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = static_cast<int>(bench::option(argc, argv, "--runs", 5));
  const auto restarts = static_cast<std::size_t>(bench::option(argc, argv, "--restarts", 300));
  const std::string child = BENCH_CHILD;
  std::printf("restart latency: child exit -> replacement's main(), %zu restarts x %d runs\n"
              "  real vigil binary, log_level warn, restart_delay 0s, restart_window 0s, min_uptime 10ms,\n"
              "  log split (pipes + files open); child: %s (static: %s)\n",
              restarts, runs, child.c_str(), BENCH_CHILD_STATIC ? "yes" : "no");
  try {
    // vigil and floor runs alternate so that both see the same machine load;
    // the overhead is the median of the per-pair differences.
    std::vector<double> med, p90, p99, fmed, diff;
    for (int r = 1; r <= runs; ++r) {
      auto s = vigil_run(child, restarts, r);
      med.push_back(s.median_us);
      p90.push_back(s.p90_us);
      p99.push_back(s.p99_us);
      auto f = floor_run(child, restarts, r);
      fmed.push_back(f.median_us);
      diff.push_back(s.median_us - f.median_us);
    }
    const double m = bench::median(med) / 1e3, q = bench::median(p90) / 1e3;
    bench::result("restart latency median (ms)", bench::fmt("%.3f", m), "<= 2 ms", m <= kTargetMedianMs);
    bench::result("restart latency p90 (ms)", bench::fmt("%.3f", q), "-", true);
    bench::result("restart latency p99 (ms)", bench::fmt("%.3f", bench::median(p99) / 1e3), "-", true);
    bench::result("  floor: bare waitpid+fork+exec median (ms)",
                  bench::fmt("%.3f", bench::median(fmed) / 1e3), "-", true);
    bench::result("  vigil overhead over floor, median (ms)",
                  bench::fmt("%.3f", bench::median(diff) / 1e3), "-", true);
  } catch (const bench::Broken& e) {
    std::fprintf(stderr, "restart_bench: BROKEN RUN: %s\n", e.what());
    return 1;
  }
  return 0;
}
