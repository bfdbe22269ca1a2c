// How deep a TOML text nests, measured before toml++ parses it: toml++
// builds, walks and destroys its tree recursively and bounds only nested
// arrays and inline tables (256), not dotted keys, so a header of 40,000
// dotted keys overflows the stack. Pure: a single pass over the text.
#pragma once
#include <cstddef>
#include <optional>
#include <string_view>

namespace vigil {

struct TextPosition {
  int line = 1;    // 1-based
  int column = 1;  // 1-based, in code points (as toml++ counts them)
};

// The depth of a node: each key of a table header or of a dotted key, and
// each array or inline table a value opens, is one level below its parent
// (the table of an [[array]] header is not counted: real depth is at most
// twice this). Returns where the first node deeper than `max_depth` starts,
// or nullopt. On valid TOML it meets every node toml++ builds. On invalid
// text toml++ stops at the first error, and up to there both read the text
// alike; past it this scan goes on (bounded, never failing) and may count
// nodes toml++ never builds.
std::optional<TextPosition> find_too_deep(std::string_view text, std::size_t max_depth);

// The line and column of byte `offset` of `text`.
TextPosition position_of(std::string_view text, std::size_t offset);

}  // namespace vigil
