// Reads from the end backwards in blocks, so a 1 GiB log costs a few reads.
#include "log_tail.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "fd.h"
#include "log_files.h"

namespace vigil {

std::vector<std::string> last_lines(const std::filesystem::path& file, std::size_t n) {
  std::vector<std::string> out;
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd || n == 0) return out;
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return out;
  off_t end = st.st_size;
  std::string tail;  // bytes from `pos` to the end
  off_t pos = end;
  constexpr off_t kBlock = 64 * 1024;
  auto count_lines = [&] {
    std::size_t c = static_cast<std::size_t>(std::count(tail.begin(), tail.end(), '\n'));
    // A last line without its newline counts too.
    if (!tail.empty() && tail.back() != '\n') ++c;
    return c;
  };
  while (pos > 0 && count_lines() <= n) {
    off_t take = std::min(kBlock, pos);
    pos -= take;
    std::string block(static_cast<std::size_t>(take), '\0');
    if (::pread(fd.get(), block.data(), block.size(), pos) != take) break;
    tail.insert(0, block);
  }
  std::size_t start = 0;
  std::vector<std::string> lines;
  while (start < tail.size()) {
    auto nl = tail.find('\n', start);
    if (nl == std::string::npos) nl = tail.size();
    lines.push_back(tail.substr(start, nl - start));
    start = nl + 1;
  }
  // The first piece may be a partial line when we did not read from 0.
  if (pos > 0 && !lines.empty()) lines.erase(lines.begin());
  if (lines.size() > n) lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(n));
  return lines;
}

namespace {

struct Followed {
  TailFile file;
  UniqueFd fd;
  ino_t inode = 0;
  std::string partial;
};

void open_at(Followed& f, bool at_end) {
  f.fd.reset(::open(f.file.path.c_str(), O_RDONLY | O_CLOEXEC));
  f.partial.clear();
  if (!f.fd) return;
  struct stat st;
  ::fstat(f.fd.get(), &st);
  f.inode = st.st_ino;
  if (at_end) ::lseek(f.fd.get(), 0, SEEK_END);
}

// Appends the complete lines that came since the last read.
bool drain(Followed& f, std::vector<std::string>& lines) {
  if (!f.fd) return false;
  bool any = false;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(f.fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    f.partial.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0, nl;
    while ((nl = f.partial.find('\n', start)) != std::string::npos) {
      lines.emplace_back(f.partial, start, nl - start);
      start = nl + 1;
      any = true;
    }
    f.partial.erase(0, start);
  }
  return any;
}

void print_merged(const std::vector<TailFile>& files, std::vector<std::vector<std::string>> lines,
                  std::size_t keep_last, std::FILE* out) {
  std::vector<LogLine> merged = merge_by_time(std::move(lines));
  const std::size_t skip = merged.size() > keep_last ? merged.size() - keep_last : 0;
  for (std::size_t i = skip; i < merged.size(); ++i)
    std::fprintf(out, "%s%s\n", files[merged[i].source].prefix.c_str(), merged[i].text.c_str());
}

}  // namespace

void tail_logs(const std::vector<TailFile>& files, std::size_t n, bool follow, std::FILE* out,
               const std::function<bool()>& keep_going) {
  std::vector<std::vector<std::string>> last;
  for (const auto& f : files) last.push_back(last_lines(f.path, n));
  print_merged(files, std::move(last), n, out);
  std::fflush(out);
  if (!follow) return;
  std::vector<Followed> followed;
  for (const auto& f : files) {
    followed.push_back(Followed{f, {}, 0, {}});
    open_at(followed.back(), true);
  }
  while (keep_going()) {
    bool any = false;
    std::vector<std::vector<std::string>> fresh(followed.size());
    for (std::size_t i = 0; i < followed.size(); ++i) {
      Followed& f = followed[i];
      any |= drain(f, fresh[i]);
      // Rotated or recreated: finish the old file, continue with the new one.
      struct stat st;
      if (::stat(f.file.path.c_str(), &st) == 0 && (!f.fd || st.st_ino != f.inode)) {
        any |= drain(f, fresh[i]);
        open_at(f, false);
        any |= drain(f, fresh[i]);
      }
    }
    if (any) {
      print_merged(files, std::move(fresh), ~std::size_t{0}, out);
      std::fflush(out);
    }
    // The CLI polls files; it has no loop to wake it.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace vigil
