// Watch: events in (check results, notify messages, timers), WatchPolicy's
// decisions out (run on_failure), one timer per concern, and log lines that
// say what happened, why, and what comes next.
#include "watch.h"

#include <algorithm>
#include <system_error>

#include <spdlog/spdlog.h>

#include "real_clock.h"
#include "units.h"

extern char** environ;

namespace vigil {

namespace {

// Set by vigil per child, or describing vigil's own supervisor: never
// passed on from vigil's environment.
bool is_reserved_variable(std::string_view kv) {
  static constexpr std::string_view kReserved[] = {
      "NOTIFY_SOCKET=",  "WATCHDOG_USEC=",  "WATCHDOG_PID=",   "LISTEN_FDS=",
      "LISTEN_PID=",     "LISTEN_FDNAMES=", "VIGIL_PROGRAM=",  "VIGIL_INSTANCE=",
      "NODE_APP_INSTANCE=", "VIGIL_HEARTBEAT_FD=", "VIGIL_SOCKET=", "VIGIL_WATCH="};
  return std::any_of(std::begin(kReserved), std::end(kReserved),
                     [kv](std::string_view r) { return kv.substr(0, r.size()) == r; });
}

std::string target_of(const WatchConfig& c) {
  if (!c.check) return c.notify_socket.string();
  if (c.check->kind != ProbeKind::exec) return c.check->target;
  std::string out;
  for (const auto& a : c.check->command) out += (out.empty() ? "" : " ") + a;
  return out;
}

std::string commands_count(std::size_t n) {
  return std::to_string(n) + (n == 1 ? " command" : " commands");
}

double unix_seconds(WallTime t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

std::vector<std::string> watch_environment(const std::string& name) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    if (kv.find('=') == std::string_view::npos || is_reserved_variable(kv)) continue;
    env.emplace_back(kv);
  }
  // Marks what the commands start: a daemon they leave behind is the
  // service's, not vigil's, and outlives vigil's shutdown.
  env.push_back("VIGIL_WATCH=" + name);
  return env;
}

Watch::Watch(EventLoop& loop, Reaper& reaper, WatchConfig config, std::filesystem::path cwd)
    : loop_(loop),
      reaper_(reaper),
      config_(std::move(config)),
      cwd_(std::move(cwd)),
      policy_(config_),
      runner_(loop, reaper, "watch " + config_.name + ": on_failure", cwd_,
              watch_environment(config_.name)),
      check_timer_(loop, [this] { on_check_timer(); }),
      heartbeat_timer_(loop, [this] { on_heartbeat_timer(); }),
      action_timer_(loop, [this] { on_action_timer(); }) {
  if (config_.check) {
    probe_ = std::make_unique<Probe>(loop_, reaper_, *config_.check, std::nullopt, cwd_,
                                     watch_environment(config_.name));
    probe_->set_label(label());
  }
}

Watch::~Watch() {
  // Members go in reverse order; the probe and the socket first, explicitly,
  // so that nothing they own calls back into a half-destroyed watch.
  if (probe_) probe_->cancel();
  notify_.reset();
}

void Watch::start() {
  if (started_ || stopped_) return;
  started_ = true;
  if (config_.check)
    start_check();
  else
    start_notify();
}

void Watch::start_check() {
  const ProbeConfig& c = *config_.check;
  spdlog::info("{}: checking {} {} every {} (on_failure after {} failure{} in a row)", label(),
               to_string(c.kind), target_of(config_), format_duration(c.interval), c.failures,
               c.failures == 1 ? "" : "s");
  check_timer_.arm(c.initial_delay);
}

void Watch::start_notify() {
  const std::filesystem::path& path = config_.notify_socket;
  auto fail = [&](const std::string& why) {
    failed_to_start_ = true;
    last_error_ = "cannot listen on " + path.string() + ": " + why;
    spdlog::error("{}: {}; this watch is off until a reload", label(), last_error_);
  };
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) return fail("cannot create the folder " + path.parent_path().string() + ": " + ec.message());
  const auto status = std::filesystem::symlink_status(path, ec);
  if (std::filesystem::exists(status)) {
    if (!std::filesystem::is_socket(status))
      return fail("the path exists and is not a socket (remove it, or choose another notify_socket)");
    // A socket file is either a live socket (another vigil, or another
    // watch) or one left by a process that died: that one is replaced.
    if (NotifySocket::in_use(path))
      return fail("another process is listening on it (another vigil?)");
  }
  try {
    notify_ = std::make_unique<NotifySocket>(
        loop_, path, std::nullopt, &notify_counts_,
        [this](const NotifyMessage& m) { on_notify(m); }, label());
  } catch (const std::system_error& e) {
    return fail(e.code().message());
  }
  notify_->set_unknown_handler(
      [this](std::string_view key, std::string_view value) { on_notify_unknown(key, value); });
  spdlog::info("{}: listening on {} for READY=1, WATCHDOG=1, MAINPID= and STOPPING=1", label(),
               path.string());
}

