#include "provenance/firewall.h"

#include <arpa/inet.h>

#include <algorithm>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>

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

// The rulesets are the namespace owner's word (any user can make a user and
// network namespace): every parse is total, bounded and never throws.
constexpr size_t kMaxRulesetText = 16 << 20;  // per tool's output; a fail2ban set of 100k addresses is ~2 MiB
constexpr int kMaxJsonDepth = 64;             // nft prints about 10 levels
constexpr size_t kMaxIptablesRules = 200000;
constexpr size_t kMaxCommentLines = 64;       // a quoted comment continued over lines (it may hold newlines)
constexpr size_t kMaxRuleText = 64 << 10;     // one iptables rule; its comment is at most 256 bytes
constexpr int kMaxJumpDepth = 16;             // netfilter's own jump stack
constexpr int kWalkBudget = 200000;           // rules looked at per packet: jumps fan out exponentially

// Deeper than `limit` brackets outside strings: refused before parsing.
bool json_nests_deeper_than(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

// A decimal number that fits, or nullopt (atoi's overflow is undefined).
std::optional<long> small_number(std::string_view text, long max) {
  if (text.empty() || text.size() > 18) return std::nullopt;  // fits a long
  long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value > max) return std::nullopt;
  return value;
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
      const auto length = small_number(rest, family == 4 ? 32 : 128);
      if (!length) return Match::Unknown;
      prefix = static_cast<int>(*length);
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

Match port_matches(const std::string& spec, uint16_t port) {  // "22", "1000:2000", ":1024", "1024:"
  const size_t colon = spec.find(':');
  const std::string_view low_text = std::string_view(spec).substr(0, colon);
  const auto low = low_text.empty() && colon != std::string::npos ? std::optional<long>(0) : small_number(low_text, 65535);
  std::optional<long> high = low;
  if (colon != std::string::npos) {
    const std::string_view high_text = std::string_view(spec).substr(colon + 1);
    high = high_text.empty() ? std::optional<long>(65535) : small_number(high_text, 65535);
  }
  if (!low || !high) return Match::Unknown;
  return *low <= port && port <= *high ? Match::Yes : Match::No;
}

// What a rule does when it matches.
enum class Action { None, Drop, Reject, Accept, Return, Jump, Goto };

struct Outcome {
  enum Kind { Continue, Accepted, Dropped } kind = Continue;
  std::optional<FirewallRule> rule;
  std::optional<FirewallRule> candidate;  // a drop whose matches could not all be evaluated
};

// ---- nftables, from `nft -j -a list ruleset` -----------------------------

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
      Match match = Match::Yes;
      Action action = Action::None;
      std::string target;
      std::optional<uint64_t> packets;
      const Json* exprs = member(*rule, "expr");
      if (!exprs || !exprs->is_array()) continue;  // nothing it does can be read
      for (const auto& expr : *exprs) {
        if (!expr.is_object()) {
          match = combine(match, Match::Unknown);
        } else if (const Json* m = member(expr, "match")) {
          match = combine(match, expression(*m, *rule));
        } else if (const Json* counter = member(expr, "counter")) {
          packets = unsigned_of(*counter, "packets");
        } else if (expr.contains("drop")) {
          action = Action::Drop;
        } else if (expr.contains("reject")) {
          action = Action::Reject;
        } else if (expr.contains("accept")) {
          action = Action::Accept;
        } else if (expr.contains("return")) {
          action = Action::Return;
        } else if (const Json* jump = member(expr, "jump")) {
          action = Action::Jump, target = text_of(*jump, "target");
        } else if (const Json* go = member(expr, "goto")) {
          action = Action::Goto, target = text_of(*go, "target");
        } else if (const Json* xt = member(expr, "xt")) {
          const std::string name = text_of(*xt, "name");
          if (text_of(*xt, "type") != "target") {
            // An xt match: only a comment (iptables-nft -m comment) is known to match everything.
            if (name != "comment") match = combine(match, Match::Unknown);
          } else if (name == "REJECT") {
            action = Action::Reject;
          } else if (name == "DROP") {
            action = Action::Drop;
          } else if (name == "ACCEPT") {
            action = Action::Accept;
          }
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

  std::optional<Value> value_of(const Json& left) const {
    if (const Json* p = member(left, "payload")) {
      const std::string protocol = text_of(*p, "protocol"), field = text_of(*p, "field");
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
    if (const Json* meta = member(left, "meta")) {
      const std::string key = text_of(*meta, "key");
      if (key == "l4proto") return Value{Value::Word, nullptr, 0, "tcp"};
      if (key == "nfproto") return Value{Value::Word, nullptr, 0, packet_.family == 4 ? "ipv4" : "ipv6"};
      return std::nullopt;
    }
    if (const Json* ct = member(left, "ct"); ct && text_of(*ct, "key") == "state")
      return Value{Value::Word, nullptr, 0, packet_.syn ? "new" : "established"};
    return std::nullopt;
  }

  Match element(const Json& e, const Value& v) const {
    if (const Json* elem = member(e, "elem")) {  // {"elem": {"val": ..., "timeout": ...}}
      const Json* val = member(*elem, "val");
      return val && !val->contains("elem") ? element(*val, v) : Match::Unknown;
    }
    switch (v.kind) {
      case Value::Address:
        if (e.is_string()) return address_matches(e.get<std::string>(), packet_.family, *v.address);
        if (const Json* prefix = member(e, "prefix")) {
          const auto length = unsigned_of(*prefix, "len");
          if (!length || *length > 128) return Match::Unknown;
          return address_matches(text_of(*prefix, "addr") + "/" + std::to_string(*length), packet_.family, *v.address);
        }
        return Match::Unknown;
      case Value::Number:
        if (e.is_number_unsigned()) return e.get<uint64_t>() == v.number ? Match::Yes : Match::No;
        if (e.is_number()) return Match::No;  // negative or fractional: no port is
        if (const Json* range = member(e, "range")) {
          if (!range->is_array() || range->size() != 2) return Match::Unknown;
          const auto low = unsigned_of(&(*range)[0]), high = unsigned_of(&(*range)[1]);
          if (!low || !high) return Match::Unknown;
          return *low <= v.number && v.number <= *high ? Match::Yes : Match::No;
        }
        return Match::Unknown;
      case Value::Word:
        if (e.is_string()) return e.get<std::string>() == v.word ? Match::Yes : Match::No;
        if (e.is_array()) {
          for (const auto& word : e)
            if (word.is_string() && word.get<std::string>() == v.word) return Match::Yes;
          return Match::No;
        }
        return Match::Unknown;
      case Value::WrongFamily: return Match::No;
    }
    return Match::Unknown;
  }

  Match any(const Json& elements, const Value& v) const {
    if (!elements.is_array()) return Match::Unknown;
    Match result = Match::No;
    for (const auto& e : elements) {
      const Match m = element(e, v);
      if (m == Match::Yes) return Match::Yes;
      if (m == Match::Unknown) result = Match::Unknown;
    }
    return result;
  }

  Match expression(const Json& m, const Json& rule) const {
    const Json* left = member(m, "left");
    const Json* right = member(m, "right");
    if (!left || !right) return Match::Unknown;  // a match without both sides: not nft's, not decidable
    const auto value = value_of(*left);
    if (!value) return Match::Unknown;
    if (value->kind == Value::WrongFamily) return Match::No;
    Match result;
    if (right->is_string() && right->get<std::string>().rfind('@', 0) == 0) {
      auto set = sets_.find(key(rule, right->get<std::string>().substr(1)));
      if (set == sets_.end()) return Match::Unknown;
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
  std::vector<std::string> notes;  // lines skipped, and why
};

// iptables-save quotes an argument with spaces ("...") and escapes `"` and `\`
// inside it with a backslash. Nullopt: a quote left open.
std::optional<std::vector<std::string>> split_args(std::string_view text) {
  std::vector<std::string> args;
  std::string current;
  bool quoted = false, have = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted && c == '\\' && i + 1 < text.size()) {
      current += text[++i];
    } else if (c == '"') {
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
  if (quoted) return std::nullopt;
  if (have) args.push_back(current);
  return args;
}

// `iptables-save -c`: "[packets:bytes] -A CHAIN ...". A comment may hold
// newlines, which iptables-save prints as they are: a rule whose quote is
// still open continues on the next line.
IptRuleset parse_iptables_save(std::string_view text, const std::string& source) {
  IptRuleset ruleset;
  if (text.size() > kMaxRulesetText) {
    ruleset.notes.push_back(source + ": larger than " + std::to_string(kMaxRulesetText) + " bytes: not read");
    return ruleset;
  }
  std::string table;
  int family = 4;
  size_t rules = 0, number = 0, pos = 0;
  auto next_line = [&](std::string_view& line) {
    if (pos >= text.size()) return false;
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    line = text.substr(pos, end - pos);
    pos = end + 1;
    ++number;
    return true;
  };
  std::string_view line;
  while (next_line(line)) {
    if (line.rfind("# Generated by ip6tables", 0) == 0) family = 6;
    else if (line.rfind("# Generated by iptables", 0) == 0) family = 4;
    if (line.empty() || line[0] == '#') continue;
    const std::string where = source + " line " + std::to_string(number);
    if (line[0] == '*') {
      table = std::string(line.substr(1));
    } else if (line[0] == ':') {
      const auto words = split_args(line.substr(1));
      if (!words || words->size() < 2) {
        ruleset.notes.push_back(where + ": a chain without a policy: skipped");
        continue;
      }
      ruleset.policies[std::to_string(family) + "/" + table + "/" + (*words)[0]] = (*words)[1];
    } else if (line[0] == '[') {
      const size_t close = line.find(']');
      if (close == std::string_view::npos || close + 2 > line.size()) {
        ruleset.notes.push_back(where + ": a counter without a rule: skipped");
        continue;
      }
      IptRule rule;
      rule.packets = static_cast<uint64_t>(small_number(line.substr(1, std::min(line.find(':'), close) - 1),
                                                        std::numeric_limits<long>::max()).value_or(0));
      rule.spec = std::string(line.substr(close + 2));
      auto args = split_args(rule.spec);
      if (rule.spec.size() > kMaxRuleText) {
        ruleset.notes.push_back(where + ": longer than " + std::to_string(kMaxRuleText) + " bytes: skipped");
        continue;
      }
      for (size_t joined = 0; !args && joined < kMaxCommentLines && rule.spec.size() <= kMaxRuleText && next_line(line);
           ++joined) {
        rule.spec += "\n";
        rule.spec += line;
        args = split_args(rule.spec);
      }
      if (!args) {
        ruleset.notes.push_back(where + ": a quote is never closed: the rest is skipped");
        break;
      }
      if (args->size() < 2 || (*args)[0] != "-A") continue;
      if (++rules > kMaxIptablesRules) {
        ruleset.notes.push_back(source + ": more than " + std::to_string(kMaxIptablesRules) + " rules: the rest is skipped");
        break;
      }
      rule.args = std::move(*args);
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
    int budget = kWalkBudget;
    for (const char* table : {"raw", "mangle", "filter"}) {
      const std::string key = std::to_string(packet_.family) + "/" + table + "/" + chain;
      const auto policy = ruleset_.policies.find(key);
      if (policy == ruleset_.policies.end()) continue;
      Outcome outcome = walk(key, budget, 0);
      if (!last.candidate) last.candidate = outcome.candidate;
      if (outcome.kind == Outcome::Dropped) return outcome;
      if (budget < 0) return last;  // out of budget: the walk did not finish, a policy cannot be told
      if (outcome.kind == Outcome::Continue && policy->second == "DROP") {
        outcome.kind = Outcome::Dropped;
        outcome.rule = FirewallRule{backend_, packet_.family == 4 ? "ip" : "ip6", table, chain, std::nullopt,
                                    ":" + chain + " DROP", "policy drop"};
        return outcome;
      }
    }
    return last;
  }

 private:
  // `budget`: rules left to look at for this packet (user chains jumped to
  // from many rules fan out exponentially); at 0 the walk stops where it is.
  Outcome walk(const std::string& key, int& budget, int depth) const {
    Outcome outcome;
    auto chain = ruleset_.chains.find(key);
    if (chain == ruleset_.chains.end() || depth > kMaxJumpDepth) return outcome;
    for (const IptRule& rule : chain->second) {
      if (--budget < 0) return outcome;
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
      Outcome inner = walk(next, budget, depth + 1);
      if (!outcome.candidate) outcome.candidate = inner.candidate;
      if (inner.kind != Outcome::Continue) {
        inner.candidate = outcome.candidate;
        return inner;
      }
      if (budget < 0) return outcome;
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
  std::vector<std::string> notes;
};

namespace {

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

std::map<std::string, std::string> nft_rule_texts_bounded(const std::string& text, std::vector<std::string>& notes) {
  if (text.size() <= kMaxRulesetText) return nft_rule_texts(text);
  notes.push_back("nft list ruleset: larger than " + std::to_string(kMaxRulesetText) + " bytes: not read");
  return {};
}

}  // namespace

RulesetIndex::RulesetIndex(const Rulesets& rulesets) : parsed_(std::make_unique<Parsed>()) {
  Parsed& parsed = *parsed_;
  // The parsers check what they read; this catches only what they could not
  // foresee (memory), so that no ruleset ends tracing.
  try {
    parsed.nft = parse_nft_json(rulesets.nft_json, parsed.notes);
    parsed.nft_texts = nft_rule_texts_bounded(rulesets.nft_text, parsed.notes);
    parsed.iptables_nft = parse_iptables_save(rulesets.iptables_nft, "iptables-nft-save");
    parsed.iptables_legacy = parse_iptables_save(rulesets.iptables_legacy, "iptables-legacy-save");
    for (const IptRuleset* ipt : {&parsed.iptables_nft, &parsed.iptables_legacy})
      parsed.notes.insert(parsed.notes.end(), ipt->notes.begin(), ipt->notes.end());
  } catch (const std::exception& e) {
    *parsed_ = Parsed{};
    parsed_->nft = Json(Json::value_t::discarded);
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
        const Json* objects = member(root, "nftables");
        if (rule.handle && objects && objects->is_array()) {
          // The n-th rule of the chain in nft is the n-th -A line of iptables-nft-save.
          std::vector<std::optional<uint64_t>> handles;
          for (const auto& object : *objects)
            if (const Json* r = member(object, "rule"); r && text_of(*r, "table") == rule.table &&
                                                       text_of(*r, "chain") == rule.chain &&
                                                       text_of(*r, "family") == rule.family)
              handles.push_back(unsigned_of(*r, "handle"));
          const auto position = std::find(handles.begin(), handles.end(), rule.handle) - handles.begin();
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
    int budget = kWalkBudget;  // one for every base chain of the packet's hook
    for (const Json* chain : walker.base_chains()) {
      Outcome outcome = walker.walk(*chain, budget);
      if (!candidate && outcome.candidate) candidate = finish(*outcome.candidate);
      if (outcome.kind == Outcome::Dropped) return finish(*outcome.rule);
      if (budget < 0) break;
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
