// Supervisor: reaping, `after` ordering, shutdown order, strays.
#include "supervisor.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include "config_parse.h"
#include "fd_budget.h"

#include <spdlog/spdlog.h>

#include "config_inputs.h"
#include "fd.h"
#include "handover.h"

namespace vigil {

namespace {

std::filesystem::path saved_runtime_dir(const nlohmann::json& saved) {
  auto it = saved.find("runtime_dir");
  if (it == saved.end() || !it->is_string() || it->get<std::string>().empty())
    throw HandoverError("runtime_dir: missing");
  return it->get<std::string>();
}

}  // namespace

Supervisor::Supervisor(EventLoop& loop, Config config) : Supervisor(loop, std::move(config), nullptr) {}

Supervisor::Supervisor(EventLoop& loop, Config config, const nlohmann::json* saved,
                       std::map<std::string, UniqueFd> inherited)
    : loop_(loop),
      config_(std::move(config)),
      runtime_dir_(saved ? RuntimeDir(saved_runtime_dir(*saved)) : RuntimeDir()),
      inherited_sockets_(std::move(inherited)),
      reaper_(loop),
      context_{loop,           reaper_,
               RealClock::get(), runtime_dir_.path(),
               config_.log_dir, [this](Instance& i, State o, State n) { on_state_change(i, o, n); }},
      sample_timer_(loop, [this] {
        sample_timer_at_.reset();
        sampler_.begin_round();
        sample_program_ = 0;
        sample_instance_ = 0;
        sample_step();
      }),
      sample_step_timer_(loop, [this] { sample_step(); }),
      read_ahead_timer_(loop, [this] {
        // A pass (or the rest of the one under way, from its start) that
        // also reads every tree that would be stale at the scrape.
        fresh_by_ = scrapes_.next_expected();
        sampler_.begin_round();
        sample_program_ = 0;
        sample_instance_ = 0;
        sample_step();
      }) {
  // Descendants that daemonize are re-parented to vigil, so they are reaped
  // here and can be found (and killed) when their program stops.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  raise_fd_limit();
  // Said once at start: starts beyond the limit fail (EMFILE) and retry.
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    if (auto warning = fd_budget_warning(fd_budget(config_), static_cast<std::size_t>(limit.rlim_cur)))
      spdlog::warn("{}", warning->substr(warning.value().find(' ') + 1));
  reaper_.set_after_reap([this] { after_reap(); });
  // The held sockets a handover passed on: taken by address below.
  if (saved)
    if (auto it = saved->find("listen"); it != saved->end() && it->is_array())
      for (const auto& s : *it) {
        if (!s.is_object() || !s.value("address", nlohmann::json()).is_string() ||
            !s.value("fd", nlohmann::json()).is_number_integer())
          continue;
        if (UniqueFd fd = take_inherited_fd(s["fd"].get<long>()))
          inherited_sockets_[s["address"].get<std::string>()] = std::move(fd);
      }
  if (saved)
    for (const auto& s : saved->value("sticky", nlohmann::json::array()))
      if (s.is_object() && s.value("listen", nlohmann::json()).is_string() && s.contains("proxy") &&
          s["proxy"].is_object())
        if (UniqueFd fd = take_inherited_fd(s["proxy"].value("listener", -1L)))
          inherited_sockets_[sticky_listener_key(s["listen"].get<std::string>())] = std::move(fd);
  // Before any program: a socket that cannot be bound stops vigil from
  // starting, as a failed systemd socket unit stops its service.
  auto sockets = hold_listen_sockets(config_);
  auto proxies = hold_sticky_proxies(config_);
  inherited_sockets_.clear();  // those no program lists any more: closed
  for (const auto& pc : config_.programs)
    programs_.push_back(make_program(pc, std::move(sockets[pc.name]), std::move(proxies[pc.name])));
  for (const auto& wc : config_.watches) watches_.push_back(make_watch(wc));
}

std::unique_ptr<Watch> Supervisor::make_watch(const WatchConfig& wc) {
  // on_failure commands run next to the config file, as relative paths in
  // it resolve there.
  return std::make_unique<Watch>(loop_, reaper_, wc, config_.file.parent_path());
}

void Supervisor::reload_watches(const std::vector<WatchChange>& changes) {
  std::vector<std::unique_ptr<Watch>> old = std::move(watches_);
  watches_.clear();
  auto take_old = [&old](const std::string& name) -> std::unique_ptr<Watch> {
    for (auto& w : old)
      if (w && w->name() == name) return std::move(w);
    return nullptr;
  };
  // In the new config's order, as the plan lists them; removed ones last.
  for (const auto& change : changes) {
    if (change.action == ReloadAction::stop) continue;
    const WatchConfig& wc = *config_.find_watch(change.name);
    std::unique_ptr<Watch> w = take_old(change.name);
    const bool in_place =
        change.action == ReloadAction::update || change.action == ReloadAction::unchanged;
    if (w && in_place && !w->failed_to_start()) {
      if (change.action == ReloadAction::update) w->update(wc);
      watches_.push_back(std::move(w));
      continue;
    }
    // The old one goes first: it may hold the very socket path.
    if (w && w->failed_to_start() && in_place)
      spdlog::info("watch {}: it could not start; trying again", wc.name);
    w.reset();
    watches_.push_back(make_watch(wc));
    watches_.back()->start();
  }
  for (auto& w : old)
    if (w) spdlog::info("watch {}: removed", w->name());
  old.clear();
}

Watch* Supervisor::find_watch(std::string_view name) const {
  for (const auto& w : watches_)
    if (w->name() == name) return w.get();
  return nullptr;
}

std::vector<WatchSnapshot> Supervisor::watch_snapshots() const {
  const WallTime wall = std::chrono::system_clock::now();
  const SteadyTime now = std::chrono::steady_clock::now();
  std::vector<WatchSnapshot> out;
  out.reserve(watches_.size());
  for (const auto& w : watches_) out.push_back(w->snapshot(wall, now));
  return out;
}

std::unique_ptr<Program> Supervisor::make_program(const ProgramConfig& pc, ListenSockets sockets,
                                                  std::shared_ptr<StickyProxy> sticky) {
  return std::make_unique<Program>(context_, pc, std::move(sockets), std::move(sticky));
}

// How the sticky proxies copy bytes: RelayEngine's default, or
// VIGIL_STICKY_ENGINE=buffer|splice (for make bench, which measures both).
namespace {
RelayEngine sticky_engine() {
  const char* e = std::getenv("VIGIL_STICKY_ENGINE");
  if (e && std::string_view(e) == "buffer") return RelayEngine::buffer;
  if (e && std::string_view(e) == "splice") return RelayEngine::splice;
  return kDefaultRelayEngine;
}
}  // namespace

// The sticky proxy of each program of `config` that has one: the program's
// own when its listen address stayed (its connections go on), otherwise
// bound here. Throws, binding nothing more, when an address cannot be had.
std::map<std::string, std::shared_ptr<StickyProxy>> Supervisor::hold_sticky_proxies(
    const Config& config) {
  std::map<std::string, std::shared_ptr<StickyProxy>> out;
  for (const auto& pc : config.programs) {
    if (!pc.sticky || !pc.port_base) continue;
    if (const Program* p = find(pc.name);
        p && p->sticky() && p->config().sticky && p->config().sticky->listen == pc.sticky->listen) {
      out[pc.name] = p->sticky();
      continue;
    }
    try {
      // A listener a handover passed on, if any; else bound anew.
      UniqueFd listener;
      if (auto in = inherited_sockets_.find(sticky_listener_key(pc.sticky->listen.to_string()));
          in != inherited_sockets_.end())
        listener = std::move(in->second);
      out[pc.name] = std::make_shared<StickyProxy>(context_.loop, pc.name, *pc.sticky, *pc.port_base,
                                                   pc.instances, sticky_engine(), std::move(listener));
    } catch (const std::exception& e) {
      throw std::runtime_error("program " + pc.name + ": " + e.what());
    }
  }
  return out;
}

// The sockets each program of `config` gets, in its `listen` order: the one
// a program holds now (or one still stopping after a reload) for the same
// address, so that a reload keeps it with no gap and no refused
// connection; otherwise bound here. On an error, the ones bound by then are
// closed again as the map goes.
std::map<std::string, ListenSockets> Supervisor::hold_listen_sockets(const Config& config) {
  std::map<std::string, std::shared_ptr<const ListenSocket>> held;
  for (const auto* programs : {&programs_, &retiring_})
    for (const auto& p : *programs)
      for (const auto& s : p->listen_sockets()) held.emplace(s->config().address(), s);
  std::map<std::string, ListenSockets> out;
  for (const auto& pc : config.programs) {
    ListenSockets& mine = out[pc.name];
    for (const auto& l : pc.listen) {
      auto it = held.find(l.address());
      if (it != held.end()) {
        mine.push_back(it->second);
        continue;
      }
      if (auto in = inherited_sockets_.find(l.address()); in != inherited_sockets_.end() && in->second) {
        auto s = std::make_shared<const ListenSocket>(l, std::move(in->second));
        held.emplace(l.address(), s);
        mine.push_back(std::move(s));
        continue;
      }
      try {
        mine.push_back(std::make_shared<const ListenSocket>(l));
      } catch (const std::exception& e) {
        throw std::runtime_error("program " + pc.name + ": " + e.what());
      }
    }
  }
  return out;
}

void Supervisor::start_or_wait(Program* p) {
  if (!p->config().autostart || shutting_down_) return;
  if (dependencies_ready(*p))
    p->start(false);
  else
    waiting_.push_back(p);
}

void Supervisor::retire(std::unique_ptr<Program> p, std::function<void()> then) {
  Program* raw = p.get();
  retiring_.push_back(std::move(p));
  raw->stop([this, raw, then = std::move(then)] {
    // Destroyed off the loop stack: this runs inside an instance's callback.
    loop_.defer([this, raw, then] {
      for (auto it = retiring_.begin(); it != retiring_.end(); ++it)
        if (it->get() == raw) {
          retiring_.erase(it);
          break;
        }
      if (then) then();
    });
  });
}

ReloadResult Supervisor::reload_file(bool dry_run) {
  ReloadResult result;
  if (shutting_down_ && !dry_run) {
    // Programs are being stopped in order; a new program or instance would
    // start behind the shutdown's back and keep it from ever ending.
    result.errors.push_back("vigil is shutting down: the reload is not applied");
    spdlog::warn("reload ignored: vigil is shutting down");
    return result;
  }
  const auto& path = config_.file;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    result.errors.push_back(path.string() + ": cannot read the config: " + std::strerror(errno));
  } else {
    ConfigParseResult parsed =
        parse_config(read_config_text(in), path.string(), system_config_inputs());
    for (const auto& e : parsed.errors) result.errors.push_back(e.to_string());
    if (parsed.ok()) {
      try {
        ReloadPlan plan = reload(std::move(parsed.config), dry_run);
        result.ok = true;
        result.plan = describe(plan);
        result.changes = plan.changes_anything();
        return result;
      } catch (const std::runtime_error& e) {
        // A socket of a new `listen` could not be bound: nothing changed.
        result.errors.push_back(e.what());
      }
    }
  }
  // The running config stays; the operator reads why in the log and the reply.
  for (const auto& e : result.errors) spdlog::error("reload: {}", e);
  spdlog::error("reload failed: {} error{}; the running configuration is unchanged",
                result.errors.size(), result.errors.size() == 1 ? "" : "s");
  if (!dry_run) reload_failed();
  return result;
}

