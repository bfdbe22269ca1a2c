// GET /metrics on the real binary, scraped over TCP as Prometheus would:
// the exposition passes promtool, every series of an instance exists from
// its creation, counters survive restarts, and the /proc sampling measures
// what it claims (tree RSS, CPU, memory_limit restarts, MEMORY= reports);
// hostile clients (silent connections, fd exhaustion) do not stop it.
// vigil listens on 127.0.0.1:0 and says which port it got.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "fd.h"
#include "harness.h"
#include "metrics_client.h"
#include "proc_sampler.h"
#include "reaper.h"

namespace vigil::it {
namespace {

using metrics_client::Exposition;
using metrics_client::http_get;
using metrics_client::http_request;
using metrics_client::parse_exposition;
using Labels = std::map<std::string, std::string>;

constexpr std::uint64_t kMiB = 1024 * 1024;
const std::vector<std::string> kReasons{"exit", "signal", "hung", "memory",
                                        "probe", "start_timeout", "manual"};
const std::vector<std::string> kKinds{"clean", "code", "signal"};
const std::vector<std::string> kStates{"stopped", "starting", "running", "stopping",
                                       "exited", "backoff", "fatal"};

class MetricsTest : public BinaryTest {
 protected:
  // `vigil run` with an [http] listener on a port of its choosing, sampling
  // every 200ms, and `programs`. Fails fatally when vigil does not serve.
  void start(std::string_view programs) { start_sampling_every("200ms", programs); }
  void start_sampling_every(std::string_view interval, std::string_view programs) {
    run_vigil_with(
        "[vigil]\n"
        "sample_interval = \"" + std::string(interval) + "\"\n"
        "\n"
        "[http]\n"
        "listen = \"127.0.0.1:0\"\n"
        "\n" +
        std::string(programs));
    ASSERT_TRUE(vigil_->wait_for_output("serving /metrics")) << vigil_->output();
    auto port = metrics_client::served_port(vigil_->output());
    ASSERT_TRUE(port) << vigil_->output();
    port_ = *port;
  }

  // vigil's one child (the test's one instance), once it has started.
  pid_t only_child() {
    std::vector<pid_t> kids;
    poll_until([&] {
      kids = child_pids(vigil_->pid());
      return kids.size() == 1;
    });
    return kids.size() == 1 ? kids.front() : -1;
  }

  // One scrape; an empty exposition (and a test failure) when it fails.
  Exposition scrape() {
    auto reply = http_get(port_, "/metrics");
    if (!reply || reply->status != 200) {
      ADD_FAILURE() << "GET /metrics failed: "
                    << (reply ? std::to_string(reply->status) + " " + reply->body : "no answer")
                    << "\n" << vigil_->output();
      return {};
    }
    Exposition e = parse_exposition(reply->body);
    EXPECT_TRUE(e.errors.empty()) << "unparsable lines, first: " << e.errors.front();
    return e;
  }

  // Scrapes until `pred` holds for a scrape (bounded); returns that scrape.
  std::optional<Exposition> scrape_until(const std::function<bool(const Exposition&)>& pred,
                                         Duration timeout = kEventually) {
    std::optional<Exposition> last;
    bool ok = poll_until(
        [&] {
          last = scrape();
          return pred(*last);
        },
        timeout, 50ms);
    if (!ok) return std::nullopt;
    return last;
  }

