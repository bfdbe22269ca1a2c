// Reads vigil's TOML into a Config and validates it, collecting every error
// with FILE:LINE:COL. Pure: no file, user or signal lookups happen here.
// Each section and each key has one handler in a table below; a section that
// a later version supports is one new handler in place of not_supported.
#include "config_parse.h"

#include "dotenv.h"
#include "listen_address.h"
#include "probe_target.h"
#include "toml_depth.h"

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <tuple>
#include <utility>
#include <vector>
#include <toml++/toml.h>

namespace vigil {

// ---------------------------------------------------------------------------
// Words of the contract.

const char* to_string(RestartMode m) {
  switch (m) {
    case RestartMode::always: return "always";
    case RestartMode::on_failure: return "on-failure";
    case RestartMode::never: return "never";
  }
  return "?";
}

const char* to_string(ReadyMode m) {
  switch (m) {
    case ReadyMode::uptime: return "uptime";
    case ReadyMode::notify: return "notify";
    case ReadyMode::probe: return "probe";
  }
  return "?";
}

const char* to_string(ProbeKind k) {
  switch (k) {
    case ProbeKind::http: return "http";
    case ProbeKind::tcp: return "tcp";
    case ProbeKind::exec: return "exec";
  }
  return "?";
}

const char* to_string(LogMode m) {
  switch (m) {
    case LogMode::split: return "split";
    case LogMode::combined: return "combined";
    case LogMode::off: return "off";
  }
  return "?";
}

const char* to_string(StickyHash h) {
  switch (h) {
    case StickyHash::ip: return "ip";
    case StickyHash::x_forwarded_for: return "x-forwarded-for";
  }
  return "?";
}

std::string ListenSocketConfig::address() const {
  if (kind == SocketKind::unix_stream) return "unix:" + path.native();
  return tcp.to_string();
}

namespace {

struct SignalWord {
  std::string_view name;
  int number;
};

// The signals a config may name as stop_signal.
constexpr SignalWord kStopSignals[] = {
    {"TERM", SIGTERM}, {"INT", SIGINT},   {"HUP", SIGHUP},   {"QUIT", SIGQUIT},
    {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
};

// Every signal vigil may have to name (a child killed by SIGSEGV, ...).
constexpr SignalWord kSignalNames[] = {
    {"HUP", SIGHUP},     {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"ILL", SIGILL},
    {"TRAP", SIGTRAP},   {"ABRT", SIGABRT},     {"BUS", SIGBUS},   {"FPE", SIGFPE},
    {"KILL", SIGKILL},   {"USR1", SIGUSR1},     {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},     {"TERM", SIGTERM}, {"CHLD", SIGCHLD},
    {"CONT", SIGCONT},   {"STOP", SIGSTOP},     {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},   {"URG", SIGURG},       {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},   {"WINCH", SIGWINCH}, {"IO", SIGIO},
    {"SYS", SIGSYS},
};

}  // namespace

std::optional<int> parse_signal(std::string_view name) {
  if (name.starts_with("SIG")) name.remove_prefix(3);
  for (const auto& s : kStopSignals)
    if (s.name == name) return s.number;
  return std::nullopt;
}

std::string signal_name(int sig) {
  for (const auto& s : kSignalNames)
    if (s.number == sig) return std::string(s.name);
  return std::to_string(sig);
}

std::string ConfigError::to_string() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

// ---------------------------------------------------------------------------
// The parser.

namespace {

namespace fs = std::filesystem;

std::string_view type_phrase(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
  }
  return "nothing";
}

// "text" with quotes and backslashes escaped and control characters shown,
// so a message never carries raw bytes from the file to a terminal.
std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Edit distance with adjacent transpositions (optimal string alignment):
// "resart" and "retsart" are both 1 from "restart".
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev2(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        cur[j] = std::min(cur[j], prev2[j - 2] + 1);
    }
    std::swap(prev2, prev);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// What pm2 and supervisord users write for a key vigil spells otherwise.
constexpr std::pair<std::string_view, std::string_view> kFamiliarKeys[] = {
    {"autorestart", "restart"},       {"max_memory_restart", "memory_limit"},
    {"numprocs", "instances"},        {"directory", "cwd"},
    {"environment", "env"},           {"startsecs", "min_uptime"},
    {"startretries", "max_restarts"}, {"stopsignal", "stop_signal"},
    {"stopwaitsecs", "stop_timeout"}, {"kill_timeout", "stop_timeout"},
    {"script", "command"},            {"cmd", "command"},
    {"depends_on", "after"},
};

// " (did you mean "restart"?)" for an unknown key that is another tool's
// name for a known one, or within 2 edits of exactly one closest known key
// (at most a third of its length, so short keys are not matched to anything);
// else empty.
template <class Keys>
std::string did_you_mean(std::string_view unknown, const Keys& known) {
  auto is_known = [&](std::string_view k) {
    return std::any_of(known.begin(), known.end(), [&](const auto& h) { return h.key == k; });
  };
  for (const auto& [familiar, ours] : kFamiliarKeys)
    if (familiar == unknown && is_known(ours)) return " (did you mean " + quote(ours) + "?)";
  const std::size_t limit = std::min<std::size_t>(2, unknown.size() / 3);
  std::string_view best;
  std::size_t best_distance = limit + 1;
  bool tie = false;
  for (const auto& h : known) {
    const std::size_t d = edit_distance(unknown, h.key);
    if (d < best_distance) {
      best = h.key;
      best_distance = d;
      tie = false;
    } else if (d == best_distance) {
      tie = true;
    }
  }
  if (best.empty() || tie) return "";
  return " (did you mean " + quote(best) + "?)";
}

// Joins words as `"a", "b" or "c"`.
std::string one_of(std::initializer_list<std::string_view> words) {
  std::string out;
  std::size_t i = 0;
  for (auto w : words) {
    if (i > 0) out += (i + 1 == words.size()) ? " or " : ", ";
    out += quote(w);
    ++i;
  }
  return out;
}

bool valid_program_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
  });
}

using Keys = std::set<std::string, std::less<>>;

// Where something was written, named as errors name it ("exec[1]").
struct Ref {
  std::string what;
  toml::source_region at;
};

// A probe, or the check of a watch, as it is being read: the config plus
// where things were written, for the checks that need the whole section
// (exactly one kind, http-only keys, {port}), made when the section ends.
struct CheckDraft {
  ProbeConfig config;
  std::string section;  // "[programs.web.probe]", "[watch.legacy]"
  std::string noun;     // "probe", "check": what the messages call it
  toml::source_region at;  // the section's name, for errors about the whole section
  Keys failed_keys;
  std::vector<Ref> kinds;                   // http / tcp / exec (notify_socket in a watch) keys
  std::optional<toml::source_region> target_at;  // the http / tcp value
  std::vector<Ref> port_refs;                    // where "{port}" is written
  std::vector<Ref> http_only;                    // expect_status / expect_body keys
  std::optional<toml::source_region> initial_delay_at;
};

// [programs.X.sticky] as it is being read: its port_base is the program's
// and is reconciled with a program-level one when the program ends.
struct StickyDraft {
  StickyConfig config;
  std::string section;     // "[programs.web.sticky]"
  toml::source_region at;  // the section's name, for errors about the whole section
  Keys failed_keys;
  std::optional<toml::source_region> listen_at;  // the value
  std::optional<int> port_base;
  std::optional<toml::source_region> port_base_at;  // the value
};

// A program as it is being read: the config plus where things were written,
// for the checks that need the whole file (after, delays).
struct ProgramDraft {
  ProgramConfig config;
  std::string section;  // "[programs.web]"
  toml::source_region name_at;
  bool has_command = false;
  Keys failed_keys;  // keys that already have an error
  std::optional<toml::source_region> after_at;
  std::vector<std::pair<std::string, toml::source_region>> after_refs;
  std::optional<toml::source_region> restart_delay_at;
  std::optional<toml::source_region> restart_delay_max_at;
  std::optional<toml::source_region> ready_at;
  std::optional<toml::source_region> start_timeout_at;
  std::optional<toml::source_region> port_base_at;
  std::optional<CheckDraft> probe;
  std::optional<toml::source_region> listen_at;     // the array
  std::vector<toml::source_region> listen_entry_at;  // each entry of config.listen
  std::optional<StickyDraft> sticky;
  // env_file values, files in order (a later file wins); `env` wins over all.
  std::vector<std::pair<std::string, std::string>> env_file_values;
};

// A [watch.NAME] as it is being read. The check keys fill `check`; which
// of them apply is known only once the whole section is read.
struct WatchDraft {
  WatchConfig config;
  CheckDraft check;
  std::string section;  // "[watch.legacy]"
  toml::source_region name_at;
  Keys failed_keys;
  std::vector<Ref> check_keys;  // keys a notify_socket watch rejects, where written
  std::optional<toml::source_region> notify_socket_at;  // the value
  std::optional<toml::source_region> heartbeat_at;      // the key
  std::vector<Ref> pid_refs;   // "{pid}" in on_failure
  std::vector<Ref> port_refs;  // "{port}" in on_failure
};

struct Parser;

template <class Target>
struct KeyHandler {
  std::string_view key;
  void (*handle)(Parser&, Target&, const toml::key&, const toml::node&);
};

struct Parser {
  const std::string& file;
  const ConfigInputs& inputs;
  fs::path base_dir;
  std::vector<ConfigError> errors;
  Config config;
  std::vector<ProgramDraft> drafts;
  std::vector<WatchDraft> watch_drafts;
  std::optional<toml::source_region> control_socket_at;  // the value

  Parser(const std::string& f, const ConfigInputs& in)
      : file(f), inputs(in), base_dir(fs::path(f).parent_path()) {}

