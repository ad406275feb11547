// ipsets, from `ipset save` in the namespace: what -m set --match-set tests.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "provenance/tristate.h"

namespace rsttrace::firewall {

struct Ipset {
  std::string type;  // "hash:ip", "hash:net"...
  int family = 4;    // inet: 4, inet6: 6
  std::vector<std::string> entries;  // as written: "10.0.0.2", "10.0.0.0/24"
};

using Ipsets = std::map<std::string, Ipset>;

// Total and bounded like the other parsers: lines it cannot read are skipped with a note.
Ipsets parse_ipset_save(std::string_view text, std::vector<std::string>& notes);

// Whether the set holds the address: decided for hash:ip and hash:net, one
// dimension (`src` or `dst`); any other type or flags: Maybe.
Match ipset_contains(const Ipset& set, const std::string& flags, int family, const std::array<uint8_t, 16>& addr);

// The entry of a hash:ip or hash:net set that holds the address, as written ("10.0.0.0/24").
std::optional<std::string> ipset_entry_holding(const Ipset& set, int family, const std::array<uint8_t, 16>& addr);

}  // namespace rsttrace::firewall