void Supervisor::reload_failed() {
  ++reloads_failed_;
  last_reload_ok_ = false;
}

ReloadPlan Supervisor::reload(Config next, bool dry_run) {
  ReloadPlan plan = diff_config(config_, next);
  if (dry_run) return plan;
  // First, as it may fail: after it, nothing does.
  auto sockets = hold_listen_sockets(next);
  auto proxies = hold_sticky_proxies(next);
  spdlog::info("reloading {}:\n{}", next.file.string(), describe(plan));

  const bool sample_changed = next.sample_interval != config_.sample_interval;
  if (next.log_level != config_.log_level)
    spdlog::set_level(spdlog::level::from_str(next.log_level));
  // What only a restart of vigil applies stays as it was.
  next.http = config_.http ? std::optional<HttpConfig>(HttpConfig{config_.http->listen,
                                                                  next.http ? next.http->token_file
                                                                            : std::filesystem::path()})
                           : std::nullopt;
  next.control_socket = config_.control_socket;
  // In force before the programs are updated: what they derive from it
  // (their log paths under log_dir) must come from the new one.
  config_ = std::move(next);
  reload_watches(plan.watches);

  std::vector<std::unique_ptr<Program>> old = std::move(programs_);
  programs_.clear();
  auto take_old = [&old](const std::string& name) -> std::unique_ptr<Program> {
    for (auto& p : old)
      if (p && p->name() == name) return std::move(p);
    return nullptr;
  };
  std::vector<Program*> to_start;
  for (const auto& change : plan.programs) {
    if (change.action == ReloadAction::stop) continue;
    const ProgramConfig& pc = *config_.find(change.name);
    switch (change.action) {
      case ReloadAction::start:
        programs_.push_back(make_program(pc, std::move(sockets[pc.name]), std::move(proxies[pc.name])));
        to_start.push_back(programs_.back().get());
        break;
      case ReloadAction::restart: {
        // How it runs changed (command, cwd, env, user, port_base, listen):
        // its running instances are replaced one at a time, each once the
        // one before is ready, so it never loses more than one. New
        // processes get the new sockets; the old keep theirs until they go.
        auto p = take_old(change.name);
        p->replace_processes(pc, std::move(sockets[pc.name]));
        p->set_sticky(std::move(proxies[pc.name]));
        programs_.push_back(std::move(p));
        break;
      }
      case ReloadAction::unchanged:
      case ReloadAction::update:
      case ReloadAction::resize: {
        auto p = take_old(change.name);
        // New instances join a program that is up. One wholly stopped (by
        // the operator, or still waiting for its `after` programs) gains
        // stopped instances, started with the others when it starts.
        const bool up = std::any_of(p->instances().begin(), p->instances().end(),
                                    [](const auto& i) { return i->state() != State::stopped; });
        p->update_config(pc, up);
        p->set_sticky(std::move(proxies[pc.name]));
        programs_.push_back(std::move(p));
        break;
      }
      case ReloadAction::stop:
        break;
    }
  }
  for (auto& p : old)
    if (p) retire(std::move(p));
  // Programs still waiting for `after` keep waiting, if they are still here.
  std::erase_if(waiting_, [this](Program* w) {
    return std::none_of(programs_.begin(), programs_.end(),
                        [w](const auto& p) { return p.get() == w; });
  });

  if (sample_changed && !sample_step_timer_.armed()) {
    sample_timer_.arm(config_.sample_interval);
    sample_timer_at_ = context_.clock.steady() + config_.sample_interval;
  }
  // A memory_limit set on a still tree: read every interval from now on.
  sample_soon();
  for (Program* p : to_start) start_or_wait(p);
  ++reloads_ok_;
  last_reload_ok_ = true;
  if (reload_listener_) reload_listener_();
  return plan;
}

