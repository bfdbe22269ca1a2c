// The mappings are listed in README.md ("vigil import").
#include "import_config.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "config.h"
#include "units.h"

namespace vigil {

std::string ImportNote::to_string() const {
  return (program.empty() ? "" : program + ": ") + setting + ": " + why;
}

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

namespace {

using nlohmann::json;

// --- TOML text


std::string toml_key(std::string_view k) {
  const bool bare = !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
  });
  return bare ? std::string(k) : toml_string(k);
}

std::string toml_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + toml_string(items[i]);
  return out + "]";
}

// Sets `key` in `list`, keeping the place of its first setting.
void upsert(std::vector<std::pair<std::string, std::string>>& list, const std::string& key,
            std::string value) {
  for (auto& [k, v] : list)
    if (k == key) {
      v = std::move(value);
      return;
    }
  list.emplace_back(key, std::move(value));
}

// One [programs.NAME] as it is built: keys in the order they are set.
struct ProgramOut {
  std::string name;
  std::vector<std::pair<std::string, std::string>> keys;  // key, TOML value text
  std::vector<std::pair<std::string, std::string>> env;

  void set(const std::string& key, std::string value) { upsert(keys, key, std::move(value)); }
  bool has(const std::string& key) const {
    return std::any_of(keys.begin(), keys.end(), [&](const auto& kv) { return kv.first == key; });
  }
  void set_env(const std::string& key, std::string value) { upsert(env, key, std::move(value)); }
};

std::string render(std::string_view header, const std::vector<ProgramOut>& programs) {
  std::string out(header);
  for (const auto& p : programs) {
    out += "\n[programs." + (p.name.find('.') == std::string::npos ? toml_key(p.name)
                                                                  : toml_string(p.name)) +
           "]\n";
    for (const auto& [k, v] : p.keys) out += k + " = " + v + "\n";
    if (!p.env.empty()) {
      out += "env = { ";
      for (std::size_t i = 0; i < p.env.size(); ++i)
        out += (i ? ", " : "") + toml_key(p.env[i].first) + " = " + toml_string(p.env[i].second);
      out += " }\n";
    }
  }
  return out;
}

// A program name vigil accepts: other characters become "-"; unique.
std::string program_name(std::string_view wanted, std::set<std::string>& taken) {
  std::string name;
  for (char c : wanted)
    name += ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.' || c == '-')
                ? c
                : '-';
  if (name.empty()) name = "app";
  std::string unique = name;
  for (int i = 2; taken.count(unique); ++i) unique = name + "-" + std::to_string(i);
  taken.insert(unique);
  return unique;
}

bool valid_env_name(std::string_view n) {
  return !n.empty() && n.find('=') == std::string_view::npos &&
         n.find('\0') == std::string_view::npos;
}

std::string header(std::string_view tool, std::string_view source) {
  return "# vigil.toml, converted by `vigil import` from the " + std::string(tool) + " file " +
         std::string(source) + ".\n# Check it with `vigil check -c FILE`; what did not carry "
         "over was listed when it was converted.\n";
}

// --- pm2

// "$" is literal to pm2; to vigil "${" and "$$" mean something: "$$" keeps it.
std::string escape_dollars(std::string_view s) {
  std::string out;
  for (char c : s) out += c == '$' ? std::string("$$") : std::string(1, c);
  return out;
}

std::string json_scalar_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::optional<std::vector<std::string>> json_words(const json& v) {
  if (v.is_string()) return split_command_line(v.get<std::string>());
  if (v.is_array()) {
    std::vector<std::string> out;
    for (const auto& e : v) {
      if (!e.is_string() && !e.is_number()) return std::nullopt;
      out.push_back(json_scalar_text(e));
    }
    return out;
  }
  return std::nullopt;
}

// pm2 writes times as milliseconds (a number) or as "1s", "2m", "1h".
std::optional<std::string> pm2_duration(const json& v) {
  if (v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0))
    return format_duration(Duration(v.get<std::int64_t>()));
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
        s.size() < 12)
      return format_duration(Duration(std::stoll(s)));
    if (auto d = parse_duration(s)) return format_duration(*d);
  }
  return std::nullopt;
}

