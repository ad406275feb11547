// Certainty is earned (issue 16): a rule is certain only when every match on
// its path was evaluated against kernel evidence. Matches the walkers do not
// know, stateful ones, and evidence the kernel did not give make it probable,
// with the match named; the rulesets are the front-ends' real output.
#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <string>

#include "provenance/firewall.h"

using namespace rsttrace;

namespace {

// A SYN from 10.0.0.2 to this host's sshd, with the evidence the kernel gives at the drop.
PacketFacts ssh_syn_with_evidence() {
  PacketFacts p;
  p.family = 4;
  inet_pton(AF_INET, "10.0.0.2", p.saddr.data());
  inet_pton(AF_INET, "10.0.0.1", p.daddr.data());
  p.sport = 40000;
  p.dport = 22;
  p.hook = "input";
  p.tcp_flags = 0x02;
  p.conntrack = ConntrackFacts{ConntrackFacts::State::New};
  p.mark = 0;
  p.in_interface = "veth-srv";
  p.route_type = 2;  // RTN_LOCAL
  return p;
}

std::optional<FirewallRule> legacy_rule(const std::string& save, const PacketFacts& packet) {
  return find_dropping_rule(Rulesets{"", "", "", save}, packet);
}

std::string input_chain(const std::string& rules) {
  return "*filter\n:INPUT ACCEPT [0:0]\n" + rules + "COMMIT\n";
}

}  // namespace

TEST_CASE("a match rsttrace does not evaluate before a drop makes the drop probable, named", "[firewall][certainty]") {
  const PacketFacts packet = ssh_syn_with_evidence();
  for (const std::string module : {"recent --rcheck --seconds 60", "limit --limit 3/min", "hashlimit --hashlimit-name x",
                                   "string --algo bm --string ssh", "u32 --u32 0>>22&0x3C@12>>26&0x3F=0x10",
                                   "bpf --bytecode 1,6 0 0 0", "frobnicate --whatever"}) {
    const std::string name = module.substr(0, module.find(' '));
    INFO(name);
    // The match itself on the drop.
    const auto own = legacy_rule(input_chain("[1:60] -A INPUT -p tcp -m " + module + " -j DROP\n"), packet);
    REQUIRE(own);
    CHECK_FALSE(own->certain);
    CHECK(own->undecided == "-m " + name + " in INPUT");
    // The match on an accept before it: the drop after it may never have been reached.
    const auto after_accept = legacy_rule(
        input_chain("[1:60] -A INPUT -p tcp -m " + module + " -j ACCEPT\n[1:60] -A INPUT -p tcp --dport 22 -j DROP\n"),
        packet);
    REQUIRE(after_accept);
    CHECK(after_accept->text == "-A INPUT -p tcp --dport 22 -j DROP");
    CHECK_FALSE(after_accept->certain);
    CHECK(after_accept->undecided == "-m " + name + " in INPUT");
    // On a drop before it: the packet may have ended there instead.
    const auto after_drop = legacy_rule(
        input_chain("[1:60] -A INPUT -m " + module + " -j REJECT\n[1:60] -A INPUT -s 10.0.0.2 -j DROP\n"), packet);
    REQUIRE(after_drop);
    CHECK_FALSE(after_drop->certain);
  }
  // A target not known to continue (NFQUEUE hands the verdict to a program).
  const auto queued = legacy_rule(input_chain("[1:60] -A INPUT -j NFQUEUE --queue-num 1\n[1:60] -A INPUT -j DROP\n"), packet);
  REQUIRE(queued);
  CHECK_FALSE(queued->certain);
  // LOG continues: no doubt.
  const auto logged = legacy_rule(input_chain("[1:60] -A INPUT -m limit --limit 1/s -j LOG\n[1:60] -A INPUT -j DROP\n"), packet);
  REQUIRE(logged);
  CHECK(logged->certain);
}

TEST_CASE("nft statements the walker does not evaluate make a later drop probable", "[firewall][certainty]") {
  const PacketFacts packet = ssh_syn_with_evidence();
  auto nft = [&](const std::string& first_expr) {
    const std::string json =
        R"({"nftables": [{"chain": {"family": "inet", "table": "t", "name": "in", "handle": 1, "type": "filter", )"
        R"("hook": "input", "prio": 0, "policy": "accept"}}, )"
        R"({"rule": {"family": "inet", "table": "t", "chain": "in", "handle": 2, "expr": [)" + first_expr + R"(]}}, )"
        R"({"rule": {"family": "inet", "table": "t", "chain": "in", "handle": 3, "expr": [{"match": {"op": "==", )"
        R"("left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"drop": null}]}}]})";
    return find_dropping_rule(Rulesets{json, "", "", ""}, packet);
  };
  const auto limited = nft(R"({"limit": {"rate": 3, "per": "minute"}}, {"accept": null})");
  REQUIRE(limited);
  CHECK(limited->handle == 3u);
  CHECK_FALSE(limited->certain);
  CHECK(limited->undecided == "limit in in");
  const auto vmap = nft(R"({"vmap": {"key": {"payload": {"protocol": "ip", "field": "saddr"}}, "data": {"set": []}}})");
  REQUIRE(vmap);
  CHECK_FALSE(vmap->certain);
  CHECK(vmap->undecided.find("statement vmap") == 0);
  const auto hashed = nft(R"({"match": {"op": "==", "left": {"jhash": {}}, "right": 1}}, {"accept": null})");
  REQUIRE(hashed);
  CHECK_FALSE(hashed->certain);
  // Another transport's fields (ufw's DHCP rule, as iptables-nft writes it) cannot match a TCP packet.
  const auto udp = nft(R"({"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "protocol"}}, "right": "udp"}}, )"
                       R"({"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "sport"}}, "right": 67}}, {"accept": null})");
  REQUIRE(udp);
  CHECK(udp->certain);
  // meta l4proto as a number, and a device nft could only show by index.
  const auto numbered = nft(R"({"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": 6}}, {"accept": null})");
  CHECK_FALSE(numbered);  // accepted
  const auto by_index = nft(R"({"match": {"op": "==", "left": {"meta": {"key": "iif"}}, "right": 7}}, {"accept": null})");
  REQUIRE(by_index);
  CHECK_FALSE(by_index->certain);
  const auto counted = nft(R"({"counter": {"packets": 1, "bytes": 60}}, {"log": {"prefix": "x"}})");
  REQUIRE(counted);
  CHECK(counted->certain);  // neither ends the walk
}

