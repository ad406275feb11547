// The rules that refused a connection, as plain data: a netfilter rule and a
// hosts.allow/hosts.deny line. Found by provenance/ (firewall.h,
// hosts_access.h), carried by attribute/report.h, printed by output/. No logic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace rsttrace {

// The front-end that wrote a block, named as its own commands name it.
struct Blocker {
  std::string tool;  // "fail2ban" | "ufw" | "firewalld" | "sshguard"
  std::string name;  // fail2ban: the jail; ufw: its chain; firewalld: the zone; sshguard: its set or chain
  std::optional<uint64_t> rule_number;  // ufw: the user rule as `ufw status numbered` shows it
  std::optional<bool> permanent = {};   // firewalld: also in its permanent configuration (zone file); none: not known
};

struct FirewallRule {
  std::string backend;  // "nftables" | "iptables-nft" | "iptables-legacy"
  std::string family;   // nftables family: ip, ip6, inet
  std::string table;
  std::string chain;
  std::optional<uint64_t> handle;  // nftables handle (also for iptables-nft rules)
  std::string text;                // nft rule text, or the iptables rule spec (-A ...)
  std::string verdict;             // "drop" | "reject" | "policy drop"
  std::optional<uint64_t> packets; // the rule's counter, where it has one
  std::optional<std::string> fail2ban_jail;
  bool certain = true;  // false: some match on the rule's path could not be evaluated
  std::string undecided;  // then: that match and where it stands (e.g. "-m recent in INPUT")
  std::optional<Blocker> blocker;  // the front-end whose names the rule, its chain, table or set bear
  std::optional<size_t> position;  // its place in its chain (0-based), for iptables rules
  std::optional<bool> counter_moved;  // its counter, read before and after the drop, rose (or not)
  // The element of the rule's source-address set (nft set, ipset) that holds the client, as the
  // set lists it ("10.77.0.2", "10.77.0.0/24"): what to delete when a ban covers a whole subnet.
  std::optional<std::string> set_element;
};

struct WrapperRule {
  std::string file;
  int line = 0;       // first physical line of the rule
  int last_line = 0;  // last physical line: libwrap's own log numbers a continued rule by this one
  std::string text;   // the logical line as written, continuations joined, no newline
};

}  // namespace rsttrace
