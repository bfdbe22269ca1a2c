// The status page with 1,000 instances: bytes per poll and vigil's CPU with
// one page open.
//
// The real binary (`vigil run`, log_level warn, the default 1 s
// sample_interval) with one program of 1,000 `sleep 3600` instances and
// [http] listen on a free loopback port. Once every instance is running and
// the sampling has settled (every tree read twice, so still ones are on
// their once-a-minute pace), one client acts as the open page
// (src/app/page/page.js), over one kept-alive connection as a browser
// would, with a browser's request headers:
//   - loading it: GET / and the three files it names (page.css, page.js,
//     favicon.svg), once: their sizes;
//   - seeding the sparklines, once: GET /api/v1/programs/sleeper/history
//     ?since=(3 minutes ago) (the page does it for at most 50 programs);
//   - every 2 s: GET /api/v1/vigil, /api/v1/programs and /api/v1/watches
//     (page.js poll()): bytes of the bodies and on the wire (request and
//     response, headers included; HTTP bytes, not TCP/IP's), for
//     /api/v1/programs alone and for the page's whole poll.
// vigil's CPU (/proc/PID/stat utime+stime) as % of a core over a window of
// --seconds with the page polling, against an equal window just before
// with no client at all, and the median of the polling window's 10 s
// slices (the slices without the still trees' pass show what polling
// alone costs). At the default of 60 s each window holds one of the still
// trees' once-a-minute /proc passes, in its middle; a shorter window may
// hold none, and then reads lower. The detail view (history every 5 s for
// one program, a log tail on demand) is not open.
//
//   page_bench [--instances 1000] [--seconds 60] [--vigil PATH] [--before PATH]
// (BENCH_PAGE_SECONDS sets the default of --seconds.) --vigil runs another
// build of vigil with the same client; --before PATH runs that build first,
// then this one, and prints both CPU figures (a before/after of a change).
// A run with 1,000 instances takes some 30 s + 2 windows.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdio>
#include <optional>

#include <nlohmann/json.hpp>

#include "../tests/integration/metrics_client.h"
#include "bench_util.h"
#include "sleepers.h"
#include "control_client.h"