TEST_CASE("conntrack state is decided from the kernel's entry, and undecided without it", "[firewall][certainty]") {
  const std::string json =
      R"({"nftables": [{"chain": {"family": "inet", "table": "t", "name": "in", "handle": 1, "type": "filter", )"
      R"("hook": "input", "prio": 0, "policy": "accept"}}, )"
      R"({"rule": {"family": "inet", "table": "t", "chain": "in", "handle": 4, "expr": [{"match": {"op": "in", )"
      R"("left": {"ct": {"key": "state"}}, "right": "invalid"}}, {"counter": {"packets": 1, "bytes": 52}}, {"drop": null}]}}]})";
  PacketFacts ack = ssh_syn_with_evidence();
  ack.tcp_flags = 0x10;
  ack.conntrack = ConntrackFacts{ConntrackFacts::State::Invalid};
  const auto invalid = find_dropping_rule(Rulesets{json, "", "", ""}, ack);
  REQUIRE(invalid);
  CHECK(invalid->handle == 4u);
  CHECK(invalid->certain);
  ack.conntrack = ConntrackFacts{ConntrackFacts::State::Established};
  CHECK_FALSE(find_dropping_rule(Rulesets{json, "", "", ""}, ack));
  ack.conntrack.reset();  // the kernel gave no entry
  const auto unknown = find_dropping_rule(Rulesets{json, "", "", ""}, ack);
  REQUIRE(unknown);
  CHECK_FALSE(unknown->certain);
  CHECK(unknown->undecided == "ct state (no conntrack evidence at the drop) in in");
  // A chain before conntrack's hook saw no state at all.
  std::string raw = json;
  raw.replace(raw.find(R"("prio": 0)"), 9, R"("prio": -300)");
  ack.conntrack = ConntrackFacts{ConntrackFacts::State::Invalid};
  const auto early = find_dropping_rule(Rulesets{raw, "", "", ""}, ack);
  REQUIRE(early);
  CHECK_FALSE(early->certain);
}

