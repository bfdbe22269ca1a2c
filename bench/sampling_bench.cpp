// /proc sampling: what it costs busy, and what vigil costs idle.
//
// Busy: `vigil run` with one program of 1,000 `sleep 3600` instances, each
// with a memory_limit, so every tree is read every sample_interval (1s).
// Once every child runs and the start-up has settled, vigil's CPU is read
// from /proc/<vigil>/stat over consecutive 5 s windows (~20 s in all):
// median % of one core; then VmRSS and VmHWM from /proc/<vigil>/status.
//
// Idle (issue 15): 500 programs of one `sleep` each, default settings (log
// "split", no memory_limit), as the peer benchmark runs them. vigil's own
// CPU time over a long window (--idle-seconds, 130 s: an idle tree is read
// once a minute, so the window holds two such passes), from
// /proc/<vigil>/stat, not wall time: the figure to trust on a busy machine.
// Then VmRSS with the 500, and the bytes each instance costs: (VmRSS with
// 500 - VmRSS with 1) / 499.
//
// In-process: the same 1,000 children under a Supervisor in a fork of this
// process; Supervisor::sample() (a read of every tree plus the sums) is
// timed directly: median ms per sample.
//
//   sampling_bench [--instances 1000] [--seconds 20] [--samples 20]
//                  [--idle-programs 500] [--idle-seconds 130]
#include <dirent.h>

#include <cstdio>

#include "bench_util.h"
#include "config_parse.h"
#include "event_loop.h"
#include "log.h"
#include "supervisor.h"

namespace {

constexpr double kTargetCpuPercent = 5.0;
constexpr double kTargetRssMiB = 40.0;
constexpr double kTargetIdleCpuPercent = 0.05;
constexpr double kTargetIdleRssMiB = 12.0;

std::string config_text(const bench::TempDir& dir, int instances) {
  return "[vigil]\n"
         "log_dir = " + bench::toml_str((dir.path() / "logs").string()) + "\n"
         "control_socket = " + bench::toml_str((dir.path() / "vigil.sock").string()) + "\n"
         "log_level = \"warn\"\n"
         "sample_interval = \"1s\"\n"
         "\n"
         "[programs.sleeper]\n"
         "command = [\"sleep\", \"3600\"]\n"
         "instances = " + std::to_string(instances) + "\n"
         "min_uptime = \"0s\"\n"
         "memory_limit = \"512MiB\"\n";
}

std::size_t proc_count() {
  std::size_t n = 0;
  if (DIR* d = ::opendir("/proc")) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] >= '1' && e->d_name[0] <= '9') ++n;
    ::closedir(d);
  }
  return n;
}

struct Binary {
  double cpu_percent, cpu_percent_max, rss_mib, hwm_mib;
};

Binary binary_run(int instances, int seconds) {
  bench::TempDir dir("sampling");
  auto config = dir.path() / "vigil.toml";
  bench::write_file(config, config_text(dir, instances));
  auto err = dir.path() / "vigil.stderr";
  bench::VigilProcess vigil(VIGIL_BINARY, config, err);
  while (bench::child_count(vigil.pid()) < static_cast<std::size_t>(instances)) {
    if (!vigil.alive()) throw bench::Broken("vigil exited:\n" + bench::tail_of(err));
    if ((bench::now_ns() - vigil.start_ns()) / 1e9 > 60)
      throw bench::Broken("not all children spawned within 60 s:\n" + bench::tail_of(err));
    bench::sleep_ms(5);
  }
  bench::sleep_ms(2000);  // the spawn burst is over; only the sampling timer runs
  std::printf("  %zu processes on the machine while measuring\n", proc_count());

  constexpr int kWindowS = 5;
  const int windows = std::max(1, seconds / kWindowS);
  std::vector<double> pct;
  for (int w = 0; w < windows; ++w) {
    const double c0 = bench::cpu_seconds(vigil.pid());
    const long long t0 = bench::now_ns();
    bench::sleep_ms(kWindowS * 1000);
    const double c1 = bench::cpu_seconds(vigil.pid());
    const double wall = (bench::now_ns() - t0) / 1e9;
    pct.push_back((c1 - c0) / wall * 100);
    std::printf("  window %d: vigil CPU %.2f%% of one core over %.1f s\n", w + 1, pct.back(), wall);
    std::fflush(stdout);
  }
  if (!vigil.alive()) throw bench::Broken("vigil exited while measuring:\n" + bench::tail_of(err));
  Binary r{bench::median(pct), bench::percentile(pct, 100),
           bench::status_kib(vigil.pid(), "VmRSS") / 1024.0,
           bench::status_kib(vigil.pid(), "VmHWM") / 1024.0};
  if (vigil.terminate(60) < 0) throw bench::Broken("vigil did not exit within 60 s of SIGTERM");
  return r;
}

