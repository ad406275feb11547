// One scenario of the lab: it builds its namespaces, starts the tracer, plays
// the cause (sshd config, wrappers, firewall, clients) and states what
// rsttrace must report.
//
// The lab API. Each scenario runs once per userland and client placement
// (`rsttrace selftest --userland ... --clients ...`); it must not assume either:
//   Namespace& ns = lab.ns("a");               // a server namespace
//   const ClientSide& c = lab.client_side(ns); // where its clients run, and their addresses
//   lab.start_tracer();                        // with --netns <first server ns> under remote-netns
//   Sshd sshd(ns, lab.dir(), {.hosts_deny = "sshd: " + c.client4 + "\n"});
//   sshd.run_checked({"nft", ...});            // the userland's own firewall tool, in sshd's root
//   lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 22), {.remote_addr = c.client4, ...});
// - lab.userland(): Debian12 (the host's sshd, fail2ban, nft, iptables) or
//   Debian13 (those of the cached trixie root, selftest/userland.h, chrooted in
//   an overlay: the root's own /etc, written per scenario, the cache untouched).
//   Sshd and Fail2ban start the right ones by themselves; the process names
//   differ (Debian 13: sshd-session, sshd-auth): do not match on "sshd" alone
//   where a child's name matters.
// - lab.placement(): Loopback (client in the server's namespace, 127.0.0.2 ->
//   127.0.0.1, fd00:5eed::2 -> ::1), Remote (client in a namespace of its own
//   over a veth pair: 10.77.0.2 -> 10.77.0.1, fd00:5eed:1::2 -> ::1; 10.77.0.3
//   is a second client address), or RemoteNetns (Remote, and the tracer
//   watches only the first server namespace: expectations in any other
//   namespace become "nothing reported").
//   Take every client address and namespace from client_side(); the kServer4 /
//   kClient4 constants are the loopback ones only.
// - Scenario::needs: the tools the scenario runs from the userland; a userland
//   without one gets a "skip" row with the reason.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attribute/verdict.h"
#include "selftest/lab.h"

namespace rsttrace::lab {

struct Expectation {
  std::optional<Verdict> verdict;  // none: rsttrace must report nothing in this namespace
  std::string remote_addr;
  uint16_t remote_port = kClientPort;
  uint16_t local_port = 22;
  std::optional<std::string> peer_saw;
  std::string detail_says;  // a phrase the detail must contain
  std::string client_says;  // a phrase the client must have printed
  std::string rule_backend; // firewall: the backend of the rule rsttrace must name
  std::string rule_says;    // ... and a phrase of its text
  std::optional<bool> rule_certain;  // ... and, when set, its certainty
  int wrapper_line = 0;     // tcp-wrappers: the hosts.deny line that must be named
  // What `rsttrace explain` must predict before the client connects: "" the
  // expected verdict (or "allowed" when none is expected); "allowed" for a
  // block that only what the client does after connecting causes.
  std::string explain_says;
  // Firewall front-ends (issue 16, scenarios_frontends.cpp): checked when set.
  std::string blocker_tool;                // `blocker.tool` ("fail2ban", "ufw"); "-": blocker must be null
  std::string blocker_name;                // `blocker.name` (the jail, ufw's chain)
  std::optional<int> blocker_rule_number;  // `blocker.rule_number` (ufw's number); 0: null
  std::string remedy_says;                 // a phrase of the remedy's commands, joined by " ; "
  std::string rule_chain;                  // `rule.chain`
  std::string undecided_says;              // a phrase of `rule.undecided`
  std::optional<uint16_t> original_port;   // `original_dst.port` (DNAT)
  std::string tcp_flags;                   // `tcp_flags` of the event
  // Issue 16: the later drops folded into the line, at least; the rule a
  // client end's `netfilter_reset` must name ("" unchecked); false: an
  // expectation on a client's own end, where explain is not run.
  int min_folded_drops = 0;
  int packets = 0;  // the line's packets, exactly (0: unchecked): a kernel counter's count
  std::string netfilter_reset_rule_says;
  bool explained = true;
};

struct Check {
  std::string where;  // namespace tag
  uint32_t netns = 0;
  Expectation expected;
  nlohmann::ordered_json event;  // null if none
  std::string client_output;
  std::string ruleset;  // `nft -a list ruleset` of the namespace, to check handles against
  std::string explain;  // the verdict `rsttrace explain` predicted before the client connected, "" not run
  std::vector<std::string> problems;
};

// Where a server namespace's clients run, and the addresses they use.
struct ClientSide {
  const Namespace& ns;  // the server's own namespace on loopback
  std::string server4, client4, other_client4;
  std::string server6, client6;
};

struct LabConfig {
  bool verbose = false;
  UserlandRoot userland;
  Placement placement = Placement::Loopback;
};

// What a scenario uses: namespaces, the tracer, the checks.
class Lab {
 public:
  explicit Lab(LabConfig config) : config_(std::move(config)) {}
  ~Lab();

