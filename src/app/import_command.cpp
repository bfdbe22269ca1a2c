#include "import_command.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "import_config.h"

namespace vigil {

namespace {

namespace fs = std::filesystem;

// What node prints for a pm2 ecosystem file: module.exports as JSON. The
// file is code and runs as pm2 would run it. nullopt after saying why.
std::optional<std::string> ecosystem_json(const fs::path& file) {
  static const char* kScript =
      "const m = require(process.argv[1]);"
      "process.stdout.write(JSON.stringify(m && m.default ? m.default : m));";
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "vigil import: pipe: %s\n", std::strerror(errno));
    return std::nullopt;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::fprintf(stderr, "vigil import: fork: %s\n", std::strerror(errno));
    ::close(out[0]);
    ::close(out[1]);
    return std::nullopt;
  }
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    const std::string path = file.string();
    ::execlp("node", "node", "-e", kScript, path.c_str(), static_cast<char*>(nullptr));
    std::fprintf(stderr, "vigil import: cannot run node (needed to read %s): %s\n", path.c_str(),
                 std::strerror(errno));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n > 0) {
      text.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "vigil import: node could not evaluate %s (see above)\n",
                 file.c_str());
    return std::nullopt;
  }
  return text;
}

}  // namespace

int command_import(const CliCommand& cmd) {
  std::error_code ec;
  const fs::path file = fs::absolute(cmd.names.front(), ec).lexically_normal();
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "vigil import: cannot read %s: %s\n", file.c_str(), std::strerror(errno));
    return 1;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  const auto format = detect_import_format(file.filename().string(), text);
  if (!format) {
    std::fprintf(stderr,
                 "vigil import: %s: neither a pm2 ecosystem file (.js, .json) nor a "
                 "supervisord.conf ([program:NAME] sections)\n",
                 file.c_str());
    return 1;
  }
  ImportResult r;
  if (*format == ImportFormat::supervisord) {
    r = import_supervisord(text, file.string(), file.parent_path().string());
  } else {
    if (*format == ImportFormat::pm2_js) {
      auto json = ecosystem_json(file);
      if (!json) return 1;
      text = std::move(*json);
    }
    r = import_pm2(text, file.string());
  }
  if (!r.ok()) {
    std::fprintf(stderr, "vigil import: %s: %s\n", file.c_str(), r.error.c_str());
    return 1;
  }
  for (const auto& n : r.notes)
    std::fprintf(stderr, "vigil import: %s\n", n.to_string().c_str());
  if (cmd.output.empty()) {
    std::fwrite(r.toml.data(), 1, r.toml.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : 1;
  }
  std::ofstream out(cmd.output, std::ios::binary | std::ios::trunc);
  out << r.toml;
  out.close();
  if (!out) {
    std::fprintf(stderr, "vigil import: cannot write %s: %s\n", cmd.output.c_str(),
                 std::strerror(errno));
    return 1;
  }
  std::fprintf(stderr, "vigil import: wrote %s\n", cmd.output.c_str());
  return 0;
}

}  // namespace vigil