  // ${VAR} and $$ in `text`, from vigil's environment; nullopt after an
  // error at `node`.
  std::optional<std::string> expand(std::string_view what, const toml::node& node,
                                    std::string_view text) {
    ExpandResult r = expand_variables(text, inputs.environment);
    if (!r.ok()) {
      error(node.source(), std::string(what) + ": " + r.error);
      return std::nullopt;
    }
    return std::move(r.text);
  }

  void error(const toml::source_region& where, std::string message) {
    errors.push_back(ConfigError{file, static_cast<int>(where.begin.line),
                                 static_cast<int>(where.begin.column), std::move(message)});
  }

  void type_error(std::string_view what, const toml::node& node, std::string_view expected) {
    error(node.source(), std::string(what) + ": expected " + std::string(expected) + ", got " +
                             std::string(type_phrase(node)));
  }

  // Calls the handler for each key of `table`; a key no handler claims is an
  // error. Keys whose handler reported an error go into `failed_keys`.
  template <class Target>
  void dispatch(Target& target, const toml::table& table,
                std::span<const KeyHandler<Target>> handlers, std::string_view where,
                Keys* failed_keys = nullptr) {
    for (auto&& [key, node] : table) {
      auto it = std::find_if(handlers.begin(), handlers.end(),
                             [&, &key = key](const auto& h) { return h.key == key.str(); });
      if (it == handlers.end()) {
        error(key.source(), "unknown key " + quote(key.str()) + " " + std::string(where) +
                                did_you_mean(key.str(), handlers));
        continue;
      }
      std::size_t before = errors.size();
      it->handle(*this, target, key, node);
      if (failed_keys && errors.size() != before) failed_keys->insert(std::string(key.str()));
    }
  }

  // --- typed readers: report the error and return nullopt on a bad value.

  std::optional<std::string> read_string(std::string_view what, const toml::node& node) {
    const auto* s = node.as_string();
    if (!s) {
      type_error(what, node, "a string");
      return std::nullopt;
    }
    const std::string& text = s->get();
    if (text.find('\0') != std::string::npos) {
      error(node.source(), std::string(what) + ": must not contain a NUL character");
      return std::nullopt;
    }
    return text;
  }

  std::optional<bool> read_bool(std::string_view what, const toml::node& node) {
    if (const auto* b = node.as_boolean()) return b->get();
    type_error(what, node, "a boolean");
    return std::nullopt;
  }

  std::optional<std::int64_t> read_integer(std::string_view what, const toml::node& node) {
    if (const auto* i = node.as_integer()) return i->get();
    type_error(what, node, "an integer");
    return std::nullopt;
  }

  std::optional<int> read_int_between(std::string_view what, const toml::node& node,
                                      std::int64_t lo, std::int64_t hi) {
    auto v = read_integer(what, node);
    if (!v) return std::nullopt;
    if (*v < lo || *v > hi) {
      error(node.source(), std::string(what) + ": must be between " + std::to_string(lo) +
                               " and " + std::to_string(hi) + ", got " + std::to_string(*v));
      return std::nullopt;
    }
    return static_cast<int>(*v);
  }

  // A duration of at most `max` (kMaxDuration unless the key needs less).
  std::optional<Duration> read_duration(std::string_view what, const toml::node& node,
                                        Duration max = kMaxDuration) {
    if (!node.is_string()) {
      type_error(what, node, "a duration string such as \"5s\"");
      return std::nullopt;
    }
    auto text = read_string(what, node);
    if (!text) return std::nullopt;
    bool too_large = false;
    auto d = parse_duration(*text, &too_large);
    if (!d && !too_large) {
      error(node.source(), std::string(what) + ": invalid duration " + quote(*text) +
                               " (expected e.g. \"250ms\", \"5s\", \"1m30s\")");
      return std::nullopt;
    }
    if (!d || *d > max) {
      error(node.source(), std::string(what) + ": " + quote(*text) + " is longer than the " +
                               "maximum of " + format_duration(max) + " (" + days(max) + ")");
      return std::nullopt;
    }
    return d;
  }

  static std::string days(Duration d) {
    const auto n = std::chrono::duration_cast<std::chrono::hours>(d).count() / 24;
    return std::to_string(n) + (n == 1 ? " day" : " days");
  }

  // A size of at most kMaxSizeBytes.
  std::optional<std::uint64_t> read_size(std::string_view what, const toml::node& node) {
    if (!node.is_string()) {
      type_error(what, node, "a size string such as \"50MiB\"");
      return std::nullopt;
    }
    auto text = read_string(what, node);
    if (!text) return std::nullopt;
    bool too_large = false;
    auto size = parse_size(*text, &too_large);
    if (!size && !too_large) {
      error(node.source(), std::string(what) + ": invalid size " + quote(*text) +
                               " (expected e.g. \"512KiB\", \"50MiB\", \"512M\", \"1GB\")");
      return std::nullopt;
    }
    if (!size || *size > kMaxSizeBytes) {
      error(node.source(), std::string(what) + ": " + quote(*text) +
                               " is larger than the maximum of " + format_size(kMaxSizeBytes));
      return std::nullopt;
    }
    return size;
  }

  // A path, made absolute against the config file's folder.
  std::optional<fs::path> read_path(std::string_view what, const toml::node& node) {
    auto text = read_string(what, node);
    if (!text) return std::nullopt;
    if (text->empty()) {
      error(node.source(), std::string(what) + ": must not be empty");
      return std::nullopt;
    }
    return resolve(*text);
  }

  // Lexically only (the folder may not exist yet); "a/." and "a/" become "a"
  // so equal paths compare equal when a reload diffs them.
  fs::path resolve(const fs::path& p) const {
    fs::path out = (base_dir / p).lexically_normal();
    if (!out.has_filename() && out.has_relative_path()) out = out.parent_path();
    return out;
  }

  // Reads one of `words` and returns its index.
  std::optional<std::size_t> read_word(std::string_view what, const toml::node& node,
                                       std::initializer_list<std::string_view> words) {
    auto text = read_string(what, node);
    if (!text) return std::nullopt;
    std::size_t i = 0;
    for (auto w : words) {
      if (w == *text) return i;
      ++i;
    }
    error(node.source(),
          std::string(what) + ": expected " + one_of(words) + ", got " + quote(*text));
    return std::nullopt;
  }

  // An argv: an array of non-empty strings, or a string run with /bin/sh -c
  // (as a shell would: the text is one argument to sh).
  std::optional<std::vector<std::string>> read_argv(const std::string& what,
                                                    const toml::node& node) {
    if (node.is_string()) {
      auto text = read_string(what, node);
      if (!text) return std::nullopt;
      if (text->find_first_not_of(" \t\r\n") == std::string::npos) {
        error(node.source(), what + ": must not be empty");
        return std::nullopt;
      }
      return std::vector<std::string>{"/bin/sh", "-c", *text};
    }
    const auto* arr = node.as_array();
    if (!arr) {
      type_error(what, node, "an array of strings or a string");
      return std::nullopt;
    }
    if (arr->empty()) {
      error(node.source(), what + ": must not be empty");
      return std::nullopt;
    }
    std::vector<std::string> argv;
    bool ok = true;
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const auto& elem = (*arr)[i];
      std::string elem_what = what + "[" + std::to_string(i) + "]";
      auto s = read_string(elem_what, elem);
      if (s && s->empty()) {
        error(elem.source(), elem_what + ": must not be empty");
        s.reset();
      }
      if (!s) {
        ok = false;
        continue;
      }
      argv.push_back(std::move(*s));
    }
    if (!ok) return std::nullopt;
    return argv;
  }

  void not_supported(const toml::key& key, std::string section) {
    error(key.source(), section + " is not supported by this version of vigil");
  }

  // --- sections
  void parse_file(const toml::table& root);
  void parse_program(const toml::key& key, const toml::node& node);
  void check_program(ProgramDraft& draft);
  void check_probe(ProgramDraft& draft);
  void merge_sticky_port_base(ProgramDraft& draft);
  void check_sticky(ProgramDraft& draft);
  void parse_watch(const toml::key& key, const toml::node& node);
  void check_watch(WatchDraft& draft);
  void check_watch_sockets();
  void check_listen_sockets();
  void check_control_socket();
  void check_log_files();
  bool one_kind(const std::vector<Ref>& kinds, const toml::source_region& section_at,
                std::string_view section, std::string_view noun,
                std::initializer_list<std::string_view> words, std::string_view example);
  void check_http_only(const CheckDraft& check);
  void check_target(const CheckDraft& check, std::optional<std::pair<int, int>> ports);
  void resolve_after();
  void check_after_cycles();
};

// ---------------------------------------------------------------------------
// [vigil]

constexpr KeyHandler<Config> kVigilKeys[] = {
    {"log_dir",
     [](Parser& p, Config& c, const toml::key& k, const toml::node& n) {
       if (auto v = p.read_path(k.str(), n)) c.log_dir = *v;
     }},
    {"control_socket",
     [](Parser& p, Config& c, const toml::key& k, const toml::node& n) {
       p.control_socket_at = n.source();
       if (auto v = p.read_path(k.str(), n)) c.control_socket = *v;
     }},
    {"log_level",
     [](Parser& p, Config& c, const toml::key& k, const toml::node& n) {
       static constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                                      "error", "critical", "off"};
       if (auto i = p.read_word(k.str(), n, {kLevels[0], kLevels[1], kLevels[2], kLevels[3],
                                             kLevels[4], kLevels[5], kLevels[6]}))
         c.log_level = std::string(kLevels[*i]);
     }},
    {"sample_interval",
     [](Parser& p, Config& c, const toml::key& k, const toml::node& n) {
       auto d = p.read_duration(k.str(), n);
       if (!d) return;
       if (d->count() <= 0) {
         p.error(n.source(), "sample_interval: must be greater than 0s");
         return;
       }
       c.sample_interval = *d;
     }},
};

