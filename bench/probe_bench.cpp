// Probes and hang detection at scale: what 500 instances probed over HTTP
// every second cost vigil, how long a probe takes, and how late vigil acts
// when 100 of 1,000 beating children fall silent. It measures and prints,
// asserting no figure; it exits non-zero when a run cannot be measured or a
// child that never stopped beating was called hung.
//
// 1. Probes. An in-process Supervisor in a fork of this process (EventLoop,
//    spdlog at warn; the machinery of heartbeat_bench's ingest), not the
//    real binary: the latency is read per probe from the instances
//    themselves (below) instead of scraping /metrics, whose own cost would
//    land in both the CPU and the latency; what the binary adds, an HTTP
//    server and a control socket, is idle here. One program of --instances
//    (500) `bench_child http` children, port_base on a free range below the
//    ephemeral ports, probe http = "http://127.0.0.1:{port}/health",
//    interval 1s, initial_delay 0s, restart "never" (a child that cannot
//    listen shows as not running: a broken run). Once every instance has a
//    passing probe, and after 1 s of warm-up:
//    - CPU window (--window-ms, 4 s), nothing observed inside it: vigil's
//      CPU % is the fork's CLOCK_PROCESS_CPUTIME_ID (what /proc/PID/stat's
//      utime + stime count, at ns resolution) over wall time; the time it
//      waited for a CPU (/proc/PID/schedstat) is printed beside it. Probes
//      per second from the instances' probe counts, read just outside.
//    - Latency window, as long. A probe's latency is the `took` vigil itself
//      measures for vigil_probe_duration_seconds: from Probe::run() (socket,
//      connect) to the verdict on the whole answer (the child's accept,
//      read, response, close, vigil's reads), steady clock, in whole
//      milliseconds, truncated (Duration): so the figures move in 1 ms steps
//      and a sub-millisecond probe reads 0. It is recovered exactly, per
//      probe: an instance whose probe count rose by exactly one between two
//      looks added exactly that probe's `took` to its sum, so the sum's
//      difference is it (more than one probe between looks: skipped, not
//      guessed). The looks run between loop turns, 1/25 of the instances
//      every 10 ms (each seen every 250 ms), holding the loop for tens of
//      microseconds at a time; their CPU is printed. Not included: how late
//      the probe timer fired, and the verdict's deferral to the next turn.
//      For comparison, the window's histogram read as Prometheus'
//      histogram_quantile does (linear inside buckets of 1, 2.5, 5, 10, 25,
//      50, 100 ms ...: at p99 it is off by up to a bucket's width).
//      The children append their accept times to a file: the share of a
//      second's probes that arrive in its busiest 100 ms (10% if spread
//      evenly) shows whether the probes go out together. They do: the 500
//      are spawned in one loop turn, so their first probes are due at the
//      same instant, and each next one an interval after the last; the
//      latency is then the queue of that burst, in vigil and the children.
//    The same 500 children with no probe section give the CPU without
//    probes: the difference is the probes' own cost. Runs alternate probes
//    on / off (--runs, 3); medians. No target is given for these: "-".
// 2. Hang detection lateness. The real binary (`vigil run`, log_level warn),
//    seen from outside: --children (1,000) `bench_child beat 100 FILE`
//    instances with [heartbeat] interval 200ms, misses 3, grace 5s. Once all
//    run and beat, and after 1 s, each round silences --silent (100) of them,
//    one every 25 ms (SIGUSR1: the child stops beating), while the others
//    beat on. A silent child's deadline is its last beat (CLOCK_MONOTONIC
//    and CLOCK_REALTIME read just before its last write to fd 3) + 600 ms.
//    How late vigil acts, two ways:
//    - signal (the figure): the child reads CLOCK_MONOTONIC in its SIGTERM
//      handler, the stop vigil sends right after its "hung" verdict; same
//      process, same clock as the beat. It includes the signal's delivery
//      and the child being scheduled: an upper bound of vigil's lateness.
//    - log: the timestamp of vigil's "program beat[i]: hung: ..." line
//      (local time, milliseconds, truncated: up to 1 ms early) against the
//      beat's CLOCK_REALTIME.
//    The deadline is counted from the child's write, not from vigil's read
//    of it: the read's own delay is part of the lateness. Between silencing
//    and the last SIGTERM nothing asks vigil anything (records are read from
//    the file); the API is asked between rounds only. Rounds (--rounds, 3)
//    are the repeats, in one vigil run (starting 1,000 children takes
//    seconds), on disjoint sets of instances, so every silenced child is a
//    first-time one; the next round starts once the silenced ones run
//    again; medians over rounds. vigil's CPU and its wait for a CPU
//    (/proc/PID/schedstat) in each round are printed.
//    Then two control rounds, each after a reload that keeps every process,
//    to show what holds the loop past a deadline: without /proc sampling
//    (sample_interval 24h: a pass over 1,000 processes every second), then
//    also without restarts (restart "never": no spawn of the silenced ones
//    while the others' deadlines fall). Printed beside the target, not
//    judged by it. A "hung" verdict on a child that never stopped beating
//    (vigil logs every verdict) is a finding: non-zero exit.
//    Target (issue 10): p50 and p99 under 10 ms after the deadline.
//
//   probe_bench [--runs 3] [--instances 500] [--window-ms 4000]
//               [--children 1000] [--silent 100] [--rounds 3]
//               [--skip-probes 1] [--skip-hang 1]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <cstdio>
#include <map>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "bench_util.h"
#include "config_parse.h"
#include "control_client.h"
#include "event_loop.h"
#include "fd.h"
#include "log.h"
#include "supervisor.h"

