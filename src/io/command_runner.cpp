// Commands in sequence on the loop. A command is done when its process has
// been reaped, not when its output ends: a process it left behind (a daemon
// it started) may hold the pipe for good, so the pipe is read on, bounded,
// apart from the command's life.
#include "command_runner.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include <event2/event.h>
#include <spdlog/spdlog.h>

#include "capped_lines.h"
#include "exit_status.h"
#include "notify_protocol.h"
#include "real_clock.h"
#include "spawn.h"
#include "units.h"

namespace vigil {

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr int kMaxReadsPerWakeup = 16;
// Pipes of finished commands still read at most; one more closes the oldest.
constexpr std::size_t kMaxOutputs = 8;
// After SIGKILL, how long to wait for the reap before going on without it
// (a process stuck in the kernel, in D state, dies only when it leaves it).
constexpr Duration kReapWait = std::chrono::seconds(5);
// The last line of output kept for the outcome's detail.
constexpr std::size_t kDetailLineBytes = 200;
char g_buffer[kReadChunk];

std::string basename_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// argv for the log: words joined by spaces, cut to a readable length.
std::string shown_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return sanitize_notify_text(out, 300);
}

Duration elapsed_since(SteadyTime start) {
  return std::chrono::duration_cast<Duration>(RealClock::get().steady() - start);
}

}  // namespace

struct CommandRunner::Output {
  UniqueFd fd;
  std::unique_ptr<IoEvent> event;
  CappedLines lines{kCommandMaxLineBytes, kCommandMaxLoggedBytes};
  std::string prefix;     // "watch legacy: on_failure[0] curl"
  std::string last_line;  // sanitized, for the outcome's detail