void Watch::stop() {
  if (stopped_) return;
  stopped_ = true;
  check_timer_.cancel();
  heartbeat_timer_.cancel();
  action_timer_.cancel();
  if (probe_) probe_->cancel();
  notify_.reset();
  if (runner_.running()) spdlog::warn("{}: stopping: on_failure is killed", label());
  runner_.cancel();
}

void Watch::update(const WatchConfig& config) {
  const bool interval_changed =
      config_.check && config.check && config_.check->interval != config.check->interval;
  config_ = config;
  policy_.update(config_);
  if (probe_ && config_.check) probe_->update(*config_.check, std::nullopt);
  if (stopped_ || !started_) return;
  // A new interval applies from now: the next check is one new interval
  // away (or sooner, if the old one was due sooner).
  if (interval_changed && check_timer_.armed()) check_timer_.arm(config_.check->interval);
  arm_heartbeat_timer();
  arm_action_timer();
}

// --- checks

void Watch::on_check_timer() {
  if (stopped_ || !probe_) return;
  check_timer_.arm(config_.check->interval);
  if (probe_->in_flight()) {
    // A check slower than the interval: this tick is skipped, not queued.
    spdlog::debug("{}: the last check is still running; skipping this one", label());
    return;
  }
  probe_->run([this](const ProbeOutcome& outcome) { on_check_result(outcome); });
}

void Watch::on_check_result(const ProbeOutcome& outcome) {
  if (stopped_) return;
  const SteadyTime now = RealClock::get().steady();
  const int before = policy_.consecutive_failures();
  std::optional<WatchAction> action = policy_.on_check(outcome.ok, now);
  const int threshold = policy_.threshold();
  if (outcome.ok) {
    if (before > 0)
      spdlog::info("{}: check passes again, after {} failure{} in a row", label(), before,
                   before == 1 ? "" : "s");
  } else {
    last_check_detail_ = outcome.detail;
    last_error_ = "check failed: " + outcome.detail;
    const int n = policy_.consecutive_failures();
    if (!action) {
      std::string next;
      if (n < threshold)
        next = config_.on_failure.empty()
                   ? std::string()
                   : "; on_failure at " + std::to_string(threshold) + " in a row";
      else if (policy_.acting())
        next = "; on_failure is running";
      else if (config_.on_failure.empty())
        next = "; no on_failure to run";
      else
        next = "; in the cool-down after on_failure";
      const std::string count = n <= threshold ? std::to_string(n) + " of " +
                                                     std::to_string(threshold) + " in a row"
                                               : std::to_string(n) + " in a row";
      spdlog::warn("{}: check failed ({}); {}{}", label(), outcome.detail, count, next);
    }
  }
  if (action) {
    const std::string why =
        action->reason == ActReason::still_failing
            ? "still failing after the cool-down of " + format_duration(policy_.cooldown()) +
                  " (" + outcome.detail + ")"
            : "check failed " + std::to_string(policy_.consecutive_failures()) +
                  (policy_.consecutive_failures() == 1 ? " time" : " times") + " in a row (" +
                  outcome.detail + ")";
    act(*action, why);
  }
  arm_action_timer();
}

// --- notify

