#include "provenance/firewall.h"

#include <arpa/inet.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "provenance/command.h"

namespace rsttrace {
namespace {

using Json = nlohmann::json;

enum class Match { No, Yes, Unknown };

Match negate(Match m) { return m == Match::Yes ? Match::No : m == Match::No ? Match::Yes : Match::Unknown; }

Match combine(Match a, Match b) {  // both must hold
  if (a == Match::No || b == Match::No) return Match::No;
  return a == Match::Unknown || b == Match::Unknown ? Match::Unknown : Match::Yes;
}

// a.b.c.d, a.b.c.d/len, a.b.c.d/m.m.m.m, and the IPv6 forms, against an address.
Match address_matches(const std::string& pattern, int family, const std::array<uint8_t, 16>& addr) {
  std::string base = pattern;
  int prefix = family == 4 ? 32 : 128;
  std::array<uint8_t, 16> net{}, mask{};
  const size_t slash = pattern.find('/');
  if (slash != std::string::npos) {
    base = pattern.substr(0, slash);
    const std::string rest = pattern.substr(slash + 1);
    if (rest.find('.') != std::string::npos) {
      if (family != 4 || inet_pton(AF_INET, rest.c_str(), mask.data()) != 1) return Match::Unknown;
      prefix = -1;
    } else {
      prefix = std::atoi(rest.c_str());
    }
  }
  if (inet_pton(family == 4 ? AF_INET : AF_INET6, base.c_str(), net.data()) != 1) {
    std::array<uint8_t, 16> other{};
    if (inet_pton(family == 4 ? AF_INET6 : AF_INET, base.c_str(), other.data()) == 1) return Match::No;
    return Match::Unknown;
  }
  const int bytes = family == 4 ? 4 : 16;
  if (prefix >= 0)
    for (int i = 0; i < bytes; ++i) {
      const int bits = std::clamp(prefix - i * 8, 0, 8);
      mask[i] = static_cast<uint8_t>(bits == 0 ? 0 : (0xff << (8 - bits)) & 0xff);
    }
  for (int i = 0; i < bytes; ++i)
    if ((net[i] & mask[i]) != (addr[i] & mask[i])) return Match::No;
  return Match::Yes;
}

Match port_matches(const std::string& spec, uint16_t port) {  // "22", "1000:2000"
  const size_t colon = spec.find(':');
  const long low = std::atol(spec.substr(0, colon).c_str());
  const long high = colon == std::string::npos ? low : std::atol(spec.substr(colon + 1).c_str());
  return low <= port && port <= high ? Match::Yes : Match::No;
}

// What a rule does when it matches.
enum class Action { None, Drop, Reject, Accept, Return, Jump, Goto };

struct Outcome {
  enum Kind { Continue, Accepted, Dropped } kind = Continue;
  std::optional<FirewallRule> rule;
  std::optional<FirewallRule> candidate;  // a drop whose matches could not all be evaluated
};

// ---- nftables, from `nft -j -a list ruleset` -----------------------------

// The packet's value for the left side of a match, in a comparable form.
struct Value {
  enum Kind { Address, Number, Word, WrongFamily } kind;
  const std::array<uint8_t, 16>* address = nullptr;
  uint64_t number = 0;
  std::string word;
};

class NftWalker {
 public:
  NftWalker(const Json& root, const PacketFacts& packet) : packet_(packet) {
    if (!root.contains("nftables") || !root["nftables"].is_array()) return;
    // By reference: the walker keeps pointers into the document.
    for (const auto& object : root["nftables"]) {
      if (object.contains("chain")) {
        const Json& c = object["chain"];
        chains_[key(c, c.value("name", ""))] = &c;
      } else if (object.contains("set")) {
        const Json& s = object["set"];
        sets_[key(s, s.value("name", ""))] = &s;
      } else if (object.contains("rule")) {
        const Json& r = object["rule"];
        rules_[key(r, r.value("chain", ""))].push_back(&r);
      }
    }
  }

  // Base chains of the packet's hook and family, by priority.
  std::vector<const Json*> base_chains() const {
    std::vector<const Json*> chains;
    for (const auto& [k, c] : chains_) {
      const std::string family = c->value("family", "");
      const bool family_ok = family == "inet" || family == (packet_.family == 4 ? "ip" : "ip6");
      if (family_ok && c->value("hook", "") == packet_.hook) chains.push_back(c);
    }
    std::stable_sort(chains.begin(), chains.end(),
                     [](const Json* a, const Json* b) { return a->value("prio", 0) < b->value("prio", 0); });
    return chains;
  }

