// The sticky proxy's routing decision, pure: rendezvous (highest random
// weight) hashing of a client key over instance indexes. Each (key, index)
// pair gets a score; a client goes to the routable instance with the highest
// score, and when that one cannot take it, to the next. So when an instance
// leaves, only its own clients move (each to its second choice), and when it
// comes back they return; the others never move.
#pragma once
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace vigil {

// A client's key: a 64-bit hash of what identifies it (the raw bytes of its
// IPv4/IPv6 address, or the text of its X-Forwarded-For client).
std::uint64_t sticky_key(std::string_view identity);

// The score of instance `index` for `key` (well mixed; equal inputs, equal
// score, on every machine and across vigil versions).
std::uint64_t sticky_score(std::uint64_t key, int index);

// `candidates` (instance indexes, any order) in the order to try for `key`:
// highest score first; ties (practically never) by lower index.
std::vector<int> sticky_order(std::uint64_t key, std::span<const int> candidates);

}  // namespace vigil