  const WorkDir& dir() const { return dir_; }
  Userland userland() const { return config_.userland.userland; }
  Placement placement() const { return config_.placement; }
  // A server namespace (created on first use, with its client namespace
  // and veth pair when the clients are remote).
  Namespace& ns(const std::string& tag);
  const ClientSide& client_side(const Namespace& server);
  // Starts `rsttrace --json` on these ports and waits for its ready file.
  void start_tracer(const std::vector<uint16_t>& ports = {22});
  // Waits for rsttrace's report of the client's connection and checks it.
  void expect(const Namespace& ns, const Result& client, const Expectation& expectation);
  void stop_tracer();

  const std::vector<Check>& checks() const { return checks_; }
  std::string tracer_log() const;
  // The tracer's event lines so far.
  std::vector<nlohmann::ordered_json> events() const;

 private:

  LabConfig config_;
  WorkDir dir_;
  struct Server {
    std::string tag;
    std::unique_ptr<Namespace> ns;
    std::unique_ptr<Namespace> client_ns;  // remote placements only
    std::unique_ptr<ClientSide> clients;
  };
  std::vector<Server> namespaces_;
  uint32_t traced_netns_ = 0;  // the tracer's --netns, 0: all
  std::unique_ptr<Child> tracer_;
  std::vector<Check> checks_;
};

struct Scenario {
  std::string name;
  std::string summary;
  std::function<void(Lab&)> play;
  std::vector<std::string> needs = {};  // programs it runs from the userland beyond sshd, fail2ban, nft and iptables
  // Non-empty: the scenario runs with remote clients only, and its loopback row is
  // a skip that gives this reason (a front-end whose block only a remote client
  // meets as users meet it; also keeps the lab within CI's time).
  std::string remote_only = {};
};

const std::vector<Scenario>& scenarios();
// sshd's own refusals and TCP wrappers options (scenarios_sshd.cpp), part of scenarios().
const std::vector<Scenario>& sshd_scenarios();

// firewalld's blocks (scenarios_firewalld.cpp), part of scenarios().
const std::vector<Scenario>& firewalld_scenarios();
// Issue 16's established-connection and client-view scenarios (scenarios_established.cpp), part of scenarios().
const std::vector<Scenario>& established_scenarios();

// Issue 15's kernel scenarios (scenarios_kernel.cpp), and a list with them appended.
const std::vector<Scenario>& kernel_scenarios();
std::vector<Scenario> with_kernel_scenarios(const std::vector<Scenario>& scenarios);
// Issue 16's sshguard backends (scenarios_sshguard.cpp), part of scenarios().
const std::vector<Scenario>& sshguard_scenarios();

// Issue 16's firewall front-ends (scenarios_frontends.cpp), part of scenarios().
const std::vector<Scenario>& frontend_scenarios();

}  // namespace rsttrace::lab
