// The shared integration-test harness (see harness.h).
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/details/null_mutex.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "config_parse.h"
#include "import_config.h"
#include "spawn.h"

namespace vigil::it {

// ---------------------------------------------------------------------------
// Binaries, TOML text

std::string vigil_binary() { return VIGIL_BINARY; }
std::string helper_binary() { return CHILD_HELPER; }
fs::path source_dir() { return VIGIL_SOURCE_DIR; }

std::optional<std::string> sd_notify_child_binary() {
#ifdef SD_NOTIFY_CHILD
  return std::string(SD_NOTIFY_CHILD);
#else
  return std::nullopt;
#endif
}

std::string toml_string(std::string_view text) { return vigil::toml_string(text); }

std::string toml_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += toml_string(items[i]);
  }
  return out + "]";
}

std::string helper_command(const std::vector<std::string>& args) {
  std::vector<std::string> argv{helper_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return toml_array(argv);
}

std::string helper_program(std::string_view name, const std::vector<std::string>& args,
                           std::string_view extra) {
  std::string out = "[programs." + std::string(name) + "]\ncommand = " + helper_command(args) + "\n";
  out += extra;
  if (!extra.empty() && extra.back() != '\n') out += '\n';
  return out + "\n";
}

// ---------------------------------------------------------------------------
// Files

TempDir::TempDir() {
  char tmpl[] = "/tmp/vigil-it-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

fs::path TempDir::write(const fs::path& rel, std::string_view text) const {
  fs::path p = path_ / rel;
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
  return p;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::string text = read_file(path);
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (;;) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) break;
    lines.emplace_back(text, start, nl - start);
    start = nl + 1;
  }
  return lines;
}

std::vector<pid_t> read_pids(const fs::path& path) {
  std::vector<pid_t> pids;
  for (const auto& l : read_lines(path)) pids.push_back(static_cast<pid_t>(std::stol(l)));
  return pids;
}

std::optional<std::string> strip_timestamp(std::string_view line) {
  // "2026-11-23T12:47:07.123 " — checked by hand: std::regex is far too slow
  // for the 200,000-line logs some tests read.
  constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.ddd ";
  if (line.size() < kShape.size()) return std::nullopt;
  for (std::size_t i = 0; i < kShape.size(); ++i) {
    const char c = line[i];
    if (kShape[i] == 'd' ? (c < '0' || c > '9') : c != kShape[i]) return std::nullopt;
  }
  return std::string(line.substr(kShape.size()));
}

std::string flood_line(long n) {
  char head[32];
  int len = std::snprintf(head, sizeof head, "line %07ld ", n);
  std::string line(head, static_cast<std::size_t>(len));
  line.append(99 - line.size(), 'x');
  return line;
}

ScopedEnv::ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
  if (const char* old = ::getenv(name_.c_str())) old_ = old;
  ::setenv(name_.c_str(), value.c_str(), 1);
}

ScopedEnv::~ScopedEnv() {
  if (old_)
    ::setenv(name_.c_str(), old_->c_str(), 1);
  else
    ::unsetenv(name_.c_str());
}

// ---------------------------------------------------------------------------
// Waiting

bool poll_until(const std::function<bool()>& pred, Duration timeout, Duration interval) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (SteadyClock::now() >= deadline) return pred();
    std::this_thread::sleep_for(interval);
  }
}

// ---------------------------------------------------------------------------
// Processes

char process_state(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  // "pid (comm) S ...": comm may hold spaces and parens; the last ')' ends it.
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return 0;
  return stat[close + 2];
}

bool process_gone(pid_t pid) { return ::kill(pid, 0) < 0 && errno == ESRCH; }

bool process_dead(pid_t pid) {
  if (process_gone(pid)) return true;
  char s = process_state(pid);
  return s == 0 || s == 'Z' || s == 'X';
}

std::optional<std::uint64_t> status_kib(pid_t pid, std::string_view field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string prefix = std::string(field) + ":";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) != 0) continue;
    return std::stoull(line.substr(prefix.size()));  // "   1234 kB"
  }
  return std::nullopt;
}

