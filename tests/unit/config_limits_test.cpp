// The limits parse_config puts on what a config may ask for (issue 13,
// defects 2, 7 and 9): the size and the nesting of the text, the longest
// duration and the largest size of every key, the control socket's path
// length, and log files two programs would share. Each boundary is tested
// on both sides: the maximum is accepted, one past it is refused.
#include "config_parse.h"
#include "toml_depth.h"
#include "units.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

using namespace std::chrono_literals;

const std::string kFile = "/etc/vigil/vigil.toml";

std::vector<std::string> errors_of(std::string_view text, const std::string& file = kFile) {
  std::vector<std::string> out;
  for (const auto& e : parse_config(text, file).errors)
    out.push_back(std::to_string(e.line) + ":" + std::to_string(e.column) + ": " + e.message);
  return out;
}

using Errors = std::vector<std::string>;

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

// --- units: "too large" is told apart from "malformed" ------------------------

TEST(UnitsLimits, DurationTooLargeIsFlagged) {
  for (const char* text : {"99999999999999999999s", "9223372036854775808ms", "3000000000000h",
                           "2562047788015h13m", "99999999999999999999h1ms"}) {
    bool too_large = false;
    EXPECT_EQ(parse_duration(text, &too_large), std::nullopt) << text;
    EXPECT_TRUE(too_large) << text;
  }
  // Malformed after an overflow is still malformed.
  for (const char* text : {"1e30ms", "-5s", "99999999999999999999", "99999999999999999999x",
                           "99999999999999999999s1h", "5d", ""}) {
    bool too_large = true;
    EXPECT_EQ(parse_duration(text, &too_large), std::nullopt) << text;
    EXPECT_FALSE(too_large) << text;
  }
  bool too_large = true;
  EXPECT_EQ(parse_duration("3000000h", &too_large), Duration{3000000h});
  EXPECT_FALSE(too_large);
}

TEST(UnitsLimits, SizeTooLargeIsFlagged) {
  for (const char* text : {"99999999999TiB", "18446744073709551616", "16777216TiB",
                           "999999999999999999999999B"}) {
    bool too_large = false;
    EXPECT_EQ(parse_size(text, &too_large), std::nullopt) << text;
    EXPECT_TRUE(too_large) << text;
  }
  for (const char* text : {"-1", "1PiB", "99999999999999999999PiB", "1e30B", ""}) {
    bool too_large = true;
    EXPECT_EQ(parse_size(text, &too_large), std::nullopt) << text;
    EXPECT_FALSE(too_large) << text;
  }
}

// --- durations: one maximum per key ------------------------------------------

struct DurationKey {
  std::string section;  // the header the key sits under
  std::string extra;    // other lines the section needs
  std::string key;
  std::string max;      // the longest accepted
  std::string past;     // 1ms more
};

