// Program: fan-out to instances, environment, log paths, and the memory
// rule that spans instances.
#include "program.h"

#include <unistd.h>

#include <memory>

#include <spdlog/spdlog.h>

#include "log_files.h"
#include "time_slice.h"

extern char** environ;

namespace vigil {

namespace {

// Variables that describe vigil's own supervisor or are set per child by
// vigil: never passed through from vigil's environment.
bool is_reserved_variable(std::string_view kv) {
  static constexpr std::string_view kReserved[] = {
      "NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=", "LISTEN_FDS=", "LISTEN_PID=",
      "LISTEN_FDNAMES=", "VIGIL_PROGRAM=", "VIGIL_INSTANCE=", "NODE_APP_INSTANCE=",
      "VIGIL_HEARTBEAT_FD=", "VIGIL_SOCKET=", "VIGIL_RUN="};
  for (auto r : kReserved)
    if (kv.substr(0, r.size()) == r) return true;
  return false;
}

}  // namespace

Program::Program(ProgramContext& context, ProgramConfig config, ListenSockets listen_sockets,
                 std::shared_ptr<StickyProxy> sticky)
    : context_(context),
      config_(std::move(config)),
      listen_sockets_(std::move(listen_sockets)),
      stop_slice_timer_(context.loop, [this] { stop_some(); }),
      start_slice_timer_(context.loop, [this] { start_some(); }) {
  for (int i = 0; i < config_.instances; ++i)
    instances_.push_back(std::make_unique<Instance>(context_.loop, *this, i));
  set_sticky(std::move(sticky));
}

void Program::set_sticky(std::shared_ptr<StickyProxy> sticky) {
  sticky_ = config_.sticky && config_.port_base ? std::move(sticky) : nullptr;
  if (!sticky_) return;
  sticky_->update(*config_.sticky, *config_.port_base, config_.instances);
  for (const auto& i : instances_) sticky_->set_routable(i->index(), i->ready());
}

std::optional<StickySnapshot> Program::sticky_snapshot(int index) const {
  if (!sticky_ || index >= config_.instances) return std::nullopt;
  const StickyInstanceStats& st = sticky_->stats(index);
  const StickyProxyStats& totals = sticky_->totals();
  StickySnapshot s;
  s.listen = config_.sticky->listen.to_string();
  s.routable = instances_[static_cast<std::size_t>(index)]->ready();
  s.open = st.open;
  s.accepted = st.accepted;
  s.bytes_in = st.bytes_in;
  s.bytes_out = st.bytes_out;
  s.route_failures = st.route_failures;
  s.rejected_no_instance = totals.rejected_no_instance;
  s.rejected_limit = totals.rejected_limit;
  return s;
}

Program::~Program() = default;

// Built at each start from vigil's environment, not kept: a copy of it in
// every program would cost some KiB a program.
std::vector<std::string> Program::environment(int index) const {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos || is_reserved_variable(kv)) continue;
    if (config_.env.count(std::string(kv.substr(0, eq)))) continue;
    if (config_.port_base && kv.starts_with("PORT=")) continue;  // each instance gets its own
    env.emplace_back(kv);
  }
  for (const auto& [k, v] : config_.env)
    if (!config_.port_base || k != "PORT") env.push_back(k + "=" + v);
  env.push_back("VIGIL_PROGRAM=" + config_.name);
  env.push_back("VIGIL_INSTANCE=" + std::to_string(index));
  env.push_back("NODE_APP_INSTANCE=" + std::to_string(index));
  if (config_.port_base) env.push_back("PORT=" + std::to_string(*config_.port_base + index));
  return env;
}

std::filesystem::path Program::log_path(int index, Stream stream) const {
  return log_file_path(context_.log_dir, config_, index, stream == Stream::err);
}

void Program::start(bool manual) {
  // A start asked for after a stop overrides what of the stop is left.
  stop_queue_.clear();
  start_queue_.clear();
  for (auto& i : instances_) start_queue_.push_back({i->index(), manual});
  start_some();
}

// A slice of the start now, the rest on later loop turns, as a stop goes.
void Program::start_some() {
  TimeSlice slice(context_.clock);
  while (!start_queue_.empty() && !slice.spent()) {
    const PendingStart next = start_queue_.front();
    start_queue_.pop_front();
    // The instance is gone (a reload shrank the program): nothing to start.
    const auto index = static_cast<std::size_t>(next.index);
    if (index >= instances_.size()) continue;
    if (next.restart)
      instances_[index]->restart_manual();
    else
      instances_[index]->start(next.manual);
  }
  if (!start_queue_.empty()) start_slice_timer_.arm(Duration{0});
}