std::string exe_of(pid_t pid) {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
  return ec ? std::string() : exe.string();
}

pid_t start_test_process(const std::vector<std::string>& argv_text, const fs::path& cwd,
                         int out_fd, int err_fd, const std::vector<std::string>* env) {
  std::vector<std::string> args = argv_text;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_text = env ? *env : std::vector<std::string>{};
  std::vector<char*> envp;
  for (auto& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string dir = cwd.string();
  const int null_in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Whatever an earlier in-process test left in this process's signal
    // state must not reach the child.
    for (int sig = 1; sig < NSIG; ++sig)
      if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Never outlive the test.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(null_in, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::close_range(3, ~0U, 0);
    if (::chdir(dir.c_str()) < 0) ::_exit(127);
    if (env)
      ::execve(argv[0], argv.data(), envp.data());
    else
      ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  const int fork_errno = errno;
  if (null_in >= 0) ::close(null_in);
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(fork_errno));
  return pid;
}

// ---------------------------------------------------------------------------
// Sockets

bool send_datagram(const fs::path& path, std::string_view message) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof sa.sun_path) return false;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  ssize_t n = ::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL,
                       reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
  ::close(fd);
  return n == static_cast<ssize_t>(message.size());
}

UniqueFd connect_loopback(std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return UniqueFd();
  return fd;
}

namespace {

bool bindable(std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return fd && ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
}

// The first port of the kernel's ephemeral range (source ports of outgoing
// connections). A server port inside it can be taken, while its server is
// down for a restart, as the source port of any connection the test or the
// proxy opens, and the restarted server then fails to bind.
std::uint16_t ephemeral_low() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  unsigned low = 32768;
  in >> low;
  return static_cast<std::uint16_t>(std::clamp(low, 1025u, 65535u));
}

}  // namespace

// A free port below the ephemeral range, chosen at random so that tests
// running in parallel rarely try the same one (and bind-checked).
std::uint16_t free_port() {
  static std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
  const std::uint16_t high = ephemeral_low();
  const std::uint16_t low = high > 12000 ? 10000 : 1024;
  std::uniform_int_distribution<unsigned> pick(low, high - 1u);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const auto port = static_cast<std::uint16_t>(pick(rng));
    if (bindable(port)) return port;
  }
  throw std::runtime_error("no free port");
}

std::pair<std::uint16_t, std::uint16_t> free_ports() {
  const std::uint16_t a = free_port();
  std::uint16_t b = free_port();
  while (b == a) b = free_port();
  return {a, b};
}

std::uint16_t free_port_run(int n) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    const std::uint16_t base = free_port();
    if (base + n > ephemeral_low()) continue;
    bool all = true;
    for (int i = 1; i < n && all; ++i) all = bindable(static_cast<std::uint16_t>(base + i));
    if (all) return base;
  }
  throw std::runtime_error("no run of free ports");
}

// ---------------------------------------------------------------------------
// File descriptors

std::map<int, std::string> open_fds() {
  std::map<int, std::string> fds;
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return fds;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int fd = std::atoi(e->d_name);
    if (fd == ::dirfd(d)) continue;
    char target[512];
    std::string link = "/proc/self/fd/" + std::string(e->d_name);
    ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
    fds[fd] = n > 0 ? std::string(target, static_cast<std::size_t>(n)) : "?";
  }
  ::closedir(d);
  return fds;
}

// spawn() keeps a few fds for good: taken before the first baseline, they
// are no leak of whichever test spawns first.
// Slots for up to 4 held sockets, more than any test program has: taken
// once, for good, at the first spawn that needs them, they are no leak.
FdLeakCheck::FdLeakCheck() : before_((prepare_spawning(4), open_fds())) {}

std::string FdLeakCheck::leaks() const {
  std::string out;
  for (const auto& [fd, target] : open_fds()) {
    auto it = before_.find(fd);
    if (it == before_.end() || it->second != target)
      out += "fd " + std::to_string(fd) + " -> " + target + "\n";
  }
  return out;
}

// ---------------------------------------------------------------------------
// vigil in-process