Supervisor::~Supervisor() = default;

Program* Supervisor::find(std::string_view name) const {
  for (auto& p : programs_)
    if (p->name() == name) return p.get();
  return nullptr;
}

void Supervisor::after_reap() {
  // Stopping instances re-check their trees through the reaper's watches.
  if (shutting_down_ && finishing_) finish_shutdown();
}

bool Supervisor::dependencies_ready(const Program& p) const {
  for (const auto& dep : p.config().after) {
    const Program* d = find(dep);
    if (d && !d->all_ready()) return false;
  }
  return true;
}

std::vector<InstanceSnapshot> Supervisor::snapshots() const {
  std::vector<InstanceSnapshot> out;
  std::size_t n = 0;
  for (const auto& p : programs_) n += p->instances().size();
  out.reserve(n);
  for (const auto& p : programs_) {
    const auto rollout = p->rollout();
    for (const auto& i : p->instances()) {
      out.push_back(i->snapshot());
      out.back().rollout = rollout;
      out.back().rollouts_completed = p->rollouts_completed();
      out.back().rollouts_failed = p->rollouts_failed();
      out.back().sticky = p->sticky_snapshot(i->index());
    }
  }
  return out;
}

// A pass reads the trees that are due (SampleSchedule), kSampleSlice per
// loop turn: between two slices the loop runs what fell due (a heartbeat
// deadline, a probe), so a pass over 1,000 trees never holds it for long.
void Supervisor::sample_step() {
  // Stopping everything: no tree is read for a memory rule any more (a
  // scrape still refreshes what it shows), and a pass would compete with
  // the stop's own work in every loop turn.
  if (shutting_down_) return;
  constexpr std::size_t kSampleSlice = 32;
  const SteadyTime now = context_.clock.steady();
  std::size_t budget = kSampleSlice;
  while (sample_program_ < programs_.size()) {
    Program& p = *programs_[sample_program_];
    p.sample(sampler_, now, config_.sample_interval, sample_instance_, budget, false, fresh_by_);
    if (sample_instance_ < p.instances().size()) break;  // the slice is spent
    ++sample_program_;
    sample_instance_ = 0;
  }
  if (sample_program_ < programs_.size()) {
    sample_step_timer_.arm(Duration{0});  // a timer, not defer: due timers run first
    return;
  }
  fresh_by_.reset();
  arm_sample_timer(now);
}

