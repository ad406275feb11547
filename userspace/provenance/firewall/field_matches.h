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

// "22", "1000:2000", ":1024", "1024:", and service names ("ssh", "ssh:http").
Match port_matches(const std::string& spec, uint16_t port);

// The port a service name stands for, from a fixed table of the names the
// front-ends write (fail2ban's port = ssh): never /etc/services of any root,
// which the namespace's owner writes.
std::optional<uint16_t> service_port(std::string_view name);

// A 32-bit value as iptables and nft print it: decimal or 0x hex.
std::optional<uint32_t> u32_number(std::string_view text);

// "a.b.c.d-e.f.g.h" (iprange), either family, against an address.
Match address_range_matches(const std::string& range, int family, const std::array<uint8_t, 16>& addr);

}  // namespace rsttrace::firewall
