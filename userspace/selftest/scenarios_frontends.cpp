// Issue 16's firewall front-ends, each written by the userland's own tool
// (fail2ban's banactions, ufw, nft, iptables) and met by a remote client over
// veth: the rule, its backend, the front-end (`blocker`), the certainty, the
// remedy and explain's prediction are checked in every row.
#include <regex>

#include "error.h"

#include "selftest/scenario.h"

namespace rsttrace::lab {
namespace {

constexpr const char* kJail = "sshd-lab";
// Scenario::remote_only: why these scenarios have no loopback row.
constexpr const char* kFrontEndRemoteOnly =
    "a front-end's block is met by a client on another host (issue 16 asks for a remote client over veth); "
    "the loopback row would add CI time and nothing the front-end does";

// The ban of `address` is in effect once the action's own set or chain lists it
// (fail2ban lists a ban before its action has run), read with the userland's tools.
bool ban_in_effect(const Sshd& sshd, const std::string& action, const std::string& address) {
  const std::string chain = std::string("f2b-") + kJail;
  std::vector<std::string> argv = {"iptables", "-w", "-S", chain};
  if (action.rfind("nftables", 0) == 0) argv = {"nft", "list", "set", "inet", "f2b-table", std::string("addr-set-") + kJail};
  if (action.rfind("iptables-ipset", 0) == 0) argv = {"ipset", "list", chain};
  return sshd.run(argv).out.find(address) != std::string::npos;
}

Expectation fail2ban_block(const ClientSide& c) {
  Expectation e{.verdict = Verdict::Firewall, .remote_addr = c.client4,
                .detail_says = std::string("(fail2ban jail ") + kJail + ")", .client_says = "Connection refused",
                .rule_certain = true};
  e.blocker_tool = "fail2ban";
  e.blocker_name = kJail;
  e.blocker_rule_number = 0;  // null: a jail has no rule number
  e.remedy_says = std::string("fail2ban-client set ") + kJail + " unbanip " + c.client4;
  return e;
}

// One fail2ban-server with the banaction under test only; the client is banned
// with `banip` (the jail's own action, without waiting out failed logins).
void fail2ban_banaction(Lab& lab, const std::string& action, const std::function<void(Expectation&, const ClientSide&)>& rule) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {});
  Fail2ban fail2ban(ns, lab.dir(), sshd, kJail, action);
  fail2ban.ban(c.client4);
  fail2ban.wait_banned(c.client4, [&] { return ban_in_effect(sshd, action, c.client4); });
  Expectation expected = fail2ban_block(c);
  rule(expected, c);
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 22), expected);
}

// iptables-multiport and -allports: the ban is a rule of the jail's own chain.
void f2b_chain_rule(Expectation& e, const ClientSide& c) {
  e.rule_backend = "iptables-nft";
  e.rule_chain = std::string("f2b-") + kJail;
  e.rule_says = "-A f2b-" + std::string(kJail) + " -s " + c.client4 + "/32 -j REJECT --reject-with icmp-port-unreachable";
}

// nftables-multiport and -allports: the rule looks the client up in the jail's set.
void f2b_nft_set_rule(Lab& lab, Expectation& e, const std::string& rule_says) {
  e.rule_backend = "nftables";
  e.rule_chain = "f2b-chain";
  e.rule_says = rule_says;
  // Debian 13's nft writes sets that this host's nft crashes on: the rule is read over netlink, its
  // expressions decoded, and written as nft writes it: certain there too.
  if (lab.userland() == Userland::Debian13) e.detail_says = "(read over netlink: this host's nft crashed";
}