// The interpreter pm2 picks for a script by its extension.
std::string pm2_interpreter(std::string_view script) {
  auto ends = [&](std::string_view ext) {
    return script.size() > ext.size() && script.substr(script.size() - ext.size()) == ext;
  };
  if (ends(".js") || ends(".mjs") || ends(".cjs")) return "node";
  if (ends(".py")) return "python3";
  if (ends(".sh")) return "bash";
  if (ends(".rb")) return "ruby";
  if (ends(".php")) return "php";
  if (ends(".pl")) return "perl";
  if (ends(".ts")) return "ts-node";
  return "";
}

void import_pm2_app(const json& app, std::size_t index, std::set<std::string>& taken,
                    std::vector<ProgramOut>& programs, std::vector<ImportNote>& notes) {
  const std::string label = app.contains("name") && app["name"].is_string()
                                ? app["name"].get<std::string>()
                                : "apps[" + std::to_string(index) + "]";
  auto note = [&](std::string setting, std::string why) {
    notes.push_back({label, std::move(setting), std::move(why)});
  };
  if (!app.is_object()) {
    note("apps[" + std::to_string(index) + "]", "not an object; skipped");
    return;
  }
  std::string script;
  if (auto it = app.find("script"); it != app.end() && it->is_string()) script = *it;
  if (script.empty()) {
    note("script", "missing; the app is skipped (vigil needs a command)");
    return;
  }
  ProgramOut p;
  std::string wanted = label;
  if (!app.contains("name")) {
    wanted = script.substr(script.find_last_of('/') == std::string::npos ? 0 : script.find_last_of('/') + 1);
    if (auto dot = wanted.find('.'); dot != std::string::npos && dot > 0) wanted.resize(dot);
  }
  p.name = program_name(wanted, taken);
  if (app.contains("name") && p.name != label)
    note("name", "written as program \"" + p.name + "\" (vigil names use letters, digits, _ . -)");

  // The command: [interpreter, interpreter_args..., script, args...].
  std::vector<std::string> argv;
  std::string interpreter = pm2_interpreter(script);
  if (auto it = app.find("interpreter"); it != app.end() && it->is_string())
    interpreter = *it == "none" ? "" : it->get<std::string>();
  if (!interpreter.empty()) {
    argv.push_back(interpreter);
    for (const char* key : {"interpreter_args", "node_args"}) {
      auto it = app.find(key);
      if (it == app.end()) continue;
      if (auto words = json_words(*it))
        argv.insert(argv.end(), words->begin(), words->end());
      else
        note(key, "not a string or an array of strings; left out of command");
    }
  }
  argv.push_back(script);
  if (auto it = app.find("args"); it != app.end()) {
    if (auto words = json_words(*it))
      argv.insert(argv.end(), words->begin(), words->end());
    else
      note("args", "not a string or an array of strings; left out of command");
  }
  for (auto& a : argv) a = escape_dollars(a);
  p.set("command", toml_array(argv));

  bool cluster = false;
  std::optional<std::string> out_file, error_file;
  for (auto it = app.begin(); it != app.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    if (key == "name" || key == "script" || key == "args" || key == "interpreter" ||
        key == "interpreter_args" || key == "node_args")
      continue;
    if (key == "cwd" && v.is_string()) {
      p.set("cwd", toml_string(v.get<std::string>()));
    } else if (key == "env" && v.is_object()) {
      for (auto e = v.begin(); e != v.end(); ++e) {
        if (!valid_env_name(e.key()) || e.value().is_object() || e.value().is_array() ||
            e.value().is_null()) {
          note("env." + e.key(), "not a variable vigil can set (a name without \"=\", a string "
                                 "or number value); left out");
          continue;
        }
        p.set_env(e.key(), escape_dollars(json_scalar_text(e.value())));
      }
    } else if (key.rfind("env_", 0) == 0 && v.is_object()) {
      note(key, "pm2 applies it with --env " + key.substr(4) +
                    " only; vigil has one env per program: merge what you deploy with into "
                    "env by hand (or use env_file)");
    } else if (key == "instances" && (v.is_number_integer() || v == "max")) {
      p.set("instances", v.is_string() ? toml_string("max") : v.dump());
    } else if (key == "exec_mode" && v.is_string()) {
      if (v == "cluster" || v == "cluster_mode") cluster = true;
      else if (v != "fork" && v != "fork_mode") note(key, "unknown mode " + v.dump() + "; ignored");
    } else if (key == "autorestart" && v.is_boolean()) {
      p.set("restart", toml_string(v.get<bool>() ? "always" : "never"));
    } else if (key == "autostart" && v.is_boolean()) {
      p.set("autostart", v.get<bool>() ? "true" : "false");
    } else if (key == "max_memory_restart" && (v.is_string() || v.is_number_unsigned())) {
      const std::string text = json_scalar_text(v);
      if (parse_size(text)) p.set("memory_limit", toml_string(text));
      else note(key, "size " + v.dump() + " not understood; left out");
    } else if ((key == "kill_timeout" || key == "restart_delay" || key == "min_uptime" ||
                key == "exp_backoff_restart_delay") &&
               pm2_duration(v)) {
      const std::string ours = key == "kill_timeout"   ? "stop_timeout"
                               : key == "min_uptime"   ? "min_uptime"
                                                       : "restart_delay";
      if (key == "exp_backoff_restart_delay") {
        if (p.has("restart_delay")) continue;
        note(key, "became restart_delay: vigil always doubles the delay on each restart, up to "
                  "restart_delay_max");
      }
      p.set(ours, toml_string(*pm2_duration(v)));
    } else if (key == "max_restarts" && v.is_number_unsigned()) {
      p.set("max_restarts", v.dump());
    } else if ((key == "user" || key == "uid") && v.is_string()) {
      p.set("user", toml_string(v.get<std::string>()));
    } else if (key == "port" && (v.is_number_unsigned() || v.is_string())) {
      p.set_env("PORT", json_scalar_text(v));
    } else if ((key == "out_file" || key == "output") && v.is_string()) {
      out_file = v.get<std::string>();
    } else if ((key == "error_file" || key == "error") && v.is_string()) {
      error_file = v.get<std::string>();
    } else if (key == "log_date_format" && v.is_string()) {
      p.set("log_timestamps", "true");
      note(key, "vigil stamps each log line in its own format (RFC 3339); log_timestamps = true");
    } else if (key == "time" && v.is_boolean()) {
      p.set("log_timestamps", v.get<bool>() ? "true" : "false");
    } else if (key == "disable_logs" && v.is_boolean()) {
      if (v.get<bool>()) p.set("log", toml_string("off"));
    } else if (key == "watch" || key == "ignore_watch" || key == "watch_options" ||
               key == "watch_delay") {
      if (v != false) note(key, "vigil does not restart a program when its files change");
    } else if (key == "cron_restart") {
      note(key, "vigil has no timed restarts (a cron job can run `vigil restart " + p.name + "`)");
    } else if (key == "wait_ready" || key == "listen_timeout") {
      note(key, "pm2's ready message goes over its IPC channel; vigil's is sd_notify READY=1 "
                "(ready = \"notify\", start_timeout) or a probe (ready = \"probe\")");
    } else if (key == "merge_logs" || key == "combine_logs" || key == "log_file" ||
               key == "log_type" || key == "pid_file") {
      note(key, "vigil writes each instance's logs to [vigil] log_dir as NAME.out.log and "
                "NAME.err.log (NAME-i.* with several instances); no setting for this");
    } else if (key == "increment_var" || key == "instance_var") {
      note(key, "vigil gives each instance VIGIL_INSTANCE and NODE_APP_INSTANCE (and PORT = "
                "port_base + index when port_base is set)");
    } else if (key == "treekill" || key == "kill_retry_time") {
      if (v != true) note(key, "vigil signals the program's whole process group");
    } else {
      note(key, "vigil has no equivalent; left out");
    }
  }
  if (out_file || error_file) {
    if (out_file && error_file && *out_file == "/dev/null" && *error_file == "/dev/null") {
      p.set("log", toml_string("off"));
    } else {
      if (out_file && error_file && *out_file == *error_file) p.set("log", toml_string("combined"));
      note(out_file ? "out_file" : "error_file",
           "vigil writes logs to [vigil] log_dir as NAME.out.log and NAME.err.log (log = "
           "\"combined\": one NAME.log), not to paths of their own");
    }
  }
  if (cluster)
    note("exec_mode", "\"cluster\" shares one port among the instances through node's cluster "
                      "module; under vigil each instance is a process of its own: hand them one "
                      "socket with listen = [\"0.0.0.0:PORT\"], or give each its own port with "
                      "port_base (and [programs." + p.name + ".sticky] for one public port)");
  programs.push_back(std::move(p));
}