const std::vector<DurationKey>& duration_keys() {
  static const std::vector<DurationKey> keys = [] {
    std::vector<DurationKey> k;
    const std::string prog = "[programs.web]";
    const std::string cmd = "command = \"x\"\n";
    k.push_back({"[vigil]", "", "sample_interval", "8760h", "8760h1ms"});
    // restart_delay_max first: restart_delay may not pass it.
    k.push_back({prog, cmd + "restart_delay_max = \"8760h\"\n", "restart_delay", "8760h",
                 "8760h1ms"});
    k.push_back({prog, cmd, "restart_delay_max", "8760h", "8760h1ms"});
    for (const char* key : {"backoff_reset", "min_uptime", "restart_window", "stop_timeout"})
      k.push_back({prog, cmd, key, "8760h", "8760h1ms"});
    k.push_back({prog, cmd, "start_timeout", "8760h", "8760h1ms"});
    const std::string probe = "[programs.web.probe]";
    const std::string tcp = "tcp = \"127.0.0.1:80\"\n";
    k.push_back({prog + "\n" + cmd + probe, tcp, "interval", "168h", "168h1ms"});
    k.push_back({prog + "\n" + cmd + probe, tcp, "timeout", "8760h", "8760h1ms"});
    k.push_back({prog + "\n" + cmd + probe, tcp, "initial_delay", "8760h", "8760h1ms"});
    const std::string hb = "[programs.web.heartbeat]";
    k.push_back({prog + "\n" + cmd + hb, "", "interval", "168h", "168h1ms"});
    k.push_back({prog + "\n" + cmd + hb, "", "grace", "8760h", "8760h1ms"});
    const std::string sticky = "[programs.web.sticky]";
    const std::string sticky_lines = "listen = \"127.0.0.1:0\"\nport_base = 3000\n";
    k.push_back({prog + "\n" + cmd + sticky, sticky_lines, "idle_timeout", "8760h", "8760h1ms"});
    k.push_back({prog + "\n" + cmd + sticky, sticky_lines, "connect_timeout", "8760h",
                 "8760h1ms"});
    const std::string watch = "[watch.legacy]";
    const std::string http = "http = \"http://127.0.0.1:8000/\"\n";
    k.push_back({watch, http, "interval", "168h", "168h1ms"});
    k.push_back({watch, http, "timeout", "8760h", "8760h1ms"});
    k.push_back({watch, http, "initial_delay", "8760h", "8760h1ms"});
    k.push_back({watch, http, "action_timeout", "8760h", "8760h1ms"});
    const std::string guarded = "[watch.guarded]\nnotify_socket = \"/run/g.sock\"\n";
    k.push_back({guarded + "[watch.guarded.heartbeat]", "", "interval", "168h", "168h1ms"});
    k.push_back({guarded + "[watch.guarded.heartbeat]", "", "grace", "8760h", "8760h1ms"});
    return k;
  }();
  return keys;
}

std::string config_with(const DurationKey& k, const std::string& value) {
  return k.section + "\n" + k.extra + k.key + " = \"" + value + "\"\n";
}

TEST(DurationLimits, EveryKeyAcceptsItsMaximum) {
  for (const auto& k : duration_keys()) {
    const std::string text = config_with(k, k.max);
    EXPECT_EQ(errors_of(text), Errors{}) << text;
  }
}

TEST(DurationLimits, EveryKeyRefusesOnePastItsMaximum) {
  for (const auto& k : duration_keys()) {
    const std::string text = config_with(k, k.past);
    const std::string days = k.max == "168h" ? "7 days" : "365 days";
    auto errors = errors_of(text);
    ASSERT_EQ(errors.size(), 1u) << text;
    EXPECT_NE(errors[0].find(": " + k.key + ": \"" + k.past + "\" is longer than the maximum of " +
                             k.max + " (" + days + ")"),
              std::string::npos)
        << errors[0];
  }
}

TEST(DurationLimits, OverflowingTextsAreRefusedAtTheirPosition) {
  EXPECT_EQ(errors_of(R"([programs.web]
command = "x"
stop_timeout = "3000000h"
min_uptime = "99999999999999999999s"
backoff_reset = "1e30ms"
restart_window = "-5s"
[programs.web.heartbeat]
grace = "3000000h"
)"),
            (Errors{
                R"(3:16: stop_timeout: "3000000h" is longer than the maximum of 8760h (365 days))",
                R"(4:14: min_uptime: "99999999999999999999s" is longer than the maximum of 8760h (365 days))",
                R"(5:17: backoff_reset: invalid duration "1e30ms" (expected e.g. "250ms", "5s", "1m30s"))",
                R"(6:18: restart_window: invalid duration "-5s" (expected e.g. "250ms", "5s", "1m30s"))",
                R"(8:9: grace: "3000000h" is longer than the maximum of 8760h (365 days))",
            }));
}

// --- sizes -------------------------------------------------------------------

TEST(SizeLimits, MemoryLimitAndLogMaxSizeAcceptTheMaximum) {
  for (const char* key : {"memory_limit", "log_max_size"}) {
    for (const char* value : {"1024TiB", "1125899906842624", "1125899906842624B"}) {
      const std::string text = std::string("[programs.web]\ncommand = \"x\"\n") + key + " = \"" +
                               value + "\"\n";
      EXPECT_EQ(errors_of(text), Errors{}) << text;
    }
  }
}

