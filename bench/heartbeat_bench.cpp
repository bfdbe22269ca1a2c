// Heartbeats: how many messages vigil ingests per core, and whether 1,000
// children beating on time ever look hung.
//
// The children are this program itself, re-executed (no extra target):
//   heartbeat_bench child-flood      writes "WATCHDOG=1\n" to fd 3 flat out,
//                                    65,527 bytes (5,957 lines) per write()
//   heartbeat_bench child-beat MS    writes one "WATCHDOG=1\n" to fd 3, then
//                                    nanosleep(MS), forever
// Both exit when fd 3 fails (vigil gone: EPIPE).
//
// 1. Parser ceiling: NotifyStreamParser::feed over 64 MiB of heartbeat
//    lines in 64 KiB chunks (what vigil reads per read(); lines straddle
//    chunks), a counting callback. No syscalls, no loop.
// 2. Ingest: a Supervisor in a fork of this process (EventLoop, real pipes,
//    spdlog at warn), one program of N `child-flood` instances with a
//    heartbeat configured (interval 5s: every WATCHDOG=1 also re-arms the
//    instance's deadline timer, as in production). Once every instance has
//    beaten and after a warm-up, Instance::heartbeats() summed over --runs
//    consecutive windows, each divided by this process's CPU time in it
//    (CLOCK_PROCESS_CPUTIME_ID: vigil's work only, the children are other
//    processes) and by wall time; medians. N = 1 and N = 1,000.
// 3. Soak: the real binary, 1,000 `child-beat 100` instances with
//    heartbeat interval 200ms, misses 3, grace 5s, for BENCH_SOAK_SECONDS
//    (default 60). Restarts with reason hung must stay at 0 (a false
//    positive: the children never stopped beating); missed intervals and
//    vigil's CPU % (from /proc/PID/stat) are printed. Counters come from the
//    control socket's GET /api/v1/programs, read before and after the
//    window (no polling inside it). Hung restarts during the start-up (the
//    launch until every instance runs and has beaten) are counted apart.
//    Then vigil is stopped (SIGSTOP) for 2 s while the children beat on,
//    and continued: a stalled supervisor must not call its children hung
//    (their beats are waiting in the pipes).
// Any hung restart makes the exit status non-zero: it is a finding.
//
//   heartbeat_bench [--runs 3] [--window-ms 2000] [--children 1000]
//                   [--soak-seconds N] [--skip-soak 1]
#include <time.h>

#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "config_parse.h"
#include "control_client.h"
#include "event_loop.h"
#include "log.h"
#include "notify_protocol.h"
#include "supervisor.h"