// ---------------------------------------------------------------------------
// [programs.NAME]

template <Duration ProgramConfig::*Field>
void set_duration(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  if (auto v = p.read_duration(k.str(), n)) d.config.*Field = *v;
}

template <bool ProgramConfig::*Field>
void set_bool(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  if (auto v = p.read_bool(k.str(), n)) d.config.*Field = *v;
}

// ${VAR} is expanded in a program's command: in the text of a string
// command (which /bin/sh then reads: "$HOME" is left to it), in each element
// of an array.
void set_command(Parser& p, ProgramDraft& d, const toml::key&, const toml::node& n) {
  d.has_command = true;  // present, even if wrong: no "missing command" on top
  auto argv = p.read_argv("command", n);
  if (!argv) return;
  bool ok = true;
  if (n.is_string()) {
    auto text = p.expand("command", n, (*argv)[2]);
    if (text) (*argv)[2] = std::move(*text);
    ok = text.has_value();
  } else {
    const auto& arr = *n.as_array();
    for (std::size_t i = 0; i < argv->size(); ++i) {
      const std::string what = "command[" + std::to_string(i) + "]";
      auto elem = p.expand(what, arr[i], (*argv)[i]);
      if (elem && i == 0 && elem->empty()) {
        p.error(arr[i].source(), what + ": empty after expanding variables");
        elem.reset();
      }
      if (elem) (*argv)[i] = std::move(*elem);
      ok = ok && elem.has_value();
    }
  }
  if (ok) d.config.command = std::move(*argv);
}

void set_cwd(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  if (auto v = p.read_path(k.str(), n)) d.config.cwd = *v;
}

void set_env(Parser& p, ProgramDraft& d, const toml::key&, const toml::node& n) {
  const auto* table = n.as_table();
  if (!table) {
    p.type_error("env", n, "a table such as { NODE_ENV = \"production\" }");
    return;
  }
  for (auto&& [key, value] : *table) {
    std::string name(key.str());
    if (name.empty() || name.find('=') != std::string::npos ||
        name.find('\0') != std::string::npos) {
      p.error(key.source(), "env: invalid variable name " + quote(name) +
                                " (must be non-empty, without \"=\")");
      continue;
    }
    auto v = p.read_string("env." + name, value);
    if (v) v = p.expand("env." + name, value, *v);
    if (v) d.config.env[name] = *v;
  }
}

// env_file = ".env" or a list: dotenv files read now (at load and at each
// reload), as systemd's EnvironmentFile=; "-PATH": no error when missing.
void set_env_file(Parser& p, ProgramDraft& d, const toml::key&, const toml::node& n) {
  std::vector<const toml::node*> entries;
  if (n.is_string()) {
    entries.push_back(&n);
  } else if (const auto* arr = n.as_array()) {
    for (const auto& e : *arr) entries.push_back(&e);
  } else {
    p.type_error("env_file", n, "a path or an array of paths such as [\".env\", \"-.env.local\"]");
    return;
  }
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const toml::node& e = *entries[i];
    const std::string what = n.is_string() ? "env_file" : "env_file[" + std::to_string(i) + "]";
    auto text = p.read_string(what, e);
    if (!text) continue;
    std::string_view path_text = *text;
    const bool optional = !path_text.empty() && path_text.front() == '-';
    if (optional) path_text.remove_prefix(1);
    if (path_text.empty()) {
      p.error(e.source(), what + ": must not be empty");
      continue;
    }
    const fs::path path = p.resolve(fs::path(path_text));
    std::string why = "vigil reads no files here";
    bool missing = false;
    std::optional<std::string> content;
    if (p.inputs.read_file) content = p.inputs.read_file(path, &why, &missing);
    if (!content) {
      if (missing && optional) continue;
      if (missing)
        p.error(e.source(), what + ": " + quote(path.string()) + " does not exist (write " +
                                quote("-" + std::string(path_text)) + " to go on without it)");
      else
        p.error(e.source(), what + ": cannot read " + quote(path.string()) + ": " + why);
      continue;
    }
    DotenvResult parsed = parse_dotenv(*content);
    for (const auto& err : parsed.errors)
      p.errors.push_back(ConfigError{path.string(), err.line, err.column,
                                     err.message + " (" + d.section + " env_file)"});
    if (!parsed.ok()) continue;
    for (auto& entry : parsed.entries) d.env_file_values.push_back(std::move(entry));
  }
}

// pm2's spellings too: "max" and 0 are one instance per CPU, -1 one per CPU
// but one (at least 1); the CPU count is the one at load time.
void set_instances(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  const int cpus = std::clamp(p.inputs.cpu_count, 1, 10000);
  if (n.is_string()) {
    auto text = p.read_string(k.str(), n);
    if (!text) return;
    if (*text == "max") {
      d.config.instances = cpus;
      return;
    }
    p.error(n.source(), std::string(k.str()) + ": expected a number or \"max\", got " + quote(*text));
    return;
  }
  auto v = p.read_integer(k.str(), n);
  if (!v) return;
  if (*v == 0) {
    d.config.instances = cpus;
  } else if (*v == -1) {
    d.config.instances = std::max(1, cpus - 1);
  } else if (*v < 1 || *v > 10000) {
    p.error(n.source(), std::string(k.str()) + ": must be between 1 and 10000, or \"max\" or 0 " +
                            "(one per CPU) or -1 (one per CPU but one), got " + std::to_string(*v));
  } else {
    d.config.instances = static_cast<int>(*v);
  }
}

void set_restart(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  constexpr RestartMode kModes[] = {RestartMode::always, RestartMode::on_failure,
                                    RestartMode::never};
  if (auto i = p.read_word(k.str(), n, {"always", "on-failure", "never"}))
    d.config.restart = kModes[*i];
}

void set_exit_codes(Parser& p, ProgramDraft& d, const toml::key&, const toml::node& n) {
  const auto* arr = n.as_array();
  if (!arr) {
    p.type_error("exit_codes", n, "an array of integers");
    return;
  }
  std::vector<int> codes;
  bool ok = true;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    auto code = p.read_int_between("exit_codes[" + std::to_string(i) + "]", (*arr)[i], 0, 255);
    if (!code) {
      ok = false;
      continue;
    }
    codes.push_back(*code);
  }
  if (ok) d.config.exit_codes = std::move(codes);
}

void set_restart_delay(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  d.restart_delay_at = n.source();
  set_duration<&ProgramConfig::restart_delay>(p, d, k, n);
}

void set_restart_delay_max(Parser& p, ProgramDraft& d, const toml::key& k,
                           const toml::node& n) {
  d.restart_delay_max_at = n.source();
  set_duration<&ProgramConfig::restart_delay_max>(p, d, k, n);
}

void set_ready(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  constexpr ReadyMode kModes[] = {ReadyMode::uptime, ReadyMode::notify, ReadyMode::probe};
  d.ready_at = n.source();
  if (auto i = p.read_word(k.str(), n, {"uptime", "notify", "probe"})) d.config.ready = kModes[*i];
}

void set_start_timeout(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  d.start_timeout_at = n.source();
  set_duration<&ProgramConfig::start_timeout>(p, d, k, n);
}

void set_port_base(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  d.port_base_at = n.source();
  if (auto v = p.read_int_between(k.str(), n, 1, 65535)) d.config.port_base = *v;
}

void set_max_restarts(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  auto v = p.read_integer(k.str(), n);
  if (!v) return;
  if (*v < 0 || *v > INT_MAX) {
    p.error(n.source(), "max_restarts: must be between 0 and " + std::to_string(INT_MAX) +
                            ", got " + std::to_string(*v));
    return;
  }
  d.config.max_restarts = static_cast<int>(*v);
}

void set_after(Parser& p, ProgramDraft& d, const toml::key&, const toml::node& n) {
  d.after_at = n.source();
  const auto* arr = n.as_array();
  if (!arr) {
    p.type_error("after", n, "an array of program names");
    return;
  }
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const auto& elem = (*arr)[i];
    if (auto name = p.read_string("after[" + std::to_string(i) + "]", elem))
      d.after_refs.emplace_back(*name, elem.source());
  }
}

void set_user(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  if (auto v = p.read_string(k.str(), n)) d.config.user = *v;
}

void set_stop_signal(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  auto text = p.read_string(k.str(), n);
  if (!text) return;
  auto sig = parse_signal(*text);
  if (!sig) {
    p.error(n.source(), "stop_signal: unknown signal " + quote(*text) + " (expected " +
                            one_of({"TERM", "INT", "HUP", "QUIT", "KILL", "USR1", "USR2"}) +
                            ")");
    return;
  }
  d.config.stop_signal = *sig;
}

void set_memory_limit(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  auto v = p.read_size(k.str(), n);
  if (!v) return;
  if (*v == 0) {
    p.error(n.source(), "memory_limit: must be greater than 0 (leave it out for no limit)");
    return;
  }
  d.config.memory_limit_bytes = *v;
}

void set_log(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  constexpr LogMode kModes[] = {LogMode::split, LogMode::combined, LogMode::off};
  if (auto i = p.read_word(k.str(), n, {"split", "combined", "off"})) d.config.log = kModes[*i];
}

void set_log_max_size(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  auto v = p.read_size(k.str(), n);
  if (!v) return;
  if (*v < 1024) {
    p.error(n.source(), "log_max_size: must be at least 1KiB, got " + format_size(*v));
    return;
  }
  d.config.log_max_size_bytes = *v;
}

