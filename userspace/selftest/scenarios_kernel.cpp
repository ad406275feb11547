// Issue 15's kernel scenarios: what the kernel itself does to a connection
// when its listener stops or dies (or its accept queue is full), played with
// the userland's real sshd.
#include <arpa/inet.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "collect/feature_probe.h"
#include "collect/kernel_btf.h"
#include "error.h"
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

// Does the running kernel name the drop of a handshake's last segment at a full
// accept queue? tcp_check_req() gives TCP_LISTEN_OVERFLOW from 6.15 ("tcp: add four
// drop reasons to tcp_check_req()"); before, the same drop has no reason, and
// rsttrace reports no drop without one on a connection that sent no reset.
bool kernel_names_listen_overflow() {
  const KernelBtf kernel = KernelBtf::load();
  return KernelNames::from_btf(kernel.get()).drop_reasons.value("TCP_LISTEN_OVERFLOW").has_value();
}

// Before, the tracer sees it where fexit works, on tcp_check_req (bpf/rsttrace.bpf.c),
// with the same verdict; with neither, no line.
bool tracer_names_listen_overflow() { return kernel_names_listen_overflow() || probe_listen_overflow_hooks().ok(); }

// The client's own packets cross a slow link, as a far client's do: an HTB class of
// 320 bit/s (40 bytes a second; slower on a slow machine) for its address and port
// only, on the device they leave by (the server's lo, or the client's end of the
// veth). Its SYN leaves at once, its handshake's last ACK 1.5 to 1.9 s later (the
// SYN's 60 or 74 bytes at that rate): the ACK's time in flight, in which another
// client fills the queue. Nothing is dropped on the way.
void slow_client_link(const ClientSide& c, bool loopback) {
  const std::string device = loopback ? "lo" : "lab0";
  const std::string rate = std::to_string(std::max(16, 320 / time_scale())) + "bit";
  auto tc = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"tc"});
    args.insert(args.begin() + 3, {"dev", device});  // tc OBJECT VERB dev DEVICE ...
    c.ns.run_checked(args);
  };
  tc({"qdisc", "add", "root", "handle", "1:", "htb", "default", "1"});
  tc({"class", "add", "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit"});
  tc({"class", "add", "parent", "1:", "classid", "1:2", "htb", "rate", rate, "burst", "1b", "cburst", "1b"});
  tc({"filter", "add", "parent", "1:", "protocol", "ip", "prio", "1", "u32", "match", "ip", "src", c.client4 + "/32",
      "match", "ip", "sport", std::to_string(kClientPort), "0xffff", "flowid", "1:2"});
}

// A connection from the server's own namespace (its own address and `port`), left
// in the stopped listener's accept queue. Started ahead with `cue`, it connects
// once that file exists.
std::unique_ptr<Child> start_queued(const Namespace& ns, const WorkDir& dir, const ClientSide& c, uint16_t port,
                                    const std::string& cue = "") {
  std::vector<std::string> argv{self_path(), "lab-client", "--connect", c.server4, "--bind", c.server4,
                                "--bind-port", std::to_string(port), "--hold", "60"};
  if (!cue.empty()) argv.insert(argv.end(), {"--connect-when", cue});
  return std::make_unique<Child>(ns.exec(argv), dir.file("queued-" + std::to_string(port)));
}

// Until connect() of `queued` has returned.
void wait_connected(Child& queued, const std::string& what) {
  const auto limit = scaled(std::chrono::seconds(5));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (queued.err().find("connected") == std::string::npos) {
    if (!queued.running() || std::chrono::steady_clock::now() >= deadline)
      throw failed("queue", what, "not connected within " + std::to_string(limit.count()) + " s: " + queued.err());
    sleep_checked(std::chrono::milliseconds(10));
  }
}

// Until the client's handshake waits in the server namespace's SYN queue (SYN_RECV,
// state 03, in /proc/PID/net/tcp of a process there): read in this process, no
// command started, so the next step follows within milliseconds.
void wait_syn_recv(pid_t in_namespace, const std::string& client, uint16_t port) {
  in_addr address{};
  inet_pton(AF_INET, client.c_str(), &address);
  char remote[32];
  std::snprintf(remote, sizeof(remote), " %08X:%04X 03 ", address.s_addr, port);
  const auto limit = scaled(std::chrono::seconds(15));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (read_file("/proc/" + std::to_string(in_namespace) + "/net/tcp").find(remote) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline)
      throw failed("wait for", "the client's handshake in sshd's SYN queue",
                   "not seen within " + std::to_string(limit.count()) + " s");
    sleep_checked(std::chrono::milliseconds(2));
  }
}

// `nstat`'s TcpExt counter `name` in the namespace (its history file untouched).
uint64_t tcpext(const Namespace& ns, const std::string& name) {
  std::istringstream lines(ns.run_checked({"nstat", "-asz", name}).out);
  std::string key;
  uint64_t value = 0;
  while (lines >> key)
    if (key == name && lines >> value) return value;
  throw failed("read", "nstat " + name, "no such counter");
}

