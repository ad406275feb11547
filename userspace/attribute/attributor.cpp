#include "attribute/attributor.h"

#include "attribute/rules.h"
#include "provenance/provenance.h"
#include "text/escape.h"

namespace rsttrace {
namespace {

// What a process in a user namespace of its own says (its name, its threads'
// names, its files) is that user's word: shown as such, never acted on.
std::string own_word(uint32_t user_ns, uint32_t uid) {
  return " (in user namespace " + std::to_string(user_ns) + ", uid " + std::to_string(uid) + ": its own word)";
}

}  // namespace

Attributor::Attributor(const KernelNames& names, std::set<uint16_t> watched_ports, bool raw,
                       CorrelatorSettings settings, uint32_t host_user_ns)
    : names_(names), watched_ports_(std::move(watched_ports)), raw_(raw), correlator_(settings),
      host_user_ns_(host_user_ns) {}

// What the evidence rsttrace gathered itself says about a report: who read
// and who last wrote the wrapper files. The system's own state (rulesets,
// the files now, fail2ban) is read later, off the trace loop
// (provenance/enrich.h), for the reports marked needs_provenance.
void Attributor::add_evidence(Attribution& report) {
  if (report.verdict == Verdict::TcpWrappers) {
    report.needs_provenance = true;
    const auto check = evidence_.wrapper_check(report.wrapper_pid, 0, UINT64_MAX);
    if (check && check->user_ns != host_user_ns_) {
      report.wrapper_reader_note = own_word(check->user_ns, check->uid);
      report.detail += "; the process that read the wrapper files runs" + report.wrapper_reader_note;
    }
    report.written_by = evidence_.last_writer(report.wrapper_mnt_ns, WrapperFile::HostsDeny);
    if (report.written_by) {
      const WrapperOpen& writer = *report.written_by;
      report.detail += "; /etc/hosts.deny last written by " + process_text(writer.process) + ", child of " +
                       process_text(writer.parent) + " (thread " + escape_untrusted(writer.parent_thread) + ")";
      if (writer.user_ns != host_user_ns_) {
        // Its thread names (f2b/a.<jail>) are its own: no jail is inferred, fail2ban is not asked.
        report.detail += own_word(writer.user_ns, writer.uid);
        report.writer_speaks_for_itself = true;
      } else if ((report.fail2ban_jail = Provenance::fail2ban_jail_from_thread(writer))) {
        report.detail += " (fail2ban jail " + escape_untrusted(*report.fail2ban_jail) + ")";
      }
    }
  }
  if (report.verdict == Verdict::Firewall && report.netfilter_hook) report.needs_provenance = true;
}

bool Attributor::finish(const std::vector<TcpEvent>& group, std::optional<Attribution>& report) {
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

Attribution Attributor::judge_alone(const TcpEvent& event) {
  const std::vector<TcpEvent> group{event};
  std::optional<Attribution> report = judge(group, RuleContext{names_, evidence_, watched_ports_});
  if (report) {
    add_evidence(*report);
    return std::move(*report);
  }
  return Attribution{event, Verdict::None, "ordinary teardown, not a failure: " + describe_evidence(names_, event)};
}

std::vector<Attribution> Attributor::judge_all(const std::vector<std::vector<TcpEvent>>& groups) {
  std::vector<Attribution> reports;
  reports.reserve(groups.size());
  for (const auto& group : groups) {
    std::optional<Attribution> report = judge(group, RuleContext{names_, evidence_, watched_ports_});
    if (finish(group, report)) reports.push_back(std::move(*report));
  }
  return reports;
}

std::vector<Attribution> Attributor::add(const TcpEvent& event) {
  if (raw_) return judge_all({{event}});
  correlator_.add(event);
  return {};
}

std::vector<Attribution> Attributor::add(TcpEvent&& event) {
  if (raw_) return judge_all({{std::move(event)}});
  correlator_.add(std::move(event));
  return {};
}

}  // namespace rsttrace
