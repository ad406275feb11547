// nf_tables read over netlink (libnftnl), without nft: the fallback when this
// host's nft cannot read a namespace's ruleset (Debian 12's nft 1.0.6 crashes
// on sets written by nft 1.1). The dump states tables, chains, each rule's
// expressions (loads into registers, compares, lookups, verdicts), sets and
// their elements. The collector decodes the expressions it knows into the
// document `nft -j list ruleset` would print (nft_json_of_netlink), which the
// nftables walker then asks like any other: a rule all of whose matches it
// decides is certain; an expression not decoded stays in the rule, by name,
// and leaves it probable.
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

#include <nlohmann/json.hpp>

#include "attribute/blockers.h"

namespace rsttrace {
struct PacketFacts;
}

namespace rsttrace::firewall {

constexpr size_t kMaxNetlinkRules = 65536;
constexpr size_t kMaxNetlinkChains = 8192;
constexpr size_t kMaxNetlinkSets = 4096;
constexpr size_t kMaxNetlinkElements = 262144;  // over all sets

constexpr size_t kMaxNetlinkExpressions = 128;  // per rule; nft writes about 10

// One expression as the dump wrote it: its kind ("p", "cmp", "lk"...) and
// fields, not yet interpreted (nft_netlink_json.cpp reads them, checking each).
struct NetlinkExpression {
  std::string kind;
  std::vector<std::string> fields;
};

struct NetlinkRule {
  std::string family, table, chain;
  uint64_t handle = 0;
  std::vector<NetlinkExpression> expressions;
};

struct NetlinkChain {
  std::string family, table, name;
  std::string hook;  // "" for a regular chain
  int32_t priority = 0;
  std::string policy;  // "accept" | "drop" | ""
};

struct NetlinkSet {
  std::string family, table, name;
  uint32_t key_length = 0;
  uint32_t key_type = 0;  // nftables' datatype (7 ipv4_addr, 8 ipv6_addr, 13 inet_service...)
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

// The ruleset as `nft -j -a list ruleset` shows it (chains, sets with their
// elements, rules with the expressions decoded), for walk_nft; and each rule's
// text as `nft -a list ruleset` would write it, by "family/table/chain/handle".
// An expression not decoded becomes a statement or match the walker cannot
// decide, named after it. Total and bounded by the ruleset's own caps.
nlohmann::json nft_json_of_netlink(const NetlinkRuleset& ruleset, std::map<std::string, std::string>& texts);

}  // namespace rsttrace::firewall
