// Issue 16's sshguard scenarios: the userland's real sshguard, in the lab
// sshd's mount and network namespaces and root, reads that sshd's log and
// bans the remote client with one of its backends (nft sets, an iptables
// chain, ipsets), which write the block in the lab's namespace only. The
// client is then refused; rsttrace must name the rule, sshguard as its
// blocker and the command that lifts it, and that command, run, must lift it.
#include <signal.h>

#include <chrono>
#include <functional>

#include "error.h"
#include "selftest/scenario.h"

namespace rsttrace::lab {
namespace {

// sshguard's backends and how the scenario wires each (sshguard-setup(7)).
enum class Backend { NftSets, Iptables, Ipset };

const char* backend_program(Backend backend) {
  switch (backend) {
    case Backend::NftSets: return "sshg-fw-nft-sets";
    case Backend::Iptables: return "sshg-fw-iptables";
    case Backend::Ipset: return "sshg-fw-ipset";
  }
  return "";
}

// Polls `done` until it holds or `limit` (scaled) passes.
void wait_for(const std::function<bool()>& done, std::chrono::seconds limit, const std::string& what,
              const std::function<std::string()>& why) {
  const auto scaled_limit = scaled(limit);
  const auto deadline = std::chrono::steady_clock::now() + scaled_limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline)
      throw failed("wait for", what, "not within " + std::to_string(scaled_limit.count()) + " s: " + why());
    sleep_checked(std::chrono::milliseconds(50));
  }
}

// The userland's /usr/sbin/sshguard (a shell script that pipes a log reader
// into sshg-parser, sshg-blocker and the backend), started in sshd's mount
// namespace: it reads only /etc/sshguard/sshguard.conf, so that file is the
// lab's own there (sshd's /etc is a copy-on-write overlay on both userlands).
class Sshguard {
 public:
  // `subnet`: IPV4_SUBNET, the prefix length sshguard blocks (32: the address alone).
  Sshguard(const Sshd& sshd, const WorkDir& dir, Backend backend, int subnet) {
    // THRESHOLD 10: one failed login ("Invalid user": danger 10) bans.
    // The reader starts at the log's first line: nothing is missed before
    // sshguard's tail opens it, and sshd logs no attack before the client's.
    dir.write("sshguard.conf",
              "BACKEND=\"/usr/libexec/sshguard/" + std::string(backend_program(backend)) +
                  "\"\n"
                  "LOGREADER=\"tail -n +1 -F " + sshd.log_path() + "\"\n"
                  "THRESHOLD=10\nBLOCK_TIME=120\nDETECTION_TIME=1800\nIPV4_SUBNET=" + std::to_string(subnet) + "\n",
              0644);
    const std::string script = "set -e\nmkdir -p /etc/sshguard\ncat \"$1\" > /etc/sshguard/sshguard.conf\n"
                               "exec /usr/sbin/sshguard\n";
    process_ = std::make_unique<Child>(
        sshd.userland_exec({"sh", "-c", script, "sshguard-lab", dir.file("sshguard.conf")}), dir.file("sshguard"));
  }
  ~Sshguard() {
    // Its backends undo their init on SIGTERM (the nft backend deletes its tables).
    if (process_->running()) process_->signal(SIGTERM);
    process_->wait(std::chrono::seconds(5), Wait::ToTheEnd);
  }
  bool running() const { return process_->running(); }
  std::string log() const { return process_->err(); }

 private:
  std::unique_ptr<Child> process_;
};

// The block as it is lifted: each remedy command of the event, pasted into a root shell of the namespace.
void lift_with_remedy(Lab& lab, const Sshd& sshd, const ClientSide& c) {
  const auto& event = lab.checks().back().event;
  if (!event.is_object() || !event["remedy"].is_array() || event["remedy"].empty())
    throw failed("lift", "sshguard's block", "the event gave no remedy");
  for (const auto& command : event["remedy"]) sshd.run_checked({"sh", "-c", command.get<std::string>()});
  // The client is let in again: sshd answers it (and sshguard, which still counts it
  // as blocked, does not block it twice).
  c.ns.set_client_ports(40200, 40299);
  const Result again = ssh_client(c.ns, c.client4, c.server4, 22, 5);
  c.ns.set_client_ports(kClientPort, kClientPort);
  if ((again.out + again.err).find("Permission denied") == std::string::npos)
    throw failed("lift", "sshguard's block with the remedy",
                 "the client then printed \"" + (again.err + again.out).substr(0, 200) + "\"");
}

