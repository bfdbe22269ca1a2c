// GET /metrics with 1,000 instances.
//
// In-process: 1,000 synthetic snapshots (every family an instance has, plus
// a heartbeat interval and a memory limit each). Cold: a render with nothing
// to reuse. Steady: the same MetricsRenderer scrape after scrape while every
// instance's heartbeat count, last heartbeat, RSS and CPU move. Median time
// of one render, the bytes and series it yields.
//
// Real binary: `vigil run` with one program of 1,000 `sleep 3600`
// instances and [http] listen on 127.0.0.1:0; once all are up, sequential
// GET /metrics over loopback (a fresh connection each, as Prometheus does
// after an idle interval): median and p90 wall time seen by the client,
// vigil's CPU per scrape, bytes and bytes per series. The JSON API's
// /api/v1/programs is timed too, for comparison.
//
//   scrape_bench [--instances 1000] [--renders 30] [--scrapes 30]
#include <cstdio>
#include <random>

#include "../tests/integration/metrics_client.h"
#include "bench_util.h"
#include "log.h"
#include "metrics.h"

namespace {

namespace mc = vigil::metrics_client;

constexpr double kTargetScrapeMs = 50.0;

std::size_t series_count(const std::string& text) {
  std::size_t n = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    if (nl > start && text[start] != '#') ++n;
    start = nl + 1;
  }
  return n;
}

std::vector<vigil::InstanceSnapshot> synthetic(int instances) {
  std::mt19937_64 rng(42);
  std::vector<vigil::InstanceSnapshot> out;
  out.reserve(static_cast<std::size_t>(instances));
  for (int i = 0; i < instances; ++i) {
    vigil::InstanceSnapshot s;
    s.program = "sleeper";
    s.index = i;
    s.pid = 10000 + i;
    s.state = vigil::State::running;
    s.up = true;
    s.uptime_seconds = 1234.5;
    s.start_time_seconds = 1.7e9 + static_cast<double>(rng() % 100000);
    for (auto& r : s.restarts) r = rng() % 5;
    for (auto& e : s.exits) e = rng() % 5;
    s.last_exit_code = 1;
    s.heartbeats = rng() % 100000;
    s.heartbeat_last_seconds = 1.7e9 + static_cast<double>(rng() % 100000);
    s.heartbeat_interval_seconds = 5;
    s.rss_bytes = 20'000'000 + rng() % 100'000'000;
    s.cpu_seconds = static_cast<double>(rng() % 100000) / 100.0;
    s.reported_memory_bytes = 30'000'000 + rng() % 100'000'000;
    s.memory_limit_bytes = 512ull << 20;
    s.log_bytes = {rng() % 100'000'000, rng() % 1'000'000};
    out.push_back(std::move(s));
  }
  return out;
}

void in_process(int instances, int renders) {
  auto snaps = synthetic(instances);
  vigil::SelfSnapshot self;
  self.version = "bench";
  // Cold: nothing to reuse, every family serialized (the first scrape, or
  // one after a reload changed the set of instances).
  std::vector<double> cold;
  std::string text;
  for (int r = 0; r < renders; ++r) {
    long long t0 = bench::now_ns();
    text = vigil::render_metrics(snaps, {}, self);
    cold.push_back((bench::now_ns() - t0) / 1e6);
  }
  // Steady: one renderer scrape after scrape, and between two scrapes every
  // instance heartbeats and its RSS and CPU move (4 of its families).
  vigil::MetricsRenderer renderer;
  renderer.render(snaps, {}, self);
  std::vector<double> steady;
  std::size_t serialized = 0;
  for (int r = 0; r < renders; ++r) {
    for (auto& s : snaps) {
      s.heartbeats += 1;
      *s.heartbeat_last_seconds += 1;
      s.rss_bytes += 4096;
      s.cpu_seconds += 0.01;
    }
    long long t0 = bench::now_ns();
    text = renderer.render(snaps, {}, self);
    steady.push_back((bench::now_ns() - t0) / 1e6);
    serialized = renderer.families_serialized();
  }
  const std::size_t series = series_count(text);
  std::printf("  in-process, %d synthetic instances, %d renders each: cold (every family serialized)"
              " median %.2f ms, p90 %.2f ms; steady (%zu families changed) median %.2f ms, p90 %.2f ms;"
              " %zu bytes, %zu series\n",
              instances, renders, bench::median(cold), bench::percentile(cold, 90), serialized,
              bench::median(steady), bench::percentile(steady, 90), text.size(), series);
  const std::string n = std::to_string(instances);
  bench::result("render, " + n + " instances, cold (ms)", bench::fmt("%.2f", bench::median(cold)),
                "< 50 ms", bench::median(cold) < kTargetScrapeMs);
  bench::result("render, " + n + " instances, steady (ms)", bench::fmt("%.2f", bench::median(steady)),
                "< 50 ms", bench::median(steady) < kTargetScrapeMs);
  bench::result("  exposition bytes per series", bench::fmt("%.1f", double(text.size()) / double(series)),
                "-", true);
}

