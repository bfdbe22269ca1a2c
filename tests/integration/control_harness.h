// What the control-plane tests (control_test, reload_test, security_test)
// share: the `vigil` CLI run as a subprocess with stdout and stderr kept
// apart, a long-running CLI (`logs -f`) read with deadlines, the API asked
// directly over the control socket, and a raw HTTP client that sends any
// bytes to either listener. Header-only on top of harness.h; every wait is
// bounded by a deadline, every fd is closed on every path.
#pragma once
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "control_client.h"
#include "fd.h"
#include "harness.h"

extern char** environ;

namespace vigil::it::control {

using Json = nlohmann::json;

// ---------------------------------------------------------------------------
// A CLI run

struct CliRun {
  int exit_code = -1;  // 128+signal when killed; -1 when it did not end in time
  std::string out;
  std::string err;
};

namespace detail {

// The test's environment without VIGIL_SOCKET (which would redirect the
// CLI), plus `extra`.
inline std::vector<std::string> child_env(
    const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    if (kv.starts_with("VIGIL_SOCKET=")) continue;
    env.emplace_back(kv);
  }
  for (const auto& [k, v] : extra) env.push_back(k + "=" + v);
  return env;
}

// `vigil ARGS` in `cwd`; stdout and stderr into the write ends given
// (nonblocking reads are the caller's). Never outlives the test.
inline pid_t spawn_vigil(const fs::path& cwd, const std::vector<std::string>& args,
                         const std::vector<std::pair<std::string, std::string>>& env_extra,
                         int out_fd, int err_fd) {
  std::vector<std::string> argv{vigil_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::vector<std::string> env = child_env(env_extra);
  return start_test_process(argv, cwd, out_fd, err_fd, &env);
}

inline int wait_status_code(int status) {
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

// Appends what `fd` has now to `to`; false at EOF or error.
inline bool read_some(int fd, std::string& to) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      to.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    return false;
  }
}

}  // namespace detail

// Runs `vigil ARGS...` in `cwd` to its end (SIGKILLed at the deadline),
// with `env` added to the environment. stdout is a pipe: never a terminal.
inline CliRun run_cli(const fs::path& cwd, const std::vector<std::string>& args,
                      const std::vector<std::pair<std::string, std::string>>& env = {},
                      Duration timeout = kEventually) {
  Pipe out = make_pipe(O_NONBLOCK);
  Pipe err = make_pipe(O_NONBLOCK);
  const pid_t pid = detail::spawn_vigil(cwd, args, env, out.write.get(), err.write.get());
  out.write.reset();
  err.write.reset();
  CliRun r;
  const auto deadline = SteadyClock::now() + timeout;
  bool out_open = true, err_open = true;
  while ((out_open || err_open) && SteadyClock::now() < deadline) {
    pollfd p[2] = {{out_open ? out.read.get() : -1, POLLIN, 0},
                   {err_open ? err.read.get() : -1, POLLIN, 0}};
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (::poll(p, 2, static_cast<int>(std::max<long>(1, left.count()))) < 0 && errno != EINTR)
      break;
    if (out_open && p[0].revents) out_open = detail::read_some(out.read.get(), r.out);
    if (err_open && p[1].revents) err_open = detail::read_some(err.read.get(), r.err);
  }
  int status = 0;
  if (out_open || err_open) {
    // Deadline: it hangs (or a grandchild holds the pipes). Stop it.
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return r;
  }
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = detail::wait_status_code(status);
  return r;
}