namespace {

constexpr double kTargetIngestPerS = 1e6;

// ---------------------------------------------------------------------------
// The children

int child_flood() {
  static const char kLine[] = "WATCHDOG=1\n";
  constexpr std::size_t kLen = sizeof kLine - 1;
  constexpr std::size_t kLines = 65536 / kLen;
  static char buf[kLines * kLen];
  for (std::size_t i = 0; i < kLines; ++i) std::memcpy(buf + i * kLen, kLine, kLen);
  for (;;) {
    std::size_t off = 0;
    while (off < sizeof buf) {
      ssize_t n = ::write(3, buf + off, sizeof buf - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return 0;
      off += static_cast<std::size_t>(n);
    }
  }
}

int child_beat(long ms) {
  const timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  for (;;) {
    if (::write(3, "WATCHDOG=1\n", 11) != 11) return 0;
    timespec left = ts;
    while (::nanosleep(&left, &left) != 0 && errno == EINTR) {
    }
  }
}

std::string self_exe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw bench::Broken("cannot read /proc/self/exe");
  return p.string();
}

double process_cpu_s() {
  timespec ts;
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The 1-minute load average, as text.
std::string load_note() {
  std::string s = bench::read_file("/proc/loadavg");
  return s.substr(0, s.find(' '));
}

// ---------------------------------------------------------------------------
// 1. Parser ceiling

double parser_run(int run) {
  static const char kLine[] = "WATCHDOG=1\n";
  constexpr std::size_t kLen = sizeof kLine - 1;
  constexpr std::size_t kTotal = 64u << 20;
  constexpr std::size_t kChunk = 64 * 1024;
  std::string data;
  data.reserve(kTotal + kLen);
  while (data.size() + kLen <= kTotal) data.append(kLine, kLen);
  const std::size_t lines = data.size() / kLen;

  vigil::NotifyStreamParser parser;
  std::uint64_t beats = 0;
  vigil::NotifyMessageFn on_message = [&beats](const vigil::NotifyMessage& m) {
    beats += m.kind == vigil::NotifyKind::watchdog;
  };
  const double c0 = process_cpu_s();
  for (std::size_t off = 0; off < data.size(); off += kChunk)
    parser.feed(std::string_view(data).substr(off, kChunk), on_message);
  const double cpu = process_cpu_s() - c0;
  if (beats != lines || parser.counts().protocol_errors != 0)
    throw bench::Broken("parser: " + std::to_string(beats) + " heartbeats of " + std::to_string(lines) +
                        " lines, " + std::to_string(parser.counts().protocol_errors) + " protocol errors");
  const double rate = static_cast<double>(lines) / cpu;
  std::printf("  parser run %d: %zu lines in %.3f CPU s: %.1f M msg/s\n", run, lines, cpu, rate / 1e6);
  std::fflush(stdout);
  return rate;
}

// ---------------------------------------------------------------------------
// 2. Ingest, in-process

struct Ingest {
  double per_cpu_s = 0, per_wall_s = 0, cpu_share = 0;
};

std::string ingest_config(const bench::TempDir& dir, const std::string& self, int children) {
  return "[vigil]\n"
         "log_dir = " + bench::toml_str((dir.path() / "logs").string()) + "\n"
         "control_socket = " + bench::toml_str((dir.path() / "vigil.sock").string()) + "\n"
         "log_level = \"warn\"\n"
         "\n"
         "[programs.flood]\n"
         "command = [" + bench::toml_str(self) + ", \"child-flood\"]\n"
         "instances = " + std::to_string(children) + "\n"
         "min_uptime = \"0s\"\n"
         "restart = \"never\"\n"
         "\n"
         "[programs.flood.heartbeat]\n"
         "interval = \"5s\"\n"
         "misses = 3\n"
         "grace = \"300s\"\n";  // spawning 1,000 may take long on a loaded machine
}

std::vector<Ingest> ingest_measure(int children, double window_s, int windows) {
  bench::TempDir dir("heartbeat");
  ::setenv("XDG_RUNTIME_DIR", dir.path().c_str(), 1);  // this forked run only
  auto parsed = vigil::parse_config(ingest_config(dir, self_exe(), children),
                                    (dir.path() / "vigil.toml").string());
  if (!parsed.ok()) throw bench::Broken("config: " + parsed.errors.front().to_string());
  vigil::EventLoop loop;
  vigil::Supervisor sup(loop, std::move(parsed.config));
  auto& insts = sup.programs().front()->instances();
  auto sum = [&](auto f) {
    std::uint64_t n = 0;
    for (auto& i : insts) n += f(*i);
    return n;
  };
  auto beats = [&] { return sum([](const vigil::Instance& i) { return i.heartbeats(); }); };
  auto errors = [&] { return sum([](const vigil::Instance& i) { return i.notify_counts().protocol_errors; }); };
  auto dead = [&] { return sum([](const vigil::Instance& i) { return i.pid() > 0 ? 0u : 1u; }); };

  const long long t_launch = bench::now_ns();
  sup.start();
  const double spawn_s = (bench::now_ns() - t_launch) / 1e9;
  bool all_beat = loop.run_until(
      [&] {
        for (auto& i : insts)
          if (i->heartbeats() == 0) return false;
        return true;
      },
      std::chrono::seconds(90), std::chrono::milliseconds(10));
  const double beating_s = (bench::now_ns() - t_launch) / 1e9;
  std::printf("  %4d flood children: spawned in %.2f s, all beating after %.2f s\n", children, spawn_s, beating_s);
  std::fflush(stdout);

  std::vector<Ingest> out;
  std::string broken;
  if (!all_beat) broken = "not every instance beat within 90 s";
  if (broken.empty()) loop.run_until([] { return false; }, std::chrono::milliseconds(500));  // warm-up
  // The window ends at a loop turn; with 1,000 flooders one turn reads
  // every pipe once (~6 M messages), so a window may overrun: messages
  // and CPU are read at the same instants, the ratio is exact.
  for (int w = 1; w <= windows && broken.empty(); ++w) {
    const std::uint64_t b0 = beats();
    const double c0 = process_cpu_s();
    const long long t0 = bench::now_ns();
    loop.run_until([] { return false; }, std::chrono::milliseconds(static_cast<long>(window_s * 1000)));
    const long long t1 = bench::now_ns();
    const double c1 = process_cpu_s();
    const std::uint64_t b1 = beats();
    if (auto n = dead()) broken = std::to_string(n) + " flood children died during the run";
    if (auto n = errors()) broken = std::to_string(n) + " protocol errors on clean heartbeat lines";
    const double load = std::atof(bench::read_file("/proc/loadavg").c_str());
    const double wall = (t1 - t0) / 1e9, cpu = c1 - c0;
    const double msgs = static_cast<double>(b1 - b0);
    Ingest r{msgs / cpu, msgs / wall, cpu / wall};
    out.push_back(r);
    std::printf("  %4d children, window %d: %.0f msgs in %.2f s wall, %.2f CPU s (%.0f%% of a core):"
                " %.2f M msg/CPU-s, %.2f M msg/s wall (load %.2f)\n",
                children, w, msgs, wall, cpu, 100 * r.cpu_share, r.per_cpu_s / 1e6, r.per_wall_s / 1e6, load);
    std::fflush(stdout);
  }

  const long long t_kill = bench::now_ns();
  sup.kill_all_now();
  bool down = loop.run_until([&] { return dead() == insts.size(); }, std::chrono::seconds(30));
  bool finished = false;
  sup.shutdown([&](int) { finished = true; });
  loop.run_until([&] { return finished; }, std::chrono::seconds(60));
  std::printf("        (killed and reaped in %.2f s)\n", (bench::now_ns() - t_kill) / 1e9);
  if (!broken.empty()) throw bench::Broken(broken);
  if (!down || !finished) throw bench::Broken("in-process clean-up did not finish");
  return out;
}

// In a fresh fork (as instances_bench does): a clean heap and address
// space per run, and the children die with it.
std::vector<Ingest> ingest_run(int children, double window_s, int windows) {
  std::string s = bench::in_fork([&] {
    std::string msg;
    for (const Ingest& r : ingest_measure(children, window_s, windows)) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "%.6e %.6e %.6e\n", r.per_cpu_s, r.per_wall_s, r.cpu_share);
      msg += buf;
    }
    return msg;
  });
  std::vector<Ingest> out;
  std::istringstream in(s);
  Ingest r;
  while (in >> r.per_cpu_s >> r.per_wall_s >> r.cpu_share) out.push_back(r);
  return out;
}

