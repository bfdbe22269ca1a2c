// The handover document's envelope (the archives are templates: handover.h).
#include "handover.h"

namespace vigil {

nlohmann::json handover_envelope(std::string_view version) {
  return nlohmann::json{{"format", kHandoverFormat}, {"vigil_version", std::string(version)}};
}

void check_handover_format(const nlohmann::json& doc) {
  if (!doc.is_object()) throw HandoverError("the state is not a JSON object");
  auto it = doc.find("format");
  if (it == doc.end() || !it->is_number_integer())
    throw HandoverError("the state names no format");
  const auto format = it->get<std::int64_t>();
  if (format != kHandoverFormat)
    throw HandoverError("the state is format " + std::to_string(format) +
                        "; this vigil reads format " + std::to_string(kHandoverFormat));
}

}  // namespace vigil