// What `ufw --force enable`, `ufw deny proto tcp from 10.0.0.2 to any port 22`
// and `ufw allow 22/tcp` leave (ufw 0.36.2 on Debian 12, iptables-nft): the
// ruleset as iptables-save -c prints it and ufw's own rule files. `ufw status
// numbered` then shows [1] 22/tcp DENY IN 10.0.0.2, [2] 22/tcp ALLOW IN
// Anywhere, [3] 22/tcp (v6) ALLOW IN Anywhere (v6).
const char* kUfw = R"(# Generated by iptables-save v1.8.9 (nf_tables) on Mon Nov 30 16:39:45 2026
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:ufw-after-forward - [0:0]
:ufw-after-input - [0:0]
:ufw-after-logging-forward - [0:0]
:ufw-after-logging-input - [0:0]
:ufw-after-logging-output - [0:0]
:ufw-after-output - [0:0]
:ufw-before-forward - [0:0]
:ufw-before-input - [0:0]
:ufw-before-logging-forward - [0:0]
:ufw-before-logging-input - [0:0]
:ufw-before-logging-output - [0:0]
:ufw-before-output - [0:0]
:ufw-logging-allow - [0:0]
:ufw-logging-deny - [0:0]
:ufw-not-local - [0:0]
:ufw-reject-forward - [0:0]
:ufw-reject-input - [0:0]
:ufw-reject-output - [0:0]
:ufw-skip-to-policy-forward - [0:0]
:ufw-skip-to-policy-input - [0:0]
:ufw-skip-to-policy-output - [0:0]
:ufw-track-forward - [0:0]
:ufw-track-input - [0:0]
:ufw-track-output - [0:0]
:ufw-user-forward - [0:0]
:ufw-user-input - [0:0]
:ufw-user-limit - [0:0]
:ufw-user-limit-accept - [0:0]
:ufw-user-logging-forward - [0:0]
:ufw-user-logging-input - [0:0]
:ufw-user-logging-output - [0:0]
:ufw-user-output - [0:0]
[0:0] -A INPUT -j ufw-before-logging-input
[0:0] -A INPUT -j ufw-before-input
[0:0] -A INPUT -j ufw-after-input
[0:0] -A INPUT -j ufw-after-logging-input
[0:0] -A INPUT -j ufw-reject-input
[0:0] -A INPUT -j ufw-track-input
[0:0] -A FORWARD -j ufw-before-logging-forward
[0:0] -A FORWARD -j ufw-before-forward
[0:0] -A FORWARD -j ufw-after-forward
[0:0] -A FORWARD -j ufw-after-logging-forward
[0:0] -A FORWARD -j ufw-reject-forward
[0:0] -A FORWARD -j ufw-track-forward
[0:0] -A OUTPUT -j ufw-before-logging-output
[0:0] -A OUTPUT -j ufw-before-output
[0:0] -A OUTPUT -j ufw-after-output
[0:0] -A OUTPUT -j ufw-after-logging-output
[0:0] -A OUTPUT -j ufw-reject-output
[0:0] -A OUTPUT -j ufw-track-output
[0:0] -A ufw-after-input -p udp -m udp --dport 137 -j ufw-skip-to-policy-input
[0:0] -A ufw-after-input -p udp -m udp --dport 138 -j ufw-skip-to-policy-input
[0:0] -A ufw-after-input -p tcp -m tcp --dport 139 -j ufw-skip-to-policy-input
[0:0] -A ufw-after-input -p tcp -m tcp --dport 445 -j ufw-skip-to-policy-input
[0:0] -A ufw-after-input -p udp -m udp --dport 67 -j ufw-skip-to-policy-input
[0:0] -A ufw-after-input -p udp -m udp --dport 68 -j ufw-skip-to-policy-input
[0:0] -A ufw-after-input -m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input
[0:0] -A ufw-after-logging-forward -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
[0:0] -A ufw-after-logging-input -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
[0:0] -A ufw-before-forward -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[0:0] -A ufw-before-forward -p icmp -m icmp --icmp-type 3 -j ACCEPT
[0:0] -A ufw-before-forward -p icmp -m icmp --icmp-type 11 -j ACCEPT
[0:0] -A ufw-before-forward -p icmp -m icmp --icmp-type 12 -j ACCEPT
[0:0] -A ufw-before-forward -p icmp -m icmp --icmp-type 8 -j ACCEPT
[0:0] -A ufw-before-forward -j ufw-user-forward
[0:0] -A ufw-before-input -i lo -j ACCEPT
[0:0] -A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[0:0] -A ufw-before-input -m conntrack --ctstate INVALID -j ufw-logging-deny
[0:0] -A ufw-before-input -m conntrack --ctstate INVALID -j DROP
[0:0] -A ufw-before-input -p icmp -m icmp --icmp-type 3 -j ACCEPT
[0:0] -A ufw-before-input -p icmp -m icmp --icmp-type 11 -j ACCEPT
[0:0] -A ufw-before-input -p icmp -m icmp --icmp-type 12 -j ACCEPT
[0:0] -A ufw-before-input -p icmp -m icmp --icmp-type 8 -j ACCEPT
[0:0] -A ufw-before-input -p udp -m udp --sport 67 --dport 68 -j ACCEPT
[0:0] -A ufw-before-input -j ufw-not-local
[0:0] -A ufw-before-input -d 224.0.0.251/32 -p udp -m udp --dport 5353 -j ACCEPT
[0:0] -A ufw-before-input -d 239.255.255.250/32 -p udp -m udp --dport 1900 -j ACCEPT
[0:0] -A ufw-before-input -j ufw-user-input
[0:0] -A ufw-before-output -o lo -j ACCEPT
[0:0] -A ufw-before-output -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[0:0] -A ufw-before-output -j ufw-user-output
[0:0] -A ufw-logging-allow -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW ALLOW] "
[0:0] -A ufw-logging-deny -m conntrack --ctstate INVALID -m limit --limit 3/min --limit-burst 10 -j RETURN
[0:0] -A ufw-logging-deny -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
[0:0] -A ufw-not-local -m addrtype --dst-type LOCAL -j RETURN
[0:0] -A ufw-not-local -m addrtype --dst-type MULTICAST -j RETURN
[0:0] -A ufw-not-local -m addrtype --dst-type BROADCAST -j RETURN
[0:0] -A ufw-not-local -m limit --limit 3/min --limit-burst 10 -j ufw-logging-deny
[0:0] -A ufw-not-local -j DROP
[0:0] -A ufw-skip-to-policy-forward -j DROP
[0:0] -A ufw-skip-to-policy-input -j DROP
[0:0] -A ufw-skip-to-policy-output -j ACCEPT
[0:0] -A ufw-track-output -p tcp -m conntrack --ctstate NEW -j ACCEPT
[0:0] -A ufw-track-output -p udp -m conntrack --ctstate NEW -j ACCEPT
[0:0] -A ufw-user-input -s 10.0.0.2/32 -p tcp -m tcp --dport 22 -j DROP
[0:0] -A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT
[0:0] -A ufw-user-limit -m limit --limit 3/min -j LOG --log-prefix "[UFW LIMIT BLOCK] "
[0:0] -A ufw-user-limit -j REJECT --reject-with icmp-port-unreachable
[0:0] -A ufw-user-limit-accept -j ACCEPT
COMMIT
# Completed on Mon Nov 30 16:39:45 2026
)";
const char* kUfwUserRules = R"(*filter
:ufw-user-input - [0:0]
:ufw-user-output - [0:0]
:ufw-user-forward - [0:0]
:ufw-before-logging-input - [0:0]
:ufw-before-logging-output - [0:0]
:ufw-before-logging-forward - [0:0]
:ufw-user-logging-input - [0:0]
:ufw-user-logging-output - [0:0]
:ufw-user-logging-forward - [0:0]
:ufw-after-logging-input - [0:0]
:ufw-after-logging-output - [0:0]
:ufw-after-logging-forward - [0:0]
:ufw-logging-deny - [0:0]
:ufw-logging-allow - [0:0]
:ufw-user-limit - [0:0]
:ufw-user-limit-accept - [0:0]
### RULES ###

### tuple ### deny tcp 22 0.0.0.0/0 any 10.0.0.2 in
-A ufw-user-input -p tcp --dport 22 -s 10.0.0.2 -j DROP

### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in
-A ufw-user-input -p tcp --dport 22 -j ACCEPT

### END RULES ###

### LOGGING ###
-A ufw-after-logging-input -j LOG --log-prefix "[UFW BLOCK] " -m limit --limit 3/min --limit-burst 10
-A ufw-after-logging-forward -j LOG --log-prefix "[UFW BLOCK] " -m limit --limit 3/min --limit-burst 10
-I ufw-logging-deny -m conntrack --ctstate INVALID -j RETURN -m limit --limit 3/min --limit-burst 10
-A ufw-logging-deny -j LOG --log-prefix "[UFW BLOCK] " -m limit --limit 3/min --limit-burst 10
-A ufw-logging-allow -j LOG --log-prefix "[UFW ALLOW] " -m limit --limit 3/min --limit-burst 10
### END LOGGING ###