void Watch::on_notify(const NotifyMessage& m) {
  if (stopped_) return;
  const SteadyTime now = RealClock::get().steady();
  const HeartbeatConfig& hb = config_.heartbeat;
  switch (m.kind) {
    case NotifyKind::ready: {
      const bool again = policy_.registered();
      policy_.on_ready(now);
      spdlog::info("{}: process registered (READY=1{}){}; first heartbeat due within {}, then "
                   "every {}",
                   label(), policy_.pid() ? ", pid " + std::to_string(*policy_.pid()) : "",
                   again ? " again" : "", format_duration(hb.grace), format_duration(hb.interval));
      break;
    }
    case NotifyKind::watchdog: {
      const bool was_failing = policy_.consecutive_failures() > 0 && policy_.registered();
      policy_.on_beat(now);
      if (was_failing) spdlog::info("{}: heartbeat again", label());
      break;
    }
    case NotifyKind::watchdog_trigger: {
      const std::optional<int> pid = policy_.pid();
      std::optional<WatchAction> action = policy_.on_trigger(now);
      last_error_ = "the process declared itself hung (WATCHDOG=trigger)";
      if (action) {
        act(*action, "the process" + (pid ? " " + std::to_string(*pid) : std::string()) +
                         " declared itself hung (WATCHDOG=trigger)");
      } else {
        spdlog::warn("{}: the process declared itself hung (WATCHDOG=trigger){}", label(),
                     config_.on_failure.empty() ? "; no on_failure to run"
                     : policy_.acting()         ? "; on_failure is running"
                                                : "; in the cool-down after on_failure");
      }
      break;
    }
    case NotifyKind::stopping:
      if (policy_.registered() || policy_.failing()) {
        policy_.on_stopping();
        spdlog::info("{}: process disposed (STOPPING=1); no detection until the next READY=1",
                     label());
      }
      break;
    case NotifyKind::status:
    case NotifyKind::memory:
    case NotifyKind::extend_timeout:
      // Meaningful for programs; a watch only looks at liveness.
      break;
  }
  arm_heartbeat_timer();
  arm_action_timer();
}

void Watch::on_notify_unknown(std::string_view key, std::string_view value) {
  if (stopped_ || key != "MAINPID") return;
  if (std::optional<int> pid = parse_main_pid(value)) {
    if (policy_.pid() != pid) spdlog::info("{}: main pid {} (MAINPID=)", label(), *pid);
    policy_.on_main_pid(*pid);
  } else {
    spdlog::debug("{}: MAINPID={} is not a pid; ignored", label(),
                  sanitize_notify_text(value, 40));
  }
}

void Watch::arm_heartbeat_timer() {
  const std::optional<SteadyTime> deadline = policy_.heartbeat_deadline();
  if (!deadline || stopped_) {
    heartbeat_timer_.cancel();
    return;
  }
  const auto wait = *deadline - RealClock::get().steady();
  // Rounded up: a timer firing a hair early would count nothing.
  heartbeat_timer_.arm(std::chrono::ceil<Duration>(std::max(wait, decltype(wait)::zero())));
}

void Watch::on_heartbeat_timer() {
  if (stopped_) return;
  // Datagrams may be waiting unread behind a stalled loop: read them before
  // judging silence.
  if (notify_) notify_->drain();
  const SteadyTime now = RealClock::get().steady();
  const std::optional<SteadyTime> deadline = policy_.heartbeat_deadline();
  if (!deadline || *deadline > now) {
    arm_heartbeat_timer();
    return;
  }
  const int before = policy_.consecutive_failures();
  const std::optional<int> pid = policy_.pid();
  std::optional<WatchAction> action = policy_.on_heartbeat_deadline(now);
  const HeartbeatConfig& hb = config_.heartbeat;
  const int misses = policy_.consecutive_failures();
  if (misses > before) {
    last_error_ = "no heartbeat for " + std::to_string(misses) + " interval" +
                  (misses == 1 ? "" : "s") + " of " + format_duration(hb.interval);
  }
  if (action) {
    act(*action, "no heartbeat from" +
                     (pid ? " pid " + std::to_string(*pid) : std::string(" the process")) +
                     " for " + format_duration(hb.interval * hb.misses) + " (" +
                     std::to_string(hb.misses) + " missed intervals of " +
                     format_duration(hb.interval) + ")");
  } else if (policy_.failing()) {
    spdlog::error("{}: hung: {} missed heartbeat intervals of {}{}", label(), misses,
                  format_duration(hb.interval),
                  config_.on_failure.empty() ? "; no on_failure to run"
                  : policy_.acting()         ? "; on_failure is running"
                                             : "; in the cool-down after on_failure");
  } else if (misses > before) {
    spdlog::warn("{}: missed heartbeat ({} of {} in a row)", label(), misses, hb.misses);
  }
  arm_heartbeat_timer();
  arm_action_timer();
}

