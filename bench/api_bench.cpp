// The JSON API and `vigil status` with 1,000 instances.
//
// The real binary (`vigil run`, log_level warn) with one program of 1,000
// `sleep 3600` instances and [http] listen on a free loopback port. Once
// every instance is running (read through the API):
//   - GET /api/v1/programs over TCP, a fresh connection each (as curl or a
//     dashboard polling it would): wall time from connect() to the end of
//     the body, median and p90 of 50 after 3 warm-ups; the body's size; and
//     vigil's own CPU per request (/proc/PID/stat over the batch, minus its
//     idle rate measured just before: the 1 s /proc sampling).
//   - the same over the control socket (vigil::control_request, what the
//     CLI uses);
//   - `vigil status -c CONFIG` run as a process, stdout to /dev/null
//     (exec, config parse, request, JSON parse, table): median of 20 runs;
//     and `vigil status --json` (no JSON parse or table) for the split;
//     with the CLI's own CPU time (wait4), steadier than wall on a busy
//     machine.
// The first answer is checked against the contract: 1,000 objects, each
// with every field DESIGN.md lists.
//
// Where the time goes, in this process (CPU time): vigil's instances_json_text()
// over 1,000 snapshots like those of the run (running, a pid, no exits yet),
// the writing of every GET's body; nlohmann::json::parse of the
// real body (the CLI's first step); and `vigil version` as the floor of
// any CLI command (exec, dynamic loading).
//
//   api_bench [--instances 1000] [--requests 50] [--status-runs 20]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>

#include "../tests/integration/metrics_client.h"
#include "api_json.h"
#include "bench_util.h"
#include "sleepers.h"
#include "control_client.h"

namespace {

constexpr double kTargetGetMs = 20.0;
constexpr double kTargetStatusMs = 100.0;

std::uint16_t free_loopback_port() {
  const std::uint16_t port = vigil::metrics_client::free_loopback_port();
  if (!port) throw bench::Broken("no free loopback port");
  return port;
}

struct Reply {
  int status = 0;
  std::string body;
};

// One GET over a fresh TCP connection, "Connection: close", read to EOF.
Reply http_get(std::uint16_t port, const std::string& target) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw bench::Broken("socket failed");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    throw bench::Broken("connect 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno));
  const std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    throw bench::Broken("send failed");
  std::string resp;
  static char buf[1 << 16];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int rc = ::poll(&p, 1, 10000);
    if (rc == 0) throw bench::Broken("no answer from vigil within 10 s");
    if (rc < 0 && errno == EINTR) continue;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw bench::Broken(std::string("read: ") + std::strerror(errno));
    if (n == 0) break;
    resp.append(buf, static_cast<std::size_t>(n));
  }
  auto header_end = resp.find("\r\n\r\n");
  if (resp.compare(0, 5, "HTTP/") != 0 || header_end == std::string::npos)
    throw bench::Broken("malformed HTTP answer");
  Reply r;
  r.status = std::atoi(resp.c_str() + resp.find(' ') + 1);
  r.body = resp.substr(header_end + 4);
  return r;
}

// The contract's fields (DESIGN.md "HTTP API"), on every instance.
void check_programs(const std::string& body, int instances) {
  static const char* kFields[] = {"name",
                                  "index",
                                  "pid",
                                  "state",
                                  "uptime_seconds",
                                  "restarts",
                                  "memory_rss_bytes",
                                  "memory_reported_bytes",
                                  "last_heartbeat_seconds_ago",
                                  "status_text",
                                  "last_exit_code"};
  auto j = nlohmann::json::parse(body);
  if (!j.is_array() || j.size() != static_cast<std::size_t>(instances))
    throw bench::Broken("GET /api/v1/programs: " + std::to_string(j.size()) + " entries, wanted " +
                        std::to_string(instances));
  for (const auto& i : j)
    for (const char* f : kFields)
      if (!i.contains(f)) throw bench::Broken(std::string("GET /api/v1/programs: an entry has no \"") + f + "\"");
}

