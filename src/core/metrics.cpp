// One MetricFamily per metric name; per-instance series labelled
// {program, index}. No pid and no free text ever becomes a label value.
#include "metrics.h"

#include "probe_check.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

namespace vigil {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// vigil's own and the per-program families: a few dozen series.
void serialize(std::string& out, const std::vector<MetricFamily>& families) {
  std::ostringstream os;
  prometheus::TextSerializer().Serialize(os, families);
  out += os.view();
}

// An absent series (a gauge with no value yet) in a family's values: a NaN
// no counter or gauge of vigil produces.
constexpr std::uint64_t kAbsent = 0x7ff4'0000'dead'beefULL;

// The series of one family, for one instance at a time. Always records the
// values (to compare with the last render); writes the family's text only
// when given one to write: `name{index="I",program="P"[,label="value"]} value`.
class Series {
 public:
  Series(std::vector<std::uint64_t>& values, std::string* text = nullptr, const char* name = nullptr)
      : values_(values), text_(text), name_(name) {}

  // `labels`: the instance's, escaped and without braces.
  void instance(const std::string& labels) { labels_ = &labels; }
  // Whether any series was written.
  bool wrote() const { return wrote_; }

  void value(double v, const char* label = nullptr, const char* label_value = nullptr) {
    values_.push_back(std::bit_cast<std::uint64_t>(v));
    if (!text_) return;
    begin_line("", label, label_value);
    end_labels();
    append_prometheus_value(*text_, v);
    *text_ += '\n';
  }
  template <typename T>
  void value_if(const std::optional<T>& v) {
    if (v)
      value(static_cast<double>(*v));
    else
      values_.push_back(kAbsent);
  }

  void histogram(const std::optional<ProbeSnapshot>& p) {
    if (!p) {
      values_.push_back(kAbsent);
      return;
    }
    values_.push_back(p->count);
    values_.push_back(std::bit_cast<std::uint64_t>(p->sum_seconds));
    values_.push_back(p->bucket_bounds.size());
    for (std::size_t i = 0; i < p->bucket_bounds.size(); ++i) {
      values_.push_back(std::bit_cast<std::uint64_t>(p->bucket_bounds[i]));
      values_.push_back(p->bucket_counts[i]);
    }
    if (!text_) return;
    // As the text format orders a histogram: count, sum, then the
    // cumulative buckets up to +Inf.
    begin_line("_count");
    end_labels();
    append_count(p->count);
    begin_line("_sum");
    end_labels();
    append_prometheus_value(*text_, p->sum_seconds);
    *text_ += '\n';
    for (std::size_t i = 0; i <= p->bucket_bounds.size(); ++i) {
      const bool inf = i == p->bucket_bounds.size();
      begin_line("_bucket");
      *text_ += ",le=\"";
      append_prometheus_value(*text_, inf ? std::numeric_limits<double>::infinity() : p->bucket_bounds[i]);
      *text_ += '"';
      end_labels();
      append_count(inf ? p->count : p->bucket_counts[i]);
    }
  }

 private:
  // `name<suffix>{index="I",program="P"[,label="value"]`; end_labels() closes.
  void begin_line(const char* suffix, const char* label = nullptr, const char* label_value = nullptr) {
    wrote_ = true;
    std::string& t = *text_;
    t += name_;
    t += suffix;
    t += '{';
    t += *labels_;
    if (label) {
      t += ',';
      t += label;
      t += "=\"";
      append_label_value(t, label_value);
      t += '"';
    }
  }
  void end_labels() { *text_ += "} "; }
  void append_count(std::uint64_t n) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, n);
    text_->append(buf, r.ptr);
    *text_ += '\n';
  }

  std::vector<std::uint64_t>& values_;
  std::string* text_;
  const char* name_;
  const std::string* labels_ = nullptr;
  bool wrote_ = false;
};

double count(std::uint64_t n) { return static_cast<double>(n); }

struct InstanceFamily {
  const char* name;
  const char* help;
  MetricType type;
  void (*series)(const InstanceSnapshot&, Series&);
};

