// Reading a namespace's rulesets and asking them about packets: nftables
// (provenance/firewall/nft_ruleset) first, as iptables-nft's tables live in
// nf_tables too, then iptables-legacy (provenance/firewall/iptables_ruleset).
#include "provenance/firewall.h"

#include <map>

#include "provenance/command.h"
#include "provenance/firewall/iptables_ruleset.h"
#include "provenance/firewall/nft_ruleset.h"

namespace rsttrace {

using firewall::IptRuleset;
using firewall::Outcome;

struct RulesetIndex::Parsed {
  nlohmann::json nft;
  std::map<std::string, std::string> nft_texts;
  IptRuleset iptables_nft;
  IptRuleset iptables_legacy;
  std::vector<std::string> notes;
};

RulesetIndex::RulesetIndex(const Rulesets& rulesets) : parsed_(std::make_unique<Parsed>()) {
  Parsed& parsed = *parsed_;
  // The parsers check what they read; this catches only what they could not
  // foresee (memory), so that no ruleset ends tracing.
  try {
    parsed.nft = firewall::parse_nft_json(rulesets.nft_json, parsed.notes);
    parsed.nft_texts = firewall::nft_rule_texts(rulesets.nft_text, parsed.notes);
    parsed.iptables_nft = firewall::parse_iptables_save(rulesets.iptables_nft, "iptables-nft-save");
    parsed.iptables_legacy = firewall::parse_iptables_save(rulesets.iptables_legacy, "iptables-legacy-save");
    for (const IptRuleset* ipt : {&parsed.iptables_nft, &parsed.iptables_legacy})
      parsed.notes.insert(parsed.notes.end(), ipt->notes.begin(), ipt->notes.end());
  } catch (const std::exception& e) {
    *parsed_ = Parsed{};
    parsed_->nft = nlohmann::json(nlohmann::json::value_t::discarded);
    parsed_->notes.push_back(std::string("failed to parse rulesets: ") + e.what());
  }
}
RulesetIndex::~RulesetIndex() = default;
RulesetIndex::RulesetIndex(RulesetIndex&&) noexcept = default;
RulesetIndex& RulesetIndex::operator=(RulesetIndex&&) noexcept = default;

const std::vector<std::string>& RulesetIndex::notes() const { return parsed_->notes; }

std::optional<FirewallRule> find_dropping_rule(const Rulesets& rulesets, const PacketFacts& packet) {
  return RulesetIndex(rulesets).find_dropping_rule(packet);
}

std::optional<FirewallRule> RulesetIndex::find_dropping_rule(const PacketFacts& packet) const {
  try {
    return walk_rulesets(packet);
  } catch (const std::exception&) {
    return std::nullopt;  // memory, not the input: the walk reads the document only through typed checks
  }
}

std::optional<FirewallRule> RulesetIndex::walk_rulesets(const PacketFacts& packet) const {
  std::optional<FirewallRule> candidate;
  // nf_tables: native nftables and iptables-nft alike.
  const nlohmann::json& root = parsed_->nft;
  if (!root.is_discarded()) {
    const auto& texts = parsed_->nft_texts;
    const IptRuleset& iptables_nft = parsed_->iptables_nft;
    // The rule as its tool writes it.
    auto finish = [&](FirewallRule rule) {
      const std::string chain_key = firewall::ipt_chain_key(rule.family == "ip6" ? 6 : 4, rule.table, rule.chain);
      if ((rule.family == "ip" || rule.family == "ip6") && iptables_nft.policies.count(chain_key)) {
        // A table iptables-nft manages: show the rule as iptables-save writes it.
        rule.backend = "iptables-nft";
        if (rule.handle)
          if (const auto position = firewall::nft_rule_position(root, rule)) {
            const auto chain = iptables_nft.chains.find(chain_key);
            if (chain != iptables_nft.chains.end() && *position < chain->second.size())
              rule.text = chain->second[*position].spec;
          }
      } else if (rule.handle) {
        const auto text = texts.find(rule.family + "/" + rule.table + "/" + rule.chain + "/" + std::to_string(*rule.handle));
        if (text != texts.end()) rule.text = text->second;
      }
      return rule;
    };
    Outcome outcome = firewall::walk_nft(root, packet);
    if (outcome.candidate) candidate = finish(*outcome.candidate);
    if (outcome.kind == Outcome::Dropped) return finish(*outcome.rule);
  }
  // iptables-legacy: its own hooks, its own tables.
  Outcome outcome = firewall::walk_iptables(parsed_->iptables_legacy, packet, "iptables-legacy");
  if (outcome.kind == Outcome::Dropped) return outcome.rule;
  if (!candidate) candidate = outcome.candidate;
  return candidate;
}

Rulesets read_rulesets(uint32_t netns_inode, SystemAccess& access) {
  Rulesets rulesets;
  const std::string path = netns_path(netns_inode, access);
  if (path.empty()) return rulesets;
  auto in_netns = [&](std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"nsenter", "--net=" + path, "--"});
    return access.run(argv).value_or("");
  };
  rulesets.nft_json = in_netns({"nft", "-j", "-a", "list", "ruleset"});
  rulesets.nft_text = in_netns({"nft", "-a", "list", "ruleset"});
  rulesets.iptables_nft = in_netns({"iptables-nft-save", "-c"}) + in_netns({"ip6tables-nft-save", "-c"});
  rulesets.iptables_legacy = in_netns({"iptables-legacy-save", "-c"}) + in_netns({"ip6tables-legacy-save", "-c"});
  return rulesets;
}

}  // namespace rsttrace
