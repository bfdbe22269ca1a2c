#include <gtest/gtest.h>
TEST(PlaceholderIntegration, Builds) { SUCCEED(); }