### RATE LIMITING ###
-A ufw-user-limit -m limit --limit 3/minute -j LOG --log-prefix "[UFW LIMIT BLOCK] "
-A ufw-user-limit -j REJECT
-A ufw-user-limit-accept -j ACCEPT
### END RATE LIMITING ###
COMMIT
)";
const char* kUfwUser6Rules = R"(*filter
:ufw6-user-input - [0:0]
:ufw6-user-output - [0:0]
:ufw6-user-forward - [0:0]
:ufw6-before-logging-input - [0:0]
:ufw6-before-logging-output - [0:0]
:ufw6-before-logging-forward - [0:0]
:ufw6-user-logging-input - [0:0]
:ufw6-user-logging-output - [0:0]
:ufw6-user-logging-forward - [0:0]
:ufw6-after-logging-input - [0:0]
:ufw6-after-logging-output - [0:0]
:ufw6-after-logging-forward - [0:0]
:ufw6-logging-deny - [0:0]
:ufw6-logging-allow - [0:0]
:ufw6-user-limit - [0:0]
:ufw6-user-limit-accept - [0:0]
### RULES ###

### tuple ### allow tcp 22 ::/0 any ::/0 in
-A ufw6-user-input -p tcp --dport 22 -j ACCEPT

### END RULES ###

### LOGGING ###
-A ufw6-after-logging-input -j LOG --log-prefix "[UFW BLOCK] " -m limit --limit 3/min --limit-burst 10
-A ufw6-after-logging-forward -j LOG --log-prefix "[UFW BLOCK] " -m limit --limit 3/min --limit-burst 10
-I ufw6-logging-deny -m conntrack --ctstate INVALID -j RETURN -m limit --limit 3/min --limit-burst 10
-A ufw6-logging-deny -j LOG --log-prefix "[UFW BLOCK] " -m limit --limit 3/min --limit-burst 10
-A ufw6-logging-allow -j LOG --log-prefix "[UFW ALLOW] " -m limit --limit 3/min --limit-burst 10
### END LOGGING ###

### RATE LIMITING ###
-A ufw6-user-limit -m limit --limit 3/minute -j LOG --log-prefix "[UFW LIMIT BLOCK] "
-A ufw6-user-limit -j REJECT
-A ufw6-user-limit-accept -j ACCEPT
### END RATE LIMITING ###
COMMIT
)";

TEST_CASE("ufw: the user rule drops the client, not ufw-not-local's catch-all", "[firewall][certainty]") {
  PacketFacts packet = ssh_syn_with_evidence();
  const auto rule = legacy_rule(kUfw, packet);
  REQUIRE(rule);
  CHECK(rule->chain == "ufw-user-input");
  CHECK(rule->text == "-A ufw-user-input -s 10.0.0.2/32 -p tcp -m tcp --dport 22 -j DROP");
  CHECK(rule->certain);
  REQUIRE(rule->blocker);
  CHECK(rule->blocker->tool == "ufw");
  CHECK(rule->blocker->name == "ufw-user-input");
  CHECK_FALSE(rule->blocker->rule_number);  // ufw's files not read
  // With ufw's files: its number, as `ufw status numbered` shows it.
  Rulesets with_files{"", "", "", kUfw, {UfwFiles{kUfwUserRules, kUfwUser6Rules}}};
  const auto numbered = find_dropping_rule(with_files, packet);
  REQUIRE(numbered);
  REQUIRE(numbered->blocker);
  CHECK(numbered->blocker->rule_number == 1u);
  // Files that are not the loaded ones (another namespace's, stale) name no rule.
  std::string stale = kUfwUserRules;
  stale.replace(stale.find("-j DROP"), 7, "-j REJECT");
  Rulesets mismatched{"", "", "", kUfw, {UfwFiles{stale, kUfwUser6Rules}}};
  CHECK_FALSE(find_dropping_rule(mismatched, packet)->blocker->rule_number);
  // Without the route's type, ufw-not-local's RETURN is undecided: its DROP is at best probable.
  packet.route_type.reset();
  const auto unsure = legacy_rule(kUfw, packet);
  REQUIRE(unsure);
  CHECK_FALSE(unsure->certain);
  CHECK(unsure->undecided == "--dst-type LOCAL in ufw-not-local");
  // Without the receiving interface, `-i lo -j ACCEPT` is undecided.
  packet = ssh_syn_with_evidence();
  packet.in_interface.reset();
  const auto no_device = legacy_rule(kUfw, packet);
  REQUIRE(no_device);
  CHECK(no_device->chain == "ufw-user-input");
  CHECK_FALSE(no_device->certain);
  CHECK(no_device->undecided == "-i lo in ufw-before-input");
}

TEST_CASE("iptables-nft's xt matches are decided by the iptables-nft-save line", "[firewall][certainty]") {
  // fail2ban's iptables-multiport action on Debian 12 (iptables-nft): nft shows the multiport match only as xt.
  const std::string json =
      R"({"nftables": [{"table": {"family": "ip", "name": "filter", "handle": 1}}, )"
      R"({"chain": {"family": "ip", "table": "filter", "name": "INPUT", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}, )"
      R"({"chain": {"family": "ip", "table": "filter", "name": "f2b-sshd", "handle": 2}}, )"
      R"({"rule": {"family": "ip", "table": "filter", "chain": "INPUT", "handle": 3, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}, {"xt": {"type": "match", "name": "multiport"}}, {"counter": {"packets": 1, "bytes": 60}}, {"jump": {"target": "f2b-sshd"}}]}}, )"
      R"({"rule": {"family": "ip", "table": "filter", "chain": "f2b-sshd", "handle": 4, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "10.0.0.2"}}, {"counter": {"packets": 1, "bytes": 60}}, {"xt": {"type": "target", "name": "REJECT"}}]}}, )"
      R"({"rule": {"family": "ip", "table": "filter", "chain": "f2b-sshd", "handle": 5, "expr": [{"counter": {"packets": 0, "bytes": 0}}, {"return": null}]}}]})";
  const std::string save = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:f2b-sshd - [0:0]\n"
                           "[1:60] -A INPUT -p tcp -m multiport --dports 22 -j f2b-sshd\n"
                           "[1:60] -A f2b-sshd -s 10.0.0.2/32 -j REJECT --reject-with icmp-port-unreachable\n"
                           "[0:0] -A f2b-sshd -j RETURN\nCOMMIT\n";
  const auto rule = find_dropping_rule(Rulesets{json, "", save, ""}, ssh_syn_with_evidence());
  REQUIRE(rule);
  CHECK(rule->backend == "iptables-nft");
  CHECK(rule->chain == "f2b-sshd");
  CHECK(rule->text == "-A f2b-sshd -s 10.0.0.2/32 -j REJECT --reject-with icmp-port-unreachable");
  CHECK(rule->fail2ban_jail == "sshd");
  CHECK(rule->certain);
  // Without the iptables-nft-save text, the xt match stays undecided: the same rule, probable.
  const auto alone = find_dropping_rule(Rulesets{json, "", "", ""}, ssh_syn_with_evidence());
  REQUIRE(alone);
  CHECK(alone->chain == "f2b-sshd");
  CHECK_FALSE(alone->certain);
}