// The next pass when the first tree is due: with every tree still and none
// under a memory_limit, vigil wakes once in kIdleSampleStride intervals.
void Supervisor::arm_sample_timer(SteadyTime now) {
  const Duration interval = config_.sample_interval;
  std::optional<SteadyTime> next;
  for (const auto& p : programs_)
    if (auto at = p->next_sample_at(); at && (!next || *at < *next)) next = at;
  Duration wait = kIdleSampleStride * interval;
  if (next) wait = std::clamp(std::chrono::ceil<Duration>(*next - now), Duration{0}, wait);
  sample_timer_.arm(wait);
  sample_timer_at_ = now + wait;
}

// A new process is read within one interval, whenever the pass is due.
void Supervisor::sample_soon() {
  if (sample_step_timer_.armed()) return;  // a pass is under way; it reaches the new one
  const SteadyTime now = context_.clock.steady();
  if (sample_timer_at_ && *sample_timer_at_ <= now + config_.sample_interval) return;
  sample_timer_.arm(config_.sample_interval);
  sample_timer_at_ = now + config_.sample_interval;
}

void Supervisor::sample() {
  sample_step_timer_.cancel();
  sample_program_ = programs_.size();  // no pass under way
  sampler_.begin_round();
  const SteadyTime now = context_.clock.steady();
  for (auto& p : programs_) {
    std::size_t next = 0;
    std::size_t budget = SIZE_MAX;
    p->sample(sampler_, now, config_.sample_interval, next, budget, true);
  }
}