// In the order they are served. Gauges with no value yet are absent rather
// than 0 (0 would read as "exited cleanly" or "started in 1970").
const InstanceFamily kInstanceFamilies[] = {
    {"vigil_up", "1 while the instance is running and ready.", MetricType::Gauge,
     [](const InstanceSnapshot& s, Series& out) { out.value(s.up ? 1 : 0); }},
    {"vigil_state", "Current state of the instance: 1 for the current state.", MetricType::Gauge,
     [](const InstanceSnapshot& s, Series& out) {
       for (State st : kAllStates) out.value(st == s.state, "state", to_string(st));
     }},
    {"vigil_restarts_total", "Restarts of the instance, by reason.", MetricType::Counter,
     [](const InstanceSnapshot& s, Series& out) {
       for (RestartReason r : kAllRestartReasons)
         out.value(count(s.restarts[static_cast<std::size_t>(r)]), "reason", to_string(r));
     }},
    {"vigil_exits_total", "Exits of the instance's process, by kind.", MetricType::Counter,
     [](const InstanceSnapshot& s, Series& out) {
       for (ExitKind k : {ExitKind::clean, ExitKind::code, ExitKind::signal})
         out.value(count(s.exits[static_cast<std::size_t>(k)]), "kind", to_string(k));
     }},
    {"vigil_last_exit_code", "Last exit status of the instance's process (128+signal when killed).",
     MetricType::Gauge,
     [](const InstanceSnapshot& s, Series& out) { out.value_if(s.last_exit_code); }},
    {"vigil_start_time_seconds", "Unix time the current process of the instance started.",
     MetricType::Gauge,
     [](const InstanceSnapshot& s, Series& out) {
       out.value_if(s.start_time_seconds > 0 ? std::optional(s.start_time_seconds) : std::nullopt);
     }},
    {"vigil_heartbeats_total", "Heartbeat messages received.", MetricType::Counter,
     [](const InstanceSnapshot& s, Series& out) { out.value(count(s.heartbeats)); }},
    {"vigil_heartbeat_misses_total", "Heartbeat intervals that passed with no heartbeat.",
     MetricType::Counter,
     [](const InstanceSnapshot& s, Series& out) { out.value(count(s.heartbeat_misses)); }},
    {"vigil_heartbeat_last_timestamp_seconds", "Unix time of the last heartbeat.",
     MetricType::Gauge,
     [](const InstanceSnapshot& s, Series& out) { out.value_if(s.heartbeat_last_seconds); }},
    {"vigil_heartbeat_interval_seconds", "Configured heartbeat interval.", MetricType::Gauge,
     [](const InstanceSnapshot& s, Series& out) { out.value_if(s.heartbeat_interval_seconds); }},
    {"vigil_protocol_errors_total", "Malformed heartbeat protocol input.", MetricType::Counter,
     [](const InstanceSnapshot& s, Series& out) { out.value(count(s.protocol_errors)); }},
    {"vigil_memory_rss_bytes", "Resident memory of the instance's whole process tree, from /proc.",
     MetricType::Gauge,
     [](const InstanceSnapshot& s, Series& out) { out.value(count(s.rss_bytes)); }},
    {"vigil_memory_reported_bytes", "Memory the instance reported about itself (MEMORY=).",
     MetricType::Gauge,
     [](const InstanceSnapshot& s, Series& out) { out.value_if(s.reported_memory_bytes); }},
    {"vigil_memory_limit_bytes", "Configured memory limit.", MetricType::Gauge,
     [](const InstanceSnapshot& s, Series& out) { out.value_if(s.memory_limit_bytes); }},
    {"vigil_cpu_seconds_total", "User and system CPU time of the instance's process tree.",
     MetricType::Counter,
     [](const InstanceSnapshot& s, Series& out) { out.value(s.cpu_seconds); }},
    {"vigil_probe_success", "Result of the last liveness probe (1 passed, 0 failed).",
     MetricType::Gauge,
     [](const InstanceSnapshot& s, Series& out) {
       // Absent until the first probe has answered: 0 would read as a failure.
       out.value_if(s.probe && s.probe->success ? std::optional(*s.probe->success ? 1 : 0)
                                                : std::nullopt);
     }},
    {"vigil_probe_duration_seconds", "Liveness probe latency.", MetricType::Histogram,
     [](const InstanceSnapshot& s, Series& out) { out.histogram(s.probe); }},
    {"vigil_probe_failures_total", "Failed liveness probes, by kind.", MetricType::Counter,
     [](const InstanceSnapshot& s, Series& out) {
       if (!s.probe) {
         out.value_if(std::optional<double>());
         return;
       }
       for (ProbeFailure f : kAllProbeFailures)
         out.value(count(s.probe->failures[static_cast<std::size_t>(f)]), "kind", to_string(f));
     }},
    {"vigil_log_bytes_total", "Bytes of output written to the logs, by stream.",
     MetricType::Counter,
     [](const InstanceSnapshot& s, Series& out) {
       out.value(count(s.log_bytes[0]), "stream", "stdout");
       out.value(count(s.log_bytes[1]), "stream", "stderr");
     }},
    {"vigil_log_dropped_bytes_total", "Bytes of output dropped because the log could not keep up.",
     MetricType::Counter,
     [](const InstanceSnapshot& s, Series& out) { out.value(count(s.log_dropped_bytes)); }},
    {"vigil_sticky_connections", "Open proxied connections per instance.", MetricType::Gauge,
     [](const InstanceSnapshot& s, Series& out) {
       out.value_if(s.sticky ? std::optional(s.sticky->open) : std::nullopt);
     }},
    {"vigil_sticky_connections_accepted_total", "Proxied connections accepted per instance.",
     MetricType::Counter,
     [](const InstanceSnapshot& s, Series& out) {
       out.value_if(s.sticky ? std::optional(s.sticky->accepted) : std::nullopt);
     }},
    {"vigil_sticky_bytes_total",
     "Bytes relayed by the sticky proxy, by direction: in (client to instance), out (instance "
     "to client).",
     MetricType::Counter,
     [](const InstanceSnapshot& s, Series& out) {
       if (!s.sticky) {
         out.value_if(std::optional<double>());
         return;
       }
       out.value(count(s.sticky->bytes_in), "direction", "in");
       out.value(count(s.sticky->bytes_out), "direction", "out");
     }},
    {"vigil_sticky_route_failures_total",
     "Connects to the instance that failed (refused or timed out); the client was sent to the "
     "next instance in hash order.",
     MetricType::Counter,
     [](const InstanceSnapshot& s, Series& out) {
       out.value_if(s.sticky ? std::optional(s.sticky->route_failures) : std::nullopt);
     }},
};
constexpr std::size_t kInstanceFamilyCount = std::size(kInstanceFamilies);

