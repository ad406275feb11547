// Remedies: the commands that lift a block, for each front-end's rule shapes,
// and the shell quoting that keeps hostile names from becoming other commands.
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include <cstdio>

#include "attribute/remedy.h"
#include "text/shell_quote.h"

using namespace rsttrace;

namespace {

Attribution blocked(Verdict verdict, const char* remote = "192.0.2.7", uint16_t port = 22) {
  Attribution a;
  a.verdict = verdict;
  a.event.family = 4;
  inet_pton(AF_INET, remote, a.event.remote.addr.data());
  a.event.remote.port = 40022;
  a.event.local.port = port;
  return a;
}

Attribution firewall(FirewallRule rule) {
  Attribution a = blocked(Verdict::Firewall);
  a.fail2ban_jail = rule.fail2ban_jail;
  a.rule = std::move(rule);
  return a;
}

using Commands = std::vector<std::string>;

// What a POSIX shell makes of a command line: its words, one per line.
std::vector<std::string> shell_words(const std::string& command_line) {
  const std::string script = "set -- " + command_line + "; for w in \"$@\"; do printf '%s\\n' \"$w\"; done";
  const auto quoted = shell_quote(script);
  REQUIRE(quoted);
  FILE* pipe = popen(("sh -c " + *quoted).c_str(), "r");
  REQUIRE(pipe);
  std::string out;
  char buffer[4096];
  size_t n = 0;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  pclose(pipe);
  std::vector<std::string> words;
  size_t start = 0;
  for (size_t newline; (newline = out.find('\n', start)) != std::string::npos; start = newline + 1)
    words.push_back(out.substr(start, newline - start));
  return words;
}

}  // namespace

TEST_CASE("shell_quote leaves plain words and quotes the rest", "[remedy]") {
  CHECK(shell_quote("fail2ban-client") == "fail2ban-client");
  CHECK(shell_quote("192.0.2.7") == "192.0.2.7");
  CHECK(shell_quote("fd00::2") == "fd00::2");
  CHECK(shell_quote("{ 192.0.2.7 }") == "'{ 192.0.2.7 }'");
  CHECK(shell_quote("it's") == "'it'\\''s'");
  CHECK(shell_quote("~root") == "'~root'");
  CHECK(shell_quote("=ls") == "'=ls'");
  CHECK(shell_quote("$(reboot)") == "'$(reboot)'");
  CHECK_FALSE(shell_quote(""));
  CHECK_FALSE(shell_quote("a\nb"));
  CHECK_FALSE(shell_quote("caf\xc3\xa9"));
}

TEST_CASE("hostile words come back from the shell as the same words", "[remedy]") {
  const std::vector<std::string> hostile = {"x'; reboot; '", "$(id)", "`id`", "a b", "\\'\\", "-rf", "*", "!!", "#c",
                                            "a;b", "a&&b", "a|b", ">out", "\"q\"", "'", "''", "${IFS}"};
  const auto line = shell_command(hostile);
  REQUIRE(line);
  CHECK(shell_words(*line) == hostile);
}

