// Scenarios of sshd's own refusals (PerSourcePenalties, MaxStartups told
// apart, LoginGraceTime, a killed session) and of TCP wrappers options
// (twist, spawn), on both userlands.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <thread>

#include "collect/kernel_btf.h"
#include "error.h"
#include "selftest/scenario.h"

namespace rsttrace::lab {
namespace {

// Waits until `sshd`'s log contains `phrase` (sshd -e logs to stderr).
void wait_log(const Sshd& sshd, const std::string& phrase, const std::string& what) {
  const auto limit = scaled(std::chrono::seconds(15));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (sshd.log().find(phrase) == std::string::npos) {
    if (std::chrono::steady_clock::now() >= deadline)
      throw failed("wait for", what, "sshd did not log `" + phrase + "` within " + std::to_string(limit.count()) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// A client that connects without authenticating, then `ssh` from the same
// address. OpenSSH 10.0 (Debian 13) penalises the source (noauth:30) and its
// listener drops the ssh; 9.2 (Debian 12) has no penalties, and refuses it
// with MaxStartups 1:30:1 while another client holds the only start. The
// settings are not the defaults: the detail quotes them from that sshd's sshd -T.
void refused_after_noauth(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  const bool penalties = lab.userland() == Userland::Debian13;
  Sshd sshd(ns, lab.dir(), {.config = penalties ? std::vector<std::string>{"PerSourcePenalties noauth:30",
                                                                           "PerSourceNetBlockSize 24:64"}
                                                 : std::vector<std::string>{"MaxStartups 1:30:1"}});
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
    sshd.wait_startups(1);
  } else {
    wait_log(sshd, "penalty", "the penalty of " + c.client4);
  }
  Expectation expected{.verdict = Verdict::Sshd, .remote_addr = c.client4, .peer_saw = "reset",
                       .client_says = "kex_exchange_identification: "};
  expected.detail_says =
      penalties ? "PerSourcePenalties refused it (MaxStartups cannot have: 0 other connections it had accepted were "
                  "open, fewer than the start of MaxStartups 10:30:100 (sshd -T)); sources counted per netblock: "
                  "PerSourceNetBlockSize 24:64 (sshd -T); penalty noauth (30 s a connection, refused from 15 s): 1 "
                  "earlier connection from " +
                      c.client4 + " ended ("
                : "MaxStartups refused it: 1 other connection it had accepted was open against MaxStartups 1:30:1 "
                  "(sshd -T): full";
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

// hosts.deny with spawn: libwrap runs the command beside the refusal, which
// goes on as without it. The command appends the client's address (%a) to a
// file of sshd's own /run: one line, libwrap's run; rsttrace (the trace and
// explain, which read the same line) must add none.
void hosts_deny_spawn(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  const std::string command = "/bin/sh -c 'echo %a >> /run/rsttrace-lab-spawned'";
  Sshd sshd(ns, lab.dir(), {.hosts_deny = "sshd: " + c.client4 + " : spawn " + command + "\n"});
  lab.expect(ns, ssh_client(c.ns, c.client4, c.server4, 22),
             {.verdict = Verdict::TcpWrappers, .remote_addr = c.client4, .peer_saw = "reset",
              .detail_says = "; refused by /etc/hosts.deny line 1: sshd: " + c.client4 + " : spawn " + command +
                             " (spawn: libwrap ran `" + command +
                             "` in a child of the refusing process (rsttrace never runs it))",
              .client_says = "kex_exchange_identification: read: Connection reset by peer", .wrapper_line = 1});
  // The spawned shell ran once, as libwrap's child, with %a expanded by libwrap.
  const std::string spawned = "/proc/" + std::to_string(sshd.pid()) + "/root/run/rsttrace-lab-spawned";
  const std::string ran = read_file(spawned);
  if (ran != c.client4 + "\n")
    throw failed("check", "the spawn command's runs",
                 spawned + " holds `" + ran + "`, not one line `" + c.client4 + "` (libwrap's run alone)");
}

// sshd's LoginGraceTime runs out on a client that connected and said
// nothing; the client then writes into the closed connection, and the
// server's TIME_WAIT socket answers with a reset (TCP_TIMEWAIT_SOCKET).
// Debian 13's sshd-session exits with EXIT_LOGIN_GRACE (3): certain; Debian
// 12's sshd exits 1 as from any fatal error: probable.
void login_grace_time(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  const auto grace = scaled(std::chrono::seconds(1));  // the shortest sshd takes
  Sshd sshd(ns, lab.dir(), {.config = {"LoginGraceTime " + std::to_string(grace.count())}});
  auto client = start_raw_client(c.ns, lab.dir(), "silent",
                                 {"--connect", c.server4, "--bind", c.client4, "--bind-port", std::to_string(kClientPort),
                                  "--after-close", "SSH-2.0-late\\r\\n", "--hold", std::to_string(grace.count() * 10)});
  const bool session = lab.userland() == Userland::Debian13;
  const std::string closed = "sshd closed the connection from " + c.client4 + ":" + std::to_string(kClientPort) +
                             " when its LoginGraceTime (";
  lab.expect(ns, client->wait(grace * 10 + std::chrono::seconds(20)),
             {.verdict = Verdict::Sshd, .remote_addr = c.client4, .peer_saw = "reset", .detail_says = closed,
              .client_says = "read: closed by peer\nreset after the write: Broken pipe", .explain_says = "allowed"});
  // The configured time within what the detail gives (OpenSSH 9.8+ adds a random 0-4 s), and the evidence.
  const Check& check = lab.checks().back();
  if (check.event.is_null() || !check.problems.empty()) return;
  const std::string detail = check.event.value("detail", "");
  const std::string after = detail.substr(detail.find(closed) + closed.size());
  long least = 0, most = 0;
  if (std::sscanf(after.c_str(), "%ld to %ld s", &least, &most) != 2) most = least = std::atol(after.c_str());
  const std::string evidence = session ? ") ran out (certain: sshd-session[" : ") ran out (probable: sshd[";
  const std::string exit = session ? "] exited with status 3, OpenSSH's EXIT_LOGIN_GRACE, " : "] exited (status 1) ";
  const bool jitter_named = after.find(": OpenSSH 9.8+ adds up to 4 s of random jitter)") != std::string::npos;
  // The listener's own setting, from its sshd -T (the time from accept() to the close only bounds it:
  // a slow fork and exec, as in an emulated guest, adds to it).
  const bool configured = after.starts_with(std::to_string(grace.count()) + " s (sshd -T), closed ");
  if (least > grace.count() || most < grace.count() || after.find(evidence) == std::string::npos ||
      after.find(exit) == std::string::npos || jitter_named != session || !configured)
    throw failed("check", "the grace time and its evidence",
                 "LoginGraceTime " + std::to_string(grace.count()) + " s, but the detail says `" + after + "`");
}

// The server end of the connection from `peer` (ADDR:PORT), as ss shows it:
// the processes that hold it and its unread bytes.
struct ServerSocket {
  std::vector<pid_t> holders;  // each process once
  long unread = 0;
};
std::optional<ServerSocket> server_socket(const Namespace& ns, const std::string& peer) {
  const Result ss = ns.run({"ss", "-Htnp", "state", "established", "sport = :22"});
  std::istringstream lines(ss.out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream fields(line);
    ServerSocket found;
    long queued_out = 0;
    std::string local, remote;
    if (!(fields >> found.unread >> queued_out >> local >> remote) || remote != peer) continue;
    // One entry per descriptor: a re-executed sshd child (sshd -R, sshd-session) holds the
    // socket as its stdin and stdout before the banner exchange. Each process counts once.
    for (size_t at = line.find("pid="); at != std::string::npos; at = line.find("pid=", at + 4)) {
      const auto pid = static_cast<pid_t>(std::stol(line.substr(at + 4)));
      if (std::find(found.holders.begin(), found.holders.end(), pid) == found.holders.end()) found.holders.push_back(pid);
    }
    return found;
  }
  return std::nullopt;
}

// Polls `ns` until the server socket of `peer` satisfies `ready`.
ServerSocket wait_server_socket(const Namespace& ns, const std::string& peer, const std::string& what,
                                const std::function<bool(const ServerSocket&)>& ready) {
  const auto limit = scaled(std::chrono::seconds(15));
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (auto found = server_socket(ns, peer); found && ready(*found)) return *found;
    if (std::chrono::steady_clock::now() >= deadline)
      throw failed("wait for", what, "not seen within " + std::to_string(limit.count()) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The per-connection sshd processes (Debian 12: the sshd child and its
// privsep child; Debian 13: sshd-session and sshd-auth) are killed with
// SIGKILL while the client's data waits unread: the last one's exit resets
// the connection. They are stopped first, so the data stays unread.
void session_killed(Lab& lab) {
  Namespace& ns = lab.ns("a");
  const ClientSide& c = lab.client_side(ns);
  lab.start_tracer();
  Sshd sshd(ns, lab.dir(), {});
  const std::string go = lab.dir().file("killed-session-go");
  const std::string peer = c.client4 + ":" + std::to_string(kClientPort);
  auto client = start_raw_client(c.ns, lab.dir(), "killed",
                                 {"--connect", c.server4, "--bind", c.client4, "--bind-port", std::to_string(kClientPort),
                                  "--read-first", "--send", "SSH-2.0-lab\\r\\n", "--send-when", go, "--later",
                                  "unread by sshd", "--hold", "30"});
  // Past the banner exchange, sshd has forked its unprivileged process: two processes hold the
  // socket (the listener too, for a moment after its fork: never it). One process on two
  // descriptors is the re-executed child before its banner: stopped then, the client would
  // wait for the banner and never send the data (the 6.1 guest's set-up failures).
  auto session_holders = [&](const ServerSocket& s) {
    std::vector<pid_t> pids;
    for (pid_t pid : s.holders)
      if (pid != sshd.pid()) pids.push_back(pid);
    return pids;
  };
  const ServerSocket session = wait_server_socket(ns, peer, "the session's two processes on the connection",
                                                  [&](const ServerSocket& s) { return session_holders(s).size() >= 2; });
  // Stopped until no new holder shows: one may have forked (sshd-auth) between ss's
  // look and the stop, and would read the data the scenario leaves unread.
  std::set<pid_t> stopped;
  for (std::vector<pid_t> holders = session_holders(session);;) {
    bool new_holder = false;
    for (pid_t pid : holders)
      if (stopped.insert(pid).second) {
        ::kill(pid, SIGSTOP);
        new_holder = true;
      }
    if (!new_holder) break;
    for (pid_t pid : stopped) wait_stopped(pid, scaled(std::chrono::seconds(2)));
    const auto now = server_socket(ns, peer);
    if (!now) break;
    holders = session_holders(*now);
  }
  lab.dir().write("killed-session-go", "");
  wait_server_socket(ns, peer, "the client's data unread on the server", [](const ServerSocket& s) { return s.unread > 0; });
  for (pid_t pid : stopped) ::kill(pid, SIGKILL);
  // Before 6.10 tcp:tcp_send_reset has no reason argument: the detail says what the evidence shows instead.
  const KernelBtf kernel = KernelBtf::load();
  const bool reasons = TracepointShapes::from_btf(kernel.get()).tcp_send_reset.value_or(0) >= 3;
  lab.expect(ns, client->wait(std::chrono::seconds(40)),
             {.verdict = Verdict::Sshd, .remote_addr = c.client4, .peer_saw = "reset",
              .detail_says = "was killed by SIGKILL holding the connection from " + peer +
                             (reasons ? " (TCP_ABORT_ON_CLOSE)" : " (no reason on this kernel: the closing process's abort)"),
              .client_says = "read: Connection reset by peer", .explain_says = "allowed"});
  // OpenSSH 10.0's PerSourcePenalties count SIGKILL as no crash (signal_is_crash()):
  // the next connection from the address is let in, and fails only its login.
  if (lab.userland() == Userland::Debian13) {
    const Result next = ssh_client(c.ns, c.client4, c.server4, 22);
    if ((next.err + next.out).find("Permission denied") == std::string::npos)
      throw failed("check", "the next connection after the kill",
                   "ssh said `" + next.err + next.out + "`, not Permission denied (a PerSourcePenalties penalty?)");
  }
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
      {"hosts-deny-spawn",
       "hosts.deny with spawn: libwrap runs the command beside the refusal; rsttrace names the option, never runs it",
       hosts_deny_spawn},
      {"login-grace-time",
       "a silent client outlives sshd's LoginGraceTime, then writes: the TIME_WAIT socket's reset, named as the grace",
       login_grace_time},
      {"session-sigkill",
       "the session's sshd processes are killed with SIGKILL with client data unread: the reset names the signal",
       session_killed},
  };
  return all;
}

}  // namespace rsttrace::lab