  Outcome walk(const Json& chain, int depth = 0) const {
    Outcome outcome;
    if (depth > 16) return outcome;
    for (const Json* rule : rules_for(chain)) {
      Match match = Match::Yes;
      Action action = Action::None;
      std::string target;
      std::optional<uint64_t> packets;
      for (const auto& expr : rule->value("expr", Json::array())) {
        if (expr.contains("match")) match = combine(match, expression(expr["match"], *rule));
        else if (expr.contains("counter")) packets = expr["counter"].value("packets", uint64_t{0});
        else if (expr.contains("drop")) action = Action::Drop;
        else if (expr.contains("reject")) action = Action::Reject;
        else if (expr.contains("accept")) action = Action::Accept;
        else if (expr.contains("return")) action = Action::Return;
        else if (expr.contains("jump")) action = Action::Jump, target = expr["jump"].value("target", "");
        else if (expr.contains("goto")) action = Action::Goto, target = expr["goto"].value("target", "");
        else if (expr.contains("xt")) {
          const Json& xt = expr["xt"];
          const std::string name = xt.value("name", "");
          if (xt.value("type", "") != "target") match = combine(match, Match::Unknown);  // an xt match
          else if (name == "REJECT") action = Action::Reject;
          else if (name == "DROP") action = Action::Drop;
          else if (name == "ACCEPT") action = Action::Accept;
        } else if (expr.contains("limit") || expr.contains("quota")) {
          match = combine(match, Match::Unknown);
        }
      }
      if (match == Match::No || action == Action::None) continue;
      const bool terminal_drop = action == Action::Drop || action == Action::Reject;
      if (match == Match::Unknown) {
        if (terminal_drop && !outcome.candidate) outcome.candidate = describe(*rule, action, packets, false);
        continue;
      }
      if (terminal_drop) {
        outcome.kind = Outcome::Dropped;
        outcome.rule = describe(*rule, action, packets, true);
        return outcome;
      }
      if (action == Action::Accept) {
        outcome.kind = Outcome::Accepted;
        return outcome;
      }
      if (action == Action::Return) return outcome;
      auto next = chains_.find(key(*rule, target));
      if (next == chains_.end()) continue;
      Outcome inner = walk(*next->second, depth + 1);
      if (!outcome.candidate) outcome.candidate = inner.candidate;
      if (inner.kind != Outcome::Continue || action == Action::Goto) {
        inner.candidate = outcome.candidate;
        return inner;
      }
    }
    if (depth == 0 && chain.value("policy", "accept") == "drop") {
      outcome.kind = Outcome::Dropped;
      FirewallRule policy = describe(chain, Action::Drop, std::nullopt, true);
      policy.verdict = "policy drop";
      policy.handle.reset();
      policy.text = "policy drop";
      outcome.rule = policy;
    }
    return outcome;
  }

 private:
  static std::string key(const Json& o, const std::string& name) {
    return o.value("family", "") + "/" + o.value("table", "") + "/" + name;
  }

  std::vector<const Json*> rules_for(const Json& chain) const {
    auto it = rules_.find(key(chain, chain.value("name", "")));
    return it == rules_.end() ? std::vector<const Json*>{} : it->second;
  }

  FirewallRule describe(const Json& rule, Action action, std::optional<uint64_t> packets, bool certain) const {
    FirewallRule out;
    out.backend = "nftables";
    out.family = rule.value("family", "");
    out.table = rule.value("table", "");
    out.chain = rule.contains("chain") ? rule.value("chain", "") : rule.value("name", "");
    if (rule.contains("handle")) out.handle = rule["handle"].get<uint64_t>();
    out.verdict = action == Action::Reject ? "reject" : "drop";
    out.packets = packets;
    out.certain = certain;
    // fail2ban: its sets are addr-set-<jail>, its iptables chains f2b-<jail>.
    out.fail2ban_jail = fail2ban_jail_of(out.chain);
    for (const auto& expr : rule.value("expr", Json::array()))
      if (expr.contains("match") && expr["match"]["right"].is_string()) {
        const std::string right = expr["match"]["right"].get<std::string>();
        if (right.rfind('@', 0) == 0 && !out.fail2ban_jail) out.fail2ban_jail = fail2ban_jail_of(right.substr(1));
      }
    return out;
  }

