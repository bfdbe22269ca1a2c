// Renders the Prometheus text format (0.0.4) of DESIGN.md's metrics table
// from snapshots, with prometheus-cpp's MetricFamily and TextSerializer.
// Built from the snapshots of each scrape, so a removed program's series are
// simply gone and every series of an instance exists (at 0) from its
// creation.
//
// Serializing is most of a scrape's cost (prometheus-cpp writes through
// std::ostream, a few insertions per label), yet between two scrapes most
// values do not move: restarts, exits, states, limits. MetricsRenderer keeps
// the text of each per-instance family with the values it was made from and
// serializes again only the families whose values (or set of instances)
// changed.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "snapshot.h"

namespace vigil {

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

class MetricsRenderer {
 public:
  std::string render(const std::vector<InstanceSnapshot>& instances,
                     const std::vector<WatchSnapshot>& watches, const SelfSnapshot& self);

  // Per-instance families the last render serialized; the others reused
  // their text from the render before.
  std::size_t families_serialized() const { return serialized_; }

 private:
  struct Family {
    std::vector<std::uint64_t> values;  // the bits of every value, absent ones marked
    std::string text;                   // "" when the family has no series
    bool valid = false;
  };
  std::vector<std::pair<std::string, int>> instances_;  // program, index of the cached text
  std::vector<Family> families_;
  std::vector<std::uint64_t> scratch_;
  std::size_t last_size_ = 0;
  std::size_t serialized_ = 0;
};

// One render with nothing to reuse.
std::string render_metrics(const std::vector<InstanceSnapshot>& instances,
                           const std::vector<WatchSnapshot>& watches, const SelfSnapshot& self);

}  // namespace vigil
