// expand_variables: ${VAR} and ${VAR:-default} from an injected
// environment, $$ as a literal $, every other $ as written.
#include "env_expand.h"

#include <gtest/gtest.h>

#include <map>

namespace vigil {
namespace {

EnvLookup env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string expanded(std::string_view text) {
  auto r = expand_variables(text, env({{"HOME", "/home/app"}, {"EMPTY", ""}, {"PORT", "8080"}}));
  EXPECT_TRUE(r.ok()) << r.error;
  return r.text;
}

TEST(EnvExpand, BracedVariablesAreReplaced) {
  EXPECT_EQ(expanded("${HOME}/bin"), "/home/app/bin");
  EXPECT_EQ(expanded("--port=${PORT}"), "--port=8080");
  EXPECT_EQ(expanded("${HOME}${PORT}"), "/home/app8080");
  EXPECT_EQ(expanded("[${EMPTY}]"), "[]");
  EXPECT_EQ(expanded("no variables"), "no variables");
  EXPECT_EQ(expanded(""), "");
}

TEST(EnvExpand, DefaultsApplyWhenUnsetOrEmpty) {
  EXPECT_EQ(expanded("${MISSING:-3000}"), "3000");
  EXPECT_EQ(expanded("${EMPTY:-x}"), "x");
  EXPECT_EQ(expanded("${PORT:-3000}"), "8080");
  EXPECT_EQ(expanded("${MISSING:-}"), "");
  EXPECT_EQ(expanded("${MISSING:-a b $c}"), "a b $c");  // the default is literal
}

TEST(EnvExpand, DoubleDollarIsOneLiteralDollar) {
  EXPECT_EQ(expanded("$$"), "$");
  EXPECT_EQ(expanded("$${HOME}"), "${HOME}");
  EXPECT_EQ(expanded("cost: 5$$"), "cost: 5$");
  EXPECT_EQ(expanded("$$$$"), "$$");
  EXPECT_EQ(expanded("$$${HOME}"), "$/home/app");
}

TEST(EnvExpand, OtherDollarFormsStayForTheShell) {
  EXPECT_EQ(expanded("echo $HOME"), "echo $HOME");
  EXPECT_EQ(expanded("$1 $@ $? $"), "$1 $@ $? $");
  EXPECT_EQ(expanded("${process.pid}"), "${process.pid}");
  EXPECT_EQ(expanded("${MISSING-x}"), "${MISSING-x}");
  EXPECT_EQ(expanded("${1}"), "${1}");
  EXPECT_EQ(expanded("${HOME"), "${HOME");
  EXPECT_EQ(expanded("trailing $"), "trailing $");
}

TEST(EnvExpand, AnUnsetVariableIsAnErrorNamingIt) {
  auto r = expand_variables("x ${DB_URL} y", env({}));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error,
            "${DB_URL} is not set in vigil's environment (write ${DB_URL:-default} for a "
            "default, or $${DB_URL} for the text itself)");
}

TEST(EnvExpand, AnUnclosedDefaultIsAnError) {
  auto r = expand_variables("${A:-b", env({}));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error, "${A:- has no closing \"}\"");
}

TEST(EnvExpand, NoLookupMeansNothingIsSet) {
  EXPECT_FALSE(expand_variables("${HOME}", EnvLookup{}).ok());
  EXPECT_EQ(expand_variables("${HOME:-d}", EnvLookup{}).text, "d");
}

}  // namespace
}  // namespace vigil
