// The example configs in config/ pass `vigil check` with the real binary,
// and its summary counts programs, instances and watches. Runs nothing the
// configs describe.
#include <gtest/gtest.h>

#include "harness.h"

namespace vigil::it {
namespace {

using ExampleConfigTest = BinaryTest;

TEST_F(ExampleConfigTest, DemoConfigPassesCheck) {
  const fs::path config = source_dir() / "config" / "vigil.toml";
  auto r = run_vigil(dir_, {"check", "-c", config.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(config.string() + ": ok ("), std::string::npos) << r.output;
}

TEST_F(ExampleConfigTest, WatchExamplePassesCheckWithBothKinds) {
  const fs::path config = source_dir() / "config" / "watch.toml";
  auto r = run_vigil(dir_, {"check", "-c", config.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(config.string() + ": ok (0 programs, 0 instances, 2 watches)"),
            std::string::npos)
      << r.output;
}

TEST_F(ExampleConfigTest, CheckCountsWatches) {
  const fs::path config = write_config(R"(
[programs.web]
command = ["true"]
port_base = 3000
ready = "probe"
probe = { tcp = "127.0.0.1:{port}" }

[watch.redis]
tcp = "127.0.0.1:6379"
)");
  auto r = run_vigil(dir_, {"check", "-c", config.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(config.string() + ": ok (1 program, 1 instance, 1 watch)"),
            std::string::npos)
      << r.output;
}

TEST_F(ExampleConfigTest, CheckReportsAWatchErrorAtItsPosition) {
  const fs::path config = write_config(
      "[watch.legacy]\n"
      "http = \"http://legacy.internal/status\"\n");
  auto r = run_vigil(dir_, {"check", "-c", config.string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const std::string where = config.string() + ":2:8: ";
  EXPECT_NE(r.output.find(where + "http: \"legacy.internal\" is not an IPv4 address"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace vigil::it
