// The fleet several benchmarks measure against: the real `vigil run`
// (log_level warn) with one program of N `sleep 3600` instances and [http]
// on a loopback port, waited for until every instance is running.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "control_client.h"

namespace bench {

inline std::string sleepers_config(const TempDir& dir, const std::filesystem::path& socket, int instances,
                                   std::uint16_t port) {
  return "[vigil]\n"
         "log_dir = " + toml_str((dir.path() / "logs").string()) + "\n"
         "control_socket = " + toml_str(socket.string()) + "\n"
         "log_level = \"warn\"\n"
         "\n"
         "[http]\n"
         "listen = \"127.0.0.1:" + std::to_string(port) + "\"\n"
         "\n"
         "[programs.sleeper]\n"
         "command = [\"sleep\", \"3600\"]\n"
         "instances = " + std::to_string(instances) + "\n"
         "min_uptime = \"0s\"\n";
}

// Instances `running` by the API over the control socket; 0 when it does not answer.
inline std::size_t running_count(const std::filesystem::path& socket) {
  std::string error;
  auto r = vigil::control_request(socket, "GET", "/api/v1/programs", &error);
  if (!r || r->status != 200) return 0;
  std::size_t n = 0;
  for (const auto& i : nlohmann::json::parse(r->body)) n += i["state"] == "running";
  return n;
}

// Waits (90 s at most) until `instances` run; throws Broken with the tail
// of vigil's stderr when vigil exits or the time is up.
inline void wait_running(VigilProcess& vigil, const std::filesystem::path& socket, int instances,
                         const std::filesystem::path& err) {
  while (running_count(socket) < static_cast<std::size_t>(instances)) {
    if (!vigil.alive())
      throw Broken("vigil exited (code " + std::to_string(vigil.exit_code()) + "):\n" + tail_of(err));
    if ((now_ns() - vigil.start_ns()) / 1e9 > 90)
      throw Broken("not all instances running within 90 s:\n" + tail_of(err));
    sleep_ms(100);
  }
  std::printf("  %d instances running %.1f s after launch\n", instances, (now_ns() - vigil.start_ns()) / 1e9);
}

}  // namespace bench
