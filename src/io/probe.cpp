// The probe's shell: a non-blocking socket (http, tcp) or a spawned command
// (exec), one timer, and the bytes or exit status handed to core's judges.
// It decides nothing about what a response or an exit means, and never
// calls its caller back from inside its own events: every outcome reaches
// `done` through EventLoop::defer, guarded by a token that dies with the run.
#include "probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>

#include <event2/event.h>
#include <spdlog/spdlog.h>

#include "exit_status.h"
#include "fd.h"
#include "probe_target.h"
#include "real_clock.h"
#include "spawn.h"

extern char** environ;

namespace vigil {

namespace {

// Reads per readiness event: enough to take a burst, few enough that one
// busy peer cannot hold the loop.
constexpr int kReadsPerEvent = 4;
constexpr std::size_t kReadBytes = 16 * 1024;

// "connection refused (127.0.0.1:8080)": strerror's words, as a detail.
std::string connection_error(int error, const ProbeEndpoint& to) {
  std::string words = std::strerror(error);
  if (!words.empty() && words[0] >= 'A' && words[0] <= 'Z') words[0] = static_cast<char>(words[0] - 'A' + 'a');
  return words + " (" + to.host_header + ")";
}

}  // namespace

struct Probe::Run {
  Done done;
  ProbeKind kind = ProbeKind::http;
  Duration timeout{0};
  SteadyTime started;
  // Alive exactly as long as this run: deferred deliveries and the
  // Reaper's callback hold it weakly, so neither acts for a run that was
  // cancelled, delivered or destroyed with its Probe.
  std::shared_ptr<char> token = std::make_shared<char>();
  std::optional<ProbeOutcome> outcome;  // settled, waiting for delivery

  // http, tcp
  ProbeEndpoint endpoint;
  UniqueFd socket;
  std::unique_ptr<IoEvent> writable;
  std::unique_ptr<IoEvent> readable;
  bool connected = false;
  std::string request;
  std::size_t sent = 0;
  std::optional<HttpResponseJudge> judge;

  // exec
  pid_t pid = -1;
  bool exited = false;  // reaped
  UniqueFd output_fd;
  std::unique_ptr<IoEvent> output_ready;
  std::string output;  // the first kMaxProbeOutputBytes, for the detail
  std::uint64_t output_dropped_bytes = 0;
};

Probe::Probe(EventLoop& loop, Reaper& reaper, ProbeConfig config, std::optional<int> port,
             std::filesystem::path cwd, std::vector<std::string> env)
    : loop_(loop),
      reaper_(reaper),
      config_(std::move(config)),
      port_(port),
      cwd_(std::move(cwd)),
      env_(std::move(env)),
      timeout_(loop, [this] { on_timeout(); }) {}

Probe::~Probe() { cancel(); }

bool Probe::in_flight() const { return run_ != nullptr; }

void Probe::update(ProbeConfig config, std::optional<int> port) {
  // The run in flight copied what it needs when it started.
  config_ = std::move(config);
  port_ = port;
}

void Probe::run(Done done) {
  if (run_) return;
  run_ = std::make_unique<Run>();
  run_->done = std::move(done);
  run_->kind = config_.kind;
  run_->timeout = config_.timeout;
  run_->started = RealClock::get().steady();
  timeout_.arm(config_.timeout);
  if (config_.kind == ProbeKind::exec)
    start_exec();
  else
    start_connect();
}

void Probe::cancel() {
  if (!run_) return;
  timeout_.cancel();
  std::unique_ptr<Run> run = std::move(run_);
  release(*run);
  // `run` ends here with its token: a delivery already deferred finds it
  // expired and calls nothing.
}

// ---------------------------------------------------------------------------
// http and tcp

void Probe::start_connect() {
  Run& r = *run_;
  const std::string target = expand_port(config_.target, port_);
  std::string why;
  auto endpoint = r.kind == ProbeKind::http ? parse_probe_url(target, &why)
                                            : parse_probe_address(target, &why);
  if (!endpoint) {
    settle(ProbeOutcome::failed(ProbeFailure::refused, "cannot probe \"" + target + "\": " + why));
    return;
  }
  r.endpoint = std::move(*endpoint);
  if (r.kind == ProbeKind::http) {
    r.judge.emplace(config_.expect_status, config_.expect_body);
    r.request = "GET " + r.endpoint.path + " HTTP/1.1\r\nHost: " + r.endpoint.host_header +
                "\r\nUser-Agent: vigil-probe\r\nConnection: close\r\nAccept: */*\r\n\r\n";
  }

  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  if (r.endpoint.ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(r.endpoint.port);
    ::inet_pton(AF_INET6, r.endpoint.host.c_str(), &a->sin6_addr);
    addr_len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(r.endpoint.port);
    ::inet_pton(AF_INET, r.endpoint.host.c_str(), &a->sin_addr);
    addr_len = sizeof *a;
  }
  r.socket = UniqueFd(::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!r.socket) {
    settle(ProbeOutcome::failed(ProbeFailure::refused,
                                std::string("cannot open a socket: ") + std::strerror(errno)));
    return;
  }
  r.writable = std::make_unique<IoEvent>(loop_, r.socket.get(), EV_WRITE, [this](short) { on_writable(); });
  if (r.kind == ProbeKind::http)
    r.readable = std::make_unique<IoEvent>(loop_, r.socket.get(), EV_READ, [this](short) { on_readable(); });
  int rc;
  do rc = ::connect(r.socket.get(), reinterpret_cast<sockaddr*>(&addr), addr_len);
  while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno != EINPROGRESS) {
    settle(ProbeOutcome::failed(ProbeFailure::refused, connection_error(errno, r.endpoint)));
    return;
  }
  // Connected or not yet: writability says when, and then carries the request.
  r.writable->enable();
}