  std::uint16_t port_ = 0;
};

double value_or(const Exposition& e, std::string_view name, const Labels& labels, double dflt) {
  return e.value(name, labels).value_or(dflt);
}

// promtool's verdict on an exposition: exit code and what it printed.
std::pair<int, std::string> promtool_check(const TempDir& dir, const std::string& text) {
  const fs::path file = dir.write("scrape.prom", text);
  const std::string cmd = "promtool check metrics < '" + file.string() + "' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

double unix_now() { return static_cast<double>(std::time(nullptr)); }

// ---------------------------------------------------------------------------
// The exposition itself

TEST_F(MetricsTest, PromtoolFindsNoProblemInAScrape) {
  ASSERT_NO_FATAL_FAILURE(start(
      helper_program("web", {}, "instances = 3\nmemory_limit = \"1GiB\"\nmin_uptime = \"100ms\"") +
      helper_program("crash", {"--crash-after", "50", "--stderr", "going down"},
                     "restart_delay = \"20ms\"\nrestart_delay_max = \"50ms\"\n"
                     "restart_window = \"0s\"") +
      "[programs.beat]\n"
      "command = [\"sh\", \"-c\", \"echo WATCHDOG=1 >&3; echo MEMORY=4096 >&3; exec sleep 100\"]\n"
      "[programs.beat.heartbeat]\n"
      "interval = \"5s\"\n\n"));
  // A scrape once something has happened: restarts, exits, logs, heartbeats.
  ASSERT_TRUE(scrape_until([](const Exposition& e) {
    return value_or(e, "vigil_restarts_total", {{"program", "crash"}, {"reason", "exit"}}, 0) >= 2 &&
           value_or(e, "vigil_heartbeats_total", {{"program", "beat"}}, 0) >= 1 &&
           value_or(e, "vigil_up", {{"program", "web"}, {"index", "2"}}, 0) == 1;
  })) << vigil_->output();

  auto reply = http_get(port_, "/metrics");
  ASSERT_TRUE(reply && reply->status == 200);
  auto [code, said] = promtool_check(dir_, reply->body);
  EXPECT_EQ(code, 0) << said << "\n--- scrape:\n" << reply->body;
  EXPECT_EQ(said, "") << "--- scrape:\n" << reply->body;
}

TEST_F(MetricsTest, ServedAsPrometheusTextAndAnswersHead) {
  ASSERT_NO_FATAL_FAILURE(start(helper_program("web", {})));
  auto get = http_get(port_, "/metrics");
  ASSERT_TRUE(get) << vigil_->output();
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(get->header("content-length"), std::to_string(get->body.size()));
  EXPECT_NE(get->body.find("# TYPE vigil_restarts_total counter"), std::string::npos);

  auto head = http_request(port_, "HEAD", "/metrics");
  ASSERT_TRUE(head) << vigil_->output();
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_GT(std::atol(head->header("content-length").c_str()), 100)
      << "a HEAD announces the length its GET would have";
  EXPECT_EQ(head->body, "");
}

TEST_F(MetricsTest, HealthzIsOkAndAnUnknownPathIsAJson404) {
  ASSERT_NO_FATAL_FAILURE(start(helper_program("web", {})));
  auto health = http_get(port_, "/healthz");
  ASSERT_TRUE(health) << vigil_->output();
  EXPECT_EQ(health->status, 200);

  auto missing = http_get(port_, "/no/such/page");
  ASSERT_TRUE(missing) << vigil_->output();
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->header("content-type"), "application/json");
  auto body = nlohmann::json::parse(missing->body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << missing->body;
  ASSERT_TRUE(body.contains("error")) << missing->body;
  EXPECT_TRUE(body["error"].is_string()) << missing->body;
  EXPECT_EQ(body.size(), 1u) << missing->body;

  auto post = http_request(port_, "POST", "/metrics");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405) << post->body;
}

// ---------------------------------------------------------------------------
// Series

TEST_F(MetricsTest, EverySeriesOfAnInstanceExistsFromItsCreation) {
  ASSERT_NO_FATAL_FAILURE(start(
      helper_program("idle", {}, "autostart = false\ninstances = 2") +
      helper_program("web", {}, "min_uptime = \"100ms\"")));
  auto scraped = scrape_until([](const Exposition& e) {
    return value_or(e, "vigil_state", {{"program", "web"}, {"state", "running"}}, 0) == 1;
  });
  ASSERT_TRUE(scraped) << vigil_->output();
  const Exposition& e = *scraped;

  struct Expected {
    std::string program, index, state;
  };
  for (const Expected& x : {Expected{"idle", "0", "stopped"}, Expected{"idle", "1", "stopped"},
                            Expected{"web", "0", "running"}}) {
    SCOPED_TRACE(x.program + "[" + x.index + "]");
    const Labels inst{{"program", x.program}, {"index", x.index}};
    auto with = [&](const char* k, const std::string& v) {
      Labels l = inst;
      l[k] = v;
      return l;
    };
    for (const auto& r : kReasons)
      EXPECT_EQ(e.value("vigil_restarts_total", with("reason", r)), 0.0) << r;
    EXPECT_EQ(e.find("vigil_restarts_total", inst).size(), kReasons.size());
    for (const auto& k : kKinds) EXPECT_EQ(e.value("vigil_exits_total", with("kind", k)), 0.0) << k;
    EXPECT_EQ(e.find("vigil_exits_total", inst).size(), kKinds.size());
    for (const char* s : {"stdout", "stderr"})
      EXPECT_TRUE(e.value("vigil_log_bytes_total", with("stream", s))) << s;
    EXPECT_EQ(e.find("vigil_log_bytes_total", inst).size(), 2u);

    double ones = 0;
    for (const auto& s : kStates) {
      auto v = e.value("vigil_state", with("state", s));
      ASSERT_TRUE(v) << s;
      EXPECT_TRUE(*v == 0 || *v == 1) << s << " = " << *v;
      ones += *v;
      EXPECT_EQ(*v, s == x.state ? 1 : 0) << s;
    }
    EXPECT_EQ(ones, 1) << "exactly one current state";
    EXPECT_EQ(e.find("vigil_state", inst).size(), kStates.size());

    for (const char* name :
         {"vigil_up", "vigil_heartbeats_total", "vigil_heartbeat_misses_total",
          "vigil_protocol_errors_total", "vigil_memory_rss_bytes", "vigil_cpu_seconds_total",
          "vigil_log_dropped_bytes_total"})
      EXPECT_TRUE(e.value(name, inst)) << name;
    EXPECT_EQ(*e.value("vigil_up", inst), x.state == "running" ? 1 : 0);
  }
  // The running instance's start time is now-ish; a stopped one has none.
  // Gauges with no value yet are absent, not 0 (0 would read as a clean
  // exit, a start in 1970, a heartbeat 56 years ago).
  EXPECT_NEAR(value_or(e, "vigil_start_time_seconds", {{"program", "web"}}, 0), unix_now(), 60);
  const Labels idle{{"program", "idle"}, {"index", "0"}};
  for (const char* absent : {"vigil_start_time_seconds", "vigil_last_exit_code",
                             "vigil_heartbeat_last_timestamp_seconds", "vigil_memory_reported_bytes"})
    EXPECT_FALSE(e.value(absent, idle)) << absent;

  // Labels: program and index, plus the one that tells series apart; never
  // a pid (it changes on every restart: a new series each time).
  // The rolling-restart families are the program's, not an instance's.
  const std::set<std::string> allowed{"program", "index", "reason", "kind", "stream", "state", "le",
                                      "result"};
  const std::set<std::string> per_program{"vigil_rollout_in_progress", "vigil_rollouts_total"};
  for (const auto& s : e.samples) {
    EXPECT_FALSE(s.labels.count("pid")) << s.name;
    EXPECT_FALSE(s.labels.count("instance")) << s.name << ": `instance` belongs to Prometheus";
    if (!s.labels.count("program")) continue;
    EXPECT_EQ(s.labels.count("index"), per_program.count(s.name) ? 0u : 1u) << s.name;
    for (const auto& [k, v] : s.labels) EXPECT_TRUE(allowed.count(k)) << s.name << " label " << k;
  }

  // vigil's own figures.
  auto build = e.find("vigil_build_info");
  ASSERT_EQ(build.size(), 1u);
  EXPECT_EQ(build[0]->value, 1);
  ASSERT_TRUE(build[0]->labels.count("version"));
  EXPECT_NE(build[0]->labels.at("version"), "");
  const double open_fds = value_or(e, "vigil_process_open_fds", {}, -1);
  EXPECT_GT(open_fds, 3);
  // What /proc lists for it (the scrape's connection may have closed since).
  std::size_t listed = 0;
  for (const auto& entry : fs::directory_iterator("/proc/" + std::to_string(vigil_->pid()) + "/fd")) {
    (void)entry;
    ++listed;
  }
  EXPECT_NEAR(open_fds, static_cast<double>(listed), 1.0);
  EXPECT_GE(value_or(e, "vigil_process_max_fds", {}, -1), open_fds);
  EXPECT_GT(value_or(e, "vigil_process_resident_memory_bytes", {}, 0), 1 * kMiB);
  EXPECT_LT(value_or(e, "vigil_process_resident_memory_bytes", {}, 0), 1024 * kMiB);
  EXPECT_GE(value_or(e, "vigil_process_cpu_seconds_total", {}, -1), 0);
  EXPECT_NEAR(value_or(e, "vigil_process_start_time_seconds", {}, 0), unix_now(), 120);
  EXPECT_EQ(e.types.at("vigil_process_cpu_seconds_total"), "counter");
  EXPECT_EQ(e.types.at("vigil_restarts_total"), "counter");
  EXPECT_EQ(e.types.at("vigil_state"), "gauge");
}

TEST_F(MetricsTest, RestartCountersSurviveRestartsPerInstance) {
  ASSERT_NO_FATAL_FAILURE(start(helper_program(
      "crash", {"--crash-after", "50"},
      "instances = 2\nrestart_delay = \"20ms\"\nrestart_delay_max = \"50ms\"\n"
      "restart_window = \"0s\"")));
  std::map<std::string, double> last{{"0", 0}, {"1", 0}};
  int scrapes = 0;
  ASSERT_TRUE(scrape_until([&](const Exposition& e) {
    ++scrapes;
    bool done = true;
    for (auto& [index, before] : last) {
      double now = value_or(e, "vigil_restarts_total",
                            {{"program", "crash"}, {"index", index}, {"reason", "exit"}}, -1);
      EXPECT_GE(now, before) << "index " << index << ": a counter never goes down";
      before = std::max(before, now);
      done = done && now >= 4;
    }
    return done;
  })) << vigil_->output();
  EXPECT_GE(scrapes, 2);

  const Exposition e = scrape();
  for (const char* index : {"0", "1"}) {
    SCOPED_TRACE(index);
    const Labels inst{{"program", "crash"}, {"index", index}};
    auto of = [&](const char* k, const char* v) {
      Labels l = inst;
      l[k] = v;
      return l;
    };
    const double restarts = value_or(e, "vigil_restarts_total", of("reason", "exit"), 0);
    const double code_exits = value_or(e, "vigil_exits_total", of("kind", "code"), 0);
    // Every restart followed an exit with code 1; the last exit may not
    // have been restarted yet.
    EXPECT_GE(code_exits, restarts);
    EXPECT_LE(code_exits, restarts + 1);
    EXPECT_EQ(value_or(e, "vigil_last_exit_code", inst, -1), 1);
    for (const auto& r : kReasons) {
      if (r == "exit") continue;
      EXPECT_EQ(value_or(e, "vigil_restarts_total", of("reason", r.c_str()), -1), 0) << r;
    }
  }
}

TEST_F(MetricsTest, HeartbeatIntervalAndMemoryLimitOnlyWhenConfigured) {
  ASSERT_NO_FATAL_FAILURE(start(
      helper_program("plain", {}) +
      helper_program("watched", {}, "memory_limit = \"1GiB\"") +
      "[programs.watched.heartbeat]\ninterval = \"2500ms\"\ngrace = \"60s\"\n\n"));
  const Exposition e = scrape();
  EXPECT_EQ(e.value("vigil_heartbeat_interval_seconds", {{"program", "watched"}}), 2.5);
  EXPECT_EQ(e.value("vigil_memory_limit_bytes", {{"program", "watched"}}), 1024.0 * kMiB);
  EXPECT_TRUE(e.find("vigil_heartbeat_interval_seconds", {{"program", "plain"}}).empty());
  EXPECT_TRUE(e.find("vigil_memory_limit_bytes", {{"program", "plain"}}).empty());
  // The rest of plain's series are there.
  EXPECT_TRUE(e.value("vigil_heartbeats_total", {{"program", "plain"}}));
  EXPECT_TRUE(e.value("vigil_memory_rss_bytes", {{"program", "plain"}}));
}

// ---------------------------------------------------------------------------
// /proc sampling

TEST_F(MetricsTest, GrowingChildIsRestartedForMemoryAfterBeingSeenOverTheLimit) {
  ASSERT_NO_FATAL_FAILURE(start(helper_program(
      "leak", {"--grow-mb-per-sec", "100"},
      "memory_limit = \"64MiB\"\nrestart_delay = \"100ms\"\nrestart_window = \"0s\"")));
  const Labels leak{{"program", "leak"}};
  const Labels memory{{"program", "leak"}, {"reason", "memory"}};
  double max_rss_before = 0;
  ASSERT_TRUE(scrape_until([&](const Exposition& e) {
    if (value_or(e, "vigil_restarts_total", memory, 0) >= 1) return true;
    max_rss_before = std::max(max_rss_before, value_or(e, "vigil_memory_rss_bytes", leak, 0));
    return false;
  })) << vigil_->output();
  // Three samples in a row over the limit, 200ms apart: visible in a
  // scrape every 50ms.
  EXPECT_GT(max_rss_before, 64.0 * kMiB);
  EXPECT_NE(vigil_->output().find("over the limit"), std::string::npos) << vigil_->output();

  const Exposition e = scrape();
  EXPECT_EQ(value_or(e, "vigil_restarts_total", {{"program", "leak"}, {"reason", "exit"}}, -1), 0);
  EXPECT_EQ(value_or(e, "vigil_restarts_total", {{"program", "leak"}, {"reason", "signal"}}, -1), 0);
  EXPECT_EQ(value_or(e, "vigil_memory_limit_bytes", leak, 0), 64.0 * kMiB);
}

// An idle tree is read by the sampling timer only once a minute, but not
// one under a memory_limit: a child idle for 6 intervals that then takes
// 100 MiB is restarted within 3 samples of it, as one that grew at once.
// What the test sees is measured from /proc itself, not through vigil.
TEST_F(MetricsTest, IdleChildThatOutgrowsItsLimitIsRestartedWithinThreeIntervals) {
  constexpr auto kInterval = 500ms;
  ASSERT_NO_FATAL_FAILURE(start_sampling_every("500ms",
                       "[programs.late]\ncommand = [\"sh\", \"-c\", " +
                           toml_string("sleep 3; exec '" + helper_binary() + "' --alloc-mb 100 --stay") +
                           "]\nmemory_limit = \"64MiB\"\nrestart_delay = \"100ms\"\nrestart_window = \"0s\"\n"));
  const pid_t child = only_child();
  ASSERT_GT(child, 0) << vigil_->output();
  // The helper's own 64 MiB, not sh's, nor vigil's image between fork and
  // exec (an ASan build's is over 64 MiB).
  const std::string helper = fs::canonical(helper_binary()).string();
  ASSERT_TRUE(poll_until([&] { return exe_of(child) == helper && status_kib(child, "VmRSS").value_or(0) >= 64 * 1024; },
                         kEventually, 5ms))
      << vigil_->output();
  const auto over = std::chrono::steady_clock::now();
  const Labels memory{{"program", "late"}, {"reason", "memory"}};
  ASSERT_TRUE(scrape_until([&](const Exposition& e) { return value_or(e, "vigil_restarts_total", memory, 0) >= 1; }))
      << vigil_->output();
  const auto took = std::chrono::steady_clock::now() - over;
  // 3 intervals, plus a loaded machine's slack: far below the idle pace
  // (kIdleSampleStride intervals, 30 s here).
  EXPECT_LT(took, 3 * kInterval + 2s) << vigil_->output();
}

// A scrape shows figures no staler than one sample_interval, though the
// timer reads an idle tree only once a minute: a child idle for 3 intervals
// that then takes 64 MiB shows it in a scrape within one interval of it.
TEST_F(MetricsTest, AScrapeShowsAnIdleTreesGrowthWithinOneInterval) {
  constexpr auto kInterval = 1s;
  ASSERT_NO_FATAL_FAILURE(start_sampling_every("1s", "[programs.late]\ncommand = [\"sh\", \"-c\", " +
                                 toml_string("sleep 3; exec '" + helper_binary() + "' --alloc-mb 64 --stay") +
                                 "]\n"));
  const pid_t child = only_child();
  ASSERT_GT(child, 0) << vigil_->output();
  const Labels late{{"program", "late"}};
  // Settled: the tree (sh and its sleep) is read and found still.
  ASSERT_TRUE(scrape_until([&](const Exposition& e) { return value_or(e, "vigil_memory_rss_bytes", late, 0) > 0; }));
  // The helper's own 64 MiB, not sh's, nor vigil's image between fork and
  // exec (an ASan build's is over 64 MiB).
  const std::string helper = fs::canonical(helper_binary()).string();
  ASSERT_TRUE(poll_until([&] { return exe_of(child) == helper && status_kib(child, "VmRSS").value_or(0) >= 64 * 1024; },
                         kEventually, 5ms))
      << vigil_->output();
  const auto grown = std::chrono::steady_clock::now();
  ASSERT_TRUE(scrape_until([&](const Exposition& e) {
    return value_or(e, "vigil_memory_rss_bytes", late, 0) >= 64.0 * kMiB;
  })) << vigil_->output();
  EXPECT_LT(std::chrono::steady_clock::now() - grown, kInterval + 2s) << vigil_->output();
}

// A scraper at a steady rhythm (Prometheus's scrape_interval) finds its
// trees already read: the sampling timer reads them half an interval ahead
// of the expected scrape, off the request. Seen in vigil's read(2) count
// (/proc/PID/io) over each GET: a scrape before the rhythm is known reads
// every still tree (two files each), one at the learnt rhythm next to none.
std::uint64_t read_syscalls(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/io");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("syscr:", 0) == 0) return std::stoull(line.substr(6));
  ADD_FAILURE() << "no syscr in /proc/" << pid << "/io";
  return 0;
}

TEST_F(MetricsTest, ScrapesAtARhythmFindTheirTreesReadAhead) {
  constexpr int kInstances = 100;
  ASSERT_NO_FATAL_FAILURE(start_sampling_every(
      "1s", "[programs.still]\ncommand = [\"sleep\", \"1000\"]\ninstances = " + std::to_string(kInstances) +
                "\nmin_uptime = \"0s\"\n"));
  // Every tree read twice and found still: read next in a minute.
  ASSERT_TRUE(poll_until([&] { return child_pids(vigil_->pid()).size() == kInstances; }));
  auto api = [&] { return http_get(port_, "/api/v1/vigil"); };
  ASSERT_TRUE(poll_until([&] { return api().has_value(); }));
  const auto settled = std::chrono::steady_clock::now() + 2500ms;
  std::this_thread::sleep_until(settled);  // the schedule's own time, not a wait for an event

  // Scrapes 1.5 intervals apart: without reading ahead, each finds every
  // tree older than one interval and reads it.
  constexpr auto kRhythm = 1500ms;
  std::vector<std::uint64_t> reads;
  auto next = std::chrono::steady_clock::now();
  for (int k = 0; k < 6; ++k) {
    std::this_thread::sleep_until(next);
    next += kRhythm;
    const std::uint64_t before = read_syscalls(vigil_->pid());
    const Exposition e = scrape();
    reads.push_back(read_syscalls(vigil_->pid()) - before);
    ASSERT_EQ(e.find("vigil_up").size(), static_cast<std::size_t>(kInstances));
  }
  std::ostringstream seen;
  for (auto n : reads) seen << n << " ";
  // The second scrape, with no rhythm known yet, reads every tree (the
  // first may have found them read at start-up, under a second ago).
  EXPECT_GE(reads[1], 2u * kInstances) << seen.str();
  // From the third on the rhythm is known (a loaded machine may make one
  // scrape late enough to read again: the fewest of three).
  EXPECT_LT(*std::min_element(reads.begin() + 3, reads.end()), kInstances / 4) << seen.str();
}

TEST_F(MetricsTest, TreeRssCountsAGrandchild) {
  // sh is tiny; the 100 MiB belong to its child.
  ASSERT_NO_FATAL_FAILURE(start(
      "[programs.tree]\ncommand = [\"sh\", \"-c\", " +
      toml_string("'" + helper_binary() + "' --alloc-mb 100 & wait") + "]\n\n"));
  const Labels tree{{"program", "tree"}};
  ASSERT_TRUE(scrape_until([&](const Exposition& e) {
    return value_or(e, "vigil_memory_rss_bytes", tree, 0) > 90.0 * kMiB;
  })) << vigil_->output();

  // The main process itself (sh) holds a small part of that.
  auto api = http_get(port_, "/api/v1/programs/tree");
  ASSERT_TRUE(api && api->status == 200);
  auto j = nlohmann::json::parse(api->body);
  ASSERT_EQ(j.size(), 1u) << api->body;
  const pid_t sh = j[0]["pid"].get<pid_t>();
  ASSERT_GT(sh, 0) << api->body;
  auto sh_rss_kib = status_kib(sh, "VmRSS");
  ASSERT_TRUE(sh_rss_kib);
  EXPECT_LT(*sh_rss_kib, 20u * 1024) << "sh alone";
}

TEST_F(MetricsTest, MemoryReportedOnTheHeartbeatFdIsExported) {
  ASSERT_NO_FATAL_FAILURE(start(
      "[programs.rep]\n"
      "command = [\"sh\", \"-c\", \"echo MEMORY=123456 >&3; exec sleep 100\"]\n\n"));
  EXPECT_TRUE(scrape_until([](const Exposition& e) {
    return value_or(e, "vigil_memory_reported_bytes", {{"program", "rep"}}, 0) == 123456;
  })) << vigil_->output();
}

TEST_F(MetricsTest, CpuSecondsGrowForABusyChild) {
  ASSERT_NO_FATAL_FAILURE(start(helper_program("busy", {"--spin"}) + helper_program("idle", {})));
  double last = 0;
  ASSERT_TRUE(scrape_until([&](const Exposition& e) {
    double now = value_or(e, "vigil_cpu_seconds_total", {{"program", "busy"}}, -1);
    EXPECT_GE(now, last) << "a counter never goes down";
    last = std::max(last, now);
    return now >= 0.5;
  })) << vigil_->output();
  const Exposition e = scrape();
  EXPECT_LT(value_or(e, "vigil_cpu_seconds_total", {{"program", "idle"}}, -1), 0.3);
  EXPECT_GE(value_or(e, "vigil_cpu_seconds_total", {{"program", "idle"}}, -1), 0);
}

// The fallback (no children lists in the kernel) keeps, between rounds,
// what it needs for the live processes only: every pid that was once a
// parent must not stay in its map (and be visited by every later pass)
// after it is gone.
TEST(ProcSamplerTest, ForgetsParentsThatAreGone) {
  constexpr int kParents = 150;
  ProcSampler sampler(ProcSampler::Mode::scan);
  auto scan = [&] {
    sampler.begin_round();
    sampler.read_tree(::getpid());
  };
  scan();
  const std::size_t before = sampler.parents();

  // kParents processes, each the parent of one grandchild, each pair in a
  // process group of its own.
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  std::vector<pid_t> parents;
  const pid_t test = ::getpid();
  for (int k = 0; k < kParents; ++k) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != test) ::_exit(1);
      ::setpgid(0, 0);
      const pid_t parent = ::getpid();
      if (::fork() == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() == parent) (void)!::write(ready[1], "x", 1);
        for (;;) ::pause();
      }
      for (;;) ::pause();
    }
    parents.push_back(pid);
  }
  ::close(ready[1]);
  char buf[kParents];
  std::size_t got = 0;
  while (got < kParents) {
    ssize_t n = ::read(ready[0], buf, sizeof buf);
    if (n <= 0 && errno != EINTR) break;
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  ::close(ready[0]);
  EXPECT_EQ(got, static_cast<std::size_t>(kParents));

  scan();
  const std::size_t with = sampler.parents();
  for (pid_t pid : parents) ::kill(-pid, SIGKILL);
  for (pid_t pid : parents) {
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  EXPECT_GE(with, before + kParents * 9 / 10) << "the new parents were seen";
  // Other tests on the machine come and go: a margin, far below kParents.
  EXPECT_TRUE(poll_until([&] {
    scan();
    return sampler.parents() <= before + 30;
  })) << sampler.parents() << " parents remembered, " << before << " before";
}

// ---------------------------------------------------------------------------
// A hostile client

TEST_F(MetricsTest, ManySilentConnectionsDoNotDelayAScrape) {
  constexpr int kSilent = 500;
  constexpr int kCap = 256;  // HttpLimits::max_connections
  // This process holds the client ends: make room for them (restored at the end).
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  const rlim_t wanted = kSilent + 500;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < wanted)
    GTEST_SKIP() << "the hard fd limit (" << rl.rlim_max << ") is too low for " << kSilent
                 << " connections";
  struct RestoreLimit {
    rlimit old;
    ~RestoreLimit() { ::setrlimit(RLIMIT_NOFILE, &old); }
  } restore{rl};
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < wanted) {
    rlimit raised = rl;
    raised.rlim_cur = wanted;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &raised), 0);
  }

  ASSERT_NO_FATAL_FAILURE(start(helper_program("web", {})));
  const double fds_before = value_or(scrape(), "vigil_process_open_fds", {}, -1);

  std::vector<UniqueFd> silent;
  for (int k = 0; k < kSilent; ++k) {
    UniqueFd fd = connect_loopback(port_);
    ASSERT_TRUE(fd) << k << ": " << std::strerror(errno);
    silent.push_back(std::move(fd));
  }
  // vigil has taken them all, and kept no more than its cap: each one
  // beyond it closed the oldest (a scrape is a connection too, and closes
  // one more). An evicted connection counts until evhttp has freed it, a
  // loop turn or two later: a burst of them passes the cap for that long.
  auto settled = scrape_until([&](const Exposition& e) {
    return value_or(e, "vigil_http_connections_dropped_total", {}, -1) >= kSilent - kCap &&
           value_or(e, "vigil_process_open_fds", {}, 1e9) <= fds_before + kCap + 5 &&
           value_or(e, "vigil_http_connections", {}, 1e9) <= kCap + 1;
  });
  ASSERT_TRUE(settled) << vigil_->output();
  const auto t0 = SteadyClock::now();
  auto reply = http_get(port_, "/metrics", 2000ms);
  const auto took = SteadyClock::now() - t0;
  ASSERT_TRUE(reply) << "no answer within 2s";
  EXPECT_EQ(reply->status, 200);
  EXPECT_LT(took, 2s);

  // The closed ones are the oldest, and each reads EOF; the rest stay open.
  const double dropped =
      value_or(parse_exposition(reply->body), "vigil_http_connections_dropped_total", {}, -1);
  ASSERT_GE(dropped, kSilent - kCap);
  auto closed_by_vigil = [&](const UniqueFd& fd) {
    char c;
    return ::recv(fd.get(), &c, 1, MSG_DONTWAIT) == 0;
  };
  int oldest_closed = 0;
  EXPECT_TRUE(poll_until([&] {
    while (oldest_closed < kSilent && closed_by_vigil(silent[oldest_closed])) ++oldest_closed;
    return oldest_closed >= dropped;
  })) << oldest_closed << " of the oldest read EOF; vigil dropped " << dropped;
  EXPECT_EQ(oldest_closed, dropped);
  for (int k = oldest_closed; k < kSilent; ++k)
    ASSERT_FALSE(closed_by_vigil(silent[k])) << "connection " << k << " of " << kSilent;

  // Closed by the client: vigil lets go of every one of them.
  silent.clear();
  EXPECT_TRUE(poll_until([&] {
    return value_or(scrape(), "vigil_process_open_fds", {}, 1e9) <= fds_before + 5;
  })) << vigil_->output();
}