// `subnet` 24: sshguard blocks the client's whole /24 (IPV4_SUBNET=24), and the remedy must delete that.
void sshguard_ban(Lab& lab, Backend backend, int subnet = 32) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {});
  if (backend == Backend::Iptables)  // sshguard-setup(7): its chain, jumped to from INPUT for the ports it guards
    for (const auto& rule : std::vector<std::vector<std::string>>{
             {"iptables", "-N", "sshguard"},
             {"iptables", "-A", "INPUT", "-m", "multiport", "-p", "tcp", "--destination-ports", "21,22,110,143", "-j",
              "sshguard"}})
      sshd.run_checked(rule);
  Sshguard sshguard(sshd, lab.dir(), backend, subnet);
  auto sshguard_state = [&] { return sshguard.log() + " (sshguard " + (sshguard.running() ? "running" : "exited") + ")"; };
  if (backend == Backend::Ipset) {
    // sshguard-setup(7): "iptables -I INPUT -m set --match-set sshguard4 src -j DROP", once sshguard made its set.
    wait_for([&] { return sshd.run({"ipset", "list", "-n"}).out.find("sshguard4") != std::string::npos; },
             std::chrono::seconds(15), "sshguard's ipset sshguard4", sshguard_state);
    sshd.run_checked({"iptables", "-I", "INPUT", "-m", "set", "--match-set", "sshguard4", "src", "-j", "DROP"});
  }
  // One failed login (an unknown user) from the client.
  c.ns.set_client_ports(40100, 40199);
  ssh_client(c.ns, c.client4, c.server4, 22);
  c.ns.set_client_ports(kClientPort, kClientPort);
  const std::vector<std::string> listing =
      backend == Backend::NftSets    ? std::vector<std::string>{"nft", "list", "set", "ip", "sshguard", "attackers"}
      : backend == Backend::Iptables ? std::vector<std::string>{"iptables", "-S", "sshguard"}
                                     : std::vector<std::string>{"ipset", "list", "sshguard4"};
  // What the backend lists: the address, or its /24 (the client's last octet zeroed).
  const std::string blocked = subnet == 32 ? c.client4 : c.client4.substr(0, c.client4.rfind('.')) + ".0/24";
  wait_for([&] { return sshd.run(listing).out.find(blocked) != std::string::npos; }, std::chrono::seconds(15),
           "sshguard to block " + blocked, sshguard_state);

  Expectation expected{.verdict = Verdict::Firewall, .remote_addr = c.client4, .peer_saw = "silence",
                       .detail_says = "DROP", .client_says = "timed out", .blocker_tool = "sshguard"};
  const std::string address = subnet == 32 ? c.client4 : blocked;
  switch (backend) {
    case Backend::NftSets:
      expected.rule_backend = "nftables";
      // Debian 13's nft writes a set the host's (Debian 12) nft crashes on: the rule is read over netlink,
      // its expressions decoded: certain on both.
      expected.rule_says = "ip saddr @attackers drop";
      expected.rule_chain = "blacklist";
      expected.rule_certain = true;
      expected.blocker_name = "table sshguard";
      expected.remedy_says = "nft delete element ip sshguard attackers '{ " + address + " }'";
      break;
    case Backend::Iptables:
      expected.rule_backend = "iptables-nft";
      expected.rule_says = "-A sshguard -s " + (subnet == 32 ? address + "/32" : address) + " -j DROP";
      expected.rule_chain = "sshguard";
      expected.rule_certain = true;  // the source address, through INPUT's multiport jump
      expected.blocker_name = "sshguard";
      expected.remedy_says = "iptables-nft -t filter -D sshguard -s " + (subnet == 32 ? address + "/32" : address) + " -j DROP";
      break;
    case Backend::Ipset:
      expected.rule_backend = "iptables-nft";
      expected.rule_says = "-A INPUT -m set --match-set sshguard4 src -j DROP";
      expected.rule_chain = "INPUT";
      expected.rule_certain = true;  // the set's membership, tested in the lab's namespace
      expected.blocker_name = "sshguard4";
      expected.remedy_says = "ipset del sshguard4 " + address;
      break;
  }
  expected.blocker_rule_number = 0;  // null: sshguard numbers nothing
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 22, 3), expected);
  lift_with_remedy(lab, sshd, c);
}

// sshg-blocker never blocks 127.0.0.0/8 or ::1 (it whitelists localhost itself).
const char* const kSshguardRemoteOnly = "sshguard never blocks loopback addresses (it whitelists 127.0.0.0/8 and ::1)";

}  // namespace

const std::vector<Scenario>& sshguard_scenarios() {
  static const std::vector<Scenario> all = {
      {"sshguard-nft-sets", "sshguard bans the client with its nftables backend (table sshguard, set attackers)",
       [](Lab& lab) { sshguard_ban(lab, Backend::NftSets); }, {"sshguard"}, kSshguardRemoteOnly},
      {"sshguard-iptables", "sshguard bans the client with its iptables backend (its chain sshguard, jumped to from INPUT)",
       [](Lab& lab) { sshguard_ban(lab, Backend::Iptables); }, {"sshguard"}, kSshguardRemoteOnly},
      {"sshguard-ipset", "sshguard bans the client with its ipset backend (set sshguard4, matched by an iptables rule)",
       [](Lab& lab) { sshguard_ban(lab, Backend::Ipset); }, {"sshguard", "ipset"}, kSshguardRemoteOnly},
      {"sshguard-nft-subnet",
       "sshguard bans the client's whole /24 (IPV4_SUBNET=24) with its nftables backend: the remedy deletes that element",
       [](Lab& lab) { sshguard_ban(lab, Backend::NftSets, 24); }, {"sshguard"}, kSshguardRemoteOnly},
  };
  return all;
}

}  // namespace rsttrace::lab
