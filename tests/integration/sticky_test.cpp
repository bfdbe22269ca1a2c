// The sticky proxy ([programs.X.sticky]) in the real vigil binary, with
// real backends (tests/integration/sticky_backend.py, one per instance on
// its PORT) and real clients from distinct loopback addresses: each client
// stays on one instance; a killed instance's clients, and only they, move
// and come back; the connections per instance reach the API and `vigil
// status`; 1 GiB to a slow reader keeps vigil's memory bounded; a rolling
// restart under load fails no request; a reload keeps the proxy and its
// connections, or moves it to a new address; an upgrade in place keeps the
// listener and every open connection with the bytes it held.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "control_harness.h"
#include "hammer.h"
#include "harness.h"

namespace vigil::it {
namespace {

using namespace control;

// A TCP connection from 127.0.0.N to 127.0.0.1:port (the proxy hashes the
// source address, so N is the client's identity); empty on failure.
UniqueFd connect_from(int n, std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr.s_addr = htonl(0x7f000000u | static_cast<std::uint32_t>(n));
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
      ::connect(fd.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0)
    return UniqueFd();
  return fd;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// One '\n'-terminated line (without it); nullopt on EOF, error or timeout.
std::optional<std::string> read_line(int fd) {
  std::string line;
  char c = 0;
  while (::recv(fd, &c, 1, 0) == 1) {
    if (c == '\n') return line;
    line += c;
  }
  return std::nullopt;
}

struct Who {
  int index = -1;
  int pid = 0;
};

// "WHO" on an open connection: the instance behind it.
std::optional<Who> ask(int fd) {
  if (!send_all(fd, "WHO\n")) return std::nullopt;
  auto line = read_line(fd);
  Who w;
  if (!line || std::sscanf(line->c_str(), "%d %d", &w.index, &w.pid) != 2) return std::nullopt;
  return w;
}

// A new connection from client n: the instance it reached.
std::optional<Who> who(int n, std::uint16_t port) {
  UniqueFd fd = connect_from(n, port);
  if (!fd) return std::nullopt;
  return ask(fd.get());
}

// CRC-32 (IEEE), as Python's zlib.crc32 computes it, continued from `crc`.
std::uint32_t crc32(std::uint32_t crc, const unsigned char* p, std::size_t n) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

// `total` bytes (1 MiB chunks, no two alike) written to `fd` on a thread of
// its own as fast as the proxy takes them, and their CRC-32.
struct Stream {
  Stream(int fd, std::uint64_t total)
      : thread([this, fd, total] {
          std::vector<unsigned char> chunk(1 << 20);
          for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<unsigned char>(i * 7 + 3);
          std::uint64_t left = total;
          sent = true;
          for (std::uint64_t k = 0; left > 0; ++k) {
            chunk[0] = static_cast<unsigned char>(k);
            const std::size_t n = std::min<std::uint64_t>(left, chunk.size());
            crc = crc32(crc, chunk.data(), n);
            if (!send_all(fd, std::string_view(reinterpret_cast<char*>(chunk.data()), n))) {
              sent = false;
              break;
            }
            left -= n;
          }
          done = true;
        }) {}
  ~Stream() {
    if (thread.joinable()) thread.join();
  }
  std::atomic<bool> done{false};
  std::uint32_t crc = 0;
  bool sent = false;
  std::thread thread;  // last: the fields it writes are made before it starts
};

class StickyTest : public BinaryTest {
 protected:
  // vigil with program "chat": `instances` backends behind a sticky
  // listener, each ready once its port answers.
  // `wrapper`: a command that execs vigil (`/usr/bin/env VAR=VALUE`).
  void start(int instances, std::string_view sticky_extra = "", std::string_view program_extra = "",
             const std::vector<std::string>& wrapper = {}) {
    base_ = free_port_run(instances);
    do port_ = free_port();
    while (port_ >= base_ && port_ < base_ + instances);
    vigil_ = std::make_unique<VigilProcess>(
        dir_, std::vector<std::string>{"run", "-c", write_config(config(instances, port_, sticky_extra, program_extra)).string()},
        "vigil.output", wrapper);
    Expected want;
    for (int i = 0; i < instances; ++i) want[{"chat", i}] = "running";
    const Json all = wait_for_states(socket(), want);
    ASSERT_EQ(all.size(), static_cast<std::size_t>(instances)) << vigil_->output();
  }

  std::string config(int instances, std::uint16_t port, std::string_view sticky_extra,
                     std::string_view program_extra) const {
    const std::string backend = (source_dir() / "tests/integration/sticky_backend.py").string();
    return "[vigil]\nlog_level = \"debug\"\n"
           "[programs.chat]\ncommand = " + toml_array({"python3", backend}) +
           "\ninstances = " + std::to_string(instances) + "\nport_base = " + std::to_string(base_) +
           "\nready = \"probe\"\nstop_timeout = \"20s\"\n" + std::string(program_extra) +
           "\n[programs.chat.probe]\ntcp = \"127.0.0.1:{port}\"\ninterval = \"200ms\"\n"
           "timeout = \"2s\"\ninitial_delay = \"0s\"\n"
           "[programs.chat.sticky]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n" +
           std::string(sticky_extra) + "\n";
  }

  fs::path socket() const { return dir_ / "vigil.sock"; }

  std::uint16_t base_ = 0;
  std::uint16_t port_ = 0;
};

constexpr int kClients = 60;  // sources 127.0.0.2 ... 127.0.0.61

TEST_F(StickyTest, EachClientStaysOnItsInstanceAndOnlyAKilledInstancesClientsMoveAndReturn) {
  ASSERT_NO_FATAL_FAILURE(start(4, "", "restart = \"never\""));
  std::map<int, int> home;  // client -> instance
  std::set<int> used;
  for (int n = 2; n < 2 + kClients; ++n) {
    auto w = who(n, port_);
    ASSERT_TRUE(w) << "client " << n;
    home[n] = w->index;
    used.insert(w->index);
    for (int again = 0; again < 2; ++again) {
      auto w2 = who(n, port_);
      ASSERT_TRUE(w2);
      EXPECT_EQ(w2->index, w->index) << "client " << n << " moved without a reason";
    }
  }
  EXPECT_GE(used.size(), 3u) << "60 clients over 4 instances";

  // SIGKILL the instance of client 2; restart = "never" keeps it down.
  const int gone = home[2];
  const Json all = *api_instances(socket());
  const int victim = pid_of(find_instance(all, "chat", gone));
  ASSERT_GT(victim, 0);
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  ASSERT_TRUE(poll_until([&] {
    auto w = who(2, port_);
    return w && w->index != gone;
  })) << vigil_->output();
  std::map<int, int> moved;
  for (const auto& [n, index] : home) {
    auto w = who(n, port_);
    ASSERT_TRUE(w) << "client " << n << " found no instance";
    if (index == gone) {
      EXPECT_NE(w->index, gone);
      moved[n] = w->index;
      auto w2 = who(n, port_);
      ASSERT_TRUE(w2);
      EXPECT_EQ(w2->index, w->index) << "a moved client must stay where it went";
    } else {
      EXPECT_EQ(w->index, index) << "client " << n << " of a live instance moved";
    }
  }
  EXPECT_FALSE(moved.empty());

  // Back: its clients return, and only they had moved.
  auto r = run_cli(dir_.path(), {"start", "chat", "-c", (dir_ / "vigil.toml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(poll_until([&] {
    auto w = who(2, port_);
    return w && w->index == gone;
  })) << vigil_->output();
  for (const auto& [n, index] : home) {
    auto w = who(n, port_);
    ASSERT_TRUE(w);
    EXPECT_EQ(w->index, index) << "client " << n << " did not return";
  }
}

TEST_F(StickyTest, OpenConnectionsPerInstanceReachTheApiAndVigilStatus) {
  ASSERT_NO_FATAL_FAILURE(start(2));
  // Connections held open from 12 clients, each asked once.
  std::vector<UniqueFd> open;
  std::map<int, std::uint64_t> per_instance;
  for (int n = 2; n < 14; ++n) {
    open.push_back(connect_from(n, port_));
    ASSERT_TRUE(open.back());
    auto w = ask(open.back().get());
    ASSERT_TRUE(w);
    ++per_instance[w->index];
  }
  Json all;
  ASSERT_TRUE(poll_until([&] {
    auto a = api_instances(socket());
    if (!a) return false;
    all = *a;
    for (int i = 0; i < 2; ++i) {
      const Json s = find_instance(all, "chat", i)["sticky"];
      if (!s.is_object() || s["connections"].get<std::uint64_t>() != per_instance[i]) return false;
    }
    return true;
  })) << all.dump();
  const Json s0 = find_instance(all, "chat", 0)["sticky"];
  EXPECT_EQ(s0["listen"], "127.0.0.1:" + std::to_string(port_));
  EXPECT_EQ(s0["routable"], true);
  EXPECT_GE(s0["bytes_in"].get<std::uint64_t>(), 4 * per_instance[0]);

  auto r = run_cli(dir_.path(), {"status", "-c", (dir_ / "vigil.toml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("CONNS"), std::string::npos) << r.out;

  open.clear();  // closed by the clients: the counts go back to 0
  EXPECT_TRUE(poll_until([&] {
    auto a = api_instances(socket());
    return a && find_instance(*a, "chat", 0)["sticky"]["connections"] == 0 &&
           find_instance(*a, "chat", 1)["sticky"]["connections"] == 0;
  }));
}

TEST_F(StickyTest, OneGibToASlowReaderKeepsVigilsMemoryBounded) {
  ASSERT_NO_FATAL_FAILURE(start(1));
  const auto before = status_kib(vigil_->pid(), "VmRSS");
  ASSERT_TRUE(before);
  UniqueFd fd = connect_from(2, port_);
  ASSERT_TRUE(fd);
  constexpr std::uint64_t kTotal = 1ull << 30;
  // The backend pauses 20 ms after every 8 MiB: 128 pauses, while this
  // side writes as fast as the proxy lets it.
  ASSERT_TRUE(send_all(fd.get(), "SINK " + std::to_string(kTotal) + " 0.02\n"));
  Stream stream(fd.get(), kTotal);
  std::uint64_t peak = *before;
  // Sampling vigil's memory while the bytes flow (each sample a poll step).
  poll_until(
      [&] {
        if (auto kib = status_kib(vigil_->pid(), "VmRSS")) peak = std::max(peak, *kib);
        return stream.done.load();
      },
      std::chrono::seconds(180), std::chrono::milliseconds(20));
  stream.thread.join();
  ASSERT_TRUE(stream.sent) << "the proxy stopped taking bytes";
  auto answer = read_line(fd.get());
  ASSERT_TRUE(answer);
  EXPECT_EQ(*answer, std::to_string(kTotal) + " " + std::to_string(stream.crc));
  // Back-pressure: what vigil holds for the connection is bounded (64 KiB
  // a direction), whatever the volume. Sanitizer builds keep freed memory
  // in quarantine.
  const std::uint64_t bound_kib = kAddressSanitizer ? 256 * 1024 : 32 * 1024;
  EXPECT_LT(peak - *before, bound_kib) << "vigil grew from " << *before << " KiB to " << peak << " KiB";
  auto all = api_instances(socket());
  ASSERT_TRUE(all);
  EXPECT_GE(find_instance(*all, "chat", 0)["sticky"]["bytes_in"].get<std::uint64_t>(), kTotal);
}

TEST_F(StickyTest, RollingRestartsUnderLoadFailNoRequest) {
  ASSERT_NO_FATAL_FAILURE(start(4));
  Hammer hammer(dir_, "hammer", port_);
  ASSERT_TRUE(hammer.started());
  // Requests flow before the first roll.
  auto accepted = [&] {
    std::uint64_t n = 0;
    if (auto all = api_instances(socket()))
      for (const auto& i : *all) n += i["sticky"]["accepted"].get<std::uint64_t>();
    return n;
  };
  ASSERT_TRUE(poll_until([&] { return accepted() > 50; }));
  for (int roll = 0; roll < 2; ++roll) {
    auto r = run_cli(dir_.path(), {"restart", "chat", "-c", (dir_ / "vigil.toml").string()}, {},
                     std::chrono::seconds(60));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  const std::uint64_t after_rolls = accepted();
  ASSERT_TRUE(poll_until([&] { return accepted() > after_rolls + 50; }));
  const std::string line = hammer.stop();
  const auto [ok, refused, failed] = counts(line);
  EXPECT_GT(ok, 0) << line;
  EXPECT_EQ(refused, 0) << line << "\n" << hammer.errors();
  EXPECT_EQ(failed, 0) << line << "\n" << hammer.errors();
  EXPECT_GE(fewest_running(vigil_->output(), "chat", 4), 3);
}

TEST_F(StickyTest, AReloadKeepsTheProxyAndItsConnectionsOrMovesItToANewAddress) {
  ASSERT_NO_FATAL_FAILURE(start(2));
  UniqueFd held = connect_from(2, port_);
  ASSERT_TRUE(held);
  ASSERT_TRUE(ask(held.get()));
  const fs::path file = dir_ / "vigil.toml";
  // Other sticky settings: the same proxy, the open connection goes on.
  write_config(config(2, port_, "idle_timeout = \"1h\"\nmax_connections = 500", ""));
  auto r = run_cli(dir_.path(), {"reload", "-c", file.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(ask(held.get())) << "the open connection was cut by a reload that kept the address";
  // A new address: bound, the old one closed.
  std::uint16_t moved = free_port();
  while (moved >= base_ && moved < base_ + 2) moved = free_port();
  write_config(config(2, moved, "", ""));
  r = run_cli(dir_.path(), {"reload", "-c", file.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(who(3, moved));
  EXPECT_FALSE(connect_from(3, port_)) << "the old address still accepts";
}

// `vigil upgrade` with a sticky proxy: the listener is handed over (no
// connection refused), and so is every open connection, with the bytes its
// relay held at the exec: each goes on to its instance, and a stream under
// way arrives whole (its CRC); the proxy's counters carry over. With each
// relay engine (what a splice pipe holds crosses the exec in the pipe).
class StickyUpgradeTest : public StickyTest, public ::testing::WithParamInterface<const char*> {};

INSTANTIATE_TEST_SUITE_P(Engines, StickyUpgradeTest, ::testing::Values("splice", "buffer"),
                         [](const auto& info) { return std::string(info.param); });

TEST_P(StickyUpgradeTest, KeepsTheListenerAndEveryOpenConnectionWithItsBytes) {
  ASSERT_NO_FATAL_FAILURE(start(2, "", "", {"/usr/bin/env", std::string("VIGIL_STICKY_ENGINE=") + GetParam()}));
  std::vector<UniqueFd> open;
  std::vector<Who> first;
  for (int n = 2; n < 14; ++n) {
    open.push_back(connect_from(n, port_));
    ASSERT_TRUE(open.back());
    auto w = ask(open.back().get());
    ASSERT_TRUE(w);
    first.push_back(*w);
  }
  // 256 MiB to a reader pausing 100 ms every 8 MiB (about 3 s of pauses):
  // the relay is holding bytes, back-pressured, when the exec comes.
  UniqueFd bulk = connect_from(20, port_);
  ASSERT_TRUE(bulk);
  constexpr std::uint64_t kTotal = 256ull << 20;
  ASSERT_TRUE(send_all(bulk.get(), "SINK " + std::to_string(kTotal) + " 0.1\n"));
  Stream stream(bulk.get(), kTotal);
  auto bytes_in = [&] {
    auto all = api_instances(socket());
    std::uint64_t n = 0;
    if (all)
      for (int i = 0; i < 2; ++i) n += find_instance(*all, "chat", i)["sticky"]["bytes_in"].get<std::uint64_t>();
    return n;
  };
  ASSERT_TRUE(poll_until([&] { return bytes_in() > (16u << 20); })) << vigil_->output();
  const std::uint64_t before = bytes_in();

  const pid_t pid = vigil_->pid();
  auto r = run_cli(dir_.path(), {"upgrade", "--binary", vigil_binary(), "-c", (dir_ / "vigil.toml").string()},
                   {}, std::chrono::seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << vigil_->output();
  EXPECT_EQ(vigil_->pid(), pid);
  std::string error;
  auto m = control_request(socket(), "GET", "/metrics", &error, std::chrono::seconds(5));
  ASSERT_TRUE(m) << error;
  EXPECT_EQ(metric_line(m->body, "vigil_upgrades_total{result=\"handover\"}").value_or("(none)"),
            "vigil_upgrades_total{result=\"handover\"} 1");

  // Every open connection goes on, to the same instance process.
  for (std::size_t i = 0; i < open.size(); ++i) {
    auto w = ask(open[i].get());
    ASSERT_TRUE(w) << "connection " << i << " was cut by the upgrade\n" << vigil_->output();
    EXPECT_EQ(w->pid, first[i].pid) << i;
  }
  // The stream arrives whole: nothing the relay held was lost or doubled.
  stream.thread.join();
  ASSERT_TRUE(stream.sent) << "the proxy stopped taking bytes";
  auto answer = read_line(bulk.get());
  ASSERT_TRUE(answer) << vigil_->output();
  EXPECT_EQ(*answer, std::to_string(kTotal) + " " + std::to_string(stream.crc));
  // New connections: the same instance for the same client; counters went
  // on from where they were; the open ones are counted again.
  for (int n = 2; n < 14; ++n) {
    auto w = who(n, port_);
    ASSERT_TRUE(w) << n;
    EXPECT_EQ(w->index, first[static_cast<std::size_t>(n - 2)].index) << n;
  }
  EXPECT_GE(bytes_in(), kTotal) << "bytes_in started again from 0 (it was " << before << ")";
  bulk.reset();
  EXPECT_TRUE(poll_until([&] {
    auto all = api_instances(socket());
    if (!all) return false;
    std::uint64_t conns = 0, accepted = 0;
    for (int i = 0; i < 2; ++i) {
      conns += find_instance(*all, "chat", i)["sticky"]["connections"].get<std::uint64_t>();
      accepted += find_instance(*all, "chat", i)["sticky"]["accepted"].get<std::uint64_t>();
    }
    return conns == open.size() && accepted >= 2 * open.size() + 1;
  })) << (api_instances(socket()) ? api_instances(socket())->dump() : std::string());
}

}  // namespace
}  // namespace vigil::it