namespace {

constexpr double kTargetLatenessMs = 10.0;
// Between two SIGUSR1s of a round: 100 deadlines spread over 2.5 s, in
// every phase of the others' 100 ms beats and of vigil's timers.
constexpr long kStaggerMs = 25;
constexpr long kBeatMs = 100;
constexpr double kHungAfterMs = 600;  // interval 200ms x misses 3

double clock_s(clockid_t clock) {
  timespec ts;
  ::clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string load_note() {
  std::string s = bench::read_file("/proc/loadavg");
  return s.substr(0, s.find(' '));
}

// ---------------------------------------------------------------------------
// 1. Probes

std::filesystem::path arrivals_file(const bench::TempDir& dir) { return dir.path() / "arrivals"; }

std::string probe_config(const bench::TempDir& dir, int instances, int port_base, bool probes) {
  std::string c =
      "[vigil]\n"
      "log_dir = " + bench::toml_str((dir.path() / "logs").string()) + "\n"
      "control_socket = " + bench::toml_str((dir.path() / "vigil.sock").string()) + "\n"
      "log_level = \"warn\"\n"
      "\n"
      "[programs.web]\n"
      "command = [" + bench::toml_str(BENCH_CHILD) + ", \"http\", " + bench::toml_str(arrivals_file(dir).string()) +
      "]\n"
      "instances = " + std::to_string(instances) + "\n"
      "port_base = " + std::to_string(port_base) + "\n"
      "min_uptime = \"0s\"\n"
      "restart = \"never\"\n";
  if (probes)
    c += "\n"
         "[programs.web.probe]\n"
         "http = \"http://127.0.0.1:{port}/health\"\n"
         "interval = \"1s\"\n"
         "initial_delay = \"0s\"\n";
  return c;
}

struct ProbeRun {
  double cpu_percent = 0;      // CPU window
  double probes_per_s = 0;     // CPU window
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  double hist_p50_ms = 0, hist_p99_ms = 0;
  double latency_cpu_percent = 0;   // latency window, looks included
  double observer_percent = 0;      // the looks alone
  double observed = 0, skipped = 0, failed = 0;
  double wait_percent = 0;          // CPU window: runnable, waiting for a CPU
  double busiest_percent = 0;       // latency window: share of a second's probes in its busiest 100 ms
};

// The most probe arrivals (CLOCK_MONOTONIC ns, the children's accept
// records) inside any `span_ns` between `from` and `to`, as a percentage of
// one second's worth (`per_s`). Evenly spread probes put span/1s there;
// probes that all start together, up to 100%.
double busiest_percent(const std::filesystem::path& file, long long from, long long to, long long span_ns,
                       double per_s) {
  std::vector<long long> t;
  std::istringstream in(bench::read_file(file));
  std::string tag;
  long long ns = 0;
  while (in >> tag >> ns)
    if (tag == "A" && ns >= from && ns <= to) t.push_back(ns);
  std::sort(t.begin(), t.end());
  std::size_t best = 0;
  for (std::size_t lo = 0, hi = 0; hi < t.size(); ++hi) {
    while (t[hi] - t[lo] >= span_ns) ++lo;
    best = std::max(best, hi - lo + 1);
  }
  return per_s > 0 ? 100 * static_cast<double>(best) / per_s : 0;
}

// histogram_quantile over cumulative bucket counts (upper bounds in
// seconds, `total` the count, i.e. the +Inf bucket): linear inside the
// bucket, from 0 for the first one. Milliseconds.
double histogram_quantile_ms(double q, const std::vector<double>& bounds, const std::vector<double>& cumulative,
                             double total) {
  if (total <= 0 || bounds.empty()) return NAN;
  const double rank = q * total;
  double prev_bound = 0, prev_count = 0;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (cumulative[i] >= rank) {
      const double in_bucket = cumulative[i] - prev_count;
      const double frac = in_bucket > 0 ? (rank - prev_count) / in_bucket : 1;
      return 1000 * (prev_bound + (bounds[i] - prev_bound) * frac);
    }
    prev_bound = bounds[i];
    prev_count = cumulative[i];
  }
  return 1000 * bounds.back();  // in +Inf: Prometheus answers the highest finite bound
}

ProbeRun probe_measure(int instances, int port_base, bool probes, double window_s) {
  bench::TempDir dir(probes ? "probe" : "probe-off");
  ::setenv("XDG_RUNTIME_DIR", dir.path().c_str(), 1);  // this forked run only
  auto parsed = vigil::parse_config(probe_config(dir, instances, port_base, probes),
                                    (dir.path() / "vigil.toml").string());
  if (!parsed.ok()) throw bench::Broken("config: " + parsed.errors.front().to_string());
  vigil::EventLoop loop;
  vigil::Supervisor sup(loop, std::move(parsed.config));
  auto& insts = sup.programs().front()->instances();
  auto count_if = [&](auto pred) {
    std::size_t n = 0;
    for (auto& i : insts) n += pred(*i) ? 1 : 0;
    return n;
  };
  auto running = [&] {
    return count_if([](const vigil::Instance& i) { return i.pid() > 0 && i.state() == vigil::State::running; });
  };
  auto passing = [&] {
    return count_if([](const vigil::Instance& i) {
      auto p = i.snapshot().probe;
      return p && p->success.value_or(false);
    });
  };
  auto probe_count = [&] {
    double n = 0;
    for (auto& i : insts)
      if (auto p = i->snapshot().probe) n += static_cast<double>(p->count);
    return n;
  };
  auto failures = [&] {
    double n = 0;
    for (auto& i : insts)
      if (auto p = i->snapshot().probe)
        for (auto f : p->failures) n += static_cast<double>(f);
    return n;
  };
  const auto n = static_cast<std::size_t>(instances);

  const long long t_launch = bench::now_ns();
  sup.start();
  std::string broken;
  const bool ready = loop.run_until([&] { return running() == n && (!probes || passing() == n); },
                                    std::chrono::seconds(90), std::chrono::milliseconds(50));
  if (!ready)
    broken = std::to_string(running()) + " of " + std::to_string(n) + " running" +
             (probes ? ", " + std::to_string(passing()) + " with a passing probe" : std::string()) +
             " 90 s after the start (a child that could not listen exits: see its .err.log)";
  std::printf("  probes %s: %zu children running%s %.1f s after the start\n", probes ? "on " : "off", running(),
              probes ? " and passing" : "", (bench::now_ns() - t_launch) / 1e9);
  std::fflush(stdout);

  ProbeRun r;
  if (broken.empty()) {
    loop.run_until([] { return false; }, std::chrono::seconds(1));  // warm-up: the start-up's burst settles
    const auto window = std::chrono::milliseconds(static_cast<long>(window_s * 1000));

    // CPU window: nothing but vigil's own work inside it.
    const double n0 = probes ? probe_count() : 0;
    const double q0 = bench::runqueue_wait_s(::getpid());
    const double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    const long long t0 = bench::now_ns();
    loop.run_until([] { return false; }, window, window);
    const long long t1 = bench::now_ns();
    const double c1 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    const double q1 = bench::runqueue_wait_s(::getpid());
    const double n1 = probes ? probe_count() : 0;
    const double wall = (t1 - t0) / 1e9;
    r.cpu_percent = 100 * (c1 - c0) / wall;
    r.probes_per_s = (n1 - n0) / wall;
    r.wait_percent = 100 * (q1 - q0) / wall;

    if (probes) {
      // Latency window: per-probe `took` from the probe sums (see the top).
      struct Seen {
        std::uint64_t count = 0;
        double sum = 0;
        std::uint64_t failures = 0;
      };
      std::vector<Seen> seen(n);
      std::vector<double> bounds, cumulative0, cumulative1;
      double total0 = 0, total1 = 0;
      auto look_all = [&](std::vector<double>& cumulative, double& total) {
        cumulative.clear();
        total = 0;
        for (std::size_t k = 0; k < n; ++k) {
          auto p = *insts[k]->snapshot().probe;
          seen[k] = {p.count, p.sum_seconds, 0};
          for (auto f : p.failures) seen[k].failures += f;
          if (cumulative.empty()) {
            bounds = p.bucket_bounds;
            cumulative.assign(bounds.size(), 0);
          }
          for (std::size_t b = 0; b < bounds.size(); ++b) cumulative[b] += static_cast<double>(p.bucket_counts[b]);
          total += static_cast<double>(p.count);
        }
      };
      std::vector<double> latency_ms;
      double skipped = 0, observer_cpu = 0;
      const std::size_t slice = (n + 24) / 25;
      std::size_t next = 0;
      long long last_look = 0;
      auto look = [&] {
        const long long now = bench::now_ns();
        if (now - last_look < 10'000'000) return false;
        last_look = now;
        const double oc0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
        for (std::size_t j = 0; j < slice; ++j, next = (next + 1) % n) {
          auto p = *insts[next]->snapshot().probe;
          Seen& s = seen[next];
          std::uint64_t f = 0;
          for (auto x : p.failures) f += x;
          const std::uint64_t done = p.count - s.count;
          // A failed probe is no latency sample (the window's failures
          // are counted apart).
          if (done == 1 && f == s.failures)
            latency_ms.push_back(1000 * (p.sum_seconds - s.sum));
          else if (done > 1)
            skipped += static_cast<double>(done);
          s = {p.count, p.sum_seconds, f};
        }
        observer_cpu += clock_s(CLOCK_THREAD_CPUTIME_ID) - oc0;
        return false;
      };
      look_all(cumulative0, total0);
      const double f0 = failures();
      const double lc0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
      const long long l0 = bench::now_ns();
      loop.run_until(look, window, std::chrono::milliseconds(10));
      const long long l1 = bench::now_ns();
      const double lc1 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
      look_all(cumulative1, total1);
      r.failed = failures() - f0;
      const double lwall = (l1 - l0) / 1e9;
      r.latency_cpu_percent = 100 * (lc1 - lc0) / lwall;
      r.busiest_percent = busiest_percent(arrivals_file(dir), l0, l1, 100'000'000, (total1 - total0) / lwall);
      r.observer_percent = 100 * observer_cpu / lwall;
      r.observed = static_cast<double>(latency_ms.size());
      r.skipped = skipped;
      if (latency_ms.empty()) {
        broken = "no probe observed in the latency window";
      } else {
        r.p50_ms = bench::median(latency_ms);
        r.p99_ms = bench::percentile(latency_ms, 99);
        r.max_ms = *std::max_element(latency_ms.begin(), latency_ms.end());
      }
      for (std::size_t b = 0; b < bounds.size(); ++b) cumulative1[b] -= cumulative0[b];
      r.hist_p50_ms = histogram_quantile_ms(0.5, bounds, cumulative1, total1 - total0);
      r.hist_p99_ms = histogram_quantile_ms(0.99, bounds, cumulative1, total1 - total0);
      std::printf("    CPU window %.1f s: vigil CPU %.1f%% (and %.1f%% waiting for a CPU), %.0f probes/s;"
                  " latency window %.1f s: %.0f probes seen one by one (%.0f skipped, %.0f failed),"
                  " p50 %.0f ms, p99 %.0f ms, max %.0f ms;"
                  " histogram_quantile p50 %.1f ms, p99 %.1f ms; %.0f%% of a second's probes reach the children"
                  " in its busiest 100 ms; CPU %.1f%% of which looks %.2f%% (load %s)\n",
                  wall, r.cpu_percent, r.wait_percent, r.probes_per_s, lwall, r.observed, r.skipped, r.failed,
                  r.p50_ms, r.p99_ms, r.max_ms, r.hist_p50_ms, r.hist_p99_ms, r.busiest_percent,
                  r.latency_cpu_percent, r.observer_percent, load_note().c_str());
    } else {
      std::printf("    CPU window %.1f s: vigil CPU %.1f%% (and %.1f%% waiting for a CPU) (load %s)\n", wall,
                  r.cpu_percent, r.wait_percent, load_note().c_str());
    }
    std::fflush(stdout);
    if (running() != n) broken = std::to_string(n - running()) + " children stopped running during the run";
  }

  // Clean-up, not measured; probes cut short by the kill are not news.
  spdlog::set_level(spdlog::level::err);
  sup.kill_all_now();
  const bool down = loop.run_until([&] { return count_if([](const vigil::Instance& i) { return i.pid() > 0; }) == 0; },
                                   std::chrono::seconds(30));
  bool finished = false;
  sup.shutdown([&](int) { finished = true; });
  loop.run_until([&] { return finished; }, std::chrono::seconds(60));
  if (!broken.empty()) throw bench::Broken(broken);
  if (!down || !finished) throw bench::Broken("in-process clean-up did not finish");
  return r;
}

// In a fresh fork (as heartbeat_bench's ingest): a clean heap and address
// space per run, and the children die with it.
ProbeRun probe_run(int instances, int port_base, bool probes, double window_s) {
  std::string s = bench::in_fork([&] {
    ProbeRun r = probe_measure(instances, port_base, probes, window_s);
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.9g %.9g %.9g %.9g %.9g %.9g %.9g %.9g %.9g %.9g %.9g %.9g %.9g %.9g",
                  r.cpu_percent, r.probes_per_s, r.p50_ms, r.p99_ms, r.max_ms, r.hist_p50_ms, r.hist_p99_ms,
                  r.latency_cpu_percent, r.observer_percent, r.observed, r.skipped, r.failed, r.wait_percent,
                  r.busiest_percent);
    return std::string(buf);
  });
  ProbeRun r;
  std::istringstream in(s);
  in >> r.cpu_percent >> r.probes_per_s >> r.p50_ms >> r.p99_ms >> r.max_ms >> r.hist_p50_ms >> r.hist_p99_ms >>
      r.latency_cpu_percent >> r.observer_percent >> r.observed >> r.skipped >> r.failed >> r.wait_percent >>
      r.busiest_percent;
  if (!in) throw bench::Broken("probe run: unreadable result \"" + s + "\"");
  return r;
}