// Per program (label `program` only): its rolling restarts. From the first
// instance of each program in the snapshots; serialized on every render.
std::vector<MetricFamily> program_families(const std::vector<InstanceSnapshot>& instances) {
  MetricFamily in_progress{"vigil_rollout_in_progress",
                           "1 while a rolling restart of the program is under way.",
                           MetricType::Gauge, {}};
  MetricFamily total{"vigil_rollouts_total",
                     "Rolling restarts of the program, by result: completed, or failed (stopped at a "
                     "replacement that did not become ready, or cancelled).",
                     MetricType::Counter, {}};
  MetricFamily rejected{"vigil_sticky_rejected_total",
                        "Connections the sticky proxy closed at once, by reason: no_instance (none "
                        "running and ready took it), max_connections.",
                        MetricType::Counter, {}};
  const std::string* last = nullptr;
  for (const auto& s : instances) {
    if (last && *last == s.program) continue;
    last = &s.program;
    if (s.sticky)
      for (auto [reason, n] : {std::pair{"max_connections", s.sticky->rejected_limit},
                               std::pair{"no_instance", s.sticky->rejected_no_instance}}) {
        ClientMetric c;
        c.label = {{"program", s.program}, {"reason", reason}};
        c.counter.value = count(n);
        rejected.metric.push_back(std::move(c));
      }
    ClientMetric g;
    g.label = {{"program", s.program}};
    g.gauge.value = s.rollout && s.rollout->in_progress ? 1 : 0;
    in_progress.metric.push_back(g);
    for (auto [result, n] : {std::pair{"completed", s.rollouts_completed},
                             std::pair{"failed", s.rollouts_failed}}) {
      ClientMetric c;
      c.label = {{"program", s.program}, {"result", result}};
      c.counter.value = count(n);
      total.metric.push_back(std::move(c));
    }
  }
  std::vector<MetricFamily> out;
  if (!in_progress.metric.empty()) {
    out.push_back(std::move(in_progress));
    out.push_back(std::move(total));
  }
  if (!rejected.metric.empty()) out.push_back(std::move(rejected));
  return out;
}

