// parse_dotenv: systemd EnvironmentFile= rules on dotenv text, errors with
// the env file's own line and column.
#include "dotenv.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

using Entries = std::vector<std::pair<std::string, std::string>>;

Entries entries(std::string_view text) {
  auto r = parse_dotenv(text);
  for (const auto& e : r.errors)
    ADD_FAILURE() << e.line << ":" << e.column << ": " << e.message;
  return r.entries;
}

std::vector<std::string> errors(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& e : parse_dotenv(text).errors)
    out.push_back(std::to_string(e.line) + ":" + std::to_string(e.column) + ": " + e.message);
  return out;
}

TEST(Dotenv, PlainLinesCommentsAndBlanks) {
  EXPECT_EQ(entries("# settings\n\nA=1\n  ; also a comment\nB = two words  \nC=\n"),
            (Entries{{"A", "1"}, {"B", "two words"}, {"C", ""}}));
  EXPECT_EQ(entries(""), Entries{});
  EXPECT_EQ(entries("A=1"), (Entries{{"A", "1"}}));  // no final newline
}

TEST(Dotenv, ExportPrefixIsIgnored) {
  EXPECT_EQ(entries("export A=1\nexport\tB=2\n"), (Entries{{"A", "1"}, {"B", "2"}}));
  EXPECT_EQ(entries("export=3\n"), (Entries{{"export", "3"}}));
}

TEST(Dotenv, HashInsideAValueIsPartOfIt) {
  EXPECT_EQ(entries("URL=http://h/#frag\nA=x # y\n"),
            (Entries{{"URL", "http://h/#frag"}, {"A", "x # y"}}));
}

TEST(Dotenv, DoubleQuotes) {
  EXPECT_EQ(entries(R"(A="  spaced  ")"), (Entries{{"A", "  spaced  "}}));
  EXPECT_EQ(entries(R"(A="say \"hi\" \\ \$HOME \`x\`")"), (Entries{{"A", R"(say "hi" \ $HOME `x`)"}}));
  EXPECT_EQ(entries(R"(A="a\nb")"), (Entries{{"A", R"(a\nb)"}}));  // other escapes stay
  EXPECT_EQ(entries("A=\"line one\nline two\"\nB=2\n"),
            (Entries{{"A", "line one\nline two"}, {"B", "2"}}));
  EXPECT_EQ(entries("A=\"joined \\\nhere\"\n"), (Entries{{"A", "joined here"}}));
  EXPECT_EQ(entries("A=\"# not a comment\"\n"), (Entries{{"A", "# not a comment"}}));
}

TEST(Dotenv, SingleQuotesAreLiteral) {
  EXPECT_EQ(entries(R"(A='$HOME \n \"x')"), (Entries{{"A", R"($HOME \n \"x)"}}));
  EXPECT_EQ(entries("A='it''s'\n"), (Entries{{"A", "its"}}));
}

TEST(Dotenv, QuotedAndUnquotedPartsJoin) {
  EXPECT_EQ(entries("A=\"x\"y'z'\n"), (Entries{{"A", "xyz"}}));
  EXPECT_EQ(entries("A=\"x\"   \n"), (Entries{{"A", "x"}}));
}

TEST(Dotenv, BackslashOutsideQuotes) {
  EXPECT_EQ(entries(R"(A=a\ b\\c\"d)"), (Entries{{"A", R"(a b\c"d)"}}));
  EXPECT_EQ(entries("A=one \\\ntwo\nB=3\n"), (Entries{{"A", "one two"}, {"B", "3"}}));
}

TEST(Dotenv, CrLfLinesLoseTheirCarriageReturn) {
  EXPECT_EQ(entries("A=1\r\nB=\"2\"\r\n"), (Entries{{"A", "1"}, {"B", "2"}}));
}

TEST(Dotenv, ALaterLineKeepsItsPlace) {
  EXPECT_EQ(entries("A=1\nA=2\n"), (Entries{{"A", "1"}, {"A", "2"}}));
}

TEST(Dotenv, MalformedLinesNameTheirLineAndColumn) {
  EXPECT_EQ(errors("A=1\nJUSTAWORD\n  B C=2\n=3\n"),
            (std::vector<std::string>{
                R"(2:1: expected KEY=VALUE, got "JUSTAWORD" without "=")",
                R"(3:3: expected KEY=VALUE, got "B" without "=")",
                R"(4:1: a variable name is missing before "=")",
            }));
  EXPECT_EQ(errors("\n1A=x\nA-B=y\n"),
            (std::vector<std::string>{
                R"(2:1: invalid variable name "1A" (letters, digits and "_", not starting with a digit))",
                R"(3:1: invalid variable name "A-B" (letters, digits and "_", not starting with a digit))",
            }));
}

TEST(Dotenv, AnUnclosedQuoteNamesWhereItOpened) {
  EXPECT_EQ(errors("A=1\nB=  \"never closed\nC=3\n"),
            (std::vector<std::string>{"2:5: the double quote opened here is not closed"}));
  EXPECT_EQ(errors("B='x"),
            (std::vector<std::string>{"1:3: the single quote opened here is not closed"}));
}

TEST(Dotenv, GoodLinesAroundABadOneAreKept) {
  auto r = parse_dotenv("A=1\nbad\nC=3\n");
  EXPECT_EQ(r.entries, (Entries{{"A", "1"}, {"C", "3"}}));
  EXPECT_EQ(r.errors.size(), 1u);
}

}  // namespace
}  // namespace vigil