// ---------------------------------------------------------------------------
// 3. Soak, real binary

struct Totals {
  std::size_t instances = 0, running = 0, with_beat = 0;
  std::uint64_t heartbeats = 0, misses = 0, hung = 0, restarts = 0;
};

std::optional<Totals> totals(const std::filesystem::path& socket, std::string* error = nullptr) {
  std::string why;
  auto r = vigil::control_request(socket, "GET", "/api/v1/programs", &why);
  if (!r || r->status != 200) {
    if (error) *error = r ? "status " + std::to_string(r->status) : why;
    return std::nullopt;
  }
  Totals t;
  for (const auto& i : nlohmann::json::parse(r->body)) {
    ++t.instances;
    t.running += i["state"] == "running";
    t.heartbeats += i["heartbeats"].get<std::uint64_t>();
    t.with_beat += i["heartbeats"].get<std::uint64_t>() > 0;
    t.misses += i["heartbeat_misses"].get<std::uint64_t>();
    t.hung += i["restarts_by_reason"]["hung"].get<std::uint64_t>();
    t.restarts += i["restarts"].get<std::uint64_t>();
  }
  return t;
}

struct Soak {
  std::uint64_t hung_startup = 0, hung_window = 0, hung_stall = 0;
  std::uint64_t misses_startup = 0, misses_window = 0, misses_stall = 0;
  double startup_s = 0, cpu_percent = 0, beats_per_s = 0, seconds = 0, api_wait_s = 0;
};