TEST_CASE("marks, interfaces, address types, ranges and service names", "[firewall][certainty]") {
  const PacketFacts packet = ssh_syn_with_evidence();
  auto verdict = [&](const std::string& rules) {
    const auto rule = legacy_rule(input_chain(rules), packet);
    return !rule ? std::string("none") : rule->certain ? "drop" : "maybe";
  };
  CHECK(verdict("[0:0] -A INPUT -m mark --mark 0x1/0xff -j ACCEPT\n[0:0] -A INPUT -j DROP\n") == "drop");
  CHECK(verdict("[0:0] -A INPUT -m mark --mark 0x0 -j ACCEPT\n[0:0] -A INPUT -j DROP\n") == "none");
  // A rule that sets marks: the mark at the drop is not what earlier rules saw.
  CHECK(verdict("[0:0] -A INPUT -m mark --mark 0x1 -j ACCEPT\n[0:0] -A INPUT -j MARK --set-mark 0x1\n"
                "[0:0] -A INPUT -j DROP\n") == "maybe");
  CHECK(verdict("[0:0] -A INPUT -i veth+ -j DROP\n") == "drop");
  CHECK(verdict("[0:0] -A INPUT ! -i veth-srv -j DROP\n") == "none");
  CHECK(verdict("[0:0] -A INPUT -m iprange --src-range 10.0.0.1-10.0.0.9 -j DROP\n") == "drop");
  CHECK(verdict("[0:0] -A INPUT -m iprange --src-range 10.0.0.3-10.0.0.9 -j DROP\n") == "none");
  CHECK(verdict("[0:0] -A INPUT -p tcp -m multiport --dports ssh -j DROP\n") == "drop");
  CHECK(verdict("[0:0] -A INPUT -p tcp --syn -j DROP\n") == "drop");
  CHECK(verdict("[0:0] -A INPUT -p tcp -m tcp --tcp-flags SYN,ACK ACK -j DROP\n") == "none");
  CHECK(verdict("[0:0] -A INPUT -m addrtype ! --dst-type LOCAL -j DROP\n") == "none");
  CHECK(verdict("[0:0] -A INPUT -m addrtype --src-type LOCAL -j DROP\n") == "maybe");
}

TEST_CASE("ufw rule numbers: user.rules' tuples, then user6.rules'", "[firewall]") {
  const UfwFiles files{kUfwUserRules, kUfwUser6Rules};
  CHECK(ufw_rule_number(files, 4, "ufw-user-input", 0, {"DROP", "ACCEPT"}) == 1u);
  CHECK(ufw_rule_number(files, 4, "ufw-user-input", 1, {"DROP", "ACCEPT"}) == 2u);
  CHECK(ufw_rule_number(files, 6, "ufw6-user-input", 0, {"ACCEPT"}) == 3u);
  CHECK_FALSE(ufw_rule_number(files, 4, "ufw-user-input", 0, {"DROP"}));            // not the loaded file
  CHECK_FALSE(ufw_rule_number(files, 4, "ufw-user-input", 2, {"DROP", "ACCEPT"}));  // past its end
}

TEST_CASE("rule counters read before and after the drop corroborate the rule, or take its certainty", "[firewall]") {
  const PacketFacts packet = ssh_syn_with_evidence();
  auto legacy = [](int packets) {
    return Rulesets{"", "", "", input_chain("[" + std::to_string(packets) + ":240] -A INPUT -s 10.0.0.2/32 -j DROP\n")};
  };
  const RulesetIndex before(legacy(4));
  auto moved = RulesetIndex(legacy(5)).find_dropping_rule(packet);
  REQUIRE(moved);
  corroborate_with_counters(*moved, before);
  CHECK(moved->counter_moved == true);
  CHECK(moved->certain);
  auto still = RulesetIndex(legacy(4)).find_dropping_rule(packet);
  REQUIRE(still);
  corroborate_with_counters(*still, before);
  CHECK(still->counter_moved == false);
  CHECK_FALSE(still->certain);
  CHECK(still->undecided.find("its counter did not move") == 0);
  // Another rule at that place before (the ruleset changed): nothing is said.
  const RulesetIndex other(Rulesets{"", "", "", input_chain("[9:540] -A INPUT -s 10.0.0.9/32 -j DROP\n")});
  auto changed = RulesetIndex(legacy(5)).find_dropping_rule(packet);
  corroborate_with_counters(*changed, other);
  CHECK_FALSE(changed->counter_moved);
  // nft: the same handle and text but for the counter.
  auto nft = [](int packets) {
    const std::string n = std::to_string(packets);
    return Rulesets{
        R"({"nftables": [{"chain": {"family": "inet", "table": "t", "name": "in", "handle": 1, "type": "filter", )"
        R"("hook": "input", "prio": 0, "policy": "accept"}}, {"rule": {"family": "inet", "table": "t", "chain": "in", )"
        R"("handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, )"
        R"("right": 22}}, {"counter": {"packets": )" + n + R"(, "bytes": 60}}, {"drop": null}]}}]})",
        "table inet t {\n\tchain in { # handle 1\n\t\ttcp dport 22 counter packets " + n +
            " bytes 60 drop # handle 2\n\t}\n}\n",
        "", ""};
  };
  const RulesetIndex nft_before(nft(1));
  auto nft_rule = RulesetIndex(nft(2)).find_dropping_rule(packet);
  REQUIRE(nft_rule);
  corroborate_with_counters(*nft_rule, nft_before);
  CHECK(nft_rule->counter_moved == true);
}

