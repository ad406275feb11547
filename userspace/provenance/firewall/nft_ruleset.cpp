// (over 450 lines: one walker class, whose statement and left-side readers share its packet and document)
#include "provenance/firewall/nft_ruleset.h"

#include <algorithm>
#include <sstream>
#include <string_view>
#include <utility>

#include "provenance/firewall/field_matches.h"
#include "provenance/firewall/iptables_ruleset.h"
#include "provenance/firewall/limits.h"
#include "provenance/tristate.h"
#include "text/json_nesting.h"

namespace rsttrace::firewall {
namespace {

using Json = nlohmann::json;

// Typed reads of the document: a missing member or one of another type reads
// as absent (nlohmann's operator[] on a const missing key reads out of bounds,
// and value()/get() throw on a type mismatch).
const Json* member(const Json& object, const char* name) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

std::string text_of(const Json& object, const char* name) {
  const Json* m = member(object, name);
  return m && m->is_string() ? m->get<std::string>() : std::string();
}

std::optional<uint64_t> unsigned_of(const Json* j) {
  if (!j || !j->is_number_unsigned()) return std::nullopt;
  return j->get<uint64_t>();
}

std::optional<uint64_t> unsigned_of(const Json& object, const char* name) { return unsigned_of(member(object, name)); }

int64_t integer_of(const Json& object, const char* name, int64_t fallback) {
  const Json* m = member(object, name);
  return m && m->is_number_integer() ? m->get<int64_t>() : fallback;
}

// The packet's value for the left side of a match, in a comparable form.
// Words: a word the right side names matches if the packet has it (ct state
// has one, ct status as many as bits are set).
struct Value {
  enum Kind { Address, Number, Words, WrongFamily } kind;
  const std::array<uint8_t, 16>* address = nullptr;
  uint64_t number = 0;
  std::vector<std::string> words;
  bool interface = false;  // words are a device name: the right side may end in a wildcard
};

// What one rule says, read statement by statement.
struct RuleReading {
  Match match = Match::Yes;  // all its matches together
  Action action = Action::None;
  std::string target;     // of a jump or goto
  std::string undecided;  // the first match or statement it could not decide
  bool has_xt_match = false;  // iptables-nft wrote a match nft shows only as "xt"
  std::optional<uint64_t> packets;

  void add(Match m, const std::string& what) {
    if (m == Match::Maybe && undecided.empty()) undecided = what;
    match = both(match, m);
  }
};

constexpr int64_t kConntrackPriority = -200;  // NF_IP_PRI_CONNTRACK; NF_IP6_PRI_CONNTRACK is the same

class NftWalker {
 public:
  NftWalker(const Json& root, const PacketFacts& packet, const IptRuleset* iptables_nft)
      : packet_(packet), iptables_nft_(iptables_nft) {
    const Json* objects = member(root, "nftables");
    if (!objects || !objects->is_array()) return;
    // By reference: the walker keeps pointers into the document.
    for (const auto& object : *objects) {
      if (const Json* c = member(object, "chain"); c && c->is_object()) {
        chains_[key(*c, text_of(*c, "name"))] = c;
      } else if (const Json* s = member(object, "set"); s && s->is_object()) {
        sets_[key(*s, text_of(*s, "name"))] = s;
      } else if (const Json* r = member(object, "rule"); r && r->is_object()) {
        rules_[key(*r, text_of(*r, "chain"))].push_back(r);
        if (sets_mark(*r)) packet_.mark.reset();  // the mark at the drop is not what earlier rules saw
      }
    }
  }

