// iptables match options against a packet: one function per kind, in one
// table (kMatchOptions); what is not listed is undecided, named.
#include <algorithm>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "provenance/firewall/field_matches.h"
#include "provenance/firewall/iptables_ruleset.h"
#include "provenance/tristate.h"

namespace rsttrace::firewall {
namespace {

// ---- match options: one function per kind ------------------------------
// Each gets the option as written and its value; nullopt: the option takes no
// part in matching (a comment). A new match goes in kMatchOptions below.

Match protocol_match(std::string_view, const std::string& protocol, const PacketFacts&) {
  return match_of(protocol == "tcp" || protocol == "6" || protocol == "all");
}

// -s/-d a,b,c: any of the addresses.
Match address_list_match(std::string_view option, const std::string& pattern, const PacketFacts& packet) {
  const bool source = option == "-s" || option == "--source";
  Match any = Match::No;
  for (size_t start = 0; start <= pattern.size();) {
    const size_t comma = pattern.find(',', start);
    any = either(any, address_matches(pattern.substr(start, comma - start), packet.family,
                                      source ? packet.saddr : packet.daddr));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return any;
}

// -i: the receiving device's name at the drop ("eth+": a prefix). -o: not known.
Match interface_match(std::string_view option, const std::string& pattern, const PacketFacts& packet) {
  const bool input = option == "-i" || option == "--in-interface";
  if (!input || !packet.in_interface) return Match::Maybe;
  if (!pattern.empty() && pattern.back() == '+')
    return match_of(packet.in_interface->rfind(pattern.substr(0, pattern.size() - 1), 0) == 0);
  return match_of(*packet.in_interface == pattern);
}

// -m tcp --dport/--sport: one port or a range.
Match port_match(std::string_view option, const std::string& spec, const PacketFacts& packet) {
  const bool dest = option == "--dport" || option == "--destination-port";
  return port_matches(spec, dest ? packet.dport : packet.sport);
}

// Each of a comma-separated list against a predicate: any is enough.
template <typename Predicate>
Match any_word(const std::string& list, Predicate holds) {
  Match any = Match::No;
  for (size_t start = 0; start <= list.size();) {
    const size_t comma = list.find(',', start);
    any = either(any, holds(std::string_view(list).substr(start, comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return any;
}

// -m multiport --dports/--sports/--ports a,b:c: an unreadable port matches nothing.
Match port_list_match(std::string_view option, const std::string& list, const PacketFacts& packet) {
  return any_word(list, [&](std::string_view word) {
    const std::string port(word);
    if (option == "--ports")
      return match_of(port_matches(port, packet.dport) == Match::Yes || port_matches(port, packet.sport) == Match::Yes);
    return match_of(port_matches(port, option == "--dports" ? packet.dport : packet.sport) == Match::Yes);
  });
}

// -m conntrack --ctstate / -m state --state, from conntrack's entry at the drop.
Match conntrack_state_match(std::string_view, const std::string& states, const PacketFacts& packet) {
  if (!packet.conntrack) return Match::Maybe;
  const ConntrackFacts& ct = *packet.conntrack;
  using State = ConntrackFacts::State;
  return any_word(states, [&](std::string_view state) {
    if (state == "INVALID") return match_of(ct.state == State::Invalid);
    if (state == "NEW") return match_of(ct.state == State::New);
    if (state == "ESTABLISHED") return match_of(ct.state == State::Established);
    if (state == "RELATED") return match_of(ct.state == State::Related);
    if (state == "UNTRACKED") return match_of(ct.state == State::Untracked);
    if (state == "SNAT") return match_of(ct.state != State::Invalid && (ct.status & (1u << 4)));
    if (state == "DNAT") return match_of(ct.state != State::Invalid && (ct.status & (1u << 5)));
    return Match::Maybe;
  });
}

// -m conntrack --ctorigdst / --ctorigdstport: the destination before DNAT.
Match conntrack_original_match(std::string_view option, const std::string& value, const PacketFacts& packet) {
  using State = ConntrackFacts::State;
  if (!packet.conntrack) return Match::Maybe;
  if (packet.conntrack->state == State::Invalid || packet.conntrack->state == State::Untracked) return Match::No;
  if (option == "--ctorigdstport") return port_matches(value, packet.conntrack->original_dport);
  return address_matches(value, packet.family, packet.conntrack->original_daddr);
}

// -m mark --mark value[/mask]: skb->mark at the drop (absent when the ruleset sets marks).
Match mark_match(std::string_view, const std::string& spec, const PacketFacts& packet) {
  const size_t slash = spec.find('/');
  const auto value = u32_number(std::string_view(spec).substr(0, slash));
  const auto mask = slash == std::string::npos ? std::optional<uint32_t>(0xffffffffu)
                                               : u32_number(std::string_view(spec).substr(slash + 1));
  if (!packet.mark || !value || !mask) return Match::Maybe;
  return match_of((*packet.mark & *mask) == *value);
}

// -m addrtype --dst-type: the type of the packet's IPv4 input route.
Match address_type_match(std::string_view, const std::string& types, const PacketFacts& packet) {
  if (!packet.route_type) return Match::Maybe;
  static constexpr std::string_view kRouteTypes[] = {"UNSPEC", "UNICAST", "LOCAL", "BROADCAST", "ANYCAST", "MULTICAST",
                                                     "BLACKHOLE", "UNREACHABLE", "PROHIBIT", "THROW", "NAT", "XRESOLVE"};
  return any_word(types, [&](std::string_view type) {
    for (size_t i = 0; i < std::size(kRouteTypes); ++i)
      if (kRouteTypes[i] == type) return match_of(*packet.route_type == i);
    return Match::Maybe;
  });
}

// -m iprange --src-range / --dst-range a-b.
Match address_range_match(std::string_view option, const std::string& range, const PacketFacts& packet) {
  return address_range_matches(range, packet.family, option == "--src-range" ? packet.saddr : packet.daddr);
}

// The TCP flag names iptables writes, as a mask; nullopt: a name it does not write.
std::optional<uint8_t> tcp_flag_bits(std::string_view list) {
  static constexpr std::pair<std::string_view, uint8_t> kFlags[] = {
      {"FIN", 0x01}, {"SYN", 0x02}, {"RST", 0x04}, {"PSH", 0x08}, {"ACK", 0x10}, {"URG", 0x20}, {"ALL", 0x3f}, {"NONE", 0}};
  uint8_t out = 0;
  for (size_t start = 0; start <= list.size();) {
    const size_t comma = list.find(',', start);
    const std::string_view flag = list.substr(start, comma - start);
    const auto it = std::find_if(std::begin(kFlags), std::end(kFlags), [&](const auto& f) { return f.first == flag; });
    if (it == std::end(kFlags)) return std::nullopt;
    out |= it->second;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

// -m tcp --tcp-flags MASK COMP ("SYN,RST,ACK,FIN SYN"); --syn is that very test.
Match tcp_flags_match(std::string_view option, const std::string& spec, const PacketFacts& packet) {
  if (!packet.tcp_flags) return Match::Maybe;
  const std::string words = option == "--syn" ? "FIN,SYN,RST,ACK SYN" : spec;
  const size_t space = words.find(' ');
  if (space == std::string::npos) return Match::Maybe;
  const auto mask = tcp_flag_bits(std::string_view(words).substr(0, space));
  const auto comp = tcp_flag_bits(std::string_view(words).substr(space + 1));
  if (!mask || !comp) return Match::Maybe;
  return match_of((*packet.tcp_flags & *mask) == *comp);
}

struct MatchOption {
  std::string_view name;
  std::string_view module;  // the -m module that provides it; "": built in
  std::optional<Match> (*match)(std::string_view option, const std::string& value, const PacketFacts& packet);
  int values = 1;  // the words that follow it (joined by a space)
};

template <Match (*F)(std::string_view, const std::string&, const PacketFacts&)>
std::optional<Match> decides(std::string_view option, const std::string& value, const PacketFacts& packet) {
  return F(option, value, packet);
}

std::optional<Match> ignored(std::string_view, const std::string&, const PacketFacts&) { return std::nullopt; }

// Every option evaluated. An -m module not listed here cannot be decided
// (recent, limit, hashlimit, string, u32, bpf, set...), nor can an option not
// listed (it is read as a flag): either leaves the rule undecided, named.
constexpr MatchOption kMatchOptions[] = {
    {"-p", "", decides<protocol_match>},
    {"--protocol", "", decides<protocol_match>},
    {"-s", "", decides<address_list_match>},
    {"--source", "", decides<address_list_match>},
    {"-d", "", decides<address_list_match>},
    {"--destination", "", decides<address_list_match>},
    {"-i", "", decides<interface_match>},
    {"--in-interface", "", decides<interface_match>},
    {"-o", "", decides<interface_match>},
    {"--out-interface", "", decides<interface_match>},
    {"--dport", "tcp", decides<port_match>},
    {"--destination-port", "tcp", decides<port_match>},
    {"--sport", "tcp", decides<port_match>},
    {"--source-port", "tcp", decides<port_match>},
    {"--tcp-flags", "tcp", decides<tcp_flags_match>, 2},
    {"--syn", "tcp", decides<tcp_flags_match>, 0},
    {"--dports", "multiport", decides<port_list_match>},
    {"--sports", "multiport", decides<port_list_match>},
    {"--ports", "multiport", decides<port_list_match>},
    {"--ctstate", "conntrack", decides<conntrack_state_match>},
    {"--ctorigdst", "conntrack", decides<conntrack_original_match>},
    {"--ctorigdstport", "conntrack", decides<conntrack_original_match>},
    {"--state", "state", decides<conntrack_state_match>},
    {"--mark", "mark", decides<mark_match>},
    {"--dst-type", "addrtype", decides<address_type_match>},
    {"--src-range", "iprange", decides<address_range_match>},
    {"--dst-range", "iprange", decides<address_range_match>},
    {"--comment", "comment", ignored},
};

const MatchOption* match_option(std::string_view name) {
  for (const MatchOption& option : kMatchOptions)
    if (option.name == name) return &option;
  return nullptr;
}

bool module_known(std::string_view module) {
  return !module.empty() && std::any_of(std::begin(kMatchOptions), std::end(kMatchOptions),
                                        [&](const MatchOption& option) { return option.module == module; });
}

}  // namespace

bool target_continues(std::string_view target) {
  static constexpr std::string_view kContinuing[] = {
      "LOG", "NFLOG", "ULOG", "MARK", "CONNMARK", "TRACE", "CT", "NOTRACK", "SET", "CLASSIFY", "DSCP", "TOS",
      "TTL", "HL", "AUDIT", "TCPMSS", "CHECKSUM", "SECMARK", "CONNSECMARK", "LED", "IDLETIMER", "RATEEST"};
  return std::find(std::begin(kContinuing), std::end(kContinuing), target) != std::end(kContinuing);
}

// The rule's matches against the packet; its -j/-g target in `target` (and
// whether it is a goto), the first match it could not decide in `undecided`.
Match ipt_rule_matches(const IptRule& rule, const PacketFacts& packet, IptRuleReading& reading) {
  Match result = Match::Yes;
  const auto& a = rule.args;
  bool negated = false;
  for (size_t i = 2; i < a.size(); ++i) {
    const std::string& opt = a[i];
    auto next = [&]() -> std::string { return i + 1 < a.size() ? a[++i] : ""; };
    auto apply = [&](Match m, const std::string& what) {
      m = negated ? negate(m) : m;
      if (m == Match::Maybe && reading.undecided.empty()) reading.undecided = what;
      result = both(result, m);
      negated = false;
    };
    if (opt == "!") {
      negated = true;
    } else if (opt == "-m" || opt == "--match") {
      const std::string module = next();
      if (!module_known(module)) apply(Match::Maybe, "-m " + module);
    } else if (opt == "-j" || opt == "--jump" || opt == "-g" || opt == "--goto") {
      reading.is_goto = opt == "-g" || opt == "--goto";
      reading.target = next();
      break;  // target options follow
    } else if (const MatchOption* option = match_option(opt)) {
      std::string value;
      for (int v = 0; v < option->values; ++v) value += (v ? " " : "") + next();
      if (const auto m = option->match(opt, value, packet)) apply(*m, opt + (value.empty() ? "" : " " + value));
    } else if (opt.rfind("-", 0) == 0) {
      apply(Match::Maybe, opt);  // an option not evaluated here
    }
  }
  return result;
}

}  // namespace rsttrace::firewall