TEST_CASE("the front-end behind a rule, from the names it gives its chains, tables and sets", "[firewall]") {
  auto blocker = [](const char* backend, const char* table, const char* chain, const char* text) {
    FirewallRule rule{backend, "inet", table, chain, std::nullopt, text, "drop"};
    rule.fail2ban_jail = fail2ban_jail_of(chain);
    return blocker_of(rule);
  };
  const auto f2b = blocker("iptables-nft", "filter", "f2b-sshd", "-A f2b-sshd -s 10.0.0.2/32 -j REJECT");
  REQUIRE(f2b);
  CHECK((f2b->tool == "fail2ban" && f2b->name == "sshd"));
  // fail2ban's iptables-ipset action: the jail is in the set's name.
  const auto ipset = blocker("iptables-nft", "filter", "INPUT",
                             "-A INPUT -p tcp -m multiport --dports 22 -m set --match-set f2b-sshd src -j REJECT");
  REQUIRE(ipset);
  CHECK((ipset->tool == "fail2ban" && ipset->name == "sshd"));
  const auto firewalld = blocker("nftables", "firewalld", "filter_IN_public_deny", "ip saddr 10.0.0.2 reject");
  REQUIRE(firewalld);
  CHECK((firewalld->tool == "firewalld" && firewalld->name == "public"));
  // A zone's own target (firewalld 1.3: `drop` last in filter_IN_drop), and a zone name with '_' in it.
  CHECK(blocker("nftables", "firewalld", "filter_IN_drop", "drop")->name == "drop");
  CHECK(blocker("nftables", "firewalld", "filter_IN_my_zone_deny", "ip saddr 10.0.0.2 drop")->name == "my_zone");
  CHECK(blocker("nftables", "firewalld", "filter_IN_my_zone", "drop")->name == "my_zone");
  CHECK(blocker("nftables", "firewalld", "filter_INPUT", "ct state invalid drop")->name == "filter_INPUT");
  const auto sshguard = blocker("nftables", "sshguard", "blacklist", "ip saddr @attackers drop");
  REQUIRE(sshguard);
  CHECK(sshguard->tool == "sshguard");
  const auto sshguard_ipset = blocker("iptables-legacy", "filter", "INPUT", "-A INPUT -m set --match-set sshguard4 src -j DROP");
  REQUIRE(sshguard_ipset);
  CHECK((sshguard_ipset->tool == "sshguard" && sshguard_ipset->name == "sshguard4"));
  CHECK_FALSE(blocker("nftables", "t", "input", "tcp dport 22 drop"));
}

TEST_CASE("ipset membership: fail2ban's iptables-ipset action, tested against the namespace's sets", "[firewall]") {
  const std::string save = input_chain(
      "[1:60] -A INPUT -p tcp -m multiport --dports 22 -m set --match-set f2b-sshd src -j REJECT --reject-with "
      "icmp-port-unreachable\n");
  const std::string sets =
      "create f2b-sshd hash:ip family inet hashsize 1024 maxelem 65536 timeout 600 bucketsize 12 initval 0x1\n"
      "add f2b-sshd 10.0.0.2 timeout 594\n";
  const auto banned = find_dropping_rule(Rulesets{"", "", "", save, {}, sets}, ssh_syn_with_evidence());
  REQUIRE(banned);
  CHECK(banned->certain);
  REQUIRE(banned->blocker);
  CHECK((banned->blocker->tool == "fail2ban" && banned->blocker->name == "sshd"));
  CHECK(banned->fail2ban_jail == "sshd");
  CHECK(banned->set_element == "10.0.0.2");
  // sshguard's hash:net set holding the client's /24 (IPV4_SUBNET=24): that entry.
  const std::string subnet = "create sshguard4 hash:net family inet\nadd sshguard4 10.0.0.0/24\n";
  const auto by_net = find_dropping_rule(
      Rulesets{"", "", "", input_chain("[1:60] -A INPUT -m set --match-set sshguard4 src -j DROP\n"), {}, subnet},
      ssh_syn_with_evidence());
  REQUIRE(by_net);
  CHECK(by_net->set_element == "10.0.0.0/24");
  PacketFacts other = ssh_syn_with_evidence();
  other.saddr[3] = 9;
  CHECK_FALSE(find_dropping_rule(Rulesets{"", "", "", save, {}, sets}, other));
  // Without the sets (ipset not readable): probable, named.
  const auto unread = find_dropping_rule(Rulesets{"", "", "", save}, ssh_syn_with_evidence());
  REQUIRE(unread);
  CHECK_FALSE(unread->certain);
  CHECK(unread->undecided == "--match-set f2b-sshd src in INPUT");
  // A set of another type (hash:ip,port) is not evaluated.
  const std::string pairs = "create f2b-sshd hash:ip,port family inet\nadd f2b-sshd 10.0.0.2,tcp:22\n";
  CHECK_FALSE(find_dropping_rule(Rulesets{"", "", "", save, {}, pairs}, ssh_syn_with_evidence())->certain);
}

