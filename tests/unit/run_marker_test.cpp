// VIGIL_RUN values: round trip, a fixed key for a fixed path (a new vigil
// binary must compute its predecessor's), and strict rejection of anything
// else, since a parsed marker leads to a kill.
#include "run_marker.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

TEST(RunMarker, RoundTrips) {
  RunMarker m{run_key("/run/vigil/vigil.sock"), 1234, 987654321};
  EXPECT_EQ(m.variable(), "VIGIL_RUN=" + m.value());
  auto back = RunMarker::parse(m.value());
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, m);
  EXPECT_TRUE(back->same_vigil(m));
}

TEST(RunMarker, KeyIsFixedAndPerSocket) {
  // FNV-1a 64 of the empty string is its offset basis.
  EXPECT_EQ(run_key(""), "cbf29ce484222325");
  EXPECT_EQ(run_key("a"), "af63dc4c8601ec8c");
  EXPECT_NE(run_key("/tmp/a/vigil.sock"), run_key("/tmp/b/vigil.sock"));
  EXPECT_EQ(run_key("/tmp/a/vigil.sock").size(), 16u);
}

TEST(RunMarker, RejectsAnythingElse) {
  for (const char* v : {"", "x", "cbf29ce484222325", "cbf29ce484222325.12", "cbf29ce484222325.12.",
                        "cbf29ce484222325..3", "cbf29ce484222325.-1.3", "cbf29ce484222325.0.3",
                        "cbf29ce484222325.1.3x", "CBF29CE484222325.1.3", "cbf29ce48422232.1.3",
                        "cbf29ce484222325.1.3.4", "cbf29ce484222325.+1.3"})
    EXPECT_FALSE(RunMarker::parse(v)) << v;
}

}  // namespace
}  // namespace vigil