void set_log_keep(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  if (auto v = p.read_int_between(k.str(), n, 0, 1000)) d.config.log_keep = *v;
}

// ---------------------------------------------------------------------------
// [programs.NAME] listen: the sockets vigil holds

// The longest path an AF_UNIX address holds: sun_path is 108 bytes with the
// terminating NUL (the constant is Linux's; core does not include sys/un.h).
constexpr std::size_t kMaxSocketPathBytes = 107;

// More would be a mistake rather than a need (systemd units hold a few);
// each one is an fd in every child.
constexpr std::size_t kMaxListenSockets = 64;

// The variables vigil sets from `listen`; `env` may not set them too.
constexpr std::string_view kListenVariables[] = {"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"};

// A LISTEN_FDNAMES entry: systemd allows printable ASCII without ':' (its
// separator); vigil asks for the characters of a program name.
constexpr std::size_t kMaxSocketNameBytes = 255;

// One entry: [NAME=]ADDRESS, ADDRESS being HOST:PORT or unix:PATH.
std::optional<ListenSocketConfig> read_listen_entry(Parser& p, const std::string& what,
                                                    const std::string& program,
                                                    const toml::node& n) {
  auto text = p.read_string(what, n);
  if (!text) return std::nullopt;
  ListenSocketConfig socket;
  std::string_view rest = *text;
  // "NAME=" only where what precedes '=' could be a name: an address has
  // ':' or '[' before any '=' it may hold (a unix path).
  const auto eq = rest.find('=');
  if (eq != std::string_view::npos && rest.substr(0, eq).find_first_of(":[/") == std::string_view::npos) {
    const std::string_view name = rest.substr(0, eq);
    if (!valid_program_name(name) || name.size() > kMaxSocketNameBytes) {
      p.error(n.source(), what + ": invalid socket name " + quote(name) +
                              " (use letters, digits, \"_\", \".\" and \"-\"), got " + quote(*text));
      return std::nullopt;
    }
    socket.name = std::string(name);
    rest.remove_prefix(eq + 1);
  } else {
    // systemd names a socket after its unit unless told otherwise.
    socket.name = program;
  }
  constexpr std::string_view kUnix = "unix:";
  if (rest.starts_with(kUnix)) {
    rest.remove_prefix(kUnix.size());
    if (rest.empty()) {
      p.error(n.source(), what + ": \"unix:\" needs a path, e.g. \"unix:/run/web.sock\"");
      return std::nullopt;
    }
    socket.kind = SocketKind::unix_stream;
    socket.path = p.resolve(std::string(rest));
    if (socket.path.native().size() > kMaxSocketPathBytes) {
      p.error(n.source(), what + ": " + quote(socket.path.native()) + " is " +
                              std::to_string(socket.path.native().size()) +
                              " bytes long; a unix socket path holds at most " +
                              std::to_string(kMaxSocketPathBytes) + " (choose a shorter one)");
      return std::nullopt;
    }
    return socket;
  }
  std::string why;
  auto address = parse_listen_address(rest, &why);
  if (!address) {
    p.error(n.source(), what + ": " + why + " (or unix:PATH), got " + quote(*text));
    return std::nullopt;
  }
  if (address->port == 0) {
    // The kernel would pick one no client knows.
    p.error(n.source(), what + ": port 0 would be any free port, which no client could find; "
                              "give the port clients connect to, got " + quote(*text));
    return std::nullopt;
  }
  socket.tcp = canonical(*address);
  return socket;
}

void set_listen(Parser& p, ProgramDraft& d, const toml::key&, const toml::node& n) {
  d.listen_at = n.source();
  const auto* arr = n.as_array();
  if (!arr) {
    p.type_error("listen", n, "an array of addresses such as [\"0.0.0.0:8080\", \"unix:/run/web.sock\"]");
    return;
  }
  if (arr->size() > kMaxListenSockets) {
    p.error(n.source(), "listen: at most " + std::to_string(kMaxListenSockets) +
                            " sockets per program, got " + std::to_string(arr->size()));
    return;
  }
  std::vector<ListenSocketConfig> sockets;
  std::vector<toml::source_region> at;
  bool ok = true;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const auto& elem = (*arr)[i];
    auto socket = read_listen_entry(p, "listen[" + std::to_string(i) + "]", d.config.name, elem);
    if (!socket) {
      ok = false;
      continue;
    }
    sockets.push_back(std::move(*socket));
    at.push_back(elem.source());
  }
  if (!ok) return;
  d.config.listen = std::move(sockets);
  d.listen_entry_at = std::move(at);
}

// Whether two held sockets would claim the same address: the same unix
// path, or the same TCP port in the same family on the same address or on
// the family's wildcard (IPv6 sockets are IPV6_V6ONLY, so "[::]:80" and
// "0.0.0.0:80" coexist).
bool listen_overlaps(const ListenSocketConfig& a, const ListenSocketConfig& b) {
  if (a.kind != b.kind) return false;
  if (a.kind == SocketKind::unix_stream) return a.path == b.path;
  if (a.tcp.port != b.tcp.port || a.tcp.ipv6 != b.tcp.ipv6) return false;
  auto wildcard = [](const ListenAddress& x) { return x.host == "0.0.0.0" || x.host == "::"; };
  return a.tcp.host == b.tcp.host || wildcard(a.tcp) || wildcard(b.tcp);
}

// ---------------------------------------------------------------------------
// [programs.NAME.probe], and the check keys of [watch.NAME]

constexpr std::string_view kPortPlaceholder = "{port}";
constexpr std::string_view kPidPlaceholder = "{pid}";

// Each place `placeholder` is written in an argv node (a string command or
// an array of strings), named as errors name it.
void find_placeholder(const toml::node& node, const std::string& what,
                      std::string_view placeholder, std::vector<Ref>& out) {
  if (const auto* s = node.as_string()) {
    if (s->get().find(placeholder) != std::string::npos) out.push_back({what, node.source()});
    return;
  }
  const auto* arr = node.as_array();
  if (!arr) return;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const auto* s = (*arr)[i].as_string();
    if (s && s->get().find(placeholder) != std::string::npos)
      out.push_back({what + "[" + std::to_string(i) + "]", (*arr)[i].source()});
  }
}

// http = "URL" and tcp = "HOST:PORT": the text is kept as written ({port}
// included) and validated when the section ends, once port_base is known.
template <ProbeKind Kind>
void check_target(Parser& p, CheckDraft& c, const toml::key& k, const toml::node& n) {
  // Counted even when the value is wrong: "one of http, tcp or exec is
  // required" on top of a type error would say the wrong thing.
  c.kinds.push_back({std::string(k.str()), k.source()});
  auto text = p.read_string(k.str(), n);
  if (!text) return;
  if (text->empty()) {
    p.error(n.source(), std::string(k.str()) + ": must not be empty");
    return;
  }
  c.config.kind = Kind;
  c.config.target = *text;
  c.target_at = n.source();
  if (text->find(kPortPlaceholder) != std::string::npos)
    c.port_refs.push_back({std::string(k.str()), n.source()});
}

void check_exec(Parser& p, CheckDraft& c, const toml::key& k, const toml::node& n) {
  c.kinds.push_back({std::string(k.str()), k.source()});
  auto argv = p.read_argv("exec", n);
  if (!argv) return;
  c.config.kind = ProbeKind::exec;
  c.config.command = std::move(*argv);
  find_placeholder(n, "exec", kPortPlaceholder, c.port_refs);
}

void check_expect_status(Parser& p, CheckDraft& c, const toml::key& k, const toml::node& n) {
  c.http_only.push_back({std::string(k.str()), k.source()});
  if (auto v = p.read_int_between(k.str(), n, 100, 599)) c.config.expect_status = *v;
}

void check_expect_body(Parser& p, CheckDraft& c, const toml::key& k, const toml::node& n) {
  c.http_only.push_back({std::string(k.str()), k.source()});
  auto text = p.read_string(k.str(), n);
  if (!text) return;
  if (text->empty()) {
    p.error(n.source(), "expect_body: must not be empty (leave it out to accept any body)");
    return;
  }
  c.config.expect_body = *text;
}

// A check's or a heartbeat's interval is multiplied by a count of at most
// 1000 (failures, misses: a watch's cool-down); a week keeps the product
// inside a nanosecond time_point, and is still far past any real interval.
constexpr Duration kMaxInterval = std::chrono::hours(24 * 7);

void check_interval(Parser& p, CheckDraft& c, const toml::key& k, const toml::node& n) {
  auto d = p.read_duration(k.str(), n, kMaxInterval);
  if (!d) return;
  // A tighter loop would cost more than it tells: a probe is a connection
  // or a process each time.
  if (*d < std::chrono::milliseconds(100)) {
    p.error(n.source(), "interval: must be at least 100ms, got " + format_duration(*d));
    return;
  }
  c.config.interval = *d;
}

void check_timeout(Parser& p, CheckDraft& c, const toml::key& k, const toml::node& n) {
  auto d = p.read_duration(k.str(), n);
  if (!d) return;
  if (d->count() <= 0) {
    p.error(n.source(), "timeout: must be greater than 0s");
    return;
  }
  c.config.timeout = *d;
}

void check_failures(Parser& p, CheckDraft& c, const toml::key& k, const toml::node& n) {
  if (auto v = p.read_int_between(k.str(), n, 1, 1000)) c.config.failures = *v;
}

void check_initial_delay(Parser& p, CheckDraft& c, const toml::key& k, const toml::node& n) {
  c.initial_delay_at = n.source();
  if (auto d = p.read_duration(k.str(), n)) c.config.initial_delay = *d;
}

