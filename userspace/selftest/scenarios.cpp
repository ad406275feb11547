// The scenario lab: each cause of "Connection reset by peer" on port 22,
// played for real (OpenSSH sshd with libwrap, ssh, iptables, nft) inside
// throwaway namespaces, with the report rsttrace must give for it.
#include <signal.h>

#include "selftest/scenario.h"

namespace rsttrace::lab {
namespace {

std::string hosts_deny_client4(const ClientSide& c) { return "sshd: " + c.client4 + "\n"; }
std::string hosts_deny_client6(const ClientSide& c) { return "sshd: [" + c.client6 + "]\n"; }

Expectation wrappers(const std::string& client, uint16_t local_port = 22, int line = 1) {
  return {.verdict = Verdict::TcpWrappers, .remote_addr = client, .local_port = local_port, .peer_saw = "reset",
          .detail_says = "/etc/hosts.deny", .client_says = "Connection reset by peer", .wrapper_line = line};
}

// Only line 7 refuses the client (127.0.0.2, or 10.77.0.2 when remote): the
// others name other daemons, other networks, or except it.
std::string hosts_deny_lines(const ClientSide& c) {
  const std::string net = c.client4.substr(0, c.client4.rfind('.')) + ".0";
  return "# lab hosts.deny\n"
         "in.telnetd, vsftpd : ALL\n"
         "ALL EXCEPT sshd : " + c.client4 + "\n"
         "sshd : 192.168.0.0/255.255.0.0\n"
         "sshd : ALL EXCEPT " + net + "/255.255.255.0\n"
         "\n"
         "sshd, in.ftpd : " + net + "/255.255.255.248\n"
         "ALL : ALL\n";
}

Expectation rejected(const std::string& client) {
  return {.verdict = Verdict::Firewall, .remote_addr = client, .peer_saw = "reset", .detail_says = "REJECT",
          .client_says = "Connection refused", .rule_backend = "iptables-nft",
          .rule_says = "-A INPUT -p tcp -m tcp --dport 22 -j REJECT --reject-with tcp-reset"};
}

void hosts_deny(Lab& lab, bool ipv6) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  const std::string& client = ipv6 ? c.client6 : c.client4;
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {.hosts_deny = ipv6 ? hosts_deny_client6(c) : hosts_deny_client4(c)});
  lab.expect(ns, ssh_client(c.ns, client, ipv6 ? c.server6 : c.server4, 22), wrappers(client));
}

void iptables_reject(Lab& lab, bool ipv6) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  const std::string& client = ipv6 ? c.client6 : c.client4;
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {});
  sshd.run_checked({ipv6 ? "ip6tables" : "iptables", "-I", "INPUT", "-p", "tcp", "--dport", "22", "-j", "REJECT",
                    "--reject-with", "tcp-reset"});
  Expectation expected = rejected(client);
  // netfilter's own RST is no tracepoint event: only a client socket on this
  // host shows it (a reset received in SYN_SENT). A remote client's reset is
  // seen by the client alone (client_says), and the server's evidence is the
  // single SYN drop, so peer_saw stays unset there.
  if (lab.placement() != Placement::Loopback) expected.peer_saw.reset();
  lab.expect(ns, ssh_client(c.ns, client, ipv6 ? c.server6 : c.server4, 22), expected);
}

void nft_drop(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {});
  sshd.run_checked({"nft", "add table inet rsttrace_lab; "
                           "add chain inet rsttrace_lab input { type filter hook input priority 0; }; "
                           "add rule inet rsttrace_lab input tcp dport 22 drop"});
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 22, 3),
             {.verdict = Verdict::Firewall, .remote_addr = c.client4, .peer_saw = "silence", .detail_says = "DROP",
              .client_says = "timed out", .rule_backend = "nftables", .rule_says = "tcp dport 22 drop"});
}

void iptables_legacy_drop(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {});
  sshd.run_checked({"iptables-legacy", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-s", c.client4, "-j", "DROP"});
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 22, 3),
             {.verdict = Verdict::Firewall, .remote_addr = c.client4, .peer_saw = "silence", .client_says = "timed out",
              .rule_backend = "iptables-legacy",
              .rule_says = "-A INPUT -s " + c.client4 + "/32 -p tcp -m tcp --dport 22 -j DROP"});
}

void max_startups(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  // Not the default, so the detail proves it quotes this sshd's own (sshd -T; the listener's title has
  // no rate): full at 1, so one held connection is enough, and the expectation is exact.
  Sshd sshd(ns, lab.dir(), {.config = {"MaxStartups 1:30:1"}});
  // One unauthenticated connection reaches MaxStartups' start ...
  auto holder = start_raw_client(c.ns, lab.dir(), "holder",
                                 {"--connect", c.server4, "--bind", c.other_client4, "--bind-port", "40100", "--hold", "60"});
  ns.wait_socket("established", "sport = :22", "sshd", "the held connection in an sshd child");
  sshd.wait_startups(1);
  // ... so the listener drops the next one itself.
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 22),
             {.verdict = Verdict::Sshd, .remote_addr = c.client4, .peer_saw = "reset",
              .detail_says = "MaxStartups refused it: 1 other connection it had accepted was open against MaxStartups "
                             "1:30:1 (sshd -T): full",
              .client_says = "kex_exchange_identification"});
}

