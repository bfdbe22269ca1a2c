// Load through real restarts: tests/integration/hammer.py as a child of the
// test (a new connection and a GET each, as fast as it goes), the counts it
// reports, and the fewest instances running at once, replayed from vigil's
// debug log. Shared by the held-socket and the sticky proxy tests.
#pragma once
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "harness.h"

namespace vigil::it {

// tests/integration/hammer.py against 127.0.0.1:port: a new connection and
// a GET each, as fast as it goes, until stop() asks for its counts.
class Hammer {
 public:
  Hammer(const TempDir& dir, std::string name, std::uint16_t port)
      : stop_(dir / (name + ".stop")), out_(dir / (name + ".counts")), err_(dir / (name + ".errors")) {
    const std::string script = (source_dir() / "tests" / "integration" / "hammer.py").string();
    const std::string port_text = std::to_string(port);
    std::vector<std::string> args = {"python3", script, port_text, stop_.string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // (<spawn.h> is shadowed by vigil's own spawn.h on the include path.)
    pid_ = ::fork();
    if (pid_ == 0) {
      const int out = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (out < 0 || err < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) ::_exit(127);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~Hammer() {
    if (pid_ > 0) stop();
  }
  Hammer(const Hammer&) = delete;
  Hammer& operator=(const Hammer&) = delete;

  bool started() const { return pid_ > 0; }
  // "ok=N refused=N failed=N", or what went wrong; ends it in any case.
  std::string stop() {
    std::ofstream(stop_).put('\n');
    int status = 0;
    const bool ended = poll_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; });
    if (!ended) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    pid_ = -1;
    const auto lines = read_lines(out_);
    return lines.empty() ? "no counts (" + read_file(err_) + ")" : lines.back();
  }
  // Why requests failed, one a line.
  std::string errors() const { return read_file(err_); }

 private:
  fs::path stop_, out_, err_;
  pid_t pid_ = -1;
};

// "ok=N refused=N failed=N" -> {N, N, N}
inline std::array<long, 3> counts(const std::string& line) {
  std::smatch m;
  static const std::regex re(R"(^ok=([0-9]+) refused=([0-9]+) failed=([0-9]+)$)");
  if (!std::regex_match(line, m, re)) return {-1, -1, -1};
  return {std::stol(m[1]), std::stol(m[2]), std::stol(m[3])};
}

// The fewest of `program`'s instances running at any moment after all of
// them first were, replayed from vigil's debug log of every state change
// ("program web[2]: running -> stopping").
inline int fewest_running(const std::string& log, const std::string& program, int instances) {
  const std::regex re("program " + program + R"(\[([0-9]+)\]: ([a-z]+) -> ([a-z]+))");
  std::vector<bool> running(static_cast<std::size_t>(instances), false);
  int now = 0, fewest = -1;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator(); ++it) {
    const auto index = static_cast<std::size_t>(std::stoi((*it)[1]));
    if (index >= running.size()) continue;
    const bool was = running[index], is = (*it)[3] == "running";
    running[index] = is;
    now += static_cast<int>(is) - static_cast<int>(was);
    if (now == instances && fewest < 0) fewest = instances;
    if (fewest >= 0) fewest = std::min(fewest, now);
  }
  return fewest;
}

}  // namespace vigil::it
