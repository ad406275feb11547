// The low-level text helpers every layer shares (attribute/, provenance/,
// output/): escaping untrusted bytes, and addresses and endpoints as
// inet_ntop() writes them. Pure; no allocation in the put_*/append_* forms.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "collect/tcp_event.h"

namespace rsttrace {

// Printable ASCII stays, backslash doubles, everything else becomes \xNN:
// safe in a terminal, in a log line and (after JSON escaping) in JSON.
std::string escape_untrusted(std::string_view bytes);
void append_escaped_untrusted(std::string& out, std::string_view bytes);

std::string format_address(int family, const std::array<uint8_t, 16>& addr);
std::string format_endpoint(int family, const Endpoint& endpoint);  // 1.2.3.4:22, [::1]:22
// The same, appended to `out` without temporaries or stdio (the event line's
// hot path). Addresses are exactly what inet_ntop() gives.
void append_address(std::string& out, int family, const std::array<uint8_t, 16>& addr);
void append_endpoint(std::string& out, int family, const Endpoint& endpoint);

// Writers at a raw buffer, returning the end (output/json_writer.h's
// ascii_string takes them).
char* put_decimal(char* out, unsigned value);
char* put_address(char* out, int family, const std::array<uint8_t, 16>& addr);  // INET6_ADDRSTRLEN - 1 at most

// What an append_*() function writes, as a string: the format_*() forms.
template <typename... Params, typename... Args>
std::string appended(void (*append)(std::string&, Params...), Args&&... args) {
  std::string text;
  append(text, std::forward<Args>(args)...);
  return text;
}

}  // namespace rsttrace