namespace {

constexpr double kTargetCpuPercent = 1.0;
constexpr double kPollSeconds = 2.0;    // page.js POLL_MS
constexpr double kSparkSeconds = 180;   // page.js SPARK_POINTS * POLL_MS
constexpr double kSliceSeconds = 10;

// What Chromium sends with a fetch() from the page (page.js getJson, no
// token): the bytes a real poll puts on the wire, near enough.
const char* const kBrowserHeaders =
    "Connection: keep-alive\r\n"
    "sec-ch-ua-platform: \"Linux\"\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "sec-ch-ua: \"Chromium\";v=\"120\", \"Not?A_Brand\";v=\"8\"\r\n"
    "sec-ch-ua-mobile: ?0\r\n"
    "Accept: */*\r\n"
    "Sec-Fetch-Site: same-origin\r\n"
    "Sec-Fetch-Mode: cors\r\n"
    "Sec-Fetch-Dest: empty\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n";

struct Reply {
  int status = 0;
  std::size_t body_bytes = 0, wire_bytes = 0;  // wire: request + response
  std::string body;
};

// One kept-alive HTTP/1.1 connection to vigil, requests one at a time.
class Client {
 public:
  explicit Client(std::uint16_t port) : port_(port) { connect(); }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Reply get(const std::string& target) {
    const std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                            "\r\n" + kBrowserHeaders + "Referer: http://127.0.0.1:" + std::to_string(port_) +
                            "/\r\n\r\n";
    if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
      // vigil closed the idle connection (its timeout): a browser opens
      // another one, so does this.
      ::close(fd_);
      connect();
      if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
        throw bench::Broken("send failed");
    }
    std::string head;
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) fill(target);
    head = buf_.substr(0, end + 4);
    if (head.compare(0, 5, "HTTP/") != 0) throw bench::Broken(target + ": malformed HTTP answer");
    Reply r;
    r.status = std::atoi(head.c_str() + head.find(' ') + 1);
    const std::string lower = vigil::metrics_client::detail::lower(head);
    if (lower.find("transfer-encoding: chunked") != std::string::npos)
      throw bench::Broken(target + ": a chunked answer (this client reads Content-Length only)");
    const auto cl = lower.find("content-length:");
    if (cl == std::string::npos) throw bench::Broken(target + ": no Content-Length");
    r.body_bytes = std::strtoul(head.c_str() + cl + 15, nullptr, 10);
    while (buf_.size() < head.size() + r.body_bytes) fill(target);
    r.body = buf_.substr(head.size(), r.body_bytes);
    buf_.erase(0, head.size() + r.body_bytes);
    r.wire_bytes = req.size() + head.size() + r.body_bytes;
    return r;
  }

 private:
  void connect() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw bench::Broken("socket failed");
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port_);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      throw bench::Broken("connect 127.0.0.1:" + std::to_string(port_) + ": " + std::strerror(errno));
    buf_.clear();
  }
  void fill(const std::string& target) {
    char chunk[1 << 16];
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      int rc = ::poll(&p, 1, 10000);
      if (rc == 0) throw bench::Broken(target + ": no answer from vigil within 10 s");
      if (rc < 0 && errno == EINTR) continue;
      ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw bench::Broken(target + ": read: " + std::strerror(errno));
      if (n == 0) throw bench::Broken(target + ": vigil closed the connection mid-answer");
      buf_.append(chunk, static_cast<std::size_t>(n));
      return;
    }
  }

  std::uint16_t port_;
  int fd_ = -1;
  std::string buf_;
};

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Bytes of the requests of one poll, body and wire.
struct Bytes {
  std::size_t body = 0, wire = 0;
  void add(const Reply& r) {
    body += r.body_bytes;
    wire += r.wire_bytes;
  }
};

std::string kib(std::size_t bytes) { return bench::fmt("%.1f", static_cast<double>(bytes) / 1024); }

// What one run measured.
struct Figures {
  double idle_pct = 0, poll_pct = 0, slice_median_pct = 0;
  Bytes programs_only, poll, page, seed;
  std::string load_after;
};

