// Which front-end wrote a rule, from the names it gives its chains, tables
// and sets (declared in provenance/firewall.h). Names are the namespace
// owner's word like the rest of the ruleset: they name, never prove.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "provenance/firewall.h"

namespace rsttrace {
namespace {

constexpr size_t kMaxUfwLines = 100000;  // user.rules: 2-3 lines a rule
constexpr size_t kMaxZoneSources = 256;   // a client's address looked at per zone file

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

// The word after `option` in an iptables rule text (`--match-set f2b-sshd src`).
std::string word_after(const std::string& text, std::string_view option) {
  const size_t at = text.find(std::string(option) + " ");
  if (at == std::string::npos) return "";
  const size_t start = at + option.size() + 1, end = text.find(' ', start);
  return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

constexpr std::string_view kPolicyChain = "filter_IN_policy_";

// The chain's name less a part's suffix (_pre, _log, _deny, _allow, _post), if it has one.
std::optional<std::string> without_part(const std::string& name) {
  const size_t last = name.rfind('_');
  if (last == std::string::npos || last == 0) return std::nullopt;
  const std::string suffix = name.substr(last + 1);
  if (suffix == "pre" || suffix == "log" || suffix == "deny" || suffix == "allow" || suffix == "post")
    return name.substr(0, last);
  return std::nullopt;
}

// firewalld's nft chains: filter_IN_<zone> (the zone's own target: drop,
// reject) and filter_IN_<zone>_{pre,log,deny,allow,post} (its rules).
// A policy's chains (filter_IN_policy_...) are named by firewalld_policy_owner.
std::optional<std::string> firewalld_zone(const std::string& chain) {
  constexpr std::string_view kPrefix = "filter_IN_";
  if (!starts_with(chain, kPrefix) || chain.size() == kPrefix.size() || starts_with(chain, kPolicyChain))
    return std::nullopt;
  const std::string rest = chain.substr(kPrefix.size());
  return without_part(rest).value_or(rest);
}

// Whether any root has a file named `name` (firewalld writes none empty).
bool has_file(const std::vector<FirewalldZoneFile>& files, const std::string& name) {
  return std::any_of(files.begin(), files.end(),
                     [&](const FirewalldZoneFile& file) { return file.zone == name && !file.xml.empty(); });
}

// Whether `xml` has `<source address="ADDRESS"/>` inside a <rule> element
// (`in_rule`) or outside one: firewalld writes its files itself, one element
// a line; a search, no XML parser (the file is the namespace owner's).
bool zone_file_lists(const std::string& xml, const std::string& address, bool in_rule) {
  const std::string source = "<source address=\"" + address + "\"";
  size_t looked = 0;  // bounded: each look may scan the file back to its start
  for (size_t at = xml.find(source); at != std::string::npos && looked < kMaxZoneSources;
       at = xml.find(source, at + 1), ++looked) {
    const size_t open = xml.rfind("<rule", at), close = xml.rfind("</rule>", at);
    const bool inside = open != std::string::npos && (close == std::string::npos || close < open);
    if (!inside && !in_rule) return true;
    if (inside && in_rule) {
      // The rule's own action: drop or reject (an accept rule does not block).
      const size_t end = xml.find("</rule>", at);
      const std::string body = xml.substr(open, end == std::string::npos ? std::string::npos : end - open);
      if (body.find("<drop") != std::string::npos || body.find("<reject") != std::string::npos) return true;
    }
  }
  return false;
}

}  // namespace

std::optional<std::string> firewalld_dispatch_zone(const std::string& text, const std::string& previous) {
  // The matches before the verdict: "ip saddr 10.77.0.2 drop" -> "ip saddr 10.77.0.2 ".
  size_t at = 0;
  for (;;) {
    const size_t end = std::min(text.find(' ', at), text.size());
    const std::string_view word = std::string_view(text).substr(at, end - at);
    if (word == "drop" || word == "reject") break;
    if (end >= text.size()) return std::nullopt;
    at = end + 1;
  }
  const std::string jump = text.substr(0, at) + "jump filter_IN_";
  if (previous.rfind(jump, 0) != 0) return std::nullopt;
  const std::string zone = previous.substr(jump.size());
  if (zone.empty() || zone.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
                          std::string::npos || zone.rfind("policy_", 0) == 0)
    return std::nullopt;
  return zone;
}

std::vector<std::string> firewalld_policy_candidates(const std::string& chain) {
  if (!starts_with(chain, kPolicyChain) || chain.size() == kPolicyChain.size()) return {};
  const std::string rest = chain.substr(kPolicyChain.size());
  std::vector<std::string> names{rest};
  if (const auto base = without_part(rest)) names.push_back(*base);
  return names;
}

std::optional<FirewalldOwner> firewalld_policy_owner(const std::string& chain,
                                                     const std::vector<FirewalldZoneFile>& policies,
                                                     const std::vector<FirewalldZoneFile>& zones) {
  std::optional<FirewalldOwner> owner;
  int readings = 0;
  for (const std::string& name : firewalld_policy_candidates(chain)) {
    if (has_file(policies, name)) ++readings, owner = FirewalldOwner{"policy " + name, name, chain != std::string(kPolicyChain) + name};
    const std::string zone = "policy_" + name;
    if (has_file(zones, zone)) ++readings, owner = FirewalldOwner{zone, "", chain != "filter_IN_" + zone};
  }
  if (readings != 1) return std::nullopt;  // none, or more than one: the chain's own name, no claim
  return owner;
}

std::optional<bool> firewalld_policy_permanent(const std::vector<FirewalldZoneFile>& policies,
                                               const FirewalldOwner& owner, const std::string& address) {
  if (owner.policy.empty()) return std::nullopt;
  std::optional<bool> permanent;
  for (const FirewalldZoneFile& file : policies) {
    if (file.zone != owner.policy || file.xml.empty()) continue;
    // A rich rule of the policy's part chains, or its own target (<policy target="REJECT" ...>).
    const size_t open = file.xml.find("<policy"), close = file.xml.find('>', open);
    const std::string head = open == std::string::npos ? "" : file.xml.substr(open, close - open);
    const bool held = owner.rich ? zone_file_lists(file.xml, address, true)
                                 : head.find("target=\"REJECT\"") != std::string::npos ||
                                       head.find("target=\"DROP\"") != std::string::npos ||
                                       head.find("target=\"%%REJECT%%\"") != std::string::npos;
    permanent = permanent.value_or(false) || held;
  }
  return permanent;
}

std::optional<bool> firewalld_permanent(const std::vector<FirewalldZoneFile>& files, const std::string& zone,
                                        const std::string& address, bool rich) {
  std::optional<bool> permanent;
  for (const FirewalldZoneFile& file : files) {
    if (file.zone != zone) continue;
    permanent = permanent.value_or(false) || zone_file_lists(file.xml, address, rich);
  }
  return permanent;
}

std::optional<Blocker> blocker_of(const FirewallRule& rule) {
  if (rule.fail2ban_jail) return Blocker{"fail2ban", *rule.fail2ban_jail, std::nullopt};
  // fail2ban's iptables-ipset action: -m set --match-set f2b-<jail> src in INPUT.
  if (const auto jail = fail2ban_jail_of(word_after(rule.text, "--match-set"))) return Blocker{"fail2ban", *jail, std::nullopt};
  if (starts_with(rule.chain, "ufw-") || starts_with(rule.chain, "ufw6-")) return Blocker{"ufw", rule.chain, std::nullopt};
  if (rule.table == "firewalld" || starts_with(rule.table, "firewalld")) {
    // A policy's chain keeps its own name until firewalld's files say whose it is (firewall.cpp).
    const auto zone = firewalld_zone(rule.chain);
    return Blocker{"firewalld", zone ? *zone : rule.chain, std::nullopt};
  }
  // sshguard: its nft backend's table sshguard, its iptables chain sshguard, its ipsets sshguard4/6.
  const std::string set = word_after(rule.text, "--match-set");
  if (rule.table == "sshguard" || rule.chain == "sshguard" || set == "sshguard4" || set == "sshguard6")
    return Blocker{"sshguard", rule.table == "sshguard" ? "table sshguard" : !set.empty() ? set : rule.chain, std::nullopt};
  return std::nullopt;
}

}  // namespace rsttrace

namespace rsttrace {
namespace {

// The -j target of a rule line ("-A ufw-user-input -p tcp --dport 22 -j DROP" -> "DROP").
std::string target_of(std::string_view line) {
  const size_t at = line.rfind(" -j ");
  if (at == std::string_view::npos) return "";
  const std::string_view rest = line.substr(at + 4);
  return std::string(rest.substr(0, rest.find(' ')));
}

// user.rules' -A lines for `chain`, each with the ordinal of the `### tuple ###` above it.
struct UfwFileRule {
  std::string target;
  uint64_t tuple = 0;  // 1-based within the file; 0: not under a tuple
};

std::vector<UfwFileRule> ufw_file_rules(std::string_view text, const std::string& chain, uint64_t& tuples) {
  std::vector<UfwFileRule> rules;
  tuples = 0;
  size_t lines = 0;
  for (size_t pos = 0; pos < text.size() && lines < kMaxUfwLines; ++lines) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.rfind("### tuple ### ", 0) == 0) ++tuples;
    else if (line.rfind("-A " + chain + " ", 0) == 0) rules.push_back({target_of(line), tuples});
  }
  return rules;
}

}  // namespace

std::optional<uint64_t> ufw_rule_number(const UfwFiles& files, int family, const std::string& chain, size_t position,
                                        const std::vector<std::string>& live_targets) {
  uint64_t tuples4 = 0, tuples6 = 0;
  const auto rules4 = ufw_file_rules(files.user_rules, chain, tuples4);
  const auto rules6 = ufw_file_rules(files.user6_rules, chain, tuples6);
  const auto& rules = family == 6 ? rules6 : rules4;
  // The file must be the one loaded: the chain's rules, their number and targets, as the kernel has them.
  if (rules.size() != live_targets.size() || position >= rules.size() || rules[position].tuple == 0) return std::nullopt;
  for (size_t i = 0; i < rules.size(); ++i)
    if (rules[i].target != live_targets[i]) return std::nullopt;
  // `ufw status numbered` lists user.rules' tuples, then user6.rules'.
  return (family == 6 ? tuples4 : 0) + rules[position].tuple;
}

}  // namespace rsttrace
