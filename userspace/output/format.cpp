#include "output/format.h"
#include "output/json_writer.h"
#include "attribute/remedy.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <cstdio>
#include <ctime>

namespace rsttrace {

namespace {

constexpr size_t kMaxTimestamp = 40;  // 2026-11-25T10:00:00.000001Z (years past 9999 would take more)

char* put_rfc3339_micro(char* out, uint64_t unix_ns) {
  const time_t seconds = static_cast<time_t>(unix_ns / 1'000'000'000);
  const unsigned micros = static_cast<unsigned>(unix_ns % 1'000'000'000 / 1000);
  // The date and time change once a second; a storm formats thousands per second.
  thread_local time_t cached_second = -1;
  thread_local char prefix[32];
  thread_local size_t prefix_size = 0;
  if (seconds != cached_second) {
    tm utc{};
    gmtime_r(&seconds, &utc);
    const int n = std::snprintf(prefix, sizeof(prefix), "%04d-%02d-%02dT%02d:%02d:%02d.", utc.tm_year + 1900,
                                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
    prefix_size = n < 0 ? 0 : std::min(static_cast<size_t>(n), sizeof(prefix) - 1);
    cached_second = seconds;
  }
  std::memcpy(out, prefix, prefix_size);
  out += prefix_size;
  for (int i = 5, value = static_cast<int>(micros); i >= 0; --i, value /= 10) out[i] = static_cast<char>('0' + value % 10);
  out[6] = 'Z';
  return out + 7;
}

}  // namespace

void append_rfc3339_micro(std::string& out, uint64_t unix_ns) {
  char text[kMaxTimestamp];
  out.append(text, static_cast<size_t>(put_rfc3339_micro(text, unix_ns) - text));
}

std::string format_rfc3339_micro(uint64_t unix_ns) { return appended(append_rfc3339_micro, unix_ns); }

WallClock WallClock::now() {
  timespec mono{}, real{};
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME, &real);
  const int64_t mono_ns = mono.tv_sec * 1'000'000'000LL + mono.tv_nsec;
  const int64_t real_ns = real.tv_sec * 1'000'000'000LL + real.tv_nsec;
  return WallClock{real_ns - mono_ns};
}

namespace {

void write_written_by(JsonObjectWriter& out, const Attribution& report, const WallClock& clock) {
  if (report.written_by) {
    const WrapperOpen& w = *report.written_by;
    JsonObjectWriter by = out.object("written_by");
    by.string("source", "observed")
        .ascii_string("ts", kMaxTimestamp, [&](char* at) { return put_rfc3339_micro(at, clock.unix_ns(w.monotonic_ns)); })
        .number("pid", w.process.pid)
        .untrusted_string("comm", w.process.comm)
        .number("parent_pid", w.parent.pid)
        .untrusted_string("parent_comm", w.parent.comm)
        .untrusted_string("parent_thread", w.parent_thread);
    by.close();
  } else if (report.written_mtime_unix_ns) {
    JsonObjectWriter by = out.object("written_by");
    by.string("source", "mtime").ascii_string("ts", kMaxTimestamp, [&](char* at) {
      return put_rfc3339_micro(at, *report.written_mtime_unix_ns);
    });
    by.close();
  } else {
    out.null("written_by");
  }
}

void write_rule(JsonObjectWriter& out, const std::optional<FirewallRule>& rule, std::string_view key = "rule") {
  if (!rule) {
    out.null(key);
    return;
  }
  JsonObjectWriter r = out.object(key);
  r.string("backend", rule->backend)
      .string("family", rule->family)
      .untrusted_string("table", rule->table)
      .untrusted_string("chain", rule->chain);
  rule->handle ? r.number("handle", *rule->handle) : r.null("handle");
  r.untrusted_string("text", rule->text).string("verdict", rule->verdict);
  rule->packets ? r.number("packets", *rule->packets) : r.null("packets");
  r.boolean("certain", rule->certain);
  rule->certain ? r.null("undecided") : r.untrusted_string("undecided", rule->undecided);
  rule->counter_moved ? r.boolean("counter_moved", *rule->counter_moved) : r.null("counter_moved");
  rule->set_element ? r.untrusted_string("set_element", *rule->set_element) : r.null("set_element");
  r.close();
}

// The front-end behind the block (docs/events.md: blocker).
void write_blocker(JsonObjectWriter& out, const std::optional<Blocker>& blocker) {
  if (!blocker) {
    out.null("blocker");
    return;
  }
  JsonObjectWriter b = out.object("blocker");
  b.string("tool", blocker->tool).untrusted_string("name", blocker->name);
  blocker->rule_number ? b.number("rule_number", *blocker->rule_number) : b.null("rule_number");
  blocker->permanent ? b.boolean("permanent", *blocker->permanent) : b.null("permanent");
  b.close();
}

}  // namespace

std::string Formatter::event_line(const Attribution& report) const {
  std::string line;
  line.reserve(768);
  append_event_line(line, report);
  return line;
}

// tcp_state and kernel_reason as the running kernel names them. A kernel name
// is JSON-escaped like any string; "state 99" / "reason 93" need no escaping.
void Formatter::append_enum_names(JsonObjectWriter& out, const TcpEvent& e) const {
  auto enum_name = [&](std::string_view key, const EnumNames& table, auto value, std::string_view unnamed) {
    if (!value) {
      out.null(key);
    } else if (const std::string* name = table.find(*value)) {
      out.string(key, *name);
    } else {
      out.ascii_string(key, kMaxUnnamed, [&](char* at) { return put_unnamed(at, unnamed, *value); });
    }
  };
  enum_name("tcp_state", names.tcp_states, e.tcp_state, "state");
  enum_name("kernel_reason", e.kind == EventKind::Drop ? names.drop_reasons : names.reset_reasons, e.reason, "reason");
}

void Formatter::append_event_line(std::string& line, const Attribution& report) const {
  const TcpEvent& e = report.event;
  JsonObjectWriter out(line);
  out.string("type", "event")
      .ascii_string("ts", kMaxTimestamp, [&](char* at) { return put_rfc3339_micro(at, clock.unix_ns(e.monotonic_ns)); })
      .string("host", host)
      .string("kind", kind_name(e.kind))
      .string("direction", direction_name(e.kind))
      .number("family", static_cast<uint64_t>(e.family))
      .ascii_string("local_addr", INET6_ADDRSTRLEN, [&](char* at) { return put_address(at, e.family, e.local.addr); })
      .number("local_port", e.local.port)
      .ascii_string("remote_addr", INET6_ADDRSTRLEN, [&](char* at) { return put_address(at, e.family, e.remote.addr); })
      .number("remote_port", e.remote.port)
      .number("netns", e.netns);
  append_enum_names(out, e);
  e.owner ? out.number("pid", e.owner->pid) : out.null("pid");
  e.owner ? out.untrusted_string("comm", e.owner->comm) : out.null("comm");
  out.string("verdict", verdict_name(report.verdict)).string("detail", report.detail);
  // Extensions beyond the core contract (docs/events.md).
  out.string("owner_source", owner_source_name(e.owner_source))
      .number("context_pid", e.context.pid)
      .untrusted_string("context_comm", e.context.comm)
      .number("packets", report.packets);
  e.tcp_flags ? out.ascii_string("tcp_flags", kMaxTcpFlags, [&](char* at) { return put_tcp_flags(at, *e.tcp_flags); })
              : out.null("tcp_flags");
  out.optional_string("peer_saw", report.peer_saw).optional_string("netfilter_hook", report.netfilter_hook);
  // The destination the client dialled, when conntrack's DNAT changed it (IPS_DST_NAT).
  if (e.netfilter && (e.netfilter->ct_status & (1u << 5))) {
    JsonObjectWriter dialled = out.object("original_dst");
    dialled.ascii_string("addr", INET6_ADDRSTRLEN,
                         [&](char* at) { return put_address(at, e.family, e.netfilter->ct_original_daddr); })
        .number("port", e.netfilter->ct_original_dport);
    dialled.close();
  } else {
    out.null("original_dst");
  }
  write_rule(out, report.rule);
  report.fail2ban_jail ? out.untrusted_string("fail2ban_jail", *report.fail2ban_jail) : out.null("fail2ban_jail");
  write_blocker(out, report.blocker);
  if (report.wrapper_rule) {
    JsonObjectWriter rule = out.object("wrapper_rule");
    rule.string("file", report.wrapper_rule->file)
        .number("line", report.wrapper_rule->line)
        .untrusted_string("text", report.wrapper_rule->text);
    rule.close();
  } else {
    out.null("wrapper_rule");
  }
  write_written_by(out, report, clock);
  out.string_array("remedy", remedy_commands(report));
  // Issue 16: one line per connection past its handshake too, and the reset netfilter built here.
  out.number("folded_drops", report.folded_drops);
  report.folded_drops ? out.ascii_string("last_drop_ts", kMaxTimestamp, [&](char* at) {
    return put_rfc3339_micro(at, clock.unix_ns(report.last_folded_ns));
  })
                      : out.null("last_drop_ts");
  if (report.netfilter_reset_drop) {
    const TcpEvent& drop = *report.netfilter_reset_drop;
    JsonObjectWriter built = out.object("netfilter_reset");
    built.number("netns", drop.netns).string("hook", !drop.ingress ? "output" : drop.routed ? "input" : "prerouting");
    write_rule(built, report.reset_rule);
    built.close();
  } else {
    out.null("netfilter_reset");
  }
  if (e.full_socket)
    out.number("bytes_received", e.bytes_received).number("bytes_acked", e.bytes_acked).number("unread_bytes", e.unread_bytes);
  out.close();
}

namespace {

// [{"addr":"192.0.2.7","count":N,"total":M},...] or, for prefixes, "addr" is "192.0.2.0/24".
void append_peer_shares(std::string& json, const std::vector<StormReport::PeerShare>& shares) {
  json += '[';
  for (size_t i = 0; i < shares.size(); ++i) {
    const ClassPeerCount& peer = shares[i].peer;
    json += i ? ",{\"addr\":\"" : "{\"addr\":\"";
    json += class_peer_text(peer);
    json += "\",\"count\":" + std::to_string(shares[i].delta) + ",\"total\":" + std::to_string(peer.count) + '}';
  }
  json += ']';
}

// " top peers 192.0.2.7 (40), ...": the first three of a class storm's.
void append_peer_text(std::string& text, std::string_view what, const std::vector<StormReport::PeerShare>& shares) {
  for (size_t i = 0; i < shares.size() && i < 3; ++i) {
    text += i ? ", " : std::string(", top ") + std::string(what) + " ";
    text += class_peer_text(shares[i].peer);
    text += " (" + std::to_string(shares[i].peer.count) + ")";
  }
}

}  // namespace

void Formatter::append_storm_line(std::string& line, const StormReport& storm) const {
  const Attribution& verdict = *storm.verdict;
  const TcpEvent& e = verdict.event;  // the event that started the storm: same class
  JsonObjectWriter out(line);
  out.string("type", "storm")
      .ascii_string("ts", kMaxTimestamp, [&](char* at) { return put_rfc3339_micro(at, clock.unix_ns(storm.now_monotonic_ns)); })
      .string("host", host)
      .string("state", storm_state_name(storm.state))
      .ascii_string("since", kMaxTimestamp,
                    [&](char* at) { return put_rfc3339_micro(at, clock.unix_ns(storm.since_monotonic_ns)); })
      .number("interval_ms", static_cast<uint64_t>(storm.interval_s * 1000 + 0.5))
      .number("count", storm.count)
      .number("total", storm.total)
      .number("connections", storm.connections)
      .boolean("twin", storm.twin)
      .string("kind", kind_name(e.kind))
      .string("direction", direction_name(e.kind))
      .number("family", static_cast<uint64_t>(e.family))
      .number("port", storm.key.port)
      .string("port_end", storm.key.watched_local ? "local" : "remote");
  if (storm.key.peerless)  // a class storm: many peers, named in top_peers
    out.null("peer_addr");
  else
    out.ascii_string("peer_addr", INET6_ADDRSTRLEN,
                     [&](char* at) { return put_address(at, e.family, storm_peer_address(storm.key)); });
  out.number("netns", storm.key.netns);
  append_enum_names(out, e);
  e.tcp_flags ? out.ascii_string("tcp_flags", kMaxTcpFlags, [&](char* at) { return put_tcp_flags(at, *e.tcp_flags); })
              : out.null("tcp_flags");
  out.string("verdict", verdict_name(verdict.verdict)).string("detail", verdict.detail);
  out.optional_string("peer_saw", verdict.peer_saw).optional_string("netfilter_hook", verdict.netfilter_hook);
  write_rule(out, verdict.rule);
  verdict.fail2ban_jail ? out.untrusted_string("fail2ban_jail", *verdict.fail2ban_jail) : out.null("fail2ban_jail");
  write_blocker(out, verdict.blocker);
  out.string_array("remedy", remedy_commands(verdict));  // the peer the storm names, as on event lines
  // Issue 17, appended: a class storm's top peers and prefixes (null on a peer's storm and on a twin).
  out.boolean("peerless", storm.key.peerless != 0);
  for (const auto& [name, shares] : {std::pair{"top_peers", &storm.top_peers}, std::pair{"top_prefixes", &storm.top_prefixes}}) {
    if (!storm.key.peerless || storm.twin) {
      out.null(name);
      continue;
    }
    const auto* list = shares;  // a structured binding is not captured by lambdas before C++20's clang 16
    out.json_value(name, [list](std::string& json) { append_peer_shares(json, *list); });
  }
  // Appended 2026-12-01: their counts come from 1 in N events (1: exact).
  if (storm.key.peerless && !storm.twin)
    out.number("peer_sampling", static_cast<uint64_t>(storm.peer_sampling));
  else
    out.null("peer_sampling");
  out.close();
}

std::string Formatter::storm_text(const StormReport& storm) const {
  const Attribution& verdict = *storm.verdict;
  std::string text;
  append_rfc3339_micro(text, clock.unix_ns(storm.now_monotonic_ns));
  text += " storm ";
  text += storm_state_name(storm.state);
  text += ": " + std::to_string(storm.count) +
          (verdict.event.kind == EventKind::Drop ? std::string(" packets dropped")
                                                 : " resets " + std::string(direction_name(verdict.event.kind))) +
          " (" + std::to_string(storm.total) + " since ";
  append_rfc3339_micro(text, clock.unix_ns(storm.since_monotonic_ns));
  text += "), port " + std::to_string(storm.key.port);
  if (storm.key.peerless) {
    text += ", many peers";
    append_peer_text(text, "peers", storm.top_peers);
    append_peer_text(text, "prefixes", storm.top_prefixes);
    if (storm.peer_sampling > 1 && !storm.twin)
      text += " (their counts estimated from 1 in " + std::to_string(storm.peer_sampling) + " events)";
  } else {
    text += ", peer ";
    append_address(text, verdict.event.family, storm_peer_address(storm.key));
  }
  if (storm.twin) text += " (the client ends of the connections the sent storm counts)";
  text += ": ";
  text += verdict_name(verdict.verdict);
  text += ": " + verdict.detail;
  append_remedy_text(text, remedy_commands(verdict));
  return text;
}

nlohmann::ordered_json Formatter::event_json(const Attribution& report) const {
  return nlohmann::ordered_json::parse(event_line(report));
}

std::string Formatter::event_text(const Attribution& report) const {
  const TcpEvent& e = report.event;
  std::string line;
  line.reserve(160 + verdict_name(report.verdict).size() + report.detail.size());
  append_rfc3339_micro(line, clock.unix_ns(e.monotonic_ns));  // no space in it: the verdict comes next
  line += ' ';
  line += verdict_name(report.verdict);
  line += ' ';
  line += kind_name(e.kind);
  line += ' ';
  line += direction_name(e.kind);
  line += ' ';
  append_endpoint(line, e.family, e.local);
  line += " <> ";
  append_endpoint(line, e.family, e.remote);
  line += " netns ";
  line += std::to_string(e.netns);
  if (e.tcp_state) {
    line += " state ";
    append_state_name(line, names, e);
  }
  if (e.reason) {
    line += " reason ";
    append_reason_name(line, names, e);
  }
  if (e.owner) {
    line += " owner ";
    append_escaped_untrusted(line, e.owner->comm);
    line += '[';
    line += std::to_string(e.owner->pid);
    line += ']';
  }
  if (report.packets > 1) {
    line += " packets ";
    line += std::to_string(report.packets);
  }
  if (!report.detail.empty()) {
    line += ": ";
    line += report.detail;
  }
  append_remedy_text(line, remedy_commands(report));
  return line;
}

void append_remedy_text(std::string& line, const std::vector<std::string>& commands) {
  // Printable ASCII by construction (text/shell_quote.h): safe in a terminal as is.
  for (size_t i = 0; i < commands.size(); ++i) {
    line += i == 0 ? "; fix: " : " ; ";
    line += commands[i];
  }
}

std::string json_line(const nlohmann::ordered_json& object) {
  return object.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace rsttrace
