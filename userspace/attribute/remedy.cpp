#include "attribute/remedy.h"

#include <regex>

#include "text/escape.h"
#include "text/shell_quote.h"

namespace rsttrace {
namespace {

// nft joins its arguments and parses them as one command: a name is given to
// it only when it is a plain identifier (no ';', braces, quotes or spaces).
bool nft_identifier(const std::string& name) {
  static const std::regex identifier("[A-Za-z_.][A-Za-z0-9_./-]{0,255}");
  return std::regex_match(name, identifier);
}

void add(std::vector<std::string>& out, const std::vector<std::string>& argv) {
  if (auto line = shell_command(argv)) out.push_back(*line);
}

// The iptables binary that wrote the rule: the same flavour, the same family.
std::string iptables_binary(const FirewallRule& rule) {
  const std::string base = rule.family == "ip6" ? "ip6tables" : "iptables";
  return rule.backend == "iptables-legacy" ? base + "-legacy" : base + "-nft";
}

// The rich rule firewalld wrote as this nft rule, as firewall-cmd takes it
// back: `ip saddr S [tcp dport P] drop|reject [with ...]` in a zone's chain.
// nft keeps no trace of whether `service name="ssh"` or `port port="22"
// protocol="tcp"` wrote `tcp dport 22`: the service is given (firewalld's ssh
// service is 22/tcp). Nullopt for any other rule.
std::optional<std::string> firewalld_rich_rule(const std::string& text) {
  static const std::regex rich(
      "(ip6?) saddr ([0-9a-fA-F.:/]{1,49})(?: tcp dport ([0-9]{1,5}))? (drop|reject(?: with (icmpv6|icmp) ([a-z-]{1,32}))?)");
  std::smatch m;
  if (!std::regex_match(text, m, rich)) return std::nullopt;
  const bool ipv6 = m[1] == "ip6";
  std::string rule = std::string("rule family=\"") + (ipv6 ? "ipv6" : "ipv4") + "\" source address=\"" + m[2].str() + "\"";
  if (m[3].matched) rule += m[3] == "22" ? " service name=\"ssh\"" : " port port=\"" + m[3].str() + "\" protocol=\"tcp\"";
  if (m[4] == "drop") return rule + " drop";
  if (!m[5].matched) return rule + " reject";
  if ((m[5] == "icmpv6") != ipv6) return std::nullopt;
  // A plain `reject` is port-unreachable; other types by firewalld's names (icmp-host-prohibited, icmp6-adm-prohibited).
  if (m[6] == "port-unreachable") return rule + " reject";
  const std::string type = ipv6 ? (m[6] == "admin-prohibited" ? "icmp6-adm-prohibited" : "icmp6-" + m[6].str())
                                : "icmp-" + m[6].str();
  return rule + " reject type=\"" + type + "\"";
}

// firewalld: with its own command, now and, where its zone file holds the
// block (blocker.permanent; not known: both), permanently. A rich rule is
// removed as the nft rule shows it; a source bound to the drop or block zone
// is taken out of it (the client's address: the zone may hold it by a wider
// network, which firewalld 1's rule does not show); another zone's own reject lacks the
// service. Anything else: its nft rule by handle (runtime only).
bool firewalld_remedy(std::vector<std::string>& out, const FirewallRule& rule, const Blocker& blocker,
                      const std::string& address, uint16_t port) {
  // A policy ("policy P", named only when its file proved it: provenance/firewall.h).
  static const std::regex policy_name("policy [A-Za-z0-9_-]{1,64}");
  const bool policy = blocker.name.rfind("policy ", 0) == 0;
  if (policy && !std::regex_match(blocker.name, policy_name)) return false;
  const std::string owner = policy ? blocker.name.substr(7) : blocker.name;
  const std::string zone = (policy ? "--policy=" : "--zone=") + owner;
  const bool permanent = blocker.permanent.value_or(true);
  auto now_and_permanent = [&](const std::string& change) {
    add(out, {"firewall-cmd", zone, change});
    if (permanent) add(out, {"firewall-cmd", "--permanent", zone, change});
  };
  if (policy) {
    // Its rich rules are in its part chains; its own target (REJECT, DROP) in filter_IN_policy_P, after
    // them: an allowed ssh in the policy goes first (its allow chain).
    if (rule.chain.rfind("filter_IN_policy_" + owner + "_", 0) == 0) {
      const auto rich = firewalld_rich_rule(rule.text);
      if (rich) now_and_permanent("--remove-rich-rule=" + *rich);
      return rich.has_value();
    }
    if (rule.chain != "filter_IN_policy_" + owner || rule.verdict == "policy drop") return false;
    now_and_permanent(port == 22 ? "--add-service=ssh" : "--add-port=" + std::to_string(port) + "/tcp");
    return true;
  }
  // Rich rules live in the zone's part chains (filter_IN_<zone>_deny...).
  if (rule.chain.rfind("filter_IN_" + blocker.name + "_", 0) == 0) {
    const auto rich = firewalld_rich_rule(rule.text);
    if (rich) now_and_permanent("--remove-rich-rule=" + *rich);
    return rich.has_value();
  }
  // The zone's own target: in its chain (firewalld 1), or after the jump into it in the dispatch chain (firewalld 2).
  const bool zone_target = rule.chain == "filter_IN_" + blocker.name ||
                           (rule.chain == "filter_INPUT_POLICIES" && blocker.name != rule.chain);
  if (!zone_target || rule.verdict == "policy drop") return false;
  if (blocker.name == "drop" || blocker.name == "block") {
    // firewalld 2's dispatch rule shows the source as bound (a network, maybe); firewalld 1's zone chain does not.
    static const std::regex saddr("^ip6? saddr ([0-9a-fA-F.:/]{1,49}) ");
    std::smatch source;
    now_and_permanent("--remove-source=" + (std::regex_search(rule.text, source, saddr) ? source[1].str() : address));
    return true;
  }
  add(out, {"firewall-cmd", zone, port == 22 ? "--add-service=ssh" : "--add-port=" + std::to_string(port) + "/tcp"});
  return true;
}

// The set's element holding the client when it is an address or prefix (a
// namespace owner's text: anything else gives the client's address).
std::string element_or(const FirewallRule& rule, const std::string& address) {
  static const std::regex element("[0-9a-fA-F.:]{2,45}(/[0-9]{1,3})?");
  return rule.set_element && std::regex_match(*rule.set_element, element) ? *rule.set_element : address;
}

void firewall_remedy(std::vector<std::string>& out, const FirewallRule& rule, int family, const std::string& address,
                     uint16_t port) {
  // A front-end's own command, where its names say which and it has one.
  if (const auto& blocker = rule.blocker) {
    if (blocker->tool == "ufw" && blocker->rule_number) {
      add(out, {"ufw", "delete", std::to_string(*blocker->rule_number)});
      return;
    }
    if (blocker->tool == "firewalld" && firewalld_remedy(out, rule, *blocker, address, port)) return;
  }
  // A source-address set: take the address out of it (sshguard's attackers, fail2ban-like sets, plain nft).
  if (rule.backend == "nftables") {
    static const std::regex set_match("\\bip6? saddr @([A-Za-z0-9_./-]+)");
    std::smatch match;
    if (std::regex_search(rule.text, match, set_match) && nft_identifier(rule.table) && nft_identifier(match[1].str())) {
      // The element that holds the client: a subnet ban (sshguard's IPV4_SUBNET) is deleted whole.
      add(out, {"nft", "delete", "element", rule.family, rule.table, match[1].str(),
                "{ " + element_or(rule, address) + " }"});
      return;
    }
  }
  static const std::regex ipset_match("--match-set ([A-Za-z0-9_.-]+) src");
  std::smatch match;
  if (rule.backend != "nftables" && std::regex_search(rule.text, match, ipset_match)) {
    add(out, {"ipset", "del", match[1].str(), element_or(rule, address)});
    return;
  }
  if (rule.verdict == "policy drop") {
    // Nothing to delete: an accept for this client, first in the chain.
    const std::string proto_address = family == 6 ? "ip6" : "ip";
    if (rule.backend == "nftables") {
      if (nft_identifier(rule.table) && nft_identifier(rule.chain))
        add(out, {"nft", "insert", "rule", rule.family, rule.table, rule.chain, proto_address, "saddr", address, "tcp",
                  "dport", std::to_string(port), "accept"});
    } else {
      add(out, {iptables_binary(rule), "-t", rule.table, "-I", rule.chain, "-s", address, "-p", "tcp", "--dport",
                std::to_string(port), "-j", "ACCEPT"});
    }
    return;
  }
  if (rule.backend == "nftables") {
    if (rule.handle && nft_identifier(rule.table) && nft_identifier(rule.chain))
      add(out, {"nft", "delete", "rule", rule.family, rule.table, rule.chain, "handle", std::to_string(*rule.handle)});
    return;
  }
  auto words = iptables_rule_words(rule.text);
  if (!words) return;
  (*words)[0] = "-D";
  words->insert(words->begin(), {iptables_binary(rule), "-t", rule.table});
  add(out, *words);
}

void sshd_remedy(std::vector<std::string>& out, const Attribution& report, const std::string& address,
                 const RemedyContext& context) {
  const bool startups = report.detail.find("MaxStartups") != std::string::npos;
  if (!startups && !context.penalties_known) return;
  // sshd_config.d/*.conf is included first on Debian: its value wins. `sshd -t` before the reload:
  // an option this sshd does not know (PerSourcePenalties before OpenSSH 9.8) must not stop it.
  const std::string setting = context.penalties_known ? "PerSourcePenaltyExemptList " + address
                                                      : "MaxStartups 100:30:200";
  // The address is a parsed one (hex digits, '.', ':'): nothing to quote inside the quotes.
  out.push_back("echo '" + setting + "' >> /etc/ssh/sshd_config.d/rsttrace-remedy.conf");
  out.push_back("sshd -t && systemctl reload ssh");
}

}  // namespace

std::optional<std::vector<std::string>> iptables_rule_words(const std::string& spec) {
  // iptables-save's quoting: words split on spaces; "..." with \" and \\ inside.
  std::vector<std::string> words;
  std::string word;
  bool in_word = false, quoted = false;
  for (size_t i = 0; i < spec.size(); ++i) {
    const char c = spec[i];
    if (quoted) {
      if (c == '\\' && i + 1 < spec.size() && (spec[i + 1] == '"' || spec[i + 1] == '\\')) {
        word += spec[++i];
      } else if (c == '"') {
        quoted = false;
      } else {
        word += c;
      }
    } else if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '"') {
      quoted = in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (quoted) return std::nullopt;
  if (in_word) words.push_back(std::move(word));
  if (words.size() < 2 || words[0] != "-A") return std::nullopt;
  // One rule: no second command or table hidden in it.
  static const std::regex command(
      "-[ADIRFZNXPELSt]|--(append|delete|insert|replace|flush|zero|new-chain|delete-chain|policy|rename-chain|list|"
      "list-rules|table)(=.*)?");
  for (size_t i = 2; i < words.size(); ++i)
    if (std::regex_match(words[i], command) && words[i - 1] != "--comment") return std::nullopt;
  return words;
}

std::string firewall_front_end(const std::string& backend, const std::string& table, const std::string& chain,
                               const std::string& text, bool has_jail) {
  if (has_jail || chain.rfind("f2b-", 0) == 0 || table == "f2b-table") return "fail2ban";
  if (table == "sshguard" || chain == "sshguard" || text.find("sshguard") != std::string::npos) return "sshguard";
  if (chain.rfind("ufw", 0) == 0) return "ufw";
  if (table == "firewalld" || chain.rfind("filter_IN_", 0) == 0) return "firewalld";
  return backend.empty() ? "unknown" : backend;
}

std::string firewall_front_end(const FirewallRule& rule) {
  if (rule.blocker) return rule.blocker->tool;
  return firewall_front_end(rule.backend, rule.table, rule.chain, rule.text, rule.fail2ban_jail.has_value());
}

std::vector<std::string> remedy_commands(const Attribution& report, const RemedyContext& context) {
  std::vector<std::string> out;
  const TcpEvent& e = report.event;
  const std::string address = format_address(e.family, e.remote.addr);
  const auto blocker = report.blocker ? report.blocker : report.rule ? report.rule->blocker : std::nullopt;
  auto jail = report.fail2ban_jail ? report.fail2ban_jail : report.rule ? report.rule->fail2ban_jail : std::nullopt;
  if (!jail && blocker && blocker->tool == "fail2ban") jail = blocker->name;
  switch (report.verdict) {
    case Verdict::Firewall:
    case Verdict::TcpWrappers:
      // fail2ban put it there: fail2ban takes it out (set, chain or hosts.deny line alike).
      if (jail) {
        add(out, {"fail2ban-client", "set", *jail, "unbanip", address});
        break;
      }
      if (report.verdict == Verdict::Firewall && report.rule) firewall_remedy(out, *report.rule, e.family, address, e.local.port);
      if (report.verdict == Verdict::TcpWrappers && report.wrapper_rule) {
        const WrapperRule& line = *report.wrapper_rule;
        const int last = line.last_line > line.line ? line.last_line : line.line;
        add(out, {"sed", "-i", std::to_string(line.line) + "," + std::to_string(last) + "d", line.file});
      }
      break;
    case Verdict::NoListener:
      add(out, {"systemctl", "start", context.service_unit});
      break;
    case Verdict::Sshd:
      sshd_remedy(out, report, address, context);
      break;
    default:
      break;
  }
  return out;
}

}  // namespace rsttrace