  std::optional<Value> value_of(const Json& left) const {
    if (left.contains("payload")) {
      const Json& p = left["payload"];
      const std::string protocol = p.value("protocol", ""), field = p.value("field", "");
      if (protocol == "ip" || protocol == "ip6") {
        if ((protocol == "ip") != (packet_.family == 4)) return Value{Value::WrongFamily};
        if (field == "saddr") return Value{Value::Address, &packet_.saddr};
        if (field == "daddr") return Value{Value::Address, &packet_.daddr};
        return std::nullopt;
      }
      if (protocol == "tcp" || protocol == "th") {
        if (field == "dport") return Value{Value::Number, nullptr, packet_.dport};
        if (field == "sport") return Value{Value::Number, nullptr, packet_.sport};
      }
      return std::nullopt;
    }
    if (left.contains("meta")) {
      const std::string meta = left["meta"].value("key", "");
      if (meta == "l4proto") return Value{Value::Word, nullptr, 0, "tcp"};
      if (meta == "nfproto") return Value{Value::Word, nullptr, 0, packet_.family == 4 ? "ipv4" : "ipv6"};
      return std::nullopt;
    }
    if (left.contains("ct") && left["ct"].value("key", "") == "state")
      return Value{Value::Word, nullptr, 0, packet_.syn ? "new" : "established"};
    return std::nullopt;
  }

  Match element(const Json& e, const Value& v) const {
    if (e.is_object() && e.contains("elem")) return element(e["elem"]["val"], v);
    switch (v.kind) {
      case Value::Address:
        if (e.is_string()) return address_matches(e.get<std::string>(), packet_.family, *v.address);
        if (e.is_object() && e.contains("prefix"))
          return address_matches(e["prefix"].value("addr", "") + "/" + std::to_string(e["prefix"].value("len", 0)),
                                 packet_.family, *v.address);
        return Match::Unknown;
      case Value::Number:
        if (e.is_number()) return e.get<uint64_t>() == v.number ? Match::Yes : Match::No;
        if (e.is_object() && e.contains("range"))
          return e["range"][0].get<uint64_t>() <= v.number && v.number <= e["range"][1].get<uint64_t>() ? Match::Yes
                                                                                                         : Match::No;
        return Match::Unknown;
      case Value::Word:
        if (e.is_string()) return e.get<std::string>() == v.word ? Match::Yes : Match::No;
        if (e.is_array()) {
          for (const auto& word : e)
            if (word == v.word) return Match::Yes;
          return Match::No;
        }
        return Match::Unknown;
      case Value::WrongFamily: return Match::No;
    }
    return Match::Unknown;
  }

  Match any(const Json& elements, const Value& v) const {
    Match result = Match::No;
    for (const auto& e : elements) {
      const Match m = element(e, v);
      if (m == Match::Yes) return Match::Yes;
      if (m == Match::Unknown) result = Match::Unknown;
    }
    return result;
  }

  Match expression(const Json& m, const Json& rule) const {
    const auto value = value_of(m["left"]);
    if (!value) return Match::Unknown;
    if (value->kind == Value::WrongFamily) return Match::No;
    const Json& right = m["right"];
    Match result;
    if (right.is_string() && right.get<std::string>().rfind('@', 0) == 0) {
      auto set = sets_.find(key(rule, right.get<std::string>().substr(1)));
      if (set == sets_.end()) return Match::Unknown;
      result = set->second->contains("elem") ? any((*set->second)["elem"], *value) : Match::No;
    } else if (right.is_object() && right.contains("set")) {
      result = any(right["set"], *value);
    } else {
      result = element(right, *value);
    }
    const std::string op = m.value("op", "==");
    if (op == "==" || op == "in") return result;
    if (op == "!=") return negate(result);
    return Match::Unknown;
  }

