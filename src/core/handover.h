// What one vigil hands to the next across exec (`vigil upgrade`): a
// versioned JSON document of the state of every instance. This is the pure
// half: archives that write and read the fields a class names in its
// persist(Archive&) (STYLE: one list of fields, used both ways), and the
// document's envelope. The shells add the process side (pids, fds).
//
// A class lists its fields once:
//   template <class Archive> void persist(Archive& a) {
//     a("pid", pid_); a("state", state_, kAllStates.size()); a("policy", policy_); }
// `a(key, field)` takes bools, integers, strings, steady and wall times,
// durations, std::optional, sequences (std::array, std::vector,
// std::deque) and objects with a persist() of their own; an enum goes as
// `a(key, field, count)` (or an optional of one), so a loaded value is
// checked to be one of its `count` values.
//
// Loading never trusts the document: a missing key, a wrong type, a number
// out of range or an enum out of bounds throws HandoverError naming the
// key's path ("instances[3].machine.policy.next_delay: not an integer").
#pragma once
#include <array>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "clock.h"

namespace vigil {

// The format of the document. A vigil reads only its own format; a change
// of any persisted field (name, meaning, type) takes a new number.
inline constexpr int kHandoverFormat = 1;

struct HandoverError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace handover_detail {

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
struct is_duration : std::false_type {};
template <class R, class P>
struct is_duration<std::chrono::duration<R, P>> : std::true_type {};

template <class T>
struct is_std_array : std::false_type {};
template <class T, std::size_t N>
struct is_std_array<std::array<T, N>> : std::true_type {};

template <class T>
inline constexpr bool is_time_v = std::is_same_v<T, SteadyTime> || std::is_same_v<T, WallTime>;

template <class T>
concept Sequence = !std::is_same_v<T, std::string> && requires(const T& t) {
  t.begin();
  t.end();
  t.size();
};

template <class T>
concept Growable = requires(T& t, typename T::value_type v) {
  t.clear();
  t.push_back(std::move(v));
};

template <class>
inline constexpr bool always_false = false;

template <class T>
nlohmann::json encode(const T& v);

}  // namespace handover_detail

// Writes what persist() names into a JSON object.
class SaveArchive {
 public:
  template <class T>
  void operator()(const char* key, const T& v) {
    out[key] = handover_detail::encode(v);
  }
  template <class E>
  void operator()(const char* key, const E& v, std::size_t /*count*/) {
    out[key] = handover_detail::encode(v);
  }
  nlohmann::json out = nlohmann::json::object();
};

// Reads what persist() names back from a JSON object (see the top).
class LoadArchive {
 public:
  LoadArchive(const nlohmann::json& in, std::string path) : in_(in), path_(std::move(path)) {}
  template <class T>
  void operator()(const char* key, T& v) {
    decode(at(key), v, path_ + "." + key, 0);
  }
  template <class E>
  void operator()(const char* key, E& v, std::size_t count) {
    decode(at(key), v, path_ + "." + key, count);
  }

  // `count`: for an enum (or an optional of one), how many values it has.
  template <class T>
  static void decode(const nlohmann::json& j, T& v, const std::string& path, std::size_t count);

