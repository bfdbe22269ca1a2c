// Field-by-field comparison of ProgramConfig.
#include "config_diff.h"

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
  VIGIL_FIELD(log);
  VIGIL_FIELD(log_max_size_bytes);
  VIGIL_FIELD(log_keep);
  VIGIL_FIELD(log_timestamps);
#undef VIGIL_FIELD
  return f;
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

std::string describe(const ReloadPlan& plan) {
  std::string out;
  for (const auto& c : plan.programs) {
    out += c.name + ": " + to_string(c.action);
    if (c.action == ReloadAction::resize)
      out += " " + std::to_string(c.old_instances) + " -> " + std::to_string(c.new_instances);
    if (!c.fields.empty()) {
      out += " (";
      for (std::size_t i = 0; i < c.fields.size(); ++i) out += (i ? ", " : "") + c.fields[i];
      out += " changed)";
    }
    out += "\n";
  }
  for (const auto& f : plan.vigil_fields) out += "[vigil] " + f + ": applied\n";
  for (const auto& f : plan.needs_restart) out += f + ": changed, takes effect when vigil restarts\n";
  if (!plan.changes_anything()) out += "nothing to do\n";
  return out;
}

}  // namespace vigil