// ufw's own deny of the client before its allow of port 22: the user rule and its number.
void ufw_deny(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {});
  // In sshd's mount namespace, whose /etc (Debian 12) or root (Debian 13) is the lab's overlay.
  sshd.run_checked({"sh", "-c", ": > /etc/ufw/sysctl.conf"});  // ufw's sysctls are not under test
  sshd.run_checked({"ufw", "--force", "enable"});
  sshd.run_checked({"ufw", "deny", "proto", "tcp", "from", c.client4, "to", "any", "port", "22"});
  sshd.run_checked({"ufw", "allow", "22/tcp"});
  // The number as `ufw status numbered` prints it: "[ 1] 22/tcp   DENY IN   10.77.0.2".
  const std::string numbered = sshd.run_checked({"ufw", "status", "numbered"}).out;
  std::smatch found;
  const std::regex line("\\[ *([0-9]+)\\] 22/tcp +DENY IN +" + std::regex_replace(c.client4, std::regex("\\."), "\\.") +
                        "\\s");
  if (!std::regex_search(numbered, found, line))
    throw failed("find", "the deny in `ufw status numbered`", numbered);
  const int number = std::stoi(found[1]);
  Expectation e{.verdict = Verdict::Firewall, .remote_addr = c.client4, .peer_saw = "silence",
                .detail_says = "(written by ufw: ufw-user-input rule " + std::to_string(number) + ")", .client_says = "timed out",
                .rule_backend = "iptables-nft",
                .rule_says = "-A ufw-user-input -s " + c.client4 + "/32 -p tcp -m tcp --dport 22 -j DROP",
                .rule_certain = true};
  e.rule_chain = "ufw-user-input";
  e.blocker_tool = "ufw";
  e.blocker_name = "ufw-user-input";
  e.blocker_rule_number = number;
  e.remedy_says = "ufw delete " + std::to_string(number);
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 22, 3), e);
}

// One TCP ACK from client4:kClientPort that belongs to no connection (a raw socket).
std::string stray_ack_program(const ClientSide& c) {
  return "import socket, struct\n"
         "src, dst = socket.inet_aton('" + c.client4 + "'), socket.inet_aton('" + c.server4 + "')\n"
         "tcp = struct.pack('!HHIIBBHHH', " + std::to_string(kClientPort) + ", 22, 1000, 2000, 5 << 4, 0x10, 65535, 0, 0)\n"
         "data = src + dst + struct.pack('!BBH', 0, 6, len(tcp)) + tcp\n"
         "total = sum(struct.unpack('!%dH' % (len(data) // 2), data))\n"
         "while total >> 16: total = (total & 0xffff) + (total >> 16)\n"
         "tcp = tcp[:16] + struct.pack('!H', ~total & 0xffff) + tcp[18:]\n"
         "socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP).sendto(tcp, ('" + c.server4 + "', 0))\n"
         "print('sent')\n";
}

constexpr const char* kLabTable =
    "add table inet rsttrace_lab; add chain inet rsttrace_lab input { type filter hook input priority 0; }; ";

// `ct state invalid drop` and a stray ACK: conntrack's own state at the drop decides the rule.
void ct_state_invalid(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {});
  sshd.run_checked({"nft", std::string(kLabTable) + "add rule inet rsttrace_lab input ct state invalid counter drop"});
  // Loose tracking would pick the mid-stream ACK up as established.
  ns.run_checked({"sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_loose=0"});
  c.ns.explain_before_connect(c.client4, 22);
  Expectation e{.verdict = Verdict::Firewall, .remote_addr = c.client4, .detail_says = "NETFILTER_DROP",
                .client_says = "sent", .rule_backend = "nftables", .rule_says = "ct state invalid counter packets",
                .rule_certain = true,
                // A new connection's SYN is not invalid: only the stray ACK meets the rule.
                .explain_says = "allowed"};
  e.rule_chain = "input";
  e.blocker_tool = "-";
  e.remedy_says = "nft delete rule inet rsttrace_lab input handle ";
  e.tcp_flags = "ACK";
  lab.expect(ns, c.ns.run_checked({"python3", "-c", stray_ack_program(c)}), e);
}

// Port 2222 forwarded to 22, and a drop of what was forwarded: the event gives the port the client dialled.
void dnat_port(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {});
  sshd.run_checked({"nft", "add table ip rsttrace_nat; "
                           "add chain ip rsttrace_nat pre { type nat hook prerouting priority -100; }; "
                           "add rule ip rsttrace_nat pre tcp dport 2222 dnat to " + c.server4 + ":22; " +
                           kLabTable + "add rule inet rsttrace_lab input ip saddr " + c.client4 +
                           " tcp dport 22 ct status dnat ct original proto-dst 2222 counter drop"});
  // The event names port 22 (the socket's): explain is asked for it too.
  c.ns.explain_before_connect(c.client4, 22);
  Expectation e{.verdict = Verdict::Firewall, .remote_addr = c.client4, .peer_saw = "silence",
                .client_says = "timed out", .rule_backend = "nftables",
                .rule_says = "ip saddr " + c.client4 + " tcp dport 22 ct status dnat ct original proto-dst 2222 counter",
                .rule_certain = true,
                // Dialled directly, port 22 is not forwarded: the rule does not match a direct SYN.
                .explain_says = "allowed"};
  e.rule_chain = "input";
  e.blocker_tool = "-";
  e.original_port = 2222;
  e.remedy_says = "nft delete rule inet rsttrace_lab input handle ";
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 2222, 3), e);
}

