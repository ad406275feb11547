// `rsttrace explain`'s judgement: from what was read of a namespace (its
// route back to the client, rulesets, listening sockets, the listener's
// hosts files, title and sshd -T, fail2ban's bans) to the steps a new connection from
// the client would take, in the kernel's order, and the verdict a live trace
// would give. Pure: the reads are in explain/probe.h. Unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attribute/attribution.h"
#include "attribute/remedy.h"
#include "attribute/sshd_limits.h"
#include "explain/address.h"
#include "explain/sshd_log.h"
#include "provenance/hosts_access.h"

namespace rsttrace::explain {

struct RoutingFacts {
  bool known = false;           // the route lookup answered
  std::string error;            // else why not
  std::string route_type;       // "unicast", "local", "unreachable", "blackhole", "prohibit", ...
  std::string reply_interface;  // the interface a reply to the client leaves by
  std::string local_address;    // the source address the kernel picks to answer the client
  int rp_filter_all = -1, rp_filter_interface = -1;  // -1: not read
};

// One process holding a listening socket.
struct ListenerProcess {
  uint32_t pid = 0;
  std::string comm;   // untrusted: the process names itself
  std::string title;  // its command line as it now reads (setproctitle): untrusted
  std::string exe;    // basename of /proc/PID/exe ("sshd"), "" unknown
  // libwrap: "yes" in its maps or its session binary's, "no", or "" unknown (then assumed).
  std::string libwrap;
  std::string libwrap_evidence;
};

struct ListenerFacts {
  bool read = false;       // the namespace's sockets were read
  std::string error;       // else why not
  bool listening = false;  // a socket listens on the port, on an address the SYN is for
  std::string bound;       // "0.0.0.0:22", "[::]:22"
  uint32_t accept_queue = 0;  // connections waiting to be accepted now
  std::optional<uint32_t> backlog;  // listen()'s backlog (sock_diag); unknown from /proc/net/tcp
  std::string sockets_source;       // "sock_diag" or "/proc/net/tcp" (then why sock_diag was not)
  std::vector<ListenerProcess> processes;  // who holds it (several after fork, or a reuseport group)
};

// OpenSSH's listener title: "[listener] N of S-F startups" (or S-R-F).
struct Startups {
  uint32_t current = 0, start = 0, full = 0;
  std::optional<uint32_t> rate;
};
std::optional<Startups> parse_listener_title(const std::string& title);

struct BanFacts {
  bool asked = false;               // fail2ban answered at its fixed socket
  std::string note;                 // else why not
  std::vector<std::string> jails;   // jails that ban the address now (untrusted names)
  std::vector<std::string> time_left;  // per jail: "8 min 20 s (until 2026-11-30 16:10:00)", "" unknown
};

// The ban of `address` in `get JAIL banip --with-time`'s answer ("ADDR \tSTART + SECONDS = END",
// local times) as the time left at `now`: "8 min 20 s (until END)", or nullopt.
std::optional<std::string> ban_time_left(const std::string& answer, const std::string& address, int64_t now_unix);

// sshd's log, for its PerSourcePenalties (explain/sshd_log.h).
struct SshdLogFacts {
  bool read = false;
  std::string source;  // what was read: "/proc/812/root/var/log/auth.log (last 1 MiB)", ...
  std::string note;    // when nothing was read: why
  size_t lines = 0, penalty_lines = 0;
  PenaltyVerdict penalty;
};

struct Facts {
  ClientAddress client;
  uint16_t port = 22;
  uint32_t netns = 0;
  std::string server_address;  // the address the SYN is assumed to be for
  RoutingFacts routing;
  bool firewall_read = false;            // the rulesets were read
  std::vector<std::string> hooks;        // the hooks walked ("output" too for a client of this namespace)
  std::optional<FirewallRule> rule;      // the first rule that drops or rejects the SYN
  std::vector<std::string> firewall_notes;
  ListenerFacts listener;
  std::optional<AccessDecision> wrappers;  // libwrap's answer with the listener's root's files
  std::string wrappers_note;               // why it was not asked, or assumed
  BanFacts bans;
  SshdLogFacts sshd_log;
  // The listening sshd's MaxStartups and PerSourcePenalties from its `sshd -T`
  // (the collector's broker call: provenance/provenance.h), or why not; none
  // when the listener is not sshd.
  std::optional<SshdLimitsSource> sshd_settings;
};

struct Step {
  std::string name;     // "routing", "firewall", "listener", "sshd", "tcp-wrappers", "bans"
  std::string result;   // "pass" | "block" | "unknown" | "skip" | "info"
  bool certain = true;
  std::string detail;   // escaped, printable
};

struct Explanation {
  std::vector<Step> steps;
  bool allowed = true;
  bool certain = true;
  Attribution attribution;  // verdict, detail, rule, fail2ban_jail, wrapper_rule of the block
  std::string front_end;    // the tool behind the block: fail2ban, sshguard, ufw, firewalld, nftables, ...
  std::vector<std::string> remedy;
};

Explanation explain_facts(const Facts& facts);

// "allowed" or the verdict's name.
std::string verdict_text(const Explanation& explanation);

}  // namespace rsttrace::explain
