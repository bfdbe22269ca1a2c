// Field-by-field comparison of ProgramConfig and WatchConfig. A field added
// to either must be named here; config_diff_test fails until it is.
#include "config_diff.h"

#include <algorithm>

namespace vigil {

const char* to_string(ReloadAction a) {
  switch (a) {
    case ReloadAction::unchanged: return "unchanged";
    case ReloadAction::update: return "update in place";
    case ReloadAction::resize: return "resize";
    case ReloadAction::restart: return "restart";
    case ReloadAction::start: return "start";
    case ReloadAction::stop: return "stop";
  }
  return "?";
}

bool ReloadPlan::changes_anything() const {
  if (!vigil_fields.empty() || !needs_restart.empty()) return true;
  for (const auto& p : programs)
    if (p.action != ReloadAction::unchanged) return true;
  for (const auto& w : watches)
    if (w.action != ReloadAction::unchanged) return true;
  return false;
}

namespace {

// Keys whose change needs a new process.
std::vector<std::string> restart_fields(const ProgramConfig& a, const ProgramConfig& b) {
  std::vector<std::string> f;
  if (a.command != b.command) f.push_back("command");
  if (a.cwd != b.cwd) f.push_back("cwd");
  if (a.env != b.env) f.push_back("env");
  if (a.user != b.user) f.push_back("user");
  // PORT is in the children's environment.
  if (a.port_base != b.port_base) f.push_back("port_base");
  // The fds, LISTEN_FDS and LISTEN_FDNAMES the children start with. The
  // supervisor keeps the socket of every address the new config still lists.
  if (a.listen != b.listen) f.push_back("listen");
  return f;
}

// Keys applied to running instances.
std::vector<std::string> update_fields(const ProgramConfig& a, const ProgramConfig& b) {
  std::vector<std::string> f;
#define VIGIL_FIELD(name) \
  if (!(a.name == b.name)) f.push_back(#name)
  VIGIL_FIELD(autostart);
  VIGIL_FIELD(restart);
  VIGIL_FIELD(exit_codes);
  VIGIL_FIELD(restart_delay);
  VIGIL_FIELD(restart_delay_max);
  VIGIL_FIELD(backoff_reset);
  VIGIL_FIELD(min_uptime);
  VIGIL_FIELD(ready);
  VIGIL_FIELD(start_timeout);
  VIGIL_FIELD(max_restarts);
  VIGIL_FIELD(restart_window);
  VIGIL_FIELD(essential);
  VIGIL_FIELD(after);
  VIGIL_FIELD(stop_signal);
  VIGIL_FIELD(stop_timeout);
  VIGIL_FIELD(memory_limit_bytes);
  VIGIL_FIELD(heartbeat);
  VIGIL_FIELD(probe);
  // The proxy is vigil's, not the children's: it is updated (or, for a new
  // listen address, rebuilt) while the instances keep running.
  VIGIL_FIELD(sticky);
  VIGIL_FIELD(log);
  VIGIL_FIELD(log_max_size_bytes);
  VIGIL_FIELD(log_keep);
  VIGIL_FIELD(log_timestamps);
#undef VIGIL_FIELD
  return f;
}

// The key a watch's kind is written with: "http", "tcp", "exec" or
// "notify_socket".
std::string kind_key(const WatchConfig& w) {
  return w.check ? to_string(w.check->kind) : "notify_socket";
}

// Keys whose change needs the watch built again: what it checks, or the
// socket it listens on.
std::vector<std::string> watch_restart_fields(const WatchConfig& a, const WatchConfig& b) {
  std::vector<std::string> f;
  const std::string ka = kind_key(a), kb = kind_key(b);
  if (ka != kb) return {ka, kb};
  if (!a.check) {
    if (a.notify_socket != b.notify_socket) f.push_back("notify_socket");
    return f;
  }
  const ProbeConfig& x = *a.check;
  const ProbeConfig& y = *b.check;
  if (x.target != y.target || x.command != y.command) f.push_back(ka);
#define VIGIL_FIELD(name) \
  if (!(x.name == y.name)) f.push_back(#name)
  VIGIL_FIELD(expect_status);
  VIGIL_FIELD(expect_body);
  VIGIL_FIELD(timeout);
  VIGIL_FIELD(initial_delay);
#undef VIGIL_FIELD
  // A ProbeConfig field not named above still restarts the watch rather
  // than go unnoticed (config_diff_test names it too).
  ProbeConfig rest_x = x, rest_y = y;
  rest_y.interval = rest_x.interval;
  rest_y.failures = rest_x.failures;
  if (f.empty() && !(rest_x == rest_y)) f.push_back("check");
  return f;
}

// Keys applied to the running watch.
std::vector<std::string> watch_update_fields(const WatchConfig& a, const WatchConfig& b) {
  std::vector<std::string> f;
  if (a.check && b.check) {
    if (a.check->interval != b.check->interval) f.push_back("interval");
    if (a.check->failures != b.check->failures) f.push_back("failures");
  }
  if (a.heartbeat != b.heartbeat) f.push_back("heartbeat");
  if (a.on_failure != b.on_failure) f.push_back("on_failure");
  if (a.action_timeout != b.action_timeout) f.push_back("action_timeout");
  return f;
}

void diff_watches(const Config& old_config, const Config& new_config, ReloadPlan& plan) {
  for (const auto& nw : new_config.watches) {
    WatchChange c;
    c.name = nw.name;
    const WatchConfig* ow = old_config.find_watch(nw.name);
    if (!ow) {
      c.action = ReloadAction::start;
    } else {
      auto restart = watch_restart_fields(*ow, nw);
      auto update = watch_update_fields(*ow, nw);
      c.action = !restart.empty()  ? ReloadAction::restart
                 : !update.empty() ? ReloadAction::update
                                   : ReloadAction::unchanged;
      c.fields = std::move(restart);
      c.fields.insert(c.fields.end(), update.begin(), update.end());
    }
    plan.watches.push_back(std::move(c));
  }
  for (const auto& ow : old_config.watches) {
    if (new_config.find_watch(ow.name)) continue;
    plan.watches.push_back(WatchChange{ow.name, ReloadAction::stop, {}});
  }
}

}  // namespace

ReloadPlan diff_config(const Config& old_config, const Config& new_config) {
  ReloadPlan plan;
  for (const auto& np : new_config.programs) {
    ProgramChange c;
    c.name = np.name;
    c.new_instances = np.instances;
    const ProgramConfig* op = old_config.find(np.name);
    if (!op) {
      c.action = ReloadAction::start;
      plan.programs.push_back(std::move(c));
      continue;
    }
    c.old_instances = op->instances;
    auto restart = restart_fields(*op, np);
    auto update = update_fields(*op, np);
    if (!restart.empty()) {
      c.action = ReloadAction::restart;
      c.fields = restart;
      if (op->instances != np.instances) c.fields.push_back("instances");
      c.fields.insert(c.fields.end(), update.begin(), update.end());
    } else if (op->instances != np.instances) {
      c.action = ReloadAction::resize;
      c.fields = {"instances"};
      c.fields.insert(c.fields.end(), update.begin(), update.end());
    } else if (!update.empty()) {
      c.action = ReloadAction::update;
      c.fields = update;
    }
    plan.programs.push_back(std::move(c));
  }
  for (const auto& op : old_config.programs) {
    if (new_config.find(op.name)) continue;
    ProgramChange c;
    c.name = op.name;
    c.action = ReloadAction::stop;
    c.old_instances = op.instances;
    plan.programs.push_back(std::move(c));
  }
  diff_watches(old_config, new_config, plan);
  if (old_config.log_level != new_config.log_level) plan.vigil_fields.push_back("log_level");
  if (old_config.sample_interval != new_config.sample_interval)
    plan.vigil_fields.push_back("sample_interval");
  if (old_config.log_dir != new_config.log_dir) plan.vigil_fields.push_back("log_dir");
  const bool http_old = old_config.http.has_value(), http_new = new_config.http.has_value();
  if (http_old != http_new ||
      (http_old && http_new && old_config.http->listen != new_config.http->listen))
    plan.needs_restart.push_back("[http] listen");
  if (http_old && http_new && old_config.http->token_file != new_config.http->token_file)
    plan.vigil_fields.push_back("token_file");
  if (old_config.control_socket != new_config.control_socket)
    plan.needs_restart.push_back("control_socket");
  return plan;
}

namespace {

// " (a, b changed)", or nothing.
std::string changed(const std::vector<std::string>& fields) {
  if (fields.empty()) return "";
  std::string out = " (";
  for (std::size_t i = 0; i < fields.size(); ++i) out += (i ? ", " : "") + fields[i];
  return out + " changed)";
}

}  // namespace

std::string describe(const ReloadPlan& plan) {
  std::string out;
  for (const auto& c : plan.programs) {
    out += c.name + ": " + to_string(c.action);
    // Several running instances are replaced one at a time.
    if (c.action == ReloadAction::restart && std::min(c.old_instances, c.new_instances) > 1)
      out += ", rolling";
    if (c.action == ReloadAction::resize)
      out += " " + std::to_string(c.old_instances) + " -> " + std::to_string(c.new_instances);
    out += changed(c.fields) + "\n";
  }
  for (const auto& c : plan.watches)
    out += "watch " + c.name + ": " + to_string(c.action) + changed(c.fields) + "\n";
  for (const auto& f : plan.vigil_fields) out += "[vigil] " + f + ": applied\n";
  for (const auto& f : plan.needs_restart) out += f + ": changed, takes effect when vigil restarts\n";
  if (!plan.changes_anything()) out += "nothing to do\n";
  return out;
}

}  // namespace vigil