constexpr KeyHandler<CheckDraft> kProbeKeys[] = {
    {"http", check_target<ProbeKind::http>},
    {"tcp", check_target<ProbeKind::tcp>},
    {"exec", check_exec},
    {"expect_status", check_expect_status},
    {"expect_body", check_expect_body},
    {"interval", check_interval},
    {"timeout", check_timeout},
    {"failures", check_failures},
    {"initial_delay", check_initial_delay},
};

std::string sub_section(std::string section, std::string_view key) {
  section.insert(section.size() - 1, "." + std::string(key));
  return section;
}

void set_probe(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  const auto* table = n.as_table();
  if (!table) return p.type_error(k.str(), n, "a table such as { tcp = \"127.0.0.1:{port}\" }");
  CheckDraft c;
  c.section = sub_section(d.section, "probe");
  c.noun = "probe";
  c.at = k.source();
  p.dispatch<CheckDraft>(c, *table, kProbeKeys, "in " + c.section, &c.failed_keys);
  d.probe = std::move(c);
}

constexpr KeyHandler<HeartbeatConfig> kHeartbeatKeys[] = {
    {"interval",
     [](Parser& p, HeartbeatConfig& h, const toml::key& k, const toml::node& n) {
       auto d = p.read_duration(k.str(), n, kMaxInterval);
       if (!d) return;
       if (*d < std::chrono::milliseconds(10)) {
         p.error(n.source(), "interval: must be at least 10ms, got " + format_duration(*d));
         return;
       }
       h.interval = *d;
     }},
    {"misses",
     [](Parser& p, HeartbeatConfig& h, const toml::key& k, const toml::node& n) {
       if (auto v = p.read_int_between(k.str(), n, 1, 1000)) h.misses = *v;
     }},
    {"grace",
     [](Parser& p, HeartbeatConfig& h, const toml::key& k, const toml::node& n) {
       if (auto d = p.read_duration(k.str(), n)) h.grace = *d;
     }},
};

// [programs.X.heartbeat] and the heartbeat of a notify_socket watch, as a
// sub-table or an inline table: the same keys, bounds and defaults.
std::optional<HeartbeatConfig> read_heartbeat(Parser& p, const std::string& section,
                                              const toml::key& k, const toml::node& n) {
  const auto* table = n.as_table();
  if (!table) {
    p.type_error(k.str(), n, "a table such as { interval = \"5s\", misses = 3 }");
    return std::nullopt;
  }
  HeartbeatConfig h;
  p.dispatch<HeartbeatConfig>(h, *table, kHeartbeatKeys, "in " + sub_section(section, "heartbeat"));
  return h;
}

void set_heartbeat(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  if (auto h = read_heartbeat(p, d.section, k, n)) d.config.heartbeat = *h;
}

// ---------------------------------------------------------------------------
// [programs.NAME.sticky]: the public port of the sticky proxy

// Bounds what a typo could ask for: each proxied connection holds two fds.
constexpr int kMaxStickyConnections = 1000000;

template <Duration StickyConfig::*Field>
void sticky_positive_duration(Parser& p, StickyDraft& s, const toml::key& k,
                              const toml::node& n) {
  auto d = p.read_duration(k.str(), n);
  if (!d) return;
  if (d->count() <= 0) {
    p.error(n.source(), std::string(k.str()) + ": must be greater than 0s");
    return;
  }
  s.config.*Field = *d;
}

constexpr KeyHandler<StickyDraft> kStickyKeys[] = {
    {"listen",
     [](Parser& p, StickyDraft& s, const toml::key& k, const toml::node& n) {
       s.listen_at = n.source();
       auto text = p.read_string(k.str(), n);
       if (!text) return;
       std::string why;
       auto address = parse_listen_address(*text, &why);
       if (!address) {
         p.error(n.source(), "listen: " + why + ", got " + quote(*text));
         return;
       }
       // Port 0 (any free port) is allowed: tests ask for it and read the
       // bound port back.
       s.config.listen = canonical(*address);
     }},
    {"port_base",
     [](Parser& p, StickyDraft& s, const toml::key& k, const toml::node& n) {
       s.port_base_at = n.source();
       if (auto v = p.read_int_between(k.str(), n, 1, 65535)) s.port_base = *v;
     }},
    {"hash",
     [](Parser& p, StickyDraft& s, const toml::key& k, const toml::node& n) {
       constexpr StickyHash kHashes[] = {StickyHash::ip, StickyHash::x_forwarded_for};
       if (auto i = p.read_word(k.str(), n, {"ip", "x-forwarded-for"}))
         s.config.hash = kHashes[*i];
     }},
    {"max_connections",
     [](Parser& p, StickyDraft& s, const toml::key& k, const toml::node& n) {
       if (auto v = p.read_int_between(k.str(), n, 1, kMaxStickyConnections))
         s.config.max_connections = *v;
     }},
    {"idle_timeout", sticky_positive_duration<&StickyConfig::idle_timeout>},
    {"connect_timeout", sticky_positive_duration<&StickyConfig::connect_timeout>},
};

void set_sticky(Parser& p, ProgramDraft& d, const toml::key& k, const toml::node& n) {
  const auto* table = n.as_table();
  if (!table) {
    p.type_error(k.str(), n, "a table such as { listen = \"0.0.0.0:8080\", port_base = 3131 }");
    return;
  }
  StickyDraft s;
  s.section = sub_section(d.section, "sticky");
  s.at = k.source();
  p.dispatch<StickyDraft>(s, *table, kStickyKeys, "in " + s.section, &s.failed_keys);
  d.sticky = std::move(s);
}

constexpr KeyHandler<ProgramDraft> kProgramKeys[] = {
    {"command", set_command},
    {"cwd", set_cwd},
    {"env", set_env},
    {"env_file", set_env_file},
    {"instances", set_instances},
    {"autostart", set_bool<&ProgramConfig::autostart>},
    {"restart", set_restart},
    {"exit_codes", set_exit_codes},
    {"restart_delay", set_restart_delay},
    {"restart_delay_max", set_restart_delay_max},
    {"backoff_reset", set_duration<&ProgramConfig::backoff_reset>},
    {"min_uptime", set_duration<&ProgramConfig::min_uptime>},
    {"ready", set_ready},
    {"start_timeout", set_start_timeout},
    {"max_restarts", set_max_restarts},
    {"restart_window", set_duration<&ProgramConfig::restart_window>},
    {"essential", set_bool<&ProgramConfig::essential>},
    {"after", set_after},
    {"user", set_user},
    {"stop_signal", set_stop_signal},
    {"stop_timeout", set_duration<&ProgramConfig::stop_timeout>},
    {"memory_limit", set_memory_limit},
    {"log", set_log},
    {"log_max_size", set_log_max_size},
    {"log_keep", set_log_keep},
    {"log_timestamps", set_bool<&ProgramConfig::log_timestamps>},
    {"heartbeat", set_heartbeat},
    {"probe", set_probe},
    {"port_base", set_port_base},
    {"listen", set_listen},
    {"sticky", set_sticky},
};

// "[programs.web]", "[watch.\"api.v2\"]": as the section is written.
std::string section_name(std::string_view table, std::string_view name) {
  if (valid_program_name(name) && name.find('.') == std::string_view::npos)
    return "[" + std::string(table) + "." + std::string(name) + "]";
  return "[" + std::string(table) + "." + quote(name) + "]";
}

void Parser::parse_program(const toml::key& key, const toml::node& node) {
  std::string name(key.str());
  ProgramDraft draft;
  draft.config.name = name;
  draft.config.cwd = resolve(".");
  draft.section = section_name("programs", name);
  draft.name_at = key.source();

  if (!valid_program_name(name)) {
    error(key.source(), "program name " + quote(name) +
                            " is invalid (use letters, digits, \"_\", \".\" and \"-\")");
  }
  const auto* table = node.as_table();
  if (!table) {
    type_error("programs." + name, node, "a table");
    draft.has_command = true;  // the type error says enough
  } else {
    dispatch<ProgramDraft>(draft, *table, kProgramKeys, "in " + draft.section,
                           &draft.failed_keys);
  }
  check_program(draft);
  drafts.push_back(std::move(draft));
}

// Checks that span several keys of one program.
void Parser::check_program(ProgramDraft& d) {
  if (!d.has_command) {
    error(d.name_at, d.section + ": command is required (e.g. command = [\"node\", \"app.js\"])");
  }
  bool delays_ok = !d.failed_keys.contains("restart_delay") &&
                   !d.failed_keys.contains("restart_delay_max");
  if (delays_ok && d.config.restart_delay_max < d.config.restart_delay) {
    if (d.restart_delay_max_at) {
      error(*d.restart_delay_max_at,
            "restart_delay_max: must be at least restart_delay (" +
                format_duration(d.config.restart_delay) + "), got " +
                format_duration(d.config.restart_delay_max));
    } else if (d.restart_delay_at) {
      error(*d.restart_delay_at,
            "restart_delay: must be at most restart_delay_max (" +
                format_duration(d.config.restart_delay_max) + "), got " +
                format_duration(d.config.restart_delay));
    }
  }
  if (!d.env_file_values.empty()) {
    std::map<std::string, std::string> env;
    for (auto& [name, value] : d.env_file_values) env[name] = value;  // a later line wins
    for (auto& [name, value] : d.config.env) env[name] = value;       // `env` wins over files
    d.config.env = std::move(env);
  }
  if (d.sticky) merge_sticky_port_base(d);
  if (d.config.port_base && !d.failed_keys.contains("instances")) {
    const int last = *d.config.port_base + d.config.instances - 1;
    if (last > 65535) {
      error(*d.port_base_at, "port_base: " + std::to_string(*d.config.port_base) + " + " +
                                 std::to_string(d.config.instances) +
                                 " instances goes past port 65535 (the last would get " +
                                 std::to_string(last) + "); use a port_base of at most " +
                                 std::to_string(65536 - d.config.instances));
      d.failed_keys.insert("port_base");
    }
  }
  if (!d.config.listen.empty()) {
    for (auto variable : kListenVariables) {
      if (d.config.env.count(std::string(variable))) {
        error(*d.listen_at, "listen: env sets " + std::string(variable) +
                                ", which vigil sets from listen; remove it from env");
      }
    }
  }
  if (d.sticky) check_sticky(d);
  if (d.probe) check_probe(d);
  if (d.config.ready == ReadyMode::probe && !d.probe && !d.failed_keys.contains("probe")) {
    error(*d.ready_at, "ready = \"probe\" needs a " + sub_section(d.section, "probe") +
                           " section saying what to probe (e.g. tcp = \"127.0.0.1:8080\")");
  }
}