// --- actions

void Watch::arm_action_timer() {
  const std::optional<SteadyTime> due = policy_.next_action_time();
  if (!due || stopped_) {
    action_timer_.cancel();
    return;
  }
  const SteadyTime now = RealClock::get().steady();
  const auto wait = *due > now ? *due - now : SteadyTime::duration::zero();
  action_timer_.arm(std::chrono::ceil<Duration>(wait));
}

void Watch::on_action_timer() {
  if (stopped_) return;
  if (notify_) notify_->drain();  // a READY=1 waiting unread ends the failure
  std::optional<WatchAction> action = policy_.on_next_action_time(RealClock::get().steady());
  if (action) {
    std::string why = "still failing after the cool-down of " + format_duration(policy_.cooldown());
    if (config_.check && !last_check_detail_.empty())
      why += " (" + last_check_detail_ + ")";
    else if (!config_.check)
      why += " (no heartbeat and no READY=1 since)";
    act(*action, why);
  }
  arm_action_timer();
}

void Watch::act(const WatchAction& action, const std::string& why) {
  std::vector<CommandSpec> commands;
  for (const auto& argv : config_.on_failure) {
    CommandSpec spec;
    if (std::optional<std::vector<std::string>> expanded = expand_pid(argv, action.pid))
      spec.argv = std::move(*expanded);
    else {
      spec.argv = argv;
      spec.not_run = "{pid} is unknown (no MAINPID= since the last action)";
    }
    commands.push_back(std::move(spec));
  }
  spdlog::error("{}: {}; running on_failure ({}{})", label(), why, commands_count(commands.size()),
                action.pid ? ", {pid} = " + std::to_string(*action.pid) : "");
  runner_.run(std::move(commands), config_.action_timeout,
              [this](const std::vector<CommandOutcome>& outcomes) { on_actions_done(outcomes); });
  arm_heartbeat_timer();
  arm_action_timer();
}

void Watch::on_actions_done(const std::vector<CommandOutcome>& outcomes) {
  std::vector<ActionResult> results;
  std::array<int, 3> by_result{};
  std::string first_problem;
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    results.push_back(outcomes[i].result);
    by_result[static_cast<std::size_t>(outcomes[i].result)]++;
    if (outcomes[i].result != ActionResult::ok && first_problem.empty())
      first_problem = "on_failure[" + std::to_string(i) + "]: " + outcomes[i].detail;
  }
  policy_.on_actions_finished(RealClock::get().steady(), results);
  if (!first_problem.empty()) last_error_ = first_problem;

  std::string summary;
  for (ActionResult r : kAllActionResults) {
    const int n = by_result[static_cast<std::size_t>(r)];
    if (n == 0) continue;
    summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + to_string(r);
  }
  const std::string next =
      policy_.failing()
          ? "cool-down " + format_duration(policy_.cooldown()) +
                " before acting again if it still fails"
          : (policy_.state() == WatchState::up
                 ? "it is up again"
                 : "cool-down " + format_duration(policy_.cooldown()) +
                       " before acting again should it fail");
  if (first_problem.empty())
    spdlog::info("{}: on_failure done ({}); {}", label(), summary, next);
  else
    spdlog::warn("{}: on_failure done ({}; {}); {}", label(), summary, first_problem, next);
  arm_heartbeat_timer();
  arm_action_timer();
}

WatchSnapshot Watch::snapshot(WallTime now_wall, SteadyTime now) const {
  WatchSnapshot s;
  s.name = config_.name;
  s.kind = watch_kind(config_);
  s.target = target_of(config_);
  s.up = policy_.up();
  s.state = policy_.state();
  s.consecutive_failures = policy_.consecutive_failures();
  s.failures = policy_.failures();
  for (ActionResult r : kAllActionResults)
    s.actions[static_cast<std::size_t>(r)] = policy_.actions(r);
  if (const std::optional<SteadyTime> seen = policy_.last_seen()) {
    const auto ago = std::chrono::duration_cast<WallTime::duration>(now - *seen);
    s.last_check_seconds = unix_seconds(now_wall - ago);
  }
  s.last_error = last_error_;
  if (!config_.check) {
    s.pid = policy_.pid();
    s.registered = policy_.registered();
  }
  return s;
}

}  // namespace vigil