TEST(SizeLimits, OnePastTheMaximumAndOverflowsAreRefused) {
  EXPECT_EQ(errors_of(R"([programs.web]
command = "x"
memory_limit = "1125899906842625"
log_max_size = "1025TiB"
[programs.api]
command = "x"
memory_limit = "99999999999TiB"
log_max_size = "18446744073709551616"
)"),
            (Errors{
                R"(3:16: memory_limit: "1125899906842625" is larger than the maximum of 1024TiB)",
                R"(4:16: log_max_size: "1025TiB" is larger than the maximum of 1024TiB)",
                R"(7:16: memory_limit: "99999999999TiB" is larger than the maximum of 1024TiB)",
                R"(8:16: log_max_size: "18446744073709551616" is larger than the maximum of 1024TiB)",
            }));
}

// --- the text: size and nesting ----------------------------------------------

const std::string kDepthMessage =
    "nested deeper than the maximum of 64 levels (table header keys, dotted keys, arrays and "
    "inline tables together)";

TEST(TextLimits, ATableHeaderOf64KeysIsAcceptedAnd65Refused) {
  // A header nobody writes, but valid TOML: [a.a.(...).a]
  const std::string ok = "[" + repeat("a.", 63) + "a]\n";
  EXPECT_EQ(errors_of(ok), Errors{"1:2: unknown key \"a\" at the top level"});
  const std::string deep = "[" + repeat("a.", 64) + "a]\n";
  // The 65th key starts at column 2 + 2 * 64.
  EXPECT_EQ(errors_of(deep), Errors{"1:130: " + kDepthMessage});
}

TEST(TextLimits, TheHeaderThatCrashedCheckIsRefusedWithoutParsing) {
  const std::string deep = "[" + repeat("a.", 39999) + "a]\n";
  EXPECT_EQ(errors_of(deep), Errors{"1:130: " + kDepthMessage});
  const std::string aot = "[[" + repeat("a.", 39999) + "a]]\n";
  EXPECT_EQ(errors_of(aot), Errors{"1:131: " + kDepthMessage});
}

TEST(TextLimits, DottedKeysCountBelowTheirHeader) {
  // 60 header keys + 4 dotted keys = 64: fine (unknown keys, not too deep).
  const std::string header = "[" + repeat("a.", 59) + "a]\n";
  auto ok = errors_of(header + "b.b.b.b = 1\n");
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].find("nested"), std::string::npos) << ok[0];
  // One more: the fifth dotted key is at depth 65, line 2 column 9.
  EXPECT_EQ(errors_of(header + "b.b.b.b.b = 1\n"), Errors{"2:9: " + kDepthMessage});
  // Quoted segments and blanks around dots count the same.
  EXPECT_EQ(errors_of(header + "b . \"b\" . 'b' . b . \"b\" = 1\n"),
            Errors{"2:21: " + kDepthMessage});
}

TEST(TextLimits, NestedArraysAndInlineTablesCount) {
  // x is at depth 1 and is the outer array; 64 arrays reach depth 64.
  const std::string ok = "x = " + repeat("[", 64) + repeat("]", 64) + "\n";
  EXPECT_EQ(errors_of(ok), Errors{"1:1: unknown key \"x\" at the top level"});
  const std::string deep = "x = " + repeat("[", 65) + repeat("]", 65) + "\n";
  EXPECT_EQ(errors_of(deep), Errors{"1:69: " + kDepthMessage});
  // Inline tables with dotted keys: x{ a.b{ a.b{ ... } } } adds 2 per level.
  std::string inl = "x = ";
  for (int i = 0; i < 40; ++i) inl += "{ a.b = ";
  inl += "1" + repeat(" }", 40) + "\n";
  auto errors = errors_of(inl);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find(kDepthMessage), std::string::npos) << errors[0];
  // Arrays of inline tables: x[ {a[ {a[ ... ]} ]} ], 2 per level: 31 fit.
  auto mixed_of = [](int levels) {
    std::string text = "x = [";
    for (int i = 0; i < levels; ++i) text += "{a = [";
    return text + "1" + repeat("]}", levels) + "]\n";
  };
  EXPECT_EQ(errors_of(mixed_of(31)), Errors{"1:1: unknown key \"x\" at the top level"});
  const std::string mixed = mixed_of(32);
  errors = errors_of(mixed);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find(kDepthMessage), std::string::npos) << errors[0];
}