void Program::stop(std::function<void()> done, bool last) {
  cancel_rollout("the program was stopped");
  stop_queue_.clear();
  start_queue_.clear();
  auto remaining = std::make_shared<std::size_t>(instances_.size());
  auto shared_done = std::make_shared<std::function<void()>>(std::move(done));
  if (instances_.empty() && *shared_done) (*shared_done)();
  for (auto& i : instances_) stop_queue_.push_back({i->index(), remaining, shared_done, last});
  stop_some();
}

// A slice of the stop now, the rest on later loop turns: stopping
// thousands of instances in one callback (signals, timers, a log line
// each) would hold the loop for seconds on a loaded machine, and nobody
// could ask how the stop goes.
void Program::stop_some() {
  TimeSlice slice(context_.clock);
  while (!stop_queue_.empty() && !slice.spent()) {
    PendingStop next = std::move(stop_queue_.front());
    stop_queue_.pop_front();
    auto done = [remaining = next.remaining, shared_done = next.done] {
      if (--*remaining == 0 && *shared_done) (*shared_done)();
    };
    // The instance is gone (a reload shrank the program): nothing to stop.
    const auto index = static_cast<std::size_t>(next.index);
    if (index >= instances_.size()) {
      done();
      continue;
    }
    instances_[index]->stop(done, next.last);
  }
  // A timer, not defer: what came in meanwhile (a client) is served first.
  if (!stop_queue_.empty()) stop_slice_timer_.arm(Duration{0});
}

void Program::restart_manual() { restart(true); }

void Program::restart(bool all_at_once) {
  stop_queue_.clear();
  start_queue_.clear();
  cancel_rollout("another restart was asked for");
  if (all_at_once || instances_.size() <= 1) {
    // In slices, as a start or a stop: each restart signals a process tree.
    for (auto& i : instances_) start_queue_.push_back({i->index(), true, true});
    start_some();
    return;
  }
  std::vector<int> order;
  for (auto& i : instances_) order.push_back(i->index());
  roll(std::move(order), "restart asked for");
}

void Program::roll(std::vector<int> order, const std::string& why) {
  rollout_.emplace(++rollouts_, std::move(order), config_.name);
  rollout_started_ = context_.clock.steady();
  const auto total = rollout_->snapshot().total;
  spdlog::info("program {}: rolling restart of {} instance{} ({}): one at a time, each once the one "
               "before is ready",
               config_.name, total, total == 1 ? "" : "s", why);
  act_on(rollout_->begin());
}

void Program::act_on(Rollout::Verdict verdict) {
  const RolloutSnapshot s = rollout_->snapshot();
  switch (verdict) {
    case Rollout::Verdict::wait:
      return;
    case Rollout::Verdict::next: {
      const int index = *s.current;
      if (s.done > 0)
        spdlog::info("program {}: rolling restart: {} of {} ready", config_.name, s.done, s.total);
      spdlog::info("program {}: rolling restart: replacing {}[{}] ({} of {})", config_.name,
                   config_.name, index, s.done + 1, s.total);
      for (auto& i : instances_)
        if (i->index() == index) i->restart_manual();
      return;
    }
    case Rollout::Verdict::completed: {
      ++rollouts_completed_;
      const std::chrono::duration<double> took = context_.clock.steady() - rollout_started_;
      spdlog::info("program {}: rolling restart done: {} instance{} replaced in {:.1f}s", config_.name,
                   s.total, s.total == 1 ? "" : "s", took.count());
      return;
    }
    case Rollout::Verdict::failed:
      ++rollouts_failed_;
      spdlog::error("program {}: {}", config_.name, s.error);
      return;
  }
}

void Program::cancel_rollout(const std::string& why) {
  if (!rollout_ || rollout_->finished()) return;
  rollout_->cancel(why);
  ++rollouts_failed_;
  spdlog::warn("program {}: {}", config_.name, rollout_->snapshot().error);
}

std::optional<RolloutSnapshot> Program::rollout() const {
  if (!rollout_) return std::nullopt;
  return rollout_->snapshot();
}