TEST_CASE("firewalld 2: a zone's own target follows the jump into the zone", "[firewall]") {
  CHECK(firewalld_dispatch_zone("ip saddr 10.77.0.2 drop", "ip saddr 10.77.0.2 jump filter_IN_drop") == "drop");
  CHECK(firewalld_dispatch_zone("reject with icmpx admin-prohibited", "jump filter_IN_public") == "public");
  CHECK(firewalld_dispatch_zone("iifname \"eth1\" reject with icmpx admin-prohibited",
                                "iifname \"eth1\" jump filter_IN_block") == "block");
  // Other matches, a policy's chain, no verdict, a jump elsewhere: no zone.
  CHECK(!firewalld_dispatch_zone("ip saddr 10.77.0.3 drop", "ip saddr 10.77.0.2 jump filter_IN_drop"));
  CHECK(!firewalld_dispatch_zone("ip saddr 10.77.0.2 drop", "ip saddr 10.77.0.2 jump filter_IN_policy_allow-host-ipv6"));
  CHECK(!firewalld_dispatch_zone("ip saddr 10.77.0.2 accept", "ip saddr 10.77.0.2 jump filter_IN_drop"));
  CHECK(!firewalld_dispatch_zone("ip saddr 10.77.0.2 drop", "ip saddr 10.77.0.2 jump filter_IN_drop; flush"));
  CHECK(!firewalld_dispatch_zone("drop", ""));
}

TEST_CASE("firewalld: a block is permanent when its zone file holds it", "[firewall]") {
  const std::string drop_zone = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<zone target=\"DROP\">\n"
                                "  <short>Drop</short>\n  <source address=\"10.77.0.2\"/>\n  <forward/>\n</zone>\n";
  const std::string public_zone = "<zone>\n  <service name=\"ssh\"/>\n  <rule family=\"ipv4\">\n"
                                  "    <source address=\"10.77.0.2\"/>\n    <service name=\"ssh\"/>\n    <reject/>\n"
                                  "  </rule>\n  <rule family=\"ipv4\">\n    <source address=\"10.77.0.3\"/>\n"
                                  "    <accept/>\n  </rule>\n</zone>\n";
  const std::vector<FirewalldZoneFile> files{{"drop", drop_zone}, {"public", public_zone}, {"block", ""}};
  CHECK(firewalld_permanent(files, "drop", "10.77.0.2", false) == true);
  CHECK(firewalld_permanent(files, "drop", "10.77.0.20", false) == false);
  CHECK(firewalld_permanent(files, "drop", "10.77.0.2", true) == false);  // a source, not a rich rule
  CHECK(firewalld_permanent(files, "public", "10.77.0.2", true) == true);
  CHECK(firewalld_permanent(files, "public", "10.77.0.2", false) == false);  // only inside a rule
  CHECK(firewalld_permanent(files, "public", "10.77.0.3", true) == false);   // an accept blocks nothing
  CHECK(firewalld_permanent(files, "block", "10.77.0.2", false) == false);   // no file: as shipped
  CHECK(!firewalld_permanent(files, "work", "10.77.0.2", false));            // never read: not known
}

TEST_CASE("firewalld: a policy's chain names the policy only when its files prove whose it is", "[firewall]") {
  const std::string policy = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<policy priority=\"-1\" target=\"CONTINUE\">\n"
                             "  <ingress-zone name=\"public\"/>\n  <egress-zone name=\"HOST\"/>\n"
                             "  <rule family=\"ipv4\">\n    <source address=\"10.77.0.2\"/>\n    <service name=\"ssh\"/>\n"
                             "    <reject/>\n  </rule>\n</policy>\n";
  const std::string rejecting = "<policy target=\"REJECT\">\n  <ingress-zone name=\"public\"/>\n</policy>\n";
  using Files = std::vector<FirewalldZoneFile>;
  // The readings of a name: itself (the policy's own chain), and less a part's suffix.
  CHECK(firewalld_policy_candidates("filter_IN_policy_ssh_deny") == std::vector<std::string>{"ssh_deny", "ssh"});
  CHECK(firewalld_policy_candidates("filter_IN_policy_ssh") == std::vector<std::string>{"ssh"});
  CHECK(firewalld_policy_candidates("filter_IN_policy_").empty());
  CHECK(firewalld_policy_candidates("filter_IN_public_deny").empty());
  CHECK(firewalld_policy_candidates("filter_OUT_policy_ssh").empty());
  // A zone's chain is not a policy, and a policy's chain is not a zone: blocker_of keeps the chain's name.
  FirewallRule in_policy{"nftables", "inet", "firewalld", "filter_IN_policy_ssh_deny", 7,
                         "ip saddr 10.77.0.2 tcp dport 22 reject with icmp port-unreachable", "reject"};
  CHECK(blocker_of(in_policy)->name == "filter_IN_policy_ssh_deny");

  // One policy file: that policy, its deny chain (a rich rule) or its own chain (its target).
  const auto ssh = firewalld_policy_owner("filter_IN_policy_ssh_deny", Files{{"ssh", policy}, {"ssh_deny", ""}}, {});
  REQUIRE(ssh);
  CHECK((ssh->name == "policy ssh" && ssh->policy == "ssh" && ssh->rich));
  const auto own = firewalld_policy_owner("filter_IN_policy_ssh", Files{{"ssh", rejecting}}, {});
  REQUIRE(own);
  CHECK((own->name == "policy ssh" && !own->rich));
  // A policy named like a part: sshd_deny's deny chain is filter_IN_policy_sshd_deny_deny.
  const auto odd = firewalld_policy_owner("filter_IN_policy_sshd_deny_deny",
                                          Files{{"sshd_deny_deny", ""}, {"sshd_deny", policy}}, {});
  REQUIRE(odd);
  CHECK((odd->name == "policy sshd_deny" && odd->rich));
  // Both readings have a file (policies a and a_deny): ambiguous, no name claimed.
  CHECK(!firewalld_policy_owner("filter_IN_policy_a_deny", Files{{"a_deny", policy}, {"a", policy}}, {}));
  // A zone named policy_a renders as the same chains: its file alone names the zone, both are ambiguous.
  const auto zone = firewalld_policy_owner("filter_IN_policy_a_deny", {}, Files{{"policy_a", "<zone/>"}});
  REQUIRE(zone);
  CHECK((zone->name == "policy_a" && zone->policy.empty() && zone->rich));
  CHECK(!firewalld_policy_owner("filter_IN_policy_a_deny", Files{{"a", policy}}, Files{{"policy_a", "<zone/>"}}));
  // No file at all (a built-in policy, or files not readable): nothing claimed.
  CHECK(!firewalld_policy_owner("filter_IN_policy_allow-host-ipv6", Files{{"allow-host-ipv6", ""}}, {}));
  // A hostile chain name (bytes no policy file can be named by: the broker reads [A-Za-z0-9_-] only):
  // no reading has a file, so nothing is claimed; the chain names itself, escaped on output.
  CHECK(!firewalld_policy_owner("filter_IN_policy_a\x1b[31m_deny", Files{{"a", policy}}, {}));
  CHECK(!firewalld_policy_owner("filter_IN_policy_a/../../x_deny", Files{{"a", policy}}, {}));
  FirewallRule hostile{"nftables", "inet", "firewalld", "filter_IN_policy_a\x1b[31m_deny", 8, "drop", "drop"};
  CHECK(blocker_of(hostile)->name == hostile.chain);
  // Another root's file counts too: two roots, two different policies: ambiguous.
  CHECK(!firewalld_policy_owner("filter_IN_policy_a_post", Files{{"a_post", policy}, {"a", ""}, {"a", policy}}, {}));

  // Permanent: the rich rule's source in the policy's file, or its own target.
  CHECK(firewalld_policy_permanent(Files{{"ssh", policy}}, *ssh, "10.77.0.2") == true);
  CHECK(firewalld_policy_permanent(Files{{"ssh", policy}}, *ssh, "10.77.0.3") == false);
  CHECK(firewalld_policy_permanent(Files{{"ssh", rejecting}}, *own, "10.77.0.2") == true);
  CHECK(firewalld_policy_permanent(Files{{"ssh", policy}}, *own, "10.77.0.2") == false);  // target CONTINUE
  CHECK(!firewalld_policy_permanent(Files{{"other", policy}}, *ssh, "10.77.0.2"));
  CHECK(!firewalld_policy_permanent(Files{{"policy_a", policy}}, *zone, "10.77.0.2"));  // a zone's: zones' files
}

