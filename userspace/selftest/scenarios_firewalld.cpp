// firewalld's blocks (issue 16), played with the userland's real firewalld:
// its own system bus (a private dbus-daemon, its socket in a root-only
// directory of the lab), firewalld in sshd's network and mount namespaces
// (and root), so its /etc/firewalld is the lab's copy-on-write /etc, its /run
// sshd's private tmpfs, and its rules the lab namespace's. The host's
// /etc/firewalld is checked to be untouched after each scenario.
#include <unistd.h>

#include <functional>

#include "error.h"
#include "selftest/scenario.h"

namespace rsttrace::lab {
namespace {

// Names, sizes, times and contents of the host's /etc/firewalld (and whether
// /var/lib/firewalld exists: firewalld 1.3 does not make it).
std::string host_firewalld_state(const WorkDir& dir) {
  return lab::run({"sh", "-c",
                   "find /etc/firewalld -printf '%p %s %T@ %m\\n' 2>&1 | sort; "
                   "find /etc/firewalld -type f -exec sha256sum {} + 2>&1 | sort; ls -d /var/lib/firewalld 2>&1"},
                  dir.file("firewalld-host-state"))
      .out;
}

// firewall-cmd lists nothing as an empty line.
bool blank(const std::string& text) { return text.find_first_not_of(" \n") == std::string::npos; }

class Firewalld {
 public:
  Firewalld(const WorkDir& dir, const Sshd& sshd)
      : sshd_(sshd), dir_(dir), bus_("DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + dir.file("bus/socket")),
        host_before_(host_firewalld_state(dir)) {
    lab::run_checked({"mkdir", "-m", "0700", dir.file("bus")}, dir.file("bus-mkdir"));
    // A system bus of the lab's own: root alone reaches its socket; firewalld owns its name there.
    dir.write("bus.conf",
              "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
              " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
              "<busconfig>\n  <type>system</type>\n  <listen>unix:path=" + dir.file("bus/socket") +
                  "</listen>\n  <auth>EXTERNAL</auth>\n"
                  "  <policy context=\"default\">\n    <allow user=\"root\"/>\n    <allow own=\"*\"/>\n"
                  "    <allow send_destination=\"*\"/>\n    <allow receive_sender=\"*\"/>\n  </policy>\n</busconfig>\n",
              0644);
    const auto started = std::chrono::steady_clock::now();
    bus_daemon_ = std::make_unique<Child>(
        sshd.userland_exec({"dbus-daemon", "--config-file=" + dir.file("bus.conf"), "--nofork", "--nopidfile"}),
        dir.file("dbus-daemon"));
    const auto limit = scaled(std::chrono::seconds(30));
    const auto deadline = started + limit;
    while (access(dir.file("bus/socket").c_str(), F_OK) != 0) {
      if (!bus_daemon_->running()) throw failed("start", "the lab's dbus-daemon", "it exited: " + bus_daemon_->err());
      if (std::chrono::steady_clock::now() >= deadline)
        throw failed("start", "the lab's dbus-daemon", "no socket after " + std::to_string(limit.count()) + " s");
      sleep_checked(std::chrono::milliseconds(20));
    }
    // The --nofork daemon, no pid file; logs on its stderr (the lab's file).
    daemon_ = std::make_unique<Child>(
        sshd.userland_exec({"env", bus_, "firewalld", "--nofork", "--nopid", "--log-target", "console"}),
        dir.file("firewalld"));
    for (;;) {
      if (!daemon_->running()) throw failed("start", "firewalld", "it exited: " + daemon_->err());
      const Result state = cmd({"--state"});
      if (state.exit_code == 0 && state.out.find("running") != std::string::npos) break;
      if (std::chrono::steady_clock::now() >= deadline)
        throw failed("start", "firewalld", "not running after " + std::to_string(limit.count()) + " s: " + state.err +
                                               daemon_->err());
      sleep_checked(std::chrono::milliseconds(50));
    }
    start_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }

  // firewall-cmd of the same userland, on the lab's bus.
  Result cmd(std::vector<std::string> args) const {
    args.insert(args.begin(), {"env", bus_, "firewall-cmd"});
    return sshd_.run(args);
  }
  void cmd_checked(const std::vector<std::string>& args) const {
    const Result result = cmd(args);
    if (result.exit_code != 0) throw failed("run", "firewall-cmd " + args.back(), result.err + result.out);
  }

  // Runs the remedy rsttrace gave, each line through a shell as an operator would paste it.
  void run_remedy(const nlohmann::ordered_json& remedy) const {
    if (!remedy.is_array() || remedy.empty()) throw failed("lift", "the block", "rsttrace gave no remedy");
    for (const auto& line : remedy) {
      const std::string command = line.is_string() ? line.get<std::string>() : "";
      if (command.rfind("firewall-cmd ", 0) != 0) throw failed("lift", "the block", "not a firewall-cmd line: " + line.dump());
      const Result result = sshd_.run({"env", bus_, "sh", "-c", command});
      if (result.exit_code != 0 || result.err.find("Warning") != std::string::npos)
        throw failed("run", "the remedy " + command, result.err + result.out);
    }
  }

  void check_host_untouched() const {
    if (host_firewalld_state(dir_) != host_before_)
      throw failed("keep", "the host's /etc/firewalld", "it changed while the lab's firewalld ran");
  }
  double start_seconds() const { return start_seconds_; }

 private:
  const Sshd& sshd_;
  const WorkDir& dir_;
  std::string bus_, host_before_;
  std::unique_ptr<Child> bus_daemon_, daemon_;
  double start_seconds_ = 0;
};

// sshd and firewalld in the lab; `block` makes firewalld refuse the client
// and says what rsttrace must report; the remedy rsttrace gives, run as
// given, must let the client in (and `check_lifted` agree).
void firewalld_block(Lab& lab, const std::function<Expectation(const Firewalld&, const ClientSide&)>& block,
                     int connect_timeout_s, const std::function<void(const Firewalld&)>& check_lifted) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {});
  Firewalld firewalld(lab.dir(), sshd);
  Expectation expected = block(firewalld, c);
  expected.remote_addr = c.client4;
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 22, connect_timeout_s), expected);
  const Check& check = lab.checks().back();
  if (!check.event.is_null() && check.problems.empty()) {
    firewalld.run_remedy(check.event["remedy"]);
    check_lifted(firewalld);
    const Result after = ssh_client(c.ns, c.client4, c.server4, 22);
    if (after.err.find("Permission denied") == std::string::npos)
      throw failed("lift", "the block with rsttrace's remedy", "the client then printed: " + after.err + after.out);
  }
  firewalld.check_host_untouched();
}

