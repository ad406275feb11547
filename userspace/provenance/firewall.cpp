// Reading a namespace's rulesets and asking them about packets: nftables
// (provenance/firewall/nft_ruleset) first, as iptables-nft's tables live in
// nf_tables too, then iptables-legacy (provenance/firewall/iptables_ruleset).
#include "provenance/firewall.h"

#include <dirent.h>
#include <string.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>
#include <set>

#include "privsep/safe_access.h"
#include "provenance/command.h"
#include "provenance/firewall/iptables_ruleset.h"
#include "provenance/firewall/ipsets.h"
#include "provenance/firewall/nft_netlink.h"
#include "provenance/firewall/nft_ruleset.h"
#include "text/escape.h"

namespace rsttrace {

using firewall::IptRuleset;
using firewall::Outcome;

struct RulesetIndex::Parsed {
  nlohmann::json nft;
  std::map<std::string, std::string> nft_texts;
  IptRuleset iptables_nft;
  IptRuleset iptables_legacy;
  std::vector<UfwFiles> ufw;
  std::vector<FirewalldZoneFile> firewalld_zones, firewalld_policies;
  firewall::Ipsets ipsets;
  bool read_over_netlink = false;  // nft crashed: `nft` holds nf_tables as netlink stated it
  std::string reader_failure;
  std::vector<std::string> notes;
};

std::string nft_crash_note(int signal) {
  const char* name = sigabbrev_np(signal);
  return "this host's nft crashed reading the namespace's ruleset (" +
         (name ? "SIG" + std::string(name) : "signal " + std::to_string(signal)) + "): written by a newer nft?";
}

RulesetIndex::RulesetIndex(const Rulesets& rulesets) : parsed_(std::make_unique<Parsed>()) {
  Parsed& parsed = *parsed_;
  // The parsers check what they read; this catches only what they could not
  // foresee (memory), so that no ruleset ends tracing.
  try {
    parsed.nft = firewall::parse_nft_json(rulesets.nft_json, parsed.notes);
    parsed.nft_texts = firewall::nft_rule_texts(rulesets.nft_text, parsed.notes);
    parsed.iptables_nft = firewall::parse_iptables_save(rulesets.iptables_nft, "iptables-nft-save");
    parsed.iptables_legacy = firewall::parse_iptables_save(rulesets.iptables_legacy, "iptables-legacy-save");
    parsed.ufw = rulesets.ufw;
    parsed.firewalld_zones = rulesets.firewalld_zones;
    parsed.firewalld_policies = rulesets.firewalld_policies;
    parsed.ipsets = firewall::parse_ipset_save(rulesets.ipsets, parsed.notes);
    if (rulesets.nft_crashed) {
      // nft crashed: nf_tables as netlink states it, decoded into the document nft would have printed.
      parsed.reader_failure = nft_crash_note(*rulesets.nft_crashed);
      const firewall::NetlinkRuleset netlink = firewall::parse_nft_netlink_dump(rulesets.nft_netlink);
      parsed.notes.insert(parsed.notes.end(), netlink.notes.begin(), netlink.notes.end());
      if (netlink.read) {
        parsed.nft = firewall::nft_json_of_netlink(netlink, parsed.nft_texts);
        parsed.read_over_netlink = true;
      }
    }
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
const std::string& RulesetIndex::reader_failure() const { return parsed_->reader_failure; }

std::optional<FirewallRule> find_dropping_rule(const Rulesets& rulesets, const PacketFacts& packet) {
  return RulesetIndex(rulesets).find_dropping_rule(packet);
}

std::optional<FirewallRule> RulesetIndex::find_dropping_rule(const PacketFacts& packet) const {
  try {
    auto rule = walk_rulesets(packet);
    if (rule) {
      rule->blocker = blocker_of(*rule);
      // fail2ban's ipset actions name the jail in the set (-m set --match-set f2b-<jail>), not the chain.
      if (rule->blocker && rule->blocker->tool == "fail2ban" && !rule->fail2ban_jail)
        rule->fail2ban_jail = rule->blocker->name;
      if (rule->blocker && rule->blocker->tool == "ufw") rule->blocker->rule_number = ufw_number(*rule);
      if (rule->blocker && rule->blocker->tool == "firewalld") add_firewalld_zone(*rule, packet);
      rule->set_element = set_element(*rule, packet);
    }
    return rule;
  } catch (const std::exception&) {
    return std::nullopt;  // memory, not the input: the walk reads the document only through typed checks
  }
}

// firewalld: the zone of a zone's own drop or reject in its dispatch chain
// (firewalld 2), the policy (or zone) a filter_IN_policy_ chain is, and
// whether its zone or policy file holds the block.
void RulesetIndex::add_firewalld_zone(FirewallRule& rule, const PacketFacts& packet) const {
  Blocker& blocker = *rule.blocker;
  static const std::regex saddr("\\bip6? saddr ([0-9a-fA-F.:/]+) ");
  std::smatch match;
  const std::string address =
      std::regex_search(rule.text, match, saddr) ? match[1].str() : format_address(packet.family, packet.saddr);
  if (!firewalld_policy_candidates(rule.chain).empty()) {
    const auto owner = firewalld_policy_owner(rule.chain, parsed_->firewalld_policies, parsed_->firewalld_zones);
    if (!owner) return;  // ambiguous or no file: the chain's own name, nothing claimed
    blocker.name = owner->name;
    blocker.permanent = owner->policy.empty()
                            ? firewalld_permanent(parsed_->firewalld_zones, owner->name, address, owner->rich)
                            : firewalld_policy_permanent(parsed_->firewalld_policies, *owner, address);
    return;
  }
  if (rule.backend == "nftables" && !parsed_->nft.is_discarded())
    if (const auto previous = firewall::nft_previous_handle(parsed_->nft, rule)) {
      const auto text = parsed_->nft_texts.find(rule.family + "/" + rule.table + "/" + rule.chain + "/" +
                                                std::to_string(*previous));
      if (text != parsed_->nft_texts.end())
        if (const auto zone = firewalld_dispatch_zone(rule.text, text->second)) blocker.name = *zone;
    }
  // A rich rule (a zone's part chain) names its source; a zone's own drop or
  // reject took the client's address (or the dispatch rule's) as a source.
  const bool rich = rule.chain.rfind("filter_IN_" + blocker.name + "_", 0) == 0;
  blocker.permanent = firewalld_permanent(parsed_->firewalld_zones, blocker.name, address, rich);
}

// The set entry that holds the client, for a rule that tests the source
// address against a set (`ip saddr @S`, `-m set --match-set S src`).
std::optional<std::string> RulesetIndex::set_element(const FirewallRule& rule, const PacketFacts& packet) const {
  static const std::regex nft_set("\\bip6? saddr @([^ ]{1,256})"), ipset("--match-set ([^ ]{1,256}) src\\b");
  std::smatch match;
  if (rule.backend == "nftables" && !parsed_->nft.is_discarded() && std::regex_search(rule.text, match, nft_set))
    return firewall::nft_set_element(parsed_->nft, rule, match[1].str(), packet);
  if (rule.backend != "nftables" && std::regex_search(rule.text, match, ipset)) {
    const auto set = parsed_->ipsets.find(match[1].str());
    if (set != parsed_->ipsets.end()) return firewall::ipset_entry_holding(set->second, packet.family, packet.saddr);
  }
  return std::nullopt;
}

std::optional<uint64_t> RulesetIndex::ufw_number(const FirewallRule& rule) const {
  const IptRuleset& ruleset = rule.backend == "iptables-legacy" ? parsed_->iptables_legacy : parsed_->iptables_nft;
  const int family = rule.family == "ip6" ? 6 : 4;
  const auto chain = ruleset.chains.find(firewall::ipt_chain_key(family, rule.table, rule.chain));
  if (!rule.position || chain == ruleset.chains.end()) return std::nullopt;
  std::vector<std::string> targets;
  for (const firewall::IptRule& live : chain->second) {
    const auto jump = std::find(live.args.begin(), live.args.end(), "-j");
    targets.push_back(jump != live.args.end() && jump + 1 != live.args.end() ? *(jump + 1) : "");
  }
  for (const UfwFiles& files : parsed_->ufw)
    if (const auto number = ufw_rule_number(files, family, rule.chain, *rule.position, targets)) return number;
  return std::nullopt;
}

namespace {

// An iptables rule's target (-j) is the verdict nft gives the same rule: its
// drop is `-j DROP`, its reject `-j REJECT`.
bool ipt_target_agrees(const std::string& spec, const std::string& verdict) {
  const size_t jump = spec.find(" -j ");
  if (jump == std::string::npos) return false;
  const size_t start = jump + 4;
  std::string target = spec.substr(start, spec.find(' ', start) - start);
  for (char& c : target) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return target == verdict;
}

}  // namespace

std::optional<FirewallRule> RulesetIndex::walk_rulesets(const PacketFacts& asked) const {
  PacketFacts packet = asked;
  packet.ipsets = &parsed_->ipsets;
  std::optional<FirewallRule> candidate;
  bool budget_spent = false;
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
            rule.position = *position;
            const auto chain = iptables_nft.chains.find(chain_key);
            const firewall::IptRule* same = chain != iptables_nft.chains.end() && *position < chain->second.size()
                                                ? &chain->second[*position]
                                                : nullptr;
            if (same && ipt_target_agrees(same->spec, rule.verdict)) {
              rule.text = same->spec;
            } else {
              // nft -j and iptables-save are two reads: a rule inserted or deleted
              // between them moves the places, and the text would be another rule's.
              const auto text = texts.find(rule.family + "/" + rule.table + "/" + rule.chain + "/" +
                                           std::to_string(*rule.handle));
              if (text != texts.end()) rule.text = text->second;
              rule.certain = false;
              rule.undecided = "the ruleset changed while it was read (iptables-nft-save has " +
                               (same ? "another rule at that place: " + same->spec : std::string("no rule at that place")) +
                               ")";
            }
          }
      } else if (rule.handle) {
        const auto text = texts.find(rule.family + "/" + rule.table + "/" + rule.chain + "/" + std::to_string(*rule.handle));
        if (text != texts.end()) rule.text = text->second;
      }
      return rule;
    };
    Outcome outcome = firewall::walk_nft(root, packet, &iptables_nft);
    if (outcome.candidate) candidate = finish(*outcome.candidate);
    if (outcome.kind == Outcome::Dropped) return finish(*outcome.rule);
    budget_spent = outcome.budget_spent;
  }
  // iptables-legacy: its own hooks, its own tables.
  Outcome outcome = firewall::walk_iptables(parsed_->iptables_legacy, packet, "iptables-legacy");
  if (outcome.kind == Outcome::Dropped) return outcome.rule;
  if (!candidate) candidate = outcome.candidate;
  // A candidate is the first doubted drop: one further on, past the budget, may be the one.
  if (candidate && (budget_spent || outcome.budget_spent)) candidate->undecided += "; " + firewall::budget_note();
  return candidate;
}