// Until the listener's accept queue is empty (ss's Recv-Q of the LISTEN socket):
// it accepts again.
void wait_queue_drained(const Namespace& ns) {
  const auto limit = scaled(std::chrono::seconds(15));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    std::istringstream ss(ns.run_checked({"ss", "-Htln", "sport = :22"}).out);
    std::string state;
    unsigned waiting = 0;
    bool drained = true;
    while (ss >> state >> waiting) {
      drained &= waiting == 0;
      ss.ignore(1 << 16, '\n');
    }
    if (drained) return;
    if (std::chrono::steady_clock::now() >= deadline)
      throw failed("restore", "the listener", "its accept queue still holds connections after " +
                                                  std::to_string(limit.count()) + " s");
    sleep_checked(std::chrono::milliseconds(20));
  }
}

// sshd stops accepting (SIGSTOP of the listener alone); two connections wait in its
// accept queue, which holds three (backlog 2). The client's SYN finds room, but its
// last ACK crosses a slow link, and a third connection fills the queue meanwhile: the
// kernel drops the ACK, and each segment after it, at the full queue; the client,
// connected as far as it knows, times out waiting for sshd's banner. Then sshd runs
// again and drains its queue.
void accept_queue_overflow(Lab& lab) {
  const std::string host_somaxconn = read_file("/proc/sys/net/core/somaxconn");
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  // sshd's listen() asks for SSH_LISTEN_BACKLOG, 128 (fixed in OpenSSH's ssh.h); the
  // lab namespace's own somaxconn (a per-namespace sysctl) caps it at 2.
  ns.run_checked({"sysctl", "-q", "-w", "net.core.somaxconn=2"});
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {});
  ::kill(sshd.pid(), SIGSTOP);
  if (const auto limit = scaled(std::chrono::seconds(5)); !wait_stopped(sshd.pid(), limit))
    throw failed("stop", "sshd's listener", "not stopped after " + std::to_string(limit.count()) + " s");
  slow_client_link(c, lab.placement() == Placement::Loopback);
  std::vector<std::unique_ptr<Child>> queued;
  for (uint16_t port : {40201, 40202}) {
    queued.push_back(start_queued(ns, lab.dir(), c, port));
    wait_connected(*queued.back(), "a connection in sshd's accept queue");
  }
  // The third waits for its cue: the client's SYN in the SYN queue.
  const std::string cue = lab.dir().file("fill-the-queue");
  queued.push_back(start_queued(ns, lab.dir(), c, 40203, cue));
  const uint64_t overflows = tcpext(ns, "TcpExtListenOverflows");
  // Explain runs first, on a queue with room (2 waiting, backlog 2): the SYN is let in.
  const int timeout = 3 * time_scale();
  auto client = start_ssh_client(c.ns, lab.dir(), "ssh", c.client4, c.server4, 22, timeout);
  wait_syn_recv(sshd.pid(), c.client4, kClientPort);
  lab.dir().write("fill-the-queue", "");
  // Had the client's ACK filled the queue first, this SYN would be dropped.
  wait_connected(*queued.back(), "the connection that fills the queue before the client's ACK arrives (a machine "
                                 "this slow needs a larger RSTTRACE_LAB_TIME_SCALE)");
  Expectation expected{.remote_addr = c.client4, .client_says = "Connection timed out during banner exchange",
                       .explain_says = "allowed"};
  if (tracer_names_listen_overflow()) {
    expected.verdict = Verdict::Kernel;
    expected.detail_says = "the accept queue of sshd[" + std::to_string(sshd.pid()) + "] on " + c.server4 +
                           ":22 was full (3 waiting, backlog 2): it was not accepting connections (stopped, stuck or too "
                           "slow), and the kernel dropped ";
  }
  lab.expect(ns, client->wait(std::chrono::seconds(timeout + 30)), expected);
  if (tcpext(ns, "TcpExtListenOverflows") == overflows)
    throw failed("overflow", "sshd's accept queue", "the kernel counted no ListenOverflows: the scenario did not happen");
  ::kill(sshd.pid(), SIGCONT);
  wait_queue_drained(ns);
  if (read_file("/proc/sys/net/core/somaxconn") != host_somaxconn)
    throw failed("keep", "the host's net.core.somaxconn", "it changed during the scenario");
}

}  // namespace

const std::vector<Scenario>& kernel_scenarios() {
  static const std::vector<Scenario> all = {
      {"listener-sigkill", "sshd, stopped, is killed with SIGKILL: the connection waiting in its accept queue is reset",
       [](Lab& lab) { listener_killed(lab, SIGKILL, "SIGKILL"); }},
      {"accept-queue-overflow",
       "sshd, stopped, has a full accept queue when a far client's handshake ends: the kernel drops its ACK "
       "(TCP_LISTEN_OVERFLOW from 6.15; before, seen where fexit on tcp_check_req works, else unreported)",
       accept_queue_overflow},
  };
  return all;
}

std::vector<Scenario> with_kernel_scenarios(const std::vector<Scenario>& scenarios) {
  std::vector<Scenario> all = scenarios;
  all.insert(all.end(), kernel_scenarios().begin(), kernel_scenarios().end());
  return all;
}

}  // namespace rsttrace::lab