bool written_before(const toml::source_region& a, const toml::source_region& b) {
  return std::tie(a.begin.line, a.begin.column) < std::tie(b.begin.line, b.begin.column);
}

// port_base may be written in the program or in its sticky section (where
// users look for it); it is one value. Two different ones: an error at the
// one written second.
void Parser::merge_sticky_port_base(ProgramDraft& d) {
  StickyDraft& s = *d.sticky;
  if (!s.port_base) return;
  if (!d.config.port_base) {
    // A program-level port_base with an error of its own has said enough.
    if (d.failed_keys.contains("port_base")) return;
    d.config.port_base = s.port_base;
    d.port_base_at = s.port_base_at;
    return;
  }
  if (*d.config.port_base == *s.port_base) return;
  const bool sticky_second = written_before(*d.port_base_at, *s.port_base_at);
  const std::string other = sticky_second ? d.section : s.section;
  const int first = sticky_second ? *d.config.port_base : *s.port_base;
  const int second = sticky_second ? *s.port_base : *d.config.port_base;
  error(sticky_second ? *s.port_base_at : *d.port_base_at,
        "port_base: " + std::to_string(second) + " differs from port_base = " +
            std::to_string(first) + " in " + other + "; it is one value, write it once");
  d.failed_keys.insert("port_base");
}

// The sticky section once the whole program is read: its listen address,
// and the instances' ports it relays to.
void Parser::check_sticky(ProgramDraft& d) {
  StickyDraft& s = *d.sticky;
  bool ok = s.failed_keys.empty();
  if (!s.listen_at) {
    error(s.at, s.section + ": listen is required (e.g. listen = \"0.0.0.0:8080\")");
    ok = false;
  }
  const bool port_base_failed =
      d.failed_keys.contains("port_base") || s.failed_keys.contains("port_base");
  if (!d.config.port_base && !port_base_failed) {
    error(s.at, "sticky needs port_base = N (instance i gets PORT=port_base+i and is "
                "reached at 127.0.0.1:port_base+i)");
    ok = false;
  }
  if (s.listen_at && !s.failed_keys.contains("listen") && d.config.port_base &&
      !port_base_failed && !d.failed_keys.contains("instances")) {
    const int first = *d.config.port_base;
    const int last = first + d.config.instances - 1;
    const int port = s.config.listen.port;
    if (port >= first && port <= last) {
      const std::string ports = first == last ? std::to_string(first)
                                              : std::to_string(first) + "-" + std::to_string(last);
      error(*s.listen_at, "listen: port " + std::to_string(port) + " is instance " +
                              std::to_string(port - first) + "'s port (port_base " +
                              std::to_string(first) + " + " + std::to_string(port - first) +
                              "); the proxy needs a port outside the instances' (" + ports + ")");
      ok = false;
    }
  }
  if (ok) d.config.sticky = s.config;
}

// Exactly one of `words` may be set in a section; `kinds` are those written.
bool Parser::one_kind(const std::vector<Ref>& kinds, const toml::source_region& section_at,
                      std::string_view section, std::string_view noun,
                      std::initializer_list<std::string_view> words, std::string_view example) {
  auto list = [](auto first, auto last) {
    std::string out;
    for (auto it = first; it != last; ++it) {
      if (it != first) out += std::next(it) == last ? " or " : ", ";
      out += *it;
    }
    return out;
  };
  if (kinds.empty()) {
    error(section_at, std::string(section) + ": one of " + list(words.begin(), words.end()) +
                          " is required (e.g. " + std::string(example) + ")");
    return false;
  }
  if (kinds.size() == 1) return true;
  std::vector<Ref> written = kinds;
  std::stable_sort(written.begin(), written.end(), [](const Ref& a, const Ref& b) {
    return std::tie(a.at.begin.line, a.at.begin.column) <
           std::tie(b.at.begin.line, b.at.begin.column);
  });
  std::string names;
  for (std::size_t i = 0; i < written.size(); ++i)
    names += (i == 0 ? "" : i + 1 == written.size() ? " and " : ", ") + written[i].what;
  error(written[1].at, std::string(section) + " sets " + names + ": a " + std::string(noun) +
                           " takes exactly one of " + list(words.begin(), words.end()));
  return false;
}

// expect_status and expect_body judge an HTTP answer; anywhere else they
// would be silently ignored.
void Parser::check_http_only(const CheckDraft& c) {
  const std::string& kind = c.kinds.front().what;
  if (kind == "http") return;
  for (const auto& r : c.http_only) {
    error(r.at, r.what + ": only an http " + c.noun + " has it (this " + c.noun + " is " + kind +
                    ")");
  }
}

// Validates an http or tcp target with {port} standing for the first and
// the last instance's port (a target such as "...:{port}0" may be valid for
// one and not the other). A target with {port} and no port is skipped: the
// missing port has its own error.
void Parser::check_target(const CheckDraft& c, std::optional<std::pair<int, int>> ports) {
  if (!c.target_at) return;
  const std::string& text = c.config.target;
  const bool has_port = text.find(kPortPlaceholder) != std::string::npos;
  if (has_port && !ports) return;
  std::vector<std::optional<int>> samples{std::nullopt};
  if (has_port) samples = {ports->first, ports->second};
  for (auto port : samples) {
    std::string why;
    std::string expanded = expand_port(text, port);
    bool ok = c.config.kind == ProbeKind::http ? parse_probe_url(expanded, &why).has_value()
                                                : parse_probe_address(expanded, &why).has_value();
    if (ok) continue;
    std::string message =
        std::string(to_string(c.config.kind)) + ": " + why + ", got " + quote(text);
    if (port) message += " (with {port} = " + std::to_string(*port) + ")";
    error(*c.target_at, std::move(message));
    return;
  }
}

// The probe once the whole program is read: its kind, {port} against
// port_base, and whether ready = "probe" can ever be reached.
void Parser::check_probe(ProgramDraft& d) {
  CheckDraft& c = *d.probe;
  if (!one_kind(c.kinds, c.at, c.section, "probe", {"http", "tcp", "exec"},
                "tcp = \"127.0.0.1:8080\"")) {
    return;
  }
  check_http_only(c);
  // A port_base with an error of its own has said enough.
  const bool port_base_failed = d.failed_keys.contains("port_base");
  std::optional<std::pair<int, int>> ports;
  if (d.config.port_base && !port_base_failed)
    ports = {*d.config.port_base, *d.config.port_base + d.config.instances - 1};
  if (!ports && !port_base_failed) {
    for (const auto& r : c.port_refs)
      error(r.at, r.what + ": {port} needs port_base = N in " + d.section);
  }
  check_target(c, ports);
  d.config.probe = c.config;

  // The first probe runs initial_delay after the start: a start_timeout no
  // longer than that kills every start before it can be judged ready.
  if (d.config.ready == ReadyMode::probe && !d.failed_keys.contains("start_timeout") &&
      !c.failed_keys.contains("initial_delay") &&
      d.config.start_timeout <= c.config.initial_delay) {
    const std::string delay = format_duration(c.config.initial_delay);
    const std::string timeout = format_duration(d.config.start_timeout);
    if (d.start_timeout_at) {
      error(*d.start_timeout_at,
            "start_timeout: with ready = \"probe\" it must be longer than the probe's "
            "initial_delay (" + delay + "), or no probe runs before it ends; got " + timeout);
    } else if (c.initial_delay_at) {
      error(*c.initial_delay_at,
            "initial_delay: with ready = \"probe\" it must be shorter than start_timeout (" +
                timeout + "), or no probe runs before it ends; got " + delay);
    }
  }
}

void Parser::resolve_after() {
  for (auto& d : drafts) {
    for (const auto& [name, at] : d.after_refs) {
      if (name == d.config.name) {
        error(at, "after: " + quote(name) + " is the program itself");
        continue;
      }
      bool exists = std::any_of(drafts.begin(), drafts.end(),
                                [&, &name = name](const ProgramDraft& o) { return o.config.name == name; });
      if (!exists) {
        error(at, "after: no program named " + quote(name));
        continue;
      }
      auto& after = d.config.after;
      if (std::find(after.begin(), after.end(), name) == after.end()) after.push_back(name);
    }
  }
}

