// Renders the Prometheus text format (0.0.4) of DESIGN.md's metrics table
// from snapshots. Built from the snapshots of each scrape, so a removed
// program's series are simply gone and every series of an instance exists
// (at 0) from its creation.
//
// The per-instance families, nearly every series with thousands of
// instances, are written straight into the text, each instance's labels
// escaped once; vigil's own and the per-program families, a few dozen
// series, go through prometheus-cpp's MetricFamily and TextSerializer, whose
// text the direct writing matches byte for byte (a unit test holds the two
// side by side). Between two scrapes most values do not move (restarts,
// exits, states, limits): MetricsRenderer keeps the text of each
// per-instance family with the values it was made from and writes again only
// the families whose values (or set of instances) changed.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "snapshot.h"

namespace vigil {

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// An exposition in pieces: the cached text of each per-instance family,
// shared with the renderer (which writes a new one rather than change a
// piece still held), then vigil's own families. An HTTP answer sends the
// pieces as they are, without joining megabytes into one more copy.
struct MetricsText {
  std::vector<std::shared_ptr<const std::string>> parts;
  std::size_t size() const;
  std::string joined() const;
};

class MetricsRenderer {
 public:
  MetricsText render_parts(const std::vector<InstanceSnapshot>& instances,
                           const std::vector<WatchSnapshot>& watches, const SelfSnapshot& self);
  // The same, joined.
  std::string render(const std::vector<InstanceSnapshot>& instances,
                     const std::vector<WatchSnapshot>& watches, const SelfSnapshot& self);

  // Per-instance families the last render serialized; the others reused
  // their text from the render before.
  std::size_t families_serialized() const { return serialized_; }

 private:
  struct Family {
    std::vector<std::uint64_t> values;  // the bits of every value, absent ones marked
    std::shared_ptr<std::string> text;  // "" when the family has no series
    bool valid = false;
  };
  std::vector<std::pair<std::string, int>> instances_;  // program, index of the cached text
  std::vector<std::string> labels_;  // each instance's `index="I",program="P"`
  std::vector<Family> families_;
  std::vector<std::uint64_t> scratch_;
  std::size_t serialized_ = 0;
};

// A sample value as TextSerializer writes it: printf's %.16g, Nan, +Inf, -Inf.
void append_prometheus_value(std::string& out, double v);
// A label value escaped for the text format (\\, \", \n).
void append_label_value(std::string& out, std::string_view v);

// One render with nothing to reuse.
std::string render_metrics(const std::vector<InstanceSnapshot>& instances,
                           const std::vector<WatchSnapshot>& watches, const SelfSnapshot& self);

}  // namespace vigil