  const PacketFacts& packet_;
  std::map<std::string, const Json*> chains_, sets_;
  std::map<std::string, std::vector<const Json*>> rules_;
};

// `nft -a list ruleset` text: family/table/chain/handle -> the rule as written.
std::map<std::string, std::string> nft_rule_texts(const std::string& text) {
  std::map<std::string, std::string> texts;
  std::istringstream lines(text);
  std::string line, family, table, chain;
  while (std::getline(lines, line)) {
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos) continue;
    line = line.substr(start);
    std::istringstream words(line);
    std::string first;
    words >> first;
    if (first == "table") {
      words >> family >> table;
    } else if (first == "chain") {
      words >> chain;
    } else if (const auto mark = line.rfind(" # handle "); mark != std::string::npos && !chain.empty()) {
      texts[family + "/" + table + "/" + chain + "/" + line.substr(mark + 10)] = line.substr(0, mark);
    }
  }
  return texts;
}

// ---- iptables, from `iptables-save -c` -------------------------------------

struct IptRule {
  std::string table, chain, spec;
  std::vector<std::string> args;
  uint64_t packets = 0;
  int family = 4;
};

struct IptRuleset {
  std::map<std::string, std::vector<IptRule>> chains;  // family/table/chain
  std::map<std::string, std::string> policies;
};

std::vector<std::string> split_args(const std::string& text) {
  std::vector<std::string> args;
  std::string current;
  bool quoted = false, have = false;
  for (char c : text) {
    if (c == '"') {
      quoted = !quoted;
      have = true;
    } else if (!quoted && (c == ' ' || c == '\t')) {
      if (have) args.push_back(current);
      current.clear();
      have = false;
    } else {
      current += c;
      have = true;
    }
  }
  if (have) args.push_back(current);
  return args;
}

IptRuleset parse_iptables_save(const std::string& text) {
  IptRuleset ruleset;
  std::istringstream lines(text);
  std::string line, table;
  int family = 4;
  while (std::getline(lines, line)) {
    if (line.rfind("# Generated by ip6tables", 0) == 0) family = 6;
    else if (line.rfind("# Generated by iptables", 0) == 0) family = 4;
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '*') {
      table = line.substr(1);
    } else if (line[0] == ':') {
      std::istringstream words(line.substr(1));
      std::string chain, policy;
      words >> chain >> policy;
      ruleset.policies[std::to_string(family) + "/" + table + "/" + chain] = policy;
    } else if (line[0] == '[') {
      IptRule rule;
      rule.packets = std::strtoull(line.c_str() + 1, nullptr, 10);
      rule.spec = line.substr(line.find(']') + 2);
      rule.args = split_args(rule.spec);
      if (rule.args.size() < 2 || rule.args[0] != "-A") continue;
      rule.chain = rule.args[1];
      rule.table = table;
      rule.family = family;
      ruleset.chains[std::to_string(family) + "/" + table + "/" + rule.chain].push_back(std::move(rule));
    }
  }
  return ruleset;
}

class IptWalker {
 public:
  IptWalker(const IptRuleset& ruleset, const PacketFacts& packet, std::string backend)
      : ruleset_(ruleset), packet_(packet), backend_(std::move(backend)) {}

  // The hook's chains in netfilter's order: raw, mangle, filter.
  Outcome run() const {
    const std::string chain = packet_.hook == "prerouting" ? "PREROUTING" : packet_.hook == "input" ? "INPUT" : "OUTPUT";
    Outcome last;
    for (const char* table : {"raw", "mangle", "filter"}) {
      const std::string key = std::to_string(packet_.family) + "/" + table + "/" + chain;
      if (!ruleset_.policies.count(key)) continue;
      Outcome outcome = walk(key, 0);
      if (!last.candidate) last.candidate = outcome.candidate;
      if (outcome.kind == Outcome::Dropped) return outcome;
      if (outcome.kind == Outcome::Continue && ruleset_.policies.at(key) == "DROP") {
        outcome.kind = Outcome::Dropped;
        outcome.rule = FirewallRule{backend_, packet_.family == 4 ? "ip" : "ip6", table, chain, std::nullopt,
                                    ":" + chain + " DROP", "policy drop"};
        return outcome;
      }
    }
    return last;
  }

