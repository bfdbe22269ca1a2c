// The command line as a value: verbs, options, and help in its two forms.
#include <gtest/gtest.h>

#include "cli.h"

namespace vigil {
namespace {

CliCommand parsed(const std::vector<std::string>& args) {
  CliParse p = parse_cli(args);
  EXPECT_TRUE(p.command.has_value()) << p.error;
  return p.command.value_or(CliCommand{});
}

std::string error_of(const std::vector<std::string>& args) {
  CliParse p = parse_cli(args);
  EXPECT_FALSE(p.command.has_value());
  return p.error;
}

TEST(Cli, HelpWithoutACommandIsTheOverview) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"help"}, {"-h"}, {"--help"}}) {
    const CliCommand c = parsed(args);
    EXPECT_EQ(c.verb, "help");
    EXPECT_TRUE(c.names.empty());
  }
}

TEST(Cli, HelpCommandAndCommandDashDashHelpAreTheSame) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"help", "run"}, {"run", "--help"}, {"run", "-h"}, {"run", "-c", "x.toml", "--help"}}) {
    const CliCommand c = parsed(args);
    EXPECT_EQ(c.verb, "help");
    EXPECT_EQ(c.names, std::vector<std::string>{"run"});
  }
  // A command missing its NAME still explains itself.
  EXPECT_EQ(parsed({"logs", "--help"}).names, std::vector<std::string>{"logs"});
}

TEST(Cli, EveryCommandHasItsHelp) {
  for (const char* verb :
       {"run", "check", "status", "start", "stop", "restart", "reload", "upgrade", "logs", "version",
        "help"}) {
    const auto text = help_text(verb);
    ASSERT_TRUE(text.has_value()) << verb;
    EXPECT_TRUE(text->starts_with(std::string("usage: vigil ") + verb)) << *text;
    // The overview lists it too ("vigil start|stop|restart" names three).
    EXPECT_NE(usage().find(verb), std::string::npos) << verb;
  }
  EXPECT_FALSE(help_text("frobnicate").has_value());
}

TEST(Cli, HelpForAnUnknownCommandIsAnError) {
  EXPECT_EQ(error_of({"help", "frobnicate"}), "unknown command \"frobnicate\"");
  EXPECT_EQ(error_of({"help", "run", "check"}), "unexpected argument \"check\"");
  EXPECT_EQ(error_of({"frobnicate", "--help"}), "unknown command \"frobnicate\"");
}

TEST(Cli, OptionsAndNames) {
  const CliCommand logs = parsed({"logs", "web", "-f", "-n", "50", "--config=/etc/vigil.toml"});
  EXPECT_EQ(logs.verb, "logs");
  EXPECT_EQ(logs.names, std::vector<std::string>{"web"});
  EXPECT_TRUE(logs.follow);
  EXPECT_EQ(logs.lines, 50);
  EXPECT_EQ(logs.config, "/etc/vigil.toml");
  EXPECT_TRUE(logs.config_given);
  EXPECT_TRUE(parsed({"restart", "web", "--all-at-once"}).all_at_once);
  EXPECT_EQ(error_of({"stop"}), "stop needs a program name (or \"all\")");
  EXPECT_EQ(error_of({"logs", "web", "-n", "many"}), "-n: expected a number of lines, got \"many\"");
  EXPECT_EQ(error_of({"status", "--bogus"}), "unknown option \"--bogus\"");
  EXPECT_EQ(error_of({}), "missing command");
}

TEST(Cli, UpgradeAndTheHandoverOfRun) {
  EXPECT_EQ(parsed({"upgrade"}).binary, "");
  EXPECT_EQ(parsed({"upgrade", "--binary", "/opt/vigil-2/vigil", "-c", "x.toml"}).binary, "/opt/vigil-2/vigil");
  EXPECT_EQ(error_of({"upgrade", "--binary"}), "--binary needs a value");
  EXPECT_EQ(error_of({"upgrade", "web"}), "unexpected argument \"web\"");
  EXPECT_EQ(error_of({"status", "--binary", "x"}), "unknown option \"--binary\"");
  EXPECT_EQ(parsed({"run", "-c", "x.toml"}).handover_fd, -1);
  EXPECT_EQ(parsed({"run", "-c", "x.toml", "--handover", "7"}).handover_fd, 7);
  EXPECT_EQ(error_of({"run", "--handover", "1"}), "--handover: expected an fd number, got \"1\"");
  EXPECT_EQ(error_of({"run", "--handover", "x"}), "--handover: expected an fd number, got \"x\"");
  EXPECT_EQ(error_of({"check", "--handover", "5"}), "unknown option \"--handover\"");
}

TEST(Cli, CheckStrictAndLogsWithoutAName) {
  EXPECT_TRUE(parsed({"check", "--strict"}).strict);
  EXPECT_FALSE(parsed({"check"}).strict);
  EXPECT_EQ(error_of({"status", "--strict"}), "unknown option \"--strict\"");
  const CliCommand logs = parsed({"logs", "-n", "5"});
  EXPECT_TRUE(logs.names.empty());
  EXPECT_EQ(logs.lines, 5);
}

}  // namespace
}  // namespace vigil
