// `vigil upgrade` with 1,000 instances: how long from the command to the new
// vigil serving /metrics, and what happens to output written meanwhile.
//
// The real binary (`vigil run`, log_level warn, [http] on a loopback port)
// with 1,000 `sleep 3600` instances (log split) and 4 tickers (bench_child
// tick 1: a numbered line "T SEQ REAL_NS" every millisecond, one write
// each). Once every instance runs, `vigil upgrade -c CONFIG` (to the same
// binary) is run --upgrades times; for each:
//   - handover: from launching the command (which returns once the new
//     vigil answers) to a GET /metrics answered with
//     vigil_upgrades_total{result="handover"} one higher: the new vigil
//     serving;
//   - the command's own wall time.
// Then every instance must have its pid and its restart count from before
// (a restart or a new pid makes the run broken), and every ticker's log is
// read: lines lost (a gap in SEQ) or written twice must be 0 (else broken);
// "delayed" is how much later than the child wrote it vigil stamped a line
// (the log's timestamp prefix minus REAL_NS), the largest and the p99 over
// all lines, against the handover time (lines written during the exec wait
// in the pipe and are stamped when the new vigil reads them).
//
//   upgrade_bench [--instances 1000] [--upgrades 5] [--vigil PATH]
#include <sys/resource.h>

#include <cstdio>
#include <ctime>
#include <map>

#include <nlohmann/json.hpp>

#include "../tests/integration/metrics_client.h"
#include "bench_util.h"

namespace {

constexpr int kTickers = 4;
constexpr double kTargetHandoverMs = 1000;

std::string option_text(int argc, char** argv, const char* name, const std::string& def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == name) return argv[i + 1];
  return def;
}

std::string config_text(const bench::TempDir& dir, int instances, std::uint16_t port) {
  return "[vigil]\n"
         "log_dir = " + bench::toml_str((dir.path() / "logs").string()) + "\n"
         "control_socket = " + bench::toml_str((dir.path() / "vigil.sock").string()) + "\n"
         "log_level = \"warn\"\n"
         "[http]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n"
         "\n[programs.sleeper]\n"
         "command = [\"sleep\", \"3600\"]\n"
         "instances = " + std::to_string(instances) + "\n"
         "min_uptime = \"0s\"\n"
         "\n[programs.ticker]\n"
         "command = [" + bench::toml_str(BENCH_CHILD) + ", \"tick\", \"1\"]\n"
         "instances = " + std::to_string(kTickers) + "\n"
         "min_uptime = \"0s\"\n";
}

// program[index] -> {pid, restarts}, from the API; empty when it does not answer.
std::map<std::string, std::pair<long, long>> instances_now(std::uint16_t port) {
  std::map<std::string, std::pair<long, long>> out;
  auto r = vigil::metrics_client::http_get(port, "/api/v1/programs", std::chrono::seconds(30));
  if (!r || r->status != 200) return out;
  for (const auto& i : nlohmann::json::parse(r->body)) {
    const long pid = i.value("pid", nlohmann::json()).is_number() ? i["pid"].get<long>() : 0;
    const long restarts = i.value("restarts", nlohmann::json()).is_number() ? i["restarts"].get<long>() : -1;
    out[i["name"].get<std::string>() + "[" + std::to_string(i["index"].get<int>()) + "]"] = {pid, restarts};
  }
  return out;
}

double upgrades_counted(std::uint16_t port, bool* answered) {
  auto r = vigil::metrics_client::http_get(port, "/metrics", std::chrono::seconds(5));
  *answered = r && r->status == 200;
  if (!*answered) return -1;
  auto e = vigil::metrics_client::parse_exposition(r->body);
  return e.value("vigil_upgrades_total", {{"result", "handover"}}).value_or(0);
}