// One vigil (`binary`), idle then with the page open: prints as it goes.
Figures measure(const std::string& binary, int instances, double seconds) {
  const std::string n = std::to_string(instances);
  std::printf("status page with %d instances of `sleep 3600`, one page polling every %.0f s for %.0f s (vigil %s)\n",
              instances, kPollSeconds, seconds, binary.c_str());
  Figures f;
  {  // vigil stopped and its folder gone before the next run
    bench::TempDir dir("page");
    auto config = dir.path() / "vigil.toml";
    auto socket = dir.path() / "vigil.sock";
    const std::uint16_t port = vigil::metrics_client::free_loopback_port();
    if (!port) throw bench::Broken("no free loopback port");
    bench::write_file(config, bench::sleepers_config(dir, socket, instances, port));
    auto err = dir.path() / "vigil.stderr";
    bench::VigilProcess vigil(binary, config, err);
    bench::wait_running(vigil, socket, instances, err);
    // Every tree has been read twice about 2 s after it runs: the still
    // ones are then on their once-a-minute pace, a pass of all 1,000 about
    // 62 s after this. Starting the windows 30 s from now puts a pass in
    // the middle of each 60 s window, not on a boundary.
    bench::sleep_ms(30000);
    std::string load = bench::read_file("/proc/loadavg");
    load = load.substr(0, load.find(' '));
    std::printf("  load average before the windows: %s\n", load.c_str());

    // Idle: no client at all.
    const double idle_c0 = bench::cpu_seconds(vigil.pid());
    const long long idle_w0 = bench::now_ns();
    bench::sleep_ms(seconds * 1000);
    const double idle_cpu = bench::cpu_seconds(vigil.pid()) - idle_c0;
    const double idle_wall = (bench::now_ns() - idle_w0) / 1e9;
    const double idle_pct = 100 * idle_cpu / idle_wall;
    std::printf("  idle, no client:  %.2f s CPU in %.1f s = %.3f%% of a core\n", idle_cpu, idle_wall, idle_pct);

    // The page opens: itself, then the sparklines' seed.
    Client page(port);
    Bytes load_bytes;
    std::printf("  the page:");
    for (const char* asset : {"/", "/page.css", "/page.js", "/favicon.svg"}) {
      Reply r = page.get(asset);
      if (r.status != 200) throw bench::Broken(std::string("GET ") + asset + ": status " + std::to_string(r.status));
      load_bytes.add(r);
      std::printf(" %s %zu B", asset, r.body_bytes);
    }
    std::printf("; %zu B of bodies, %zu B on the wire\n", load_bytes.body, load_bytes.wire);
    const Reply seed = page.get("/api/v1/programs/sleeper/history?since=" +
                                bench::fmt("%.3f", wall_seconds() - kSparkSeconds));
    if (seed.status != 200) throw bench::Broken("GET history: status " + std::to_string(seed.status));
    std::printf("  sparkline seed, once (history of the last %.0f s): %zu B body, %zu B on the wire\n", kSparkSeconds,
                seed.body_bytes, seed.wire_bytes);

    // Polling.
    std::vector<Bytes> polls;
    Bytes programs_only;
    std::vector<double> slice_pct;
    const double c0 = bench::cpu_seconds(vigil.pid());
    const long long w0 = bench::now_ns();
    double slice_c = c0;
    long long slice_w = w0;
    for (int k = 0;; ++k) {
      const long long due = w0 + static_cast<long long>(k * kPollSeconds * 1e9);
      if ((due - w0) / 1e9 >= seconds) {
        const long long end = w0 + static_cast<long long>(seconds * 1e9);
        if (end > bench::now_ns()) bench::sleep_ms((end - bench::now_ns()) / 1e6);
        break;
      }
      if (due > bench::now_ns()) bench::sleep_ms((due - bench::now_ns()) / 1e6);
      if ((bench::now_ns() - slice_w) / 1e9 >= kSliceSeconds - 0.5) {
        const double c = bench::cpu_seconds(vigil.pid());
        slice_pct.push_back(100 * (c - slice_c) / ((bench::now_ns() - slice_w) / 1e9));
        slice_c = c;
        slice_w = bench::now_ns();
      }
      Bytes poll;
      for (const char* target : {"/api/v1/vigil", "/api/v1/programs", "/api/v1/watches"}) {
        Reply r = page.get(target);
        if (r.status != 200) throw bench::Broken(std::string("GET ") + target + ": status " + std::to_string(r.status));
        poll.add(r);
        if (std::strcmp(target, "/api/v1/programs") == 0) {
          if (k == 0) {
            auto j = nlohmann::json::parse(r.body);
            if (!j.is_array() || j.size() != static_cast<std::size_t>(instances))
              throw bench::Broken("GET /api/v1/programs: " + std::to_string(j.size()) + " entries");
          }
          programs_only = Bytes{};
          programs_only.add(r);
        }
      }
      polls.push_back(poll);
    }
    const double poll_cpu = bench::cpu_seconds(vigil.pid()) - c0;
    const double poll_wall = (bench::now_ns() - w0) / 1e9;
    const double poll_pct = 100 * poll_cpu / poll_wall;
    if (bench::now_ns() - slice_w > 5e9)
      slice_pct.push_back(100 * (bench::cpu_seconds(vigil.pid()) - slice_c) / ((bench::now_ns() - slice_w) / 1e9));
    std::vector<double> body, wire;
    for (const auto& p : polls) {
      body.push_back(static_cast<double>(p.body));
      wire.push_back(static_cast<double>(p.wire));
    }
    const double poll_body = bench::median(body), poll_wire = bench::median(wire);
    std::printf("  polling, %zu polls: %.2f s CPU in %.1f s = %.3f%% of a core; 10 s slices: median %.3f%%, "
                "min %.3f%%, max %.3f%%\n",
                polls.size(), poll_cpu, poll_wall, poll_pct, bench::median(slice_pct),
                *std::min_element(slice_pct.begin(), slice_pct.end()),
                *std::max_element(slice_pct.begin(), slice_pct.end()));
    std::printf("  a poll: /api/v1/programs %zu B body, %zu B on the wire; the page's whole poll (vigil, programs, "
                "watches) %.0f B body, %.0f B on the wire\n",
                programs_only.body, programs_only.wire, poll_body, poll_wire);
    std::printf("  polling adds %.3f%% of a core to idle; %.1f KiB/s on the wire\n", poll_pct - idle_pct,
                poll_wire / kPollSeconds / 1024);
    load = bench::read_file("/proc/loadavg");
    load = load.substr(0, load.find(' '));

    if (vigil.terminate(60) < 0) throw bench::Broken("vigil did not exit within 60 s of SIGTERM");
    if (vigil.exit_code() != 0)
      throw bench::Broken("vigil exited " + std::to_string(vigil.exit_code()) + ":\n" + bench::tail_of(err));

    f.idle_pct = idle_pct;
    f.poll_pct = poll_pct;
    f.slice_median_pct = bench::median(slice_pct);
    f.programs_only = programs_only;
    f.poll.body = static_cast<std::size_t>(poll_body);
    f.poll.wire = static_cast<std::size_t>(poll_wire);
    f.page = load_bytes;
    f.seed.add(seed);
    f.load_after = load;
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  const int instances = static_cast<int>(bench::option(argc, argv, "--instances", 1000));
  const char* env_seconds = std::getenv("BENCH_PAGE_SECONDS");
  const double seconds = static_cast<double>(
      bench::option(argc, argv, "--seconds", env_seconds && *env_seconds ? std::atol(env_seconds) : 60));
  if (seconds < 10) {
    std::fprintf(stderr, "page_bench: --seconds must be at least 10\n");
    return 2;
  }
  std::string binary = VIGIL_BINARY, before;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--vigil") == 0) binary = argv[i + 1];
    if (std::strcmp(argv[i], "--before") == 0) before = argv[i + 1];
  }
  bench::prefer_tmpfs();
  ::signal(SIGPIPE, SIG_IGN);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each line as the run goes, into a file too
  const std::string n = std::to_string(instances);
  try {
    std::optional<Figures> was;
    if (!before.empty()) {
      std::printf("BEFORE: ");
      was = measure(before, instances, seconds);
      std::printf("AFTER: ");
    }
    const Figures f = measure(binary, instances, seconds);
    bench::result(n + " inst, page open: vigil CPU (% of a core)", bench::fmt("%.2f", f.poll_pct), "< 1%",
                  f.poll_pct < kTargetCpuPercent);
    if (was)
      bench::result("  before (--before): page open; idle (%)",
                    bench::fmt("%.2f", was->poll_pct) + "; " + bench::fmt("%.3f", was->idle_pct), "-", true);
    bench::result("  idle, no page (% of a core)", bench::fmt("%.3f", f.idle_pct), "-", true);
    bench::result("  polling, median of 10 s slices (%)", bench::fmt("%.2f", f.slice_median_pct), "-", true);
    bench::result("  poll: /api/v1/programs body; wire (KiB)",
                  kib(f.programs_only.body) + "; " + kib(f.programs_only.wire), "-", true);
    bench::result("  poll: page's 3 GETs body; wire (KiB)", kib(f.poll.body) + "; " + kib(f.poll.wire), "-", true);
    bench::result("  page load, once: page; history seed (KiB)", kib(f.page.wire) + "; " + kib(f.seed.wire), "-",
                  true);
    bench::result("  load average after the windows", f.load_after, "-", true);
  } catch (const std::exception& e) {  // bench::Broken, or an answer that did not parse
    std::fprintf(stderr, "page_bench: BROKEN RUN: %s\n", e.what());
    return 1;
  }
  return 0;
}
