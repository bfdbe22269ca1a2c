// End to end with a real Prometheus server: it scrapes the real vigil every
// second, and a PromQL query through its HTTP API sees the restarts of a
// crash-looping child grow. Prometheus runs on loopback in the test's temp
// dir (its own TSDB), with PR_SET_PDEATHSIG, and is stopped at the end.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "harness.h"
#include "metrics_client.h"

namespace vigil::it {
namespace {

using metrics_client::http_get;

constexpr const char* kPrometheus = "/usr/bin/prometheus";

// A Prometheus server scraping `target` every second, listening on a free
// loopback port, its output in dir/prometheus.output.
class PrometheusServer {
 public:
  PrometheusServer(const TempDir& dir, const std::string& target) : dir_(dir) {
    dir.write("prometheus.yml",
              "global:\n"
              "  scrape_interval: 1s\n"
              "  evaluation_interval: 1s\n"
              "scrape_configs:\n"
              "  - job_name: vigil\n"
              "    static_configs:\n"
              "      - targets: ['" + target + "']\n");
    port_ = metrics_client::free_loopback_port();
    const std::vector<std::string> args{
        kPrometheus,
        "--config.file=" + (dir / "prometheus.yml").string(),
        "--storage.tsdb.path=" + (dir / "tsdb").string(),
        "--web.listen-address=127.0.0.1:" + std::to_string(port_),
        "--log.level=warn"};
    const fs::path out_path = dir / "prometheus.output";
    UniqueFd out(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!out) throw std::runtime_error("cannot create " + out_path.string());
    pid_ = start_test_process(args, dir.path(), out.get(), out.get());
  }

  ~PrometheusServer() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status;
    bool reaped = poll_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, 10s, 20ms);
    if (!reaped) {
      ::kill(pid_, SIGKILL);
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  std::uint16_t port() const { return port_; }
  bool running() const {
    int status;
    return ::waitpid(pid_, &status, WNOHANG) == 0;
  }
  std::string output() const { return read_file(dir_.path() / "prometheus.output"); }

  // GET /api/v1/query?query=...: the "result" array, or nullopt when the
  // query did not succeed.
  std::optional<nlohmann::json> query(const std::string& promql) const {
    auto reply = http_get(port_, "/api/v1/query?query=" + metrics_client::url_encode(promql));
    if (!reply || reply->status != 200) return std::nullopt;
    auto j = nlohmann::json::parse(reply->body, nullptr, false);
    if (!j.is_object() || j.value("status", "") != "success") return std::nullopt;
    return j["data"]["result"];
  }
  // The value of a one-element instant vector, or nullopt.
  std::optional<double> scalar(const std::string& promql) const {
    auto r = query(promql);
    if (!r || !r->is_array() || r->size() != 1) return std::nullopt;
    return std::stod((*r)[0]["value"][1].get<std::string>());
  }

 private:
  const TempDir& dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

using PrometheusTest = BinaryTest;

TEST_F(PrometheusTest, PromQlSeesRestartsOfACrashLoopIncrease) {
  if (::access(kPrometheus, X_OK) != 0) GTEST_SKIP() << kPrometheus << " is not installed";
  VigilProcess& vigil = run_vigil_with(
      "[http]\n"
      "listen = \"127.0.0.1:0\"\n"
      "\n" +
      helper_program("crash", {"--crash-after", "300"},
                     "restart_delay = \"100ms\"\nrestart_delay_max = \"200ms\"\n"
                     "restart_window = \"0s\"") +
      helper_program("steady", {}));
  ASSERT_TRUE(vigil.wait_for_output("serving /metrics")) << vigil.output();
  auto vigil_port = metrics_client::served_port(vigil.output());
  ASSERT_TRUE(vigil_port) << vigil.output();

  // The port was free a moment ago; another process may have taken it
  // since: then start again on another.
  std::unique_ptr<PrometheusServer> prom;
  for (int attempt = 0; attempt < 3 && !prom; ++attempt) {
    prom = std::make_unique<PrometheusServer>(dir_, "127.0.0.1:" + std::to_string(*vigil_port));
    bool ready = poll_until(
        [&] {
          if (!prom->running()) return true;
          auto r = http_get(prom->port(), "/-/ready", 1000ms);
          return r && r->status == 200;
        },
        30s, 100ms);
    ASSERT_TRUE(ready) << "Prometheus not ready within 30s\n" << prom->output();
    if (!prom->running()) {
      ASSERT_NE(prom->output().find("address already in use"), std::string::npos)
          << prom->output();
      prom.reset();
    }
  }
  ASSERT_TRUE(prom) << "no free port for Prometheus";

  // vigil is up as a target, and the counter is seen to grow between two
  // evaluations (each a scrape or more apart).
  const std::string restarts = R"(vigil_restarts_total{job="vigil",program="crash",index="0",reason="exit"})";
  std::optional<double> first;
  bool grew = poll_until(
      [&] {
        auto v = prom->scalar(restarts);
        if (!v) return false;
        if (!first) first = v;
        return *v > *first;
      },
      30s, 250ms);
  EXPECT_TRUE(grew) << "first value " << (first ? std::to_string(*first) : "none") << "\n"
                    << prom->output();
  EXPECT_EQ(prom->scalar(R"(up{job="vigil"})"), 1.0) << prom->output();

  // The query an alert rule would use.
  EXPECT_TRUE(poll_until(
      [&] {
        auto r = prom->query(R"(increase(vigil_restarts_total{program="crash",reason="exit"}[30s]) > 0)");
        return r && r->size() == 1;
      },
      20s, 250ms))
      << prom->output();
  // The steady program never restarted: its series exist, at 0.
  auto steady = prom->query(R"(sum(vigil_restarts_total{program="steady"}))");
  ASSERT_TRUE(steady && steady->size() == 1);
  EXPECT_EQ((*steady)[0]["value"][1], "0");
  EXPECT_EQ(prom->query(R"(vigil_restarts_total{program="steady"})")->size(), 7u);

  prom.reset();
  vigil.signal(SIGTERM);
  EXPECT_EQ(vigil.wait_exit(), 0) << vigil.output();
}

}  // namespace
}  // namespace vigil::it