  // The first element of a listed set that holds the packet's source address, as nft writes it.
  std::optional<std::string> element_holding(const std::string& family, const std::string& table,
                                             const std::string& set) const {
    const auto found = sets_.find(family + "/" + table + "/" + set);
    const Json* elements = found == sets_.end() ? nullptr : member(*found->second, "elem");
    if (!elements || !elements->is_array()) return std::nullopt;
    const Value source{Value::Address, &packet_.saddr};
    for (const auto& e : *elements) {
      if (element(e, source) != Match::Yes) continue;
      const Json* val = member(e, "elem") ? member(*member(e, "elem"), "val") : &e;
      if (!val) return std::nullopt;
      if (val->is_string()) return val->get<std::string>();
      if (const Json* prefix = member(*val, "prefix"); prefix && unsigned_of(*prefix, "len"))
        return text_of(*prefix, "addr") + "/" + std::to_string(*unsigned_of(*prefix, "len"));
      if (const Json* range = member(*val, "range"); range && range->is_array() && range->size() == 2 &&
                                                     (*range)[0].is_string() && (*range)[1].is_string())
        return (*range)[0].get<std::string>() + "-" + (*range)[1].get<std::string>();
      return std::nullopt;
    }
    return std::nullopt;
  }

  // Conntrack has run for chains after its priority (ct state is set there).
  void enter_base_chain(const Json& chain) { conntrack_seen_ = integer_of(chain, "prio", 0) > kConntrackPriority; }

  // Base chains of the packet's hook and family, by priority.
  std::vector<const Json*> base_chains() const {
    std::vector<const Json*> chains;
    for (const auto& [k, c] : chains_) {
      const std::string family = text_of(*c, "family");
      const bool family_ok = family == "inet" || family == (packet_.family == 4 ? "ip" : "ip6");
      if (family_ok && text_of(*c, "hook") == packet_.hook) chains.push_back(c);
    }
    std::stable_sort(chains.begin(), chains.end(), [](const Json* a, const Json* b) {
      return integer_of(*a, "prio", 0) < integer_of(*b, "prio", 0);
    });
    return chains;
  }

  // `state.budget`: rules left to look at for this packet; at 0 the walk
  // stops where it is (what was found so far stands, uncertain at best).
  Outcome walk(const Json& chain, WalkState& state, int depth = 0) const {
    Outcome outcome;
    if (depth > kMaxJumpDepth) return outcome;
    const std::vector<const Json*>& rules = rules_for(chain);
    for (size_t position = 0; position < rules.size(); ++position) {
      const Json* rule = rules[position];
      if (--state.budget < 0) return outcome;
      const RuleReading reading = read_rule(*rule, position);
      const Action action = reading.action;
      if (reading.match == Match::No || action == Action::None) continue;
      const bool terminal_drop = action == Action::Drop || action == Action::Reject;
      const auto next = action == Action::Jump || action == Action::Goto ? chains_.find(key(*rule, reading.target))
                                                                          : chains_.end();
      if ((action == Action::Jump || action == Action::Goto) && next == chains_.end()) continue;  // no such chain
      const std::string chain_name = text_of(*rule, "chain");
      const std::string why = reading.match == Match::Maybe ? reading.undecided + " in " + chain_name
                                                            : reading.undecided + " (a verdict not evaluated) in " + chain_name;
      if (reading.match == Match::Maybe || action == Action::Unknown) {
        if (terminal_drop) {
          if (!outcome.candidate) outcome.candidate = doubted(describe(*rule, action, reading.packets), why);
          WalkState::note(state.drop_doubt, why);
        } else if (action == Action::Jump) {
          // Maybe taken: its drops are candidates; the rest of this chain is in doubt only if it may decide.
          WalkState inner_state{state.budget, state.drop_doubt, why};
          Outcome inner = walk(*next->second, inner_state, depth + 1);
          state.budget = inner_state.budget;
          if (!outcome.candidate) outcome.candidate = inner.kind == Outcome::Dropped ? inner.rule : inner.candidate;
          if (inner.kind == Outcome::Dropped) WalkState::note(state.drop_doubt, why);
          // The probe is paid from the packet's budget: many maybe-jumps cannot multiply the cost.
          if (may_decide(*next->second, state.budget, depth + 1)) WalkState::note(state.chain_doubt, why);
        } else {
          WalkState::note(state.chain_doubt, why);  // maybe accepted, returned, gone elsewhere
        }
        if (state.budget < 0) return outcome;
        continue;
      }
      if (terminal_drop) {
        outcome.kind = Outcome::Dropped;
        outcome.rule = doubted(describe(*rule, action, reading.packets), state.doubt());
        return outcome;
      }
      if (action == Action::Accept) {
        outcome.kind = Outcome::Accepted;
        return outcome;
      }
      if (action == Action::Return) return outcome;
      Outcome inner = walk(*next->second, state, depth + 1);
      if (!outcome.candidate) outcome.candidate = inner.candidate;
      if (inner.kind != Outcome::Continue || action == Action::Goto) {
        inner.candidate = outcome.candidate;
        return inner;
      }
      if (state.budget < 0) return outcome;
    }
    if (depth == 0 && state.budget >= 0 && text_of(chain, "policy") == "drop") {
      outcome.kind = Outcome::Dropped;
      FirewallRule policy = doubted(describe(chain, Action::Drop, std::nullopt), state.doubt());
      policy.verdict = "policy drop";
      policy.handle.reset();
      policy.text = "policy drop";
      outcome.rule = policy;
    }
    return outcome;
  }