// Out of fds, accept() fails and the connection stays in the backlog: the
// listener is readable on every loop turn. vigil pauses accepting instead
// of spinning (and of libevent warning on every turn), and serves again
// once fds are free.
TEST_F(MetricsTest, OutOfFdsVigilPausesAcceptingInsteadOfSpinning) {
  ASSERT_NO_FATAL_FAILURE(start(helper_program("web", {})));
  const double open_fds = value_or(scrape(), "vigil_process_open_fds", {}, -1);
  ASSERT_GT(open_fds, 0);
  // vigil's limit, lowered from outside: room for 20 more fds.
  rlimit low{static_cast<rlim_t>(open_fds) + 20, static_cast<rlim_t>(open_fds) + 20};
  ASSERT_EQ(::prlimit(vigil_->pid(), RLIMIT_NOFILE, &low, nullptr), 0) << std::strerror(errno);

  std::vector<UniqueFd> clients;
  for (int k = 0; k < 60; ++k) {
    // The kernel completes the handshake into the backlog whether or not
    // vigil accepts.
    UniqueFd fd = connect_loopback(port_);
    ASSERT_TRUE(fd) << k << ": " << std::strerror(errno);
    clients.push_back(std::move(fd));
  }
  // vigil took what it could: its fds are at the limit.
  const fs::path fd_dir = "/proc/" + std::to_string(vigil_->pid()) + "/fd";
  ASSERT_TRUE(poll_until([&] {
    std::error_code ec;
    auto n = std::distance(fs::directory_iterator(fd_dir, ec), fs::directory_iterator());
    return !ec && n + 2 >= static_cast<long>(low.rlim_cur);
  })) << vigil_->output();

  auto cpu_seconds = [&] {
    std::string stat = read_file("/proc/" + std::to_string(vigil_->pid()) + "/stat");
    std::istringstream in(stat.substr(stat.rfind(')') + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && in >> field; ++i)
      if (i == 14 || i == 15) ticks += std::stod(field);
    return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
  };
  const double cpu0 = cpu_seconds();
  const auto t0 = SteadyClock::now();
  std::this_thread::sleep_for(2s);  // measuring an idle period: nothing to poll for
  const double cpu = cpu_seconds() - cpu0;
  const double wall = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  EXPECT_LT(cpu / wall, 0.2) << "vigil used " << cpu << " s of CPU in " << wall << " s";
  const std::string out = vigil_->output();
  EXPECT_EQ(out.find("Error from accept"), std::string::npos) << "libevent's warning per attempt";
  std::size_t warnings = 0;
  for (auto at = out.find("cannot accept"); at != std::string::npos; at = out.find("cannot accept", at + 1))
    ++warnings;
  EXPECT_LE(warnings, 2u) << out;

  // Room again (the clients go, and so do their fds in vigil): served again.
  clients.clear();
  EXPECT_TRUE(poll_until([&] {
    auto r = http_get(port_, "/healthz", 1000ms);
    return r && r->status == 200;
  })) << vigil_->output();
  EXPECT_TRUE(vigil_->running());
}

}  // namespace
}  // namespace vigil::it