void Supervisor::sample_stale(Freshness freshness) {
  sampler_.begin_round();
  const SteadyTime now = context_.clock.steady();
  for (auto& p : programs_) p->refresh_samples(sampler_, now, config_.sample_interval, freshness);
}

void Supervisor::prepare_scrape() {
  sample_stale(Freshness::interval);
  const SteadyTime now = context_.clock.steady();
  scrapes_.scraped(now);
  if (auto at = scrapes_.read_ahead_at(now, config_.sample_interval))
    read_ahead_timer_.arm(std::chrono::ceil<Duration>(*at - now));
  else
    read_ahead_timer_.cancel();
}

void Supervisor::start() {
  sample();
  arm_sample_timer(context_.clock.steady());
  for (auto& p : programs_) start_or_wait(p.get());
  for (auto& w : watches_) w->start();
  for (auto* p : waiting_)
    spdlog::info("program {}: waiting for {} to be running", p->name(),
                 fmt::join(p->config().after, ", "));
}

void Supervisor::start_waiting() {
  if (shutting_down_) return;
  // A start can make another program ready only later (a timer), so one
  // pass suffices here.
  auto ready = std::stable_partition(waiting_.begin(), waiting_.end(),
                                     [this](Program* p) { return !dependencies_ready(*p); });
  std::vector<Program*> to_start(ready, waiting_.end());
  waiting_.erase(ready, waiting_.end());
  for (auto* p : to_start) p->start(false);
}

void Supervisor::on_state_change(Instance& instance, State old_state, State new_state) {
  (void)old_state;
  if (instance.pid() > 0) sample_soon();  // a new process: its tree is read within an interval
  if (new_state == State::running && !waiting_.empty()) start_waiting();
  if (new_state == State::fatal && instance.config().essential && !shutting_down_) {
    spdlog::critical("program {}: essential program is fatal; stopping everything (exit 3)",
                     instance.label());
    exit_code_ = 3;
    shutdown(nullptr);
  }
}

void Supervisor::shutdown(std::function<void(int)> done) {
  if (done) shutdown_done_ = std::move(done);
  if (shutting_down_) return;
  shutting_down_ = true;
  waiting_.clear();
  // Watches first: a watch of a service that needs these programs would
  // see it fail as they stop, and act.
  for (auto& w : watches_) w->stop();
  spdlog::info("stopping all programs");
  stop_next();
}