namespace {

constexpr size_t kMaxUfwRoots = 8;  // mount namespaces whose ufw or firewalld files are read, per network namespace
constexpr size_t kMaxFirewalldZones = 64;  // zone and policy names read per network namespace
// firewalld's zone names: letters, digits, '_' and '-' (a name is a file name: nothing else is read).
constexpr const char* kZoneNameChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

// The roots (/proc/PID/root) of the processes of the network namespace, one
// per mount namespace: ufw and firewalld keep their files in the root of
// whoever ran them. Only processes in the initial user namespace: in one of
// its own, a user could show a file of their making (the walk checks each
// ufw file against the live chain too, so a stale or foreign copy names no rule).
std::vector<std::string> process_roots(uint32_t netns_inode, SystemAccess& access) {
  std::vector<std::string> roots;
  std::set<ino_t> mount_namespaces;
  const uint32_t initial_user_ns = own_user_ns();
  DIR* dir = opendir("/proc");
  if (!dir) return roots;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] < '1' || entry->d_name[0] > '9' || roots.size() >= kMaxUfwRoots) continue;
    const std::string proc = std::string("/proc/") + entry->d_name;
    const auto net = access.stat_file(proc + "/ns/net");
    if (!net || net->st_ino != netns_inode) continue;
    const auto user = access.stat_file(proc + "/ns/user");
    const auto mnt = access.stat_file(proc + "/ns/mnt");
    if (!user || user->st_ino != initial_user_ns || !mnt || !mount_namespaces.insert(mnt->st_ino).second) continue;
    roots.push_back(proc + "/root");
  }
  closedir(dir);
  return roots;
}