// Reports each cycle of `after` once, starting from the cycle's program that
// comes first in the file, positioned at that program's `after` value.
void Parser::check_after_cycles() {
  const std::size_t n = drafts.size();
  std::vector<std::vector<std::size_t>> edges(n);
  for (std::size_t i = 0; i < n; ++i) {
    for (const auto& name : drafts[i].config.after) {
      for (std::size_t j = 0; j < n; ++j)
        if (drafts[j].config.name == name) edges[i].push_back(j);
    }
  }
  enum class Mark { white, grey, black };
  std::vector<Mark> mark(n, Mark::white);
  std::vector<std::size_t> stack;
  std::set<std::vector<std::size_t>> reported;

  std::function<void(std::size_t)> visit = [&](std::size_t u) {
    mark[u] = Mark::grey;
    stack.push_back(u);
    for (std::size_t v : edges[u]) {
      if (mark[v] == Mark::white) {
        visit(v);
      } else if (mark[v] == Mark::grey) {
        auto from = std::find(stack.begin(), stack.end(), v);
        std::vector<std::size_t> cycle(from, stack.end());
        std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()), cycle.end());
        if (!reported.insert(cycle).second) continue;
        std::string text;
        for (std::size_t i : cycle) text += drafts[i].config.name + " -> ";
        text += drafts[cycle.front()].config.name;
        const auto& first = drafts[cycle.front()];
        error(first.after_at.value_or(first.name_at), "after: cycle " + text);
      }
    }
    stack.pop_back();
    mark[u] = Mark::black;
  };
  for (std::size_t i = 0; i < n; ++i)
    if (mark[i] == Mark::white) visit(i);
}

// ---------------------------------------------------------------------------
// [http]

constexpr KeyHandler<HttpConfig> kHttpKeys[] = {
    {"listen",
     [](Parser& p, HttpConfig& h, const toml::key& k, const toml::node& n) {
       auto text = p.read_string(k.str(), n);
       if (!text) return;
       std::string why;
       if (!parse_listen_address(*text, &why)) {
         p.error(n.source(), "listen: " + why + ", got " + quote(*text));
         return;
       }
       h.listen = *text;
     }},
    {"token_file",
     [](Parser& p, HttpConfig& h, const toml::key& k, const toml::node& n) {
       if (auto v = p.read_path(k.str(), n)) h.token_file = *v;
     }},
};

// ---------------------------------------------------------------------------
// [watch.NAME]

constexpr const char kNoPortInAWatch[] =
    ": {port} has no value in a watch (no port is known); write the port number";

// A check key of a watch: read into the watch's CheckDraft. `CheckOnly`
// keys are the ones a notify_socket watch rejects once its kind is known.
template <void (*Handler)(Parser&, CheckDraft&, const toml::key&, const toml::node&),
          bool CheckOnly>
void in_check(Parser& p, WatchDraft& w, const toml::key& k, const toml::node& n) {
  if (CheckOnly) w.check_keys.push_back({std::string(k.str()), k.source()});
  Handler(p, w.check, k, n);
}

void watch_notify_socket(Parser& p, WatchDraft& w, const toml::key& k, const toml::node& n) {
  w.check.kinds.push_back({std::string(k.str()), k.source()});
  auto path = p.read_path(k.str(), n);
  if (!path) return;
  if (path->native().size() > kMaxSocketPathBytes) {
    p.error(n.source(), "notify_socket: " + quote(path->native()) + " is " +
                            std::to_string(path->native().size()) +
                            " bytes long; a unix socket path holds at most " +
                            std::to_string(kMaxSocketPathBytes) + " (choose a shorter one)");
    return;
  }
  w.config.notify_socket = *path;
  w.notify_socket_at = n.source();
}

void watch_heartbeat(Parser& p, WatchDraft& w, const toml::key& k, const toml::node& n) {
  w.heartbeat_at = k.source();
  if (auto h = read_heartbeat(p, w.section, k, n)) w.config.heartbeat = *h;
}

void watch_on_failure(Parser& p, WatchDraft& w, const toml::key& k, const toml::node& n) {
  const auto* arr = n.as_array();
  if (!arr) {
    return p.type_error(k.str(), n,
                        "an array of commands such as [[\"curl\", \"-fsS\", \"URL\"]] or "
                        "[\"systemctl restart app\"]");
  }
  std::vector<std::vector<std::string>> commands;
  bool ok = true;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const auto& elem = (*arr)[i];
    std::string what = "on_failure[" + std::to_string(i) + "]";
    auto argv = p.read_argv(what, elem);
    if (!argv) {
      ok = false;
      continue;
    }
    commands.push_back(std::move(*argv));
    find_placeholder(elem, what, kPidPlaceholder, w.pid_refs);
    find_placeholder(elem, what, kPortPlaceholder, w.port_refs);
  }
  if (ok) w.config.on_failure = std::move(commands);
}

void watch_action_timeout(Parser& p, WatchDraft& w, const toml::key& k, const toml::node& n) {
  auto d = p.read_duration(k.str(), n);
  if (!d) return;
  if (d->count() <= 0) {
    p.error(n.source(), "action_timeout: must be greater than 0s");
    return;
  }
  w.config.action_timeout = *d;
}

constexpr KeyHandler<WatchDraft> kWatchKeys[] = {
    {"http", in_check<check_target<ProbeKind::http>, false>},
    {"tcp", in_check<check_target<ProbeKind::tcp>, false>},
    {"exec", in_check<check_exec, false>},
    {"notify_socket", watch_notify_socket},
    {"expect_status", in_check<check_expect_status, true>},
    {"expect_body", in_check<check_expect_body, true>},
    {"interval", in_check<check_interval, true>},
    {"timeout", in_check<check_timeout, true>},
    {"failures", in_check<check_failures, true>},
    {"initial_delay", in_check<check_initial_delay, true>},
    {"heartbeat", watch_heartbeat},
    {"on_failure", watch_on_failure},
    {"action_timeout", watch_action_timeout},
};

void Parser::parse_watch(const toml::key& key, const toml::node& node) {
  std::string name(key.str());
  WatchDraft w;
  w.config.name = name;
  w.section = section_name("watch", name);
  w.name_at = key.source();
  w.check.section = w.section;
  w.check.noun = "check";
  w.check.at = key.source();
  // The service is already running when vigil starts: check it at once.
  w.check.config.initial_delay = Duration(0);

  if (!valid_program_name(name)) {
    error(key.source(), "watch name " + quote(name) +
                            " is invalid (use letters, digits, \"_\", \".\" and \"-\")");
  }
  const auto* table = node.as_table();
  if (!table) {
    type_error("watch." + name, node, "a table");
  } else {
    dispatch<WatchDraft>(w, *table, kWatchKeys, "in " + w.section, &w.failed_keys);
    check_watch(w);
  }
  watch_drafts.push_back(std::move(w));
}

// Checks that span several keys of one watch: its kind decides which keys
// apply, and which placeholders have a value.
void Parser::check_watch(WatchDraft& w) {
  for (const auto& r : w.port_refs)
    error(r.at, r.what + kNoPortInAWatch);
  if (!one_kind(w.check.kinds, w.name_at, w.section, "watch",
                {"http", "tcp", "exec", "notify_socket"},
                "http = \"http://127.0.0.1:8000/status\"")) {
    return;
  }
  const std::string& kind = w.check.kinds.front().what;
  if (kind == "notify_socket") {
    for (const auto& r : w.check_keys) {
      error(r.at, r.what + ": not used by a notify_socket watch, which is judged by its "
                           "heartbeat = { interval, misses, grace }");
    }
    return;
  }
  if (w.heartbeat_at) {
    error(*w.heartbeat_at, "heartbeat: only a notify_socket watch has one (this " + kind +
                               " watch fails after `failures` failed checks in a row)");
  }
  for (const auto& r : w.pid_refs)
    error(r.at, r.what + ": {pid} is only known to a notify_socket watch (MAINPID=)");
  check_http_only(w.check);
  for (const auto& r : w.check.port_refs)
    error(r.at, r.what + kNoPortInAWatch);
  check_target(w.check, std::nullopt);
  w.config.check = w.check.config;
}

// Checks across watches, once [vigil] and every section are read.
void Parser::check_watch_sockets() {
  for (std::size_t i = 0; i < watch_drafts.size(); ++i) {
    const auto& w = watch_drafts[i];
    auto program = std::find_if(drafts.begin(), drafts.end(), [&](const ProgramDraft& d) {
      return d.config.name == w.config.name;
    });
    if (program != drafts.end()) {
      error(w.name_at, w.section + ": " + quote(w.config.name) +
                           " already names a program; give the watch another name "
                           "(vigil status NAME must name one thing)");
    }
    if (!w.notify_socket_at) continue;
    const auto& path = w.config.notify_socket;
    if (path == config.control_socket) {
      error(*w.notify_socket_at,
            "notify_socket: " + quote(path.native()) +
                " is vigil's control_socket; give the watch a path of its own");
      continue;
    }
    for (std::size_t j = 0; j < i; ++j) {
      const auto& other = watch_drafts[j];
      if (other.notify_socket_at && other.config.notify_socket == path) {
        error(*w.notify_socket_at, "notify_socket: " + quote(path.native()) +
                                       " is already the socket of " + other.section);
        break;
      }
    }
  }
}

