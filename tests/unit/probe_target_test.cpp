// Probe targets: URLs and HOST:PORT as users write them, {port} expansion.
#include <gtest/gtest.h>

#include "probe_target.h"

namespace vigil {
namespace {

TEST(ProbeTargetTest, ExpandsEveryPortPlaceholder) {
  EXPECT_EQ(expand_port("http://127.0.0.1:{port}/x?p={port}", 3131), "http://127.0.0.1:3131/x?p=3131");
  EXPECT_EQ(expand_port("no placeholder", 1), "no placeholder");
  EXPECT_EQ(expand_port("127.0.0.1:{port}", std::nullopt), "127.0.0.1:{port}");
}

TEST(ProbeTargetTest, UrlWithPortAndPath) {
  std::string why;
  auto e = parse_probe_url("http://127.0.0.1:8000/SocketServer.ashx?Action=getThreadStatus", &why);
  ASSERT_TRUE(e) << why;
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 8000);
  EXPECT_EQ(e->path, "/SocketServer.ashx?Action=getThreadStatus");
  EXPECT_EQ(e->host_header, "127.0.0.1:8000");
  EXPECT_FALSE(e->ipv6);
}

TEST(ProbeTargetTest, UrlDefaultsPortAndPath) {
  auto e = parse_probe_url("http://localhost", nullptr);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 80);
  EXPECT_EQ(e->path, "/");
  EXPECT_EQ(e->host_header, "localhost");
  auto q = parse_probe_url("http://10.0.0.1?x=1", nullptr);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->path, "/?x=1");
}

TEST(ProbeTargetTest, UrlWithIpv6) {
  auto e = parse_probe_url("http://[::1]:9000/health", nullptr);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->ipv6);
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->port, 9000);
  EXPECT_EQ(e->host_header, "[::1]:9000");
  auto d = parse_probe_url("http://[::1]/", nullptr);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->port, 80);
}

TEST(ProbeTargetTest, RejectedUrlsSayWhy) {
  const std::pair<const char*, const char*> cases[] = {
      {"https://127.0.0.1/", "https is not supported"},
      {"ftp://127.0.0.1/", "http://"},
      {"127.0.0.1:80/health", "http://"},
      {"http://", "missing host"},
      {"http://user@127.0.0.1/", "user info"},
      {"http://127.0.0.1/a#b", "fragment"},
      {"http://127.0.0.1/a b", "spaces"},
      {"http://example.com/", "not an IPv4 address"},
      {"http://127.0.0.1:99999/", "invalid port"},
      {"http://127.0.0.1:0/", "port 0"},
      {"http://127.0.0.1:{port}/", "invalid port"},
  };
  for (const auto& [url, want] : cases) {
    std::string why;
    EXPECT_FALSE(parse_probe_url(url, &why)) << url;
    EXPECT_NE(why.find(want), std::string::npos) << url << ": " << why;
  }
}

TEST(ProbeTargetTest, Addresses) {
  auto e = parse_probe_address("127.0.0.1:6379", nullptr);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->port, 6379);
  auto l = parse_probe_address("localhost:6379", nullptr);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->host, "127.0.0.1");
  std::string why;
  EXPECT_FALSE(parse_probe_address(":6379", &why));
  EXPECT_NE(why.find("missing host"), std::string::npos) << why;
  EXPECT_FALSE(parse_probe_address("redis:6379", &why));
  EXPECT_NE(why.find("IP address or localhost"), std::string::npos) << why;
  EXPECT_FALSE(parse_probe_address("127.0.0.1", &why));
}

}  // namespace
}  // namespace vigil
