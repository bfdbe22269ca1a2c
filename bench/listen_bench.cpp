// Zero-downtime restarts on a socket vigil holds (`listen`).
//
// The real binary (`vigil run`, log_level warn) with two programs of 4
// `bench_child serve` instances each (a fork-free C HTTP server: blocking
// accept, one 200 answer per connection, "Connection: close"; ready =
// "notify", READY=1 once it has its socket; on SIGTERM it finishes the
// connection at hand and exits):
//   web     listen = ["127.0.0.1:P"]: one socket vigil binds, every
//           instance accepts from it at fd 3;
//   direct  port_base = P+1: each instance binds its own port, nothing in
//           front.
// The load generator is this process: `--threads` epoll loops sharing
// `--connections` connections, each one request on a new connection
// (connect, GET, read to EOF), the next opened as soon as one ends; against
// direct it goes round robin over the 4 ports. Ports are below the
// ephemeral range, so the client's own connections never take one.
//   1. Requests per second through web and through direct, over a window of
//      `--seconds` after 0.5 s of warm-up; the two alternate so that both
//      see the same machine load; median of `--runs`. vigil is not on the
//      data path in either: the figure says what the shared accept queue
//      costs against four of them, and vigil's CPU meanwhile is printed.
//   2. The load on web while `vigil restart web -c CONFIG` (the CLI, which
//      blocks until the roll is over) runs `--restarts` times back to back:
//      requests, refused (ECONNREFUSED), failed (reset, timeout, short or
//      not 200; the first few reasons are printed), and the CLI's wall time
//      per roll of 4 (it polls every 100 ms, so that is its resolution).
//      Each roll must leave 4 new pids, each running.
//   3. The control: the same rolls of direct under the same load, round
//      robin over its 4 ports. A port is closed while its instance is
//      replaced, so requests are refused (and those queued on the closing
//      socket reset): what the held socket saves, and proof that the
//      counters of 2 see a refusal when there is one.
// A request refused or failed, or a roll that failed, makes the exit
// status non-zero: it is a finding (target 0).
//
//   listen_bench [--runs 5] [--seconds 3] [--connections 32] [--threads 2] [--restarts 10]
#include <sys/epoll.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "control_client.h"
#include "fd.h"

