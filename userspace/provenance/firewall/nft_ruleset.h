// nftables rulesets, from `nft -j -a list ruleset` (walked) and `nft -a list
// ruleset` (the rules as written, by handle). Also the tables iptables-nft
// manages, which live in nf_tables.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "provenance/firewall.h"
#include "provenance/firewall/chain_walk.h"

namespace rsttrace::firewall {

struct IptRuleset;

// The document, or a discarded value (with a note) when it is empty, too
// large, nested too deep or not JSON.
nlohmann::json parse_nft_json(const std::string& text, std::vector<std::string>& notes);

// `nft -a list ruleset` text: family/table/chain/handle -> the rule as written
// (empty, with a note, when the text is too large).
std::map<std::string, std::string> nft_rule_texts(const std::string& text, std::vector<std::string>& notes);

// The packet through the base chains of its hook and family, by priority, all
// on one budget: a rule that surely drops it (kind Dropped), and the first
// drop that may have (candidate). `root`: from parse_nft_json, not discarded.
// `iptables_nft`: iptables-nft-save's reading of the same tables, whose lines
// decide the matches nft shows only as "xt" (multiport, set, addrtype...).
Outcome walk_nft(const nlohmann::json& root, const PacketFacts& packet, const IptRuleset* iptables_nft);

// Where the rule with `rule.handle` stands in its chain (family, table,
// chain): the n-th rule in nft is the n-th -A line of iptables-nft-save.
// Nullopt: the document lists no objects.
std::optional<size_t> nft_rule_position(const nlohmann::json& root, const FirewallRule& rule);
// The handle of the rule just before `rule` in its chain (none: it is the first, or not found).
std::optional<uint64_t> nft_previous_handle(const nlohmann::json& root, const FirewallRule& rule);

// The packets counted by the rule with `rule.handle` in its chain, if it has a counter.
std::optional<uint64_t> nft_rule_counter(const nlohmann::json& root, const FirewallRule& rule);

// The element of set `set` (in the rule's family and table) that holds the
// packet's source address, as nft lists it ("10.77.0.2", "10.77.0.0/24",
// "10.9.0.5-10.9.0.7"); nullopt if none does or the set is not listed.
std::optional<std::string> nft_set_element(const nlohmann::json& root, const FirewallRule& rule, const std::string& set,
                                           const PacketFacts& packet);

// A rule's text with "counter packets N bytes M" read as "counter".
std::string without_counter(const std::string& text);

}  // namespace rsttrace::firewall
