// `vigil upgrade`: the checks, the state into a memory file, the exec.
#include "upgrade.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cctype>
#include <cstring>
#include <fstream>

#include <spdlog/spdlog.h>

#include "config_diff.h"
#include "config_inputs.h"
#include "config_parse.h"
#include "handover.h"
#include "version.h"

extern char** environ;

namespace vigil {

namespace {

// How long `NEW version` and `NEW check` may take, each.
constexpr auto kCheckTimeout = std::chrono::seconds(30);
// The largest state read back (a thousand instances take well under 2 MiB).
constexpr std::size_t kMaxState = 64u << 20;

// The signals vigil handles, blocked from just before the exec until the
// new vigil has its handlers: one arriving in between waits rather than
// kills (SIGTERM, SIGHUP and SIGUSR1's default is to terminate).
sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD}) sigaddset(&set, sig);
  return set;
}

std::string percent_decode(const std::string& in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() &&
        std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out += static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16));
      i += 2;
      continue;
    }
    out += in[i] == '+' ? ' ' : in[i];
  }
  return out;
}

std::uint64_t image_id() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

}  // namespace

void unblock_handled_signals() {
  sigset_t set = handled_signals();
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
}

namespace {

template <class Match>
UniqueFd find_inherited_listener(Match match) {
  for (int fd : inherited_fds()) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_storage ss{};
    socklen_t slen = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &slen) != 0) continue;
    if (!match(ss)) continue;
    return take_inherited_fd(fd);
  }
  return UniqueFd();
}

}  // namespace

UniqueFd find_inherited_unix_listener(const std::filesystem::path& path) {
  return find_inherited_listener([&](const sockaddr_storage& ss) {
    if (ss.ss_family != AF_UNIX) return false;
    const auto& un = reinterpret_cast<const sockaddr_un&>(ss);
    return path.string() == std::string(un.sun_path, strnlen(un.sun_path, sizeof un.sun_path));
  });
}

UniqueFd find_inherited_tcp_listener(std::uint16_t port) {
  return find_inherited_listener([&](const sockaddr_storage& ss) {
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(ss).sin_port) == port;
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(ss).sin6_port) == port;
    return false;
  });
}

HandoverIn read_handover(int fd) {
  HandoverIn in;
  std::string text;
  char buf[65536];
  ::lseek(fd, 0, SEEK_SET);
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxState) break;
  }
  ::close(fd);
  if (text.size() > kMaxState) {
    in.error = "the state is larger than " + std::to_string(kMaxState) + " bytes";
    return in;
  }
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) {
    in.error = "the state is not JSON";
    return in;
  }
  if (doc.is_object()) {
    in.from_version = doc.value("vigil_version", std::string());
    // Read from any format: how many upgrades so far, and which attempt
    // this is, so that counts and `vigil upgrade` still follow.
    if (auto it = doc.find("upgrades"); it != doc.end() && it->is_object()) {
      in.counts.handover = it->value("handover", std::uint64_t{0});
      in.counts.adopted = it->value("adopted", std::uint64_t{0});
      in.counts.failed = it->value("failed", std::uint64_t{0});
    }
    if (auto it = doc.find("attempt"); it != doc.end() && it->is_number_unsigned())
      in.attempt = it->get<std::uint64_t>();
  }
  try {
    check_handover_format(doc);
  } catch (const HandoverError& e) {
    in.error = e.what();
    return in;
  } catch (const std::exception& e) {
    in.error = std::string("the state cannot be read: ") + e.what();
    return in;
  }
  in.state = std::move(doc);
  return in;
}

Upgrader::Upgrader(EventLoop& loop, Supervisor& supervisor, std::filesystem::path default_binary,
                   std::function<nlohmann::json(std::vector<int>& keep)> save_app)
    : loop_(loop),
      supervisor_(supervisor),
      default_binary_(std::move(default_binary)),
      save_app_(std::move(save_app)),
      image_(image_id()) {}

Upgrader::~Upgrader() = default;

void Upgrader::set_last(std::uint64_t attempt, std::string result, std::string error) {
  attempt_ = attempt;
  result_ = std::move(result);
  error_ = std::move(error);
}

std::string Upgrader::begin(std::filesystem::path binary, const std::string& who) {
  if (in_progress_) {
    spdlog::warn("upgrade ({}) ignored: an upgrade to {} is already under way", who, binary_.string());
    return "an upgrade is already under way";
  }
  if (binary.empty()) binary = default_binary_;
  std::error_code ec;
  binary = std::filesystem::absolute(binary, ec);
  ++attempt_;
  result_.clear();
  error_.clear();
  auto refuse = [&](std::string why) {
    fail(why);
    return why;
  };
  if (binary.empty()) return refuse("no binary to upgrade to (give --binary PATH)");
  if (::access(binary.c_str(), X_OK) != 0)
    return refuse("cannot execute " + binary.string() + ": " + std::strerror(errno));
  if (auto why = supervisor_.handover_blocker(); !why.empty())
    return refuse("cannot upgrade now: " + why);
  // The new vigil reads the config file: it must be what runs now.
  {
    const auto& path = supervisor_.config().file;
    std::ifstream file(path, std::ios::binary);
    if (!file) return refuse(path.string() + ": cannot read the config: " + std::strerror(errno));
    ConfigParseResult parsed = parse_config(read_config_text(file), path.string(), system_config_inputs());
    if (!parsed.ok())
      return refuse(path.string() + " has errors (" + parsed.errors.front().to_string() +
                    "): fix it, or the new vigil could not start");
    if (diff_config(supervisor_.config(), parsed.config).changes_anything())
      return refuse(path.string() +
                    " changed since vigil last read it: apply it first (vigil reload), then upgrade");
  }
  binary_ = binary;
  in_progress_ = true;
  spdlog::info("upgrade ({}): checking {}", who, binary_.string());
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  runner_ = std::make_unique<CommandRunner>(loop_, supervisor_.reaper(), "upgrade: check",
                                            supervisor_.config().file.parent_path(), std::move(env));
  std::vector<CommandSpec> commands(2);
  commands[0].argv = {binary_.string(), "version"};
  commands[1].argv = {binary_.string(), "check", "-c", supervisor_.config().file.string()};
  runner_->run(std::move(commands), kCheckTimeout,
               [this](const std::vector<CommandOutcome>& outcomes) { checked(outcomes); });
  return {};
}