// --- supervisord

struct IniSection {
  std::string name;
  std::vector<std::pair<std::string, std::string>> values;  // lower-case keys, in order
};

// Python's RawConfigParser as supervisord configures it: "key = value" or
// "key: value", comments on lines starting with ";" or "#" and after " ;",
// indented lines continue the value before.
std::vector<IniSection> parse_ini(std::string_view text) {
  std::vector<IniSection> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(pos, end - pos));
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const bool indented = !line.empty() && (line[0] == ' ' || line[0] == '\t');
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos) continue;
    if (line[first] == ';' || line[first] == '#') continue;
    // Inline comments: ";" or "#" after a blank.
    for (std::size_t i = first + 1; i < line.size(); ++i)
      if ((line[i] == ';' || line[i] == '#') && (line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line.resize(i);
        break;
      }
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (indented && !out.empty() && !out.back().values.empty()) {
      auto& v = out.back().values.back().second;
      v += (v.empty() ? "" : "\n") + line.substr(first);
      continue;
    }
    if (line[first] == '[') {
      const auto close = line.find(']', first);
      out.push_back({line.substr(first + 1, (close == std::string::npos ? line.size() : close) - first - 1), {}});
      continue;
    }
    const auto sep = line.find_first_of("=:", first);
    if (sep == std::string::npos || out.empty()) continue;
    std::string key = line.substr(first, sep - first);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string value = line.substr(sep + 1);
    const auto v0 = value.find_first_not_of(" \t");
    value = v0 == std::string::npos ? "" : value.substr(v0);
    out.back().values.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

// supervisord's %(name)s expansions, where vigil can express them.
struct Expansion {
  std::string text;
  std::vector<std::string> problems;  // what could not be expanded, for a note
  bool instance = false;              // uses the instance number
};

enum class ExpandFor { command, env, plain };

Expansion expand_percent(std::string_view text, const std::string& program, int numprocs,
                         std::string_view here, ExpandFor where) {
  Expansion out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '%') {
      out.text += text[i++];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '%') {
      out.text += '%';
      i += 2;
      continue;
    }
    const auto close = text.find(')', i);
    if (i + 1 >= text.size() || text[i + 1] != '(' || close == std::string_view::npos) {
      out.text += text[i++];
      continue;
    }
    const std::string name(text.substr(i + 2, close - i - 2));
    std::size_t conv = close + 1;
    while (conv < text.size() && std::string_view("0123456789-+ #.").find(text[conv]) != std::string_view::npos) ++conv;
    if (conv >= text.size()) {
      out.text += text.substr(i);
      break;
    }
    const std::string spec(text.substr(close + 1, conv - close - 1));
    const std::string whole(text.substr(i, conv + 1 - i));
    i = conv + 1;
    if (name == "program_name" || name == "group_name") {
      out.text += program;
    } else if (name == "here") {
      out.text += here;
    } else if (name == "numprocs") {
      out.text += std::to_string(numprocs);
    } else if (name == "process_num") {
      if (numprocs == 1) {
        char buf[32];
        std::snprintf(buf, sizeof buf, ("%" + spec + "d").c_str(), 0);
        out.text += buf;
      } else if (where == ExpandFor::command) {
        out.text += "$VIGIL_INSTANCE";
        out.instance = true;
        if (!spec.empty()) out.problems.push_back(whole + " lost its padding (" + spec + ")");
      } else {
        out.text += whole;
        out.problems.push_back(whole + " (one value per instance) cannot be written here");
      }
    } else if (name.rfind("ENV_", 0) == 0 && where != ExpandFor::plain) {
      out.text += "${" + name.substr(4) + "}";
    } else {
      out.text += whole;
      out.problems.push_back(whole + " cannot be expanded by vigil");
    }
  }
  return out;
}

