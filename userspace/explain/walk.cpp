#include "explain/walk.h"

#include <arpa/inet.h>

#include <cstdio>
#include <ctime>
#include <cstring>

#include "text/escape.h"

namespace rsttrace::explain {
namespace {

std::string client_text(const ClientAddress& client) {
  Endpoint endpoint{};
  endpoint.addr = client.addr;
  endpoint.port = client.port;
  return client.port ? format_endpoint(client.family, endpoint) : format_address(client.family, client.addr);
}

std::string server_text(const Facts& facts) {
  const bool v6 = facts.server_address.find(':') != std::string::npos;
  return (v6 ? "[" + facts.server_address + "]" : facts.server_address) + ":" + std::to_string(facts.port);
}

bool is_sshd(const ListenerProcess& process) {
  return process.exe.rfind("sshd", 0) == 0 || process.comm.rfind("sshd", 0) == 0;
}

Step routing_step(const Facts& facts) {
  const RoutingFacts& r = facts.routing;
  if (!r.known) return {"routing", "unknown", false, "the route back to the client was not read: " + r.error};
  const std::string rp = "rp_filter all=" + std::to_string(r.rp_filter_all) + " " + escape_untrusted(r.reply_interface) +
                         "=" + std::to_string(r.rp_filter_interface) + " (the larger applies)";
  if (r.route_type == "local")
    return {"routing", "pass", true,
            format_address(facts.client.family, facts.client.addr) +
                " is an address of this namespace: its SYN comes in on lo, where rp_filter does not apply"};
  if (r.route_type != "unicast") {
    const int rp_filter = std::max(r.rp_filter_all, r.rp_filter_interface);
    const std::string what = "no route back to the client (route type " + r.route_type + ")";
    if (rp_filter > 0)
      return {"routing", "block", false, what + ": rp_filter drops its SYN (IP_RPFILTER); " + rp};
    return {"routing", "pass", false, what + ": the SYN is taken (rp_filter off) but no SYN-ACK can go back; " + rp};
  }
  return {"routing", "pass", true,
          "a reply to the client leaves by " + escape_untrusted(r.reply_interface) + " from " + r.local_address + "; " + rp +
              ": strict mode (1) drops a SYN that arrives by another interface, and the interface a remote packet "
              "arrives by cannot be known here"};
}

Step firewall_step(const Facts& facts, std::string& front_end) {
  if (!facts.firewall_read) return {"firewall", "unknown", false, "the rulesets were not read"};
  std::string hooks;
  for (const std::string& hook : facts.hooks) hooks += (hooks.empty() ? "" : ", ") + hook;
  const std::string port_note = facts.client.port ? "" : "; no source port given: 40000 assumed for rules that match it";
  const std::string skipped = facts.firewall_notes.empty() ? "" : "; " + std::to_string(facts.firewall_notes.size()) +
                                                                      " ruleset parts skipped, the first: " +
                                                                      escape_untrusted(facts.firewall_notes[0]);
  if (!facts.rule)
    return {"firewall", "pass", facts.firewall_notes.empty(),
            "no nftables, iptables-nft or iptables-legacy rule drops or rejects a SYN from " + client_text(facts.client) +
                " to " + server_text(facts) + " (hooks " + hooks + ")" + port_note + skipped};
  const FirewallRule& rule = *facts.rule;
  front_end = firewall_front_end(rule);
  std::string detail = std::string(rule.certain ? "" : "probably ") + rule.backend + " " + rule.family + " " +
                       escape_untrusted(rule.table) + " " + escape_untrusted(rule.chain) +
                       (rule.handle ? " handle " + std::to_string(*rule.handle) : "") + ": " + escape_untrusted(rule.text) +
                       " (" + rule.verdict + "; written by " + escape_untrusted(front_end) +
                       (rule.blocker ? ": " + escape_untrusted(rule.blocker->name) : "") +
                       (rule.blocker && rule.blocker->rule_number ? " rule " + std::to_string(*rule.blocker->rule_number) : "") +
                       ")";
  if (!rule.certain)
    detail += ": " + (rule.undecided.empty() ? std::string("a match on its path") : escape_untrusted(rule.undecided)) +
              " could not be evaluated, so this rule is the first candidate";
  return {"firewall", "block", rule.certain, detail + port_note + skipped};
}

Step listener_step(const Facts& facts) {
  const ListenerFacts& l = facts.listener;
  if (!l.read) return {"listener", "unknown", false, "the namespace's sockets were not read: " + l.error};
  if (!l.listening)
    return {"listener", "block", true,
            "nothing listens on " + server_text(facts) + ": the kernel answers the SYN with a reset (NO_SOCKET)"};
  std::string who;
  bool systemd = false;
  for (const ListenerProcess& p : l.processes) {
    if (who.size() > 400) {
      who += ", ...";
      break;
    }
    who += (who.empty() ? "" : ", ") + escape_untrusted(p.comm) + "[" + std::to_string(p.pid) + "]";
    if (!p.title.empty()) who += " \"" + escape_untrusted(p.title) + "\"";
    systemd |= p.pid == 1;
  }
  if (who.empty()) who = "no process found holding it";
  std::string detail = escape_untrusted(l.bound) + " listens, held by " + who;
  if (systemd) detail += "; socket activation: systemd holds the socket and starts the service per connection";
  if (!l.backlog)  // /proc/net/tcp gives a listener's queue, not its backlog: a full queue cannot be told from there
    return {"listener", "pass", true,
            detail + "; " + std::to_string(l.accept_queue) + " connections wait to be accepted (its backlog is not "
                     "known: read from " + escape_untrusted(l.sockets_source) + "; a full queue would drop the SYN, LISTENOVERFLOWS)"};
  const std::string queue = std::to_string(l.accept_queue) + " waiting, backlog " + std::to_string(*l.backlog) + " (sock_diag)";
  // The kernel drops a SYN to a listener whose queue is over its backlog (sk_acceptq_is_full):
  // LISTENOVERFLOWS. Probable: the queue drains as soon as the listener accepts again.
  if (l.accept_queue > *l.backlog)
    return {"listener", "block", false,
            detail + "; its accept queue is full: " + queue +
                ": the kernel drops the SYN (LISTENOVERFLOWS) until the listener accepts; it is not accepting now"};
  return {"listener", "pass", true, detail + "; " + queue};
}

// "PerSourcePenalties crash:90 ... (sshd -T)", "PerSourcePenalties no (sshd -T)", or none before 9.8.
std::string configured_penalties(const SshdLimits& limits) {
  if (!limits.penalties_line) return "this sshd has no PerSourcePenalties (before OpenSSH 9.8; sshd -T)";
  if (!limits.penalties) return "PerSourcePenalties no (sshd -T)";
  const SourcePenalties& p = *limits.penalties;
  char text[160];
  std::snprintf(text, sizeof(text), "crash:%g authfail:%g noauth:%g grace-exceeded:%g max:%g min:%g", p.crash,
                p.authfail, p.noauth, p.grace_exceeded, p.max, p.min);
  return std::string("PerSourcePenalties ") + text + ", PerSourceNetBlockSize " + std::to_string(limits.netblock4) +
         ":" + std::to_string(limits.netblock6) + " (sshd -T)";
}

Step sshd_step(const Facts& facts) {
  const ListenerProcess* sshd = nullptr;
  for (const ListenerProcess& p : facts.listener.processes)
    if (is_sshd(p) && (!sshd || p.title.find("[listener]") != std::string::npos)) sshd = &p;
  if (!facts.listener.listening) return {"sshd", "skip", true, "no listener"};
  if (!sshd) return {"sshd", "skip", true, "the listener is not sshd"};
  const SshdLogFacts& log = facts.sshd_log;
  const std::string address = format_address(facts.client.family, facts.client.addr);
  std::string penalties;
  if (!log.read) {
    penalties = "PerSourcePenalties (OpenSSH 9.8+) live in sshd's memory and its log was not read: " +
                escape_untrusted(log.note) + " (the journal is not read)";
  } else {
    const std::string read = "read " + std::to_string(log.lines) + " lines of sshd's log, " + escape_untrusted(log.source) +
                             ", " + std::to_string(log.penalty_lines) + " of them PerSourcePenalties lines";
    if (log.penalty.state == PenaltyVerdict::State::Active) {
      const std::string left = log.penalty.seconds_left ? "at least " + std::to_string(*log.penalty.seconds_left) + " s left"
                                                         : "time left unknown";
      // Probable: the log is sshd's word, its memory the truth (a penalty may have been cut short
      // by a full table, or an address exempted since).
      return {"sshd", "block", false,
              "PerSourcePenalties: a " + escape_untrusted(log.penalty.penalty_class) + " penalty holds " + address + " (" +
                  left + "): " + escape_untrusted(log.penalty.evidence) + ": the listener refuses its connections (" +
                  read + ")"};
    }
    penalties = log.penalty.state == PenaltyVerdict::State::Expired
                    ? "PerSourcePenalties: " + escape_untrusted(log.penalty.evidence) + " (" + read + ")"
                    : "PerSourcePenalties: no penalty for " + address + " in its log (" + read +
                          "; below LogLevel VERBOSE sshd logs only the refusals)";
  }
  // The settings from the listener's own sshd -T, as the collector's verdicts quote them; the
  // count of pre-auth connections only its title gives (sshd keeps it in its memory).
  const SshdLimitsSource* settings =
      facts.sshd_settings && facts.sshd_settings->from_sshd ? &*facts.sshd_settings : nullptr;
  if (settings) penalties = configured_penalties(settings->limits) + "; " + penalties;
  const std::string not_run = facts.sshd_settings ? facts.sshd_settings->not_run_reason : "not asked";
  const auto startups = parse_listener_title(sshd->title);
  if (!startups)
    return {"sshd", "unknown", false,
            (settings ? "MaxStartups " + settings->limits.max_startups_text() + " (sshd -T), but the listener's title"
                      : "the listener's title") +
                " gives no count of its pre-auth connections (\"[listener] N of S-F startups\"), so whether MaxStartups "
                "is full cannot be judged" + (settings ? "" : " (sshd -T not run: " + not_run + ")") + "; " + penalties};
  Startups limit = *startups;
  std::string configured;
  if (!settings) {
    configured = "MaxStartups " + std::to_string(limit.start) + ":" + std::to_string(limit.rate.value_or(100)) + ":" +
                 std::to_string(limit.full) + " by its title (sshd -T not run: " + not_run + ")";
  } else if (settings->limits.max_startups_start != limit.start || settings->limits.max_startups_full != limit.full ||
             (limit.rate && *limit.rate != settings->limits.max_startups_rate)) {
    // sshd -T reads the configuration as it is now; the running listener keeps what it read at
    // its start (or last SIGHUP), which its title shows: judge by those.
    configured = "MaxStartups start " + std::to_string(limit.start) + ", full " + std::to_string(limit.full) +
                 " by its title, while sshd -T reads " + settings->limits.max_startups_text() +
                 " (the configuration changed since it started: a restart or SIGHUP applies it)";
  } else {
    configured = "MaxStartups " + settings->limits.max_startups_text() + " (sshd -T)";
    limit.rate = settings->limits.max_startups_rate;
  }
  const std::string word = configured + ", " + std::to_string(limit.current) +
                           " pre-auth connections by the listener's own title (its own word)";
  if (limit.current >= limit.full)
    return {"sshd", "block", false, "MaxStartups is full: " + word + ": the listener closes the next connection; " + penalties};
  if (limit.current >= limit.start)
    return {"sshd", "pass", false,
            "MaxStartups drops some connections: " + word + ": the next is refused at random; " + penalties};
  // Not certain: a penalty the listener holds for the client would refuse it all the same.
  return {"sshd", "pass", false, "MaxStartups has room: " + word + "; " + penalties};
}

Step wrappers_step(const Facts& facts) {
  if (!facts.wrappers) return {"tcp-wrappers", "skip", true, facts.wrappers_note};
  const AccessDecision& d = *facts.wrappers;
  std::string notes;
  for (const std::string& note : d.notes) notes += "; " + escape_untrusted(note);
  const std::string assumed = facts.wrappers_note.empty() ? "" : " (" + facts.wrappers_note + ")";
  if (!d.allowed && d.rule)
    return {"tcp-wrappers", "block", d.certain,
            "refused by " + escape_untrusted(d.rule->file) + " line " + std::to_string(d.rule->line) + ": " +
                escape_untrusted(d.rule->text) + assumed + notes};
  if (d.rule)
    return {"tcp-wrappers", "pass", d.certain,
            "allowed by " + escape_untrusted(d.rule->file) + " line " + std::to_string(d.rule->line) + ": " +
                escape_untrusted(d.rule->text) + assumed + notes};
  return {"tcp-wrappers", "pass", d.certain, "no hosts.allow or hosts.deny line matches: allowed" + assumed + notes};
}

Step bans_step(const Facts& facts) {
  const BanFacts& b = facts.bans;
  std::string detail;
  if (!b.asked) {
    detail = "fail2ban was not asked: " + b.note;
  } else if (b.jails.empty()) {
    detail = "fail2ban bans it in no jail";
  } else {
    detail = "fail2ban bans it in jail";
    for (size_t i = 0; i < b.jails.size(); ++i) {
      const std::string left = i < b.time_left.size() ? b.time_left[i] : "";
      detail += (i ? ", " : " ") + escape_untrusted(b.jails[i]) +
                (left.empty() ? " (time left unknown)" : " for " + escape_untrusted(left) + " more");
    }
  }
  // sshg-blocker keeps its bans' times in its memory alone (no socket, no file but
  // BLACKLIST_FILE's permanent ones): the time left cannot be asked, only the block seen.
  const bool sshguard = facts.rule && facts.rule->blocker && facts.rule->blocker->tool == "sshguard";
  if (sshguard)
    detail += "; sshguard blocks it (" + escape_untrusted(facts.rule->blocker->name) +
              ", the firewall rule above): the time left is not known, sshguard keeps it in its memory only (its "
              "BLOCK_TIME, 120 s by default, longer for a repeat offender; never for a BLACKLIST_FILE address)";
  else
    detail += "; sshguard keeps no queryable state: a ban of its would show as the firewall rule above (its table "
              "sshguard, chain sshguard or ipsets sshguard4/6)";
  return {"bans", "info", true, detail};
}

uint32_t number(const std::string& text, size_t& at, bool& ok) {
  uint64_t value = 0;
  size_t digits = 0;
  while (at < text.size() && text[at] >= '0' && text[at] <= '9' && digits < 10) value = value * 10 + (text[at++] - '0'), ++digits;
  ok &= digits > 0 && value <= UINT32_MAX;
  return static_cast<uint32_t>(value);
}

}  // namespace

std::optional<std::string> ban_time_left(const std::string& answer, const std::string& address, int64_t now_unix) {
  // One line per ban: "192.0.2.7 \t2026-11-30 16:00:00 + 600 = 2026-11-30 16:10:00" (or a list of such strings).
  size_t at = 0;
  while ((at = answer.find(address, at)) != std::string::npos) {
    const bool starts = at == 0 || std::string(" \t\n['\"").find(answer[at - 1]) != std::string::npos;
    const size_t after = at + address.size();
    at = after;
    if (!starts || after >= answer.size() || (answer[after] != ' ' && answer[after] != '\t')) continue;
    const size_t equals = answer.find(" = ", after);
    if (equals == std::string::npos || equals - after > 80) return std::nullopt;
    const std::string end = answer.substr(equals + 3, 19);
    std::tm tm{};
    if (end.size() != 19 || !strptime(end.c_str(), "%Y-%m-%d %H:%M:%S", &tm)) return std::nullopt;
    tm.tm_isdst = -1;
    const int64_t until = static_cast<int64_t>(mktime(&tm));
    const int64_t left = until > now_unix ? until - now_unix : 0;
    std::string text = left >= 3600 ? std::to_string(left / 3600) + " h " + std::to_string(left % 3600 / 60) + " min"
                       : left >= 60 ? std::to_string(left / 60) + " min " + std::to_string(left % 60) + " s"
                                    : std::to_string(left) + " s";
    return text + " (until " + end + ")";
  }
  return std::nullopt;
}

std::optional<Startups> parse_listener_title(const std::string& title) {
  const size_t mark = title.find("[listener] ");
  if (mark == std::string::npos) return std::nullopt;
  size_t at = mark + 11;
  bool ok = true;
  Startups s;
  s.current = number(title, at, ok);
  if (!ok || title.compare(at, 4, " of ") != 0) return std::nullopt;
  at += 4;
  s.start = number(title, at, ok);
  if (!ok || at >= title.size() || title[at] != '-') return std::nullopt;
  ++at;
  const uint32_t second = number(title, at, ok);
  if (!ok) return std::nullopt;
  if (at < title.size() && title[at] == '-') {
    ++at;
    s.rate = second;
    s.full = number(title, at, ok);
    if (!ok) return std::nullopt;
  } else {
    s.full = second;
  }
  if (title.compare(at, 9, " startups") != 0) return std::nullopt;
  return s;
}


std::string verdict_text(const Explanation& explanation) {
  return explanation.allowed ? "allowed" : std::string(verdict_name(explanation.attribution.verdict));
}

Explanation explain_facts(const Facts& facts) {
  Explanation out;
  std::string front_end;
  out.steps = {routing_step(facts), firewall_step(facts, front_end), listener_step(facts), sshd_step(facts),
               wrappers_step(facts), bans_step(facts)};
  Attribution& a = out.attribution;
  a.event.family = facts.client.family;
  a.event.remote.addr = facts.client.addr;
  a.event.remote.port = facts.client.port;
  a.event.local.port = facts.port;
  a.event.netns = facts.netns;
  if (inet_pton(facts.client.family == 6 ? AF_INET6 : AF_INET, facts.server_address.c_str(), a.event.local.addr.data()) != 1)
    a.event.local.addr = {};
  const std::optional<std::string> banned_by =
      facts.bans.jails.empty() ? std::nullopt : std::optional<std::string>(facts.bans.jails.front());
  for (const Step& step : out.steps) {
    if (step.result == "unknown") out.certain = false;
    // An "allowed" is only as sure as every step that let it pass (sshd's penalties are not known).
    if (step.result == "pass" && !step.certain && out.allowed) out.certain = false;
    if (step.result != "block") continue;
    out.allowed = false;
    out.certain &= step.certain;
    a.detail = step.detail;
    if (step.name == "routing") {
      a.verdict = Verdict::Kernel;
    } else if (step.name == "firewall") {
      a.verdict = Verdict::Firewall;
      a.rule = facts.rule;
      a.blocker = facts.rule->blocker;
      a.fail2ban_jail = facts.rule->fail2ban_jail ? facts.rule->fail2ban_jail : banned_by;
      if (a.blocker && a.blocker->tool == "fail2ban") a.fail2ban_jail = a.blocker->name;
      if (!a.blocker && a.fail2ban_jail) a.blocker = Blocker{"fail2ban", *a.fail2ban_jail, std::nullopt};
      out.front_end = a.fail2ban_jail ? "fail2ban" : front_end;
    } else if (step.name == "listener") {
      a.verdict = facts.listener.listening ? Verdict::Kernel : Verdict::NoListener;
    } else if (step.name == "sshd") {
      a.verdict = Verdict::Sshd;
      out.front_end = "sshd";
    } else if (step.name == "tcp-wrappers") {
      a.verdict = Verdict::TcpWrappers;
      a.wrapper_rule = facts.wrappers->rule;
      a.fail2ban_jail = banned_by;
      if (banned_by) a.blocker = Blocker{"fail2ban", *banned_by, std::nullopt};
      out.front_end = banned_by ? "fail2ban" : "tcp-wrappers";
    }
    break;
  }
  RemedyContext context;
  context.penalties_known = a.verdict == Verdict::Sshd && facts.sshd_log.penalty.state == PenaltyVerdict::State::Active;
  if (!out.allowed) out.remedy = remedy_commands(a, context);
  return out;
}

}  // namespace rsttrace::explain
