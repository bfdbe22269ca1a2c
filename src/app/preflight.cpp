// `vigil check`'s look at the machine. Each check asks the system the way
// the start will (the same PATH lookup, the same user lookup, the same
// bind), so what it lets through starts, and what it stops would have gone
// fatal at start.
#include "preflight.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>
#include <tuple>
#include <toml++/toml.h>

#include "fd.h"
#include "listen_address.h"
#include "listen_socket.h"
#include "shell_exec.h"
#include "spawn.h"

namespace vigil {
namespace {

namespace fs = std::filesystem;

// Where a value was written: the node at `path` (keys, then array
// indexes), or the nearest table on the way there, or the file's start.
class Positions {
 public:
  Positions(const std::string& text, std::string file) : file_(std::move(file)) {
    try {
      root_ = toml::parse(text, std::string_view(file_));
    } catch (const toml::parse_error&) {
      // The config parsed before preflight runs; keep the file's start.
    }
  }

  ConfigError at(std::initializer_list<std::string_view> keys, std::string message,
                 std::optional<std::size_t> element = std::nullopt) const {
    ConfigError e{file_, 1, 1, std::move(message)};
    const toml::node* node = &root_;
    for (std::string_view key : keys) {
      const toml::table* t = node->as_table();
      const toml::node* next = t ? t->get(key) : nullptr;
      if (!next) break;
      node = next;
      place(*node, e);
    }
    if (element)
      if (const toml::array* a = node->as_array(); a && *element < a->size()) place(*a->get(*element), e);
    return e;
  }

 private:
  static void place(const toml::node& n, ConfigError& e) {
    const auto& begin = n.source().begin;
    if (begin.line == 0) return;  // implicit tables have no position
    e.line = static_cast<int>(begin.line);
    e.column = static_cast<int>(begin.column);
  }

  std::string file_;
  toml::table root_;
};

// The program a string command runs, when the shell would exec it in place
// (one simple command whose first word is plain): else nothing to check
// beyond /bin/sh.
std::optional<std::string> first_word_of_script(const std::string& script) {
  if (exec_in_place(script).rfind("exec ", 0) != 0) return std::nullopt;
  // The first word, past an `exec` already written.
  std::string word;
  std::size_t from = 0;
  do {
    const std::size_t start = script.find_first_not_of(" \t", from);
    if (start == std::string::npos) return std::nullopt;
    const std::size_t end = script.find_first_of(" \t", start);
    word = script.substr(start, end == std::string::npos ? std::string::npos : end - start);
    from = end == std::string::npos ? script.size() : end;
  } while (word == "exec");
  if (word.find_first_of("\"'\\$`*?[~{=") != std::string::npos) return std::nullopt;
  return word;
}

std::optional<std::string> executable_problem(const ProgramConfig& p) {
  if (p.command.empty()) return std::nullopt;
  std::string name = p.command[0];
  if (p.command.size() == 3 && p.command[0] == "/bin/sh" && p.command[1] == "-c") {
    auto word = first_word_of_script(p.command[2]);
    if (!word) return std::nullopt;
    name = *word;
  }
  std::vector<std::string> env;
  for (const auto& [k, v] : p.env) env.push_back(k + "=" + v);
  const std::string exe = fs::path(resolve_executable(name, env, p.cwd)).lexically_normal().string();
  if (exe.find('/') == std::string::npos)
    return "cannot execute \"" + name + "\": not found on PATH";
  struct stat st {};
  if (::stat(exe.c_str(), &st) != 0)
    return "cannot execute \"" + name + "\": " + exe + ": " + std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return "cannot execute \"" + name + "\": " + exe + " is not a regular file";
  if (::access(exe.c_str(), X_OK) != 0) return "cannot execute \"" + name + "\": " + exe + " is not executable";
  return std::nullopt;
}

std::optional<std::string> cwd_problem(const ProgramConfig& p) {
  std::error_code ec;
  if (!fs::exists(p.cwd, ec)) return "cwd \"" + p.cwd.string() + "\" does not exist";
  if (!fs::is_directory(p.cwd, ec)) return "cwd \"" + p.cwd.string() + "\" is not a folder";
  return std::nullopt;
}

// The log folder exists and is writable, or its nearest existing ancestor
// is (vigil creates the rest at start).
std::optional<std::string> log_dir_problem(const fs::path& dir) {
  std::error_code ec;
  fs::path existing = dir;
  while (!fs::exists(existing, ec) && existing.has_parent_path() && existing != existing.parent_path())
    existing = existing.parent_path();
  const std::string what = "log_dir \"" + dir.string() + "\"";
  if (!fs::is_directory(existing, ec))
    return what + " cannot be created: " + existing.string() + " is not a folder";
  if (::access(existing.c_str(), W_OK | X_OK) != 0)
    return what + (existing == dir ? " is not writable: " : " cannot be created in " + existing.string() + ": ") +
           std::strerror(errno);
  return std::nullopt;
}

std::optional<std::string> tcp_in_use(const ListenAddress& address) {
  errno = 0;
  if (listen_tcp(address)) return std::nullopt;
  return address.to_string() + " cannot be bound: " + std::strerror(errno);
}

std::optional<std::string> unix_in_use(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (!fd || path.native().size() >= sizeof sa.sun_path) return std::nullopt;
  std::memcpy(sa.sun_path, path.c_str(), path.native().size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0)
    return "unix:" + path.string() + " is in use (something answers on it)";
  return std::nullopt;
}

}  // namespace

std::vector<PreflightFinding> preflight(const Config& config, const std::string& text) {
  const Positions pos(text, config.file.string());
  std::vector<PreflightFinding> out;
  auto error = [&out](ConfigError e) { out.push_back({std::move(e), true}); };
  auto warning = [&out](ConfigError e) { out.push_back({std::move(e), false}); };

  for (const ProgramConfig& p : config.programs) {
    const std::string_view name = p.name;
    if (auto why = executable_problem(p)) error(pos.at({"programs", name, "command"}, *why, 0));
    if (auto why = cwd_problem(p)) error(pos.at({"programs", name, "cwd"}, *why));
    if (!p.user.empty()) {
      std::string why;
      if (!lookup_user(p.user, &why)) error(pos.at({"programs", name, "user"}, why));
    }
    for (std::size_t i = 0; i < p.listen.size(); ++i) {
      const ListenSocketConfig& l = p.listen[i];
      auto why = l.kind == SocketKind::tcp ? tcp_in_use(l.tcp) : unix_in_use(l.path);
      if (why) warning(pos.at({"programs", name, "listen"}, "listen " + *why, i));
    }
    if (p.sticky)
      if (auto why = tcp_in_use(p.sticky->listen))
        warning(pos.at({"programs", name, "sticky", "listen"}, "sticky listen " + *why));
  }
  const bool logs = std::any_of(config.programs.begin(), config.programs.end(),
                                [](const ProgramConfig& p) { return p.log != LogMode::off; });
  if (logs)
    if (auto why = log_dir_problem(config.log_dir)) error(pos.at({"vigil", "log_dir"}, *why));
  if (config.http) {
    std::string ignored;
    if (auto address = parse_listen_address(config.http->listen, &ignored))
      if (auto why = tcp_in_use(*address)) warning(pos.at({"http", "listen"}, "http listen " + *why));
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.where.line, a.where.column) < std::tie(b.where.line, b.where.column);
  });
  return out;
}

}  // namespace vigil
