// The packet's fields against values as nft and iptables-save write them:
// addresses with prefixes or masks, and port ranges. Maybe: not readable.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "provenance/tristate.h"

namespace rsttrace::firewall {

// A decimal number that fits, or nullopt (atoi's overflow is undefined).
std::optional<long> small_number(std::string_view text, long max);

// a.b.c.d, a.b.c.d/len, a.b.c.d/m.m.m.m, and the IPv6 forms, against an address.
Match address_matches(const std::string& pattern, int family, const std::array<uint8_t, 16>& addr);

// "22", "1000:2000", ":1024", "1024:".
Match port_matches(const std::string& spec, uint16_t port);

}  // namespace rsttrace::firewall
