// libFuzzer harness for the command line parser. Input: the arguments,
// separated by NUL bytes (as the kernel hands argv over). Besides "no
// crash, no sanitizer report" it checks what cli_commands relies on: a
// parse gives a command or an error, never both or neither; the verb is
// one of the contract's; the counts stay within their bounds.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "cli.h"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "cli_fuzz: broken promise: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> args;
  std::size_t from = 0;
  while (from <= in.size()) {
    const std::size_t nul = in.find('\0', from);
    const std::size_t to = nul == std::string_view::npos ? in.size() : nul;
    args.emplace_back(in.substr(from, to - from));
    from = to + 1;
  }
  if (size == 0) args.clear();

  const vigil::CliParse r = vigil::parse_cli(args);
  check(r.command.has_value() != !r.error.empty(), "a command or an error");
  if (!r.command) return 0;
  const vigil::CliCommand& c = *r.command;
  static const char* kVerbs[] = {"run",    "check",  "status",  "start", "stop",    "restart",
                                 "reload", "logs",   "import",  "version", "help", "upgrade"};
  bool known = false;
  for (auto v : kVerbs) known |= c.verb == v;
  check(known, "the verb is the contract's");
  check(c.lines >= 0, "-n is not negative");
  check(c.names.size() <= 1000, "names bounded");
  if (c.verb == "start" || c.verb == "stop" || c.verb == "restart")
    check(!c.names.empty(), "a verb that needs a name has one");
  if (c.verb == "status" || c.verb == "logs") check(c.names.size() <= 1, "one name at most");
  if (c.verb == "run" || c.verb == "check" || c.verb == "reload" || c.verb == "version" || c.verb == "upgrade")
    check(c.names.empty(), "no names where none are taken");
  check(c.verb == "upgrade" || c.binary.empty(), "--binary only for upgrade");
  check(c.verb == "run" || c.handover_fd < 0, "--handover only for run");
  if (c.verb == "import") check(c.names.size() == 1, "import takes exactly one file");
  check(c.verb == "import" || c.output.empty(), "-o only for import");
  check(c.verb == "check" || !c.strict, "--strict only for check");
  check(!c.config.empty() || c.config_given, "a default config path");
  return 0;
}