std::vector<UfwFiles> read_ufw_files(uint32_t netns_inode, SystemAccess& access) {
  std::vector<UfwFiles> found;
  for (const std::string& root : process_roots(netns_inode, access)) {
    UfwFiles files;
    files.user_rules = access.read_file(root + "/etc/ufw/user.rules").value_or("");
    files.user6_rules = access.read_file(root + "/etc/ufw/user6.rules").value_or("");
    if (!files.user_rules.empty() || !files.user6_rules.empty()) found.push_back(std::move(files));
  }
  return found;
}

// firewalld's zone files for the zones its chains name (filter_IN_<zone>...),
// and for a policy's chain (filter_IN_policy_...) both readings of each name
// it may stand for: policy P's file and zone policy_P's. A zone without a file
// in a root is recorded with an empty text: as shipped, nothing of the client
// in it; a policy without one likewise (firewalld writes no file empty).
void read_firewalld_files(Rulesets& rulesets, uint32_t netns_inode, SystemAccess& access) {
  constexpr std::string_view kChain = "chain filter_IN_";
  const std::string& nft_text = rulesets.nft_text;
  std::set<std::string> zones, policies;
  for (size_t at = nft_text.find(kChain); at != std::string::npos && zones.size() + policies.size() < kMaxFirewalldZones;
       at = nft_text.find(kChain, at + 1)) {
    const size_t end = nft_text.find_first_not_of(kZoneNameChars, at + kChain.size());
    if (end == std::string::npos || end == at + kChain.size() || end - at > kChain.size() + 64) continue;
    FirewallRule named{.table = "firewalld", .chain = nft_text.substr(at + 6, end - at - 6)};
    for (const std::string& name : firewalld_policy_candidates(named.chain))
      policies.insert(name), zones.insert("policy_" + name);
    if (const auto blocker = blocker_of(named); blocker && blocker->name != named.chain) zones.insert(blocker->name);
  }
  if (zones.empty()) return;
  for (const std::string& root : process_roots(netns_inode, access)) {
    for (const std::string& zone : zones)
      rulesets.firewalld_zones.push_back(
          {zone, access.read_file(root + "/etc/firewalld/zones/" + zone + ".xml", 1 << 16).value_or("")});
    for (const std::string& policy : policies)
      rulesets.firewalld_policies.push_back(
          {policy, access.read_file(root + "/etc/firewalld/policies/" + policy + ".xml", 1 << 16).value_or("")});
  }
}

}  // namespace