 private:
  const nlohmann::json& at(const char* key) const {
    if (!in_.is_object()) throw HandoverError(path_ + ": not an object");
    auto it = in_.find(key);
    if (it == in_.end()) throw HandoverError(path_ + "." + key + ": missing");
    return *it;
  }
  [[noreturn]] static void fail(const std::string& path, std::string_view what) {
    throw HandoverError(path + ": " + std::string(what));
  }
  static std::int64_t integer(const nlohmann::json& j, const std::string& path) {
    if (!j.is_number_integer()) fail(path, "not an integer");
    if (j.is_number_unsigned() &&
        j.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      fail(path, "out of range");
    return j.get<std::int64_t>();
  }

  const nlohmann::json& in_;
  std::string path_;
};

// An object with persist() as a JSON object, and back (throws HandoverError;
// `path` names the object in the messages).
template <class T>
nlohmann::json save_state(const T& object) {
  return handover_detail::encode(object);
}
template <class T>
void load_state(const nlohmann::json& in, T& object, const std::string& path) {
  LoadArchive::decode(in, object, path, 0);
}

// Bytes (any, not only UTF-8: output lines, relayed bytes) as JSON can
// carry them, and back (nullopt for anything but pairs of 0-9a-f).
std::string to_hex(std::string_view bytes);
std::optional<std::string> from_hex(std::string_view hex);

// The envelope: {"format": kHandoverFormat, "vigil_version": version}; the
// shells add their keys.
nlohmann::json handover_envelope(std::string_view version);
// Throws HandoverError unless `doc` is an object of this vigil's format
// ("the state is format 2; this vigil reads format 1").
void check_handover_format(const nlohmann::json& doc);

// ---------------------------------------------------------------------------

template <class T>
nlohmann::json handover_detail::encode(const T& v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v;
  } else if constexpr (std::is_enum_v<T>) {
    return static_cast<std::int64_t>(v);
  } else if constexpr (std::is_integral_v<T>) {
    return v;
  } else if constexpr (std::is_same_v<T, std::string>) {
    return v;
  } else if constexpr (is_time_v<T>) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(v.time_since_epoch()).count();
  } else if constexpr (is_duration<T>::value) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(v).count();
  } else if constexpr (is_optional<T>::value) {
    return v ? encode(*v) : nlohmann::json(nullptr);
  } else if constexpr (requires(T& t, SaveArchive& a) { t.persist(a); }) {
    SaveArchive a;
    // persist() is one member template for both directions; saving only reads.
    const_cast<T&>(v).persist(a);
    return std::move(a.out);
  } else if constexpr (Sequence<T>) {
    auto out = nlohmann::json::array();
    for (const auto& e : v) out.push_back(encode(e));
    return out;
  } else {
    static_assert(always_false<T>, "no handover encoding for this type");
  }
}

template <class T>
void LoadArchive::decode(const nlohmann::json& j, T& v, const std::string& path, std::size_t count) {
  using namespace handover_detail;
  if constexpr (std::is_same_v<T, bool>) {
    if (!j.is_boolean()) fail(path, "not a boolean");
    v = j.get<bool>();
  } else if constexpr (std::is_enum_v<T>) {
    const std::int64_t n = integer(j, path);
    if (n < 0 || static_cast<std::uint64_t>(n) >= count) fail(path, "not one of its values");
    v = static_cast<T>(n);
  } else if constexpr (std::is_integral_v<T>) {
    if (std::is_unsigned_v<T> && j.is_number_unsigned()) {
      const auto n = j.get<std::uint64_t>();
      if (n > std::numeric_limits<T>::max()) fail(path, "out of range");
      v = static_cast<T>(n);
    } else {
      const std::int64_t n = integer(j, path);
      if (n < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
          (n > 0 && static_cast<std::uint64_t>(n) > std::numeric_limits<T>::max()))
        fail(path, "out of range");
      v = static_cast<T>(n);
    }
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!j.is_string()) fail(path, "not a string");
    v = j.get<std::string>();
  } else if constexpr (is_time_v<T>) {
    v = T(std::chrono::duration_cast<typename T::duration>(std::chrono::nanoseconds(integer(j, path))));
  } else if constexpr (is_duration<T>::value) {
    v = std::chrono::duration_cast<T>(std::chrono::nanoseconds(integer(j, path)));
  } else if constexpr (is_optional<T>::value) {
    if (j.is_null()) {
      v.reset();
    } else {
      typename T::value_type inner{};
      decode(j, inner, path, count);
      v = std::move(inner);
    }
  } else if constexpr (requires(T& t, LoadArchive& a) { t.persist(a); }) {
    if (!j.is_object()) fail(path, "not an object");
    LoadArchive a(j, path);
    v.persist(a);
  } else if constexpr (is_std_array<T>::value) {
    if (!j.is_array()) fail(path, "not a list");
    if (j.size() != v.size()) fail(path, "a list of " + std::to_string(v.size()) + " was expected");
    for (std::size_t i = 0; i < v.size(); ++i)
      decode(j[i], v[i], path + "[" + std::to_string(i) + "]", count);
  } else if constexpr (Growable<T>) {
    if (!j.is_array()) fail(path, "not a list");
    v.clear();
    for (std::size_t i = 0; i < j.size(); ++i) {
      typename T::value_type e{};
      decode(j[i], e, path + "[" + std::to_string(i) + "]", count);
      v.push_back(std::move(e));
    }
  } else {
    static_assert(always_false<T>, "no handover decoding for this type");
  }
}

}  // namespace vigil
