// The fix for a block: the commands that lift it, for the tool that made it
// (fail2ban, sshguard, nft, iptables, hosts.deny, sshd_config, systemd).
// rsttrace prints them and never runs them. Pure; unit-tested.
//
// Names in them come from rulesets and files a namespace owner controls: each
// argument is quoted for the shell (text/shell_quote.h), nft names must be
// plain nft identifiers (nft parses its words again as one command), and a
// rule text must parse as one rule: otherwise no command is given for it.
#pragma once

#include <string>
#include <vector>

#include "attribute/attribution.h"

namespace rsttrace {

// What the caller knows beyond the line itself (explain does).
struct RemedyContext {
  std::string service_unit = "ssh";  // the unit to start for no-listener ("ssh.socket" when socket-activated)
  bool penalties_known = false;      // sshd refused for PerSourcePenalties, not MaxStartups
};

// In the order to run them; empty when nothing rsttrace knows would lift it
// (kernel, peer, unknown verdicts; a rule whose names cannot be quoted safely).
std::vector<std::string> remedy_commands(const Attribution& report, const RemedyContext& context = {});

// The tool that wrote a rule: its blocker's (provenance/firewall.h blocker_of),
// else by the names it gives its tables, chains and sets (captured lines of
// older versions): "fail2ban", "sshguard", "ufw", "firewalld", else the backend.
std::string firewall_front_end(const std::string& backend, const std::string& table, const std::string& chain,
                               const std::string& text, bool has_jail);
std::string firewall_front_end(const FirewallRule& rule);

// The argv of an iptables rule as iptables-save prints it ("-A CHAIN ..."),
// its quoted words unquoted; nullopt unless it is one -A rule with no other command.
std::optional<std::vector<std::string>> iptables_rule_words(const std::string& spec);

}  // namespace rsttrace