  // Whether a chain may end the walk (accept, drop, a verdict not read),
  // through its jumps: a rule that maybe jumps into one that cannot changes nothing.
  bool may_decide(const Json& chain, int& budget, int depth) const {
    if (depth > kMaxJumpDepth) return true;
    const std::vector<const Json*>& rules = rules_for(chain);
    for (size_t position = 0; position < rules.size(); ++position) {
      if (--budget < 0) return true;
      const RuleReading reading = read_rule(*rules[position], position);
      if (reading.match == Match::No || reading.action == Action::None || reading.action == Action::Return) continue;
      if (reading.action != Action::Jump && reading.action != Action::Goto) return true;
      const auto next = chains_.find(key(*rules[position], reading.target));
      if (next != chains_.end() && (reading.action == Action::Goto || may_decide(*next->second, budget, depth + 1)))
        return true;
    }
    return false;
  }

 private:
  static std::string key(const Json& o, const std::string& name) {
    return text_of(o, "family") + "/" + text_of(o, "table") + "/" + name;
  }

  const std::vector<const Json*>& rules_for(const Json& chain) const {
    static const std::vector<const Json*> kNone;
    auto it = rules_.find(key(chain, text_of(chain, "name")));
    return it == rules_.end() ? kNone : it->second;
  }

  // A rule's statements in order. One reader per statement kind; an
  // expression is read as the first kind in this table it holds. A kind not
  // listed may end the walk (a verdict map, a queue...): the rule is then
  // undecided, named by it.
  RuleReading read_rule(const Json& rule, size_t position) const {
    using Reader = void (*)(const NftWalker&, const Json& body, const Json& rule, RuleReading&);
    static constexpr std::pair<const char*, Reader> kStatements[] = {
        {"match", [](const NftWalker& w, const Json& m, const Json& rule, RuleReading& r) { w.read_match(m, rule, r); }},
        {"counter", [](const NftWalker&, const Json& c, const Json&, RuleReading& r) { r.packets = unsigned_of(c, "packets"); }},
        {"drop", [](const NftWalker&, const Json&, const Json&, RuleReading& r) { r.action = Action::Drop; }},
        {"reject", [](const NftWalker&, const Json&, const Json&, RuleReading& r) { r.action = Action::Reject; }},
        {"accept", [](const NftWalker&, const Json&, const Json&, RuleReading& r) { r.action = Action::Accept; }},
        {"return", [](const NftWalker&, const Json&, const Json&, RuleReading& r) { r.action = Action::Return; }},
        {"jump", [](const NftWalker&, const Json& j, const Json&, RuleReading& r) {
           r.action = Action::Jump, r.target = text_of(j, "target");
         }},
        {"goto", [](const NftWalker&, const Json& g, const Json&, RuleReading& r) {
           r.action = Action::Goto, r.target = text_of(g, "target");
         }},
        {"xt", [](const NftWalker&, const Json& xt, const Json&, RuleReading& r) { read_xt(xt, r); }},
        // Statements that let the packet go on, changing nothing a match here reads
        // (a mark they set is handled where the walker is built).
        {"log", [](const NftWalker&, const Json&, const Json&, RuleReading&) {}},
        {"mangle", [](const NftWalker&, const Json&, const Json&, RuleReading&) {}},
        {"set", [](const NftWalker&, const Json&, const Json&, RuleReading&) {}},
        {"notrack", [](const NftWalker&, const Json&, const Json&, RuleReading&) {}},
        {"comment", [](const NftWalker&, const Json&, const Json&, RuleReading&) {}},
        // Rate, quota and connection-count matches depend on what came before: undecided.
        {"limit", [](const NftWalker&, const Json&, const Json&, RuleReading& r) { r.add(Match::Maybe, "limit"); }},
        {"quota", [](const NftWalker&, const Json&, const Json&, RuleReading& r) { r.add(Match::Maybe, "quota"); }},
        {"meter", [](const NftWalker&, const Json&, const Json&, RuleReading& r) { r.add(Match::Maybe, "meter"); }},
    };
    RuleReading reading;
    const Json* exprs = member(rule, "expr");
    if (!exprs || !exprs->is_array()) {
      reading.add(Match::Maybe, "a rule without expressions");
      reading.action = Action::Unknown;
      return reading;
    }
    for (const auto& expr : *exprs) {
      if (!expr.is_object() || expr.empty()) {
        reading.add(Match::Maybe, "an expression that is not an object");
        continue;
      }
      bool known = false;
      for (const auto& [name, read] : kStatements)
        if (const Json* body = member(expr, name)) {
          read(*this, *body, rule, reading);
          known = true;
          break;
        }
      if (!known) {
        reading.add(Match::Maybe, "statement " + expr.begin().key());
        reading.action = Action::Unknown;
      }
    }
    // A match iptables-nft wrote as xt: decided by the iptables-nft-save line at the same place.
    if (reading.has_xt_match) xt_matches(rule, position, reading);
    return reading;
  }