Soak soak_run(int children, int seconds, double stall_s) {
  bench::TempDir dir("heartbeat-soak");
  auto config = dir.path() / "vigil.toml";
  auto socket = dir.path() / "vigil.sock";
  bench::write_file(config,
                    "[vigil]\n"
                    "log_dir = " + bench::toml_str((dir.path() / "logs").string()) + "\n"
                    "control_socket = " + bench::toml_str(socket.string()) + "\n"
                    "log_level = \"warn\"\n"
                    "\n"
                    "[programs.beat]\n"
                    "command = [" + bench::toml_str(self_exe()) + ", \"child-beat\", \"100\"]\n"
                    "instances = " + std::to_string(children) + "\n"
                    "min_uptime = \"0s\"\n"
                    "\n"
                    "[programs.beat.heartbeat]\n"
                    "interval = \"200ms\"\n"
                    "misses = 3\n"
                    "grace = \"5s\"\n");
  auto err = dir.path() / "vigil.stderr";
  Soak s;
  bench::VigilProcess vigil(VIGIL_BINARY, config, err);
  auto check_alive = [&] {
    if (!vigil.alive())
      throw bench::Broken("vigil exited (code " + std::to_string(vigil.exit_code()) + "):\n" + bench::tail_of(err));
  };
  // Also the instant of the reply, for rates between two reads.
  auto read_totals = [&](const char* when, long long* at = nullptr) {
    std::string why;
    const long long t0 = bench::now_ns();
    auto t = totals(socket, &why);
    if (at) *at = (t0 + bench::now_ns()) / 2;
    if (!t) throw bench::Broken(std::string("GET /api/v1/programs failed ") + when + ": " + why);
    return *t;
  };
  // Every instance running and beating, read through the API (which also
  // proves the control socket is up).
  while (true) {
    check_alive();
    if ((bench::now_ns() - vigil.start_ns()) / 1e9 > 90)
      throw bench::Broken("not all instances running and beating within 90 s:\n" + bench::tail_of(err));
    if (bench::child_count(vigil.pid()) >= static_cast<std::size_t>(children)) {
      auto t = totals(socket);
      if (t && t->running == static_cast<std::size_t>(children) &&
          t->with_beat == static_cast<std::size_t>(children))
        break;
    }
    bench::sleep_ms(100);
  }
  s.startup_s = (bench::now_ns() - vigil.start_ns()) / 1e9;
  bench::sleep_ms(1000);  // let the start-up's burst settle
  long long r0 = 0, r1 = 0;
  const Totals t0 = read_totals("before the soak", &r0);
  s.hung_startup = t0.hung;
  s.misses_startup = t0.misses;
  const double c0 = bench::cpu_seconds(vigil.pid());
  const long long w0 = bench::now_ns();
  std::printf("  %d instances running and beating %.1f s after launch (%llu hung restarts, %llu missed"
              " intervals so far); soaking %d s (load %s)\n",
              children, s.startup_s, static_cast<unsigned long long>(t0.hung),
              static_cast<unsigned long long>(t0.misses), seconds,
              bench::read_file("/proc/loadavg").substr(0, 4).c_str());
  std::fflush(stdout);
  while ((bench::now_ns() - w0) / 1e9 < seconds) {
    check_alive();
    bench::sleep_ms(100);
  }
  const double c1 = bench::cpu_seconds(vigil.pid());
  const long long w1 = bench::now_ns();
  const Totals t1 = read_totals("after the soak", &r1);
  const double load = std::atof(bench::read_file("/proc/loadavg").c_str());
  s.seconds = (w1 - w0) / 1e9;
  s.hung_window = t1.hung - t0.hung;
  s.misses_window = t1.misses - t0.misses;
  s.cpu_percent = 100 * (c1 - c0) / s.seconds;
  s.beats_per_s = static_cast<double>(t1.heartbeats - t0.heartbeats) / ((r1 - r0) / 1e9);
  std::printf("  soak: %.1f s: %.0f heartbeats/s received (%.0f sent at most), %llu missed intervals,"
              " %llu hung restarts; vigil CPU %.1f%% (load %.2f)\n",
              s.seconds, s.beats_per_s, children * 10.0, static_cast<unsigned long long>(s.misses_window),
              static_cast<unsigned long long>(s.hung_window), s.cpu_percent, load);
  std::fflush(stdout);

  // vigil's loop blocked for longer than misses x interval while every
  // child kept beating (SIGSTOP stands in for a long synchronous step): the
  // beats wait in the pipes, and must be read before any verdict.
  if (stall_s > 0) {
    ::kill(vigil.pid(), SIGSTOP);
    bench::sleep_ms(stall_s * 1000);
    ::kill(vigil.pid(), SIGCONT);
    bench::sleep_ms(2000);
    check_alive();
    // vigil may be busy restarting what it found hung: wait for an answer.
    std::optional<Totals> after;
    std::string why;
    const long long a0 = bench::now_ns();
    while (!(after = totals(socket, &why)) && (bench::now_ns() - a0) / 1e9 < 120) check_alive();
    if (!after) throw bench::Broken("GET /api/v1/programs failed after the stall: " + why);
    s.api_wait_s = (bench::now_ns() - a0) / 1e9;
    const Totals t2 = *after;
    s.hung_stall = t2.hung - t1.hung;
    s.misses_stall = t2.misses - t1.misses;
    std::printf("  vigil stopped (SIGSTOP) for %.1f s while the children beat on: %llu missed intervals,"
                " %llu hung restarts; the API answered %.1f s after SIGCONT + 2 s\n",
                stall_s, static_cast<unsigned long long>(s.misses_stall),
                static_cast<unsigned long long>(s.hung_stall), s.api_wait_s);
  }
  if (vigil.terminate(120) < 0) throw bench::Broken("vigil did not exit within 120 s of SIGTERM");
  if (vigil.exit_code() != 0)
    throw bench::Broken("vigil exited " + std::to_string(vigil.exit_code()) + ":\n" + bench::tail_of(err));
  if (s.hung_startup + s.hung_window + s.hung_stall > 0) {
    // The first hung verdicts, for the report.
    std::istringstream in(bench::read_file(err));
    std::string line;
    int shown = 0;
    while (std::getline(in, line) && shown < 3)
      if (line.find("hung") != std::string::npos) {
        std::printf("    %s\n", line.c_str());
        ++shown;
      }
  }
  std::fflush(stdout);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "child-flood") == 0) return child_flood();
  if (argc >= 3 && std::strcmp(argv[1], "child-beat") == 0) return child_beat(std::atol(argv[2]));

  const int runs = static_cast<int>(bench::option(argc, argv, "--runs", 3));
  const double window_s = static_cast<double>(bench::option(argc, argv, "--window-ms", 2000)) / 1000.0;
  const int children = static_cast<int>(bench::option(argc, argv, "--children", 1000));
  const char* env_soak = std::getenv("BENCH_SOAK_SECONDS");
  const int soak_s = static_cast<int>(
      bench::option(argc, argv, "--soak-seconds", env_soak && *env_soak ? std::atol(env_soak) : 60));
  const bool skip_soak = bench::option(argc, argv, "--skip-soak", 0) != 0;
  // Thousands of pipes, sockets and log files per run: on tmpfs, as
  // instances_bench explains, unless BENCH_TMPDIR says otherwise.
  const std::string tmp = bench::prefer_tmpfs();
  std::printf("heartbeat ingest and soak: %d runs of %.1f s windows, %d children; temp dirs under %s\n", runs,
              window_s, children, tmp.c_str());
  vigil::init_logging("warn");
  ::signal(SIGPIPE, SIG_IGN);
  int exit_code = 0;
  try {
    std::vector<double> parser;
    for (int r = 1; r <= 5; ++r) parser.push_back(parser_run(r));

    std::vector<double> one_cpu, one_wall, one_share, many_cpu, many_wall, many_share;
    if (runs > 0) {
      for (const Ingest& a : ingest_run(1, window_s, runs)) {
        one_cpu.push_back(a.per_cpu_s);
        one_wall.push_back(a.per_wall_s);
        one_share.push_back(a.cpu_share);
      }
      for (const Ingest& b : ingest_run(children, window_s, runs)) {
        many_cpu.push_back(b.per_cpu_s);
        many_wall.push_back(b.per_wall_s);
        many_share.push_back(b.cpu_share);
      }
    }
    const std::string load = load_note();
    const double p = bench::median(parser);
    bench::result("heartbeat parser ceiling (M msg/CPU-s)", bench::fmt("%.1f", p / 1e6), "-", true);
    auto ingest_rows = [&](const std::string& who, const std::vector<double>& cpu, const std::vector<double>& wall,
                           const std::vector<double>& share) {
      const double c = bench::median(cpu), w = bench::median(wall);
      bench::result("heartbeat ingest, " + who + " (M msg/CPU-s)", bench::fmt("%.2f", c / 1e6), ">= 1 M/s",
                    c >= kTargetIngestPerS);
      bench::result("  " + who + ": wall M msg/s (vigil's CPU %)",
                    bench::fmt("%.2f", w / 1e6) + " (" + bench::fmt("%.0f", 100 * bench::median(share)) + "%)", "-",
                    true);
    };
    if (runs > 0) {
      ingest_rows("1 child", one_cpu, one_wall, one_share);
      ingest_rows(std::to_string(children) + " children", many_cpu, many_wall, many_share);
      bench::result("  load average after the ingest runs", load, "-", true);
    }

    if (!skip_soak && soak_s > 0) {
      auto s = soak_run(children, soak_s, 2.0);
      const std::string n = std::to_string(children);
      bench::result(n + " x beat/100ms, " + std::to_string(soak_s) + " s: hung restarts", std::to_string(s.hung_window),
                    "0", s.hung_window == 0);
      bench::result("  missed intervals (200 ms) in the soak", std::to_string(s.misses_window), "-", true);
      bench::result("  vigil CPU during the soak (%)", bench::fmt("%.1f", s.cpu_percent), "-", true);
      bench::result("  hung restarts while starting " + n + " (" + bench::fmt("%.1f", s.startup_s) + " s)",
                    std::to_string(s.hung_startup), "0", s.hung_startup == 0);
      bench::result("  hung restarts after vigil stalled 2 s", std::to_string(s.hung_stall), "0", s.hung_stall == 0);
      bench::result("  load average after the soak", load_note(), "-", true);
      if (const auto hung = s.hung_startup + s.hung_window + s.hung_stall) {
        std::fprintf(stderr, "heartbeat_bench: %llu hung restart(s) of children that never stopped beating\n",
                     static_cast<unsigned long long>(hung));
        exit_code = 1;
      }
    }
  } catch (const std::exception& e) {  // bench::Broken, or a reply that did not parse
    std::fprintf(stderr, "heartbeat_bench: BROKEN RUN: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
