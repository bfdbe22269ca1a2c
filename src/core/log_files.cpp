#include "log_files.h"

#include <queue>
#include <tuple>

namespace vigil {

std::filesystem::path log_file_path(const std::filesystem::path& log_dir, const ProgramConfig& program,
                                    int index, bool stderr_stream) {
  if (program.log == LogMode::off) return {};
  std::string base = program.name;
  if (program.instances > 1) base += "-" + std::to_string(index);
  if (program.log == LogMode::combined) return log_dir / (base + ".log");
  return log_dir / (base + (stderr_stream ? ".err.log" : ".out.log"));
}

std::string_view line_timestamp(std::string_view line) {
  // YYYY-MM-DDTHH:MM:SS.mmm followed by a space
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.ddd ";
  if (line.size() < kShape.size()) return {};
  for (std::size_t i = 0; i < kShape.size(); ++i) {
    const char want = kShape[i];
    const char c = line[i];
    if (want == 'd' ? (c < '0' || c > '9') : c != want) return {};
  }
  return line.substr(0, kShape.size() - 1);
}

std::vector<LogLine> merge_by_time(std::vector<std::vector<std::string>> inputs) {
  // Each input's head: (stamp, input, position). The stamp a line sorts by
  // is its own, or the last one seen before it in its input.
  struct Head {
    std::string stamp;  // a copy: the line itself moves to the output
    std::size_t input;
    std::size_t at;
    bool operator>(const Head& o) const {
      return std::tie(stamp, input, at) > std::tie(o.stamp, o.input, o.at);
    }
  };
  std::vector<std::string> last(inputs.size());
  std::priority_queue<Head, std::vector<Head>, std::greater<>> heads;
  auto push = [&](std::size_t input, std::size_t at) {
    if (at >= inputs[input].size()) return;
    const std::string_view own = line_timestamp(inputs[input][at]);
    if (!own.empty()) last[input] = own;
    heads.push({last[input], input, at});
  };
  std::size_t total = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    total += inputs[i].size();
    push(i, 0);
  }
  std::vector<LogLine> out;
  out.reserve(total);
  while (!heads.empty()) {
    const Head h = heads.top();  // a copy: pop() destroys the top
    heads.pop();
    out.push_back({h.input, std::move(inputs[h.input][h.at])});
    push(h.input, h.at + 1);
  }
  return out;
}

}  // namespace vigil
