// `vigil logs`: the last lines of log files merged by time, and following them
// across rotation (a new file at the path: the rest of the old one is read
// first, then the new one from its start). Runs in the CLI, not the loop.
#pragma once
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace vigil {

struct TailFile {
  std::filesystem::path path;
  std::string prefix;  // printed before each line ("web[1] err | "), may be empty
};

// The last `n` lines of `file` (fewer if it has fewer).
std::vector<std::string> last_lines(const std::filesystem::path& file, std::size_t n);

// Prints the last n lines of all the files together, merged by their
// timestamps (merge_by_time), then, when follow is set, new lines as they
// come, each poll's lines merged the same way, until keep_going() returns
// false (checked every poll).
void tail_logs(const std::vector<TailFile>& files, std::size_t n, bool follow, std::FILE* out,
               const std::function<bool()>& keep_going);

}  // namespace vigil