namespace {

// vigil's log lines go into a string the test can search, and to stderr so
// that a failing test shows what vigil said.
class CaptureSink : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  explicit CaptureSink(std::shared_ptr<std::string> text) : text_(std::move(text)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    text_->append(formatted.data(), formatted.size());
    std::fwrite(formatted.data(), 1, formatted.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }

 private:
  std::shared_ptr<std::string> text_;
};

}  // namespace

InProcessVigil::InProcessVigil(const TempDir& dir, std::string_view toml,
                               std::string_view file_name) {
  fs::path file = dir.write(file_name, toml);
  ConfigParseResult parsed = parse_config(toml, file.string());
  if (!parsed.ok()) {
    for (const auto& e : parsed.errors) errors_ += e.to_string() + "\n";
    return;
  }
  log_text_ = std::make_shared<std::string>();
  previous_logger_ = spdlog::default_logger();
  auto logger =
      std::make_shared<spdlog::logger>("vigil-under-test", std::make_shared<CaptureSink>(log_text_));
  logger->set_pattern("%H:%M:%S.%e vigil %l: %v");
  logger->set_level(spdlog::level::debug);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);

  ::prctl(PR_GET_CHILD_SUBREAPER, &previous_subreaper_);
  loop_ = std::make_unique<EventLoop>();
  try {
    supervisor_ = std::make_unique<Supervisor>(*loop_, std::move(parsed.config));
  } catch (const std::exception& e) {
    // What stops `vigil run` from starting (a `listen` socket it cannot
    // bind): not ok(), the reason in errors(), the process as it was.
    errors_ = std::string(e.what()) + "\n";
    loop_.reset();
    ::prctl(PR_SET_CHILD_SUBREAPER, previous_subreaper_);
    spdlog::set_default_logger(previous_logger_);
  }
}

InProcessVigil::~InProcessVigil() {
  if (!supervisor_) return;
  if (!supervisor_->shutting_down()) {
    if (!shutdown()) std::fprintf(stderr, "harness: vigil did not shut down in time\n");
  } else if (!shut_down_) {
    // The test began a shutdown of its own: let it finish (bounded).
    run_until([this] {
      for (const auto& p : supervisor_->programs())
        if (!p->all_down()) return false;
      return true;
    });
  }
  // Instances SIGKILL whatever still runs as they are destroyed.
  supervisor_.reset();
  loop_.reset();
  ::prctl(PR_SET_CHILD_SUBREAPER, previous_subreaper_);
  spdlog::set_default_logger(previous_logger_);
}

Program& InProcessVigil::program(std::string_view name) {
  Program* p = supervisor_->find(name);
  if (!p) throw std::out_of_range("no program " + std::string(name));
  return *p;
}

Instance& InProcessVigil::instance(std::string_view name, int index) {
  return *program(name).instances().at(static_cast<std::size_t>(index));
}

fs::path InProcessVigil::log_path(std::string_view name, int index, Stream stream) {
  return program(name).log_path(index, stream);
}

bool InProcessVigil::run_until(const std::function<bool()>& pred, Duration timeout) {
  return loop_->run_until(pred, timeout);
}

bool InProcessVigil::wait_state(std::string_view name, State state, int index, Duration timeout) {
  Instance& i = instance(name, index);
  return run_until([&] { return i.state() == state; }, timeout);
}

std::optional<int> InProcessVigil::shutdown(Duration timeout) {
  // Shared, not on this stack: if the deadline passes, the supervisor may
  // still call back later (from the destructor's own shutdown wait).
  auto result = std::make_shared<std::optional<int>>();
  supervisor_->shutdown([result](int code) { *result = code; });
  run_until([&] { return result->has_value(); }, timeout);
  if (result->has_value()) shut_down_ = true;
  return *result;
}

std::string InProcessVigil::log_text() const { return log_text_ ? *log_text_ : std::string(); }

bool InProcessVigil::wait_for_log(std::string_view needle, Duration timeout) {
  return run_until([&] { return log_text_->find(needle) != std::string::npos; }, timeout);
}