const char* kFirewalldRemoteOnly =
    "firewalld accepts whatever arrives on lo (`iifname \"lo\" accept` first in its input chain): its blocks are "
    "met by remote clients only";

const std::string kPolicy = "sshd_deny";  // firewalld-policy's policy

}  // namespace

const std::vector<Scenario>& firewalld_scenarios() {
  static const std::vector<Scenario> all = {
      {"firewalld-drop-zone",
       "firewalld: the client's address a source of the drop zone (now and permanently); the remedy lifts it",
       [](Lab& lab) {
         firewalld_block(
             lab,
             [](const Firewalld& firewalld, const ClientSide& c) {
               firewalld.cmd_checked({"--permanent", "--zone=drop", "--add-source=" + c.client4});
               firewalld.cmd_checked({"--zone=drop", "--add-source=" + c.client4});
               return Expectation{
                   .verdict = Verdict::Firewall, .peer_saw = "silence", .detail_says = "(written by firewalld: drop)",
                   .client_says = "timed out", .rule_backend = "nftables", .rule_says = "drop", .rule_certain = true,
                   .blocker_tool = "firewalld", .blocker_name = "drop", .blocker_rule_number = 0,
                   .remedy_says = "firewall-cmd --zone=drop --remove-source=" + c.client4 +
                                  " ; firewall-cmd --permanent --zone=drop --remove-source=" + c.client4};
             },
             3,
             [](const Firewalld& firewalld) {
               if (!blank(firewalld.cmd({"--permanent", "--zone=drop", "--list-sources"}).out) ||
                   !blank(firewalld.cmd({"--zone=drop", "--list-sources"}).out))
                 throw failed("lift", "the drop zone's source", "the zone still lists it");
             });
       },
       {"firewalld", "firewall-cmd", "dbus-daemon"}, kFirewalldRemoteOnly},
      {"firewalld-rich-rule",
       "firewalld: a rich rule rejects the client's ssh in the default zone (runtime only); the remedy lifts it",
       [](Lab& lab) {
         firewalld_block(
             lab,
             [](const Firewalld& firewalld, const ClientSide& c) {
               firewalld.cmd_checked(
                   {"--add-rich-rule=rule family=ipv4 source address=" + c.client4 + " service name=ssh reject"});
               // firewalld's plain reject for IPv4 is an ICMP port unreachable: the client reads "refused".
               return Expectation{
                   .verdict = Verdict::Firewall,
                   .detail_says = "(written by firewalld: public); the rule answers with ICMP port-unreachable: the "
                                  "client reads \"Connection refused\"",
                   .client_says = "Connection refused",
                   .rule_backend = "nftables",
                   .rule_says = "ip saddr " + c.client4 + " tcp dport 22 reject with icmp port-unreachable",
                   .rule_certain = true,
                   .blocker_tool = "firewalld", .blocker_name = "public", .blocker_rule_number = 0,
                   .remedy_says = "firewall-cmd --zone=public '--remove-rich-rule=rule family=\"ipv4\" source "
                                  "address=\"" + c.client4 + "\" service name=\"ssh\" reject'",
                   .rule_chain = "filter_IN_public_deny"};
             },
             12,
             [](const Firewalld& firewalld) {
               if (!blank(firewalld.cmd({"--list-rich-rules"}).out))
                 throw failed("lift", "the rich rule", "firewalld still lists it");
             });
       },
       {"firewalld", "firewall-cmd", "dbus-daemon"}, kFirewalldRemoteOnly},
      {"firewalld-policy",
       "firewalld: a policy from ANY zone to HOST (permanent, reloaded) whose rich rule rejects the client's ssh; the "
       "remedy lifts it",
       [](Lab& lab) {
         firewalld_block(
             lab,
             [](const Firewalld& firewalld, const ClientSide& c) {
               // A policy's name may end like a part chain: `sshd_deny`'s deny chain is
               // filter_IN_policy_sshd_deny_deny, which policy `sshd_deny_deny` would own too.
               const std::string rich = "rule family=ipv4 source address=" + c.client4 + " service name=ssh reject";
               firewalld.cmd_checked({"--permanent", "--new-policy=" + kPolicy});
               // Ingress ANY: firewalld 1.3 dispatches a policy from a zone by that zone's own
               // interfaces and sources only, and the lab binds none to the default zone.
               firewalld.cmd_checked({"--permanent", "--policy=" + kPolicy, "--add-ingress-zone=ANY"});
               firewalld.cmd_checked({"--permanent", "--policy=" + kPolicy, "--add-egress-zone=HOST"});
               firewalld.cmd_checked({"--permanent", "--policy=" + kPolicy, "--add-rich-rule=" + rich});
               firewalld.cmd_checked({"--reload"});
               return Expectation{
                   .verdict = Verdict::Firewall,
                   .detail_says = "(written by firewalld: policy " + kPolicy + ")",
                   .client_says = "Connection refused",
                   .rule_backend = "nftables",
                   .rule_says = "ip saddr " + c.client4 + " tcp dport 22 reject with icmp port-unreachable",
                   .rule_certain = true,
                   .blocker_tool = "firewalld", .blocker_name = "policy " + kPolicy, .blocker_rule_number = 0,
                   .remedy_says = "firewall-cmd --policy=" + kPolicy + " '--remove-rich-rule=rule family=\"ipv4\" "
                                  "source address=\"" + c.client4 + "\" service name=\"ssh\" reject' ; "
                                  "firewall-cmd --permanent --policy=" + kPolicy,
                   .rule_chain = "filter_IN_policy_" + kPolicy + "_deny"};
             },
             12,
             [](const Firewalld& firewalld) {
               for (const bool permanent : {false, true}) {
                 std::vector<std::string> args{"--policy=" + kPolicy, "--list-rich-rules"};
                 if (permanent) args.insert(args.begin(), "--permanent");
                 if (!blank(firewalld.cmd(args).out)) throw failed("lift", "the policy's rich rule", "firewalld still lists it");
               }
             });
       },
       {"firewalld", "firewall-cmd", "dbus-daemon"}, kFirewalldRemoteOnly},
  };
  return all;
}

}  // namespace rsttrace::lab
