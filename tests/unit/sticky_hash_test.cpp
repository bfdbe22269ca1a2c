// Rendezvous hashing: an even spread of addresses over 4 and 16 instances,
// only a leaving instance's clients move (and come back), and fixed values,
// so that a change of the hash (which moves every client) is a decision.
#include "sticky_hash.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

namespace vigil {
namespace {

constexpr int kClients = 100000;

// A raw IPv4 address as the proxy hashes it: 4 bytes, network order.
std::string ipv4(std::uint32_t a) {
  return {static_cast<char>(a >> 24), static_cast<char>(a >> 16), static_cast<char>(a >> 8),
          static_cast<char>(a)};
}

// 10.0.0.0, 10.0.0.1, ...: the worst case for a weak hash (only the low
// bytes change).
std::vector<std::uint64_t> sequential_keys() {
  std::vector<std::uint64_t> keys;
  for (std::uint32_t i = 0; i < kClients; ++i)
    keys.push_back(sticky_key(ipv4(0x0a000000u + i)));
  return keys;
}

// Scattered over the whole IPv4 space, and distinct: i times an odd
// constant is a bijection modulo 2^32.
std::vector<std::uint64_t> scattered_keys() {
  std::vector<std::uint64_t> keys;
  for (std::uint32_t i = 0; i < kClients; ++i)
    keys.push_back(sticky_key(ipv4(i * 2654435761u + 12345u)));
  return keys;
}

std::vector<int> indexes(int n) {
  std::vector<int> v(n);
  std::iota(v.begin(), v.end(), 0);
  return v;
}

int owner(std::uint64_t key, const std::vector<int>& candidates) {
  return sticky_order(key, candidates).front();
}

// Each count within `tolerance` (a fraction) of total / counts.size().
void expect_even(const std::vector<int>& counts, int total, double tolerance, const char* what) {
  const double share = static_cast<double>(total) / static_cast<double>(counts.size());
  for (std::size_t i = 0; i < counts.size(); ++i) {
    EXPECT_GE(counts[i], share * (1 - tolerance)) << what << ": instance " << i;
    EXPECT_LE(counts[i], share * (1 + tolerance)) << what << ": instance " << i;
  }
}

void expect_even_spread(const std::vector<std::uint64_t>& keys, int instances, const char* what) {
  const auto all = indexes(instances);
  std::vector<int> counts(instances);
  for (auto key : keys) ++counts[owner(key, all)];
  expect_even(counts, static_cast<int>(keys.size()), 0.15, what);
}

TEST(StickyHash, SequentialAddressesSpreadEvenlyOver4And16Instances) {
  const auto keys = sequential_keys();
  expect_even_spread(keys, 4, "sequential over 4");
  expect_even_spread(keys, 16, "sequential over 16");
}

TEST(StickyHash, ScatteredAddressesSpreadEvenlyOver4And16Instances) {
  const auto keys = scattered_keys();
  expect_even_spread(keys, 4, "scattered over 4");
  expect_even_spread(keys, 16, "scattered over 16");
}

// The property sticky sessions rely on, for every instance leaving in turn.
void expect_only_the_leavers_clients_move(const std::vector<std::uint64_t>& keys, int instances) {
  const auto all = indexes(instances);
  std::vector<int> before;
  for (auto key : keys) before.push_back(owner(key, all));

  for (int gone = 0; gone < instances; ++gone) {
    std::vector<int> rest;
    for (int i : all)
      if (i != gone) rest.push_back(i);
    std::vector<int> moved_to(instances);
    int moved = 0, others_moved = 0;
    std::vector<int> without;
    for (std::size_t c = 0; c < keys.size(); ++c) {
      without.push_back(owner(keys[c], rest));
      if (before[c] == gone) {
        ++moved;
        ++moved_to[without.back()];
        // Its second choice: the proxy's fallback when the first refuses.
        EXPECT_EQ(without.back(), sticky_order(keys[c], all)[1]);
      } else if (without.back() != before[c]) {
        ++others_moved;
      }
    }
    EXPECT_EQ(others_moved, 0) << "instance " << gone << " left";
    ASSERT_GT(moved, 0);
    EXPECT_EQ(moved_to[gone], 0);
    // Its clients spread over all the others. Fewer clients, so a wider
    // tolerance than the full spread (16 instances: ~6250 over 15).
    moved_to.erase(moved_to.begin() + gone);
    expect_even(moved_to, moved, 0.30, "the leaver's clients");

    // Back again: exactly its own clients return to it, the rest stay.
    int returned = 0, wrong = 0;
    for (std::size_t c = 0; c < keys.size(); ++c) {
      const int back = owner(keys[c], all);
      if (back == without[c]) continue;
      if (before[c] == gone && back == gone)
        ++returned;
      else
        ++wrong;
    }
    EXPECT_EQ(returned, moved) << "instance " << gone << " came back";
    EXPECT_EQ(wrong, 0) << "instance " << gone << " came back";
  }
}

TEST(StickyHash, RemovingAnInstanceMovesOnlyItsClientsAndAddingItBackReturnsThem) {
  expect_only_the_leavers_clients_move(scattered_keys(), 4);
  expect_only_the_leavers_clients_move(sequential_keys(), 16);
}

TEST(StickyHash, OrderIsAPermutationOfTheCandidatesWhateverTheirOrder) {
  const std::uint64_t key = sticky_key("198.51.100.23");
  const std::vector<int> forward{0, 1, 2, 3, 4, 5, 6, 7};
  const std::vector<int> backward{7, 6, 5, 4, 3, 2, 1, 0};
  const auto order = sticky_order(key, forward);
  EXPECT_EQ(order, sticky_order(key, backward));
  auto sorted = order;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, forward);
  for (std::size_t i = 1; i < order.size(); ++i)
    EXPECT_GT(sticky_score(key, order[i - 1]), sticky_score(key, order[i]));
}

TEST(StickyHash, NoCandidatesNoOrder) {
  EXPECT_TRUE(sticky_order(sticky_key("x"), {}).empty());
}

// Equal scores (here: the same index twice) keep the lower index first,
// and nothing is dropped.
TEST(StickyHash, TiesKeepEveryCandidate) {
  const std::vector<int> twice{3, 1, 3};
  const auto order = sticky_order(sticky_key("x"), twice);
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(std::count(order.begin(), order.end(), 3), 2);
}

TEST(StickyHash, KeysDependOnEveryByteAndTheLength) {
  EXPECT_NE(sticky_key(""), sticky_key(std::string(1, '\0')));
  EXPECT_NE(sticky_key(std::string(1, '\0')), sticky_key(std::string(2, '\0')));
  EXPECT_NE(sticky_key(ipv4(0x0a000001)), sticky_key(ipv4(0x0b000001)));
  EXPECT_NE(sticky_key(ipv4(0x0a000001)), sticky_key(ipv4(0x0a000002)));
}

// Pinned: these values decide which instance every client of every vigil
// reaches. A change here moves all clients at an upgrade; make it only on
// purpose, and say so in the release notes.
TEST(StickyHash, ValuesArePinnedAcrossMachinesAndVersions) {
  EXPECT_EQ(sticky_key(""), 0xf52a15e9a9b5e89bull);
  EXPECT_EQ(sticky_key(ipv4(0x7f000001)), 0xd9bb6fcf42ed313aull);
  EXPECT_EQ(sticky_key("203.0.113.7"), 0x8b5400148f00275dull);
  EXPECT_EQ(sticky_score(sticky_key(ipv4(0x7f000001)), 0), 0x77cc6e9732a0c01eull);
  EXPECT_EQ(sticky_score(sticky_key(ipv4(0x7f000001)), 1), 0x16bf12df0a15d620ull);
  EXPECT_EQ(sticky_score(sticky_key("203.0.113.7"), 15), 0x482307fa65b11315ull);
  EXPECT_EQ(sticky_score(0, 0), 0x48218226ff3cd4bfull);
}

}  // namespace
}  // namespace vigil
