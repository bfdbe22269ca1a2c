// Rendezvous hashing for the sticky proxy: FNV-1a over the identity's bytes
// and splitmix64's finalizer to spread it, then one more splitmix64 round per
// (key, index). Written out here rather than std::hash, whose values may
// differ between machines and library versions: a client must land on the
// same instance after vigil is upgraded.
#include "sticky_hash.h"

#include <algorithm>

namespace vigil {

namespace {

// splitmix64's output function (Steele, Lea, Flood 2014): a bijection on
// 64 bits in which every input bit flips each output bit with probability
// close to 1/2.
constexpr std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

constexpr std::uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr std::uint64_t kFnvPrime = 0x100000001b3ull;
// The golden-ratio increment of splitmix64: index 0 does not mix to 0.
constexpr std::uint64_t kIndexSeed = 0x9e3779b97f4a7c15ull;

}  // namespace

std::uint64_t sticky_key(std::string_view identity) {
  std::uint64_t h = kFnvOffset;
  for (char c : identity) h = (h ^ static_cast<unsigned char>(c)) * kFnvPrime;
  // FNV-1a alone leaves short inputs (a 4-byte address) poorly spread in
  // the high bits; the length keeps "" and "\0" apart.
  return mix64(h ^ identity.size());
}

std::uint64_t sticky_score(std::uint64_t key, int index) {
  // The index is mixed on its own first, so that neighbouring indexes give
  // unrelated values before they meet the key.
  const auto i = static_cast<std::uint64_t>(static_cast<std::int64_t>(index));
  return mix64(key ^ mix64(i + kIndexSeed));
}

std::vector<int> sticky_order(std::uint64_t key, std::span<const int> candidates) {
  std::vector<std::pair<std::uint64_t, int>> scored;
  scored.reserve(candidates.size());
  for (int index : candidates) scored.emplace_back(sticky_score(key, index), index);
  std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first > b.first;
    return a.second < b.second;
  });
  std::vector<int> order;
  order.reserve(scored.size());
  for (const auto& s : scored) order.push_back(s.second);
  return order;
}

}  // namespace vigil
