#include "provenance/enrich.h"

#include <regex>

#include "attribute/rules.h"
#include "clock.h"
#include "privsep/safe_access.h"
#include "provenance/hosts_access.h"
#include "text/escape.h"

namespace rsttrace {
namespace {

void add_fail2ban_jail(Attribution& report, Provenance& provenance) {
  if (!report.written_by || report.writer_speaks_for_itself || report.fail2ban_jail) return;
  const WrapperOpen& writer = *report.written_by;
  report.fail2ban_jail =
      provenance.fail2ban_jail_of_writer(writer, format_address(report.event.family, report.event.remote.addr));
  if (report.fail2ban_jail) {
    report.blocker = Blocker{"fail2ban", *report.fail2ban_jail, std::nullopt};
    report.detail += " (fail2ban jail " + escape_untrusted(*report.fail2ban_jail) + ")";
  }
  else if (writer.parent_thread.starts_with("f2b/a."))
    // A cut name, and no fail2ban at its fixed socket here to ask (another mount namespace).
    report.detail += " (a fail2ban jail whose name starts with " + escape_untrusted(writer.parent_thread.substr(6)) +
                     ": fail2ban was not asked)";
}

void add_wrapper_line(Attribution& report, Provenance& provenance) {
  const std::string root = provenance.mount_root(
      report.wrapper_mnt_ns, report.event.acceptor_pid ? report.event.acceptor_pid : report.wrapper_pid);
  // The files as the refused process saw them (its mount namespace), read now.
  AccessClient client;
  // libwrap's daemon name: sshd's own name; OpenSSH 9.8+'s sshd-session (Debian's
  // libwrap patch) and the command a twist left behind (sh) judged as sshd.
  const std::string* owner = report.event.owner ? &report.event.owner->comm : nullptr;
  client.daemon = owner && is_sshd_family(*owner) && *owner != "sshd-session" && *owner != "sshd-auth" ? *owner : "sshd";
  client.address = format_address(report.event.family, report.event.remote.addr);
  client.server_address = format_address(report.event.family, report.event.local.addr);
  client.server_port = report.event.local.port;
  if (!root.empty()) {
    bool unread = false;  // some file could not be opened (missing, refused, no openat2)
    const AccessDecision decision =
        decide_access_from_files(client, root, [&provenance, &unread](const std::string& path) {
          auto text = provenance.access().read_file(path);
          unread |= !text;
          return text;
        });
    if (!decision.allowed && decision.rule) {
      report.wrapper_rule = decision.rule;
      report.detail += "; refused by " + decision.rule->file + " line " + std::to_string(decision.rule->line) + ": " +
                       escape_untrusted(decision.rule->text) + report.wrapper_reader_note;
      // The line's options in words (twist, spawn: their commands are the file's text, never run).
      for (const std::string& note : decision.option_notes) report.detail += " (" + escape_untrusted(note) + ")";
    } else if (unread && !provenance.access().available()) {
      report.detail += "; provenance unavailable (broker exited)";
    } else if (unread && !openat2_supported()) {
      // Without openat2 (5.6+) a process's files cannot be opened inside its root only: refused.
      report.detail += "; the wrapper files were not read: this kernel has no openat2() (5.6+), which rsttrace "
                       "needs to open a process's files without following its links out of its root";
    } else {
      report.detail += "; the wrapper files allow " + client.address + " now (changed since?)";
    }
  }
  const auto st = report.written_by || root.empty() ? std::nullopt
                                                    : provenance.access().stat_file(root + "/etc/hosts.deny");
  if (st)
    report.written_mtime_unix_ns =
        static_cast<uint64_t>(st->st_mtim.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(st->st_mtim.tv_nsec);
}

// What a rejecting rule sends the client, from its own text (nft `reject
// with icmp port-unreachable`, iptables `--reject-with tcp-reset`), and what
// the client then reads: a reset or ICMP is no tracepoint event on this host.
std::string reject_answer(const FirewallRule& rule) {
  if (rule.verdict != "reject") return "";
  static const std::regex nft_with(" reject with (icmpx|icmpv6|icmp|tcp) ([a-z-]{1,32})"),
      iptables_with(" --reject-with ([a-z0-9-]{1,40})");
  std::smatch m;
  std::string answer;
  if (std::regex_search(rule.text, m, nft_with))
    answer = m[1] == "tcp" ? "a TCP reset" : "ICMP " + m[2].str();
  else if (std::regex_search(rule.text, m, iptables_with))
    answer = m[1] == "tcp-reset" ? "a TCP reset" : "ICMP " + std::regex_replace(m[1].str(), std::regex("^icmp6?-"), "");
  else
    answer = "ICMP port-unreachable";  // both tools' default
  const bool refused = answer == "a TCP reset" || answer.find("port-unreachable") != std::string::npos;
  return "; the rule answers with " + answer + ": the client reads \"" +
         (refused ? "Connection refused" : "No route to host") + "\"";
}

// "; rule: nftables inet t c handle 3: <text>", "probably the rule" when not certain.
std::string rule_words(const FirewallRule& rule) {
  return std::string("; ") + (rule.certain ? "rule" : "probably the rule") + ": " + rule.backend + " " + rule.family +
         " " + escape_untrusted(rule.table) + " " + escape_untrusted(rule.chain) +
         (rule.handle ? " handle " + std::to_string(*rule.handle) : "") + ": " + escape_untrusted(rule.text);
}

void add_firewall_rule(Attribution& report, Provenance& provenance) {
  report.rule = provenance.dropping_rule(report.event, *report.netfilter_hook, monotonic_now_ns());
  if (!report.rule) {
    const std::string failure = provenance.ruleset_reader_failure(report.event.netns);
    if (!failure.empty()) {
      report.detail += "; " + failure + " (and nothing read without it names a rule)";
      return;
    }
    report.detail += provenance.access().available()
                         ? "; no rule in the namespace's nftables or iptables rulesets drops it now (changed since?)"
                         : "; provenance unavailable (broker exited)";
    return;
  }
  const FirewallRule& rule = *report.rule;
  report.fail2ban_jail = rule.fail2ban_jail;
  report.blocker = rule.blocker;
  report.detail += rule_words(rule);
  // nft crashed: nf_tables was read over netlink, the rule's text written by rsttrace from its expressions.
  if (rule.backend != "iptables-legacy")
    if (const std::string failure = provenance.ruleset_reader_failure(report.event.netns); !failure.empty())
      report.detail += " (read over netlink: " + failure + ")";
  if (rule.fail2ban_jail) report.detail += " (fail2ban jail " + escape_untrusted(*rule.fail2ban_jail) + ")";
  else if (rule.blocker)
    report.detail += " (written by " + rule.blocker->tool + ": " + escape_untrusted(rule.blocker->name) +
                     (rule.blocker->rule_number ? " rule " + std::to_string(*rule.blocker->rule_number) : "") + ")";
  if (!rule.certain) report.detail += " (not certain: could not evaluate " + escape_untrusted(rule.undecided) + ")";
  report.detail += reject_answer(rule);
}

// The listener's refusal judged again against that sshd's own limits.
void add_sshd_limits(Attribution& report, Provenance& provenance) {
  const ListenerRefusal& refusal = *report.sshd_refusal;
  report.detail = refusal.said_before + listener_refusal_cause(refusal, provenance.sshd_limits(refusal.listener_pid));
}

// A LoginGraceTime line with the listener's own setting (sshd -T), where it can be had.
void add_login_grace(Attribution& report, Provenance& provenance) {
  const LoginGraceNote& note = *report.login_grace;
  const SshdLimitsSource source = provenance.sshd_limits(note.listener_pid);
  report.detail = note.said_before + login_grace_words(note.grace, &source) + note.said_after;
}

// The rule that built a reset the client end received (issue 16): the rule
// that dropped the connection's packet at the other end, in its namespace.
void add_reset_rule(Attribution& report, Provenance& provenance) {
  const TcpEvent& drop = *report.netfilter_reset_drop;
  report.reset_rule = provenance.dropping_rule(drop, drop.routed ? "input" : "prerouting", monotonic_now_ns());
  if (!report.reset_rule) {
    report.detail += "; no rule in netns " + std::to_string(drop.netns) + " drops it now (changed since?)";
    return;
  }
  const FirewallRule& rule = *report.reset_rule;
  report.detail += rule_words(rule);
  if (!rule.certain) report.detail += " (not certain: could not evaluate " + escape_untrusted(rule.undecided) + ")";
}

}  // namespace

// Each lookup runs for the facts that call for it, whatever the verdict: a
// process that read the wrapper files (wrapper_pid) and a netfilter hook that
// dropped a packet (netfilter_hook) are set by the rules that found them.
void add_system_provenance(Attribution& report, Provenance& provenance) {
  if (report.wrapper_pid) {
    add_fail2ban_jail(report, provenance);
    add_wrapper_line(report, provenance);
  }
  if (report.netfilter_hook) add_firewall_rule(report, provenance);
  if (report.sshd_refusal) add_sshd_limits(report, provenance);
  if (report.login_grace) add_login_grace(report, provenance);
  if (report.netfilter_reset_drop) add_reset_rule(report, provenance);
  report.needs_provenance = false;
}

}  // namespace rsttrace
