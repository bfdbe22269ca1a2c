// `vigil import FILE [-o OUT]` on the command line, and its help.
#include "cli.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

CliParse parse(std::vector<std::string> args) { return parse_cli(args); }

TEST(CliImport, FileAndOutput) {
  auto p = parse({"import", "ecosystem.config.js"});
  ASSERT_TRUE(p.command) << p.error;
  EXPECT_EQ(p.command->verb, "import");
  EXPECT_EQ(p.command->names, std::vector<std::string>{"ecosystem.config.js"});
  EXPECT_EQ(p.command->output, "");
  for (const char* flag : {"-o", "--output"}) {
    p = parse({"import", "supervisord.conf", flag, "vigil.toml"});
    ASSERT_TRUE(p.command) << p.error;
    EXPECT_EQ(p.command->names, std::vector<std::string>{"supervisord.conf"});
    EXPECT_EQ(p.command->output, "vigil.toml");
  }
}

TEST(CliImport, UsageErrors) {
  EXPECT_EQ(parse({"import"}).error,
            "import needs a file (a pm2 ecosystem file or a supervisord.conf)");
  EXPECT_EQ(parse({"import", "a", "b"}).error, "unexpected argument \"b\"");
  EXPECT_EQ(parse({"import", "a", "-o"}).error, "-o needs a value");
  EXPECT_EQ(parse({"status", "-o", "x"}).error, "unknown option \"-o\"");
}

TEST(CliImport, HelpAndOverviewNameIt) {
  auto help = help_text("import");
  ASSERT_TRUE(help);
  EXPECT_EQ(help->rfind("usage: vigil import FILE [-o vigil.toml]\n", 0), 0u);
  EXPECT_NE(usage().find("vigil import FILE"), std::string::npos);
  auto p = parse({"import", "--help"});
  ASSERT_TRUE(p.command);
  EXPECT_EQ(p.command->verb, "help");
  EXPECT_EQ(p.command->names, std::vector<std::string>{"import"});
}

}  // namespace
}  // namespace vigil