void Probe::on_writable() {
  Run& r = *run_;
  if (!r.connected) {
    int error = 0;
    socklen_t len = sizeof error;
    if (::getsockopt(r.socket.get(), SOL_SOCKET, SO_ERROR, &error, &len) < 0) error = errno;
    if (error != 0) {
      settle(ProbeOutcome::failed(ProbeFailure::refused, connection_error(error, r.endpoint)));
      return;
    }
    r.connected = true;
    if (r.kind == ProbeKind::tcp) {
      settle(ProbeOutcome::passed("connected to " + r.endpoint.host_header));
      return;
    }
    // The answer may start before the request is all sent (a 400 for it).
    r.readable->enable();
  }
  while (r.sent < r.request.size()) {
    const ssize_t n = ::send(r.socket.get(), r.request.data() + r.sent, r.request.size() - r.sent,
                             MSG_NOSIGNAL);
    if (n >= 0) {
      r.sent += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // the rest when writable again
    settle(ProbeOutcome::failed(ProbeFailure::refused, connection_error(errno, r.endpoint)));
    return;
  }
  r.writable->disable();
}

void Probe::on_readable() {
  Run& r = *run_;
  char buf[kReadBytes];
  for (int i = 0; i < kReadsPerEvent; ++i) {
    const ssize_t n = ::recv(r.socket.get(), buf, sizeof buf, 0);
    if (n > 0) {
      if (const ProbeOutcome* verdict = r.judge->feed(std::string_view(buf, static_cast<std::size_t>(n)))) {
        settle(*verdict);
        return;
      }
      continue;
    }
    if (n == 0) {
      settle(r.judge->finish());
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    settle(ProbeOutcome::failed(ProbeFailure::refused, connection_error(errno, r.endpoint)));
    return;
  }
}

// ---------------------------------------------------------------------------
// exec

void Probe::start_exec() {
  Run& r = *run_;
  if (config_.command.empty()) {
    settle(ProbeOutcome::failed(ProbeFailure::exec, "no command to run"));
    return;
  }
  SpawnSpec spec;
  for (const auto& arg : config_.command) spec.argv.push_back(expand_port(arg, port_));
  if (env_.empty()) {
    for (char** e = environ; e && *e; ++e) spec.env.emplace_back(*e);
  } else {
    spec.env = env_;
  }
  spec.cwd = cwd_;
  try {
    // stdout and stderr share one pipe; only its read end is non-blocking
    // (the command gets an ordinary blocking stdout).
    Pipe out = make_pipe();
    set_nonblocking(out.read.get());
    spec.stdout_fd = out.write.get();
    spec.stderr_fd = out.write.get();
    const SpawnResult started = spawn(spec);
    out.write.reset();  // EOF once the command and its descendants are done with it
    if (started.error) {
      settle(ProbeOutcome::failed(ProbeFailure::exec, started.error->message(spec)));
      return;
    }
    r.pid = started.pid;
    r.output_fd = std::move(out.read);
  } catch (const std::exception& e) {
    settle(ProbeOutcome::failed(ProbeFailure::exec,
                                "cannot start \"" + spec.argv[0] + "\": " + e.what()));
    return;
  }
  // The Reaper outlives any run: its callback holds the run only weakly,
  // and a command killed after its verdict is still reaped, silently.
  reaper_.track(r.pid, [this, token = std::weak_ptr<char>(r.token)](int wait_status) {
    if (token.expired()) return;
    on_exit(wait_status);
  });
  r.output.reserve(kMaxProbeOutputBytes);
  r.output_ready = std::make_unique<IoEvent>(loop_, r.output_fd.get(), EV_READ, [this](short) { on_output(); });
  r.output_ready->enable();
}

void Probe::on_output() {
  Run& r = *run_;
  char buf[kReadBytes];
  for (int i = 0; i < kReadsPerEvent; ++i) {
    const ssize_t n = ::read(r.output_fd.get(), buf, sizeof buf);
    if (n > 0) {
      const std::size_t keep = std::min(static_cast<std::size_t>(n), kMaxProbeOutputBytes - r.output.size());
      r.output.append(buf, keep);
      r.output_dropped_bytes += static_cast<std::size_t>(n) - keep;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    // EOF (or a broken pipe): the output is complete; the exit decides.
    r.output_ready->disable();
    r.output_fd.reset();
    return;
  }
}

void Probe::on_exit(int wait_status) {
  Run& r = *run_;
  r.exited = true;
  if (r.outcome) return;  // the timeout came first; this is only the reaping
  // What the command left behind in its group goes with it.
  ::kill(-r.pid, SIGKILL);
  // What it wrote before exiting is in the pipe already; descendants that
  // still hold the pipe are not waited for.
  for (int i = 0; r.output_fd && i < 64; ++i) {
    const std::size_t before = r.output.size() + r.output_dropped_bytes;
    on_output();
    if (r.output.size() + r.output_dropped_bytes == before) break;
  }
  settle(judge_exec_exit(ExitStatus::from_wait_status(wait_status), r.output));
}

// ---------------------------------------------------------------------------
// timeout, verdict, delivery

void Probe::on_timeout() {
  if (!run_ || run_->outcome) return;
  const Run& r = *run_;
  settle(probe_timed_out(r.kind, r.timeout, r.connected, r.judge ? r.judge->bytes_received() : 0));
}

void Probe::settle(ProbeOutcome outcome) {
  Run& r = *run_;
  if (r.outcome) return;
  outcome.took = std::chrono::duration_cast<std::chrono::microseconds>(RealClock::get().steady() - r.started);
  r.outcome = std::move(outcome);
  timeout_.cancel();
  release(r);
  loop_.defer([this, token = std::weak_ptr<char>(r.token)] {
    if (token.expired()) return;
    deliver();
  });
}

void Probe::deliver() {
  std::unique_ptr<Run> run = std::move(run_);  // no longer in flight: `done` may run again
  Done done = std::move(run->done);
  ProbeOutcome outcome = std::move(*run->outcome);
  if (run->output_dropped_bytes > 0)
    spdlog::debug("{}: dropped {} bytes of command output beyond the {} kept", label_,
                  run->output_dropped_bytes, kMaxProbeOutputBytes);
  // A deferred call, not one of the run's own events: freeing them is safe.
  run.reset();
  if (done) done(outcome);  // may destroy *this: nothing after it
}

void Probe::release(Run& r) {
  if (r.writable) r.writable->disable();
  if (r.readable) r.readable->disable();
  r.socket.reset();
  if (r.output_ready) r.output_ready->disable();
  r.output_fd.reset();
  if (r.pid > 0 && !r.exited) {
    // The whole group (spawn() starts the command in a session of its
    // own), and the command itself should it have left the group. It is
    // still tracked, so the Reaper reaps it; its callback finds the run gone
    // or settled and does nothing else.
    ::kill(-r.pid, SIGKILL);
    ::kill(r.pid, SIGKILL);
  }
}

}  // namespace vigil
