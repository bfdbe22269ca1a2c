#include "env_expand.h"

namespace vigil {

namespace {

bool name_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

}  // namespace

ExpandResult expand_variables(std::string_view text, const EnvLookup& lookup) {
  ExpandResult out;
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c != '$' || i + 1 >= text.size()) {
      out.text += c;
      ++i;
      continue;
    }
    if (text[i + 1] == '$') {
      out.text += '$';
      i += 2;
      continue;
    }
    if (text[i + 1] != '{' || i + 2 >= text.size() || !name_start(text[i + 2])) {
      out.text += c;
      ++i;
      continue;
    }
    std::size_t end = i + 3;
    while (end < text.size() && name_char(text[end])) ++end;
    const std::string_view name = text.substr(i + 2, end - (i + 2));
    if (end < text.size() && text[end] == '}') {
      auto value = lookup ? lookup(name) : std::nullopt;
      if (!value) {
        out.text.clear();
        out.error = "${" + std::string(name) +
                    "} is not set in vigil's environment (write ${" + std::string(name) +
                    ":-default} for a default, or $${" + std::string(name) + "} for the text itself)";
        return out;
      }
      out.text += *value;
      i = end + 1;
      continue;
    }
    if (text.substr(end, 2) == ":-") {
      const std::size_t close = text.find('}', end + 2);
      if (close == std::string_view::npos) {
        out.text.clear();
        out.error = "${" + std::string(name) + ":- has no closing \"}\"";
        return out;
      }
      auto value = lookup ? lookup(name) : std::nullopt;
      if (value && !value->empty())
        out.text += *value;
      else
        out.text += text.substr(end + 2, close - (end + 2));
      i = close + 1;
      continue;
    }
    // "${NAME" followed by something vigil does not expand: left as written.
    out.text += c;
    ++i;
  }
  return out;
}

}  // namespace vigil