std::optional<uint64_t> RulesetIndex::counter_of(const FirewallRule& rule) const {
  try {
    if (rule.backend == "nftables") {
      // The same handle holding the same rule (handles restart with a new table): texts without their counters.
      if (!rule.handle || parsed_->nft.is_discarded()) return std::nullopt;
      const auto text = parsed_->nft_texts.find(rule.family + "/" + rule.table + "/" + rule.chain + "/" +
                                                std::to_string(*rule.handle));
      if (text == parsed_->nft_texts.end() ||
          firewall::without_counter(text->second) != firewall::without_counter(rule.text))
        return std::nullopt;
      return firewall::nft_rule_counter(parsed_->nft, rule);
    }
    const IptRuleset& ruleset = rule.backend == "iptables-legacy" ? parsed_->iptables_legacy : parsed_->iptables_nft;
    const auto chain = ruleset.chains.find(firewall::ipt_chain_key(rule.family == "ip6" ? 6 : 4, rule.table, rule.chain));
    if (!rule.position || chain == ruleset.chains.end() || *rule.position >= chain->second.size()) return std::nullopt;
    const firewall::IptRule& same = chain->second[*rule.position];
    if (same.spec != rule.text) return std::nullopt;
    return same.packets;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void corroborate_with_counters(FirewallRule& rule, const RulesetIndex& before) {
  if (!rule.packets || rule.verdict == "policy drop") return;
  const auto earlier = before.counter_of(rule);
  if (!earlier) return;
  rule.counter_moved = *rule.packets > *earlier;
  if (!*rule.counter_moved) {
    rule.certain = false;
    rule.undecided = "its counter did not move between readings before and after the drop (" +
                     std::to_string(*earlier) + " packets both times)";
  }
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
  for (std::string* text : {&rulesets.nft_json, &rulesets.nft_text})
    if (const auto signal = killed_by_signal(*text)) {
      rulesets.nft_crashed = *signal;
      text->clear();
    }
  if (rulesets.nft_crashed) {
    rulesets.nft_json.clear(), rulesets.nft_text.clear();
    rulesets.nft_netlink = in_netns({kNftNetlinkDump});
  }
  rulesets.iptables_nft = in_netns({"iptables-nft-save", "-c"}) + in_netns({"ip6tables-nft-save", "-c"});
  rulesets.iptables_legacy = in_netns({"iptables-legacy-save", "-c"}) + in_netns({"ip6tables-legacy-save", "-c"});
  // ufw's chains: its rule numbers are in its files.
  if (rulesets.iptables_nft.find(":ufw-user-") != std::string::npos ||
      rulesets.iptables_legacy.find(":ufw-user-") != std::string::npos)
    rulesets.ufw = read_ufw_files(netns_inode, access);
  if (rulesets.nft_text.find("table inet firewalld {") != std::string::npos)
    read_firewalld_files(rulesets, netns_inode, access);
  if (rulesets.iptables_nft.find("--match-set") != std::string::npos ||
      rulesets.iptables_legacy.find("--match-set") != std::string::npos)
    rulesets.ipsets = in_netns({"ipset", "save"});
  return rulesets;
}

}  // namespace rsttrace