// ---------------------------------------------------------------------------
// 2. Hang detection lateness

struct Inst {
  int index = 0;
  int pid = 0;
  std::string state;
  std::uint64_t heartbeats = 0, hung = 0;
};

std::optional<std::vector<Inst>> instances_of(const std::filesystem::path& socket, std::string* why) {
  auto r = vigil::control_request(socket, "GET", "/api/v1/programs", why);
  if (!r || r->status != 200) {
    if (r) *why = "status " + std::to_string(r->status);
    return std::nullopt;
  }
  std::vector<Inst> out;
  for (const auto& i : nlohmann::json::parse(r->body)) {
    Inst x;
    x.index = i["index"].get<int>();
    x.pid = i["pid"].is_null() ? 0 : i["pid"].get<int>();  // null: no process (backoff)
    x.state = i["state"].get<std::string>();
    x.heartbeats = i["heartbeats"].get<std::uint64_t>();
    x.hung = i["restarts_by_reason"]["hung"].get<std::uint64_t>();
    out.push_back(x);
  }
  return out;
}

struct Record {
  int index = 0, pid = 0;
  long long beat_mono = 0, beat_real = 0, term_mono = 0, term_real = 0;
};

std::vector<Record> read_records(const std::filesystem::path& p) {
  std::vector<Record> out;
  std::ifstream f(p);
  std::string tag;
  Record r;
  while (f >> tag >> r.index >> r.pid >> r.beat_mono >> r.beat_real >> r.term_mono >> r.term_real) {
    if (tag != "H") throw bench::Broken("malformed record in " + p.string());
    out.push_back(r);
  }
  return out;
}

