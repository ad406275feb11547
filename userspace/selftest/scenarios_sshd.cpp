// Scenarios of sshd's own refusals (PerSourcePenalties, MaxStartups told
// apart) and of TCP wrappers options (twist), on both userlands.
#include <chrono>
#include <thread>

#include "selftest/scenario.h"

namespace rsttrace::lab {
namespace {

// Waits until `sshd`'s log contains `phrase` (sshd -e logs to stderr).
void wait_log(const Sshd& sshd, const std::string& phrase, const std::string& what) {
  const auto limit = scaled(std::chrono::seconds(15));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (sshd.log().find(phrase) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline)
      throw std::runtime_error("failed to wait for " + what + ": sshd did not log `" + phrase + "` within " +
                               std::to_string(limit.count()) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// A client that connects without authenticating, then `ssh` from the same
// address. OpenSSH 10.0 (Debian 13) penalises the source (noauth:30) and its
// listener drops the ssh; 9.2 (Debian 12) has no penalties, and refuses it
// with MaxStartups 1 while another client holds the only start.
void refused_after_noauth(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  const bool penalties = lab.userland() == Userland::Debian13;
  Sshd sshd(ns, lab.dir(), {.config = {penalties ? "PerSourcePenalties noauth:30" : "MaxStartups 1"}});
  auto noauth = start_raw_client(c.ns, lab.dir(), "noauth",
                                 {"--connect", c.server4, "--bind", c.client4, "--bind-port", "40101", "--read-first",
                                  "--hold", "0.2"});
  noauth->wait(std::chrono::seconds(20));
  wait_log(sshd, "Connection closed by " + c.client4 + " port 40101", "the unauthenticated connection's end");
  std::unique_ptr<Child> holder;
  if (!penalties) {
    holder = start_raw_client(c.ns, lab.dir(), "holder",
                              {"--connect", c.server4, "--bind", c.other_client4, "--bind-port", "40100", "--hold", "60"});
    ns.wait_socket("established", "sport = :22", "sshd", "the held connection in an sshd child");
  } else {
    wait_log(sshd, "penalty", "the penalty of " + c.client4);
  }
  Expectation expected{.verdict = Verdict::Sshd, .remote_addr = c.client4, .peer_saw = "reset",
                       .client_says = "kex_exchange_identification: "};
  expected.detail_says =
      penalties ? "PerSourcePenalties refused it (MaxStartups cannot have: 0 other connections it had accepted were "
                  "open, fewer than its default start of 10); penalty noauth: 1 earlier connection from " +
                      c.client4 + " ended ("
                : "MaxStartups refused it: 1 other connection it had accepted was open (its children are named sshd: "
                  "an OpenSSH before 9.8, which has no PerSourcePenalties; MaxStartups must be set below its default "
                  "start of 10)";
  // Explain predicts sshd from sshd's own log (its standard error here: the penalty line, at
  // LogLevel VERBOSE), as probable; MaxStartups (9.2) shows in the listener's title.
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 22), expected);
}

// hosts.deny with twist: libwrap replaces sshd's child by the command.
void hosts_deny_twist(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {.hosts_deny = "sshd: " + c.client4 + " : twist /bin/echo go away\n"});
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 22),
             {.verdict = Verdict::TcpWrappers, .remote_addr = c.client4, .peer_saw = "reset",
              .detail_says = "(a hosts_options twist command), which answered the client (",
              .client_says = "kex_exchange_identification", .wrapper_line = 1});
}

}  // namespace

const std::vector<Scenario>& sshd_scenarios() {
  static const std::vector<Scenario> all = {
      {"sshd-noauth-refused",
       "a connection without authentication, then ssh from the same address: PerSourcePenalties (OpenSSH 10.0) or "
       "MaxStartups (9.2)",
       refused_after_noauth},
      {"hosts-deny-twist", "hosts.deny with twist: the sshd child becomes the command, which answers and exits",
       hosts_deny_twist},
  };
  return all;
}

}  // namespace rsttrace::lab
