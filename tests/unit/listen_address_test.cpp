#include "listen_address.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

TEST(ListenAddress, Ipv4WithPort) {
  std::string err;
  auto a = parse_listen_address("127.0.0.1:9321", &err);
  ASSERT_TRUE(a) << err;
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9321);
  EXPECT_FALSE(a->ipv6);
  EXPECT_EQ(a->to_string(), "127.0.0.1:9321");
}

TEST(ListenAddress, BracketedIpv6) {
  std::string err;
  auto a = parse_listen_address("[::1]:80", &err);
  ASSERT_TRUE(a) << err;
  EXPECT_EQ(a->host, "::1");
  EXPECT_TRUE(a->ipv6);
  EXPECT_EQ(a->to_string(), "[::1]:80");
}

TEST(ListenAddress, PortOnlyMeansAllInterfaces) {
  auto a = parse_listen_address(":9321", nullptr);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "");
  EXPECT_EQ(a->port, 9321);
}

TEST(ListenAddress, PortZeroIsAnyFreePort) {
  auto a = parse_listen_address("127.0.0.1:0", nullptr);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->port, 0);
}

TEST(ListenAddress, Rejections) {
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
                          "127.0.0.1:80x", "localhost:80", "::1:80", "[::1]80", "[::1", "[]:80",
                          "[127.0.0.1]:80", "300.1.1.1:80"}) {
    std::string err;
    EXPECT_FALSE(parse_listen_address(bad, &err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
}

TEST(ListenAddress, HostNamesAreNotResolved) {
  std::string err;
  EXPECT_FALSE(parse_listen_address("localhost:9321", &err));
  EXPECT_NE(err.find("not resolved"), std::string::npos) << err;
}

}  // namespace
}  // namespace vigil
