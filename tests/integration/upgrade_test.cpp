// `vigil upgrade` with the real binary and real children: a copy of the
// binary takes over in the same pid and every process stays (same pid, no
// restart), no numbered line of their output is lost or doubled, heartbeats
// are read on, backoff and fatal stay; a child that ends during the exec
// is reaped and restarted once; a binary whose `version` fails is refused
// and nothing changes; a new vigil that cannot read the state takes the
// processes over from /proc; many upgrades in a row leak no fd.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <poll.h>

#include <regex>
#include <set>

#include "control_harness.h"

namespace vigil::it {
namespace {

using control::CliRun;
using control::Expected;
using control::Json;

class UpgradeTest : public BinaryTest {
 protected:
  void start(std::string_view programs, const Expected& want) {
    run_vigil_with(programs);
    Json all = control::wait_for_states(socket(), want);
    ASSERT_EQ(all.size(), want.size()) << all.dump(1) << "\n" << vigil_->output();
    for (const auto& i : all)
      ASSERT_EQ(i["state"], want.at({i["name"], i["index"]})) << all.dump(1) << vigil_->output();
  }
  fs::path socket() const { return dir_ / "vigil.sock"; }
  fs::path config() const { return dir_ / "vigil.toml"; }
  CliRun upgrade(const fs::path& binary) {
    return control::run_cli(dir_.path(), {"upgrade", "--binary", binary.string(), "-c", config().string()},
                            {}, 60s);
  }
  // A copy of the vigil binary (what a package upgrade installs).
  fs::path copy_of_vigil(const std::string& name) {
    const fs::path to = dir_ / name;
    fs::copy_file(vigil_binary(), to, fs::copy_options::overwrite_existing);
    fs::permissions(to, fs::perms::owner_all);
    return to;
  }
  fs::path script(const std::string& name, const std::string& text) {
    const fs::path p = dir_.write(name, "#!/bin/sh\n" + text);
    fs::permissions(p, fs::perms::owner_all);
    return p;
  }
  Json api() {
    auto all = control::api_instances(socket());
    EXPECT_TRUE(all) << "the API did not answer\n" << vigil_->output();
    return all.value_or(Json::array());
  }
  std::string metrics() {
    std::string error;
    auto r = control_request(socket(), "GET", "/metrics", &error, std::chrono::seconds(5));
    return r ? r->body : std::string();
  }
  std::string metric(std::string_view series) {
    return control::metric_line(metrics(), series).value_or("(none)");
  }
  std::size_t vigil_fds() {
    std::error_code ec;
    std::size_t n = 0;
    for (auto it = fs::directory_iterator("/proc/" + std::to_string(vigil_->pid()) + "/fd", ec);
         !ec && it != fs::directory_iterator(); it.increment(ec))
      ++n;
    return n;
  }
  // The vigil-lifeline processes reading a pipe vigil writes (its own).
  std::size_t lifelines() {
    std::set<std::string> pipes;
    std::error_code ec;
    for (auto it = fs::directory_iterator("/proc/" + std::to_string(vigil_->pid()) + "/fd", ec);
         !ec && it != fs::directory_iterator(); it.increment(ec)) {
      const std::string t = fs::read_symlink(it->path(), ec).string();
      if (t.rfind("pipe:[", 0) == 0) pipes.insert(t);
    }
    std::size_t n = 0;
    for (auto p = fs::directory_iterator("/proc", ec); !ec && p != fs::directory_iterator(); p.increment(ec)) {
      if (read_file(p->path() / "comm") != "vigil-lifeline\n") continue;
      std::error_code e2;
      for (auto f = fs::directory_iterator(p->path() / "fd", e2); !e2 && f != fs::directory_iterator(); f.increment(e2))
        if (pipes.count(fs::read_symlink(f->path(), e2).string())) {
          ++n;
          break;
        }
    }
    return n;
  }
  // vigil's fd count once it holds still (a connection of the last API
  // request may be closing a moment longer): the same in two reads 50ms apart.
  std::size_t settled_fds() {
    std::size_t last = vigil_fds();
    poll_until(
        [&] {
          const std::size_t now = vigil_fds();
          const bool same = now == last;
          last = now;
          return same;
        },
        5s, 50ms);
    return last;
  }
  // The numbers of the "tick N" lines of a log file, in order.
  std::vector<long> ticks(const fs::path& log) {
    std::vector<long> out;
    static const std::regex re(R"(tick ([0-9]+)$)");
    for (const auto& line : read_lines(log)) {
      std::smatch m;
      if (std::regex_search(line, m, re)) out.push_back(std::stol(m[1].str()));
    }
    return out;
  }
  // Every tick from 0 to the last, once each, in order.
  void expect_contiguous(const fs::path& log) {
    const auto t = ticks(log);
    ASSERT_FALSE(t.empty()) << log;
    for (std::size_t i = 0; i < t.size(); ++i)
      ASSERT_EQ(t[i], static_cast<long>(i)) << log << ": line " << i << " of " << t.size();
  }
};

// Most of the kinds of instance there are, at once: 50 instances.
constexpr int kTickers = 45;

std::string many_programs(const fs::path& dir) {
  return helper_program("ticker", {"--tick", "10"}, "instances = " + std::to_string(kTickers)) +
         helper_program("beat", {"--beat", "100"}, "instances = 2\n[programs.beat.heartbeat]\ninterval = \"1s\"\n") +
         helper_program("waits", {"--exit-immediately", "1"},
                        "restart_delay = \"1h\"\nrestart_delay_max = \"1h\"\n") +
         helper_program("gaveup", {"--exit-immediately", "1"},
                        "restart_delay = \"10ms\"\nmax_restarts = 1\nrestart_window = \"1h\"\n") +
         helper_program("victim", {"--pidfile", (dir / "victim.pids").string()},
                        "restart_delay = \"10ms\"\n");
}

Expected many_expected() {
  Expected e = {{{"beat", 0}, "running"},  {{"beat", 1}, "running"},  {{"waits", 0}, "backoff"},
                {{"gaveup", 0}, "fatal"},  {{"victim", 0}, "running"}};
  for (int i = 0; i < kTickers; ++i) e[{"ticker", i}] = "running";
  return e;
}
const Expected kMany = many_expected();

TEST_F(UpgradeTest, EveryProcessStaysAndNoLineIsLost) {
  start(many_programs(dir_.path()), kMany);
  const Json before = api();
  const std::string started = metric("vigil_process_start_time_seconds");
  for (int i = 0; i < kTickers; ++i)
    ASSERT_TRUE(poll_until([&] { return ticks(dir_ / ("logs/ticker-" + std::to_string(i) + ".out.log")).size() > 20; }));

  const CliRun r = upgrade(copy_of_vigil("vigil-new"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << vigil_->output();
  EXPECT_NE(r.out.find("every process kept"), std::string::npos) << r.out;

  const Json after = control::wait_for_states(socket(), kMany);
  for (const auto& b : before) {
    const Json a = control::find_instance(after, b["name"].get<std::string>(), b["index"].get<int>());
    ASSERT_TRUE(a.is_object()) << b.dump();
    EXPECT_EQ(a["pid"], b["pid"]) << b["name"] << " " << b["index"];
    EXPECT_EQ(a["restarts"], b["restarts"]) << b["name"] << " " << b["index"];
    EXPECT_EQ(a["state"], b["state"]) << b["name"] << " " << b["index"];
  }
  // Heartbeats are read on through the kept pipes, and judged: nobody hangs.
  for (int i = 0; i < 2; ++i) {
    const auto beats = control::find_instance(before, "beat", i)["heartbeats"].get<std::uint64_t>();
    ASSERT_TRUE(poll_until([&] {
      return control::find_instance(api(), "beat", i)["heartbeats"].get<std::uint64_t>() > beats + 5;
    })) << vigil_->output();
  }
  // Lines written during and after the exec reach the files, each once.
  std::vector<std::size_t> seen;
  for (int i = 0; i < kTickers; ++i) seen.push_back(ticks(dir_ / ("logs/ticker-" + std::to_string(i) + ".out.log")).size());
  for (int i = 0; i < kTickers; ++i) {
    const fs::path log = dir_ / ("logs/ticker-" + std::to_string(i) + ".out.log");
    ASSERT_TRUE(poll_until([&] { return ticks(log).size() > seen[static_cast<std::size_t>(i)] + 20; }));
    expect_contiguous(log);
  }
  const Json last = api();
  for (const auto& b : before)
    EXPECT_EQ(control::find_instance(last, b["name"].get<std::string>(), b["index"].get<int>())["restarts"],
              b["restarts"]);
  EXPECT_EQ(metric("vigil_upgrades_total{result=\"handover\"}"), "vigil_upgrades_total{result=\"handover\"} 1");
  EXPECT_EQ(metric("vigil_process_start_time_seconds"), started);
  EXPECT_TRUE(vigil_->running());
}

TEST_F(UpgradeTest, AChildThatEndsDuringTheExecIsRestartedOnce) {
  start(many_programs(dir_.path()), kMany);
  const Json before = api();
  // The new image first kills `victim` and waits for it to be a zombie:
  // its SIGCHLD comes while no vigil handles it.
  const fs::path wrapper =
      script("vigil-killing", "if [ \"$1\" = run ]; then exec " + helper_binary() + " --kill-then-exec " +
                                  (dir_ / "victim.pids").string() + " " + vigil_binary() +
                                  " \"$@\"; fi\nexec " + vigil_binary() + " \"$@\"\n");
  const CliRun r = upgrade(wrapper);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << vigil_->output();

  const int old_victim = control::pid_of(control::find_instance(before, "victim"));
  ASSERT_TRUE(poll_until([&] {
    const Json v = control::find_instance(api(), "victim");
    return v["state"] == "running" && control::pid_of(v) != old_victim && control::pid_of(v) != 0;
  })) << vigil_->output();
  EXPECT_TRUE(process_gone(old_victim));
  // The new vigil reaped it (its end came before the new vigil ran).
  const std::string out = vigil_->output();
  const auto exec = out.find("upgrade: exec");
  ASSERT_NE(exec, std::string::npos) << out;
  EXPECT_NE(out.find("program victim: killed by signal KILL", exec), std::string::npos) << out;
  const Json after = api();
  EXPECT_EQ(control::find_instance(after, "victim")["restarts"].get<int>(),
            control::find_instance(before, "victim")["restarts"].get<int>() + 1);
  EXPECT_EQ(read_pids(dir_ / "victim.pids").size(), 2u);
  for (const auto& b : before) {
    if (b["name"] == "victim") continue;
    const Json a = control::find_instance(after, b["name"].get<std::string>(), b["index"].get<int>());
    EXPECT_EQ(a["pid"], b["pid"]) << b["name"];
    EXPECT_EQ(a["restarts"], b["restarts"]) << b["name"];
  }
}

// A stop under way (the process ignores SIGTERM) goes on in the new vigil:
// its SIGKILL deadline was handed over, and the instance ends stopped.
TEST_F(UpgradeTest, AStopUnderWayEndsInTheNewVigil) {
  const Expected want = {{{"stubborn", 0}, "running"}, {{"ticker", 0}, "running"}};
  start(helper_program("stubborn", {"--ignore-term"}, "stop_timeout = \"4s\"\n") +
            helper_program("ticker", {"--tick", "5"}),
        want);
  const Json before = api();
  const int stubborn = control::pid_of(control::find_instance(before, "stubborn"));
  std::string error;
  auto r = control_request(socket(), "POST", "/api/v1/programs/stubborn/stop", &error);
  ASSERT_TRUE(r && r->status == 200) << error;
  ASSERT_EQ(control::find_instance(api(), "stubborn")["state"], "stopping");
  const CliRun up = upgrade(copy_of_vigil("vigil-new"));
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err << vigil_->output();
  const Json after = control::wait_for_states(socket(), {{{"stubborn", 0}, "stopped"}, {{"ticker", 0}, "running"}});
  EXPECT_EQ(control::find_instance(after, "stubborn")["state"], "stopped") << vigil_->output();
  EXPECT_TRUE(poll_until([&] { return process_gone(stubborn); }));
  EXPECT_EQ(control::find_instance(after, "stubborn")["restarts"], control::find_instance(before, "stubborn")["restarts"]);
  EXPECT_EQ(control::find_instance(after, "ticker")["pid"], control::find_instance(before, "ticker")["pid"]);
}

// An unfinished line vigil had read (the pipe is empty) goes to the new
// vigil, which writes it once, whole, when the line ends (here: at EOF).
TEST_F(UpgradeTest, AnUnfinishedLineIsCarriedAcrossTheExec) {
  start(helper_program("partial", {"--print", "first", "--no-newline", "10", "--stay"}),
        {{{"partial", 0}, "running"}});
  const int pid = control::pid_of(control::find_instance(api(), "partial"));
  const fs::path log = dir_ / "logs/partial.out.log";
  ASSERT_TRUE(poll_until([&] {
    for (const auto& l : read_lines(log))
      if (strip_timestamp(l) == "first") return true;
    return false;
  }));
  // Nothing left in its stdout pipe: vigil holds the 10 bytes.
  ASSERT_TRUE(poll_until([&] {
    UniqueFd pipe(::open(("/proc/" + std::to_string(pid) + "/fd/1").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    int pending = -1;
    return pipe && ::ioctl(pipe.get(), FIONREAD, &pending) == 0 && pending == 0;
  }));
  const CliRun up = upgrade(copy_of_vigil("vigil-new"));
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err << vigil_->output();
  std::string error;
  auto r = control_request(socket(), "POST", "/api/v1/programs/partial/stop", &error);
  ASSERT_TRUE(r && r->status == 200) << error;
  control::wait_for_states(socket(), {{{"partial", 0}, "stopped"}});
  std::vector<std::string> texts;
  ASSERT_TRUE(poll_until([&] {
    texts.clear();
    for (const auto& l : read_lines(log)) texts.push_back(strip_timestamp(l).value_or(l));
    return texts.size() >= 2;
  })) << read_file(log);
  EXPECT_EQ(texts, (std::vector<std::string>{"first", "aaaaaaaaaa"})) << read_file(log);
}

// "pid N" from whichever process serves 127.0.0.1:port (child_helper
// --serve), read to its end; what went wrong otherwise.
std::string ask_pid(std::uint16_t port) {
  UniqueFd fd = connect_loopback(port);
  if (!fd) return std::string("connect: ") + std::strerror(errno);
  std::string reply;
  const auto deadline = SteadyClock::now() + kEventually;
  while (SteadyClock::now() < deadline) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[256];
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    reply.append(buf, static_cast<std::size_t>(n));
  }
  return reply;
}

// The held `listen` socket crosses the exec: the same processes serve it
// with no refused connection, and a process started after the upgrade gets
// the very socket the new vigil took over.
TEST_F(UpgradeTest, HeldListenSocketsAreHandedOver) {
  const std::uint16_t port = free_port();
  const Expected want = {{{"web", 0}, "running"}, {{"web", 1}, "running"}};
  start(helper_program("web", {"--serve"},
                       "instances = 2\nlisten = [\"127.0.0.1:" + std::to_string(port) + "\"]\n"),
        want);
  const Json before = api();
  std::set<std::string> serving;
  for (const auto& i : before) serving.insert("pid " + std::to_string(control::pid_of(i)) + "\n");
  ASSERT_TRUE(serving.count(ask_pid(port))) << vigil_->output();

  const CliRun r = upgrade(copy_of_vigil("vigil-new"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << vigil_->output();
  const Json after = control::wait_for_states(socket(), want);
  for (const auto& b : before)
    EXPECT_EQ(control::find_instance(after, "web", b["index"].get<int>())["pid"], b["pid"]);
  for (int n = 0; n < 10; ++n) EXPECT_TRUE(serving.count(ask_pid(port))) << n;

  std::string error;
  auto restart = control_request(socket(), "POST", "/api/v1/programs/web/restart?all_at_once=1", &error);
  ASSERT_TRUE(restart && restart->status == 200) << error;
  ASSERT_TRUE(poll_until([&] {
    const Json now = api();
    for (const auto& b : before) {
      const Json i = control::find_instance(now, "web", b["index"].get<int>());
      if (i["state"] != "running" || i["pid"] == b["pid"]) return false;
    }
    return true;
  })) << vigil_->output();
  std::set<std::string> fresh;
  for (const auto& i : api()) fresh.insert("pid " + std::to_string(control::pid_of(i)) + "\n");
  EXPECT_TRUE(poll_until([&] { return fresh.count(ask_pid(port)) != 0; })) << vigil_->output();
}

TEST_F(UpgradeTest, ABinaryWhoseVersionFailsIsRefused) {
  start(many_programs(dir_.path()), kMany);
  const Json before = api();
  const CliRun r = upgrade(script("vigil-broken", "echo 'cannot load libfoo.so' >&2\nexit 3\n"));
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("version` failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("unchanged"), std::string::npos) << r.err;
  EXPECT_TRUE(vigil_->wait_for_output("upgrade refused"));
  const Json after = control::wait_for_states(socket(), kMany);
  for (const auto& b : before) {
    const Json a = control::find_instance(after, b["name"].get<std::string>(), b["index"].get<int>());
    EXPECT_EQ(a["pid"], b["pid"]) << b["name"];
    EXPECT_EQ(a["restarts"], b["restarts"]) << b["name"];
  }
  EXPECT_EQ(metric("vigil_upgrades_total{result=\"failed\"}"), "vigil_upgrades_total{result=\"failed\"} 1");
  EXPECT_EQ(metric("vigil_upgrades_total{result=\"handover\"}"), "vigil_upgrades_total{result=\"handover\"} 0");
  // A binary that is not there is refused too, before any check.
  const CliRun missing = upgrade(dir_ / "no-such-vigil");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("cannot execute"), std::string::npos) << missing.err;
}

// The checks pass, then the exec fails (the file is gone by then): the old
// vigil carries on with everything it had, and leaks nothing.
TEST_F(UpgradeTest, AnExecThatFailsLeavesTheOldVigilRunning) {
  const Expected want = {{{"ticker", 0}, "running"}, {{"beat", 0}, "running"}};
  start(helper_program("ticker", {"--tick", "5"}) +
            helper_program("beat", {"--beat", "100"}, "[programs.beat.heartbeat]\ninterval = \"1s\"\n"),
        want);
  const Json before = api();
  const std::size_t fds = settled_fds();
  const fs::path vanishing = script("vigil-vanishing", "if [ \"$1\" = check ]; then rm -f \"$0\"; fi\nexec " +
                                                           vigil_binary() + " \"$@\"\n");
  const CliRun r = upgrade(vanishing);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("cannot execute"), std::string::npos) << r.err;
  EXPECT_EQ(metric("vigil_upgrades_total{result=\"failed\"}"), "vigil_upgrades_total{result=\"failed\"} 1");
  const Json after = control::wait_for_states(socket(), want);
  for (const auto& b : before)
    EXPECT_EQ(control::find_instance(after, b["name"].get<std::string>(), b["index"].get<int>())["pid"], b["pid"]);
  // Its fds are as before (the memory file closed), and heartbeats still come.
  // Not more (one fewer is seen: an fd of the baseline's moment, such as a
  // connection closing, that the settling did not outwait).
  EXPECT_TRUE(poll_until([&] { return settled_fds() <= fds; })) << vigil_fds() << " fds, " << fds << " before";
  const auto beats = control::find_instance(after, "beat")["heartbeats"].get<std::uint64_t>();
  EXPECT_TRUE(poll_until([&] { return control::find_instance(api(), "beat")["heartbeats"].get<std::uint64_t>() > beats + 3; }));
  // And a later upgrade works.
  const CliRun ok = upgrade(copy_of_vigil("vigil-new"));
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err << vigil_->output();
  EXPECT_EQ(control::find_instance(control::wait_for_states(socket(), want), "ticker")["pid"],
            control::find_instance(before, "ticker")["pid"]);
}

TEST_F(UpgradeTest, AStateTheNewVigilCannotReadAdoptsFromProc) {
  const Expected want = {{{"ticker", 0}, "running"}, {{"ticker", 1}, "running"}, {{"beat", 0}, "running"}};
  start(helper_program("ticker", {"--tick", "2"}, "instances = 2") +
            helper_program("beat", {"--beat", "100"}, "[programs.beat.heartbeat]\ninterval = \"1s\"\n"),
        want);
  const Json before = api();
  ASSERT_EQ(lifelines(), 1u);
  // As a vigil of another state format would: it gets a state it cannot read.
  const fs::path other = script(
      "vigil-other-format",
      "if [ \"$1\" = run ]; then exec " + vigil_binary() +
          " run -c \"$3\" --handover 9 9<<'EOF'\n{\"format\": 999, \"vigil_version\": \"9.9.9\"}\nEOF\nfi\nexec " +
          vigil_binary() + " \"$@\"\n");
  const CliRun r = upgrade(other);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << vigil_->output();
  EXPECT_NE(r.out.find("/proc"), std::string::npos) << r.out;
  EXPECT_TRUE(vigil_->wait_for_output("cannot be read")) << vigil_->output();
  const Json after = control::wait_for_states(socket(), want);
  for (const auto& b : before)
    EXPECT_EQ(control::find_instance(after, b["name"].get<std::string>(), b["index"].get<int>())["pid"], b["pid"])
        << b["name"] << " " << b["index"] << "\n"
        << vigil_->output();
  EXPECT_EQ(metric("vigil_upgrades_total{result=\"adopted\"}"), "vigil_upgrades_total{result=\"adopted\"} 1");
  // Their output pipes and heartbeat pipes were found: lines and beats go on.
  const auto beats = control::find_instance(after, "beat")["heartbeats"].get<std::uint64_t>();
  ASSERT_TRUE(poll_until([&] { return control::find_instance(api(), "beat")["heartbeats"].get<std::uint64_t>() > beats + 5; }))
      << vigil_->output();
  const auto seen = ticks(dir_ / "logs/ticker-0.out.log").size();
  ASSERT_TRUE(poll_until([&] { return ticks(dir_ / "logs/ticker-0.out.log").size() > seen + 50; }));
  expect_contiguous(dir_ / "logs/ticker-0.out.log");
  EXPECT_EQ(control::find_instance(api(), "beat")["pid"], control::find_instance(before, "beat")["pid"]);
  // The lifeline was found by its pipe and taken over, not doubled.
  EXPECT_EQ(lifelines(), 1u) << vigil_->output();
  EXPECT_TRUE(vigil_->wait_for_output("taken over from the vigil before the upgrade")) << vigil_->output();
}

TEST_F(UpgradeTest, AHundredUpgradesInARowLeakNoFd) {
  const Expected want = {{{"ticker", 0}, "running"}, {{"ticker", 1}, "running"}, {{"beat", 0}, "running"},
                         {{"waits", 0}, "backoff"}};
  start(helper_program("ticker", {"--tick", "5"}, "instances = 2") +
            helper_program("beat", {"--beat", "100"}, "[programs.beat.heartbeat]\ninterval = \"1s\"\n") +
            helper_program("waits", {"--exit-immediately", "1"}, "restart_delay = \"1h\"\nrestart_delay_max = \"1h\"\n"),
        want);
  const Json before = api();
  const fs::path a = copy_of_vigil("vigil-a"), b = copy_of_vigil("vigil-b");
  ASSERT_EQ(upgrade(a).exit_code, 0) << vigil_->output();
  control::wait_for_states(socket(), want);
  const std::size_t fds = settled_fds();
  for (int n = 0; n < 100; ++n) {
    const CliRun r = upgrade(n % 2 ? a : b);
    ASSERT_EQ(r.exit_code, 0) << n << ": " << r.out << r.err << vigil_->output();
  }
  const Json after = control::wait_for_states(socket(), want);
  for (const auto& i : before)
    EXPECT_EQ(control::find_instance(after, i["name"].get<std::string>(), i["index"].get<int>())["pid"], i["pid"]);
  // The same fds as after the first: a request may be in flight a moment.
  // Not more (one fewer is seen: an fd of the baseline's moment, such as a
  // connection closing, that the settling did not outwait).
  EXPECT_TRUE(poll_until([&] { return settled_fds() <= fds; })) << vigil_fds() << " fds, " << fds << " before";
  EXPECT_EQ(metric("vigil_upgrades_total{result=\"handover\"}"), "vigil_upgrades_total{result=\"handover\"} 101");
  expect_contiguous(dir_ / "logs/ticker-1.out.log");
}

}  // namespace
}  // namespace vigil::it
