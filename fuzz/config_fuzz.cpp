// libFuzzer harness for parse_config, on whole files as `vigil check` reads
// them. Besides "no crash, no sanitizer report, no stack overflow in toml++"
// it checks the promises `run` relies on: an accepted config holds no
// duration, size or socket path past its limit, and log files are not
// shared; errors come in file order; what the depth pre-scan lets through
// is nested no deeper than twice its limit in toml++'s tree.
//
// Input: a file's text. A first byte 0x01 asks for padding: the rest is
// followed by a comment that brings the file just past kMaxConfigBytes (the
// second byte picks by how much, 1..64), so the size limit is met without
// 4 MiB seeds. (Just below it toml++ parses 4 MiB per run, which would
// starve the rest; the unit tests read a file of exactly the limit.)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <toml++/toml.h>
#include <utility>
#include <vector>

#include "config_parse.h"
#include "toml_depth.h"
#include "units.h"

namespace {

using namespace vigil;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "config_fuzz: broken promise: %s\n", what);
    std::abort();
  }
}

// toml++'s tree depth, walked with a stack of our own.
std::size_t tree_depth(const toml::node& root) {
  std::size_t deepest = 0;
  std::vector<std::pair<const toml::node*, std::size_t>> todo{{&root, 0}};
  while (!todo.empty()) {
    auto [n, depth] = todo.back();
    todo.pop_back();
    deepest = std::max(deepest, depth);
    if (const auto* t = n->as_table()) {
      for (auto&& [k, v] : *t) todo.push_back({&v, depth + 1});
    } else if (const auto* a = n->as_array()) {
      for (const auto& v : *a) todo.push_back({&v, depth + 1});
    }
  }
  return deepest;
}

void check_duration(Duration d) {
  check(d.count() >= 0 && d <= kMaxDuration, "every duration within kMaxDuration");
}

void check_accepted(const Config& c) {
  check(c.control_socket.native().size() <= 107, "control socket path fits sun_path");
  check_duration(c.sample_interval);
  std::set<std::string> log_files;
  for (const auto& p : c.programs) {
    for (Duration d : {p.restart_delay, p.restart_delay_max, p.backoff_reset, p.min_uptime,
                       p.start_timeout, p.restart_window, p.stop_timeout})
      check_duration(d);
    if (p.heartbeat) {
      check_duration(p.heartbeat->grace);
      check(p.heartbeat->interval <= std::chrono::hours(24 * 7), "heartbeat interval <= 7 days");
    }
    if (p.probe) {
      check_duration(p.probe->timeout);
      check_duration(p.probe->initial_delay);
      check(p.probe->interval <= std::chrono::hours(24 * 7), "probe interval <= 7 days");
    }
    if (p.memory_limit_bytes) check(*p.memory_limit_bytes <= kMaxSizeBytes, "memory_limit bound");
    check(p.log_max_size_bytes <= kMaxSizeBytes, "log_max_size bound");
    // Every (program, instance) its own log files, named as run names them.
    if (p.log == LogMode::off) continue;
    for (int i = 0; i < p.instances; ++i) {
      const std::string base = p.name + (p.instances > 1 ? "-" + std::to_string(i) : "");
      const std::vector<std::string> files =
          p.log == LogMode::combined ? std::vector<std::string>{base + ".log"}
                                     : std::vector<std::string>{base + ".out.log", base + ".err.log"};
      for (const auto& f : files) check(log_files.insert(f).second, "one writer per log file");
    }
  }
  for (const auto& w : c.watches) {
    check_duration(w.action_timeout);
    if (w.check) check(w.check->interval <= std::chrono::hours(24 * 7), "check interval <= 7 days");
    check(w.heartbeat.interval <= std::chrono::hours(24 * 7), "watch heartbeat <= 7 days");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (size >= 2 && data[0] == 0x01) {
    const std::size_t target = kMaxConfigBytes + 1 + (data[1] & 0x3F);
    text = text.substr(2) + "\n#";
    if (text.size() < target) text.append(target - text.size(), 'x');
  }
  const ConfigParseResult r = parse_config(text, "/fuzz/vigil.toml");

  for (std::size_t i = 1; i < r.errors.size(); ++i) {
    auto key = [](const ConfigError& e) {
      return std::pair(e.line <= 0 ? INT32_MAX : e.line, e.column);
    };
    check(key(r.errors[i - 1]) <= key(r.errors[i]), "errors in file order");
  }
  for (const auto& e : r.errors) check(!e.message.empty(), "every error says something");
  if (text.size() > kMaxConfigBytes) check(!r.ok(), "a file past the size limit is refused");
  if (r.ok()) check_accepted(r.config);

  // What the pre-scan lets through, toml++ builds no deeper than twice the
  // limit (the tables of [[array]] headers are not counted by the scan).
  if (text.size() <= kMaxConfigBytes && !find_too_deep(text, kMaxConfigDepth)) {
    try {
      const toml::table parsed = toml::parse(text);
      check(tree_depth(parsed) <= 2 * kMaxConfigDepth + 1, "tree depth bounded");
    } catch (const toml::parse_error&) {
    }
  }
  return 0;
}
