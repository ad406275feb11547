#include "attribute/attributor.h"

#include "attribute/rules.h"

#include <sys/stat.h>

#include <ctime>
#include "output/format.h"
#include "privsep/safe_access.h"

namespace rsttrace {
namespace {

std::string process_text(const Process& process) {
  return escape_untrusted(process.comm) + "[" + std::to_string(process.pid) + "]";
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
                       CorrelatorSettings settings, Provenance* provenance)
    : names_(names), watched_ports_(std::move(watched_ports)), raw_(raw), correlator_(settings),
      provenance_(provenance) {}

namespace {

// 0xEFFFFFFD: PROC_USER_INIT_INO, the initial user namespace (without provenance to ask).
constexpr uint32_t kInitialUserNs = 0xEFFFFFFDu;

// What a process in a user namespace of its own says (its name, its threads'
// names, its files) is that user's word: shown as such, never acted on.
std::string own_word(uint32_t user_ns, uint32_t uid) {
  return " (in user namespace " + std::to_string(user_ns) + ", uid " + std::to_string(uid) + ": its own word)";
}

}  // namespace

void Attributor::add_provenance(Report& report) {
  const uint32_t host_user_ns = provenance_ ? provenance_->host_user_ns() : kInitialUserNs;
  std::string reader_word;  // set when the refusing process speaks for itself
  if (report.verdict == "tcp-wrappers") {
    const auto check = evidence_.wrapper_check(report.wrapper_pid, 0, UINT64_MAX);
    if (check && check->user_ns != host_user_ns) {
      reader_word = own_word(check->user_ns, check->uid);
      report.detail += "; the process that read the wrapper files runs" + reader_word;
    }
    report.written_by = evidence_.last_writer(report.wrapper_mnt_ns, WrapperFile::HostsDeny);
    if (report.written_by) {
      const WrapperOpen& writer = *report.written_by;
      const bool writer_speaks_for_itself = writer.user_ns != host_user_ns;
      report.detail += "; /etc/hosts.deny last written by " + escape_untrusted(writer.process.comm) + "[" +
                       std::to_string(writer.process.pid) + "], child of " + escape_untrusted(writer.parent.comm) +
                       "[" + std::to_string(writer.parent.pid) + "] (thread " + escape_untrusted(writer.parent_thread) + ")";
      if (writer_speaks_for_itself) {
        // Its thread names (f2b/a.<jail>) are its own: no jail is inferred, fail2ban is not asked.
        report.detail += own_word(writer.user_ns, writer.uid);
      } else {
        report.fail2ban_jail =
            provenance_ ? provenance_->fail2ban_jail_of_writer(writer, format_address(report.event.family, report.event.remote.addr))
                        : Provenance::fail2ban_jail_from_thread(writer);
      }
      if (report.fail2ban_jail)
        report.detail += " (fail2ban jail " + escape_untrusted(*report.fail2ban_jail) + ")";
      else if (!writer_speaks_for_itself && writer.parent_thread.starts_with("f2b/a."))
        // A cut name, and no fail2ban at its fixed socket here to ask (another mount namespace).
        report.detail += " (a fail2ban jail whose name starts with " + escape_untrusted(writer.parent_thread.substr(6)) +
                         ": fail2ban was not asked)";
    }
  }
  if (!provenance_) return;
  if (report.verdict == "tcp-wrappers") {
    const std::string root =
        provenance_->mount_root(report.wrapper_mnt_ns, report.event.acceptor_pid ? report.event.acceptor_pid : report.wrapper_pid);
    // The files as the refused process saw them (its mount namespace), read now.
    AccessClient client;
    client.daemon = report.event.owner ? report.event.owner->comm : "sshd";
    client.address = format_address(report.event.family, report.event.remote.addr);
    client.server_address = format_address(report.event.family, report.event.local.addr);
    client.server_port = report.event.local.port;
    if (!root.empty()) {
      bool unread = false;  // some file could not be opened (missing, refused, no openat2)
      const AccessDecision decision = decide_access_from_files(client, root, [this, &unread](const std::string& path) {
        auto text = provenance_->access().read_file(path);
        unread |= !text;
        return text;
      });
      if (!decision.allowed && decision.rule) {
        report.wrapper_rule = decision.rule;
        report.detail += "; refused by " + decision.rule->file + " line " + std::to_string(decision.rule->line) + ": " +
                         escape_untrusted(decision.rule->text) + reader_word;
      } else if (unread && !openat2_supported()) {
        // Without openat2 (5.6+) a process's files cannot be opened inside its root only: refused.
        report.detail += "; the wrapper files were not read: this kernel has no openat2() (5.6+), which rsttrace "
                         "needs to open a process's files without following its links out of its root";
      } else {
        report.detail += "; the wrapper files allow " + client.address + " now (changed since?)";
      }
    }
    const auto st = report.written_by || root.empty() ? std::nullopt : provenance_->access().stat_file(root + "/etc/hosts.deny");
    if (st)
      report.written_mtime_unix_ns = static_cast<uint64_t>(st->st_mtim.tv_sec) * 1'000'000'000ULL + st->st_mtim.tv_nsec;
  }
  if (report.verdict == "firewall" && report.netfilter_hook) {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    report.rule = provenance_->dropping_rule(report.event, *report.netfilter_hook,
                                             static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ULL + now.tv_nsec);
    if (!report.rule) {
      report.detail += provenance_->access().available()
                           ? "; no rule in the namespace's nftables or iptables rulesets drops it now (changed since?)"
                           : "; provenance unavailable (broker exited)";
      return;
    }
    const FirewallRule& rule = *report.rule;
    report.fail2ban_jail = rule.fail2ban_jail;
    report.detail += std::string("; ") + (rule.certain ? "rule" : "probably the rule") + ": " + rule.backend + " " +
                     rule.family + " " + escape_untrusted(rule.table) + " " + escape_untrusted(rule.chain) +
                     (rule.handle ? " handle " + std::to_string(*rule.handle) : "") + ": " + escape_untrusted(rule.text);
    if (rule.fail2ban_jail) report.detail += " (fail2ban jail " + escape_untrusted(*rule.fail2ban_jail) + ")";
  }
}

bool Attributor::finish(const std::vector<TcpEvent>& group, std::optional<Report>& report) {
  if (report) {
    add_provenance(*report);
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
    add_provenance(*report);
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
