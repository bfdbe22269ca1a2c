// The fd count of a config and the warning `vigil check` prints when it
// exceeds the limit vigil can raise itself to.
#include "fd_budget.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

ProgramConfig program(std::string name, int instances, LogMode log) {
  ProgramConfig p;
  p.name = std::move(name);
  p.instances = instances;
  p.log = log;
  return p;
}

TEST(FdBudget, CountsWhatEachInstanceHolds) {
  EXPECT_EQ(fds_per_instance(program("a", 1, LogMode::split)), 6u);
  EXPECT_EQ(fds_per_instance(program("a", 1, LogMode::combined)), 5u);
  EXPECT_EQ(fds_per_instance(program("a", 1, LogMode::off)), 2u);
  ProgramConfig probed = program("a", 1, LogMode::off);
  probed.probe = ProbeConfig{};
  EXPECT_EQ(fds_per_instance(probed), 3u);
  probed.probe->kind = ProbeKind::exec;
  EXPECT_EQ(fds_per_instance(probed), 5u);
}

TEST(FdBudget, SumsInstancesProgramsAndVigil) {
  Config c;
  c.programs.push_back(program("web", 10000, LogMode::split));
  c.programs.push_back(program("quiet", 3, LogMode::off));
  const FdBudget b = fd_budget(c);
  EXPECT_EQ(b.instances, 10003u);
  EXPECT_EQ(b.per_instances, 10000u * 6 + 3 * 2);
  EXPECT_EQ(b.total(), 60006u + kVigilBaseFds + kReservedFds);
}

TEST(FdBudget, WarnsWithTheNumbersOnlyAboveTheLimit) {
  Config c;
  c.programs.push_back(program("web", 10000, LogMode::split));
  const FdBudget b = fd_budget(c);
  EXPECT_EQ(fd_budget_warning(b, b.total()), std::nullopt);
  auto w = fd_budget_warning(b, 20000);
  ASSERT_TRUE(w.has_value());
  EXPECT_NE(w->find("10000 instances need about " + std::to_string(b.total()) + " open files"),
            std::string::npos)
      << *w;
  EXPECT_NE(w->find("more than the 20000"), std::string::npos) << *w;
  EXPECT_NE(w->find("EMFILE"), std::string::npos) << *w;
}

TEST(FdBudget, ReservesASixteenthOfTheLimitWithinBounds) {
  EXPECT_EQ(reserved_fds(64), 8u);
  EXPECT_EQ(reserved_fds(256), 16u);
  EXPECT_EQ(reserved_fds(1024), kReservedFds);
  EXPECT_EQ(reserved_fds(1 << 20), kReservedFds);
}

}  // namespace
}  // namespace vigil