// Dependents stop first: a program stops once every program naming it in
// `after` has stopped. Counted, not searched: each program's stop, when it
// ends, releases the programs it named, so the whole order costs one pass
// over programs and their `after` lists however many there are.
void Supervisor::stop_next() {
  std::unordered_map<std::string_view, Program*> by_name;
  for (auto& p : programs_) by_name.emplace(p->name(), p.get());
  for (auto& p : programs_)
    for (const auto& dep : p->config().after)
      if (auto it = by_name.find(dep); it != by_name.end() && it->second != p.get()) {
        ++dependents_left_[it->second];
        stop_releases_[p.get()].push_back(it->second);
      }
  programs_left_ = programs_.size();
  std::vector<Program*> free;
  for (auto& p : programs_)
    if (dependents_left_[p.get()] == 0) free.push_back(p.get());
  if (programs_left_ == 0) {
    finishing_ = true;
    finish_shutdown();
    return;
  }
  for (Program* p : free) stop_program(p);
}

void Supervisor::stop_program(Program* p) {
  p->stop(
      [this, p] {
        // Off the instance's stack: a stop done in its own callback.
        loop_.defer([this, p] {
          if (finishing_ || finished_) return;
          for (Program* d : stop_releases_[p])
            if (--dependents_left_[d] == 0) stop_program(d);
          if (--programs_left_ == 0) {
            finishing_ = true;
            finish_shutdown();
          }
        });
      },
      /*last=*/true);
}

void Supervisor::finish_shutdown() {
  if (!finishing_) return;
  // Children re-parented to vigil that no program stop caught (they left
  // their process group): they go now. SIGKILL: their programs have already
  // been given their stop_signal and stop_timeout.
  auto strays = child_pids(::getpid());
  std::erase_if(strays, [this](pid_t pid) { return started_by_watch(pid); });
  if (!strays.empty()) {
    for (pid_t pid : strays) {
      spdlog::info("killing leftover process {}", pid);
      ::kill(pid, SIGKILL);
    }
    // Reaped through SIGCHLD; come back until none is left.
    if (!stray_timer_) stray_timer_ = std::make_unique<Timer>(loop_, [this] { reaper_.reap(); finish_shutdown(); });
    stray_timer_->arm(std::chrono::milliseconds(50));
    return;
  }
  if (stray_timer_) stray_timer_->cancel();
  finishing_ = false;
  finished_ = true;
  auto done = std::move(shutdown_done_);
  shutdown_done_ = nullptr;
  spdlog::info("all programs stopped");
  if (done) done(exit_code_);
}

void Supervisor::kill_all_now() {
  for (auto& p : programs_) p->kill_now();
  for (pid_t pid : child_pids(::getpid()))
    if (!started_by_watch(pid)) ::kill(pid, SIGKILL);
}

bool Supervisor::started_by_watch(pid_t pid) {
  // A process a watch's on_failure left running (the service it restarted,
  // daemonized and so re-parented to vigil) is the service's, not vigil's:
  // it outlives vigil's shutdown.
  const std::optional<std::string> watch = process_variable(pid, "VIGIL_WATCH");
  if (!watch) return false;
  if (std::find(left_running_.begin(), left_running_.end(), pid) == left_running_.end()) {
    left_running_.push_back(pid);
    spdlog::info("leaving process {} running: watch {}'s on_failure started it", pid, *watch);
  }
  return true;
}

void Supervisor::reopen_logs() {
  for (auto& p : programs_) p->reopen_logs();
}

// ---------------------------------------------------------------------------
// The handover to a new vigil across exec

std::string Supervisor::handover_blocker() const {
  if (shutting_down_) return "vigil is shutting down";
  if (!retiring_.empty()) return "programs a reload removed or replaced are still stopping";
  for (const auto& p : programs_)
    if (auto why = p->busy(); !why.empty()) return why;
  return {};
}

nlohmann::json Supervisor::save_handover(std::vector<int>& keep) const {
  nlohmann::json j;
  j["runtime_dir"] = runtime_dir_.path().string();
  j["notify_serial"] = Instance::notify_serial();
  j["reloads"] = {{"success", reloads_ok_}, {"failure", reloads_failed_}, {"last_ok", last_reload_ok_}};
  auto waiting = nlohmann::json::array();
  for (const Program* p : waiting_) waiting.push_back(p->name());
  j["waiting"] = std::move(waiting);
  auto listen = nlohmann::json::array();
  std::set<int> listed;
  auto programs = nlohmann::json::array();
  for (const auto& p : programs_) {
    for (const auto& s : p->listen_sockets())
      if (listed.insert(s->fd()).second) {
        listen.push_back({{"address", s->config().address()}, {"fd", s->fd()}});
        keep.push_back(s->fd());
      }
    auto instances = nlohmann::json::array();
    for (const auto& i : p->instances()) instances.push_back(i->save_handover(keep));
    SaveArchive rollouts;
    p->persist_rollouts(rollouts);
    programs.push_back(
        {{"name", p->name()}, {"instances", std::move(instances)}, {"rollouts", std::move(rollouts.out)}});
  }
  j["listen"] = std::move(listen);
  j["programs"] = std::move(programs);
  auto sticky = nlohmann::json::array();
  for (const auto& p : programs_)
    if (p->sticky())
      sticky.push_back({{"program", p->name()},
                        {"listen", p->config().sticky->listen.to_string()},
                        {"proxy", p->sticky()->save_handover(keep)}});
  j["sticky"] = std::move(sticky);
  return j;
}

