// For `hash = "x-forwarded-for"`: the client a load balancer in front of
// vigil names in the first request of a connection, peeked at without
// consuming anything (the proxy forwards the bytes unchanged). Pure and
// incremental in the simplest way: it is given every byte seen so far.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace vigil {

struct ForwardedFor {
  enum class Status {
    need_more,  // the request head is not complete yet and the bound not reached
    found,      // `client` holds the first (leftmost) X-Forwarded-For entry, trimmed
    absent,     // no such header in a complete head, not HTTP, or the bound was reached
  };
  Status status = Status::need_more;
  std::string client;
};

// `head`: the first bytes the client sent; at most `limit` of them are
// looked at (beyond that: absent, and the proxy hashes the peer address).
// Header names match case-insensitively; several X-Forwarded-For headers:
// the first one's first entry.
ForwardedFor peek_forwarded_for(std::string_view head, std::size_t limit = 8192);

}  // namespace vigil
