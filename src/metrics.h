// Renders the Prometheus text format (0.0.4) of DESIGN.md's metrics table
// from snapshots, with prometheus-cpp's MetricFamily and TextSerializer.
// Built fresh per scrape, so a removed program's series are simply gone and
// every series of an instance exists (at 0) from its creation.
#pragma once
#include <string>
#include <vector>

#include "snapshot.h"

namespace vigil {

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string render_metrics(const std::vector<InstanceSnapshot>& instances,
                           const std::vector<WatchSnapshot>& watches, const SelfSnapshot& self);

}  // namespace vigil