// environment=A="1",B='2',C=3: pairs split at commas outside quotes.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_environment(
    std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string key, value;
  bool in_value = false;
  char quote = 0;
  auto flush = [&]() -> bool {
    auto trim = [](std::string s) {
      const auto a = s.find_first_not_of(" \t\n");
      const auto b = s.find_last_not_of(" \t\n");
      return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
    };
    key = trim(key);
    if (key.empty() && !in_value) return true;
    if (key.empty() || !in_value) return false;
    out.emplace_back(key, value);
    key.clear();
    value.clear();
    in_value = false;
    return true;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote) {
      if (c == quote) quote = 0;
      else if (c == '\\' && quote == '"' && i + 1 < text.size()) value += text[++i];
      else value += c;
    } else if (c == ',') {
      if (!flush()) return std::nullopt;
    } else if (!in_value) {
      if (c == '=') in_value = true;
      else key += c;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c != ' ' && c != '\t' && c != '\n') {
      value += c;
    }
  }
  if (quote || !flush()) return std::nullopt;
  return out;
}

bool ini_true(std::string_view v) {
  std::string s(v);
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s == "true" || s == "yes" || s == "on" || s == "1";
}

bool ini_false(std::string_view v) {
  std::string s(v);
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s == "false" || s == "no" || s == "off" || s == "0";
}