// vigil's "program beat[I]: hung: ..." lines (it logs every verdict, at
// error): index -> the unix times in ns of the lines' timestamps, in order
// ("%Y-%m-%dT%H:%M:%S.%e": local time, milliseconds).
std::map<int, std::vector<long long>> hung_verdicts(const std::filesystem::path& log) {
  std::map<int, std::vector<long long>> out;
  std::istringstream in(bench::read_file(log));
  std::string line;
  const std::string mark = "program beat[";
  while (std::getline(in, line)) {
    auto at = line.find(mark);
    if (at == std::string::npos || line.find("]: hung: ", at) == std::string::npos) continue;
    std::tm tm{};
    int ms = 0;
    if (std::sscanf(line.c_str(), "%d-%d-%dT%d:%d:%d.%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                    &tm.tm_min, &tm.tm_sec, &ms) != 7)
      throw bench::Broken("no timestamp on vigil's log line: " + line);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_isdst = -1;
    const std::time_t t = std::mktime(&tm);
    out[std::atoi(line.c_str() + at + mark.size())].push_back(static_cast<long long>(t) * 1000000000LL +
                                                              ms * 1000000LL);
  }
  return out;
}

struct Lateness {
  double p50 = 0, p99 = 0, max = 0, min = 0;  // ms
};

Lateness lateness(std::vector<double> v) {
  if (v.empty()) return {NAN, NAN, NAN, NAN};
  return {bench::median(v), bench::percentile(v, 99), *std::max_element(v.begin(), v.end()),
          *std::min_element(v.begin(), v.end())};
}

struct Round {
  Lateness by_signal, by_log;
  double cpu_percent = 0, wait_percent = 0;  // vigil's, over the round
};

struct HangResult {
  std::vector<Round> rounds;  // as configured
  // The same, after a reload that turns off what was found to hold the
  // loop: /proc sampling (1,000 processes, every second), then also the
  // restarts of the silenced children (stop, reap and spawn run on it too).
  std::optional<Round> no_sampling, no_sampling_no_restarts;
  std::uint64_t false_hung = 0;
  double startup_s = 0;
};

std::string hang_config(const std::filesystem::path& dir, int children, bool sampling, bool restarts) {
  return "[vigil]\n"
         "log_dir = " + bench::toml_str((dir / "logs").string()) + "\n"
         "control_socket = " + bench::toml_str((dir / "vigil.sock").string()) + "\n"
         "log_level = \"warn\"\n" +
         (sampling ? std::string() : std::string("sample_interval = \"24h\"\n")) +
         "\n"
         "[programs.beat]\n"
         "command = [" + bench::toml_str(BENCH_CHILD) + ", \"beat\", \"" + std::to_string(kBeatMs) + "\", " +
             bench::toml_str((dir / "records").string()) + "]\n"
         "instances = " + std::to_string(children) + "\n"
         "min_uptime = \"0s\"\n" +
         (restarts ? std::string() : std::string("restart = \"never\"\n")) +
         "\n"
         "[programs.beat.heartbeat]\n"
         "interval = \"200ms\"\n"
         "misses = 3\n"
         "grace = \"5s\"\n";
}

HangResult hang_run(int children, int silent, int rounds) {
  // Rounds, then the two control rounds, each on instances of its own.
  if (silent <= 0 || silent * (rounds + 2) > children)
    throw bench::Broken("--silent x (--rounds + 2) must be between 1 and --children");
  bench::TempDir dir("hang");
  auto config = dir.path() / "vigil.toml";
  auto socket = dir.path() / "vigil.sock";
  auto records = dir.path() / "records";
  bench::write_file(config, hang_config(dir.path(), children, true, true));
  auto err = dir.path() / "vigil.stderr";
  bench::VigilProcess vigil(VIGIL_BINARY, config, err);
  auto check_alive = [&] {
    if (!vigil.alive())
      throw bench::Broken("vigil exited (code " + std::to_string(vigil.exit_code()) + "):\n" + bench::tail_of(err));
  };
  // Every instance running and beating, with `hung` hung restarts done in
  // all (the silenced ones are running again), within `limit_s`.
  auto wait_steady = [&](std::uint64_t hung, double limit_s, const char* when) {
    const long long t0 = bench::now_ns();
    std::string why = "no answer yet";
    while ((bench::now_ns() - t0) / 1e9 < limit_s) {
      check_alive();
      if (auto list = instances_of(socket, &why)) {
        std::size_t ok = 0;
        std::uint64_t h = 0;
        for (const auto& i : *list) {
          ok += i.state == "running" && i.pid > 0 && i.heartbeats > 0;
          h += i.hung;
        }
        if (ok == static_cast<std::size_t>(children) && h >= hung) return *list;
      }
      bench::sleep_ms(100);
    }
    throw bench::Broken(std::string("not every instance running and beating ") + when + " within " +
                        bench::fmt("%.0f", limit_s) + " s (" + why + "):\n" + bench::tail_of(err));
  };

  HangResult res;
  auto list = wait_steady(0, 90, "after the start");
  res.startup_s = (bench::now_ns() - vigil.start_ns()) / 1e9;
  std::printf("  %d children running and beating %.1f s after launch (load %s)\n", children, res.startup_s,
              load_note().c_str());
  std::fflush(stdout);
  bench::sleep_ms(1000);  // the start-up's burst settles
  list = wait_steady(0, 30, "before the first round");

  const int stride = children / silent;
  std::set<int> silenced;
  // One round: `silent` instances (every stride-th, from `offset`) fall
  // silent one every kStaggerMs; returns once each has reported its SIGTERM.
  auto round = [&](int offset, const char* what) {
    std::map<int, int> pid_of;
    for (const auto& i : list) pid_of[i.index] = i.pid;
    std::vector<int> chosen;
    for (int k = 0; k < silent; ++k) chosen.push_back(k * stride + offset);
    const double c0 = bench::cpu_seconds(vigil.pid()), q0 = bench::runqueue_wait_s(vigil.pid());
    const long long t0 = bench::now_ns();
    for (std::size_t k = 0; k < chosen.size(); ++k) {
      const long long at = t0 + static_cast<long long>(k) * kStaggerMs * 1000000LL;
      while (bench::now_ns() < at) bench::sleep_ms((at - bench::now_ns()) / 1e6);
      if (pid_of.at(chosen[k]) <= 0) throw bench::Broken("instance " + std::to_string(chosen[k]) + " has no pid");
      ::kill(pid_of.at(chosen[k]), SIGUSR1);
      silenced.insert(chosen[k]);
    }
    // Every silenced child reports its SIGTERM; nothing asks vigil meanwhile.
    const std::size_t want = silenced.size();
    const long long last = bench::now_ns();
    std::size_t have = 0;
    while ((have = read_records(records).size()) < want) {
      check_alive();
      if ((bench::now_ns() - last) / 1e9 > 60)
        throw bench::Broken(std::to_string(want - have) + " silenced children not stopped within 60 s of the"
                            " last silence:\n" + bench::tail_of(err));
      bench::sleep_ms(20);
    }
    const double round_s = (bench::now_ns() - t0) / 1e9;
    Round r;
    r.cpu_percent = 100 * (bench::cpu_seconds(vigil.pid()) - c0) / round_s;
    r.wait_percent = 100 * (bench::runqueue_wait_s(vigil.pid()) - q0) / round_s;

    // Lateness after the deadline, both ways.
    const auto recs = read_records(records);
    const auto logged = hung_verdicts(err);
    std::set<int> this_round(chosen.begin(), chosen.end());
    std::vector<double> by_signal, by_log;
    for (const auto& rec : recs) {
      if (!this_round.count(rec.index)) continue;
      by_signal.push_back((rec.term_mono - rec.beat_mono) / 1e6 - kHungAfterMs);
      auto l = logged.find(rec.index);
      if (l != logged.end()) by_log.push_back((l->second.back() - rec.beat_real) / 1e6 - kHungAfterMs);
    }
    if (by_signal.size() != this_round.size())
      throw bench::Broken(std::string(what) + ": " + std::to_string(by_signal.size()) + " records for " +
                          std::to_string(this_round.size()) + " silenced children");
    if (by_log.size() != this_round.size())
      throw bench::Broken(std::string(what) + ": " + std::to_string(by_log.size()) +
                          " \"hung\" lines in vigil's log for " + std::to_string(this_round.size()) +
                          " silenced children");
    r.by_signal = lateness(by_signal);
    r.by_log = lateness(by_log);
    std::printf("  %s: late after last beat + 600 ms: SIGTERM at the child p50 %.2f  p99 %.2f  max %.2f  min %.2f"
                " ms; vigil's log line p50 %.0f  p99 %.0f  max %.0f ms; vigil CPU %.0f%%, waiting for a CPU %.0f%%"
                " (load %s)\n",
                what, r.by_signal.p50, r.by_signal.p99, r.by_signal.max, r.by_signal.min, r.by_log.p50,
                r.by_log.p99, r.by_log.max, r.cpu_percent, r.wait_percent, load_note().c_str());
    std::fflush(stdout);
    return r;
  };
  // A reload that keeps every process (only settings applied in place).
  auto reload = [&](bool sampling, bool restarts) {
    bench::write_file(config, hang_config(dir.path(), children, sampling, restarts));
    std::string why;
    auto r = vigil::control_request(socket, "POST", "/api/v1/reload", &why);
    if (!r || r->status != 200)
      throw bench::Broken("reload failed: " + (r ? std::to_string(r->status) + " " + r->body : why));
    auto after = wait_steady(silenced.size(), 60, "after a reload");
    std::map<int, int> pid_before;
    for (const auto& i : list) pid_before[i.index] = i.pid;
    for (const auto& i : after)
      if (pid_before[i.index] != i.pid) throw bench::Broken("the reload restarted an instance: " + r->body);
    list = std::move(after);
    bench::sleep_ms(1000);
  };

  std::printf("  %d rounds as configured: %d of %d fall silent, one every %ld ms\n", rounds, silent, children,
              kStaggerMs);
  for (int k = 0; k < rounds; ++k) {
    const std::string what = "round " + std::to_string(k + 1);
    res.rounds.push_back(round(k, what.c_str()));
    list = wait_steady(silenced.size(), 60, "after a round");
    bench::sleep_ms(1000);  // the restarts' burst settles
  }
  reload(false, true);
  res.no_sampling = round(rounds, "no /proc sampling");
  list = wait_steady(silenced.size(), 60, "after a round");
  bench::sleep_ms(1000);
  reload(false, false);
  res.no_sampling_no_restarts = round(rounds + 1, "no sampling, no restarts");

  // "hung" verdicts on children that never stopped beating, or a second one
  // on a silenced child: vigil logs every verdict (at error).
  for (const auto& [index, verdicts] : hung_verdicts(err))
    res.false_hung += verdicts.size() - (silenced.count(index) ? 1 : 0);
  if (res.false_hung > 0) {
    std::istringstream in(bench::read_file(err));
    std::string line;
    int shown = 0;
    while (std::getline(in, line) && shown < 3)
      if (line.find("]: hung: ") != std::string::npos) {
        const auto at = line.find("beat[");
        if (at != std::string::npos && !silenced.count(std::atoi(line.c_str() + at + 5))) {
          std::printf("    %s\n", line.c_str());
          ++shown;
        }
      }
  }
  if (vigil.terminate(120) < 0) throw bench::Broken("vigil did not exit within 120 s of SIGTERM");
  if (vigil.exit_code() != 0)
    throw bench::Broken("vigil exited " + std::to_string(vigil.exit_code()) + ":\n" + bench::tail_of(err));
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = static_cast<int>(bench::option(argc, argv, "--runs", 3));
  const int instances = static_cast<int>(bench::option(argc, argv, "--instances", 500));
  const double window_s = static_cast<double>(bench::option(argc, argv, "--window-ms", 4000)) / 1000.0;
  const int children = static_cast<int>(bench::option(argc, argv, "--children", 1000));
  const int silent = static_cast<int>(bench::option(argc, argv, "--silent", 100));
  const int rounds = static_cast<int>(bench::option(argc, argv, "--rounds", 3));
  const bool skip_probes = bench::option(argc, argv, "--skip-probes", 0) != 0;
  const bool skip_hang = bench::option(argc, argv, "--skip-hang", 0) != 0;
  // Hundreds of sockets, pipes and log files per run: on tmpfs, as
  // instances_bench explains, unless BENCH_TMPDIR says otherwise.
  const std::string tmp = bench::prefer_tmpfs();
  vigil::init_logging("warn");
  ::signal(SIGPIPE, SIG_IGN);
  int exit_code = 0;
  try {
    if (!skip_probes && runs > 0) {
      const int port_base = bench::find_port_base(instances);
      std::printf("probes: %d x http every 1s (bench_child http, ports %d-%d), in-process Supervisor in a fork;"
                  " %d runs of %.1f s windows, probes on and off alternating; temp dirs under %s\n",
                  instances, port_base, port_base + instances - 1, runs, window_s, tmp.c_str());
      std::fflush(stdout);
      std::vector<double> on_cpu, off_cpu, diff, rate, p50, p99, mx, h50, h99, busiest;
      for (int r = 1; r <= runs; ++r) {
        std::printf("  run %d\n", r);
        const ProbeRun on = probe_run(instances, port_base, true, window_s);
        const ProbeRun off = probe_run(instances, port_base, false, window_s);
        on_cpu.push_back(on.cpu_percent);
        off_cpu.push_back(off.cpu_percent);
        diff.push_back(on.cpu_percent - off.cpu_percent);
        rate.push_back(on.probes_per_s);
        p50.push_back(on.p50_ms);
        p99.push_back(on.p99_ms);
        mx.push_back(on.max_ms);
        h50.push_back(on.hist_p50_ms);
        h99.push_back(on.hist_p99_ms);
        busiest.push_back(on.busiest_percent);
      }
      const std::string n = std::to_string(instances);
      bench::result(n + " x http probe/1s: vigil CPU (%)", bench::fmt("%.1f", bench::median(on_cpu)), "-", true);
      bench::result("  same " + n + " children, probes off: CPU (%)", bench::fmt("%.1f", bench::median(off_cpu)),
                    "-", true);
      bench::result("  probes' own cost (CPU % points)", bench::fmt("%.1f", bench::median(diff)), "-", true);
      bench::result("  probes done per second", bench::fmt("%.0f", bench::median(rate)), "-", true);
      // vigil measures a probe in whole milliseconds (truncated): so are these.
      bench::result("  probe latency p50 (ms, vigil's 1 ms steps)", bench::fmt("%.0f", bench::median(p50)), "-",
                    true);
      bench::result("  probe latency p99 (ms)", bench::fmt("%.0f", bench::median(p99)), "-", true);
      bench::result("  probe latency max (ms)", bench::fmt("%.0f", bench::median(mx)), "-", true);
      bench::result("  histogram_quantile p50 / p99 (ms)",
                    bench::fmt("%.1f", bench::median(h50)) + " / " + bench::fmt("%.1f", bench::median(h99)), "-",
                    true);
      bench::result("  probes in a second's busiest 100 ms (%)", bench::fmt("%.0f", bench::median(busiest)), "-",
                    true);
      bench::result("  load average after the probe runs", load_note(), "-", true);
    }
    if (!skip_hang && rounds > 0) {
      std::printf("hang detection: %d children beating every %ld ms (interval 200ms, misses 3, grace 5s), real vigil"
                  " binary\n",
                  children, kBeatMs);
      std::fflush(stdout);
      const HangResult h = hang_run(children, silent, rounds);
      std::vector<double> s50, s99, smax, g50, g99, wait;
      for (const auto& r : h.rounds) {
        s50.push_back(r.by_signal.p50);
        s99.push_back(r.by_signal.p99);
        smax.push_back(r.by_signal.max);
        g50.push_back(r.by_log.p50);
        g99.push_back(r.by_log.p99);
        wait.push_back(r.wait_percent);
      }
      const std::string who = std::to_string(silent) + "/" + std::to_string(children);
      const double m50 = bench::median(s50), m99 = bench::median(s99);
      bench::result("hang detection late p50 (ms), " + who + " silent", bench::fmt("%.2f", m50), "< 10 ms",
                    m50 < kTargetLatenessMs);
      bench::result("  hang detection late p99 (ms)", bench::fmt("%.2f", m99), "< 10 ms", m99 < kTargetLatenessMs);
      bench::result("  hang detection late max (ms)", bench::fmt("%.2f", bench::median(smax)), "-", true);
      bench::result("  same from vigil's log line p50 / p99 (ms)",
                    bench::fmt("%.0f", bench::median(g50)) + " / " + bench::fmt("%.0f", bench::median(g99)), "-",
                    true);
      bench::result("  vigil waiting for a CPU in the rounds (%)", bench::fmt("%.0f", bench::median(wait)), "-",
                    true);
      auto control = [](const std::string& what, const Round& r) {
        bench::result(what, bench::fmt("%.2f", r.by_signal.p50) + " / " + bench::fmt("%.2f", r.by_signal.p99), "-",
                      true);
      };
      control("  no /proc sampling: late p50 / p99 (ms)", *h.no_sampling);
      control("  no sampling, no restarts: p50 / p99 (ms)", *h.no_sampling_no_restarts);
      bench::result("  hung verdicts on children still beating", std::to_string(h.false_hung), "0",
                    h.false_hung == 0);
      bench::result("  load average after the hang rounds", load_note(), "-", true);
      if (h.false_hung > 0) {
        std::fprintf(stderr, "probe_bench: %llu hung verdict(s) on children that never stopped beating\n",
                     static_cast<unsigned long long>(h.false_hung));
        exit_code = 1;
      }
    }
  } catch (const std::exception& e) {  // bench::Broken, or a reply that did not parse
    std::fprintf(stderr, "probe_bench: BROKEN RUN: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