// A CLI that runs until told to stop (`vigil logs -f`): its stdout is read
// with deadlines; the destructor SIGKILLs and reaps it.
class CliProcess {
 public:
  CliProcess(const fs::path& cwd, const std::vector<std::string>& args) {
    Pipe out = make_pipe(O_NONBLOCK);
    Pipe err = make_pipe(O_NONBLOCK);
    pid_ = detail::spawn_vigil(cwd, args, {}, out.write.get(), err.write.get());
    out_ = std::move(out.read);
    err_ = std::move(err.read);
  }
  ~CliProcess() {
    if (pid_ > 0 && !exit_code_) {
      ::kill(pid_, SIGKILL);
      int status;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  CliProcess(const CliProcess&) = delete;
  CliProcess& operator=(const CliProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Everything it printed on stdout so far (and on stderr, in err()).
  const std::string& out() {
    drain();
    return out_text_;
  }
  const std::string& err() {
    drain();
    return err_text_;
  }
  // Reads until pred(stdout so far) holds or the deadline passes.
  bool wait_for(const std::function<bool(const std::string&)>& pred,
                Duration timeout = kEventually) {
    const auto deadline = SteadyClock::now() + timeout;
    for (;;) {
      drain();
      if (pred(out_text_)) return true;
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      if (left.count() <= 0) return false;
      // A pipe at EOF is left out: it would wake poll at once, forever.
      pollfd p[2] = {{out_open_ ? out_.get() : -1, POLLIN, 0},
                     {err_open_ ? err_.get() : -1, POLLIN, 0}};
      if (!out_open_ && !err_open_) return pred(out_text_);
      ::poll(p, 2, static_cast<int>(left.count()));
    }
  }
  bool running() {
    if (exit_code_) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = detail::wait_status_code(status);
      return false;
    }
    return true;
  }
  // Sends `sig` and waits (bounded) for the exit; its code, or nullopt.
  std::optional<int> stop(int sig = SIGTERM, Duration timeout = kEventually) {
    if (running()) ::kill(pid_, sig);
    poll_until([&] { return !running(); }, timeout);
    return exit_code_;
  }

 private:
  void drain() {
    if (out_open_) out_open_ = detail::read_some(out_.get(), out_text_);
    if (err_open_) err_open_ = detail::read_some(err_.get(), err_text_);
  }
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  UniqueFd out_, err_;
  bool out_open_ = true, err_open_ = true;
  std::string out_text_, err_text_;
};

// ---------------------------------------------------------------------------
// The API, asked directly (for waiting and checking; the CLI is what is tested)

// GET /api/v1/programs over the control socket; nullopt when nobody answers.
inline std::optional<Json> api_instances(const fs::path& socket) {
  std::string error;
  auto r = control_request(socket, "GET", "/api/v1/programs", &error, std::chrono::seconds(5));
  if (!r || r->status != 200) return std::nullopt;
  try {
    return Json::parse(r->body);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The entry of program `name`, instance `index`; null when absent.
inline Json find_instance(const Json& all, std::string_view name, int index = 0) {
  for (const auto& i : all)
    if (i["name"] == name && i["index"] == index) return i;
  return nullptr;
}

inline int pid_of(const Json& instance) {
  return instance.is_object() && instance["pid"].is_number() ? instance["pid"].get<int>() : 0;
}

// Every instance as `want` in the API: {program, index} -> state.
using Expected = std::map<std::pair<std::string, int>, std::string>;

// Polls the API until it lists exactly the instances of `want`, each in its
// state; returns the last listing (empty when nobody answered).
inline Json wait_for_states(const fs::path& socket, const Expected& want,
                            Duration timeout = kEventually) {
  Json last = Json::array();
  poll_until(
      [&] {
        auto all = api_instances(socket);
        if (!all) return false;
        last = *all;
        if (all->size() != want.size()) return false;
        for (const auto& i : *all) {
          auto it = want.find({i["name"].get<std::string>(), i["index"].get<int>()});
          if (it == want.end() || i["state"] != it->second) return false;
        }
        return true;
      },
      timeout, 20ms);
  return last;
}

// {program, index} -> pid, from one listing.
inline std::map<std::pair<std::string, int>, int> pids_of(const Json& all) {
  std::map<std::pair<std::string, int>, int> out;
  for (const auto& i : all) out[{i["name"].get<std::string>(), i["index"].get<int>()}] = pid_of(i);
  return out;
}

// ---------------------------------------------------------------------------
// Raw HTTP: any bytes to either listener

inline UniqueFd connect_unix(const fs::path& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) fd.reset();
  return fd;
}

struct RawReply {
  bool connected = false;
  int status = 0;          // of the first response; 0 when none came
  bool closed = false;     // the server closed (or reset) the connection
  bool timed_out = false;  // neither an answer to the end nor a close by the deadline
  std::string text;        // what came back
};

// Sends `request` (as much as the server takes), then half-closes when
// `half_close`, and reads until the server closes or the deadline passes.
// A server that stops reading or resets is an answer too (closed).
inline RawReply exchange(UniqueFd fd, std::string_view request, bool half_close,
                         Duration timeout = 5s) {
  RawReply r;
  if (!fd) return r;
  r.connected = true;
  set_nonblocking(fd.get());
  const auto deadline = SteadyClock::now() + timeout;
  std::string_view rest = request;
  bool shut = false;
  for (;;) {
    if (rest.empty() && half_close && !shut) {
      ::shutdown(fd.get(), SHUT_WR);
      shut = true;
    }
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      break;
    }
    pollfd p{fd.get(), static_cast<short>(rest.empty() ? POLLIN : POLLIN | POLLOUT), 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    if (p.revents & POLLIN || p.revents & (POLLHUP | POLLERR)) {
      char buf[65536];
      ssize_t got = ::recv(fd.get(), buf, sizeof buf, 0);
      if (got > 0) {
        r.text.append(buf, static_cast<std::size_t>(got));
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        r.closed = true;
        break;
      }
    }
    if (!rest.empty() && (p.revents & POLLOUT)) {
      ssize_t sent = ::send(fd.get(), rest.data(), rest.size(), MSG_NOSIGNAL);
      if (sent > 0) {
        rest.remove_prefix(static_cast<std::size_t>(sent));
      } else if (sent < 0 && errno != EAGAIN && errno != EINTR) {
        // EPIPE / ECONNRESET: the server refused the rest. What it said
        // before closing is still worth reading.
        rest = {};
        half_close = false;
      }
    }
  }
  if (r.text.starts_with("HTTP/1.") && r.text.size() >= 12)
    r.status = std::atoi(r.text.c_str() + 9);
  return r;
}

// GET /healthz on a fresh connection answered 200.
inline bool healthz(UniqueFd fd) {
  RawReply r = exchange(
      std::move(fd), "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", false, 10s);
  return r.status == 200 && r.text.find("\"ok\"") != std::string::npos;
}

// A GET on a fresh TCP connection; `text` holds only the body of the reply.
inline RawReply http_get(std::uint16_t port, std::string_view target) {
  RawReply r =
      exchange(connect_loopback(port),
               "GET " + std::string(target) + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
               false, 10s);
  auto head_end = r.text.find("\r\n\r\n");
  r.text = head_end == std::string::npos ? std::string() : r.text.substr(head_end + 4);
  return r;
}

// The port in vigil's "serving ... on http://127.0.0.1:PORT" line.
inline std::optional<std::uint16_t> served_port(const std::string& vigil_output) {
  static const std::regex re(R"(serving [^\n]* on http://127\.0\.0\.1:([0-9]+))");
  std::smatch m;
  if (!std::regex_search(vigil_output, m, re)) return std::nullopt;
  return static_cast<std::uint16_t>(std::stoul(m[1].str()));
}

// A line of the /metrics text that starts with `series` ("name{labels} value").
inline std::optional<std::string> metric_line(const std::string& text, std::string_view series) {
  std::size_t start = 0;
  while (start < text.size()) {
    auto nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + start, nl - start);
    if (line.starts_with(series) && line.size() > series.size() && line[series.size()] == ' ')
      return std::string(line);
    start = nl + 1;
  }
  return std::nullopt;
}

}  // namespace vigil::it::control
