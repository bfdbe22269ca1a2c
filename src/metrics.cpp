// One MetricFamily per metric name; per-instance series labelled
// {program, index}. No pid and no free text ever becomes a label value.
#include "metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <deque>
#include <limits>
#include <sstream>

namespace vigil {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

struct Families {
  std::deque<MetricFamily> list;  // deque: references stay valid as it grows
  MetricFamily& add(const char* name, const char* help, MetricType type) {
    list.push_back(MetricFamily{name, help, type, {}});
    return list.back();
  }
};

ClientMetric labelled(const InstanceSnapshot& s) {
  ClientMetric m;
  m.label = {{"index", std::to_string(s.index)}, {"program", s.program}};
  return m;
}

void gauge(MetricFamily& f, ClientMetric m, double v) {
  m.gauge.value = v;
  f.metric.push_back(std::move(m));
}

void counter(MetricFamily& f, ClientMetric m, double v) {
  m.counter.value = v;
  f.metric.push_back(std::move(m));
}

ClientMetric with(ClientMetric m, const char* name, std::string value) {
  m.label.push_back({name, std::move(value)});
  return m;
}

}  // namespace

std::string render_metrics(const std::vector<InstanceSnapshot>& instances,
                           const std::vector<WatchSnapshot>& watches, const SelfSnapshot& self) {
  Families f;
  auto& up = f.add("vigil_up", "1 while the instance is running and ready.", MetricType::Gauge);
  auto& state = f.add("vigil_state", "Current state of the instance: 1 for the current state.",
                      MetricType::Gauge);
  auto& restarts = f.add("vigil_restarts_total", "Restarts of the instance, by reason.",
                         MetricType::Counter);
  auto& exits = f.add("vigil_exits_total", "Exits of the instance's process, by kind.",
                      MetricType::Counter);
  auto& last_exit = f.add("vigil_last_exit_code",
                          "Last exit status of the instance's process (128+signal when killed).",
                          MetricType::Gauge);
  auto& start_time = f.add("vigil_start_time_seconds",
                           "Unix time the current process of the instance started.",
                           MetricType::Gauge);
  auto& heartbeats = f.add("vigil_heartbeats_total", "Heartbeat messages received.",
                           MetricType::Counter);
  auto& misses = f.add("vigil_heartbeat_misses_total",
                       "Heartbeat intervals that passed with no heartbeat.", MetricType::Counter);
  auto& hb_last = f.add("vigil_heartbeat_last_timestamp_seconds",
                        "Unix time of the last heartbeat.", MetricType::Gauge);
  auto& hb_interval = f.add("vigil_heartbeat_interval_seconds",
                            "Configured heartbeat interval.", MetricType::Gauge);
  auto& proto = f.add("vigil_protocol_errors_total", "Malformed heartbeat protocol input.",
                      MetricType::Counter);
  auto& rss = f.add("vigil_memory_rss_bytes",
                    "Resident memory of the instance's whole process tree, from /proc.",
                    MetricType::Gauge);
  auto& reported = f.add("vigil_memory_reported_bytes",
                         "Memory the instance reported about itself (MEMORY=).",
                         MetricType::Gauge);
  auto& limit = f.add("vigil_memory_limit_bytes", "Configured memory limit.", MetricType::Gauge);
  auto& cpu = f.add("vigil_cpu_seconds_total",
                    "User and system CPU time of the instance's process tree.",
                    MetricType::Counter);
  auto& probe_ok = f.add("vigil_probe_success", "Result of the last liveness probe.",
                         MetricType::Gauge);
  auto& probe_dur = f.add("vigil_probe_duration_seconds", "Liveness probe latency.",
                          MetricType::Histogram);
  auto& log_bytes = f.add("vigil_log_bytes_total", "Bytes of output written to the logs, by stream.",
                          MetricType::Counter);
  auto& log_dropped = f.add("vigil_log_dropped_bytes_total",
                            "Bytes of output dropped because the log could not keep up.",
                            MetricType::Counter);
  auto& sticky = f.add("vigil_sticky_connections", "Open proxied connections per instance.",
                       MetricType::Gauge);
  auto& sticky_acc = f.add("vigil_sticky_connections_accepted_total",
                           "Proxied connections accepted per instance.", MetricType::Counter);

  for (const auto& s : instances) {
    ClientMetric base = labelled(s);
    gauge(up, base, s.up ? 1 : 0);
    for (State st : kAllStates) gauge(state, with(base, "state", to_string(st)), st == s.state);
    for (RestartReason r : kAllRestartReasons)
      counter(restarts, with(base, "reason", to_string(r)),
              static_cast<double>(s.restarts[static_cast<std::size_t>(r)]));
    for (ExitKind k : {ExitKind::clean, ExitKind::code, ExitKind::signal})
      counter(exits, with(base, "kind", to_string(k)),
              static_cast<double>(s.exits[static_cast<std::size_t>(k)]));
    // Gauges with no value yet are absent rather than 0 (0 would read as
    // "exited cleanly" or "started in 1970").
    if (s.last_exit_code) gauge(last_exit, base, *s.last_exit_code);
    if (s.start_time_seconds > 0) gauge(start_time, base, s.start_time_seconds);
    counter(heartbeats, base, static_cast<double>(s.heartbeats));
    counter(misses, base, static_cast<double>(s.heartbeat_misses));
    if (s.heartbeat_last_seconds) gauge(hb_last, base, *s.heartbeat_last_seconds);
    if (s.heartbeat_interval_seconds) gauge(hb_interval, base, *s.heartbeat_interval_seconds);
    counter(proto, base, static_cast<double>(s.protocol_errors));
    gauge(rss, base, static_cast<double>(s.rss_bytes));
    if (s.reported_memory_bytes)
      gauge(reported, base, static_cast<double>(*s.reported_memory_bytes));
    if (s.memory_limit_bytes) gauge(limit, base, static_cast<double>(*s.memory_limit_bytes));
    counter(cpu, base, s.cpu_seconds);
    if (s.probe) {
      gauge(probe_ok, base, s.probe->success.value_or(false) ? 1 : 0);
      ClientMetric h = base;
      h.histogram.sample_count = s.probe->count;
      h.histogram.sample_sum = s.probe->sum_seconds;
      for (std::size_t i = 0; i < s.probe->bucket_bounds.size(); ++i)
        h.histogram.bucket.push_back({s.probe->bucket_counts[i], s.probe->bucket_bounds[i]});
      h.histogram.bucket.push_back({s.probe->count, std::numeric_limits<double>::infinity()});
      probe_dur.metric.push_back(std::move(h));
    }
    counter(log_bytes, with(base, "stream", "stdout"), static_cast<double>(s.log_bytes[0]));
    counter(log_bytes, with(base, "stream", "stderr"), static_cast<double>(s.log_bytes[1]));
    counter(log_dropped, base, static_cast<double>(s.log_dropped_bytes));
    if (s.sticky_connections) gauge(sticky, base, static_cast<double>(*s.sticky_connections));
    if (s.sticky_accepted) counter(sticky_acc, base, static_cast<double>(*s.sticky_accepted));
  }

  auto& watch_up = f.add("vigil_watch_up", "Last result of each [watch.*] check.",
                         MetricType::Gauge);
  for (const auto& w : watches) {
    ClientMetric m;
    m.label = {{"watch", w.name}};
    gauge(watch_up, m, w.up ? 1 : 0);
  }

  auto& reloads = f.add("vigil_config_reloads_total", "Configuration reloads, by result.",
                        MetricType::Counter);
  counter(reloads, with({}, "result", "failure"), static_cast<double>(self.reloads_failure));
  counter(reloads, with({}, "result", "success"), static_cast<double>(self.reloads_success));
  gauge(f.add("vigil_config_last_reload_successful", "1 if the last configuration reload applied.",
              MetricType::Gauge),
        {}, self.last_reload_ok ? 1 : 0);
  gauge(f.add("vigil_build_info", "Build information of vigil.", MetricType::Gauge),
        with({}, "version", self.version), 1);
  gauge(f.add("vigil_process_resident_memory_bytes", "Resident memory of vigil itself.",
              MetricType::Gauge),
        {}, static_cast<double>(self.rss_bytes));
  counter(f.add("vigil_process_cpu_seconds_total", "User and system CPU time of vigil itself.",
                MetricType::Counter),
          {}, self.cpu_seconds);
  gauge(f.add("vigil_process_open_fds", "Open file descriptors of vigil.", MetricType::Gauge), {},
        self.open_fds);
  gauge(f.add("vigil_process_max_fds", "File descriptor limit of vigil.", MetricType::Gauge), {},
        static_cast<double>(self.max_fds));
  gauge(f.add("vigil_process_start_time_seconds", "Unix time vigil started.", MetricType::Gauge),
        {}, self.start_time_seconds);

  // Families with no series would print HELP/TYPE only; leave them out.
  std::vector<MetricFamily> out;
  out.reserve(f.list.size());
  for (auto& fam : f.list)
    if (!fam.metric.empty()) out.push_back(std::move(fam));
  std::ostringstream os;
  prometheus::TextSerializer().Serialize(os, out);
  return os.str();
}

}  // namespace vigil