TEST_CASE("fail2ban: unban from the jail, whatever its action", "[remedy]") {
  // iptables-multiport: its chain f2b-<jail>.
  CHECK(remedy_commands(firewall({.backend = "iptables-nft", .family = "ip", .table = "filter", .chain = "f2b-sshd",
                                  .text = "-A f2b-sshd -s 192.0.2.7/32 -j REJECT --reject-with icmp-port-unreachable",
                                  .verdict = "reject", .fail2ban_jail = "sshd"})) ==
        Commands{"fail2ban-client set sshd unbanip 192.0.2.7"});
  // nftables: its set addr-set-<jail>.
  CHECK(remedy_commands(firewall({.backend = "nftables", .family = "inet", .table = "f2b-table", .chain = "f2b-chain",
                                  .handle = 3, .text = "tcp dport 22 ip saddr @addr-set-sshd reject",
                                  .verdict = "reject", .fail2ban_jail = "sshd"})) ==
        Commands{"fail2ban-client set sshd unbanip 192.0.2.7"});
  // hostsdeny: the jail behind the wrappers line.
  Attribution wrappers = blocked(Verdict::TcpWrappers);
  wrappers.fail2ban_jail = "sshd-lab";
  wrappers.wrapper_rule = WrapperRule{"/etc/hosts.deny", 1, 1, "ALL: 192.0.2.7"};
  CHECK(remedy_commands(wrappers) == Commands{"fail2ban-client set sshd-lab unbanip 192.0.2.7"});
  // A hostile jail name stays one argument.
  const auto hostile = remedy_commands(firewall({.backend = "nftables", .family = "inet", .table = "t", .chain = "c",
                                                 .verdict = "drop", .fail2ban_jail = "x; reboot"}));
  REQUIRE(hostile.size() == 1);
  CHECK(hostile[0] == "fail2ban-client set 'x; reboot' unbanip 192.0.2.7");
  CHECK(shell_words(hostile[0]) == std::vector<std::string>{"fail2ban-client", "set", "x; reboot", "unbanip", "192.0.2.7"});
  // A name with a newline cannot be shown as it runs: no command.
  CHECK(remedy_commands(firewall({.backend = "nftables", .family = "inet", .table = "t", .chain = "c", .verdict = "drop",
                                  .fail2ban_jail = "a\nreboot"}))
            .empty());
}

TEST_CASE("nftables: the rule by its handle, or the address out of its set", "[remedy]") {
  CHECK(remedy_commands(firewall({.backend = "nftables", .family = "inet", .table = "rsttrace_lab", .chain = "input",
                                  .handle = 4, .text = "tcp dport 22 drop", .verdict = "drop"})) ==
        Commands{"nft delete rule inet rsttrace_lab input handle 4"});
  // sshguard: its attackers set.
  CHECK(remedy_commands(firewall({.backend = "nftables", .family = "ip", .table = "sshguard", .chain = "blacklist",
                                  .handle = 2, .text = "ip saddr @attackers drop", .verdict = "drop"})) ==
        Commands{"nft delete element ip sshguard attackers '{ 192.0.2.7 }'"});
  // A subnet ban (sshguard's IPV4_SUBNET=24): the element that holds the client, prefix and all;
  // an element that is no address or prefix (a namespace owner's text) gives the address.
  CHECK(remedy_commands(firewall({.backend = "nftables", .family = "ip", .table = "sshguard", .chain = "blacklist",
                                  .handle = 2, .text = "ip saddr @attackers drop", .verdict = "drop",
                                  .set_element = "192.0.2.0/24"})) ==
        Commands{"nft delete element ip sshguard attackers '{ 192.0.2.0/24 }'"});
  CHECK(remedy_commands(firewall({.backend = "nftables", .family = "ip", .table = "sshguard", .chain = "blacklist",
                                  .handle = 2, .text = "ip saddr @attackers drop", .verdict = "drop",
                                  .set_element = "1.2.3.4 }; flush ruleset; {"})) ==
        Commands{"nft delete element ip sshguard attackers '{ 192.0.2.7 }'"});
  // firewalld (until the blocker names its zone): its rule by handle.
  CHECK(remedy_commands(firewall({.backend = "nftables", .family = "inet", .table = "firewalld",
                                  .chain = "filter_IN_public_deny", .handle = 42,
                                  .text = "ip saddr 192.0.2.7 reject with icmpx admin-prohibited", .verdict = "reject"})) ==
        Commands{"nft delete rule inet firewalld filter_IN_public_deny handle 42"});
  // A policy: an accept for the client first in the chain.
  CHECK(remedy_commands(firewall({.backend = "nftables", .family = "inet", .table = "filter", .chain = "input",
                                  .text = "policy drop", .verdict = "policy drop"})) ==
        Commands{"nft insert rule inet filter input ip saddr 192.0.2.7 tcp dport 22 accept"});
  // nft parses its words again: a name that is no plain identifier gets no command.
  for (const char* table : {"t; flush ruleset", "t}", "t\"", "a b", "#t"})
    CHECK(remedy_commands(firewall({.backend = "nftables", .family = "inet", .table = table, .chain = "input",
                                    .handle = 4, .text = "drop", .verdict = "drop"}))
              .empty());
  CHECK(remedy_commands(firewall({.backend = "nftables", .family = "ip", .table = "t", .chain = "c", .handle = 2,
                                  .text = "ip saddr @x;flush drop", .verdict = "drop"})) ==
        Commands{"nft delete element ip t x '{ 192.0.2.7 }'"});
}