// vigil's own families: a handful of series, serialized on every render.
std::vector<MetricFamily> self_families(const std::vector<WatchSnapshot>& watches,
                                        const SelfSnapshot& self) {
  std::vector<MetricFamily> out;
  auto add = [&out](const char* name, const char* help, MetricType type) -> MetricFamily& {
    out.push_back(MetricFamily{name, help, type, {}});
    return out.back();
  };
  auto series = [](MetricFamily& f, double v, std::vector<ClientMetric::Label> labels = {}) {
    ClientMetric m;
    m.label = std::move(labels);
    if (f.type == MetricType::Counter)
      m.counter.value = v;
    else
      m.gauge.value = v;
    f.metric.push_back(std::move(m));
  };
  if (!watches.empty()) {
    // vigil_watch_up has no series before a watch's first result; the
    // counters exist at 0 from the watch's creation, so increase() sees the
    // first failure.
    auto& up = add("vigil_watch_up", "Last result of each [watch.*] check.", MetricType::Gauge);
    for (const auto& w : watches)
      if (w.up) series(up, *w.up ? 1 : 0, {{"watch", w.name}});
    if (up.metric.empty()) out.pop_back();
    auto& failures = add("vigil_watch_failures_total",
                         "Failures seen by each [watch.*]: failed checks, missed heartbeat "
                         "intervals and WATCHDOG=trigger.",
                         MetricType::Counter);
    for (const auto& w : watches) series(failures, count(w.failures), {{"watch", w.name}});
    auto& actions = add("vigil_watch_actions_total",
                        "on_failure commands run by each [watch.*], by result.",
                        MetricType::Counter);
    for (const auto& w : watches)
      for (ActionResult r : kAllActionResults)
        series(actions, count(w.actions[static_cast<std::size_t>(r)]),
               {{"result", to_string(r)}, {"watch", w.name}});
  }
  auto& reloads = add("vigil_config_reloads_total", "Configuration reloads, by result.",
                      MetricType::Counter);
  series(reloads, count(self.reloads_failure), {{"result", "failure"}});
  series(reloads, count(self.reloads_success), {{"result", "success"}});
  series(add("vigil_config_last_reload_successful", "1 if the last configuration reload applied.",
             MetricType::Gauge),
         self.last_reload_ok ? 1 : 0);
  auto& upgrades = add("vigil_upgrades_total",
                       "In-place upgrades of vigil (vigil upgrade), by result.", MetricType::Counter);
  series(upgrades, count(self.upgrades_adopted), {{"result", "adopted"}});
  series(upgrades, count(self.upgrades_failed), {{"result", "failed"}});
  series(upgrades, count(self.upgrades_handover), {{"result", "handover"}});
  series(add("vigil_build_info", "Build information of vigil.", MetricType::Gauge), 1,
         {{"version", self.version}});
  series(add("vigil_process_resident_memory_bytes", "Resident memory of vigil itself.",
             MetricType::Gauge),
         count(self.rss_bytes));
  series(add("vigil_process_cpu_seconds_total", "User and system CPU time of vigil itself.",
             MetricType::Counter),
         self.cpu_seconds);
  series(add("vigil_process_open_fds", "Open file descriptors of vigil.", MetricType::Gauge),
         self.open_fds);
  series(add("vigil_process_max_fds", "File descriptor limit of vigil.", MetricType::Gauge),
         count(self.max_fds));
  series(add("vigil_process_start_time_seconds", "Unix time vigil started.", MetricType::Gauge),
         self.start_time_seconds);
  series(add("vigil_http_connections", "Open connections to vigil's HTTP server.",
             MetricType::Gauge),
         count(self.http_connections));
  series(add("vigil_http_connections_dropped_total",
             "HTTP connections vigil closed because its connection cap was reached.",
             MetricType::Counter),
         count(self.http_connections_dropped));
  series(add("vigil_http_handler_errors_total",
             "HTTP requests answered 500 because vigil failed to handle them (a bug: each "
             "is logged).",
             MetricType::Counter),
         count(self.http_handler_errors));
  return out;
}

const char* type_name(MetricType t) {
  switch (t) {
    case MetricType::Counter: return "counter";
    case MetricType::Gauge: return "gauge";
    case MetricType::Histogram: return "histogram";
    default: return "untyped";
  }
}

}  // namespace

