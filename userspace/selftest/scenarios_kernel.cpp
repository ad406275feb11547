// Issue 15's kernel scenarios: what the kernel itself does to a connection
// when its listener stops or dies, played with the userland's real sshd.
#include <signal.h>

#include "selftest/scenario.h"

namespace rsttrace::lab {
namespace {

// sshd stopped (SIGSTOP): the client's handshake completes in the kernel and
// waits in the accept queue; then sshd is killed with `signal`, and closing
// its listener resets the queued connection in the dying process.
void listener_killed(Lab& lab, int signal, const std::string& name) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {});
  ::kill(sshd.pid(), SIGSTOP);
  auto client = start_raw_client(c.ns, lab.dir(), "queued",
                                 {"--connect", c.server4, "--bind", c.client4, "--bind-port",
                                  std::to_string(kClientPort), "--read-first", "--hold", "20"});
  ns.wait_socket("established", "sport = :22", c.client4 + ":" + std::to_string(kClientPort),
                 "the client's connection in sshd's accept queue");
  ::kill(sshd.pid(), signal);
  ::kill(sshd.pid(), SIGCONT);  // a stopped process takes SIGTERM only once it runs
  lab.expect(ns, client->wait(std::chrono::seconds(30)),
             {.verdict = Verdict::Sshd, .remote_addr = c.client4, .peer_saw = "reset",
              .detail_says = "was killed by " + name + " with the connection from " + c.client4 + ":" +
                             std::to_string(kClientPort) + " still in its accept queue",
              .client_says = "Connection reset by peer",
              // Explain ran before the kill: sshd, stopped, still listened, and let the client in.
              .explain_says = "allowed"});
}

}  // namespace

const std::vector<Scenario>& kernel_scenarios() {
  static const std::vector<Scenario> all = {
      {"listener-sigkill", "sshd, stopped, is killed with SIGKILL: the connection waiting in its accept queue is reset",
       [](Lab& lab) { listener_killed(lab, SIGKILL, "SIGKILL"); }},
  };
  return all;
}

std::vector<Scenario> with_kernel_scenarios(const std::vector<Scenario>& scenarios) {
  std::vector<Scenario> all = scenarios;
  all.insert(all.end(), kernel_scenarios().begin(), kernel_scenarios().end());
  return all;
}

}  // namespace rsttrace::lab
