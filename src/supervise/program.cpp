// Program: fan-out to instances, environment, log paths, and the memory
// rule that spans instances.
#include "program.h"

#include <unistd.h>

#include <memory>

extern char** environ;

namespace vigil {

namespace {

// Variables that describe vigil's own supervisor or are set per child by
// vigil: never passed through from vigil's environment.
bool is_reserved_variable(std::string_view kv) {
  static constexpr std::string_view kReserved[] = {
      "NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=", "LISTEN_FDS=", "LISTEN_PID=",
      "LISTEN_FDNAMES=", "VIGIL_PROGRAM=", "VIGIL_INSTANCE=", "NODE_APP_INSTANCE=",
      "VIGIL_HEARTBEAT_FD=", "VIGIL_SOCKET="};
  for (auto r : kReserved)
    if (kv.substr(0, r.size()) == r) return true;
  return false;
}

}  // namespace

Program::Program(ProgramContext& context, ProgramConfig config, ListenSockets listen_sockets)
    : context_(context), config_(std::move(config)), listen_sockets_(std::move(listen_sockets)) {
  build_environment();
  for (int i = 0; i < config_.instances; ++i)
    instances_.push_back(std::make_unique<Instance>(context_.loop, *this, i));
}

void Program::build_environment() {
  base_env_.clear();
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos || is_reserved_variable(kv)) continue;
    if (config_.env.count(std::string(kv.substr(0, eq)))) continue;
    if (config_.port_base && kv.starts_with("PORT=")) continue;  // each instance gets its own
    base_env_.emplace_back(kv);
  }
  for (const auto& [k, v] : config_.env)
    if (!config_.port_base || k != "PORT") base_env_.push_back(k + "=" + v);
  base_env_.push_back("VIGIL_PROGRAM=" + config_.name);
}

Program::~Program() = default;

std::vector<std::string> Program::environment(int index) const {
  std::vector<std::string> env = base_env_;
  env.push_back("VIGIL_INSTANCE=" + std::to_string(index));
  env.push_back("NODE_APP_INSTANCE=" + std::to_string(index));
  if (config_.port_base) env.push_back("PORT=" + std::to_string(*config_.port_base + index));
  return env;
}

std::filesystem::path Program::log_path(int index, Stream stream) const {
  if (config_.log == LogMode::off) return {};
  std::string base = config_.name;
  if (config_.instances > 1) base += "-" + std::to_string(index);
  if (config_.log == LogMode::combined) return context_.log_dir / (base + ".log");
  return context_.log_dir / (base + (stream == Stream::out ? ".out.log" : ".err.log"));
}

void Program::start(bool manual) {
  for (auto& i : instances_) i->start(manual);
}

void Program::stop(std::function<void()> done) {
  auto remaining = std::make_shared<std::size_t>(instances_.size());
  auto shared_done = std::make_shared<std::function<void()>>(std::move(done));
  if (instances_.empty() && *shared_done) (*shared_done)();
  for (auto& i : instances_) {
    i->stop([remaining, shared_done] {
      if (--*remaining == 0 && *shared_done) (*shared_done)();
    });
  }
}

void Program::restart_manual() {
  for (auto& i : instances_) i->restart_manual();
}

void Program::kill_now() {
  for (auto& i : instances_) i->kill_now();
}

void Program::reopen_logs() {
  for (auto& i : instances_) i->reopen_logs();
}

void Program::on_state_change(Instance& instance, State from, State to) {
  if (context_.on_state_change) context_.on_state_change(instance, from, to);
}

void Program::sample(const ProcSampler& sampler) {
  for (auto& i : instances_) {
    // One memory restart at a time per program, so a leak shared by every
    // instance never takes them all down together.
    bool sibling = false;
    for (auto& other : instances_)
      if (other != i && other->stopping_for(RestartReason::memory)) sibling = true;
    i->on_sample(sampler, sibling);
  }
}

void Program::update_config(ProgramConfig config, bool start_new) {
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
    if (start_new) instances_.back()->start(false);
  }
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

}  // namespace vigil