// `programs` programs of one `sleep` each, vigil's defaults otherwise.
std::string idle_config(const bench::TempDir& dir, int programs) {
  std::string text = "[vigil]\n"
                     "log_dir = " + bench::toml_str((dir.path() / "logs").string()) + "\n"
                     "control_socket = " + bench::toml_str((dir.path() / "vigil.sock").string()) + "\n"
                     "log_level = \"warn\"\n";
  for (int k = 0; k < programs; ++k)
    text += "\n[programs.c" + std::to_string(k) + "]\ncommand = [\"sleep\", \"3600\"]\nlog = \"split\"\n";
  return text;
}

struct Idle {
  double cpu_percent = 0, rss_mib = 0;
};

// vigil with `programs` idle children: its CPU over `seconds` (0: none)
// once they run and 5 s have passed, and its VmRSS then.
Idle idle_run(int programs, int seconds) {
  bench::TempDir dir("idle");
  auto config = dir.path() / "vigil.toml";
  bench::write_file(config, idle_config(dir, programs));
  auto err = dir.path() / "vigil.stderr";
  bench::VigilProcess vigil(VIGIL_BINARY, config, err);
  while (bench::child_count(vigil.pid()) < static_cast<std::size_t>(programs)) {
    if (!vigil.alive()) throw bench::Broken("vigil exited:\n" + bench::tail_of(err));
    if ((bench::now_ns() - vigil.start_ns()) / 1e9 > 60)
      throw bench::Broken("not all children spawned within 60 s:\n" + bench::tail_of(err));
    bench::sleep_ms(5);
  }
  bench::sleep_ms(5000);  // settled, as the peer benchmark's idle scenario
  Idle r;
  if (seconds > 0) {
    const double c0 = bench::cpu_seconds(vigil.pid());
    const long long t0 = bench::now_ns();
    bench::sleep_ms(seconds * 1000.0);
    const double c1 = bench::cpu_seconds(vigil.pid());
    r.cpu_percent = (c1 - c0) / ((bench::now_ns() - t0) / 1e9) * 100;
    std::printf("  %d idle children: vigil used %.2f s of CPU in %d s\n", programs, c1 - c0, seconds);
  }
  if (!vigil.alive()) throw bench::Broken("vigil exited while measuring:\n" + bench::tail_of(err));
  r.rss_mib = bench::status_kib(vigil.pid(), "VmRSS") / 1024.0;
  if (vigil.terminate(60) < 0) throw bench::Broken("vigil did not exit within 60 s of SIGTERM");
  return r;
}