void Upgrader::fail(std::string why) {
  ++counts_.failed;
  in_progress_ = false;
  result_ = "failed";
  error_ = std::move(why);
  spdlog::error("upgrade refused: {}; vigil {} carries on", error_, kVersion);
}

void Upgrader::checked(const std::vector<CommandOutcome>& outcomes) {
  // Destroyed off its own callback.
  loop_.defer([r = std::shared_ptr<CommandRunner>(std::move(runner_))] {});
  static const char* const kWhat[] = {"version", "check"};
  for (std::size_t n = 0; n < outcomes.size() && n < 2; ++n)
    if (outcomes[n].result != ActionResult::ok)
      return fail("`" + binary_.string() + " " + kWhat[n] + "` failed: " + outcomes[n].detail);
  if (auto why = supervisor_.handover_blocker(); !why.empty()) return fail("cannot upgrade now: " + why);
  // The exec on a turn of its own: nothing of this call stack is left.
  loop_.defer([this] { exec_new(); });
}

void Upgrader::exec_new() {
  try {
    exec_with_state();
  } catch (const std::exception& e) {
    fail(std::string("cannot write the state: ") + e.what());
  }
}

void Upgrader::exec_with_state() {
  std::vector<int> keep;
  nlohmann::json doc = handover_envelope(kVersion);
  // Counted as a handover in the state: the new vigil that reads it did one.
  UpgradeCounts after = counts_;
  ++after.handover;
  doc["upgrades"] = {{"handover", after.handover}, {"adopted", after.adopted}, {"failed", after.failed}};
  doc["attempt"] = attempt_;
  doc["app"] = save_app_(keep);
  doc["supervisor"] = supervisor_.save_handover(keep);
  // Texts from the programs (STATUS=, exit reasons) may hold bytes that are
  // not UTF-8: replaced (output lines go as hex, exactly).
  const std::string text = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

  const int mfd = ::memfd_create("vigil-handover", 0);  // no MFD_CLOEXEC: it crosses the exec
  if (mfd < 0) return fail(std::string("cannot create the memory file: ") + std::strerror(errno));
  for (std::size_t off = 0; off < text.size();) {
    const ssize_t n = ::write(mfd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = errno;
      ::close(mfd);
      return fail(std::string("cannot write the state: ") + std::strerror(e));
    }
    off += static_cast<std::size_t>(n);
  }
  ::lseek(mfd, 0, SEEK_SET);

  std::vector<std::string> args = {binary_.string(), "run", "-c", supervisor_.config().file.string(),
                                   "--handover", std::to_string(mfd)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  spdlog::info("upgrade: exec {} ({} bytes of state, {} fds kept)", binary_.string(), text.size(),
               keep.size());
  spdlog::default_logger()->flush();
  std::vector<std::pair<int, int>> flags;  // fd, its FD_ flags before
  for (int fd : keep) {
    const int f = ::fcntl(fd, F_GETFD);
    if (f < 0) continue;
    flags.emplace_back(fd, f);
    ::fcntl(fd, F_SETFD, f & ~FD_CLOEXEC);
  }
  sigset_t block = handled_signals(), old;
  ::sigprocmask(SIG_BLOCK, &block, &old);
  ::execve(argv[0], argv.data(), environ);
  // Still here: the old image carries on as if nothing happened.
  const int e = errno;
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  for (auto [fd, f] : flags) ::fcntl(fd, F_SETFD, f);
  ::close(mfd);
  fail("cannot execute " + binary_.string() + ": " + std::strerror(e));
}

HttpResponse Upgrader::handle(const HttpRequest& r) {
  auto state = [this] {
    return nlohmann::json{{"attempt", attempt_},
                          {"in_progress", in_progress_},
                          {"result", result_.empty() ? nlohmann::json(nullptr) : nlohmann::json(result_)},
                          {"error", error_},
                          {"image", image_},
                          {"pid", ::getpid()},
                          {"version", kVersion},
                          {"upgrades", {{"handover", counts_.handover},
                                        {"adopted", counts_.adopted},
                                        {"failed", counts_.failed}}}};
  };
  if (r.method == "GET" || r.method == "HEAD") return HttpResponse::json(200, state().dump());
  if (r.method != "POST") {
    HttpResponse resp = HttpResponse::error(405, "method not allowed");
    resp.headers["Allow"] = "GET, HEAD, POST";
    return resp;
  }
  const std::string why = begin(percent_decode(r.query_param("binary")), "vigil upgrade");
  auto j = state();
  if (!why.empty()) return HttpResponse::json(in_progress_ ? 409 : 422, j.dump());
  return HttpResponse::json(202, j.dump());
}

}  // namespace vigil