// Milliseconds since the epoch of a "YYYY-mm-ddTHH:MM:SS.mmm" local time.
std::optional<double> stamp_ms(std::string_view line) {
  if (line.size() < 24 || line[10] != 'T' || line[19] != '.') return std::nullopt;
  std::tm tm{};
  if (!::strptime(std::string(line.substr(0, 19)).c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return std::nullopt;
  tm.tm_isdst = -1;
  return static_cast<double>(std::mktime(&tm)) * 1000.0 + std::stoi(std::string(line.substr(20, 3)));
}

struct LogCheck {
  std::size_t lines = 0, lost = 0, twice = 0;
  std::vector<double> delays_ms;
};

void check_log(const std::filesystem::path& file, LogCheck& c) {
  std::ifstream in(file);
  std::string line;
  unsigned long expect = 1;
  while (std::getline(in, line)) {
    auto t = stamp_ms(line);
    const auto at = line.find(" T ");
    if (!t || at == std::string::npos) throw bench::Broken("a line that is no tick in " + file.string() + ": " + line);
    unsigned long seq = 0;
    long long real_ns = 0;
    if (std::sscanf(line.c_str() + at, " T %lu %lld", &seq, &real_ns) != 2)
      throw bench::Broken("a damaged tick in " + file.string() + ": " + line);
    ++c.lines;
    if (seq < expect) ++c.twice;
    if (seq > expect) c.lost += seq - expect;
    expect = std::max(expect, seq + 1);
    c.delays_ms.push_back(std::max(0.0, *t - static_cast<double>(real_ns) / 1e6));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int instances = static_cast<int>(bench::option(argc, argv, "--instances", 1000));
  const int upgrades = static_cast<int>(bench::option(argc, argv, "--upgrades", 5));
  const std::string binary = option_text(argc, argv, "--vigil", VIGIL_BINARY);
  const std::string tmp = bench::prefer_tmpfs();
  std::printf("`vigil upgrade` with %d instances of `sleep 3600` and %d tickers (a numbered line every ms); "
              "%s; logs under %s\n",
              instances, kTickers, binary.c_str(), tmp.c_str());
  try {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    bench::TempDir dir("upgrade");
    const std::uint16_t port = vigil::metrics_client::free_loopback_port();
    const auto config = dir.path() / "vigil.toml";
    bench::write_file(config, config_text(dir, instances, port));
    const auto err = dir.path() / "vigil.stderr";
    std::vector<double> handover_ms, command_ms;
    std::map<std::string, std::pair<long, long>> before, after;
    {
      bench::VigilProcess vigil(binary, config, err);
      const long long t_launch = bench::now_ns();
      for (;;) {
        if (!vigil.alive()) throw bench::Broken("vigil exited:\n" + bench::tail_of(err));
        before = instances_now(port);
        std::size_t running = 0;
        for (const auto& [name, v] : before) running += v.first > 0 ? 1 : 0;
        if (running == static_cast<std::size_t>(instances + kTickers)) break;
        if ((bench::now_ns() - t_launch) / 1e9 > 300) throw bench::Broken("not all instances running within 300 s");
        bench::sleep_ms(200);
      }
      std::printf("  %zu instances running\n", before.size());
      std::fflush(stdout);
      for (int u = 1; u <= upgrades; ++u) {
        bool answered = false;
        const double count = upgrades_counted(port, &answered);
        if (!answered) throw bench::Broken("/metrics does not answer before upgrade " + std::to_string(u));
        // The command returns once the new vigil answers on the control
        // socket; then one GET /metrics. (Polling /metrics meanwhile would
        // load the loop the bench is timing: a render of 1,000 instances
        // each time.)
        const long long t0 = bench::now_ns();
        const bench::CliRun cli = bench::run_cli(binary, {"upgrade", "-c", config.string()},
                                                 (dir.path() / "upgrade.out").string(), err.string());
        double served = -1;
        while ((bench::now_ns() - t0) / 1e9 < 60) {
          if (upgrades_counted(port, &answered) > count) {
            served = (bench::now_ns() - t0) / 1e6;
            break;
          }
          bench::sleep_ms(1);
        }
        if (served < 0 || cli.exit_code != 0)
          throw bench::Broken("upgrade " + std::to_string(u) + " failed (exit " + std::to_string(cli.exit_code) +
                              "):\n" + bench::read_file(dir.path() / "upgrade.out") + bench::tail_of(err));
        handover_ms.push_back(served);
        command_ms.push_back(cli.wall_ms);
        std::printf("  upgrade %d: new vigil serving /metrics after %.1f ms; the command took %.1f ms\n", u, served,
                    cli.wall_ms);
        std::fflush(stdout);
      }
      bench::sleep_ms(300);  // the tickers write on; their last lines reach the files
      after = instances_now(port);
      if (vigil.terminate(60) < 0) throw bench::Broken("vigil did not exit within 60 s of SIGTERM");
    }
    std::size_t moved = 0, restarted = 0;
    for (const auto& [name, v] : before) {
      auto it = after.find(name);
      if (it == after.end() || it->second.first != v.first) ++moved;
      else if (it->second.second != v.second) ++restarted;
    }
    if (moved || restarted)
      throw bench::Broken(std::to_string(moved) + " instance(s) with another pid, " + std::to_string(restarted) +
                          " restarted across the upgrades");
    LogCheck logs;
    for (int i = 0; i < kTickers; ++i)
      check_log(dir.path() / "logs" / ("ticker-" + std::to_string(i) + ".out.log"), logs);
    std::printf("  %zu ticks logged: %zu lost, %zu twice; delay child write -> vigil's stamp: p50 %.0f ms, "
                "p99 %.0f ms, max %.0f ms\n",
                logs.lines, logs.lost, logs.twice, bench::median(logs.delays_ms),
                bench::percentile(logs.delays_ms, 99), bench::percentile(logs.delays_ms, 100));
    const std::string n = std::to_string(instances);
    const double h = bench::median(handover_ms);
    bench::result(n + " instances: upgrade -> new vigil serving (ms)", bench::fmt("%.1f", h), "-",
                  h < kTargetHandoverMs);
    bench::result("  `vigil upgrade` command wall time (ms)", bench::fmt("%.1f", bench::median(command_ms)), "-",
                  true);
    bench::result("  pids changed / restarts counted", std::to_string(moved) + " / " + std::to_string(restarted),
                  "0 / 0", true);
    bench::result("  log lines lost / written twice", std::to_string(logs.lost) + " / " + std::to_string(logs.twice),
                  "0 / 0", logs.lost == 0 && logs.twice == 0);
    bench::result("  log lines delayed, max (ms)", bench::fmt("%.0f", bench::percentile(logs.delays_ms, 100)), "-",
                  true);
    if (logs.lost || logs.twice) return 1;
  } catch (const bench::Broken& e) {
    std::fprintf(stderr, "upgrade_bench: BROKEN RUN: %s\n", e.what());
    return 1;
  }
  return 0;
}