// `-m recent` (ufw limit's match) before a drop: a match rsttrace cannot decide, never certain.
void iptables_recent(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {});
  sshd.run_checked({"iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-m", "recent", "--name", "lab",
                    "--rcheck", "-j", "ACCEPT"});
  sshd.run_checked({"iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-s", c.client4, "-j", "DROP"});
  Expectation e{.verdict = Verdict::Firewall, .remote_addr = c.client4, .peer_saw = "silence",
                .detail_says = "not certain", .client_says = "timed out", .rule_backend = "iptables-nft",
                .rule_says = "-A INPUT -s " + c.client4 + "/32 -p tcp -m tcp --dport 22 -j DROP",
                .rule_certain = false};
  e.rule_chain = "INPUT";
  e.undecided_says = "-m recent";
  e.blocker_tool = "-";
  e.remedy_says = "-D INPUT -s " + c.client4 + "/32 -p tcp -m tcp --dport 22 -j DROP";
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 22, 3), e);
}

Scenario remote(Scenario scenario) {
  scenario.remote_only = kFrontEndRemoteOnly;
  return scenario;
}

}  // namespace

const std::vector<Scenario>& frontend_scenarios() {
  static const std::vector<Scenario> all = {
      remote({"f2b-iptables-multiport", "fail2ban's iptables-multiport (Debian 12's default banaction) bans the client",
              [](Lab& lab) { fail2ban_banaction(lab, "iptables-multiport", f2b_chain_rule); }}),
      remote({"f2b-iptables-allports", "fail2ban's iptables-allports bans the client",
              [](Lab& lab) { fail2ban_banaction(lab, "iptables-allports", f2b_chain_rule); }}),
      remote({"f2b-nftables-allports", "fail2ban's nftables-allports bans the client",
              [](Lab& lab) {
                fail2ban_banaction(lab, "nftables-allports", [&](Expectation& e, const ClientSide&) {
                  f2b_nft_set_rule(lab, e, std::string("meta l4proto tcp ip saddr @addr-set-") + kJail +
                                     " reject with icmp port-unreachable");
                });
              }}),
      remote({"f2b-nftables-multiport", "fail2ban's nftables-multiport bans the client",
              [](Lab& lab) {
                fail2ban_banaction(lab, "nftables-multiport", [&](Expectation& e, const ClientSide&) {
                  f2b_nft_set_rule(lab, e, std::string("tcp dport 22 ip saddr @addr-set-") + kJail +
                                     " reject with icmp port-unreachable");
                });
              }}),
      remote({"f2b-iptables-ipset", "fail2ban's iptables-ipset bans the client in an ipset",
              [](Lab& lab) {
                fail2ban_banaction(lab, "iptables-ipset", [](Expectation& e, const ClientSide&) {
                  e.rule_backend = "iptables-nft";
                  e.rule_chain = "INPUT";
                  e.rule_says = std::string("-m set --match-set f2b-") + kJail +
                                " src -j REJECT --reject-with icmp-port-unreachable";
                });
              },
              {"ipset"}}),
      remote({"ufw-deny", "ufw denies the client before allowing port 22: its user rule and number", ufw_deny, {"ufw"}}),
      remote({"ct-state-invalid", "nft's `ct state invalid drop` takes a stray ACK", ct_state_invalid}),
      remote({"dnat-port", "port 2222 forwarded to 22 and dropped: the port the client dialled", dnat_port}),
      remote({"iptables-recent", "`-m recent` before the drop: an undecidable match, the rule probable", iptables_recent}),
  };
  return all;
}

}  // namespace rsttrace::lab