TEST_CASE("firewalld: a policy's rich rule found in a ruleset is named by the policy's file", "[firewall]") {
  // firewalld's policy sshd_deny (ingress public, egress HOST), dispatched before the zones.
  const std::string text =
      "table inet firewalld {\n"
      "\tchain filter_INPUT {\n\t\ttype filter hook input priority filter + 10; policy accept;\n"
      "\t\tjump filter_INPUT_POLICIES_pre # handle 1\n\t}\n"
      "\tchain filter_INPUT_POLICIES_pre {\n\t\tjump filter_IN_policy_sshd_deny # handle 2\n\t}\n"
      "\tchain filter_IN_policy_sshd_deny {\n\t\tjump filter_IN_policy_sshd_deny_deny # handle 3\n\t}\n"
      "\tchain filter_IN_policy_sshd_deny_deny {\n"
      "\t\tip saddr 10.0.0.2 tcp dport 22 reject with icmp port-unreachable # handle 4\n\t}\n}\n";
  const std::string json = R"({"nftables": [
    {"table": {"family": "inet", "name": "firewalld", "handle": 1}},
    {"chain": {"family": "inet", "table": "firewalld", "name": "filter_INPUT", "handle": 10, "type": "filter",
               "hook": "input", "prio": 10, "policy": "accept"}},
    {"chain": {"family": "inet", "table": "firewalld", "name": "filter_INPUT_POLICIES_pre", "handle": 11}},
    {"chain": {"family": "inet", "table": "firewalld", "name": "filter_IN_policy_sshd_deny", "handle": 12}},
    {"chain": {"family": "inet", "table": "firewalld", "name": "filter_IN_policy_sshd_deny_deny", "handle": 13}},
    {"rule": {"family": "inet", "table": "firewalld", "chain": "filter_INPUT", "handle": 1,
              "expr": [{"jump": {"target": "filter_INPUT_POLICIES_pre"}}]}},
    {"rule": {"family": "inet", "table": "firewalld", "chain": "filter_INPUT_POLICIES_pre", "handle": 2,
              "expr": [{"jump": {"target": "filter_IN_policy_sshd_deny"}}]}},
    {"rule": {"family": "inet", "table": "firewalld", "chain": "filter_IN_policy_sshd_deny", "handle": 3,
              "expr": [{"jump": {"target": "filter_IN_policy_sshd_deny_deny"}}]}},
    {"rule": {"family": "inet", "table": "firewalld", "chain": "filter_IN_policy_sshd_deny_deny", "handle": 4,
              "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "10.0.0.2"}},
                       {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}},
                       {"reject": {"type": "icmp", "expr": "port-unreachable"}}]}}
  ]})";
  Rulesets rulesets{json, text};
  rulesets.firewalld_policies = {{"sshd_deny", "<policy>\n  <rule family=\"ipv4\">\n    <source address=\"10.0.0.2\"/>\n"
                                               "    <service name=\"ssh\"/>\n    <reject/>\n  </rule>\n</policy>\n"},
                                 {"sshd_deny_deny", ""}};
  const auto rule = find_dropping_rule(rulesets, ssh_syn_with_evidence());
  REQUIRE(rule);
  CHECK(rule->chain == "filter_IN_policy_sshd_deny_deny");
  CHECK(rule->certain);
  REQUIRE(rule->blocker);
  CHECK((rule->blocker->tool == "firewalld" && rule->blocker->name == "policy sshd_deny"));
  CHECK(rule->blocker->permanent == true);
  // Without the policy's file the chain is named, nothing claimed; with both readings' files, too.
  rulesets.firewalld_policies = {};
  CHECK(find_dropping_rule(rulesets, ssh_syn_with_evidence())->blocker->name == "filter_IN_policy_sshd_deny_deny");
  rulesets.firewalld_policies = {{"sshd_deny", "<policy/>"}, {"sshd_deny_deny", "<policy/>"}};
  const auto ambiguous = find_dropping_rule(rulesets, ssh_syn_with_evidence());
  CHECK(ambiguous->blocker->name == "filter_IN_policy_sshd_deny_deny");
  CHECK(!ambiguous->blocker->permanent);
}
