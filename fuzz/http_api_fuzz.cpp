// libFuzzer harness for the HTTP routes: a request decoded from the input
// goes through the real HttpApi::handle of a real Supervisor (two programs,
// one watch; built, never started, and shut down at once, so no input can
// spawn a process). Besides "no crash, no throw, no sanitizer report" it
// checks what a client relies on: a status code, a body in valid UTF-8,
// valid JSON wherever the type says JSON, every error as {"error": "..."},
// an Allow header with every 405, no POST honoured on TCP without the
// token, and nothing started.
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "config_parse.h"
#include "event_loop.h"
#include "http_api.h"
#include "http_server.h"
#include "supervisor.h"

// Input: byte 0 holds flags: bits 0-2 the method (GET, HEAD, POST, PUT,
// DELETE, OPTIONS, PATCH, "get"), bit 3 trusted (the control socket), bits
// 4-5 the Authorization header (none, the right token, a wrong one, or the
// first header line of the input), bits 6-7 a path prefix ("",
// "/api/v1/programs/", "/api/v1/watches/", "/api/v1/programs/web/").
// The rest, split at '\n': the path (after the prefix), the query, header
// lines "name:value" up to an empty line, then the body.

namespace {

constexpr std::string_view kToken = "fuzz-token-0123456789";

// The answer being checked, shown when a promise is broken.
const vigil::HttpResponse* g_response = nullptr;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "http_api_fuzz: broken promise: %s\n", what);
    if (g_response)
      std::fprintf(stderr, "answer: %d %s\n%s\n", g_response->status,
                   g_response->content_type.c_str(), g_response->body.substr(0, 2000).c_str());
    std::abort();
  }
}

// Written apart from nlohmann's own decoder: a second opinion.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07;
    else return false;
    if (i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n;
  }
  return true;
}

struct World {
  vigil::EventLoop loop;
  std::unique_ptr<vigil::Supervisor> supervisor;
  std::unique_ptr<vigil::HttpApi> api;
};

// Built once, for the whole run (and left to the process's end: libFuzzer
// exits without unwinding).
World& world() {
  static World* w = [] {
    spdlog::set_level(spdlog::level::off);
    char tmpl[] = "/tmp/vigil-http-api-fuzz-XXXXXX";
    const char* dir = ::mkdtemp(tmpl);
    check(dir != nullptr, "a temp dir");
    static const std::string d = dir;
    // libFuzzer ends with exit(): the folder goes then.
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    });
    std::ofstream(d + "/token") << kToken << "\n";
    const std::string toml =
        "[vigil]\nlog_dir = \"logs\"\ncontrol_socket = \"vigil.sock\"\n"
        "[http]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"token\"\n"
        "[programs.web]\ncommand = [\"sleep\", \"1000\"]\nautostart = false\ninstances = 2\n"
        "[programs.api-2]\ncommand = \"sleep 1000\"\nautostart = false\n"
        "[watch.legacy]\nhttp = \"http://127.0.0.1:9/health\"\n";
    std::ofstream(d + "/vigil.toml") << toml;
    vigil::ConfigParseResult parsed = vigil::parse_config(toml, d + "/vigil.toml");
    check(parsed.errors.empty(), "the harness's config parses");
    auto* made = new World;
    made->supervisor = std::make_unique<vigil::Supervisor>(made->loop, std::move(parsed.config));
    // Shut down before the first request: start and restart are refused
    // (503), stop finds nothing to stop. Nothing is ever spawned.
    made->supervisor->shutdown([](int) {});
    made->api = std::make_unique<vigil::HttpApi>(*made->supervisor);
    return made;
  }();
  return *w;
}

std::string_view next_line(std::string_view& in) {
  const std::size_t nl = in.find('\n');
  std::string_view line = in.substr(0, nl);
  in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  World& w = world();
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto flags = static_cast<unsigned char>(data[0]);

  static const char* kMethods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get"};
  static const char* kPrefixes[] = {"", "/api/v1/programs/", "/api/v1/watches/",
                                    "/api/v1/programs/web/"};
  vigil::HttpRequest r;
  r.method = kMethods[flags & 7];
  r.trusted = (flags & 8) != 0;
  const int auth = (flags >> 4) & 3;
  r.path = std::string(kPrefixes[flags >> 6]) + std::string(next_line(in));
  r.query = std::string(next_line(in));
  bool right_token = false;
  if (auth == 1) r.headers["authorization"] = "Bearer " + std::string(kToken);
  if (auth == 2) r.headers["authorization"] = "Bearer " + std::string(kToken) + "x";
  for (bool first = true; !in.empty(); first = false) {
    std::string_view line = next_line(in);
    if (line.empty()) break;
    const std::size_t colon = line.find(':');
    std::string name(line.substr(0, colon));
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value(colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1));
    if (name == "authorization" && !(auth == 3 && first)) continue;
    r.headers[name] = value;
  }
  right_token = r.header("authorization") == "Bearer " + std::string(kToken);
  r.body = std::string(in);

  vigil::HttpResponse resp;
  try {
    resp = w.api->handle(r);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "http_api_fuzz: handle threw: %s\n", e.what());
    std::abort();
  } catch (...) {
    check(false, "handle never throws");
  }

  g_response = &resp;
  // /metrics comes in pieces shared with its cache: the body is all of them.
  std::string body = resp.body;
  for (const auto& part : resp.body_parts) body += *part;
  check(body.size() == resp.body_size(), "Content-Length is the body's length");
  check(resp.status >= 100 && resp.status <= 599, "a status code");
  check(valid_utf8(body), "the body is valid UTF-8");
  const bool json = resp.content_type.rfind("application/json", 0) == 0;
  if (resp.status >= 400) check(json, "every error is JSON");
  if (json) {
    check(!body.empty() && body.back() == '\n', "JSON ends with a newline");
    const auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    check(!parsed.is_discarded(), "JSON where the type says JSON");
    // A reload refused for the file's errors (422) lists them instead.
    const bool reload_refused = resp.status == 422 && parsed.is_object() &&
                                parsed.value("ok", true) == false && parsed.contains("errors") &&
                                parsed["errors"].is_array();
    if (resp.status >= 400 && !reload_refused)
      check(parsed.is_object() && parsed.contains("error") && parsed["error"].is_string(),
            "an error is {\"error\": \"...\"}");
  }
  if (resp.status == 405) check(resp.headers.count("Allow") == 1, "a 405 says what is allowed");
  if (r.method == "POST" && !r.trusted && !right_token)
    check(resp.status >= 400, "no POST on TCP without the token");
  for (const auto& s : w.supervisor->snapshots())
    check(s.pid <= 0, "nothing is ever started");
  g_response = nullptr;
  return 0;
}
