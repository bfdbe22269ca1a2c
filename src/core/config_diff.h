// What a reload must do, program by program and watch by watch: the
// field-level difference of two configs. Pure. A program whose command, cwd,
// env, user, port_base or listen changed is restarted; one whose instance count
// changed gains or loses only the difference; any other change (policy,
// limits, heartbeat, probe, sticky proxy, logs) is applied in place, keeping
// its processes.
// A watch whose check or notify_socket changed is restarted (stopped, then
// started); its timing and actions are updated in place.
#pragma once
#include <string>
#include <vector>

#include "config.h"

namespace vigil {

enum class ReloadAction { unchanged, update, resize, restart, start, stop };
const char* to_string(ReloadAction a);  // "unchanged", "update in place", ...

struct ProgramChange {
  std::string name;
  ReloadAction action = ReloadAction::unchanged;
  std::vector<std::string> fields;  // changed keys, e.g. {"command", "restart_delay"}
  int old_instances = 0;
  int new_instances = 0;
};

// A [watch.NAME]: start (new), stop (gone), restart (its check or socket
// changed: stop, then start), update (in place) or unchanged.
struct WatchChange {
  std::string name;
  ReloadAction action = ReloadAction::unchanged;
  std::vector<std::string> fields;  // changed keys, e.g. {"http", "on_failure"}
};

struct ReloadPlan {
  std::vector<ProgramChange> programs;   // new config order, then removed ones
  std::vector<WatchChange> watches;      // the same order
  std::vector<std::string> vigil_fields;  // changed [vigil]/[http] keys applied live
  std::vector<std::string> needs_restart;  // changed keys that only a restart of vigil applies
  bool changes_anything() const;
};

ReloadPlan diff_config(const Config& old_config, const Config& new_config);

// Human-readable plan, one line per program ("web: restart (command changed)")
// and per watch ("watch legacy: update in place (on_failure changed)").
std::string describe(const ReloadPlan& plan);

}  // namespace vigil