namespace {

// The start time of a child (boot time + its start ticks); now if unknown.
WallTime process_start(pid_t pid) {
  const auto seconds = process_start_seconds(pid);
  if (!seconds) return std::chrono::system_clock::now();
  return WallTime(std::chrono::duration_cast<WallTime::duration>(std::chrono::duration<double>(*seconds)));
}

// Connected TCP sockets this process inherited across exec (without
// FD_CLOEXEC) are closed.
void close_inherited_connections() {
  for (int fd : inherited_fds()) {
    int listening = 0, type = 0;
    socklen_t len = sizeof listening, tlen = sizeof type;
    sockaddr_storage ss{};
    socklen_t slen = sizeof ss;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening) continue;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_STREAM) continue;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &slen) != 0) continue;
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) ::close(fd);
  }
}

}  // namespace

Supervisor::Resumed Supervisor::resume(const nlohmann::json* saved) {
  Resumed out;
  std::set<Instance*> restored;
  std::set<const Program*> from_state;
  if (saved) {
    if (auto it = saved->find("notify_serial"); it != saved->end() && it->is_number_unsigned())
      Instance::notify_serial() = std::max(Instance::notify_serial(), it->get<std::uint64_t>());
    if (auto it = saved->find("reloads"); it != saved->end() && it->is_object()) {
      reloads_ok_ = it->value("success", std::uint64_t{0});
      reloads_failed_ = it->value("failure", std::uint64_t{0});
      last_reload_ok_ = it->value("last_ok", true);
    }
    const auto programs = saved->value("programs", nlohmann::json::array());
    for (std::size_t n = 0; n < programs.size(); ++n) {
      const auto& sp = programs[n];
      const std::string name = sp.is_object() ? sp.value("name", std::string()) : std::string();
      Program* p = find(name);
      const auto instances = sp.is_object() ? sp.value("instances", nlohmann::json::array())
                                            : nlohmann::json::array();
      if (p && sp.contains("rollouts")) try {
          LoadArchive a(sp["rollouts"], "programs[" + std::to_string(n) + "].rollouts");
          p->persist_rollouts(a);
        } catch (const HandoverError& e) {
          out.errors.push_back(e.what());
        }
      for (std::size_t k = 0; k < instances.size(); ++k) {
        const std::string path = "programs[" + std::to_string(n) + "].instances[" + std::to_string(k) + "]";
        const auto& si = instances[k];
        const int index = si.is_object() ? si.value("index", -1) : -1;
        if (!p || index < 0 || static_cast<std::size_t>(index) >= p->instances().size()) {
          // The config no longer has it (checked before the exec; a race
          // with an edit): its process is stopped, not left unwatched.
          const int pgid = si.is_object() ? si.value("pgid", 0) : 0;
          if (pgid > 1) ::kill(-pgid, SIGTERM);
          out.errors.push_back("program " + name + " instance " + std::to_string(index) +
                               " is not in the config: its processes were sent SIGTERM");
          continue;
        }
        Instance& i = *p->instances()[static_cast<std::size_t>(index)];
        try {
          i.adopt(si, path);
          restored.insert(&i);
          from_state.insert(p);
          if (i.pid() > 0) ++out.from_state;
        } catch (const std::exception& e) {
          out.errors.push_back(e.what());
        }
      }
    }
    for (const auto& w : saved->value("waiting", nlohmann::json::array()))
      if (w.is_string())
        if (Program* p = find(w.get<std::string>()); p && from_state.count(p)) waiting_.push_back(p);
    // The sticky proxies' open connections go on (their listeners were
    // taken as the proxies were made).
    const auto sticky = saved->value("sticky", nlohmann::json::array());
    for (std::size_t n = 0; n < sticky.size(); ++n) {
      const auto& s = sticky[n];
      Program* p = s.is_object() ? find(s.value("program", std::string())) : nullptr;
      const auto proxy = s.is_object() ? s.value("proxy", nlohmann::json()) : nlohmann::json();
      if (!p || !p->sticky() || !proxy.is_object()) continue;
      auto errors = p->sticky()->resume(proxy, "sticky[" + std::to_string(n) + "].proxy");
      out.errors.insert(out.errors.end(), errors.begin(), errors.end());
    }
  }

  // Children no restored instance owns: an instance's process, by its
  // environment, when that instance has none.
  std::map<unsigned long, int> my_pipes;  // inode -> vigil's fd (kept across exec, not taken)
  for (int fd : inherited_fds())
    if (unsigned long ino = pipe_inode("/proc/self/fd/" + std::to_string(fd))) my_pipes[ino] = fd;
  for (pid_t pid : child_pids(::getpid())) {
    if (reaper_.tracked(pid)) continue;
    const auto program = process_variable(pid, "VIGIL_PROGRAM");
    const auto index_text = process_variable(pid, "VIGIL_INSTANCE");
    if (!program || !index_text) continue;
    Program* p = find(*program);
    const int index = std::atoi(index_text->c_str());
    if (!p || index < 0 || static_cast<std::size_t>(index) >= p->instances().size()) continue;
    Instance& i = *p->instances()[static_cast<std::size_t>(index)];
    if (restored.count(&i) || i.pid() > 0) continue;
    // vigil's inherited fd on the same pipe as the child's `child_fd`
    // (taken: FD_CLOEXEC again); empty when there is none.
    auto take_pipe = [&](const std::string& child_fd) {
      const unsigned long ino = pipe_inode("/proc/" + std::to_string(pid) + "/fd/" + child_fd);
      auto it = my_pipes.find(ino);
      if (ino == 0 || it == my_pipes.end()) return UniqueFd();
      UniqueFd fd = take_inherited_fd(it->second);
      my_pipes.erase(it);
      return fd;
    };
    // Its output pipes (at its 1 and 2) and its heartbeat pipe (at
    // VIGIL_HEARTBEAT_FD).
    std::vector<std::pair<UniqueFd, Stream>> pipes;
    for (Stream s : {Stream::out, Stream::err})
      if (UniqueFd fd = take_pipe(s == Stream::out ? "1" : "2")) pipes.emplace_back(std::move(fd), s);
    UniqueFd heartbeat;
    if (auto hb = process_variable(pid, "VIGIL_HEARTBEAT_FD")) heartbeat = take_pipe(*hb);
    spdlog::warn("program {}: took over process {} from /proc ({})", i.label(), pid,
                 pipes.empty() ? "its output pipes were not found: its output is lost"
                               : "its output is read on");
    i.adopt_process(pid, process_start(pid), std::move(pipes), std::move(heartbeat));
    restored.insert(&i);
    ++out.from_proc;
  }
  // What a read state passed on and nobody took is closed, so that no fd
  // leaks from one upgrade to the next. Without one, they stay: one of
  // them may be the lifeline's pipe, whose end would kill everything; but
  // connected TCP sockets (a sticky proxy's relayed connections, HTTP
  // clients) go: nobody would ever serve them.
  if (saved)
    for (const auto& [ino, fd] : my_pipes) ::close(fd);
  else
    close_inherited_connections();
  // Instances taken over running and ready are routable again.
  for (auto& p : programs_)
    if (p->sticky()) p->set_sticky(p->sticky());

  // Programs the state did not carry start as at start-up; in one that it
  // did, only what took over nothing and was to run (autostart) is left
  // as the state says.
  for (auto& p : programs_) {
    if (from_state.count(p.get())) continue;
    const bool any = std::any_of(p->instances().begin(), p->instances().end(),
                                 [&](const auto& i) { return restored.count(i.get()) != 0; });
    if (!any) {
      start_or_wait(p.get());
    } else if (p->config().autostart) {
      for (const auto& i : p->instances())
        if (!restored.count(i.get())) i->start(false);
    }
  }
  for (auto& w : watches_) w->start();
  // The first /proc reads as the timer has them (within one interval): not
  // all of them now, while the instances are being taken over.
  arm_sample_timer(context_.clock.steady());
  // Exits during the exec: their SIGCHLD went to the old image.
  reaper_.reap();
  return out;
}

}  // namespace vigil