void Program::kill_now() {
  for (auto& i : instances_) i->kill_now();
}

void Program::reopen_logs() {
  for (auto& i : instances_) i->reopen_logs();
}

void Program::on_state_change(Instance& instance, State from, State to) {
  // Only the current instance of its index: one retiring after a shrink
  // may share the index of a newer one.
  const auto index = static_cast<std::size_t>(instance.index());
  if (sticky_ && index < instances_.size() && instances_[index].get() == &instance)
    sticky_->set_routable(instance.index(), to == State::running);
  if (rollout_ && !rollout_->finished()) act_on(rollout_->on_state(instance.index(), from, to));
  if (context_.on_state_change) context_.on_state_change(instance, from, to);
}

void Program::sample(ProcSampler& sampler, SteadyTime now, Duration interval, std::size_t& next,
                     std::size_t& budget, bool all, std::optional<SteadyTime> fresh_by) {
  // One memory restart at a time per program, so a leak shared by every
  // instance never takes them all down together. Counted once a call, not
  // per instance: a pass over a thousand instances stays linear.
  std::size_t restarting = 0;
  for (auto& i : instances_)
    if (i->stopping_for(RestartReason::memory)) ++restarting;
  for (; next < instances_.size() && budget > 0; ++next) {
    Instance& i = *instances_[next];
    const bool self = i.stopping_for(RestartReason::memory);
    if (i.on_sample(sampler, now, interval, restarting > (self ? 1u : 0u), all, fresh_by)) --budget;
  }
}

void Program::refresh_samples(ProcSampler& sampler, SteadyTime now, Duration interval, Freshness freshness) {
  for (auto& i : instances_) i->refresh_sample(sampler, now, interval, freshness);
}

std::optional<SteadyTime> Program::next_sample_at() const {
  std::optional<SteadyTime> earliest;
  for (const auto& i : instances_)
    if (auto at = i->next_sample_at(); at && (!earliest || *at < *earliest)) earliest = at;
  return earliest;
}

void Program::update_config(ProgramConfig config, bool start_new) {
  if (config.instances != config_.instances) cancel_rollout("the number of instances changed");
  config_ = std::move(config);
  for (auto& i : instances_) i->apply_config();
  while (static_cast<int>(instances_.size()) > config_.instances) {
    // Highest indexes go; they stop, then are destroyed off the loop stack.
    retiring_.push_back(std::move(instances_.back()));
    instances_.pop_back();
    Instance* gone = retiring_.back().get();
    gone->stop([this, gone] {
      context_.loop.defer([this, gone] {
        for (auto it = retiring_.begin(); it != retiring_.end(); ++it)
          if (it->get() == gone) {
            retiring_.erase(it);
            break;
          }
      });
    });
  }
  while (static_cast<int>(instances_.size()) < config_.instances) {
    instances_.push_back(
        std::make_unique<Instance>(context_.loop, *this, static_cast<int>(instances_.size())));
    if (start_new) start_queue_.push_back({instances_.back()->index(), false});
  }
  if (start_new) start_some();  // nothing queued: nothing done
}

void Program::replace_processes(ProgramConfig config, ListenSockets listen_sockets) {
  // Only instances that run (or try to), and stay: a program the operator
  // stopped stays stopped with its new settings.
  std::vector<int> order;
  bool up = false;
  for (auto& i : instances_) {
    if (i->state() == State::stopped) continue;
    up = true;
    if (i->index() < config.instances) order.push_back(i->index());
  }
  // Before update_config, which may start new instances.
  listen_sockets_ = std::move(listen_sockets);
  update_config(std::move(config), up);
  if (order.size() <= 1) {
    for (int index : order) instances_[static_cast<std::size_t>(index)]->restart_manual();
    return;
  }
  roll(std::move(order), "the configuration changed how it runs");
}

bool Program::all_ready() const {
  for (auto& i : instances_)
    if (!i->ready()) return false;
  return true;
}

bool Program::all_down() const {
  for (auto& i : instances_)
    if (i->pid() > 0 || i->state() == State::stopping) return false;
  return true;
}

std::string Program::busy() const {
  if (rollout_ && !rollout_->finished()) return "a rolling restart of " + config_.name + " is under way";
  if (!retiring_.empty()) return "instances removed from " + config_.name + " are still stopping";
  if (!stop_queue_.empty()) return config_.name + " is being stopped";
  return {};
}

}  // namespace vigil