  void read_match(const Json& m, const Json& rule, RuleReading& reading) const {
    std::string what;
    const Match result = expression(m, rule, what);
    reading.add(result, what);
  }

  // An xtables extension iptables-nft wrote into nft.
  static void read_xt(const Json& xt, RuleReading& reading) {
    const std::string name = text_of(xt, "name");
    if (text_of(xt, "type") != "target") {
      if (name != "comment") reading.has_xt_match = true;  // a comment matches everything
    } else if (name == "REJECT") {
      reading.action = Action::Reject;
    } else if (name == "DROP") {
      reading.action = Action::Drop;
    } else if (name == "ACCEPT") {
      reading.action = Action::Accept;
    } else if (!target_continues(name)) {
      reading.add(Match::Maybe, "xt target " + name);
      reading.action = Action::Unknown;
    }
  }

  // The n-th rule of an iptables-nft chain is the n-th -A line of
  // iptables-nft-save for it: its matches are read there, all of them (the
  // xt ones nft cannot show, and the native ones again, which agree).
  void xt_matches(const Json& rule, size_t position, RuleReading& reading) const {
    const std::string family = text_of(rule, "family");
    const auto chain = iptables_nft_ && (family == "ip" || family == "ip6")
                           ? iptables_nft_->chains.find(ipt_chain_key(family == "ip6" ? 6 : 4, text_of(rule, "table"),
                                                                      text_of(rule, "chain")))
                           : decltype(iptables_nft_->chains.end()){};
    if (!iptables_nft_ || chain == iptables_nft_->chains.end() || position >= chain->second.size()) {
      reading.add(Match::Maybe, "an xt match without its iptables-nft-save line");
      return;
    }
    IptRuleReading line;
    PacketFacts facts = packet_;
    if (!conntrack_seen_) facts.conntrack.reset();
    reading.add(ipt_rule_matches(chain->second[position], facts, line), line.undecided);
  }