// sshd in a fresh namespace, and a raw client from client4:kClientPort doing `actions`.
void raw_client_against_sshd(Lab& lab, const std::string& tag, const std::vector<std::string>& actions,
                             Expectation expected) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {});
  std::vector<std::string> args{"--connect", c.server4, "--bind", c.client4, "--bind-port", std::to_string(kClientPort)};
  args.insert(args.end(), actions.begin(), actions.end());
  auto client = start_raw_client(c.ns, lab.dir(), tag, args);
  expected.remote_addr = c.client4;
  lab.expect(ns, client->wait(std::chrono::seconds(20)), expected);
}

void garbage_banner(Lab& lab) {
  raw_client_against_sshd(lab, "garbage", {"--read-first", "--send", "GET / HTTP/1.0\\r\\n\\r\\nHost: x\\r\\n\\r\\n", "--hold", "10"},
                          {.verdict = Verdict::Sshd, .peer_saw = "reset", .detail_says = "garbage banner",
                           .explain_says = "allowed"});
}

void no_sshd(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 22),
             {.verdict = Verdict::NoListener, .remote_addr = c.client4, .peer_saw = "reset", .detail_says = "nothing listens",
              .client_says = "Connection refused"});
}

void peer_abort(Lab& lab) {
  // On loopback the client's own abort is seen too; a remote client's reset
  // is seen arriving only.
  const bool local_client = lab.placement() == Placement::Loopback;
  raw_client_against_sshd(lab, "abort", {"--read-first", "--linger0"},
                          {.verdict = Verdict::Peer, .detail_says = local_client ? "aborted" : "sent a reset to",
                           .client_says = "aborted with a reset", .explain_says = "allowed"});
}

void custom_port(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer({22, 2222});
  Sshd sshd(ns, lab.dir(), {.port = 2222, .hosts_deny = hosts_deny_client4(c)});
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 2222), wrappers(c.client4, 2222));
}

void unwatched_port(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer({22});
  Sshd sshd(ns, lab.dir(), {.port = 2223, .hosts_deny = hosts_deny_client4(c)});
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 2223),
             {.remote_addr = c.client4, .local_port = 2223, .client_says = "Connection reset by peer",
              .explain_says = "tcp-wrappers"});
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 2224),
             {.remote_addr = c.client4, .local_port = 2224, .client_says = "Connection refused",
              .explain_says = "no-listener"});
}

void failed_login(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {});
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 22),
             {.remote_addr = c.client4, .client_says = "Permission denied"});
}

// Two failed logins from the client make fail2ban ban it; the next attempt is refused.
void fail2ban_ban(Lab& lab, const std::string& action, Expectation expected, const std::string& jail = "sshd-lab") {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {});
  Fail2ban fail2ban(ns, lab.dir(), sshd, jail, action);
  c.ns.set_client_ports(40100, 40199);  // the failed logins leave their ports in TIME_WAIT
  for (int attempt = 0; attempt < 2; ++attempt) ssh_client(c.ns, c.client4, c.server4, 22);
  fail2ban.wait_banned(c.client4, [&] {
    if (action == "hostsdeny")  // the line in sshd's own view of /etc/hosts.deny
      return read_file("/proc/" + std::to_string(sshd.pid()) + "/root/etc/hosts.deny").find(c.client4) != std::string::npos;
    // With the userland's own nft: the host's may not read what a newer nft wrote.
    return sshd.run({"nft", "list", "set", "inet", "f2b-table", "addr-set-" + jail}).out.find(c.client4) != std::string::npos;
  });
  c.ns.set_client_ports(kClientPort, kClientPort);
  expected.remote_addr = c.client4;
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 22), expected);
}

void two_namespaces(Lab& lab) {
  Namespace& a = lab.ns("a");
  Namespace& b = lab.ns("b");
  const ClientSide& ca = lab.client_side(a);
  const ClientSide& cb = lab.client_side(b);
  lab.start_tracer();
  Sshd sshd(a, lab.dir(), {.hosts_deny = hosts_deny_client4(ca)});
  Result denied = ssh_client(ca.ns, ca.client4, ca.server4, 22);
  Result refused = ssh_client(cb.ns, cb.client4, cb.server4, 22);
  lab.expect(a, denied, wrappers(ca.client4));
  lab.expect(b, refused, {.verdict = Verdict::NoListener, .remote_addr = cb.client4, .peer_saw = "reset",
                          .client_says = "Connection refused"});
}

}  // namespace