void append_prometheus_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "Nan";
    return;
  }
  if (std::isinf(v)) {
    out += v < 0 ? "-Inf" : "+Inf";
    return;
  }
  char buf[32];
  // %.16g, as TextSerializer's stream precision gives; an integral value
  // below 1e15 (counts, bytes, most values here) prints as the integer it
  // is, the quicker way to the same digits.
  if (v == std::trunc(v) && std::fabs(v) < 1e15 && !(v == 0 && std::signbit(v))) {
    auto r = std::to_chars(buf, buf + sizeof buf, static_cast<std::int64_t>(v));
    out.append(buf, r.ptr);
    return;
  }
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 16);
  out.append(buf, r.ptr);
}

void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      default: out += c;
    }
  }
}

std::size_t MetricsText::size() const {
  std::size_t n = 0;
  for (const auto& p : parts) n += p->size();
  return n;
}

std::string MetricsText::joined() const {
  std::string out;
  out.reserve(size());
  for (const auto& p : parts) out += *p;
  return out;
}

std::string MetricsRenderer::render(const std::vector<InstanceSnapshot>& instances,
                                    const std::vector<WatchSnapshot>& watches, const SelfSnapshot& self) {
  return render_parts(instances, watches, self).joined();
}

MetricsText MetricsRenderer::render_parts(const std::vector<InstanceSnapshot>& instances,
                                          const std::vector<WatchSnapshot>& watches,
                                          const SelfSnapshot& self) {
  // The cached text names instances: another set of them invalidates it all.
  const bool same_instances =
      std::equal(instances_.begin(), instances_.end(), instances.begin(), instances.end(),
                 [](const auto& known, const InstanceSnapshot& s) {
                   return known.second == s.index && known.first == s.program;
                 });
  if (!same_instances || families_.size() != kInstanceFamilyCount) {
    instances_.clear();
    instances_.reserve(instances.size());
    labels_.clear();
    labels_.reserve(instances.size());
    for (const auto& s : instances) {
      instances_.emplace_back(s.program, s.index);
      std::string l = "index=\"" + std::to_string(s.index) + "\",program=\"";
      append_label_value(l, s.program);
      l += '"';
      labels_.push_back(std::move(l));
    }
    families_.assign(kInstanceFamilyCount, Family{});
  }

  MetricsText out;
  out.parts.reserve(kInstanceFamilyCount + 1);
  serialized_ = 0;
  for (std::size_t i = 0; i < kInstanceFamilyCount; ++i) {
    const InstanceFamily& spec = kInstanceFamilies[i];
    Family& cached = families_[i];
    scratch_.clear();
    Series values(scratch_);
    for (const auto& s : instances) spec.series(s, values);
    if (!cached.valid || scratch_ != cached.values) {
      // Rewritten in place unless a response still being sent holds it; a
      // new string is sized as the last one was, not doubled up to it.
      if (!cached.text || cached.text.use_count() > 1) {
        const std::size_t last = cached.text ? cached.text->size() : 0;
        cached.text = std::make_shared<std::string>();
        cached.text->reserve(last + last / 16);
      }
      std::string& text = *cached.text;
      text.clear();
      text += "# HELP ";
      text += spec.name;
      text += ' ';
      text += spec.help;
      text += "\n# TYPE ";
      text += spec.name;
      text += ' ';
      text += type_name(spec.type);
      text += '\n';
      std::vector<std::uint64_t> rebuilt;
      rebuilt.reserve(scratch_.size());
      Series build(rebuilt, &text, spec.name);
      for (std::size_t k = 0; k < instances.size(); ++k) {
        build.instance(labels_[k]);
        spec.series(instances[k], build);
      }
      // A family with no series would print HELP and TYPE only: left out.
      if (!build.wrote()) text.clear();
      // Kept until the family changes: no room beyond an eighth is kept
      // with it (a first text grown by doubling holds up to twice its size).
      if (text.capacity() - text.size() > text.size() / 8 + 256) text.shrink_to_fit();
      cached.values.swap(scratch_);
      cached.valid = true;
      ++serialized_;
    }
    if (!cached.text->empty()) out.parts.push_back(cached.text);
  }
  auto tail = std::make_shared<std::string>();
  serialize(*tail, program_families(instances));
  serialize(*tail, self_families(watches, self));
  out.parts.push_back(std::move(tail));
  return out;
}

std::string render_metrics(const std::vector<InstanceSnapshot>& instances,
                           const std::vector<WatchSnapshot>& watches, const SelfSnapshot& self) {
  return MetricsRenderer().render(instances, watches, self);
}

}  // namespace vigil