  FirewallRule describe(const Json& rule, Action action, std::optional<uint64_t> packets) const {
    FirewallRule out;
    out.backend = "nftables";
    out.family = text_of(rule, "family");
    out.table = text_of(rule, "table");
    out.chain = rule.contains("chain") ? text_of(rule, "chain") : text_of(rule, "name");
    out.handle = unsigned_of(rule, "handle");
    out.verdict = action == Action::Reject ? "reject" : "drop";
    out.packets = packets;
    // fail2ban: its sets are addr-set-<jail>, its iptables chains f2b-<jail>.
    out.fail2ban_jail = fail2ban_jail_of(out.chain);
    if (const Json* exprs = member(rule, "expr"); exprs && exprs->is_array())
      for (const auto& expr : *exprs)
        if (const Json* m = member(expr, "match")) {
          const std::string right = text_of(*m, "right");
          if (right.rfind('@', 0) == 0 && !out.fail2ban_jail) out.fail2ban_jail = fail2ban_jail_of(right.substr(1));
        }
    return out;
  }

  // The left side of a match: one reader per expression kind. A kind not
  // listed, or a key a reader does not know, cannot be decided.
  std::optional<Value> value_of(const Json& left) const {
    using Reader = std::optional<Value> (NftWalker::*)(const Json&) const;
    static constexpr std::pair<const char*, Reader> kLeftSides[] = {
        {"payload", &NftWalker::payload_value},
        {"meta", &NftWalker::meta_value},
        {"ct", &NftWalker::ct_value},
        {"fib", &NftWalker::fib_value},
    };
    for (const auto& [name, read] : kLeftSides)
      if (const Json* body = member(left, name)) return (this->*read)(*body);
    return std::nullopt;
  }

  std::optional<Value> payload_value(const Json& payload) const {
    const std::string protocol = text_of(payload, "protocol"), field = text_of(payload, "field");
    if (protocol == "ip" || protocol == "ip6") {
      if ((protocol == "ip") != (packet_.family == 4)) return Value{Value::WrongFamily};
      if (field == "saddr") return Value{Value::Address, &packet_.saddr};
      if (field == "daddr") return Value{Value::Address, &packet_.daddr};
      if (field == "protocol" || field == "nexthdr") return words({"tcp", "6"});
      return std::nullopt;
    }
    // Another transport's header field: nft matches it only on that transport (its implicit l4proto test).
    static constexpr std::string_view kOtherTransports[] = {"udp", "udplite", "sctp", "dccp", "icmp", "icmpv6",
                                                            "esp", "ah", "comp", "igmp", "gre"};
    if (std::find(std::begin(kOtherTransports), std::end(kOtherTransports), protocol) != std::end(kOtherTransports))
      return Value{Value::WrongFamily};
    if (protocol == "tcp" || protocol == "th") {
      if (field == "dport") return Value{Value::Number, nullptr, packet_.dport};
      if (field == "sport") return Value{Value::Number, nullptr, packet_.sport};
    }
    return std::nullopt;
  }

  static Value words(std::vector<std::string> words) { return Value{Value::Words, nullptr, 0, std::move(words)}; }

  std::optional<Value> meta_value(const Json& meta) const {
    const std::string key = text_of(meta, "key");
    if (key == "l4proto") return words({"tcp", "6"});
    if (key == "nfproto") return words({packet_.family == 4 ? "ipv4" : "ipv6", packet_.family == 4 ? "2" : "10"});
    if ((key == "iifname" || key == "iif") && packet_.in_interface) {
      Value v = words({*packet_.in_interface});
      v.interface = true;
      return v;
    }
    if (key == "mark" && packet_.mark) return Value{Value::Number, nullptr, *packet_.mark};
    return std::nullopt;
  }