std::string config_text(const bench::TempDir& dir, int instances) {
  return "[vigil]\n"
         "log_dir = " + bench::toml_str((dir.path() / "logs").string()) + "\n"
         "control_socket = " + bench::toml_str((dir.path() / "vigil.sock").string()) + "\n"
         "log_level = \"info\"\n"  // for the "serving ... on http://..." line
         "\n"
         "[http]\n"
         "listen = \"127.0.0.1:0\"\n"
         "\n"
         "[programs.sleeper]\n"
         "command = [\"sleep\", \"3600\"]\n"
         "instances = " + std::to_string(instances) + "\n"
         "min_uptime = \"0s\"\n"
         "memory_limit = \"512MiB\"\n";
}

void binary(int instances, int scrapes) {
  bench::TempDir dir("scrape");
  auto config = dir.path() / "vigil.toml";
  bench::write_file(config, config_text(dir, instances));
  auto err = dir.path() / "vigil.stderr";
  bench::VigilProcess vigil(VIGIL_BINARY, config, err);

  std::optional<std::uint16_t> port;
  while (!(port = mc::served_port(bench::read_file(err)))) {
    if (!vigil.alive()) throw bench::Broken("vigil exited:\n" + bench::tail_of(err));
    if ((bench::now_ns() - vigil.start_ns()) / 1e9 > 30) throw bench::Broken("vigil does not serve HTTP");
    bench::sleep_ms(5);
  }
  // Every instance up (running), as seen in a scrape.
  for (;;) {
    auto r = mc::http_get(*port, "/metrics", std::chrono::milliseconds(10000));
    if (r && r->status == 200) {
      auto e = mc::parse_exposition(r->body);
      double up = 0;
      for (const auto* s : e.find("vigil_up")) up += s->value;
      if (up == instances) break;
    }
    if (!vigil.alive()) throw bench::Broken("vigil exited:\n" + bench::tail_of(err));
    if ((bench::now_ns() - vigil.start_ns()) / 1e9 > 60)
      throw bench::Broken("not all instances up within 60 s:\n" + bench::tail_of(err));
    bench::sleep_ms(100);
  }
  bench::sleep_ms(500);

  auto time_gets = [&](const char* target, std::size_t* bytes, std::string* last) {
    std::vector<double> ms;
    const double cpu0 = bench::cpu_seconds(vigil.pid());
    for (int k = 0; k < scrapes; ++k) {
      long long t0 = bench::now_ns();
      auto r = mc::http_get(*port, target, std::chrono::milliseconds(10000));
      ms.push_back((bench::now_ns() - t0) / 1e6);
      if (!r || r->status != 200) throw bench::Broken(std::string("GET ") + target + " failed");
      *bytes = r->body.size();
      if (last) *last = r->body;
      bench::sleep_ms(20);  // not back to back: a scraper's rhythm, and the sampling timer runs
    }
    const double cpu_ms = (bench::cpu_seconds(vigil.pid()) - cpu0) * 1000 / scrapes;
    return std::make_pair(ms, cpu_ms);
  };

  std::size_t bytes = 0, api_bytes = 0;
  std::string body;
  auto [ms, cpu_ms] = time_gets("/metrics", &bytes, &body);
  auto [api_ms, api_cpu_ms] = time_gets("/api/v1/programs", &api_bytes, nullptr);
  const std::size_t series = series_count(body);
  const double rss = bench::status_kib(vigil.pid(), "VmRSS") / 1024.0;
  if (vigil.terminate(60) < 0) throw bench::Broken("vigil did not exit within 60 s of SIGTERM");

  std::printf("  binary: %d GET /metrics with %d instances: median %.2f ms, p90 %.2f ms, max %.2f ms;"
              " vigil CPU %.2f ms per scrape (clock ticks: coarse); %zu bytes, %zu series; vigil VmRSS %.1f MiB\n",
              scrapes, instances, bench::median(ms), bench::percentile(ms, 90),
              bench::percentile(ms, 100), cpu_ms, bytes, series, rss);
  std::printf("  binary: %d GET /api/v1/programs: median %.2f ms, p90 %.2f ms; %zu bytes\n", scrapes,
              bench::median(api_ms), bench::percentile(api_ms, 90), api_bytes);
  const std::string n = std::to_string(instances);
  bench::result("GET /metrics, " + n + " instances (ms)", bench::fmt("%.2f", bench::median(ms)), "< 50 ms",
                bench::median(ms) < kTargetScrapeMs);
  bench::result("  p90 (ms)", bench::fmt("%.2f", bench::percentile(ms, 90)), "-", true);
  bench::result("  bytes per scrape", std::to_string(bytes), "-", true);
  bench::result("  bytes per series", bench::fmt("%.1f", double(bytes) / double(series)), "-", true);
  bench::result("GET /api/v1/programs, " + n + " instances (ms)", bench::fmt("%.2f", bench::median(api_ms)), "-",
                true);
}

}  // namespace

int main(int argc, char** argv) {
  const int instances = static_cast<int>(bench::option(argc, argv, "--instances", 1000));
  const int renders = static_cast<int>(bench::option(argc, argv, "--renders", 30));
  const int scrapes = static_cast<int>(bench::option(argc, argv, "--scrapes", 30));
  // Log files and notify sockets on tmpfs when there is one (see instances_bench).
  const std::string tmp = bench::prefer_tmpfs();
  vigil::init_logging("warn");
  std::printf("/metrics with %d instances\n", instances);
  try {
    in_process(instances, renders);
    binary(instances, scrapes);
  } catch (const bench::Broken& e) {
    std::fprintf(stderr, "scrape_bench: BROKEN RUN: %s\n", e.what());
    return 1;
  }
  return 0;
}