// Runs in a fork: Supervisor::sample() timed with `instances` children.
double in_process_measure(int instances, int samples) {
  bench::TempDir dir("sampling-inproc");
  auto parsed = vigil::parse_config(config_text(dir, instances), (dir.path() / "vigil.toml").string());
  if (!parsed.ok()) throw bench::Broken("config: " + parsed.errors.front().to_string());
  vigil::EventLoop loop;
  vigil::Supervisor sup(loop, std::move(parsed.config));
  auto& insts = sup.programs().front()->instances();
  sup.start();
  bool all = loop.run_until(
      [&] {
        for (auto& i : insts)
          if (i->pid() <= 0) return false;
        return true;
      },
      std::chrono::seconds(30));
  if (!all) throw bench::Broken("not all instances spawned within 30 s");
  // Let every child exec `sleep` before timing (a forked child still
  // running vigil's image would skew the sums).
  loop.run_until([] { return false; }, std::chrono::milliseconds(1000));
  std::vector<double> ms;
  for (int k = 0; k < samples; ++k) {
    const long long t0 = bench::now_ns();
    sup.sample();
    ms.push_back((bench::now_ns() - t0) / 1e6);
  }
  std::uint64_t rss_sum = 0;
  for (auto& i : insts) rss_sum += i->rss_bytes();
  std::printf("  in-process: %d samples of %d trees (%zu processes on the machine): median %.2f ms,"
              " p90 %.2f ms; sum of tree RSS %.0f MiB\n",
              samples, instances, proc_count(), bench::median(ms), bench::percentile(ms, 90),
              rss_sum / 1048576.0);
  std::fflush(stdout);
  sup.kill_all_now();
  loop.run_until(
      [&] {
        for (auto& i : insts)
          if (i->pid() > 0) return false;
        return true;
      },
      std::chrono::seconds(30));
  bool finished = false;
  sup.shutdown([&](int) { finished = true; });
  loop.run_until([&] { return finished; }, std::chrono::seconds(60));
  if (!finished) throw bench::Broken("in-process clean-up did not finish");
  return bench::median(ms);
}

double in_process_run(int instances, int samples) {
  return std::atof(bench::in_fork([&] {
    return std::to_string(in_process_measure(instances, samples));
  }).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const int instances = static_cast<int>(bench::option(argc, argv, "--instances", 1000));
  const int seconds = static_cast<int>(bench::option(argc, argv, "--seconds", 20));
  const int samples = static_cast<int>(bench::option(argc, argv, "--samples", 20));
  const int idle_programs = static_cast<int>(bench::option(argc, argv, "--idle-programs", 500));
  const int idle_seconds = static_cast<int>(bench::option(argc, argv, "--idle-seconds", 130));
  const std::string tmp = bench::prefer_tmpfs();
  vigil::init_logging("warn");
  std::printf("/proc sampling of %d instances of `sleep 3600` every 1s; %d idle programs\n", instances, idle_programs);
  try {
    const std::string n = std::to_string(instances);
    auto b = binary_run(instances, seconds);
    bench::result(n + " children, 1s sampling: vigil CPU (% core)", bench::fmt("%.2f", b.cpu_percent), "< 5 %",
                  b.cpu_percent < kTargetCpuPercent);
    bench::result("  worst 5 s window (% core)", bench::fmt("%.2f", b.cpu_percent_max), "-", true);
    bench::result(n + " children, 1s sampling: vigil VmRSS (MiB)", bench::fmt("%.1f", b.rss_mib), "< 40 MiB",
                  b.rss_mib < kTargetRssMiB);
    bench::result("  vigil VmHWM (MiB)", bench::fmt("%.1f", b.hwm_mib), "-", true);
    if (idle_programs > 1) {
      const std::string m = std::to_string(idle_programs);
      const Idle idle = idle_run(idle_programs, idle_seconds);
      const Idle one = idle_run(1, 0);
      bench::result(m + " idle children, defaults: vigil CPU (% core)", bench::fmt("%.3f", idle.cpu_percent),
                    "<= 0.05 %", idle.cpu_percent <= kTargetIdleCpuPercent);
      bench::result(m + " idle children: vigil VmRSS (MiB)", bench::fmt("%.1f", idle.rss_mib), "<= 12 MiB",
                    idle.rss_mib <= kTargetIdleRssMiB);
      const double per = (idle.rss_mib - one.rss_mib) * 1048576.0 / (idle_programs - 1);
      bench::result("  bytes per instance (VmRSS with " + m + " - with 1) / " + std::to_string(idle_programs - 1),
                    bench::fmt("%.0f", per), "-", true);
    }
    if (samples > 0) {
      double ms = in_process_run(instances, samples);
      bench::result("one sample of " + n + " trees (ms)", bench::fmt("%.2f", ms), "-", true);
    }
  } catch (const bench::Broken& e) {
    std::fprintf(stderr, "sampling_bench: BROKEN RUN: %s\n", e.what());
    return 1;
  }
  return 0;
}