 private:
  Outcome walk(const std::string& key, int depth) const {
    Outcome outcome;
    auto chain = ruleset_.chains.find(key);
    if (chain == ruleset_.chains.end() || depth > 16) return outcome;
    for (const IptRule& rule : chain->second) {
      std::string target;
      const Match match = matches(rule, target);
      if (match == Match::No || target.empty()) continue;
      const bool terminal_drop = target == "DROP" || target == "REJECT";
      if (match == Match::Unknown) {
        if (terminal_drop && !outcome.candidate) outcome.candidate = describe(rule, target, false);
        continue;
      }
      if (terminal_drop) {
        outcome.kind = Outcome::Dropped;
        outcome.rule = describe(rule, target, true);
        return outcome;
      }
      if (target == "ACCEPT") {
        outcome.kind = Outcome::Accepted;
        return outcome;
      }
      if (target == "RETURN") return outcome;
      const std::string next = std::to_string(rule.family) + "/" + rule.table + "/" + target;
      if (!ruleset_.chains.count(next) && !ruleset_.policies.count(next)) continue;  // LOG and other targets
      Outcome inner = walk(next, depth + 1);
      if (!outcome.candidate) outcome.candidate = inner.candidate;
      if (inner.kind != Outcome::Continue) {
        inner.candidate = outcome.candidate;
        return inner;
      }
    }
    return outcome;
  }

  FirewallRule describe(const IptRule& rule, const std::string& target, bool certain) const {
    FirewallRule out{backend_, rule.family == 4 ? "ip" : "ip6", rule.table, rule.chain, std::nullopt, rule.spec,
                     target == "REJECT" ? "reject" : "drop"};
    out.packets = rule.packets;
    out.certain = certain;
    out.fail2ban_jail = fail2ban_jail_of(rule.chain);
    return out;
  }