TEST(TextLimits, BracketsAndDotsInStringsAndCommentsDoNotCount) {
  const std::string brackets = repeat("[", 200) + repeat(".", 200) + repeat("{", 200);
  const std::string text = "# " + brackets + "\n[programs.web]\ncommand = [\"" + brackets +
                           "\", '" + brackets + "', \"\\\"" + brackets + "\"]\n" +
                           "env = { A = \"\"\"\n" + brackets + "\n\"\"\", B = '''" + brackets +
                           "'''}  # " + brackets + "\n" + "\"a.b.c\" = 1\n";
  // Only the last line is wrong, and not for its depth.
  EXPECT_EQ(errors_of(text), Errors{"7:1: unknown key \"a.b.c\" in [programs.web]"});
}

TEST(TextLimits, MultiLineStringsWithExtraQuotesEndWhereTomlEndsThem) {
  // """ closes, and up to two more quotes belong to the string: the deep
  // array after it is seen.
  const std::string text = "s = \"\"\"a\"\"\"\"\"\nx = " + repeat("[", 65) + repeat("]", 65) + "\n";
  auto errors = errors_of(text);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "2:69: " + kDepthMessage);
}

TEST(TextLimits, GarbageBeforeADeepHeaderDoesNotHideIt) {
  const std::string text = "= ] } , \"unterminated\n'also\n[[x\nx = 1 2 }\n[" +
                           repeat("a.", 70) + "a]\n";
  auto at = find_too_deep(text, 64);
  ASSERT_TRUE(at.has_value());
  EXPECT_EQ(at->line, 5);
  EXPECT_EQ(at->column, 130);
}

TEST(TextLimits, AFileOfTheMaximumSizeIsReadAndOneByteMoreIsRefused) {
  std::string text = "[programs.web]\ncommand = \"x\"\n";
  const std::string line = "# " + repeat("x", 97) + "\n";  // 100 bytes
  while (text.size() + line.size() <= kMaxConfigBytes) text += line;
  text += repeat("#", kMaxConfigBytes - text.size());
  ASSERT_EQ(text.size(), kMaxConfigBytes);
  EXPECT_EQ(errors_of(text), Errors{});
  text += "\n";
  // The byte past the limit: the last line's column after its 2-byte "#...".
  const TextPosition at = position_of(text, kMaxConfigBytes);
  EXPECT_EQ(errors_of(text),
            Errors{std::to_string(at.line) + ":" + std::to_string(at.column) +
                   ": the file is longer than the maximum of 4MiB for a config"});
}

TEST(TextLimits, PositionOfCountsCodePoints) {
  const std::string text = "a\n\xc3\xa9\xc3\xa9x\n";
  EXPECT_EQ(position_of(text, 0).line, 1);
  EXPECT_EQ(position_of(text, 2).line, 2);
  EXPECT_EQ(position_of(text, 2).column, 1);
  EXPECT_EQ(position_of(text, 6).column, 3);  // after two 2-byte characters
}

// --- what `run` would refuse: the control socket's length --------------------

TEST(ControlSocketLimit, A107BytePathIsAcceptedAnd108Refused) {
  // "/s/" + name: absolute as run makes it.
  const std::string at107 = "/s/" + std::string(104, 'c');
  const std::string at108 = at107 + "c";
  EXPECT_EQ(errors_of("[vigil]\ncontrol_socket = \"" + at107 + "\"\n"), Errors{});
  EXPECT_EQ(errors_of("[vigil]\ncontrol_socket = \"" + at108 + "\"\n"),
            Errors{"2:18: control_socket: \"" + at108 +
                   "\" is 108 bytes long; a unix socket path holds at most 107 (choose a shorter "
                   "one)"});
}

TEST(ControlSocketLimit, ARelativePathCountsOnceMadeAbsolute) {
  // 20-byte folder + "/" + 87 = 108.
  const std::string dir = "/" + std::string(19, 'd');
  const std::string file = dir + "/vigil.toml";
  EXPECT_EQ(errors_of("[vigil]\ncontrol_socket = \"" + std::string(86, 'c') + "\"\n", file),
            Errors{});
  auto errors = errors_of("[vigil]\ncontrol_socket = \"" + std::string(87, 'c') + "\"\n", file);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("2:18: control_socket: \"" + dir + "/"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("is 108 bytes long"), std::string::npos) << errors[0];
}

