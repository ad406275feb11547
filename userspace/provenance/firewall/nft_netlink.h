// nf_tables read over netlink (libnftnl), without nft: the fallback when this
// host's nft cannot read a namespace's ruleset (Debian 12's nft 1.0.6 crashes
// on sets written by nft 1.1). Only what a netlink dump states for certain is
// kept: tables, base chains, each rule's handle, the sets its lookups test
// (and on which header field) and its verdict; set elements (addresses,
// prefixes, intervals). Everything else a rule matches is unknown, so a rule
// found here is never certain.
//
// The dump runs in the namespace (a child of the broker, entered with nsenter,
// `rsttrace nft-netlink-dump`) and prints a line format that the collector
// decodes (parse_nft_netlink_dump: pure, bounded, never throws; fuzzed).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attribute/blockers.h"

namespace rsttrace {
struct PacketFacts;
}

namespace rsttrace::firewall {

constexpr size_t kMaxNetlinkRules = 65536;
constexpr size_t kMaxNetlinkChains = 8192;
constexpr size_t kMaxNetlinkSets = 4096;
constexpr size_t kMaxNetlinkElements = 262144;  // over all sets

struct NetlinkLookup {
  std::string set;
  uint32_t payload_offset = 0, payload_length = 0;  // the network-header bytes it looked up
  bool network_header = false;                      // false: not a network-header load (meta, transport...)
  bool inverted = false;                            // `!= @set`
};

struct NetlinkRule {
  std::string family, table, chain;
  uint64_t handle = 0;
  std::string verdict;  // "drop" | "reject" | "jump" | "goto" | "accept" | "return" | "" (none)
  std::string target;   // jump/goto's chain
  std::vector<NetlinkLookup> lookups;
};

struct NetlinkChain {
  std::string family, table, name;
  std::string hook;  // "" for a regular chain
  int32_t priority = 0;
  std::string policy;  // "accept" | "drop" | ""
};

struct NetlinkSet {
  uint32_t key_length = 0;
  bool interval = false;
  // Inclusive ranges of keys (a single element is lo == hi), big-endian bytes.
  std::vector<std::pair<std::array<uint8_t, 16>, std::array<uint8_t, 16>>> ranges;
  bool truncated = false;  // more elements than were read
};

struct NetlinkRuleset {
  std::vector<NetlinkChain> chains;
  std::vector<NetlinkRule> rules;
  std::map<std::string, NetlinkSet> sets;  // by "family/table/name"
  std::vector<std::string> notes;          // what was skipped and why
  bool read = false;                       // the dump ran to its end
};

// Runs in the namespace: dumps it to stdout in the line format. Exit code 0 on success.
int run_nft_netlink_dump();

// The dump's lines, decoded. Total and bounded: a malformed line is skipped with a note.
NetlinkRuleset parse_nft_netlink_dump(std::string_view text);

// The first rule, in the base chains of the packet's hook by priority (and the
// chains they jump to), that drops or rejects it after a lookup of its source
// address in a set that holds it. Never certain: the rule's other matches are unknown.
std::optional<FirewallRule> find_netlink_drop(const NetlinkRuleset& ruleset, const PacketFacts& packet);

}  // namespace rsttrace::firewall