// `vigil ARGS...` with stdout to `out`: wall ms from fork to reaped, and
// the CLI's own CPU ms (user + system, from wait4) in *cpu_ms.
double run_cli(const std::vector<std::string>& args, const std::string& out, const std::string& err,
               double* cpu_ms = nullptr) {
  const bench::CliRun r = bench::run_cli(VIGIL_BINARY, args, out, err);
  if (cpu_ms) *cpu_ms = r.cpu_ms;
  if (r.exit_code != 0)
    throw bench::Broken("vigil " + args.front() + " exited " + std::to_string(r.exit_code) + ":\n" +
                        bench::tail_of(err));
  return r.wall_ms;
}

struct Batch {
  double median_ms = 0, p90_ms = 0, max_ms = 0, vigil_cpu_ms = 0;
};

// CPU time of this thread, in ns: the in-process figures below are CPU,
// not wall, so that other load on the machine does not count.
long long cpu_ns() {
  timespec ts;
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

// vigil's writer alone: median CPU ms to write the JSON of `instances`
// snapshots.
struct Render {
  double write_ms = 0;
  std::size_t bytes = 0;
};

Render render_in_process(int instances) {
  std::vector<vigil::InstanceSnapshot> snaps(static_cast<std::size_t>(instances));
  const double now = 1.7e9;
  for (int i = 0; i < instances; ++i) {
    auto& s = snaps[static_cast<std::size_t>(i)];
    s.program = "sleeper";
    s.index = i;
    s.pid = 100000 + i;
    s.state = vigil::State::running;
    s.up = true;
    s.uptime_seconds = 12.345 + i;
    s.start_time_seconds = now - s.uptime_seconds;
    s.rss_bytes = 1 << 20;
    s.cpu_seconds = 0.01;
  }
  std::vector<double> write;
  Render r;
  for (int k = 0; k < 15; ++k) {
    long long t0 = cpu_ns();
    std::string text = vigil::instances_json_text(snaps, now);
    write.push_back((cpu_ns() - t0) / 1e6);
    r.bytes = text.size();
  }
  r.write_ms = bench::median(write);
  std::printf("  in-process CPU: instances_json_text(%d snapshots) %.2f ms (%zu bytes)\n", instances, r.write_ms,
              r.bytes);
  std::fflush(stdout);
  return r;
}

double parse_in_process(const std::string& body) {
  std::vector<double> ms;
  for (int k = 0; k < 15; ++k) {
    long long t0 = cpu_ns();
    auto j = nlohmann::json::parse(body);
    ms.push_back((cpu_ns() - t0) / 1e6);
    if (j.size() == 0) throw bench::Broken("empty parse");
  }
  std::printf("  in-process CPU: nlohmann::json::parse of the %zu-byte body %.2f ms\n", body.size(), bench::median(ms));
  std::fflush(stdout);
  return bench::median(ms);
}

Batch summarize(const char* what, const std::vector<double>& ms, double cpu_ms) {
  Batch b{bench::median(ms), bench::percentile(ms, 90), *std::max_element(ms.begin(), ms.end()), cpu_ms};
  std::printf("  %-34s %3zu x: median %6.2f ms  p90 %6.2f ms  max %6.2f ms", what, ms.size(), b.median_ms, b.p90_ms,
              b.max_ms);
  if (cpu_ms >= 0) std::printf("  vigil CPU %.2f ms each", cpu_ms);
  std::printf("\n");
  std::fflush(stdout);
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  const int instances = static_cast<int>(bench::option(argc, argv, "--instances", 1000));
  const int requests = static_cast<int>(bench::option(argc, argv, "--requests", 50));
  const int status_runs = static_cast<int>(bench::option(argc, argv, "--status-runs", 20));
  // 1,000 instances' pipes, sockets and log files: on tmpfs, as
  // instances_bench explains, unless BENCH_TMPDIR says otherwise.
  const std::string tmp = bench::prefer_tmpfs();
  ::signal(SIGPIPE, SIG_IGN);
  const std::string n = std::to_string(instances);
  std::printf("JSON API and `vigil status` with %d instances of `sleep 3600` (temp dirs under %s)\n", instances,
              tmp.c_str());
  try {
    bench::TempDir dir("api");
    auto config = dir.path() / "vigil.toml";
    auto socket = dir.path() / "vigil.sock";
    const std::uint16_t port = free_loopback_port();
    bench::write_file(config, bench::sleepers_config(dir, socket, instances, port));
    auto err = dir.path() / "vigil.stderr";
    bench::VigilProcess vigil(VIGIL_BINARY, config, err);
    bench::wait_running(vigil, socket, instances, err);

    // vigil's idle CPU rate (the 1 s /proc sampling of 1,000 trees), to
    // take out of the per-request figures.
    bench::sleep_ms(500);
    double c0 = bench::cpu_seconds(vigil.pid());
    long long w0 = bench::now_ns();
    bench::sleep_ms(3000);
    const double idle_rate = (bench::cpu_seconds(vigil.pid()) - c0) / ((bench::now_ns() - w0) / 1e9);
    std::printf("  vigil idle: %.1f%% of a core\n", 100 * idle_rate);
    // Over a batch: vigil's CPU ms per item beyond its idle rate. Coarse
    // (clock ticks of 10 ms), hence whole batches.
    auto batch_cpu_ms = [&](double c_before, long long w_before, int items) {
      const double cpu = bench::cpu_seconds(vigil.pid()) - c_before;
      const double wall = (bench::now_ns() - w_before) / 1e9;
      return std::max(0.0, cpu - idle_rate * wall) * 1000 / items;
    };

    Reply first = http_get(port, "/api/v1/programs");
    if (first.status != 200) throw bench::Broken("GET /api/v1/programs: status " + std::to_string(first.status));
    check_programs(first.body, instances);
    const std::size_t bytes = first.body.size();
    std::printf("  GET /api/v1/programs: %zu bytes (%.0f per instance)\n", bytes,
                static_cast<double>(bytes) / instances);
    for (int i = 0; i < 2; ++i) http_get(port, "/api/v1/programs");

    std::vector<double> tcp_ms;
    c0 = bench::cpu_seconds(vigil.pid());
    w0 = bench::now_ns();
    for (int i = 0; i < requests; ++i) {
      const long long t0 = bench::now_ns();
      Reply r = http_get(port, "/api/v1/programs");
      tcp_ms.push_back((bench::now_ns() - t0) / 1e6);
      if (r.status != 200 || r.body.size() < bytes / 2)
        throw bench::Broken("GET /api/v1/programs: status " + std::to_string(r.status) + ", " +
                            std::to_string(r.body.size()) + " bytes");
    }
    const Batch tcp = summarize("GET /api/v1/programs (TCP)", tcp_ms, batch_cpu_ms(c0, w0, requests));

    std::vector<double> unix_ms;
    c0 = bench::cpu_seconds(vigil.pid());
    w0 = bench::now_ns();
    for (int i = 0; i < requests; ++i) {
      std::string error;
      const long long t0 = bench::now_ns();
      auto r = vigil::control_request(socket, "GET", "/api/v1/programs", &error);
      unix_ms.push_back((bench::now_ns() - t0) / 1e6);
      if (!r || r->status != 200) throw bench::Broken("control socket GET failed: " + error);
    }
    const Batch unx = summarize("GET /api/v1/programs (control sock)", unix_ms, batch_cpu_ms(c0, w0, requests));

    const std::string out = (dir.path() / "status.out").string();
    const std::string cli_err = (dir.path() / "status.err").string();
    const std::vector<std::string> status_args{"status", "-c", config.string()};
    const std::vector<std::string> json_args{"status", "--json", "-c", config.string()};
    run_cli(status_args, out, cli_err);  // checked once: header + one row per instance
    {
      std::string text = bench::read_file(out);
      auto lines = static_cast<long>(std::count(text.begin(), text.end(), '\n'));
      if (lines != instances + 1)
        throw bench::Broken("vigil status printed " + std::to_string(lines) + " lines, wanted " +
                            std::to_string(instances + 1));
    }
    // The CLI's own CPU, per mode: on a loaded machine its wall time
    // stretches with every slice it waits for.
    std::vector<double> status_ms, json_ms, version_ms, status_cpu, json_cpu, version_cpu;
    double cpu = 0;
    c0 = bench::cpu_seconds(vigil.pid());
    w0 = bench::now_ns();
    for (int i = 0; i < status_runs; ++i) {
      status_ms.push_back(run_cli(status_args, "/dev/null", cli_err, &cpu));
      status_cpu.push_back(cpu);
    }
    const Batch status = summarize("vigil status (table)", status_ms, batch_cpu_ms(c0, w0, status_runs));
    for (int i = 0; i < status_runs; ++i) {
      json_ms.push_back(run_cli(json_args, "/dev/null", cli_err, &cpu));
      json_cpu.push_back(cpu);
    }
    const Batch json = summarize("vigil status --json", json_ms, -1);
    for (int i = 0; i < status_runs; ++i) {
      version_ms.push_back(run_cli({"version"}, "/dev/null", cli_err, &cpu));
      version_cpu.push_back(cpu);
    }
    const Batch version = summarize("vigil version (floor: exec)", version_ms, -1);
    std::printf("  CLI's own CPU (user+sys), median: status %.1f ms, status --json %.1f ms, version %.1f ms\n",
                bench::median(status_cpu), bench::median(json_cpu), bench::median(version_cpu));
    std::string load = bench::read_file("/proc/loadavg");
    load = load.substr(0, load.find(' '));

    if (vigil.terminate(60) < 0) throw bench::Broken("vigil did not exit within 60 s of SIGTERM");
    if (vigil.exit_code() != 0)
      throw bench::Broken("vigil exited " + std::to_string(vigil.exit_code()) + ":\n" + bench::tail_of(err));
    const Render render = render_in_process(instances);
    const double parse_ms = parse_in_process(first.body);

    bench::result(n + " inst: GET /api/v1/programs median (ms)", bench::fmt("%.2f", tcp.median_ms),
                  "< 20 ms", tcp.median_ms < kTargetGetMs);
    bench::result("  p90 (ms); vigil CPU per request (ms)",
                  bench::fmt("%.2f", tcp.p90_ms) + "; " + bench::fmt("%.2f", tcp.vigil_cpu_ms), "-", true);
    bench::result("  body (KiB)", bench::fmt("%.0f", static_cast<double>(bytes) / 1024), "-", true);
    bench::result("  over the control socket, median (ms)", bench::fmt("%.2f", unx.median_ms), "-", true);
    bench::result(n + " inst: vigil status round trip median (ms)", bench::fmt("%.1f", status.median_ms),
                  "< 100 ms", status.median_ms < kTargetStatusMs);
    bench::result("  vigil status --json median (ms)", bench::fmt("%.1f", json.median_ms), "-", true);
    bench::result("  vigil version (exec floor) median (ms)", bench::fmt("%.1f", version.median_ms), "-", true);
    bench::result("  CLI CPU: status; --json; version (ms)",
                  bench::fmt("%.0f", bench::median(status_cpu)) + "; " + bench::fmt("%.0f", bench::median(json_cpu)) +
                      "; " + bench::fmt("%.0f", bench::median(version_cpu)),
                  "-", true);
    bench::result("  in-process CPU: writing the JSON (ms)", bench::fmt("%.2f", render.write_ms), "-", true);
    bench::result("  in-process CPU: CLI's json::parse (ms)", bench::fmt("%.2f", parse_ms), "-", true);
    bench::result("  load average after the API runs", load, "-", true);
  } catch (const std::exception& e) {  // bench::Broken, or an answer that did not parse
    std::fprintf(stderr, "api_bench: BROKEN RUN: %s\n", e.what());
    return 1;
  }
  return 0;
}