  void log_line(std::string_view line) {
    last_line = sanitize_notify_text(line, kDetailLineBytes);
    spdlog::info("{}: {}", prefix, sanitize_notify_text(line, kCommandMaxLineBytes));
  }
  // Reads what is there now; returns false at EOF (or a read error).
  bool read_available() {
    auto on_line = [this](std::string_view l) { log_line(l); };
    for (int i = 0; i < kMaxReadsPerWakeup && fd; ++i) {
      const ssize_t n = ::read(fd.get(), g_buffer, sizeof g_buffer);
      if (n > 0) {
        lines.feed(std::string_view(g_buffer, static_cast<std::size_t>(n)), on_line);
        if (static_cast<std::size_t>(n) < sizeof g_buffer) return true;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      return false;
    }
    return true;
  }
};

struct CommandRunner::Run {
  std::uint64_t serial = 0;
  std::vector<CommandSpec> commands;
  std::size_t next = 0;  // the command running, or the one to start next
  std::vector<CommandOutcome> outcomes;
  Duration timeout{0};
  Done done;
  pid_t pid = -1;  // of the command running
  SteadyTime started{};
  bool killed = false;        // its timeout passed: SIGKILL sent
  Output* output = nullptr;   // its output, in outputs_
};

CommandRunner::CommandRunner(EventLoop& loop, Reaper& reaper, std::string label,
                             std::filesystem::path cwd, std::vector<std::string> env)
    : loop_(loop),
      reaper_(reaper),
      label_(std::move(label)),
      cwd_(std::move(cwd)),
      env_(std::move(env)),
      timer_(loop, [this] { on_timeout(); }) {}

CommandRunner::~CommandRunner() {
  cancel();
  // Pipes of finished commands: closed with the runner.
  for (auto& out : outputs_) close_output(out.get());
}

std::string CommandRunner::command_label(std::size_t index) const {
  std::string name;
  if (run_ && index < run_->commands.size() && !run_->commands[index].argv.empty())
    name = " " + basename_of(run_->commands[index].argv[0]);
  return label_ + "[" + std::to_string(index) + "]" + name;
}

std::optional<pid_t> CommandRunner::pid() const {
  if (run_ && run_->pid > 0) return run_->pid;
  return std::nullopt;
}

void CommandRunner::run(std::vector<CommandSpec> commands, Duration timeout, Done done) {
  if (run_) return;
  static std::uint64_t serial = 0;
  run_ = std::make_unique<Run>();
  run_->serial = ++serial;
  run_->commands = std::move(commands);
  run_->timeout = timeout;
  run_->done = std::move(done);
  // The first command starts on the next loop turn, so `done` (which a run
  // of commands that all fail to start reaches at once) never runs inside
  // run().
  loop_.defer([this, alive = std::weak_ptr<bool>(alive_), serial = run_->serial] {
    if (alive.lock() && run_ && run_->serial == serial && run_->pid < 0) start_next();
  });
}

void CommandRunner::start_next() {
  while (run_->next < run_->commands.size()) {
    const std::size_t i = run_->next;
    const CommandSpec& spec = run_->commands[i];
    const std::string what = command_label(i);
    if (!spec.not_run.empty() || spec.argv.empty()) {
      const std::string why = spec.argv.empty() ? "empty command" : spec.not_run;
      spdlog::warn("{}: not run: {}", what, why);
      run_->outcomes.push_back({ActionResult::failed, "not run: " + why, Duration{0}});
      ++run_->next;
      continue;
    }
    Pipe pipe;
    try {
      pipe = make_pipe();
    } catch (const std::system_error& e) {
      spdlog::error("{}: cannot create a pipe for its output: {}; going on with the next command",
                    what, e.what());
      run_->outcomes.push_back({ActionResult::failed, e.what(), Duration{0}});
      ++run_->next;
      continue;
    }
    SpawnSpec s;
    s.argv = spec.argv;
    s.env = env_;
    s.cwd = cwd_;
    s.stdout_fd = pipe.write.get();
    s.stderr_fd = pipe.write.get();
    const SteadyTime started = RealClock::get().steady();
    SpawnResult r = spawn(s);
    pipe.write.reset();
    if (r.error) {
      const std::string why = r.error->message(s);
      spdlog::error("{}: {}; going on with the next command", what, why);
      run_->outcomes.push_back({ActionResult::failed, why, elapsed_since(started)});
      ++run_->next;
      continue;
    }

    run_->pid = r.pid;
    run_->started = started;
    run_->killed = false;
    reaper_.track(r.pid, [this](int status) { on_exit(status); });

    prune_outputs();
    auto out = std::make_unique<Output>();
    out->fd = std::move(pipe.read);
    out->prefix = what;
    set_nonblocking(out->fd.get());
    Output* raw = out.get();
    out->event = std::make_unique<IoEvent>(loop_, out->fd.get(), EV_READ, [this, raw](short) {
      if (!raw->read_available()) close_output(raw);
    });
    out->event->enable();
    outputs_.push_back(std::move(out));
    run_->output = raw;

    timer_.arm(run_->timeout);
    spdlog::info("{}: running {} (pid {}, timeout {})", what, shown_command(spec.argv), r.pid,
                 format_duration(run_->timeout));
    return;
  }

  timer_.cancel();
  Done done = std::move(run_->done);
  std::vector<CommandOutcome> outcomes = std::move(run_->outcomes);
  run_.reset();
  // Last: `done` may destroy this runner.
  if (done) done(outcomes);
}

void CommandRunner::on_exit(int wait_status) {
  if (!run_ || run_->pid < 0) return;
  timer_.cancel();
  // What it wrote just before it ended, so its last line can explain a
  // failure.
  if (Output* out = run_->output; out && out->fd && !out->read_available()) close_output(out);
  const ExitStatus status = ExitStatus::from_wait_status(wait_status);
  CommandOutcome outcome;
  outcome.took = elapsed_since(run_->started);
  const std::string what = command_label(run_->next);
  if (run_->killed) {
    outcome.result = ActionResult::timeout;
    outcome.detail = "no exit within " + format_duration(run_->timeout) + ": killed";
  } else if (!status.signaled && status.code == 0) {
    outcome.result = ActionResult::ok;
    outcome.detail = status.describe();
    spdlog::info("{}: done ({}, {})", what, outcome.detail, format_duration(outcome.took));
  } else {
    outcome.result = ActionResult::failed;
    outcome.detail = status.describe();
    if (run_->output && !run_->output->last_line.empty())
      outcome.detail += ": " + run_->output->last_line;
    spdlog::warn("{}: failed ({}, {})", what, outcome.detail, format_duration(outcome.took));
  }
  finish_command(std::move(outcome));
}

void CommandRunner::on_timeout() {
  if (!run_ || run_->pid < 0) return;
  const std::string what = command_label(run_->next);
  if (!run_->killed) {
    run_->killed = true;
    spdlog::warn("{}: no exit within {}; killing its process group (SIGKILL)", what,
                 format_duration(run_->timeout));
    // spawn() made it the leader of a session and group of its own: the
    // group is everything it started that did not leave it.
    ::kill(-run_->pid, SIGKILL);
    ::kill(run_->pid, SIGKILL);
    timer_.arm(kReapWait);
    return;
  }
  spdlog::error("{}: still not gone {} after SIGKILL (stuck in the kernel?); going on without it",
                what, format_duration(kReapWait));
  reaper_.untrack(run_->pid);
  CommandOutcome outcome;
  outcome.result = ActionResult::timeout;
  outcome.detail = "no exit within " + format_duration(run_->timeout) + ": killed";
  outcome.took = elapsed_since(run_->started);
  finish_command(std::move(outcome));
}

void CommandRunner::finish_command(CommandOutcome outcome) {
  run_->outcomes.push_back(std::move(outcome));
  run_->pid = -1;
  run_->output = nullptr;
  ++run_->next;
  start_next();
}

void CommandRunner::cancel() {
  timer_.cancel();
  if (!run_) return;
  if (run_->pid > 0) {
    ::kill(-run_->pid, SIGKILL);
    ::kill(run_->pid, SIGKILL);
    // Reaped silently from now on: nobody is left to tell.
    reaper_.untrack(run_->pid);
    spdlog::info("{}: killed (pid {}): the run is cancelled", command_label(run_->next),
                 run_->pid);
  }
  run_.reset();
}

void CommandRunner::close_output(Output* out) {
  // Only the pipe closes here (this may run inside its own callback); the
  // object goes in prune_outputs(), from outside any of them.
  if (!out->fd) return;
  out->lines.finish([out](std::string_view l) { out->log_line(l); });
  out->event->disable();
  out->fd.reset();
  if (const std::uint64_t dropped = out->lines.dropped_bytes(); dropped > 0) {
    dropped_bytes_ += dropped;
    spdlog::info("{}: {} more bytes of output not logged (lines are cut at {} bytes, at most {} "
                 "logged per command)",
                 out->prefix, dropped, kCommandMaxLineBytes, kCommandMaxLoggedBytes);
  }
}

void CommandRunner::prune_outputs() {
  std::erase_if(outputs_, [this](const std::unique_ptr<Output>& out) {
    return !out->fd && !(run_ && run_->output == out.get());
  });
  // Still open and too many: the oldest pipe closes (a process writing to
  // it later gets EPIPE).
  while (outputs_.size() >= kMaxOutputs) {
    close_output(outputs_.front().get());
    outputs_.pop_front();
  }
}

}  // namespace vigil
