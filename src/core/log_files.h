// Where a program's output is logged, and `vigil logs`' merge of several
// log files into one stream ordered by time. Pure.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"

namespace vigil {

// NAME.out.log / NAME.err.log (NAME.log when combined; NAME-I... with
// several instances) in `log_dir`; empty with log = "off".
std::filesystem::path log_file_path(const std::filesystem::path& log_dir, const ProgramConfig& program,
                                    int index, bool stderr_stream);

// The timestamp a log line starts with ("2026-12-06T04:33:12.123 ", as the
// log files write it), or empty.
std::string_view line_timestamp(std::string_view line);

struct LogLine {
  std::size_t source = 0;  // which input it came from
  std::string text;
};

// The lines of several files (each in its own order) as one sequence in
// time order: a k-way merge on the timestamps, so each file's own order is
// kept whatever its stamps say; a line without a stamp (timestamps = false,
// or a continuation) goes with the stamp of the line before it in its file;
// ties keep the inputs' order.
std::vector<LogLine> merge_by_time(std::vector<std::vector<std::string>> inputs);

}  // namespace vigil
