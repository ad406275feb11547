// An attribution: what rsttrace says of one connection's reset or drop, the
// kernel's evidence plus the verdict drawn from it; one event line. (Variables
// holding one are often named `report`; "report" as a name of its own is the
// `rsttrace report` subcommand: report/ and app/report.cpp.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "attribute/blockers.h"
#include "attribute/sshd_refusal.h"
#include "attribute/verdict.h"
#include "collect/tcp_event.h"

namespace rsttrace {

struct Attribution {
  TcpEvent event;            // the decisive kernel event
  Verdict verdict = Verdict::Unknown;
  std::string detail;        // one sentence: the evidence behind the verdict
  uint32_t packets = 1;      // kernel events folded into this report
  std::optional<std::string> peer_saw;        // "reset" | "silence": what the other end got
  std::optional<std::string> netfilter_hook;  // firewall verdicts: "prerouting" | "input" | "output"
  std::optional<FirewallRule> rule;           // firewall verdicts: the rule that dropped it
  std::optional<std::string> fail2ban_jail;   // the jail behind the rule or the wrappers line
  std::optional<Blocker> blocker;             // the front-end behind the rule or the wrappers line
  // tcp-wrappers verdicts:
  uint32_t wrapper_mnt_ns = 0;                // the mount namespace whose hosts.* files were read
  uint32_t wrapper_pid = 0;                   // the process that read them
  std::optional<WrapperRule> wrapper_rule;    // the hosts.allow/hosts.deny line that refused the client
  std::optional<WrapperOpen> written_by;      // the last writer of hosts.deny seen by rsttrace
  std::optional<uint64_t> written_mtime_unix_ns;  // else the file's modification time
  std::string wrapper_reader_note;  // " (in user namespace N, uid U: its own word)" for such a reader
  bool writer_speaks_for_itself = false;  // the writer runs in a user namespace of its own
  // sshd verdicts where the listener refused it: the facts its detail is
  // rendered from again once that sshd's `sshd -T` limits are in (provenance).
  std::optional<ListenerRefusal> sshd_refusal;
  std::optional<LoginGraceNote> login_grace;  // re-rendered with the listener's LoginGraceTime (sshd -T)
  // One line per connection (issue 16, attribute/connection_folds.h): the
  // fold that holds this report (0: none), the later drops folded into it and
  // when the last was seen (CLOCK_MONOTONIC).
  uint64_t fold_id = 0;
  uint32_t folded_drops = 0;
  uint64_t last_folded_ns = 0;
  // A reset received here that netfilter on this host built (issue 16): the
  // drop of the connection's packet by a REJECT in the other end's namespace
  // (or this one, on loopback), and the rule that built it (provenance).
  std::optional<TcpEvent> netfilter_reset_drop;
  std::optional<FirewallRule> reset_rule;
  // The system's state (rulesets, the files now, fail2ban) is still to be
  // read for it: done off the trace loop (provenance/enrich.h, worker.h).
  bool needs_provenance = false;
};

}  // namespace rsttrace