  // ct state, status, original destination: conntrack's entry at the drop,
  // for chains after conntrack's own hook.
  std::optional<Value> ct_value(const Json& ct) const {
    if (!conntrack_seen_ || !packet_.conntrack) return std::nullopt;
    const ConntrackFacts& facts = *packet_.conntrack;
    using State = ConntrackFacts::State;
    const std::string key = text_of(ct, "key");
    if (key == "state") {
      static constexpr const char* kStates[] = {"invalid", "new", "established", "related", "untracked"};
      return words({kStates[static_cast<int>(facts.state)]});
    }
    if (facts.state == State::Invalid || facts.state == State::Untracked) return std::nullopt;  // no entry to read
    if (key == "status") {
      static constexpr std::pair<const char*, uint32_t> kBits[] = {
          {"expected", 1u << 0}, {"seen-reply", 1u << 1}, {"assured", 1u << 2}, {"confirmed", 1u << 3},
          {"snat", 1u << 4}, {"dnat", 1u << 5}, {"dying", 1u << 9}};
      Value v = words({});
      for (const auto& [name, bit] : kBits)
        if (facts.status & bit) v.words.push_back(name);
      return v;
    }
    if (text_of(ct, "dir") != "original") return std::nullopt;
    if (key == "proto-dst") return Value{Value::Number, nullptr, facts.original_dport};
    if (key == "daddr" || key == "ip daddr" || key == "ip6 daddr") {
      const std::string family = text_of(ct, "family");
      if (!family.empty() && (family == "ip") != (packet_.family == 4)) return Value{Value::WrongFamily};
      return Value{Value::Address, &facts.original_daddr};
    }
    return std::nullopt;
  }

  // fib daddr type: the type of the packet's IPv4 input route.
  std::optional<Value> fib_value(const Json& fib) const {
    const Json* flags = member(fib, "flags");
    const bool daddr_only = flags && ((flags->is_string() && flags->get<std::string>() == "daddr") ||
                                      (flags->is_array() && flags->size() == 1 && (*flags)[0] == "daddr"));
    if (text_of(fib, "result") != "type" || !daddr_only || !packet_.route_type || packet_.family != 4) return std::nullopt;
    static constexpr const char* kTypes[] = {"unspec", "unicast", "local", "broadcast", "anycast", "multicast",
                                             "blackhole", "unreachable", "prohibit", "throw", "nat", "xresolve"};
    if (*packet_.route_type >= std::size(kTypes)) return std::nullopt;
    return words({kTypes[*packet_.route_type]});
  }

  // One element of the right side (a value, prefix, range, list) against the packet's value.
  Match element(const Json& e, const Value& v) const {
    if (const Json* elem = member(e, "elem")) {  // {"elem": {"val": ..., "timeout": ...}}
      const Json* val = member(*elem, "val");
      return val && !val->contains("elem") ? element(*val, v) : Match::Maybe;
    }
    switch (v.kind) {
      case Value::Address:
        if (e.is_string()) return address_matches(e.get<std::string>(), packet_.family, *v.address);
        if (const Json* prefix = member(e, "prefix")) {
          const auto length = unsigned_of(*prefix, "len");
          if (!length || *length > 128) return Match::Maybe;
          return address_matches(text_of(*prefix, "addr") + "/" + std::to_string(*length), packet_.family, *v.address);
        }
        if (const Json* range = member(e, "range")) {  // {"range": ["10.0.0.5", "10.0.0.7"]}
          if (!range->is_array() || range->size() != 2 || !(*range)[0].is_string() || !(*range)[1].is_string())
            return Match::Maybe;
          return address_range_matches((*range)[0].get<std::string>() + "-" + (*range)[1].get<std::string>(),
                                       packet_.family, *v.address);
        }
        return Match::Maybe;
      case Value::Number:
        if (e.is_number_unsigned()) return e.get<uint64_t>() == v.number ? Match::Yes : Match::No;
        if (e.is_number()) return Match::No;  // negative or fractional: no port is
        if (const Json* range = member(e, "range")) {
          if (!range->is_array() || range->size() != 2) return Match::Maybe;
          const auto low = unsigned_of(&(*range)[0]), high = unsigned_of(&(*range)[1]);
          if (!low || !high) return Match::Maybe;
          return *low <= v.number && v.number <= *high ? Match::Yes : Match::No;
        }
        return Match::Maybe;
      case Value::Words:
        if (e.is_string()) return match_of(has_word(v, e.get<std::string>()));
        // A device by index (iif 3, when nft could not name it): not what rsttrace read.
        if (e.is_number_unsigned()) return v.interface ? Match::Maybe : match_of(has_word(v, std::to_string(e.get<uint64_t>())));
        if (e.is_array()) {
          Match any = Match::No;
          for (const auto& word : e) any = either(any, word.is_string() ? match_of(has_word(v, word.get<std::string>())) : Match::Maybe);
          return any;
        }
        return Match::Maybe;
      case Value::WrongFamily: return Match::No;
    }
    return Match::Maybe;
  }

