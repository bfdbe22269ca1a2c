// The exposition text, and MetricsRenderer's reuse of what did not change:
// whatever it reuses, its text must be exactly that of a fresh render.
#include "metrics.h"

#include "probe_check.h"

#include <gtest/gtest.h>

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <bit>
#include <limits>
#include <random>
#include <sstream>

namespace vigil {
namespace {

InstanceSnapshot instance(const std::string& program, int index) {
  InstanceSnapshot s;
  s.program = program;
  s.index = index;
  s.state = State::running;
  s.up = true;
  s.start_time_seconds = 1.7e9 + index;
  s.rss_bytes = 1000u * static_cast<unsigned>(index + 1);
  return s;
}

SelfSnapshot self() {
  SelfSnapshot s;
  s.version = "1.2.3";
  s.rss_bytes = 4096;
  s.open_fds = 12;
  s.max_fds = 1024;
  return s;
}

std::vector<InstanceSnapshot> three() {
  return {instance("web", 0), instance("web", 1), instance("worker", 0)};
}

// Renders with `r` and checks the text against a render from scratch.
std::string render_checked(MetricsRenderer& r, const std::vector<InstanceSnapshot>& snaps,
                           const SelfSnapshot& me = self()) {
  std::string text = r.render(snaps, {}, me);
  EXPECT_EQ(text, render_metrics(snaps, {}, me));
  return text;
}

TEST(MetricsRender, SeriesCarryProgramAndIndexAndEveryStateExists) {
  const std::string text = render_metrics(three(), {}, self());
  EXPECT_NE(text.find("# TYPE vigil_up gauge\nvigil_up{index=\"0\",program=\"web\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vigil_state{index=\"1\",program=\"web\",state=\"running\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("vigil_state{index=\"1\",program=\"web\",state=\"fatal\"} 0"),
            std::string::npos);
  EXPECT_NE(text.find("vigil_restarts_total{index=\"0\",program=\"worker\",reason=\"hung\"} 0"),
            std::string::npos);
  EXPECT_NE(text.find("vigil_build_info{version=\"1.2.3\"} 1"), std::string::npos);
  EXPECT_NE(text.find("vigil_http_connections_dropped_total 0"), std::string::npos);
}

TEST(MetricsRender, GaugesWithoutAValueAndFamiliesWithoutSeriesAreAbsent) {
  const std::string text = render_metrics(three(), {}, self());
  EXPECT_EQ(text.find("vigil_last_exit_code"), std::string::npos) << text;
  EXPECT_EQ(text.find("vigil_probe_success"), std::string::npos);
  EXPECT_EQ(text.find("vigil_watch_up"), std::string::npos);
  EXPECT_EQ(text.find("vigil_memory_limit_bytes"), std::string::npos);
}

TEST(MetricsRender, AnUnchangedScrapeSerializesNoInstanceFamilyAgain) {
  MetricsRenderer r;
  const std::string first = render_checked(r, three());
  EXPECT_GT(r.families_serialized(), 10u);
  const std::string second = render_checked(r, three());
  EXPECT_EQ(r.families_serialized(), 0u);
  EXPECT_EQ(first, second);
}

TEST(MetricsRender, AChangedValueSerializesItsFamilyOnly) {
  MetricsRenderer r;
  auto snaps = three();
  render_checked(r, snaps);
  snaps[1].heartbeats = 7;
  const std::string text = render_checked(r, snaps);
  EXPECT_EQ(r.families_serialized(), 1u);
  EXPECT_NE(text.find("vigil_heartbeats_total{index=\"1\",program=\"web\"} 7"), std::string::npos);

  snaps[2].state = State::backoff;
  snaps[2].up = false;
  render_checked(r, snaps);
  EXPECT_EQ(r.families_serialized(), 2u);  // vigil_up and vigil_state
}

TEST(MetricsRender, UpgradesByResult) {
  SelfSnapshot me = self();
  me.upgrades_handover = 3;
  me.upgrades_adopted = 1;
  me.upgrades_failed = 2;
  const std::string text = render_metrics(three(), {}, me);
  EXPECT_NE(text.find("# TYPE vigil_upgrades_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("vigil_upgrades_total{result=\"handover\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("vigil_upgrades_total{result=\"adopted\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("vigil_upgrades_total{result=\"failed\"} 2\n"), std::string::npos) << text;
  // Every result from the start, at 0: increase() needs the series to exist.
  const std::string none = render_metrics(three(), {}, self());
  EXPECT_NE(none.find("vigil_upgrades_total{result=\"handover\"} 0\n"), std::string::npos) << none;
}

TEST(MetricsRender, VigilsOwnFiguresAreFreshOnEveryRender) {
  MetricsRenderer r;
  SelfSnapshot me = self();
  render_checked(r, three(), me);
  me.http_connections_dropped = 3;
  me.http_handler_errors = 2;
  const std::string text = render_checked(r, three(), me);
  EXPECT_NE(text.find("vigil_http_connections_dropped_total 3"), std::string::npos) << text;
  EXPECT_NE(text.find("vigil_http_handler_errors_total 2"), std::string::npos) << text;
}

// A gauge absent on one instance and present on another, then the other way
// round with the same value: the same values in the same order, yet other
// text.
TEST(MetricsRender, WhichInstanceHasAValueIsPartOfWhatChanged) {
  MetricsRenderer r;
  auto snaps = three();
  snaps[0].last_exit_code = 1;
  render_checked(r, snaps);
  snaps[0].last_exit_code.reset();
  snaps[1].last_exit_code = 1;
  const std::string text = render_checked(r, snaps);
  EXPECT_EQ(text.find("vigil_last_exit_code{index=\"0\",program=\"web\"}"), std::string::npos);
  EXPECT_NE(text.find("vigil_last_exit_code{index=\"1\",program=\"web\"} 1"), std::string::npos);
}

TEST(MetricsRender, AnotherSetOfInstancesIsRenderedAfresh) {
  MetricsRenderer r;
  auto snaps = three();
  render_checked(r, snaps);
  snaps.pop_back();  // worker removed by a reload
  std::string text = render_checked(r, snaps);
  EXPECT_EQ(text.find("program=\"worker\""), std::string::npos) << text;

  snaps[1].program = "api";  // same count, same values, another name
  text = render_checked(r, snaps);
  EXPECT_NE(text.find("vigil_up{index=\"1\",program=\"api\"} 1"), std::string::npos) << text;
  EXPECT_EQ(text.find("index=\"1\",program=\"web\""), std::string::npos);

  snaps.clear();
  text = render_checked(r, snaps);
  EXPECT_EQ(text.find("vigil_up{"), std::string::npos);
  EXPECT_NE(text.find("vigil_build_info"), std::string::npos);
}

TEST(MetricsRender, AProbeIsAHistogramWithAnInfBucket) {
  MetricsRenderer r;
  auto snaps = three();
  ProbeSnapshot p;
  p.success = true;
  p.bucket_bounds = {0.1, 1};
  p.bucket_counts = {2, 3};
  p.count = 4;
  p.sum_seconds = 1.5;
  snaps[0].probe = p;
  std::string text = render_checked(r, snaps);
  EXPECT_NE(text.find("vigil_probe_duration_seconds_bucket{index=\"0\",program=\"web\",le=\"+Inf\"} 4"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vigil_probe_success{index=\"0\",program=\"web\"} 1"), std::string::npos);
  snaps[0].probe->bucket_counts = {3, 3};
  text = render_checked(r, snaps);
  EXPECT_EQ(r.families_serialized(), 1u);
}

TEST(MetricsRender, ProbeFailuresExistForEveryKindFromTheStartAndSuccessOnlyOnceKnown) {
  auto snaps = three();
  ProbeSnapshot p;
  p.bucket_bounds = {0.1, 1};
  p.bucket_counts = {0, 0};
  snaps[1].probe = p;
  std::string text = render_metrics(snaps, {}, self());
  for (const char* kind : {"timeout", "refused", "status", "body", "exec"})
    EXPECT_NE(text.find(std::string("vigil_probe_failures_total{index=\"1\",program=\"web\",kind=\"") +
                        kind + "\"} 0"),
              std::string::npos)
        << kind << "\n" << text;
  EXPECT_EQ(text.find("vigil_probe_failures_total{index=\"0\""), std::string::npos)
      << "no probe, no series";
  EXPECT_EQ(text.find("vigil_probe_success"), std::string::npos) << "no probe answered yet";
  snaps[1].probe->success = false;
  snaps[1].probe->failures[static_cast<std::size_t>(ProbeFailure::status)] = 2;
  text = render_metrics(snaps, {}, self());
  EXPECT_NE(text.find("vigil_probe_success{index=\"1\",program=\"web\"} 0"), std::string::npos);
  EXPECT_NE(text.find("vigil_probe_failures_total{index=\"1\",program=\"web\",kind=\"status\"} 2"),
            std::string::npos);
}

WatchSnapshot watch(const std::string& name) {
  WatchSnapshot w;
  w.name = name;
  return w;
}

// The counters of a watch exist at 0 from its creation; its up gauge only
// once there is a result.
TEST(MetricsRender, WatchCountersExistFromTheStartAndUpOnlyWithAResult) {
  std::vector<WatchSnapshot> watches{watch("legacy"), watch("guarded")};
  std::string text = render_metrics(three(), watches, self());
  EXPECT_EQ(text.find("vigil_watch_up"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE vigil_watch_failures_total counter\n"
                      "vigil_watch_failures_total{watch=\"legacy\"} 0\n"
                      "vigil_watch_failures_total{watch=\"guarded\"} 0\n"),
            std::string::npos)
      << text;
  for (const char* w : {"legacy", "guarded"})
    for (const char* r : {"ok", "failed", "timeout"})
      EXPECT_NE(text.find(std::string("vigil_watch_actions_total{result=\"") + r +
                          "\",watch=\"" + w + "\"} 0\n"),
                std::string::npos)
          << w << " " << r << "\n"
          << text;

  watches[0].up = false;
  watches[0].failures = 4;
  watches[0].actions[static_cast<std::size_t>(ActionResult::timeout)] = 1;
  watches[1].up = true;
  text = render_metrics(three(), watches, self());
  EXPECT_NE(text.find("# TYPE vigil_watch_up gauge\nvigil_watch_up{watch=\"legacy\"} 0\n"
                      "vigil_watch_up{watch=\"guarded\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vigil_watch_failures_total{watch=\"legacy\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("vigil_watch_actions_total{result=\"timeout\",watch=\"legacy\"} 1\n"),
            std::string::npos);
}

TEST(MetricsRender, NoWatchNoWatchFamily) {
  const std::string text = render_metrics(three(), {}, self());
  EXPECT_EQ(text.find("vigil_watch"), std::string::npos) << text;
}

TEST(MetricsRender, RollingRestartsArePerProgram) {
  auto snaps = three();
  RolloutSnapshot r;
  r.id = 3;
  r.in_progress = true;
  r.total = 2;
  for (auto& s : snaps)
    if (s.program == "web") {
      s.rollout = r;
      s.rollouts_completed = 2;
      s.rollouts_failed = 1;
    }
  const std::string text = render_metrics(snaps, {}, self());
  EXPECT_NE(text.find("vigil_rollout_in_progress{program=\"web\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("vigil_rollout_in_progress{program=\"worker\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("vigil_rollouts_total{program=\"web\",result=\"completed\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("vigil_rollouts_total{program=\"web\",result=\"failed\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("vigil_rollouts_total{program=\"worker\",result=\"failed\"} 0\n"),
            std::string::npos)
      << "present at 0 from the program's creation";
  EXPECT_EQ(text.find("vigil_rollout_in_progress{program=\"web\"}", text.find("vigil_rollout_in_progress{program=\"web\"}") + 1),
            std::string::npos)
      << "one series per program, not per instance";
}

// ---------------------------------------------------------------------------
// The per-instance families are written directly; their text is the one
// prometheus-cpp's TextSerializer writes for the same series.

std::string serialized(const std::vector<prometheus::MetricFamily>& families) {
  std::ostringstream os;
  prometheus::TextSerializer().Serialize(os, families);
  return os.str();
}

// The text of one family (from its HELP line to the next family's).
std::string family_text(const std::string& text, const std::string& name) {
  const auto start = text.find("# HELP " + name + " ");
  if (start == std::string::npos) return "";
  const auto end = text.find("# HELP ", start + 1);
  return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

TEST(MetricsRender, ValuesAreWrittenAsTextSerializerWritesThem) {
  std::vector<double> values{0.0, -0.0, 1.0, -1.0, 0.1, 1e14, 999999999999999.0, 1e15, 1e16, 1e17, 1e21,
                             1e-7, 123.456, 1796613223.515899, 12345678901234567.0, 5e-324,
                             std::numeric_limits<double>::max(), std::numeric_limits<double>::quiet_NaN(),
                             std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()};
  std::mt19937_64 rng(3);
  for (int i = 0; i < 3000; ++i) {
    values.push_back(std::bit_cast<double>(rng()));
    values.push_back(static_cast<double>(rng() % 10000000000ull) / 1000.0);
    values.push_back(static_cast<double>(rng() >> (rng() % 64)));
  }
  prometheus::MetricFamily f{"v", "v", prometheus::MetricType::Gauge, {}};
  std::string ours = "# HELP v v\n# TYPE v gauge\n";
  for (double v : values) {
    prometheus::ClientMetric m;
    m.gauge.value = v;
    f.metric.push_back(m);
    ours += "v ";
    append_prometheus_value(ours, v);
    ours += '\n';
  }
  // Line by line, so that a failure names the value.
  std::istringstream a(ours), b(serialized({f}));
  std::size_t i = 0;
  for (std::string x, y; std::getline(a, x) && std::getline(b, y); ++i) {
    ASSERT_EQ(x, y) << (i >= 2 ? values[i - 2] : 0.0);
  }
  EXPECT_EQ(i, values.size() + 2);
}

TEST(MetricsRender, AFamilyIsTheTextTextSerializerWritesForIt) {
  // A program name with every character a label value escapes.
  auto snaps = three();
  snaps[1].program = "we\"b\\\nx";
  snaps[1].restarts = {1, 0, 2, 0, 0, 0, 1};
  snaps[1].cpu_seconds = 1234.5678;
  ProbeSnapshot p;
  p.success = false;
  p.bucket_bounds = {0.005, 0.25, 2.5};
  p.bucket_counts = {1, 5, 6};
  p.count = 7;
  p.sum_seconds = 3.25;
  snaps[1].probe = p;
  const std::string text = render_metrics(snaps, {}, self());

  using prometheus::ClientMetric;
  auto labels = [](const InstanceSnapshot& s) {
    return std::vector<ClientMetric::Label>{{"index", std::to_string(s.index)}, {"program", s.program}};
  };
  prometheus::MetricFamily restarts{"vigil_restarts_total", "Restarts of the instance, by reason.",
                                    prometheus::MetricType::Counter, {}};
  for (const auto& s : snaps)
    for (RestartReason r : kAllRestartReasons) {
      ClientMetric m;
      m.label = labels(s);
      m.label.push_back({"reason", to_string(r)});
      m.counter.value = static_cast<double>(s.restarts[static_cast<std::size_t>(r)]);
      restarts.metric.push_back(m);
    }
  EXPECT_EQ(family_text(text, "vigil_restarts_total"), serialized({restarts}));

  prometheus::MetricFamily cpu{"vigil_cpu_seconds_total", "User and system CPU time of the instance's process tree.",
                               prometheus::MetricType::Counter, {}};
  for (const auto& s : snaps) {
    ClientMetric m;
    m.label = labels(s);
    m.counter.value = s.cpu_seconds;
    cpu.metric.push_back(m);
  }
  EXPECT_EQ(family_text(text, "vigil_cpu_seconds_total"), serialized({cpu}));

  prometheus::MetricFamily probe{"vigil_probe_duration_seconds", "Liveness probe latency.",
                                 prometheus::MetricType::Histogram, {}};
  ClientMetric h;
  h.label = labels(snaps[1]);
  h.histogram.sample_count = 7;
  h.histogram.sample_sum = 3.25;
  h.histogram.bucket = {{1, 0.005}, {5, 0.25}, {6, 2.5}, {7, std::numeric_limits<double>::infinity()}};
  probe.metric.push_back(h);
  EXPECT_EQ(family_text(text, "vigil_probe_duration_seconds"), serialized({probe}));
}

TEST(MetricsRender, APieceAResponseStillHoldsIsNotRewritten) {
  MetricsRenderer r;
  auto snaps = three();
  const MetricsText held = r.render_parts(snaps, {}, self());
  const std::string before = held.joined();
  for (auto& s : snaps) s.rss_bytes += 4096;
  const MetricsText next = r.render_parts(snaps, {}, self());
  EXPECT_EQ(held.joined(), before);
  EXPECT_EQ(next.joined(), render_metrics(snaps, {}, self()));
  EXPECT_NE(next.joined(), before);
  EXPECT_EQ(next.size(), next.joined().size());
}

// The cached texts stay in memory between scrapes, thousands of instances'
// worth: no more room than an eighth beyond what they hold, whether
// written the first time (grown from nothing) or again in place, or anew
// beside a copy a response still holds.
TEST(MetricsRender, CachedTextsKeepLittleRoomBeyondTheirSize) {
  std::vector<InstanceSnapshot> snaps;
  for (int i = 0; i < 1000; ++i) snaps.push_back(instance("web", i));
  MetricsRenderer r;
  auto check = [](const MetricsText& t) {
    ASSERT_GE(t.parts.size(), 10u);
    for (std::size_t k = 0; k + 1 < t.parts.size(); ++k) {  // the last: vigil's own, not kept
      const std::string& p = *t.parts[k];
      EXPECT_LE(p.capacity(), p.size() + p.size() / 8 + 256) << p.substr(0, p.find('\n'));
    }
  };
  check(r.render_parts(snaps, {}, self()));
  for (auto& s : snaps) s.rss_bytes = s.rss_bytes * 1000 + 7;  // longer values
  check(r.render_parts(snaps, {}, self()));
  const MetricsText held = r.render_parts(snaps, {}, self());
  for (auto& s : snaps) s.rss_bytes += 1;
  check(r.render_parts(snaps, {}, self()));
}

}  // namespace
}  // namespace vigil
