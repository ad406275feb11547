#include "attribute/attributor.h"

#include "attribute/rules.h"

#include <sys/stat.h>

#include <ctime>
#include "output/format.h"
#include "provenance/provenance.h"

namespace rsttrace {
namespace {

std::string process_text(const Process& process) {
  return escape_untrusted(process.comm) + "[" + std::to_string(process.pid) + "]";
}

// What a process in a user namespace of its own says (its name, its threads'
// names, its files) is that user's word: shown as such, never acted on.
std::string own_word(uint32_t user_ns, uint32_t uid) {
  return " (in user namespace " + std::to_string(user_ns) + ", uid " + std::to_string(uid) + ": its own word)";
}

}  // namespace

std::string describe_evidence(const KernelNames& names, const TcpEvent& event) {
  std::string text;
  const auto reason = reason_name(names, event);
  switch (event.kind) {
    case EventKind::ResetSent:
      text = event.sock_id ? "RST sent on a socket" : "RST sent for a packet that matched no socket";
      break;
    case EventKind::ResetReceived: text = "RST received from the peer"; break;
    case EventKind::Drop:
      text = std::string(event.ingress ? "incoming" : "outgoing") + " packet dropped";
      break;
  }
  if (reason) text += " (" + *reason + ")";
  if (event.tcp_flags) text += ", packet flags " + format_tcp_flags(*event.tcp_flags);
  if (auto state = state_name(names, event)) text += ", socket in " + *state;
  if (event.owner)
    text += ", owner " + process_text(*event.owner) + " (" +
            std::string(owner_source_name(event.owner_source)) + ")";
  if (event.full_socket && event.unread_bytes) text += ", " + std::to_string(event.unread_bytes) + " bytes unread";
  if (event.context.pid)
    text += ", hook ran in " + process_text(event.context);
  else
    text += ", hook ran in softirq/idle";
  return text;
}

Attributor::Attributor(const KernelNames& names, std::set<uint16_t> watched_ports, bool raw,
                       CorrelatorSettings settings, uint32_t host_user_ns)
    : names_(names), watched_ports_(std::move(watched_ports)), raw_(raw), correlator_(settings),
      host_user_ns_(host_user_ns) {}

// What the evidence rsttrace gathered itself says about a report: who read
// and who last wrote the wrapper files. The system's own state (rulesets,
// the files now, fail2ban) is read later, off the trace loop
// (provenance/enrich.h), for the reports marked needs_provenance.
void Attributor::add_evidence(Report& report) {
  if (report.verdict == "tcp-wrappers") {
    report.needs_provenance = true;
    const auto check = evidence_.wrapper_check(report.wrapper_pid, 0, UINT64_MAX);
    if (check && check->user_ns != host_user_ns_) {
      report.wrapper_reader_note = own_word(check->user_ns, check->uid);
      report.detail += "; the process that read the wrapper files runs" + report.wrapper_reader_note;
    }
    report.written_by = evidence_.last_writer(report.wrapper_mnt_ns, WrapperFile::HostsDeny);
    if (report.written_by) {
      const WrapperOpen& writer = *report.written_by;
      report.detail += "; /etc/hosts.deny last written by " + escape_untrusted(writer.process.comm) + "[" +
                       std::to_string(writer.process.pid) + "], child of " + escape_untrusted(writer.parent.comm) +
                       "[" + std::to_string(writer.parent.pid) + "] (thread " + escape_untrusted(writer.parent_thread) + ")";
      if (writer.user_ns != host_user_ns_) {
        // Its thread names (f2b/a.<jail>) are its own: no jail is inferred, fail2ban is not asked.
        report.detail += own_word(writer.user_ns, writer.uid);
        report.writer_speaks_for_itself = true;
      } else if ((report.fail2ban_jail = Provenance::fail2ban_jail_from_thread(writer))) {
        report.detail += " (fail2ban jail " + escape_untrusted(*report.fail2ban_jail) + ")";
      }
    }
  }
  if (report.verdict == "firewall" && report.netfilter_hook) report.needs_provenance = true;
}

bool Attributor::finish(const std::vector<TcpEvent>& group, std::optional<Report>& report) {
  if (report) {
    add_evidence(*report);
    return true;
  }
  if (raw_) {  // raw: every kernel event has its line
    report = judge_alone(group.front());
    return true;
  }
  ignored_ += group.size();
  return false;
}

Report Attributor::judge_alone(const TcpEvent& event) {
  const std::vector<TcpEvent> group{event};
  std::optional<Report> report = judge(group, RuleContext{names_, evidence_, watched_ports_});
  if (report) {
    add_evidence(*report);
    return std::move(*report);
  }
  return Report{event, "none", "ordinary teardown, not a failure: " + describe_evidence(names_, event)};
}

std::vector<Report> Attributor::judge_all(const std::vector<std::vector<TcpEvent>>& groups) {
  std::vector<Report> reports;
  reports.reserve(groups.size());
  for (const auto& group : groups) {
    std::optional<Report> report = judge(group, RuleContext{names_, evidence_, watched_ports_});
    if (finish(group, report)) reports.push_back(std::move(*report));
  }
  return reports;
}

std::vector<Report> Attributor::add(const TcpEvent& event) {
  if (raw_) return judge_all({{event}});
  correlator_.add(event);
  return {};
}

std::vector<Report> Attributor::add(TcpEvent&& event) {
  if (raw_) return judge_all({{std::move(event)}});
  correlator_.add(std::move(event));
  return {};
}

std::vector<Report> Attributor::due(uint64_t now_ns) { return judge_all(correlator_.take_due(now_ns)); }

std::vector<Report> Attributor::flush() { return judge_all(correlator_.take_all()); }

}  // namespace rsttrace