// Each held socket is claimed once in the whole file: by one entry of one
// program or one sticky proxy, and not by vigil's own [http] listen,
// control_socket or a watch's notify_socket. Reported at the later claim.
void Parser::check_listen_sockets() {
  struct Claim {
    ListenSocketConfig socket;
    std::string owner;  // "[programs.web]", "[http] listen", ...
  };
  std::vector<Claim> claims;
  if (config.http) {
    if (auto a = parse_listen_address(config.http->listen, nullptr); a && a->port != 0)
      claims.push_back({ListenSocketConfig{SocketKind::tcp, canonical(*a), {}, {}}, "[http] listen"});
  }
  auto unix_claim = [](const fs::path& path, std::string owner) {
    ListenSocketConfig s;
    s.kind = SocketKind::unix_stream;
    s.path = path;
    return Claim{s, std::move(owner)};
  };
  claims.push_back(unix_claim(config.control_socket, "vigil's control_socket"));
  for (const auto& w : watch_drafts)
    if (w.notify_socket_at) claims.push_back(unix_claim(w.config.notify_socket, w.section + " notify_socket"));
  // Claims `socket` for `owner`, or says whose it already is.
  auto claim = [&](const ListenSocketConfig& socket, const toml::source_region& at,
                   const std::string& owner, const char* rule) {
    auto other = std::find_if(claims.begin(), claims.end(),
                              [&](const Claim& c) { return listen_overlaps(c.socket, socket); });
    if (other == claims.end()) return claims.push_back({socket, owner});
    const std::string mine = socket.address(), theirs = other->socket.address();
    std::string message = "listen: " + quote(mine);
    message += mine == theirs ? " is already claimed by " + other->owner
                              : " overlaps " + quote(theirs) + " of " + other->owner;
    error(at, message + "; " + rule);
  };
  for (const auto& d : drafts) {
    for (std::size_t i = 0; i < d.config.listen.size(); ++i)
      claim(d.config.listen[i], d.listen_entry_at[i], d.section,
            "a socket is held for one program only");
    // The sticky proxy's public port: the same rule; port 0 (tests: any
    // free port) collides with nothing.
    if (d.config.sticky && d.config.sticky->listen.port != 0)
      claim(ListenSocketConfig{SocketKind::tcp, d.config.sticky->listen, {}, {}}, *d.sticky->listen_at,
            d.sticky->section, "the sticky proxy needs an address of its own");
  }
}

// `vigil run` binds the control socket at this absolute path (the config
// file's path is made absolute first); sun_path must hold it.
void Parser::check_control_socket() {
  const std::string& path = config.control_socket.native();
  if (path.size() <= kMaxSocketPathBytes) return;
  std::string message = "control_socket: " + quote(path) + " is " + std::to_string(path.size()) +
                        " bytes long; a unix socket path holds at most " +
                        std::to_string(kMaxSocketPathBytes);
  if (control_socket_at) {
    error(*control_socket_at, message + " (choose a shorter one)");
  } else {
    // The default, next to the config file: nowhere in the file to point at.
    errors.push_back(ConfigError{file, 0, 0,
                                 message + " (set control_socket in [vigil] to a shorter path)"});
  }
}

// Each log file is written by one instance. Instance i of a program with
// several instances writes NAME-i.*, a program with one writes NAME.*; the
// files are BASE.out.log and BASE.err.log (split) or BASE.log (combined).
// So two programs meet on a file only when one of them has one instance:
// "a-0" against instance 0 of "a" (same mode), or combined "a.out" against
// split "a" (a.out.log). Reported at the program written second.
void Parser::check_log_files() {
  std::map<std::string_view, std::size_t> by_name;
  for (std::size_t i = 0; i < drafts.size(); ++i) by_name.emplace(drafts[i].config.name, i);
  struct Writer {
    std::size_t program;
    std::optional<int> instance;  // nullopt: a program of one instance
  };
  // Who writes files named BASE.*.
  auto writers = [&](std::string_view base) {
    std::vector<Writer> out;
    if (auto it = by_name.find(base); it != by_name.end() && drafts[it->second].config.instances == 1)
      out.push_back({it->second, std::nullopt});
    const auto dash = base.rfind('-');
    if (dash == std::string_view::npos) return out;
    const std::string_view digits = base.substr(dash + 1);
    // As std::to_string writes the index: no sign, no leading zero.
    if (digits.empty() || digits.size() > 9 || (digits.size() > 1 && digits[0] == '0') ||
        digits.find_first_not_of("0123456789") != std::string_view::npos)
      return out;
    const int index = std::stoi(std::string(digits));
    if (auto it = by_name.find(base.substr(0, dash)); it != by_name.end()) {
      const int instances = drafts[it->second].config.instances;
      if (instances > 1 && index < instances) out.push_back({it->second, index});
    }
    return out;
  };
  auto report = [&](std::size_t a, const Writer& b, const std::string& file_name) {
    const ProgramDraft& first = drafts[std::min(a, b.program)];
    const ProgramDraft& second = drafts[std::max(a, b.program)];
    auto who = [&](const ProgramDraft& d) {
      std::string s = d.section;
      if (&d == &drafts[b.program] && b.instance) s += " (instance " + std::to_string(*b.instance) + ")";
      return s;
    };
    error(second.name_at, "log: " + who(second) + " and " + who(first) + " would both write " +
                              quote((config.log_dir / file_name).native()) +
                              "; rename one, or set log = \"off\" in one");
  };
  for (std::size_t p = 0; p < drafts.size(); ++p) {
    const ProgramConfig& c = drafts[p].config;
    if (c.log == LogMode::off || c.instances != 1) continue;
    for (const Writer& w : writers(c.name)) {
      if (w.program == p || drafts[w.program].config.log != c.log) continue;
      report(p, w, c.name + (c.log == LogMode::combined ? ".log" : ".out.log"));
    }
    if (c.log != LogMode::combined) continue;
    const std::string_view name = c.name;
    if (!name.ends_with(".out") && !name.ends_with(".err")) continue;
    for (const Writer& w : writers(name.substr(0, name.size() - 4))) {
      if (drafts[w.program].config.log == LogMode::split) report(p, w, c.name + ".log");
    }
  }
}

// ---------------------------------------------------------------------------
// The file.

// toml++ keeps keys sorted by name; the config keeps file order.
std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(
    const toml::table& table) {
  std::vector<std::pair<const toml::key*, const toml::node*>> entries;
  for (auto&& [key, node] : table) entries.emplace_back(&key, &node);
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    const auto& x = a.first->source().begin;
    const auto& y = b.first->source().begin;
    return std::tie(x.line, x.column) < std::tie(y.line, y.column);
  });
  return entries;
}

constexpr KeyHandler<Parser> kSections[] = {
    {"vigil",
     [](Parser& p, Parser&, const toml::key& k, const toml::node& n) {
       const auto* table = n.as_table();
       if (!table) return p.type_error(k.str(), n, "a table");
       p.dispatch<Config>(p.config, *table, kVigilKeys, "in [vigil]");
     }},
    {"programs",
     [](Parser& p, Parser&, const toml::key& k, const toml::node& n) {
       const auto* table = n.as_table();
       if (!table) return p.type_error(k.str(), n, "a table of programs");
       for (const auto& [key, node] : in_file_order(*table)) p.parse_program(*key, *node);
     }},
    {"http",
     [](Parser& p, Parser&, const toml::key& k, const toml::node& n) {
       const auto* table = n.as_table();
       if (!table) return p.type_error(k.str(), n, "a table");
       HttpConfig h;
       p.dispatch<HttpConfig>(h, *table, kHttpKeys, "in [http]");
       p.config.http = h;
     }},
    {"watch",
     [](Parser& p, Parser&, const toml::key& k, const toml::node& n) {
       const auto* table = n.as_table();
       if (!table) return p.type_error(k.str(), n, "a table of watches");
       for (const auto& [key, node] : in_file_order(*table)) p.parse_watch(*key, *node);
     }},
};

void Parser::parse_file(const toml::table& root) {
  config.file = fs::path(file).lexically_normal();
  config.log_dir = resolve("logs");
  config.control_socket = resolve("vigil.sock");
  dispatch<Parser>(*this, root, kSections, "at the top level");
  resolve_after();
  check_after_cycles();
  check_watch_sockets();
  check_listen_sockets();
  check_control_socket();
  check_log_files();
  for (const auto& d : drafts) config.programs.push_back(d.config);
  for (const auto& w : watch_drafts) config.watches.push_back(w.config);
}

// The limits of the text itself, before toml++ reads it.
std::optional<ConfigError> check_text_limits(std::string_view text, const std::string& file) {
  if (text.size() > kMaxConfigBytes) {
    const TextPosition at = position_of(text, kMaxConfigBytes);
    return ConfigError{file, at.line, at.column,
                       "the file is longer than the maximum of " +
                           format_size(kMaxConfigBytes) + " for a config"};
  }
  if (auto at = find_too_deep(text, kMaxConfigDepth)) {
    return ConfigError{file, at->line, at->column,
                       "nested deeper than the maximum of " + std::to_string(kMaxConfigDepth) +
                           " levels (table header keys, dotted keys, arrays and inline "
                           "tables together)"};
  }
  return std::nullopt;
}

}  // namespace

std::string read_config_text(std::istream& in) {
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

ConfigParseResult parse_config(std::string_view text, const std::string& file,
                               const ConfigInputs& inputs) {
  if (auto e = check_text_limits(text, file)) {
    ConfigParseResult result;
    result.config.file = fs::path(file).lexically_normal();
    result.errors.push_back(std::move(*e));
    return result;
  }
  Parser parser(file, inputs);
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(file));
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    ConfigParseResult result;
    result.config.file = fs::path(file).lexically_normal();
    result.errors.push_back(ConfigError{file, static_cast<int>(at.line),
                                        static_cast<int>(at.column),
                                        std::string(e.description())});
    return result;
  }
  parser.parse_file(root);

  ConfigParseResult result;
  result.config = std::move(parser.config);
  result.errors = std::move(parser.errors);
  // Handlers run in key order (toml++ sorts keys) and whole-file checks run
  // last; users read errors top to bottom.
  std::stable_sort(result.errors.begin(), result.errors.end(),
                   [](const ConfigError& a, const ConfigError& b) {
                     auto key = [](const ConfigError& e) {
                       return std::pair(e.line <= 0 ? INT_MAX : e.line, e.column);
                     };
                     return key(a) < key(b);
                   });
  return result;
}

}  // namespace vigil