namespace {

constexpr int kInstances = 4;
constexpr double kWarmupS = 0.5;
constexpr long long kRequestTimeoutNs = 10'000'000'000LL;
// A whole answer of bench_child serve is 85 bytes; anything past this is
// not its answer.
constexpr std::size_t kMaxResponseBytes = 1024;
constexpr std::size_t kMaxReasons = 8;

const char kRequest[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

// What one load run saw. ok_in_window counts the answers that completed
// inside the measuring window; the rest count every request.
struct LoadCounts {
  std::uint64_t ok = 0, refused = 0, failed = 0, ok_in_window = 0;
  std::vector<std::string> reasons;  // the first few failures, for a diagnosis

  void add(const LoadCounts& o) {
    ok += o.ok;
    refused += o.refused;
    failed += o.failed;
    ok_in_window += o.ok_in_window;
    for (const auto& r : o.reasons)
      if (reasons.size() < kMaxReasons) reasons.push_back(r);
  }
};

// One epoll loop of the load generator: `slots` connections at a time, each
// a single request, to `ports` in turn.
class LoadLoop {
 public:
  LoadLoop(std::vector<std::uint16_t> ports, int slots, std::size_t first_port, long long window_start_ns,
           long long window_end_ns, const std::atomic<bool>& stop)
      : ports_(std::move(ports)),
        slots_(static_cast<std::size_t>(slots)),
        next_port_(first_port),
        window_start_ns_(window_start_ns),
        window_end_ns_(window_end_ns),
        stop_(stop) {}

  // Until `stop` is set: then no new connection, and the open ones are
  // finished (each is bounded by kRequestTimeoutNs).
  LoadCounts run() {
    epoll_ = vigil::UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) throw bench::Broken(std::string("epoll_create1: ") + std::strerror(errno));
    std::vector<epoll_event> events(slots_.size());
    for (;;) {
      const bool stopping = stop_.load(std::memory_order_relaxed);
      std::size_t open = 0;
      for (std::size_t i = 0; i < slots_.size(); ++i) {
        if (!slots_[i].fd && !stopping) open_slot(i);
        open += static_cast<bool>(slots_[i].fd);
      }
      if (stopping && open == 0) break;
      int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), 100);
      if (n < 0 && errno != EINTR) throw bench::Broken(std::string("epoll_wait: ") + std::strerror(errno));
      for (int k = 0; k < n; ++k) on_event(events[static_cast<std::size_t>(k)].data.u32);
      expire(bench::now_ns());
    }
    return counts_;
  }

 private:
  struct Slot {
    vigil::UniqueFd fd;
    bool connected = false;
    std::uint16_t port = 0;
    long long started_ns = 0;
    std::string response;
  };

  void fail(std::size_t i, const std::string& why) {
    ++counts_.failed;
    if (counts_.reasons.size() < kMaxReasons)
      counts_.reasons.push_back("127.0.0.1:" + std::to_string(slots_[i].port) + ": " + why);
    slots_[i].fd.reset();
  }

  void refuse(std::size_t i) {
    ++counts_.refused;
    if (counts_.reasons.size() < kMaxReasons)
      counts_.reasons.push_back("127.0.0.1:" + std::to_string(slots_[i].port) + ": connection refused");
    slots_[i].fd.reset();
  }

  void open_slot(std::size_t i) {
    Slot& s = slots_[i];
    s.port = ports_[next_port_++ % ports_.size()];
    s.connected = false;
    s.response.clear();
    s.started_ns = bench::now_ns();
    s.fd = vigil::UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!s.fd) return fail(i, std::string("socket: ") + std::strerror(errno));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(s.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    epoll_event ev{};
    ev.data.u32 = static_cast<std::uint32_t>(i);
    if (::connect(s.fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
      if (!send_request(i)) return;
      ev.events = EPOLLIN;
    } else if (errno == EINPROGRESS) {
      ev.events = EPOLLOUT;
    } else if (errno == ECONNREFUSED) {
      return refuse(i);
    } else {
      return fail(i, std::string("connect: ") + std::strerror(errno));
    }
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, s.fd.get(), &ev) != 0)
      throw bench::Broken(std::string("epoll_ctl: ") + std::strerror(errno));
  }

  bool send_request(std::size_t i) {
    Slot& s = slots_[i];
    s.connected = true;
    ssize_t n = ::send(s.fd.get(), kRequest, sizeof kRequest - 1, MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(sizeof kRequest - 1)) return true;
    // A fresh socket's send buffer takes the whole request at once.
    fail(i, n < 0 ? std::string("send: ") + std::strerror(errno) : "short send");
    return false;
  }

  void on_event(std::uint32_t i) {
    Slot& s = slots_[i];
    if (!s.fd) return;
    if (!s.connected) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(s.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == ECONNREFUSED) return refuse(i);
      if (err != 0) return fail(i, std::string("connect: ") + std::strerror(err));
      if (!send_request(i)) return;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = i;
      if (::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, s.fd.get(), &ev) != 0)
        throw bench::Broken(std::string("epoll_ctl: ") + std::strerror(errno));
      return;
    }
    char buf[512];
    for (;;) {
      ssize_t n = ::read(s.fd.get(), buf, sizeof buf);
      if (n > 0) {
        if (s.response.size() + static_cast<std::size_t>(n) > kMaxResponseBytes)
          return fail(i, "answer over " + std::to_string(kMaxResponseBytes) + " bytes");
        s.response.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) return finish(i);
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      return fail(i, std::string(errno == ECONNRESET ? "reset" : "read: ") +
                         (errno == ECONNRESET ? "" : std::strerror(errno)) + " after " +
                         std::to_string(s.response.size()) + " bytes");
    }
  }

  // EOF: the whole answer is a 200 with its body.
  void finish(std::size_t i) {
    const std::string& r = slots_[i].response;
    const auto head_end = r.find("\r\n\r\n");
    if (!r.starts_with("HTTP/1.1 200 ") || head_end == std::string::npos ||
        r.compare(head_end + 4, std::string::npos, "ok\n") != 0)
      return fail(i, r.empty() ? "closed with no answer" : "not a whole 200: \"" + r.substr(0, r.find('\r')) + "\" (" +
                                                            std::to_string(r.size()) + " bytes)");
    ++counts_.ok;
    const long long t = bench::now_ns();
    counts_.ok_in_window += t >= window_start_ns_ && t < window_end_ns_;
    slots_[i].fd.reset();
  }

  void expire(long long now) {
    if (now - last_expiry_ns_ < 100'000'000) return;
    last_expiry_ns_ = now;
    for (std::size_t i = 0; i < slots_.size(); ++i)
      if (slots_[i].fd && now - slots_[i].started_ns > kRequestTimeoutNs)
        fail(i, "no whole answer within " + std::to_string(kRequestTimeoutNs / 1'000'000'000) + " s");
  }

  std::vector<std::uint16_t> ports_;
  std::vector<Slot> slots_;
  std::size_t next_port_;
  long long window_start_ns_, window_end_ns_;
  const std::atomic<bool>& stop_;
  vigil::UniqueFd epoll_;
  LoadCounts counts_;
  long long last_expiry_ns_ = 0;
};

// The load generator: `threads` LoadLoops from construction to stop().
class Load {
 public:
  Load(const std::vector<std::uint16_t>& ports, int connections, int threads, double window_s) {
    const long long start = bench::now_ns();
    window_start_ns_ = start + static_cast<long long>(kWarmupS * 1e9);
    window_end_ns_ = window_start_ns_ + static_cast<long long>(window_s * 1e9);
    for (int t = 0; t < threads; ++t) {
      const int slots = connections / threads + (t < connections % threads);
      threads_.emplace_back([this, ports, slots, t] {
        LoadCounts c;
        try {
          c = LoadLoop(ports, slots, static_cast<std::size_t>(t), window_start_ns_, window_end_ns_, stop_).run();
        } catch (const std::exception& e) {
          std::lock_guard<std::mutex> lock(mutex_);
          error_ = e.what();
        }
        std::lock_guard<std::mutex> lock(mutex_);
        counts_.add(c);
      });
    }
  }
  // Never throws: a Broken of the loops is stop()'s to report.
  ~Load() {
    stop_.store(true);
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  Load(const Load&) = delete;
  Load& operator=(const Load&) = delete;

  // Sleeps to the end of the measuring window (pacing, not synchronisation).
  void wait_for_window() const {
    const long long left = window_end_ns_ - bench::now_ns();
    if (left > 0) bench::sleep_ms(static_cast<double>(left) / 1e6);
  }

  LoadCounts stop() {
    stop_.store(true);
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    if (!error_.empty()) throw bench::Broken("load generator: " + error_);
    return counts_;
  }
  double window_s() const { return static_cast<double>(window_end_ns_ - window_start_ns_) / 1e9; }

 private:
  std::atomic<bool> stop_{false};
  long long window_start_ns_ = 0, window_end_ns_ = 0;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  LoadCounts counts_;
  std::string error_;
};

struct Options {
  int runs, connections, threads, restarts;
  double seconds;
};

std::string config_text(const bench::TempDir& dir, int held_port, int port_base) {
  const std::string program = "command = [" + bench::toml_str(BENCH_CHILD) + ", \"serve\"]\n"
                              "instances = " + std::to_string(kInstances) + "\n"
                              "ready = \"notify\"\n"
                              "start_timeout = \"10s\"\n"
                              "stop_timeout = \"10s\"\n";
  return "[vigil]\n"
         "log_dir = " + bench::toml_str((dir.path() / "logs").string()) + "\n"
         "control_socket = " + bench::toml_str((dir.path() / "vigil.sock").string()) + "\n"
         "log_level = \"warn\"\n"
         "\n"
         "[programs.web]\n" + program +
         "listen = [\"127.0.0.1:" + std::to_string(held_port) + "\"]\n"
         "\n"
         "[programs.direct]\n" + program +
         "port_base = " + std::to_string(port_base) + "\n";
}

// index -> pid of `program`'s instances that are running; empty when vigil
// does not answer.
std::map<int, int> running_pids(const std::filesystem::path& socket, const std::string& program) {
  std::string error;
  auto r = vigil::control_request(socket, "GET", "/api/v1/programs", &error);
  std::map<int, int> out;
  if (!r || r->status != 200) return out;
  for (const auto& i : nlohmann::json::parse(r->body))
    if (i["name"] == program && i["state"] == "running" && i["pid"].is_number())
      out[i["index"].get<int>()] = i["pid"].get<int>();
  return out;
}

void wait_all_running(bench::VigilProcess& vigil, const std::filesystem::path& socket,
                      const std::filesystem::path& err) {
  const long long t0 = bench::now_ns();
  while (running_pids(socket, "web").size() != kInstances || running_pids(socket, "direct").size() != kInstances) {
    if (!vigil.alive())
      throw bench::Broken("vigil exited (code " + std::to_string(vigil.exit_code()) + ") early:\n" +
                          bench::tail_of(err));
    if ((bench::now_ns() - t0) / 1e9 > 30)
      throw bench::Broken("the 8 servers were not all running within 30 s:\n" + bench::tail_of(err));
    bench::sleep_ms(20);
  }
}

void print_reasons(const LoadCounts& c) {
  if (!c.reasons.empty()) std::printf("  the first %zu requests refused or failed:\n", c.reasons.size());
  for (const auto& r : c.reasons) std::printf("    %s\n", r.c_str());
}

struct Throughput {
  double held_rps = 0, direct_rps = 0;
};

// One timed load run on `ports`: answers per second inside the window, and
// vigil's CPU share meanwhile (it is on neither data path).
double measure(const std::vector<std::uint16_t>& ports, const Options& o, pid_t vigil_pid, const char* what,
               int run) {
  const double cpu0 = bench::cpu_seconds(vigil_pid);
  const long long t0 = bench::now_ns();
  Load load(ports, o.connections, o.threads, o.seconds);
  load.wait_for_window();
  const LoadCounts c = load.stop();
  const double wall_s = (bench::now_ns() - t0) / 1e9;
  const double vigil_cpu = (bench::cpu_seconds(vigil_pid) - cpu0) / wall_s * 100;
  const double rps = static_cast<double>(c.ok_in_window) / load.window_s();
  std::printf("  %s run %d: %8.0f req/s  (%llu answered, %llu refused, %llu failed; vigil CPU %.1f%%)\n", what,
              run, rps, static_cast<unsigned long long>(c.ok), static_cast<unsigned long long>(c.refused),
              static_cast<unsigned long long>(c.failed), vigil_cpu);
  std::fflush(stdout);
  if (c.refused || c.failed) {
    print_reasons(c);
    throw bench::Broken(std::string(what) + ": requests refused or failed with nothing restarting");
  }
  return rps;
}

struct RollResult {
  LoadCounts load;
  std::vector<double> roll_s;
  int rolls_failed = 0;
};

// `o.restarts` rolls of `program` through the CLI, back to back, under
// load on `ports`.
RollResult rolling_restarts(const std::string& program, const std::vector<std::uint16_t>& ports,
                            const std::filesystem::path& config, const std::filesystem::path& socket,
                            const Options& o, const bench::TempDir& dir) {
  RollResult r;
  const std::string cli_out = (dir.path() / "restart.out").string();
  const std::string cli_err = (dir.path() / "restart.err").string();
  Load load(ports, o.connections, o.threads, 0);
  bench::sleep_ms(kWarmupS * 1e3);  // the load under way before the first roll
  for (int k = 1; k <= o.restarts; ++k) {
    const auto before = running_pids(socket, program);
    const bench::CliRun cli =
        bench::run_cli(VIGIL_BINARY, {"restart", program, "-c", config.string()}, cli_out, cli_err);
    const auto after = running_pids(socket, program);
    int replaced = 0;
    for (const auto& [index, pid] : after) replaced += before.count(index) && before.at(index) != pid;
    r.roll_s.push_back(cli.wall_ms / 1e3);
    const bool ok = cli.exit_code == 0 && replaced == kInstances;
    r.rolls_failed += !ok;
    std::printf("  roll %2d: %.2f s, %d of %d instances replaced and running, CLI exit %d\n", k, cli.wall_ms / 1e3,
                replaced, kInstances, cli.exit_code);
    if (!ok) std::printf("%s", bench::tail_of(cli_err).c_str());
    std::fflush(stdout);
  }
  bench::sleep_ms(kWarmupS * 1e3);  // and after the last
  r.load = load.stop();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.runs = static_cast<int>(bench::option(argc, argv, "--runs", 5));
  o.seconds = static_cast<double>(bench::option(argc, argv, "--seconds", 3));
  o.connections = static_cast<int>(bench::option(argc, argv, "--connections", 32));
  o.threads = static_cast<int>(bench::option(argc, argv, "--threads", 2));
  o.restarts = static_cast<int>(bench::option(argc, argv, "--restarts", 10));
  if (o.runs < 1 || o.seconds <= 0 || o.threads < 1 || o.connections < o.threads || o.restarts < 1) {
    std::fprintf(stderr, "listen_bench: --runs, --seconds, --restarts >= 1 and --connections >= --threads >= 1\n");
    return 2;
  }
  try {
    bench::TempDir dir("listen");
    const int base = bench::find_port_base(1 + kInstances);
    const auto held = static_cast<std::uint16_t>(base);
    std::vector<std::uint16_t> direct;
    for (int i = 1; i <= kInstances; ++i) direct.push_back(static_cast<std::uint16_t>(base + i));
    const auto config = dir.path() / "vigil.toml";
    const auto socket = dir.path() / "vigil.sock";
    const auto err = dir.path() / "vigil.stderr";
    bench::write_file(config, config_text(dir, base, base + 1));
    std::printf("held socket vs own ports: %d x bench_child serve (static: %s), one request per connection,\n"
                "  %d connections over %d client threads, %.0f s windows x %d runs; held 127.0.0.1:%d, own ports"
                " %d-%d\n",
                kInstances, BENCH_CHILD_STATIC ? "yes" : "no", o.connections, o.threads, o.seconds, o.runs, base,
                base + 1, base + kInstances);
    std::fflush(stdout);
    bench::VigilProcess vigil(VIGIL_BINARY, config, err);
    wait_all_running(vigil, socket, err);

    std::vector<double> held_rps, direct_rps, ratio;
    for (int r = 1; r <= o.runs; ++r) {
      const double h = measure({held}, o, vigil.pid(), "held socket", r);
      const double d = measure(direct, o, vigil.pid(), "own ports  ", r);
      held_rps.push_back(h);
      direct_rps.push_back(d);
      ratio.push_back(h / d);
    }

    std::printf("rolling restarts: `vigil restart web` x %d, back to back, under the same load\n", o.restarts);
    std::fflush(stdout);
    const RollResult roll = rolling_restarts("web", {held}, config, socket, o, dir);
    print_reasons(roll.load);
    std::printf("control: `vigil restart direct` x %d (own ports, round robin), under the same load\n", o.restarts);
    std::fflush(stdout);
    const RollResult control = rolling_restarts("direct", direct, config, socket, o, dir);
    print_reasons(control.load);
    if (!vigil.alive()) throw bench::Broken("vigil exited during the rolling restarts:\n" + bench::tail_of(err));
    if (vigil.terminate(30) < 0) throw bench::Broken("vigil did not exit within 30 s of SIGTERM");
    if (vigil.exit_code() != 0)
      throw bench::Broken("vigil exited " + std::to_string(vigil.exit_code()) + ":\n" + bench::tail_of(err));

    const auto& c = roll.load;
    const auto total = c.ok + c.refused + c.failed;
    bench::result("held socket, 4 instances (req/s)", bench::fmt("%.0f", bench::median(held_rps)), "-", true);
    bench::result("own ports, 4 instances (req/s)", bench::fmt("%.0f", bench::median(direct_rps)), "-", true);
    bench::result("  held / own ports, median of run ratios", bench::fmt("%.3f", bench::median(ratio)), "-", true);
    bench::result(std::to_string(o.restarts) + " rolls under load: requests", std::to_string(total), "-", true);
    bench::result("  refused (ECONNREFUSED)", std::to_string(c.refused), "0", c.refused == 0);
    bench::result("  failed (reset/short/non-200)", std::to_string(c.failed), "0", c.failed == 0);
    bench::result("  rolls failed", std::to_string(roll.rolls_failed), "0", roll.rolls_failed == 0);
    bench::result("roll of 4 instances, median (s)", bench::fmt("%.2f", bench::median(roll.roll_s)), "-", true);
    const auto& k = control.load;
    bench::result("control, own ports: requests", std::to_string(k.ok + k.refused + k.failed), "-", true);
    bench::result("  refused / failed",
                  std::to_string(k.refused) + " / " + std::to_string(k.failed), "-", true);
    if (control.rolls_failed)
      std::printf("  (%d rolls of direct failed)\n", control.rolls_failed);
    if (c.refused || c.failed || roll.rolls_failed) {
      std::fprintf(stderr, "listen_bench: %llu refused, %llu failed, %d rolls failed during rolling restarts\n",
                   static_cast<unsigned long long>(c.refused), static_cast<unsigned long long>(c.failed),
                   roll.rolls_failed);
      return 1;
    }
  } catch (const bench::Broken& e) {
    std::fprintf(stderr, "listen_bench: BROKEN RUN: %s\n", e.what());
    return 1;
  }
  return 0;
}