  static bool has_word(const Value& v, const std::string& word) {
    for (const std::string& own : v.words) {
      if (own == word) return true;
      // iifname "veth*": a prefix (nft writes a wildcard so, and escapes a literal \*).
      if (v.interface && !word.empty() && word.back() == '*' && (word.size() < 2 || word[word.size() - 2] != '\\') &&
          own.rfind(word.substr(0, word.size() - 1), 0) == 0)
        return true;
    }
    return false;
  }

  // A set's elements: the first that matches decides.
  Match any(const Json& elements, const Value& v) const {
    if (!elements.is_array()) return Match::Maybe;
    Match result = Match::No;
    for (const auto& e : elements) {
      result = either(result, element(e, v));
      if (result == Match::Yes) return Match::Yes;
    }
    return result;
  }

  // The left side as nft writes it, to name an undecided match ("ct state", "tcp dport").
  static std::string left_name(const Json& left) {
    if (!left.is_object() || left.empty()) return "a match";
    const std::string kind = left.begin().key();
    const Json& body = left.begin().value();
    if (kind == "payload") return text_of(body, "protocol") + " " + text_of(body, "field");
    if (kind == "meta" || kind == "ct") return kind + " " + text_of(body, "key");
    return kind;
  }

  // `what`: the match as named when it cannot be decided.
  Match expression(const Json& m, const Json& rule, std::string& what) const {
    const Json* left = member(m, "left");
    const Json* right = member(m, "right");
    what = left ? left_name(*left) : "a match without a left side";
    if (!left || !right) return Match::Maybe;  // a match without both sides: not nft's, not decidable
    const auto value = value_of(*left);
    if (!value) {
      if (member(*left, "ct")) what += conntrack_seen_ ? " (no conntrack evidence at the drop)" : " (before conntrack)";
      return Match::Maybe;
    }
    if (value->kind == Value::WrongFamily) return Match::No;
    Match result;
    if (right->is_string() && right->get<std::string>().rfind('@', 0) == 0) {
      auto set = sets_.find(key(rule, right->get<std::string>().substr(1)));
      if (set == sets_.end()) {
        what += " in an unlisted set";
        return Match::Maybe;
      }
      const Json* elements = member(*set->second, "elem");
      result = elements ? any(*elements, *value) : Match::No;
    } else if (const Json* anonymous = member(*right, "set")) {
      result = any(*anonymous, *value);
    } else {
      result = element(*right, *value);
    }
    const Json* op_field = member(m, "op");
    const std::string op = op_field ? text_of(m, "op") : "==";
    if (op == "==" || op == "in") return result;
    if (op == "!=") return negate(result);
    return Match::Maybe;
  }

  // Whether a rule sets the packet's mark (meta mark set).
  static bool sets_mark(const Json& rule) {
    const Json* exprs = member(rule, "expr");
    if (!exprs || !exprs->is_array()) return false;
    for (const auto& expr : *exprs)
      if (const Json* mangle = member(expr, "mangle"))
        if (const Json* target = member(*mangle, "key"); target && member(*target, "meta")) return true;
    return false;
  }

  PacketFacts packet_;  // a copy: the mark is dropped when rules set it
  const IptRuleset* iptables_nft_;
  bool conntrack_seen_ = true;
  std::map<std::string, const Json*> chains_, sets_;
  std::map<std::string, std::vector<const Json*>> rules_;
};

}  // namespace

Json parse_nft_json(const std::string& text, std::vector<std::string>& notes) {
  if (text.empty()) return Json(Json::value_t::discarded);
  if (text.size() > kMaxRulesetText) {
    notes.push_back("nft -j list ruleset: larger than " + std::to_string(kMaxRulesetText) + " bytes: not read");
    return Json(Json::value_t::discarded);
  }
  if (json_nests_deeper_than(text, kMaxJsonDepth)) {
    notes.push_back("nft -j list ruleset: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels: not read");
    return Json(Json::value_t::discarded);
  }
  Json root = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) notes.push_back("nft -j list ruleset: not JSON: not read");
  return root;
}