// ---------------------------------------------------------------------------
// vigil as the real binary

VigilProcess::VigilProcess(const TempDir& dir, const std::vector<std::string>& args,
                           std::string_view output_name, const std::vector<std::string>& wrapper)
    : output_path_(dir / output_name) {
  std::vector<std::string> argv = wrapper;
  argv.push_back(vigil_binary());
  argv.insert(argv.end(), args.begin(), args.end());
  UniqueFd out(::open(output_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out) throw std::runtime_error("cannot create " + output_path_.string());
  pid_ = start_test_process(argv, dir.path(), out.get(), out.get());
}

std::unique_ptr<VigilProcess> VigilProcess::run(const TempDir& dir, const fs::path& config) {
  return std::make_unique<VigilProcess>(dir,
                                        std::vector<std::string>{"run", "-c", config.string()});
}

VigilProcess::~VigilProcess() {
  if (!running()) return;
  // SIGTERM first: vigil stops its programs' whole trees. SIGKILL would
  // leave grandchildren behind (only the direct children have a
  // parent-death signal).
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (running() && std::chrono::steady_clock::now() < deadline) {
    pollfd none{};
    ::poll(&none, 0, 10);
  }
  if (running()) {
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

bool VigilProcess::running() {
  if (exit_code_ || pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    return false;
  }
  return r == 0;
}

bool VigilProcess::wait_for_output(std::string_view needle, Duration timeout) {
  return poll_until([&] { return output().find(needle) != std::string::npos; }, timeout);
}

bool VigilProcess::wait_for_output_count(std::string_view needle, int count, Duration timeout) {
  return poll_until(
      [&] {
        std::string text = output();
        int n = 0;
        for (auto at = text.find(needle); at != std::string::npos;
             at = text.find(needle, at + needle.size()))
          ++n;
        return n >= count;
      },
      timeout);
}

bool VigilProcess::wait_for_output(const std::regex& re, Duration timeout) {
  return poll_until([&] { return std::regex_search(output(), re); }, timeout);
}

void VigilProcess::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

std::optional<int> VigilProcess::wait_exit(Duration timeout) {
  poll_until([&] { return !running(); }, timeout);
  return exit_code_;
}

CommandResult run_vigil(const TempDir& dir, const std::vector<std::string>& args,
                        Duration timeout) {
  static int counter = 0;
  VigilProcess p(dir, args, "vigil-command-" + std::to_string(++counter) + ".output");
  CommandResult r;
  r.exit_code = p.wait_exit(timeout).value_or(-1);
  r.output = p.output();
  return r;
}

// ---------------------------------------------------------------------------
// Fixtures

void InProcessTest::start_vigil(std::string_view toml) {
  vigil_ = std::make_unique<InProcessVigil>(dir_, toml);
  ASSERT_TRUE(vigil_->ok()) << vigil_->errors();
  vigil_->start();
}

void InProcessTest::TearDown() {
  vigil_.reset();
  EXPECT_EQ(fds_.leaks(), "") << "fds opened during the test and still open";
}

VigilProcess& BinaryTest::run_vigil_with(std::string_view toml) {
  vigil_ = VigilProcess::run(dir_, write_config(toml));
  return *vigil_;
}

void BinaryTest::TearDown() {
  vigil_.reset();
  EXPECT_EQ(fds_.leaks(), "") << "fds opened during the test and still open";
}

bool has_line(const std::vector<std::string>& lines, std::string_view want) {
  return std::find(lines.begin(), lines.end(), want) != lines.end();
}

std::optional<std::string> value_after(const std::vector<std::string>& lines,
                                       std::string_view prefix) {
  for (const auto& l : lines)
    if (std::string_view(l).starts_with(prefix)) return l.substr(prefix.size());
  return std::nullopt;
}

std::vector<std::string> wait_for_line(InProcessVigil& vigil, const fs::path& path,
                                       std::string_view marker) {
  std::vector<std::string> lines;
  vigil.run_until([&] {
    lines = read_lines(path);
    return has_line(lines, marker);
  });
  return lines;
}

}  // namespace vigil::it