std::optional<std::int64_t> ini_int(std::string_view v) {
  if (v.empty() || v.size() > 12) return std::nullopt;
  std::int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

std::string seconds(std::int64_t s) { return toml_string(format_duration(std::chrono::seconds(s))); }

void import_supervisord_program(const IniSection& section, std::string_view here,
                                std::set<std::string>& taken, std::vector<ProgramOut>& programs,
                                std::vector<ImportNote>& notes) {
  const std::string label = section.name.substr(section.name.find(':') + 1);
  auto note = [&](std::string setting, std::string why) {
    notes.push_back({label, std::move(setting), std::move(why)});
  };
  std::map<std::string, std::string> values(section.values.begin(), section.values.end());
  for (const auto& [k, v] : section.values) values[k] = v;  // the last one, as Python's parser
  auto get = [&](const char* key) -> std::optional<std::string> {
    auto it = values.find(key);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
  if (!get("command")) {
    note("command", "missing; the program is skipped");
    return;
  }
  ProgramOut p;
  p.name = program_name(label, taken);
  if (p.name != label)
    note("[" + section.name + "]", "written as program \"" + p.name +
                                       "\" (vigil names use letters, digits, _ . -)");
  int numprocs = 1;
  if (auto v = get("numprocs")) {
    auto n = ini_int(*v);
    if (n && *n >= 1 && *n <= 10000) numprocs = static_cast<int>(*n);
    else note("numprocs", "\"" + *v + "\" is not a number from 1 to 10000; left out");
  }
  auto expand = [&](const std::string& key, const std::string& text, ExpandFor where) {
    Expansion e = expand_percent(text, label, numprocs, here, where);
    for (const auto& problem : e.problems) note(key, problem);
    return e;
  };

  {
    Expansion e = expand(std::string("command"), *get("command"), ExpandFor::command);
    if (e.instance) {
      // Only a shell can put the instance number into the command line.
      p.set("command", toml_string(e.text));
      note("command", "uses %(process_num): written as a /bin/sh command with $VIGIL_INSTANCE "
                      "(0-based, as process_num from numprocs_start = 0)");
    } else if (auto argv = split_command_line(e.text); argv && !argv->empty()) {
      // "$" is literal to supervisord; "$$" keeps it literal to vigil too.
      for (auto& a : *argv) {
        std::string escaped;
        for (std::size_t i = 0; i < a.size(); ++i) {
          // ${NAME} from %(ENV_NAME)s stays an expansion.
          if (a[i] == '$' && !(i + 1 < a.size() && a[i + 1] == '{')) escaped += "$$";
          else escaped += a[i];
        }
        a = std::move(escaped);
      }
      p.set("command", toml_array(*argv));
    } else {
      p.set("command", toml_string(e.text));
      note("command", "its quotes do not close; written as a /bin/sh command, check it");
    }
  }
  if (numprocs != 1) p.set("instances", std::to_string(numprocs));

  std::optional<std::string> stdout_log, stderr_log, stdout_max, stderr_max, stdout_keep,
      stderr_keep;
  bool redirect = false;
  for (std::size_t at = 0; at < section.values.size(); ++at) {
    // Named references, not a structured binding: clang before 16 cannot
    // capture a binding in the lambdas below.
    const std::string& key = section.values[at].first;
    const std::string& raw = section.values[at].second;
    if (key == "command" || key == "numprocs") continue;
    if (values[key] != raw ||
        std::any_of(section.values.begin() + static_cast<std::ptrdiff_t>(at) + 1,
                    section.values.end(), [&](const auto& kv) { return kv.first == key; }))
      continue;  // a later line sets it again
    const std::string& v = raw;
    auto bad = [&] { note(key, "\"" + v + "\" not understood; left out"); };
    if (key == "process_name") {
      if (v != "%(program_name)s" && v != "%(program_name)s_%(process_num)02d" &&
          v != "%(program_name)s_%(process_num)d")
        note(key, "vigil names instances NAME-0, NAME-1, ... in status and logs");
    } else if (key == "numprocs_start") {
      if (v != "0") note(key, "vigil numbers instances from 0 (VIGIL_INSTANCE)");
    } else if (key == "directory") {
      Expansion e = expand(key, v, ExpandFor::plain);
      p.set("cwd", toml_string(e.text));
    } else if (key == "environment") {
      Expansion e = expand(key, v, ExpandFor::env);
      auto pairs = parse_environment(e.text);
      if (!pairs) {
        bad();
        continue;
      }
      for (auto& [k, val] : *pairs) {
        std::string escaped;
        for (std::size_t i = 0; i < val.size(); ++i)
          escaped += (val[i] == '$' && !(i + 1 < val.size() && val[i + 1] == '{')) ? "$$" : std::string(1, val[i]);
        p.set_env(k, escaped);
      }
    } else if (key == "autostart") {
      if (ini_true(v)) p.set("autostart", "true");
      else if (ini_false(v)) p.set("autostart", "false");
      else bad();
    } else if (key == "autorestart") {
      if (v == "unexpected") p.set("restart", toml_string("on-failure"));
      else if (ini_true(v)) p.set("restart", toml_string("always"));
      else if (ini_false(v)) p.set("restart", toml_string("never"));
      else bad();
    } else if (key == "exitcodes") {
      std::vector<std::string> codes;
      bool ok = true;
      std::size_t start = 0;
      while (start <= v.size()) {
        std::size_t comma = v.find(',', start);
        if (comma == std::string::npos) comma = v.size();
        std::string word = v.substr(start, comma - start);
        word.erase(0, word.find_first_not_of(" \t"));
        word.erase(word.find_last_not_of(" \t") + 1);
        auto n = ini_int(word);
        if (!n || *n > 255) ok = false;
        else codes.push_back(std::to_string(*n));
        start = comma + 1;
      }
      if (!ok || codes.empty()) {
        bad();
        continue;
      }
      std::string arr = "[";
      for (std::size_t i = 0; i < codes.size(); ++i) arr += (i ? ", " : "") + codes[i];
      p.set("exit_codes", arr + "]");
    } else if (key == "startsecs" || key == "stopwaitsecs") {
      auto n = ini_int(v);
      if (!n) {
        bad();
        continue;
      }
      p.set(key == "startsecs" ? "min_uptime" : "stop_timeout", seconds(*n));
    } else if (key == "startretries") {
      auto n = ini_int(v);
      if (!n) bad();
      else p.set("max_restarts", std::to_string(*n));
    } else if (key == "stopsignal") {
      if (parse_signal(v)) p.set("stop_signal", toml_string(signal_name(*parse_signal(v))));
      else note(key, "vigil's stop_signal is one of TERM, INT, HUP, QUIT, KILL, USR1, USR2; left out");
    } else if (key == "stopasgroup" || key == "killasgroup") {
      if (!ini_true(v)) note(key, "vigil always signals the program's whole process group");
    } else if (key == "user") {
      p.set("user", toml_string(v));
    } else if (key == "redirect_stderr") {
      redirect = ini_true(v);
    } else if (key == "stdout_logfile") {
      stdout_log = v;
    } else if (key == "stderr_logfile") {
      stderr_log = v;
    } else if (key == "stdout_logfile_maxbytes") {
      stdout_max = v;
    } else if (key == "stderr_logfile_maxbytes") {
      stderr_max = v;
    } else if (key == "stdout_logfile_backups") {
      stdout_keep = v;
    } else if (key == "stderr_logfile_backups") {
      stderr_keep = v;
    } else if (key == "priority") {
      note(key, "vigil starts programs in file order, or after those named in `after`");
    } else if (key == "umask") {
      note(key, "vigil sets no umask; programs inherit vigil's");
    } else if (key == "serverurl") {
      note(key, "programs reach vigil through its control socket ([vigil] control_socket)");
    } else {
      note(key, "vigil has no equivalent; left out");
    }
  }
  // Logs: vigil writes NAME.out.log and NAME.err.log (or one NAME.log) in log_dir.
  auto is_none = [](const std::optional<std::string>& f) { return f && *f == "NONE"; };
  auto is_auto = [](const std::optional<std::string>& f) { return !f || *f == "AUTO"; };
  if (is_none(stdout_log) && (redirect || is_none(stderr_log))) {
    p.set("log", toml_string("off"));
  } else {
    if (redirect) p.set("log", toml_string("combined"));
    if (!is_auto(stdout_log) && !is_none(stdout_log))
      note("stdout_logfile", "vigil writes logs to [vigil] log_dir as " + p.name + ".out.log (" +
                                 p.name + ".log with redirect_stderr), not to a path of their own");
    else if (is_none(stdout_log))
      note("stdout_logfile", "NONE: vigil keeps a program's output or none of it (log = \"off\")");
    if (!redirect && !is_auto(stderr_log) && !is_none(stderr_log))
      note("stderr_logfile", "vigil writes logs to [vigil] log_dir as " + p.name +
                                 ".err.log, not to a path of its own");
    else if (!redirect && is_none(stderr_log))
      note("stderr_logfile", "NONE: vigil keeps a program's output or none of it (log = \"off\")");
  }
  if (stdout_max) {
    if (*stdout_max == "0") note("stdout_logfile_maxbytes", "0 (never rotate): vigil always rotates at log_max_size");
    else if (parse_size(*stdout_max)) p.set("log_max_size", toml_string(*stdout_max));
    else note("stdout_logfile_maxbytes", "\"" + *stdout_max + "\" not understood; left out");
  }
  if (stderr_max && stderr_max != stdout_max)
    note("stderr_logfile_maxbytes", "vigil has one log_max_size for both files" +
                                        std::string(stdout_max ? " (stdout_logfile_maxbytes' is used)" : ""));
  if (stdout_keep) {
    auto n = ini_int(*stdout_keep);
    if (n && *n <= 1000) p.set("log_keep", std::to_string(*n));
    else note("stdout_logfile_backups", "\"" + *stdout_keep + "\" is not a number from 0 to 1000; left out");
  }
  if (stderr_keep && stderr_keep != stdout_keep)
    note("stderr_logfile_backups", "vigil has one log_keep for both files" +
                                       std::string(stdout_keep ? " (stdout_logfile_backups' is used)" : ""));
  programs.push_back(std::move(p));
}

}  // namespace

std::optional<std::vector<std::string>> split_command_line(std::string_view text) {
  std::vector<std::string> out;
  std::string word;
  bool in_word = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word) out.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '\\') {
      in_word = true;
      if (i + 1 < text.size()) word += text[++i];
    } else if (c == '\'') {
      in_word = true;
      const auto close = text.find('\'', i + 1);
      if (close == std::string_view::npos) return std::nullopt;
      word += text.substr(i + 1, close - i - 1);
      i = close;
    } else if (c == '"') {
      in_word = true;
      bool closed = false;
      for (++i; i < text.size(); ++i) {
        if (text[i] == '"') {
          closed = true;
          break;
        }
        if (text[i] == '\\' && i + 1 < text.size() &&
            std::string_view("\\\"$`\n").find(text[i + 1]) != std::string_view::npos)
          ++i;
        word += text[i];
      }
      if (!closed) return std::nullopt;
    } else {
      in_word = true;
      word += c;
    }
  }
  if (in_word) out.push_back(std::move(word));
  return out;
}

