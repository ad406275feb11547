#include "output/format.h"
#include "output/json_writer.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cinttypes>
#include <cstdio>
#include <ctime>

namespace rsttrace {

std::string escape_untrusted(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (unsigned char c : bytes) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

std::string format_address(int family, const std::array<uint8_t, 16>& addr) {
  char text[INET6_ADDRSTRLEN] = {};
  if (!inet_ntop(family == 6 ? AF_INET6 : AF_INET, addr.data(), text, sizeof(text))) return "?";
  return text;
}

std::string format_endpoint(int family, const Endpoint& endpoint) {
  const std::string addr = format_address(family, endpoint.addr);
  const std::string port = std::to_string(endpoint.port);
  return family == 6 ? "[" + addr + "]:" + port : addr + ":" + port;
}

std::string format_rfc3339_micro(uint64_t unix_ns) {
  const time_t seconds = static_cast<time_t>(unix_ns / 1'000'000'000);
  const unsigned micros = static_cast<unsigned>(unix_ns % 1'000'000'000 / 1000);
  // The date and time change once a second; a storm formats thousands per second.
  thread_local time_t cached_second = -1;
  thread_local char prefix[64];
  if (seconds != cached_second) {
    tm utc{};
    gmtime_r(&seconds, &utc);
    std::snprintf(prefix, sizeof(prefix), "%04d-%02d-%02dT%02d:%02d:%02d.", utc.tm_year + 1900, utc.tm_mon + 1,
                  utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
    cached_second = seconds;
  }
  std::string text(prefix);
  char digits[7] = {'0', '0', '0', '0', '0', '0', 'Z'};
  for (int i = 5, value = static_cast<int>(micros); i >= 0; --i, value /= 10) digits[i] = static_cast<char>('0' + value % 10);
  text.append(digits, 7);
  return text;
}

std::string format_tcp_flags(uint8_t flags) {
  static constexpr const char* names[8] = {"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"};
  std::string out;
  for (int bit = 0; bit < 8; ++bit) {
    if (!(flags & (1u << bit))) continue;
    if (!out.empty()) out += '|';
    out += names[bit];
  }
  return out.empty() ? "none" : out;
}

std::string_view direction_name(EventKind kind) {
  switch (kind) {
    case EventKind::ResetSent: return "sent";
    case EventKind::ResetReceived: return "received";
    case EventKind::Drop: return "dropped";
  }
  return "?";
}

std::string_view kind_name(EventKind kind) { return kind == EventKind::Drop ? "drop" : "reset"; }

std::string_view owner_source_name(OwnerSource source) {
  switch (source) {
    case OwnerSource::None: return "none";
    case OwnerSource::Connect: return "connect";
    case OwnerSource::Accept: return "accept";
    case OwnerSource::Close: return "close";
    case OwnerSource::Listen: return "listen";
    case OwnerSource::Io: return "io";
  }
  return "?";
}

WallClock WallClock::now() {
  timespec mono{}, real{};
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME, &real);
  const int64_t mono_ns = mono.tv_sec * 1'000'000'000LL + mono.tv_nsec;
  const int64_t real_ns = real.tv_sec * 1'000'000'000LL + real.tv_nsec;
  return WallClock{real_ns - mono_ns};
}

std::optional<std::string> reason_name(const KernelNames& names, const TcpEvent& event) {
  if (!event.reason) return std::nullopt;
  const EnumNames& table = event.kind == EventKind::Drop ? names.drop_reasons : names.reset_reasons;
  if (auto name = table.name(*event.reason)) return name;
  return "reason " + std::to_string(*event.reason);  // a value this kernel's BTF does not name
}

std::optional<std::string> state_name(const KernelNames& names, const TcpEvent& event) {
  if (!event.tcp_state) return std::nullopt;
  if (auto name = names.tcp_states.name(*event.tcp_state)) return name;
  return "state " + std::to_string(*event.tcp_state);
}

namespace {

void write_written_by(JsonObjectWriter& out, const Report& report, const WallClock& clock) {
  if (report.written_by) {
    const WrapperOpen& w = *report.written_by;
    JsonObjectWriter by = out.object("written_by");
    by.string("source", "observed")
        .string("ts", format_rfc3339_micro(clock.unix_ns(w.monotonic_ns)))
        .number("pid", w.process.pid)
        .string("comm", escape_untrusted(w.process.comm))
        .number("parent_pid", w.parent.pid)
        .string("parent_comm", escape_untrusted(w.parent.comm))
        .string("parent_thread", escape_untrusted(w.parent_thread));
    by.close();
  } else if (report.written_mtime_unix_ns) {
    JsonObjectWriter by = out.object("written_by");
    by.string("source", "mtime").string("ts", format_rfc3339_micro(*report.written_mtime_unix_ns));
    by.close();
  } else {
    out.null("written_by");
  }
}

void write_rule(JsonObjectWriter& out, const std::optional<FirewallRule>& rule) {
  if (!rule) {
    out.null("rule");
    return;
  }
  JsonObjectWriter r = out.object("rule");
  r.string("backend", rule->backend)
      .string("family", rule->family)
      .string("table", escape_untrusted(rule->table))
      .string("chain", escape_untrusted(rule->chain));
  rule->handle ? r.number("handle", *rule->handle) : r.null("handle");
  r.string("text", escape_untrusted(rule->text)).string("verdict", rule->verdict);
  rule->packets ? r.number("packets", *rule->packets) : r.null("packets");
  r.boolean("certain", rule->certain);
  r.close();
}

}  // namespace

std::string Formatter::event_line(const Report& report) const {
  const TcpEvent& e = report.event;
  std::string line;
  line.reserve(768);
  JsonObjectWriter out(line);
  out.string("type", "event")
      .string("ts", format_rfc3339_micro(clock.unix_ns(e.monotonic_ns)))
      .string("kind", kind_name(e.kind))
      .string("direction", direction_name(e.kind))
      .number("family", static_cast<uint64_t>(e.family))
      .string("local_addr", format_address(e.family, e.local.addr))
      .number("local_port", e.local.port)
      .string("remote_addr", format_address(e.family, e.remote.addr))
      .number("remote_port", e.remote.port)
      .number("netns", e.netns)
      .optional_string("tcp_state", state_name(names, e))
      .optional_string("kernel_reason", reason_name(names, e));
  e.owner ? out.number("pid", e.owner->pid) : out.null("pid");
  e.owner ? out.string("comm", escape_untrusted(e.owner->comm)) : out.null("comm");
  out.string("verdict", report.verdict).string("detail", report.detail);
  // Extensions beyond the core contract (docs/events.md).
  out.string("owner_source", owner_source_name(e.owner_source))
      .number("context_pid", e.context.pid)
      .string("context_comm", escape_untrusted(e.context.comm))
      .number("packets", report.packets);
  e.tcp_flags ? out.string("tcp_flags", format_tcp_flags(*e.tcp_flags)) : out.null("tcp_flags");
  out.optional_string("peer_saw", report.peer_saw).optional_string("netfilter_hook", report.netfilter_hook);
  write_rule(out, report.rule);
  report.fail2ban_jail ? out.string("fail2ban_jail", escape_untrusted(*report.fail2ban_jail))
                       : out.null("fail2ban_jail");
  if (report.wrapper_rule) {
    JsonObjectWriter rule = out.object("wrapper_rule");
    rule.string("file", report.wrapper_rule->file)
        .number("line", report.wrapper_rule->line)
        .string("text", escape_untrusted(report.wrapper_rule->text));
    rule.close();
  } else {
    out.null("wrapper_rule");
  }
  write_written_by(out, report, clock);
  if (e.full_socket)
    out.number("bytes_received", e.bytes_received).number("bytes_acked", e.bytes_acked).number("unread_bytes", e.unread_bytes);
  out.close();
  return line;
}

nlohmann::ordered_json Formatter::event_json(const Report& report) const {
  return nlohmann::ordered_json::parse(event_line(report));
}

std::string Formatter::event_text(const Report& report) const {
  const TcpEvent& e = report.event;
  std::string line = format_rfc3339_micro(clock.unix_ns(e.monotonic_ns));
  line += ' ';
  line += kind_name(e.kind);
  line += ' ';
  line += direction_name(e.kind);
  line += ' ' + format_endpoint(e.family, e.local) + " <> " + format_endpoint(e.family, e.remote);
  line += " netns " + std::to_string(e.netns);
  if (auto state = state_name(names, e)) line += " state " + *state;
  if (auto reason = reason_name(names, e)) line += " reason " + *reason;
  if (e.owner)
    line += " owner " + escape_untrusted(e.owner->comm) + "[" + std::to_string(e.owner->pid) + "]";
  if (report.packets > 1) line += " packets " + std::to_string(report.packets);
  line.insert(line.find(' ') + 1, report.verdict + " ");
  if (!report.detail.empty()) line += ": " + report.detail;
  return line;
}

std::string json_line(const nlohmann::ordered_json& object) {
  return object.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace rsttrace