TEST(ControlSocketLimit, TheDefaultNextToADeepFileIsRefusedWithoutAPosition) {
  // dir + "/vigil.sock" (11 bytes) = 108.
  const std::string dir = "/" + std::string(96, 'd');
  auto r = parse_config("", dir + "/vigil.toml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 0);
  EXPECT_NE(r.errors[0].message.find("set control_socket in [vigil] to a shorter path"),
            std::string::npos)
      << r.errors[0].message;
  EXPECT_TRUE(parse_config("", "/" + std::string(95, 'd') + "/vigil.toml").ok());
}

// --- what `run` would refuse: two programs writing one log file --------------

TEST(LogFileClash, AnInstanceAndAProgramNamedLikeIt) {
  EXPECT_EQ(errors_of(R"([programs.a]
command = "x"
instances = 2
[programs.a-0]
command = "x"
)"),
            Errors{"4:11: log: [programs.a-0] and [programs.a] (instance 0) would both write "
                   "\"/etc/vigil/logs/a-0.out.log\"; rename one, or set log = \"off\" in one"});
  // Written the other way round: reported at the second, a's header.
  EXPECT_EQ(errors_of(R"([programs.a-1]
command = "x"
log = "combined"
[programs.a]
command = "x"
instances = 2
log = "combined"
)"),
            Errors{"4:11: log: [programs.a] (instance 1) and [programs.a-1] would both write "
                   "\"/etc/vigil/logs/a-1.log\"; rename one, or set log = \"off\" in one"});
}

TEST(LogFileClash, CombinedNameDotOutAgainstASplitProgram) {
  EXPECT_EQ(errors_of(R"([programs.a]
command = "x"
[programs."a.err"]
command = "x"
log = "combined"
)"),
            Errors{"3:11: log: [programs.\"a.err\"] and [programs.a] would both write "
                   "\"/etc/vigil/logs/a.err.log\"; rename one, or set log = \"off\" in one"});
  EXPECT_EQ(errors_of(R"([programs.w]
command = "x"
instances = 3
[programs."w-2.out"]
command = "x"
log = "combined"
)"),
            Errors{"4:11: log: [programs.\"w-2.out\"] and [programs.w] (instance 2) would both "
                   "write \"/etc/vigil/logs/w-2.out.log\"; rename one, or set log = \"off\" in "
                   "one"});
}

TEST(LogFileClash, NamesThatOnlyLookAlikeAreFine) {
  for (const char* text : {
           // a has instances 0 and 1 only.
           "[programs.a]\ncommand = \"x\"\ninstances = 2\n[programs.a-2]\ncommand = \"x\"\n",
           // "a-00" and "a-01" are not how an index is written.
           "[programs.a]\ncommand = \"x\"\ninstances = 2\n[programs.a-00]\ncommand = \"x\"\n"
           "[programs.a-01]\ncommand = \"x\"\n",
           // One instance: a writes a.*, not a-0.*.
           "[programs.a]\ncommand = \"x\"\n[programs.a-0]\ncommand = \"x\"\n",
           // Different modes: a-0.out.log against a-0.log.
           "[programs.a]\ncommand = \"x\"\ninstances = 2\n[programs.a-0]\ncommand = \"x\"\n"
           "log = \"combined\"\n",
           // No logs on one side.
           "[programs.a]\ncommand = \"x\"\ninstances = 2\nlog = \"off\"\n[programs.a-0]\n"
           "command = \"x\"\n",
           "[programs.a]\ncommand = \"x\"\n[programs.\"a.out\"]\ncommand = \"x\"\nlog = \"off\"\n",
           // Both combined: a.log and a.out.log.
           "[programs.a]\ncommand = \"x\"\nlog = \"combined\"\n[programs.\"a.out\"]\ncommand = "
           "\"x\"\nlog = \"combined\"\n",
           // Both split: a.out.out.log and a.out.log.
           "[programs.a]\ncommand = \"x\"\n[programs.\"a.out\"]\ncommand = \"x\"\n",
       }) {
    EXPECT_EQ(errors_of(text), Errors{}) << text;
  }
}

}  // namespace
}  // namespace vigil