TEST_CASE("iptables: -D with the rule's own spec, its table and binary", "[remedy]") {
  CHECK(remedy_commands(firewall({.backend = "iptables-nft", .family = "ip", .table = "filter", .chain = "INPUT",
                                  .handle = 2, .text = "-A INPUT -p tcp -m tcp --dport 22 -j REJECT --reject-with tcp-reset",
                                  .verdict = "reject"})) ==
        Commands{"iptables-nft -t filter -D INPUT -p tcp -m tcp --dport 22 -j REJECT --reject-with tcp-reset"});
  CHECK(remedy_commands(firewall({.backend = "iptables-legacy", .family = "ip6", .table = "raw", .chain = "PREROUTING",
                                  .text = "-A PREROUTING -s fd00::2/128 -j DROP", .verdict = "drop"})) ==
        Commands{"ip6tables-legacy -t raw -D PREROUTING -s fd00::2/128 -j DROP"});
  // ufw (until the blocker gives its rule number): its user chain's rule.
  CHECK(remedy_commands(firewall({.backend = "iptables-nft", .family = "ip", .table = "filter", .chain = "ufw-user-input",
                                  .text = "-A ufw-user-input -s 192.0.2.7/32 -p tcp -m tcp --dport 22 -j DROP",
                                  .verdict = "drop"})) ==
        Commands{"iptables-nft -t filter -D ufw-user-input -s 192.0.2.7/32 -p tcp -m tcp --dport 22 -j DROP"});
  // ipset: the address out of the set.
  CHECK(remedy_commands(firewall({.backend = "iptables-legacy", .family = "ip", .table = "filter", .chain = "INPUT",
                                  .text = "-A INPUT -m set --match-set sshguard4 src -j DROP", .verdict = "drop"})) ==
        Commands{"ipset del sshguard4 192.0.2.7"});
  // A hash:net entry holding the client (a subnet ban): that entry.
  CHECK(remedy_commands(firewall({.backend = "iptables-nft", .family = "ip", .table = "filter", .chain = "INPUT",
                                  .text = "-A INPUT -m set --match-set sshguard4 src -j DROP", .verdict = "drop",
                                  .set_element = "192.0.2.0/24"})) ==
        Commands{"ipset del sshguard4 192.0.2.0/24"});
  // A comment is one argument, quotes and all; it cannot end the command.
  const auto commented = remedy_commands(
      firewall({.backend = "iptables-nft", .family = "ip", .table = "filter", .chain = "INPUT",
                .text = R"(-A INPUT -m comment --comment "x\"; reboot; \"" -j DROP)", .verdict = "drop"}));
  REQUIRE(commented.size() == 1);
  CHECK(shell_words(commented[0]) == std::vector<std::string>{"iptables-nft", "-t", "filter", "-D", "INPUT", "-m",
                                                              "comment", "--comment", "x\"; reboot; \"", "-j", "DROP"});
  // A second command hidden in the text: no remedy.
  CHECK(remedy_commands(firewall({.backend = "iptables-nft", .family = "ip", .table = "filter", .chain = "INPUT",
                                  .text = "-A INPUT -j DROP -F", .verdict = "drop"}))
            .empty());
  CHECK(remedy_commands(firewall({.backend = "iptables-nft", .family = "ip", .table = "filter", .chain = "INPUT",
                                  .text = "-A INPUT -t nat -j DROP", .verdict = "drop"}))
            .empty());
  CHECK_FALSE(iptables_rule_words("-A INPUT -m comment --comment \"unterminated"));
  CHECK_FALSE(iptables_rule_words("-I INPUT -j DROP"));
}

TEST_CASE("hosts.deny, no listener, sshd: the line, the unit, the setting", "[remedy]") {
  Attribution wrappers = blocked(Verdict::TcpWrappers);
  wrappers.wrapper_rule = WrapperRule{"/etc/hosts.deny", 7, 8, "sshd, in.ftpd : 127.0.0.0/255.255.255.248"};
  CHECK(remedy_commands(wrappers) == Commands{"sed -i 7,8d /etc/hosts.deny"});
  CHECK(remedy_commands(blocked(Verdict::NoListener)) == Commands{"systemctl start ssh"});
  CHECK(remedy_commands(blocked(Verdict::NoListener), {.service_unit = "ssh.socket"}) == Commands{"systemctl start ssh.socket"});
  Attribution startups = blocked(Verdict::Sshd);
  startups.detail = "the listening sshd[9] closed ...: MaxStartups or PerSourcePenalties refused it";
  CHECK(remedy_commands(startups) ==
        Commands{"echo 'MaxStartups 100:30:200' >> /etc/ssh/sshd_config.d/rsttrace-remedy.conf",
                 "sshd -t && systemctl reload ssh"});
  CHECK(remedy_commands(startups, {.penalties_known = true})[0] ==
        "echo 'PerSourcePenaltyExemptList 192.0.2.7' >> /etc/ssh/sshd_config.d/rsttrace-remedy.conf");
  Attribution grace = blocked(Verdict::Sshd);
  grace.detail = "LoginGraceTime expired";
  CHECK(remedy_commands(grace).empty());
  for (const Verdict verdict : {Verdict::Kernel, Verdict::Peer, Verdict::Unknown, Verdict::None})
    CHECK(remedy_commands(blocked(verdict)).empty());
}

TEST_CASE("front-ends by their blocker: ufw's rule number, firewalld's zone", "[remedy]") {
  FirewallRule ufw{.backend = "iptables-nft", .family = "ip", .table = "filter", .chain = "ufw-user-input",
                   .text = "-A ufw-user-input -s 192.0.2.7/32 -p tcp -m tcp --dport 22 -j DROP", .verdict = "drop"};
  ufw.blocker = Blocker{"ufw", "ufw-user-input", 3};
  CHECK(remedy_commands(firewall(ufw)) == Commands{"ufw delete 3"});
  CHECK(firewall_front_end(ufw) == "ufw");
  // The drop zone's own drop (firewalld 1.3's chain filter_IN_drop), the client a source of it:
  // not in the zone file (runtime only), in it, or not known (both).
  FirewallRule zone{.backend = "nftables", .family = "inet", .table = "firewalld", .chain = "filter_IN_drop",
                    .handle = 9, .text = "drop", .verdict = "drop"};
  zone.blocker = Blocker{"firewalld", "drop", std::nullopt, false};
  CHECK(remedy_commands(firewall(zone)) == Commands{"firewall-cmd --zone=drop --remove-source=192.0.2.7"});
  zone.blocker->permanent = true;
  CHECK(remedy_commands(firewall(zone)) ==
        Commands{"firewall-cmd --zone=drop --remove-source=192.0.2.7",
                 "firewall-cmd --permanent --zone=drop --remove-source=192.0.2.7"});
  zone.blocker->permanent.reset();
  CHECK(remedy_commands(firewall(zone)).size() == 2);
  // firewalld 2 (Debian 13): the zone's target after the jump into it, in the dispatch chain; its source as bound.
  FirewallRule dispatch{.backend = "nftables", .family = "inet", .table = "firewalld", .chain = "filter_INPUT_POLICIES",
                        .handle = 259, .text = "ip saddr 192.0.2.0/24 drop", .verdict = "drop"};
  dispatch.blocker = Blocker{"firewalld", "drop", std::nullopt, false};
  CHECK(remedy_commands(firewall(dispatch)) == Commands{"firewall-cmd --zone=drop --remove-source=192.0.2.0/24"});
  dispatch.blocker->name = "filter_INPUT_POLICIES";  // no zone found before it: its rule by handle
  CHECK(remedy_commands(firewall(dispatch)) == Commands{"nft delete rule inet firewalld filter_INPUT_POLICIES handle 259"});
  // A rich rule as firewalld 1.3 writes `rule family=ipv4 source address=A service name=ssh reject`.
  FirewallRule rich{.backend = "nftables", .family = "inet", .table = "firewalld", .chain = "filter_IN_public_deny",
                    .handle = 42, .text = "ip saddr 192.0.2.7 tcp dport 22 reject with icmp port-unreachable",
                    .verdict = "reject"};
  rich.blocker = Blocker{"firewalld", "public", std::nullopt, false};
  CHECK(remedy_commands(firewall(rich)) ==
        Commands{"firewall-cmd --zone=public '--remove-rich-rule=rule family=\"ipv4\" source address=\"192.0.2.7\" "
                 "service name=\"ssh\" reject'"});
  rich.blocker->permanent = true;
  const auto commands = remedy_commands(firewall(rich));
  REQUIRE(commands.size() == 2);
  CHECK(shell_words(commands[1]) ==
        std::vector<std::string>{"firewall-cmd", "--permanent", "--zone=public",
                                 "--remove-rich-rule=rule family=\"ipv4\" source address=\"192.0.2.7\" service name=\"ssh\" reject"});
  rich.blocker->permanent = false;
  const auto rich_commands = [&](const std::string& text) {
    rich.text = text;
    const auto commands = remedy_commands(firewall(rich));
    return commands.empty() ? std::string() : shell_words(commands[0]).back();
  };
  CHECK(rich_commands("ip saddr 192.0.2.0/24 tcp dport 2222 drop") ==
        "--remove-rich-rule=rule family=\"ipv4\" source address=\"192.0.2.0/24\" port port=\"2222\" protocol=\"tcp\" drop");
  CHECK(rich_commands("ip saddr 192.0.2.7 reject with icmp host-prohibited") ==
        "--remove-rich-rule=rule family=\"ipv4\" source address=\"192.0.2.7\" reject type=\"icmp-host-prohibited\"");
  CHECK(rich_commands("ip6 saddr 2001:db8::7 tcp dport 22 reject with icmpv6 admin-prohibited") ==
        "--remove-rich-rule=rule family=\"ipv6\" source address=\"2001:db8::7\" service name=\"ssh\" reject "
        "type=\"icmp6-adm-prohibited\"");
  // Not a rich rule firewalld writes: the nft rule by its handle.
  CHECK(rich_commands("ip saddr 192.0.2.7 tcp dport 22 limit rate 3/minute drop") == "42");
  // Another zone's own reject: the service is missing there.
  FirewallRule catch_all{.backend = "nftables", .family = "inet", .table = "firewalld", .chain = "filter_IN_public",
                         .handle = 72, .text = "reject with icmpx admin-prohibited", .verdict = "reject"};
  catch_all.blocker = Blocker{"firewalld", "public", std::nullopt};
  CHECK(remedy_commands(firewall(catch_all)) == Commands{"firewall-cmd --zone=public --add-service=ssh"});
  // A hostile zone name stays one argument.
  zone.blocker = Blocker{"firewalld", "drop'; reboot; '", std::nullopt};
  zone.chain = "filter_IN_drop'; reboot; '";
  const auto hostile = remedy_commands(firewall(zone));
  REQUIRE(hostile.size() == 1);  // not the drop zone: its own reject lacks the service
  CHECK(shell_words(hostile[0]) == std::vector<std::string>{"firewall-cmd", "--zone=drop'; reboot; '", "--add-service=ssh"});
  // fail2ban named by its blocker only (its ipset action).
  FirewallRule ipset{.backend = "iptables-nft", .family = "ip", .table = "filter", .chain = "INPUT",
                     .text = "-A INPUT -p tcp -m multiport --dports 22 -m set --match-set f2b-sshd src -j REJECT",
                     .verdict = "reject"};
  ipset.blocker = Blocker{"fail2ban", "sshd", std::nullopt};
  CHECK(remedy_commands(firewall(ipset)) == Commands{"fail2ban-client set sshd unbanip 192.0.2.7"});
}

TEST_CASE("firewalld's policies: the rich rule removed from the policy, its own target by an allowed ssh", "[remedy]") {
  FirewallRule rich{.backend = "nftables", .family = "inet", .table = "firewalld",
                    .chain = "filter_IN_policy_sshd_deny_deny", .handle = 31,
                    .text = "ip saddr 192.0.2.7 tcp dport 22 reject with icmp port-unreachable", .verdict = "reject"};
  rich.blocker = Blocker{"firewalld", "policy sshd_deny", std::nullopt, true};
  const std::string removed = "--remove-rich-rule=rule family=\"ipv4\" source address=\"192.0.2.7\" service name=\"ssh\" reject";
  const auto commands = remedy_commands(firewall(rich));
  REQUIRE(commands.size() == 2);
  CHECK(shell_words(commands[0]) == std::vector<std::string>{"firewall-cmd", "--policy=sshd_deny", removed});
  CHECK(shell_words(commands[1]) ==
        std::vector<std::string>{"firewall-cmd", "--permanent", "--policy=sshd_deny", removed});
  CHECK(firewall_front_end(rich) == "firewalld");
  rich.blocker->permanent = false;
  CHECK(remedy_commands(firewall(rich)).size() == 1);
  // The policy's own target (--set-target REJECT): ssh allowed in the policy, before it.
  FirewallRule target{.backend = "nftables", .family = "inet", .table = "firewalld", .chain = "filter_IN_policy_sshd_deny",
                      .handle = 32, .text = "reject with icmpx admin-prohibited", .verdict = "reject"};
  target.blocker = Blocker{"firewalld", "policy sshd_deny", std::nullopt, true};
  CHECK(remedy_commands(firewall(target)) == Commands{"firewall-cmd --policy=sshd_deny --add-service=ssh",
                                                      "firewall-cmd --permanent --policy=sshd_deny --add-service=ssh"});
  // Unproven (the chain names itself) or not a rich rule firewalld writes: the nft rule by its handle.
  rich.blocker->name = "filter_IN_policy_sshd_deny_deny";
  CHECK(remedy_commands(firewall(rich)) == Commands{"nft delete rule inet firewalld filter_IN_policy_sshd_deny_deny handle 31"});
  rich.blocker->name = "policy sshd_deny";
  rich.text = "ip saddr 192.0.2.7 tcp dport 22 limit rate 3/minute drop";
  CHECK(remedy_commands(firewall(rich)) == Commands{"nft delete rule inet firewalld filter_IN_policy_sshd_deny_deny handle 31"});
  // A hostile name shaped like a policy's is no policy: nothing firewalld-shaped is built from it.
  target.blocker->name = "policy x; reboot";
  target.chain = "filter_IN_policy_x; reboot";
  for (const std::string& command : remedy_commands(firewall(target))) CHECK(command.find("firewall-cmd") == std::string::npos);
}