  // The rule's matches against the packet; its -j target in `target`.
  Match matches(const IptRule& rule, std::string& target) const {
    Match result = Match::Yes;
    const auto& a = rule.args;
    bool negated = false;
    for (size_t i = 2; i < a.size(); ++i) {
      const std::string& opt = a[i];
      auto next = [&]() -> std::string { return i + 1 < a.size() ? a[++i] : ""; };
      auto apply = [&](Match m) {
        result = combine(result, negated ? negate(m) : m);
        negated = false;
      };
      if (opt == "!") {
        negated = true;
      } else if (opt == "-p" || opt == "--protocol") {
        const std::string p = next();
        apply(p == "tcp" || p == "6" || p == "all" ? Match::Yes : Match::No);
      } else if (opt == "-s" || opt == "--source" || opt == "-d" || opt == "--destination") {
        const std::string pattern = next();
        const bool source = opt == "-s" || opt == "--source";
        Match any = Match::No;
        for (size_t start = 0; start <= pattern.size();) {
          const size_t comma = pattern.find(',', start);
          const Match m = address_matches(pattern.substr(start, comma - start), packet_.family,
                                          source ? packet_.saddr : packet_.daddr);
          if (m == Match::Yes) any = Match::Yes;
          else if (m == Match::Unknown && any == Match::No) any = Match::Unknown;
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
        apply(any);
      } else if (opt == "--dport" || opt == "--destination-port" || opt == "--sport" || opt == "--source-port") {
        const bool dest = opt == "--dport" || opt == "--destination-port";
        apply(port_matches(next(), dest ? packet_.dport : packet_.sport));
      } else if (opt == "--dports" || opt == "--sports" || opt == "--ports") {
        const std::string list = next();
        Match any = Match::No;
        for (size_t start = 0; start <= list.size();) {
          const size_t comma = list.find(',', start);
          const std::string port = list.substr(start, comma - start);
          if (opt == "--ports") {
            if (port_matches(port, packet_.dport) == Match::Yes || port_matches(port, packet_.sport) == Match::Yes)
              any = Match::Yes;
          } else if (port_matches(port, opt == "--dports" ? packet_.dport : packet_.sport) == Match::Yes) {
            any = Match::Yes;
          }
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
        apply(any);
      } else if (opt == "--ctstate" || opt == "--state") {
        const std::string states = next();
        apply(states.find(packet_.syn ? "NEW" : "ESTABLISHED") != std::string::npos ? Match::Yes : Match::No);
      } else if (opt == "-m" || opt == "--match") {
        const std::string module = next();
        if (module != "tcp" && module != "multiport" && module != "conntrack" && module != "state" &&
            module != "comment")
          apply(Match::Unknown);
      } else if (opt == "--comment") {
        next();
      } else if (opt == "-j" || opt == "--jump" || opt == "-g" || opt == "--goto") {
        target = next();
        break;  // target options follow
      } else if (opt == "-i" || opt == "-o" || opt == "--in-interface" || opt == "--out-interface") {
        next();
        apply(Match::Unknown);
      } else if (opt.rfind("-", 0) == 0) {
        apply(Match::Unknown);  // an option not evaluated here
      }
    }
    return result;
  }

  const IptRuleset& ruleset_;
  const PacketFacts& packet_;
  std::string backend_;
};

}  // namespace

std::optional<std::string> fail2ban_jail_of(const std::string& name) {
  for (const char* prefix : {"f2b-", "addr-set-", "addr6-set-"})
    if (name.rfind(prefix, 0) == 0 && name.size() > std::char_traits<char>::length(prefix) &&
        name != "f2b-chain" && name != "f2b-table")
      return name.substr(std::char_traits<char>::length(prefix));
  return std::nullopt;
}

struct RulesetIndex::Parsed {
  Json nft;
  std::map<std::string, std::string> nft_texts;
  IptRuleset iptables_nft;
  IptRuleset iptables_legacy;
};

RulesetIndex::RulesetIndex(const Rulesets& rulesets)
    : parsed_(std::make_unique<Parsed>(Parsed{Json::parse(rulesets.nft_json, nullptr, false),
                                              nft_rule_texts(rulesets.nft_text),
                                              parse_iptables_save(rulesets.iptables_nft),
                                              parse_iptables_save(rulesets.iptables_legacy)})) {}
RulesetIndex::~RulesetIndex() = default;
RulesetIndex::RulesetIndex(RulesetIndex&&) noexcept = default;
RulesetIndex& RulesetIndex::operator=(RulesetIndex&&) noexcept = default;

std::optional<FirewallRule> find_dropping_rule(const Rulesets& rulesets, const PacketFacts& packet) {
  return RulesetIndex(rulesets).find_dropping_rule(packet);
}

std::optional<FirewallRule> RulesetIndex::find_dropping_rule(const PacketFacts& packet) const {
  std::optional<FirewallRule> candidate;
  // nf_tables: native nftables and iptables-nft alike.
  const Json& root = parsed_->nft;
  if (!root.is_discarded()) {
    NftWalker walker(root, packet);
    const auto& texts = parsed_->nft_texts;
    const IptRuleset& iptables_nft = parsed_->iptables_nft;
    auto finish = [&](FirewallRule rule) {
      const std::string chain_key = std::to_string(rule.family == "ip6" ? 6 : 4) + "/" + rule.table + "/" + rule.chain;
      if ((rule.family == "ip" || rule.family == "ip6") && iptables_nft.policies.count(chain_key)) {
        // A table iptables-nft manages: show the rule as iptables-save writes it.
        rule.backend = "iptables-nft";
        if (rule.handle) {
          // The n-th rule of the chain in nft is the n-th -A line of iptables-nft-save.
          std::vector<uint64_t> handles;
          for (const auto& object : root.value("nftables", Json::array()))
            if (object.contains("rule") && object["rule"].value("table", "") == rule.table &&
                object["rule"].value("chain", "") == rule.chain && object["rule"].value("family", "") == rule.family)
              handles.push_back(object["rule"]["handle"].get<uint64_t>());
          const auto position = std::find(handles.begin(), handles.end(), *rule.handle) - handles.begin();
          const auto chain = iptables_nft.chains.find(chain_key);
          if (chain != iptables_nft.chains.end() && position < static_cast<long>(chain->second.size()))
            rule.text = chain->second[position].spec;
        }
      } else if (rule.handle) {
        const auto text = texts.find(rule.family + "/" + rule.table + "/" + rule.chain + "/" + std::to_string(*rule.handle));
        if (text != texts.end()) rule.text = text->second;
      }
      return rule;
    };
    for (const Json* chain : walker.base_chains()) {
      Outcome outcome = walker.walk(*chain);
      if (!candidate && outcome.candidate) candidate = finish(*outcome.candidate);
      if (outcome.kind == Outcome::Dropped) return finish(*outcome.rule);
    }
  }
  // iptables-legacy: its own hooks, its own tables.
  Outcome outcome = IptWalker(parsed_->iptables_legacy, packet, "iptables-legacy").run();
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