namespace vigil::it {
namespace {

// A tree is read through the kernel's children lists: the reads are the
// tree's own processes, not every process on the machine, and it finds
// what the fallback's pass over /proc finds: here, the test's own child
// and its memory, and a child forked by a second thread of this process
// (listed under that thread, not the main one).
TEST(ProcSamplerTest, ChildrenListsFindWhatAPassOverProcFinds) {
  const pid_t child = start_test_process({helper_binary(), "--alloc-mb", "8", "--stay"}, ".", -1, -1);
  ASSERT_GT(child, 0);
  pid_t from_thread = -1;
  std::thread([&] {
    from_thread = ::fork();
    if (from_thread == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (;;) ::pause();
    }
  }).join();
  ASSERT_GT(from_thread, 0);
  auto has = [](const TreeSample* t, pid_t pid) {
    return t && std::any_of(t->members.begin(), t->members.end(),
                            [pid](const ProcStat& m) { return m.pid == pid; });
  };
  ProcSampler lists;
  if (!lists.children_lists()) GTEST_SKIP() << "this kernel keeps no children lists (CONFIG_PROC_CHILDREN)";
  ASSERT_TRUE(poll_until([&] {
    const TreeSample* t = lists.read_tree(child);
    return t && t->usage.rss_bytes >= 8u << 20;
  }));
  const TreeSample* mine = lists.read_tree(::getpid());
  ASSERT_NE(mine, nullptr);
  EXPECT_TRUE(has(mine, child));
  EXPECT_TRUE(has(mine, from_thread)) << "a child of a second thread";
  const std::size_t members = mine->members.size();
  const std::uint64_t reads = lists.stat_reads();
  lists.read_tree(::getpid());
  EXPECT_LE(lists.stat_reads() - reads, members + 2) << "one stat per process of the tree";

  ProcSampler scan(ProcSampler::Mode::scan);
  scan.begin_round();
  const TreeSample* whole = scan.read_tree(::getpid());
  ASSERT_NE(whole, nullptr);
  EXPECT_TRUE(has(whole, child));
  EXPECT_TRUE(has(whole, from_thread));
  EXPECT_GE(scan.read_tree(child)->usage.rss_bytes, 8u << 20);
  EXPECT_EQ(scan.read_tree(-5), nullptr);
  ::kill(child, SIGKILL);
  ::kill(from_thread, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::waitpid(from_thread, nullptr, 0);
}

}  // namespace
}  // namespace vigil::it
