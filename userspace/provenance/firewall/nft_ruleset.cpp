#include "provenance/firewall/nft_ruleset.h"

#include <algorithm>
#include <sstream>
#include <string_view>
#include <utility>

#include "provenance/firewall/field_matches.h"
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
struct Value {
  enum Kind { Address, Number, Word, WrongFamily } kind;
  const std::array<uint8_t, 16>* address = nullptr;
  uint64_t number = 0;
  std::string word;
};

// What one rule says, read statement by statement.
struct RuleReading {
  Match match = Match::Yes;  // all its matches together
  Action action = Action::None;
  std::string target;  // of a jump or goto
  std::optional<uint64_t> packets;
};

class NftWalker {
 public:
  NftWalker(const Json& root, const PacketFacts& packet) : packet_(packet) {
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
      }
    }
  }

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

  // `budget`: rules left to look at for this packet; at 0 the walk stops
  // where it is (what was found so far stands, uncertain at best).
  Outcome walk(const Json& chain, int& budget, int depth = 0) const {
    Outcome outcome;
    if (depth > kMaxJumpDepth) return outcome;
    for (const Json* rule : rules_for(chain)) {
      if (--budget < 0) return outcome;
      const Json* exprs = member(*rule, "expr");
      if (!exprs || !exprs->is_array()) continue;  // nothing it does can be read
      const RuleReading reading = read_rule(*exprs, *rule);
      const Action action = reading.action;
      if (reading.match == Match::No || action == Action::None) continue;
      const bool terminal_drop = action == Action::Drop || action == Action::Reject;
      if (reading.match == Match::Maybe) {
        if (terminal_drop && !outcome.candidate) outcome.candidate = describe(*rule, action, reading.packets, false);
        continue;
      }
      if (terminal_drop) {
        outcome.kind = Outcome::Dropped;
        outcome.rule = describe(*rule, action, reading.packets, true);
        return outcome;
      }
      if (action == Action::Accept) {
        outcome.kind = Outcome::Accepted;
        return outcome;
      }
      if (action == Action::Return) return outcome;
      auto next = chains_.find(key(*rule, reading.target));
      if (next == chains_.end()) continue;
      Outcome inner = walk(*next->second, budget, depth + 1);
      if (!outcome.candidate) outcome.candidate = inner.candidate;
      if (inner.kind != Outcome::Continue || action == Action::Goto) {
        inner.candidate = outcome.candidate;
        return inner;
      }
      if (budget < 0) return outcome;
    }
    if (depth == 0 && budget >= 0 && text_of(chain, "policy") == "drop") {
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
    return text_of(o, "family") + "/" + text_of(o, "table") + "/" + name;
  }

  const std::vector<const Json*>& rules_for(const Json& chain) const {
    static const std::vector<const Json*> kNone;
    auto it = rules_.find(key(chain, text_of(chain, "name")));
    return it == rules_.end() ? kNone : it->second;
  }

  // A rule's statements in order. One reader per statement kind; an
  // expression is read as the first kind in this table it holds, and kinds
  // not listed (log, counter-less notes...) do not change what the rule does.
  RuleReading read_rule(const Json& exprs, const Json& rule) const {
    using Reader = void (*)(const NftWalker&, const Json& body, const Json& rule, RuleReading&);
    static constexpr std::pair<const char*, Reader> kStatements[] = {
        {"match", [](const NftWalker& w, const Json& m, const Json& rule, RuleReading& r) {
           r.match = both(r.match, w.expression(m, rule));
         }},
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
        // Rate and quota matches depend on what came before: undecided.
        {"limit", [](const NftWalker&, const Json&, const Json&, RuleReading& r) { r.match = both(r.match, Match::Maybe); }},
        {"quota", [](const NftWalker&, const Json&, const Json&, RuleReading& r) { r.match = both(r.match, Match::Maybe); }},
    };
    RuleReading reading;
    for (const auto& expr : exprs) {
      if (!expr.is_object()) {
        reading.match = both(reading.match, Match::Maybe);
        continue;
      }
      for (const auto& [name, read] : kStatements)
        if (const Json* body = member(expr, name)) {
          read(*this, *body, rule, reading);
          break;
        }
    }
    return reading;
  }

  // An xtables extension iptables-nft wrote into nft.
  static void read_xt(const Json& xt, RuleReading& reading) {
    const std::string name = text_of(xt, "name");
    if (text_of(xt, "type") != "target") {
      // An xt match: only a comment (iptables-nft -m comment) is known to match everything.
      if (name != "comment") reading.match = both(reading.match, Match::Maybe);
    } else if (name == "REJECT") {
      reading.action = Action::Reject;
    } else if (name == "DROP") {
      reading.action = Action::Drop;
    } else if (name == "ACCEPT") {
      reading.action = Action::Accept;
    }
  }

  FirewallRule describe(const Json& rule, Action action, std::optional<uint64_t> packets, bool certain) const {
    FirewallRule out;
    out.backend = "nftables";
    out.family = text_of(rule, "family");
    out.table = text_of(rule, "table");
    out.chain = rule.contains("chain") ? text_of(rule, "chain") : text_of(rule, "name");
    out.handle = unsigned_of(rule, "handle");
    out.verdict = action == Action::Reject ? "reject" : "drop";
    out.packets = packets;
    out.certain = certain;
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
      return std::nullopt;
    }
    if (protocol == "tcp" || protocol == "th") {
      if (field == "dport") return Value{Value::Number, nullptr, packet_.dport};
      if (field == "sport") return Value{Value::Number, nullptr, packet_.sport};
    }
    return std::nullopt;
  }

  std::optional<Value> meta_value(const Json& meta) const {
    const std::string key = text_of(meta, "key");
    if (key == "l4proto") return Value{Value::Word, nullptr, 0, "tcp"};
    if (key == "nfproto") return Value{Value::Word, nullptr, 0, packet_.family == 4 ? "ipv4" : "ipv6"};
    return std::nullopt;
  }

  std::optional<Value> ct_value(const Json& ct) const {
    if (text_of(ct, "key") == "state") return Value{Value::Word, nullptr, 0, packet_.syn ? "new" : "established"};
    return std::nullopt;
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
      case Value::Word:
        if (e.is_string()) return e.get<std::string>() == v.word ? Match::Yes : Match::No;
        if (e.is_array()) {
          for (const auto& word : e)
            if (word.is_string() && word.get<std::string>() == v.word) return Match::Yes;
          return Match::No;
        }
        return Match::Maybe;
      case Value::WrongFamily: return Match::No;
    }
    return Match::Maybe;
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

  Match expression(const Json& m, const Json& rule) const {
    const Json* left = member(m, "left");
    const Json* right = member(m, "right");
    if (!left || !right) return Match::Maybe;  // a match without both sides: not nft's, not decidable
    const auto value = value_of(*left);
    if (!value) return Match::Maybe;
    if (value->kind == Value::WrongFamily) return Match::No;
    Match result;
    if (right->is_string() && right->get<std::string>().rfind('@', 0) == 0) {
      auto set = sets_.find(key(rule, right->get<std::string>().substr(1)));
      if (set == sets_.end()) return Match::Maybe;
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

  const PacketFacts& packet_;
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

Outcome walk_nft(const Json& root, const PacketFacts& packet) {
  NftWalker walker(root, packet);
  Outcome found;
  int budget = kWalkBudget;  // one for every base chain of the packet's hook
  for (const Json* chain : walker.base_chains()) {
    Outcome outcome = walker.walk(*chain, budget);
    if (!found.candidate && outcome.candidate) found.candidate = std::move(outcome.candidate);
    if (outcome.kind == Outcome::Dropped) {
      found.kind = Outcome::Dropped;
      found.rule = std::move(outcome.rule);
      return found;
    }
    if (budget < 0) break;
  }
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

}  // namespace rsttrace::firewall