std::map<std::string, std::string> nft_rule_texts(const std::string& text, std::vector<std::string>& notes) {
  std::map<std::string, std::string> texts;
  if (text.size() > kMaxRulesetText) {
    notes.push_back("nft list ruleset: larger than " + std::to_string(kMaxRulesetText) + " bytes: not read");
    return texts;
  }
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

Outcome walk_nft(const Json& root, const PacketFacts& packet, const IptRuleset* iptables_nft) {
  NftWalker walker(root, packet, iptables_nft);
  Outcome found;
  WalkState state{kWalkBudget, {}, {}};  // one budget for every base chain of the packet's hook
  for (const Json* chain : walker.base_chains()) {
    walker.enter_base_chain(*chain);
    state.chain_doubt.clear();  // an accept ends only its own base chain
    Outcome outcome = walker.walk(*chain, state);
    if (!found.candidate && outcome.candidate) found.candidate = std::move(outcome.candidate);
    if (outcome.kind == Outcome::Dropped) {
      found.kind = Outcome::Dropped;
      found.rule = std::move(outcome.rule);
      return found;
    }
    if (state.budget < 0) break;
  }
  found.budget_spent = state.budget < 0;
  return found;
}

std::optional<size_t> nft_rule_position(const Json& root, const FirewallRule& rule) {
  const Json* objects = member(root, "nftables");
  if (!objects || !objects->is_array()) return std::nullopt;
  std::vector<std::optional<uint64_t>> handles;
  for (const auto& object : *objects)
    if (const Json* r = member(object, "rule"); r && text_of(*r, "table") == rule.table &&
                                               text_of(*r, "chain") == rule.chain &&
                                               text_of(*r, "family") == rule.family)
      handles.push_back(unsigned_of(*r, "handle"));
  return static_cast<size_t>(std::find(handles.begin(), handles.end(), rule.handle) - handles.begin());
}

std::optional<uint64_t> nft_previous_handle(const Json& root, const FirewallRule& rule) {
  const Json* objects = member(root, "nftables");
  if (!objects || !objects->is_array() || !rule.handle) return std::nullopt;
  std::optional<uint64_t> previous;
  for (const auto& object : *objects) {
    const Json* r = member(object, "rule");
    if (!r || text_of(*r, "table") != rule.table || text_of(*r, "chain") != rule.chain || text_of(*r, "family") != rule.family)
      continue;
    const auto handle = unsigned_of(*r, "handle");
    if (handle == rule.handle) return previous;
    previous = handle;
  }
  return std::nullopt;
}

std::optional<uint64_t> nft_rule_counter(const Json& root, const FirewallRule& rule) {
  const Json* objects = member(root, "nftables");
  if (!objects || !objects->is_array() || !rule.handle) return std::nullopt;
  for (const auto& object : *objects) {
    const Json* r = member(object, "rule");
    if (!r || unsigned_of(*r, "handle") != rule.handle || text_of(*r, "table") != rule.table ||
        text_of(*r, "chain") != rule.chain || text_of(*r, "family") != rule.family)
      continue;
    if (const Json* exprs = member(*r, "expr"); exprs && exprs->is_array())
      for (const auto& expr : *exprs)
        if (const Json* counter = member(expr, "counter")) return unsigned_of(*counter, "packets");
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<std::string> nft_set_element(const Json& root, const FirewallRule& rule, const std::string& set,
                                           const PacketFacts& packet) {
  return NftWalker(root, packet, nullptr).element_holding(rule.family, rule.table, set);
}

std::string without_counter(const std::string& text) {
  static constexpr std::string_view kCounter = "counter packets ";
  const size_t at = text.find(kCounter);
  if (at == std::string::npos) return text;
  size_t end = at + kCounter.size();
  // "counter packets N bytes M": skip N, " bytes ", M.
  for (int field = 0; field < 2; ++field) {
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    if (field == 0 && text.compare(end, 7, " bytes ") == 0) end += 7;
  }
  return text.substr(0, at) + "counter" + text.substr(end);
}

}  // namespace rsttrace::firewall