std::optional<ImportFormat> detect_import_format(std::string_view file_name, std::string_view text) {
  auto ends = [&](std::string_view ext) {
    return file_name.size() >= ext.size() && file_name.substr(file_name.size() - ext.size()) == ext;
  };
  if (ends(".js") || ends(".cjs") || ends(".mjs")) return ImportFormat::pm2_js;
  if (ends(".json")) return ImportFormat::pm2_json;
  if (ends(".conf") || ends(".ini")) return ImportFormat::supervisord;
  if (text.find("[program:") != std::string_view::npos ||
      text.find("[supervisord]") != std::string_view::npos)
    return ImportFormat::supervisord;
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (text[first] == '{' || text[first] == '['))
    return ImportFormat::pm2_json;
  return std::nullopt;
}

ImportResult import_pm2(std::string_view text, std::string_view source) {
  ImportResult result;
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    result.error = std::string("not JSON: ") + e.what();
    return result;
  }
  const json* apps = nullptr;
  if (doc.is_array()) {
    apps = &doc;
  } else if (doc.is_object()) {
    for (auto it = doc.begin(); it != doc.end(); ++it) {
      if (it.key() == "apps") continue;
      result.notes.push_back({"", it.key(),
                              it.key() == "deploy" ? "pm2 deploy has no vigil equivalent; left out"
                                                   : "not an app setting; left out"});
    }
    if (auto it = doc.find("apps"); it != doc.end()) apps = &*it;
  }
  if (!apps || !apps->is_array()) {
    result.error = "no \"apps\" array (expected {\"apps\": [{\"name\": ..., \"script\": ...}]})";
    return result;
  }
  std::set<std::string> taken;
  std::vector<ProgramOut> programs;
  for (std::size_t i = 0; i < apps->size(); ++i)
    import_pm2_app((*apps)[i], i, taken, programs, result.notes);
  if (programs.empty()) {
    result.error = "no app with a script to convert";
    return result;
  }
  result.toml = render(header("pm2 ecosystem", source), programs);
  return result;
}