const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> all = {
      {"hosts-deny", "sshd's libwrap refuses the client listed in /etc/hosts.deny",
       [](Lab& lab) { hosts_deny(lab, false); }},
      {"hosts-deny-lines", "a hosts.deny of several lines: the one that refused is named",
       [](Lab& lab) {
         Namespace& ns = lab.ns("a");
         const ClientSide& c = lab.client_side(ns);
         lab.start_tracer();
         Sshd sshd(ns, lab.dir(), {.hosts_allow = "sshd : 172.16.0.0/255.240.0.0\n", .hosts_deny = hosts_deny_lines(c)});
         lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 22), wrappers(c.client4, 22, 7));
       }},
      {"iptables-reject", "iptables REJECT --reject-with tcp-reset on port 22",
       [](Lab& lab) { iptables_reject(lab, false); }},
      {"nft-drop", "an nftables rule drops SYNs to port 22; the client times out", nft_drop},
      {"iptables-legacy-drop", "an iptables-legacy rule drops the client's SYNs", iptables_legacy_drop,
       {"iptables-legacy"}},
      {"maxstartups", "sshd's MaxStartups is full; the listener drops the next connection", max_startups},
      {"garbage-banner", "a client sends an HTTP request instead of an SSH banner", garbage_banner},
      {"no-sshd", "nothing listens on port 22", no_sshd},
      {"peer-abort", "the client aborts with a reset after the server's banner", peer_abort},
      {"hosts-deny-ipv6", "the hosts.deny refusal over IPv6",
       [](Lab& lab) { hosts_deny(lab, true); }},
      {"iptables-reject-ipv6", "the ip6tables REJECT over IPv6",
       [](Lab& lab) { iptables_reject(lab, true); }},
      {"custom-port", "sshd on port 2222, watched with --port 2222, refused by hosts.deny", custom_port},
      {"unwatched-port", "resets on ports rsttrace does not watch produce nothing", unwatched_port},
      {"two-namespaces", "two namespaces at once, each with its own cause and netns", two_namespaces},
      {"fail2ban-hostsdeny", "fail2ban bans the client with its hostsdeny action",
       [](Lab& lab) {
         Expectation e = wrappers("");
         e.detail_says = "fail2ban jail sshd-lab";
         fail2ban_ban(lab, "hostsdeny", e);
       }},
      {"fail2ban-long-jail",
       "a jail name longer than a thread name, fail2ban in the lab's mount namespace: named by its prefix only "
       "(fail2ban is asked only at its fixed socket in rsttrace's own namespace)",
       [](Lab& lab) {
         Expectation e = wrappers("");
         e.detail_says = "a fail2ban jail whose name starts with sshd-aggr: fail2ban was not asked";
         fail2ban_ban(lab, "hostsdeny", e, "sshd-aggressive-lab");
       }},
      {"fail2ban-nftables", "fail2ban bans the client with its nftables action",
       [](Lab& lab) {
         Expectation expected{.verdict = Verdict::Firewall, .detail_says = "fail2ban jail sshd-lab",
                              .client_says = "Connection refused", .rule_backend = "nftables",
                              .rule_says = "@addr-set-sshd-lab"};
         // Debian 13's nft writes a set the host's (Debian 12) nft crashes on: the rule is read over netlink,
         // its expressions decoded: certain as on Debian 12.
         if (lab.userland() == Userland::Debian13)
           expected.detail_says = "@addr-set-sshd-lab reject with icmp port-unreachable (read over netlink: this "
                                  "host's nft crashed reading the namespace's ruleset (SIGSEGV): written by a newer "
                                  "nft?) (fail2ban jail sshd-lab)";
         fail2ban_ban(lab, "nftables-multiport", expected);
       }},
      {"failed-login", "an ordinary failed login (no key): no reset, nothing to report", failed_login},
  };
  static const std::vector<Scenario> everything = [] {
    std::vector<Scenario> list = with_kernel_scenarios(all);  // scenarios_kernel.cpp
    const auto& more = sshd_scenarios();                      // scenarios_sshd.cpp
    list.insert(list.end(), more.begin(), more.end());
    const auto& sshguard = sshguard_scenarios();  // scenarios_sshguard.cpp
    list.insert(list.end(), sshguard.begin(), sshguard.end());
    const auto& frontends = frontend_scenarios();             // scenarios_frontends.cpp
    list.insert(list.end(), frontends.begin(), frontends.end());
    const auto& firewalld = firewalld_scenarios();            // scenarios_firewalld.cpp
    list.insert(list.end(), firewalld.begin(), firewalld.end());
    const auto& established = established_scenarios();  // scenarios_established.cpp
    list.insert(list.end(), established.begin(), established.end());
    return list;
  }();
  return everything;
}

}  // namespace rsttrace::lab
