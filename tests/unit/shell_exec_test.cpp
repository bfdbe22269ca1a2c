// exec_in_place: simple commands become "exec ...", anything the shell must
// stay for (lists, pipes, background, subshells, substitutions, keywords,
// builtins, assignments, open quotes) is left as written.
#include "shell_exec.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

TEST(ShellExec, SimpleCommandsAreExecuted) {
  EXPECT_EQ(exec_in_place("sleep 100"), "exec sleep 100");
  EXPECT_EQ(exec_in_place("node app.js --port 8080"), "exec node app.js --port 8080");
  EXPECT_EQ(exec_in_place("  /usr/bin/python3 -u 'my app.py'"), "exec   /usr/bin/python3 -u 'my app.py'");
  EXPECT_EQ(exec_in_place("./run.sh \"a;b\" 'c|d' e\\;f"), "exec ./run.sh \"a;b\" 'c|d' e\\;f");
  EXPECT_EQ(exec_in_place("echo $HOME ${PATH}"), "exec echo $HOME ${PATH}");
}

TEST(ShellExec, RedirectionsStaySimple) {
  EXPECT_EQ(exec_in_place("node app.js 2>&1"), "exec node app.js 2>&1");
  EXPECT_EQ(exec_in_place("prog >out.log 2>err.log </dev/null"),
            "exec prog >out.log 2>err.log </dev/null");
  EXPECT_EQ(exec_in_place("prog >| out <&0"), "exec prog >| out <&0");
}

TEST(ShellExec, ListsPipesAndBackgroundKeepTheShell) {
  for (const char* s : {"a; b", "a && b", "a || b", "a | b", "a &", "a\nb", "cd /x && node app.js",
                        "(sleep 1)", "{ a; }", "a `b`", "a $(b)", "a \"$(b)\"", "a \\\nb"})
    EXPECT_EQ(exec_in_place(s), s) << s;
}

TEST(ShellExec, KeywordsBuiltinsAndAssignmentsKeepTheShell) {
  for (const char* s : {"exit 3", "if true", "while :", "cd /tmp", ". ./env", "exec sleep 1",
                        "FOO=1 sleep 1", "export A=1", "! false", "trap '' TERM", "wait",
                        "\"quoted\" arg", "$CMD arg"})
    EXPECT_EQ(exec_in_place(s), s) << s;
}

TEST(ShellExec, UnterminatedQuotesAndEmptyKeepTheShell) {
  for (const char* s : {"echo 'open", "echo \"open", "", "   "}) EXPECT_EQ(exec_in_place(s), s) << s;
}

}  // namespace
}  // namespace vigil