ImportResult import_supervisord(std::string_view text, std::string_view source,
                                std::string_view conf_dir) {
  ImportResult result;
  std::set<std::string> taken;
  std::vector<ProgramOut> programs;
  for (const auto& section : parse_ini(text)) {
    const std::string& s = section.name;
    if (s.rfind("program:", 0) == 0) {
      import_supervisord_program(section, conf_dir, taken, programs, result.notes);
    } else if (s == "include") {
      result.notes.push_back({"", "[include]", "the files it names are not read: import each one "
                                               "and put their programs into this file"});
    } else if (s.rfind("group:", 0) == 0) {
      result.notes.push_back({"", "[" + s + "]", "vigil has no groups; `vigil restart all` or "
                                                 "one command per program"});
    } else if (s.rfind("eventlistener:", 0) == 0 || s.rfind("fcgi-program:", 0) == 0) {
      result.notes.push_back({"", "[" + s + "]", "vigil has no such programs; left out"});
    } else {
      result.notes.push_back({"", "[" + s + "]", "settings of supervisord itself: vigil's are "
                                                 "in [vigil] and [http]; left out"});
    }
  }
  if (programs.empty()) {
    result.error = "no [program:NAME] section with a command to convert";
    return result;
  }
  result.toml = render(header("supervisord", source), programs);
  return result;
}

}  // namespace vigil
