#include "output/format.h"
#include "output/json_writer.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <cstdio>
#include <ctime>

namespace rsttrace {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

// Decimal digits of `value` at `out`; returns the end.
char* put_decimal(char* out, unsigned value) {
  char digits[10];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value);
  while (n) *out++ = digits[--n];
  return out;
}

char* put_ipv4(char* out, const uint8_t* addr) {  // inet_ntop's "%u.%u.%u.%u"
  for (int i = 0; i < 4; ++i) {
    if (i) *out++ = '.';
    out = put_decimal(out, addr[i]);
  }
  return out;
}

// inet_ntop(AF_INET6) as glibc writes it: the longest run (the first of equal
// ones) of two or more zero groups becomes "::", groups in lowercase hex without
// leading zeros, and ::a.b.c.d / ::ffff:a.b.c.d for IPv4-compatible and -mapped.
char* put_ipv6(char* out, const uint8_t* addr) {
  unsigned words[8];
  for (int i = 0; i < 8; ++i) words[i] = static_cast<unsigned>(addr[2 * i]) << 8 | addr[2 * i + 1];
  int best_base = -1, best_len = 0, cur_base = -1, cur_len = 0;
  for (int i = 0; i < 8; ++i) {
    if (words[i] == 0) {
      if (cur_base == -1) cur_base = i, cur_len = 1;
      else ++cur_len;
    } else if (cur_base != -1) {
      if (best_base == -1 || cur_len > best_len) best_base = cur_base, best_len = cur_len;
      cur_base = -1;
    }
  }
  if (cur_base != -1 && (best_base == -1 || cur_len > best_len)) best_base = cur_base, best_len = cur_len;
  if (best_base != -1 && best_len < 2) best_base = -1;
  for (int i = 0; i < 8; ++i) {
    if (best_base != -1 && i >= best_base && i < best_base + best_len) {
      if (i == best_base) *out++ = ':';
      continue;
    }
    if (i != 0) *out++ = ':';
    if (i == 6 && best_base == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xffff)))
      return put_ipv4(out, addr + 12);
    bool leading = true;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const unsigned digit = (words[i] >> shift) & 0xf;
      if (leading && digit == 0 && shift) continue;
      leading = false;
      *out++ = kHexDigits[digit];
    }
  }
  if (best_base != -1 && best_base + best_len == 8) *out++ = ':';
  return out;
}

char* put_address(char* out, int family, const std::array<uint8_t, 16>& addr) {  // INET6_ADDRSTRLEN - 1 at most
  return family == 6 ? put_ipv6(out, addr.data()) : put_ipv4(out, addr.data());
}

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

constexpr size_t kMaxTcpFlags = 32;  // FIN|SYN|RST|PSH|ACK|URG|ECE|CWR

char* put_tcp_flags(char* out, uint8_t flags) {
  static constexpr const char* names[8] = {"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"};
  if (!flags) {
    std::memcpy(out, "none", 4);
    return out + 4;
  }
  char* const start = out;
  for (int bit = 0; bit < 8; ++bit) {
    if (!(flags & (1u << bit))) continue;
    if (out != start) *out++ = '|';
    std::memcpy(out, names[bit], 3);
    out += 3;
  }
  return out;
}

// "state 99", "reason 93": a value the kernel's BTF does not name.
constexpr size_t kMaxUnnamed = 20;

char* put_unnamed(char* out, std::string_view what, uint32_t value) {
  std::memcpy(out, what.data(), what.size());
  out[what.size()] = ' ';
  return put_decimal(out + what.size() + 1, value);
}

// What an append_*() function writes, as a string: the format_*() forms.
template <typename... Params, typename... Args>
std::string appended(void (*append)(std::string&, Params...), Args&&... args) {
  std::string text;
  append(text, std::forward<Args>(args)...);
  return text;
}

}  // namespace

void append_escaped_untrusted(std::string& out, std::string_view bytes) {
  size_t plain = 0;  // start of the run of bytes that stay as they are
  for (size_t i = 0; i < bytes.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') continue;
    out.append(bytes.data() + plain, i - plain);
    plain = i + 1;
    if (c == '\\') {
      out.append("\\\\", 2);
    } else {
      const char hex[4] = {'\\', 'x', kHexDigits[c >> 4], kHexDigits[c & 0xf]};
      out.append(hex, sizeof(hex));
    }
  }
  out.append(bytes.data() + plain, bytes.size() - plain);
}

std::string escape_untrusted(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  append_escaped_untrusted(out, bytes);
  return out;
}

void append_address(std::string& out, int family, const std::array<uint8_t, 16>& addr) {
  char text[INET6_ADDRSTRLEN];
  out.append(text, static_cast<size_t>(put_address(text, family, addr) - text));
}

std::string format_address(int family, const std::array<uint8_t, 16>& addr) {
  return appended(append_address, family, addr);
}

void append_endpoint(std::string& out, int family, const Endpoint& endpoint) {
  char text[INET6_ADDRSTRLEN + 8];
  char* end = text;
  if (family == 6) {
    *end++ = '[';
    end = put_ipv6(end, endpoint.addr.data());
    *end++ = ']';
  } else {
    end = put_ipv4(end, endpoint.addr.data());
  }
  *end++ = ':';
  end = put_decimal(end, endpoint.port);
  out.append(text, static_cast<size_t>(end - text));
}

std::string format_endpoint(int family, const Endpoint& endpoint) { return appended(append_endpoint, family, endpoint); }

void append_rfc3339_micro(std::string& out, uint64_t unix_ns) {
  char text[kMaxTimestamp];
  out.append(text, static_cast<size_t>(put_rfc3339_micro(text, unix_ns) - text));
}

std::string format_rfc3339_micro(uint64_t unix_ns) { return appended(append_rfc3339_micro, unix_ns); }

void append_tcp_flags(std::string& out, uint8_t flags) {
  char text[kMaxTcpFlags];
  out.append(text, static_cast<size_t>(put_tcp_flags(text, flags) - text));
}

std::string format_tcp_flags(uint8_t flags) { return appended(append_tcp_flags, flags); }

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

bool append_reason_name(std::string& out, const KernelNames& names, const TcpEvent& event) {
  if (!event.reason) return false;
  const EnumNames& table = event.kind == EventKind::Drop ? names.drop_reasons : names.reset_reasons;
  if (const std::string* name = table.find(*event.reason)) {
    out += *name;
  } else {  // a value this kernel's BTF does not name
    char text[kMaxUnnamed];
    out.append(text, static_cast<size_t>(put_unnamed(text, "reason", *event.reason) - text));
  }
  return true;
}

bool append_state_name(std::string& out, const KernelNames& names, const TcpEvent& event) {
  if (!event.tcp_state) return false;
  if (const std::string* name = names.tcp_states.find(*event.tcp_state)) {
    out += *name;
  } else {
    char text[kMaxUnnamed];
    out.append(text, static_cast<size_t>(put_unnamed(text, "state", *event.tcp_state) - text));
  }
  return true;
}

std::optional<std::string> reason_name(const KernelNames& names, const TcpEvent& event) {
  std::string name;
  if (!append_reason_name(name, names, event)) return std::nullopt;
  return name;
}

std::optional<std::string> state_name(const KernelNames& names, const TcpEvent& event) {
  std::string name;
  if (!append_state_name(name, names, event)) return std::nullopt;
  return name;
}

namespace {

void write_written_by(JsonObjectWriter& out, const Report& report, const WallClock& clock) {
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

void write_rule(JsonObjectWriter& out, const std::optional<FirewallRule>& rule) {
  if (!rule) {
    out.null("rule");
    return;
  }
  JsonObjectWriter r = out.object("rule");
  r.string("backend", rule->backend)
      .string("family", rule->family)
      .untrusted_string("table", rule->table)
      .untrusted_string("chain", rule->chain);
  rule->handle ? r.number("handle", *rule->handle) : r.null("handle");
  r.untrusted_string("text", rule->text).string("verdict", rule->verdict);
  rule->packets ? r.number("packets", *rule->packets) : r.null("packets");
  r.boolean("certain", rule->certain);
  r.close();
}

}  // namespace

std::string Formatter::event_line(const Report& report) const {
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

void Formatter::append_event_line(std::string& line, const Report& report) const {
  const TcpEvent& e = report.event;
  JsonObjectWriter out(line);
  out.string("type", "event")
      .ascii_string("ts", kMaxTimestamp, [&](char* at) { return put_rfc3339_micro(at, clock.unix_ns(e.monotonic_ns)); })
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
  out.string("verdict", report.verdict).string("detail", report.detail);
  // Extensions beyond the core contract (docs/events.md).
  out.string("owner_source", owner_source_name(e.owner_source))
      .number("context_pid", e.context.pid)
      .untrusted_string("context_comm", e.context.comm)
      .number("packets", report.packets);
  e.tcp_flags ? out.ascii_string("tcp_flags", kMaxTcpFlags, [&](char* at) { return put_tcp_flags(at, *e.tcp_flags); })
              : out.null("tcp_flags");
  out.optional_string("peer_saw", report.peer_saw).optional_string("netfilter_hook", report.netfilter_hook);
  write_rule(out, report.rule);
  report.fail2ban_jail ? out.untrusted_string("fail2ban_jail", *report.fail2ban_jail) : out.null("fail2ban_jail");
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
  if (e.full_socket)
    out.number("bytes_received", e.bytes_received).number("bytes_acked", e.bytes_acked).number("unread_bytes", e.unread_bytes);
  out.close();
}

void Formatter::append_storm_line(std::string& line, const StormReport& storm) const {
  const Report& verdict = *storm.verdict;
  const TcpEvent& e = verdict.event;  // the event that started the storm: same class
  JsonObjectWriter out(line);
  out.string("type", "storm")
      .ascii_string("ts", kMaxTimestamp, [&](char* at) { return put_rfc3339_micro(at, clock.unix_ns(storm.now_monotonic_ns)); })
      .string("state", storm_state_name(storm.state))
      .ascii_string("since", kMaxTimestamp,
                    [&](char* at) { return put_rfc3339_micro(at, clock.unix_ns(storm.since_monotonic_ns)); })
      .number("interval_ms", static_cast<uint64_t>(storm.interval_s * 1000 + 0.5))
      .number("count", storm.count)
      .number("total", storm.total)
      .string("kind", kind_name(e.kind))
      .string("direction", direction_name(e.kind))
      .number("family", static_cast<uint64_t>(e.family))
      .number("port", storm.key.port)
      .string("port_end", storm.key.watched_local ? "local" : "remote")
      .ascii_string("peer_addr", INET6_ADDRSTRLEN,
                    [&](char* at) { return put_address(at, e.family, storm_peer_address(storm.key)); })
      .number("netns", storm.key.netns);
  append_enum_names(out, e);
  e.tcp_flags ? out.ascii_string("tcp_flags", kMaxTcpFlags, [&](char* at) { return put_tcp_flags(at, *e.tcp_flags); })
              : out.null("tcp_flags");
  out.string("verdict", verdict.verdict).string("detail", verdict.detail);
  out.optional_string("peer_saw", verdict.peer_saw).optional_string("netfilter_hook", verdict.netfilter_hook);
  write_rule(out, verdict.rule);
  verdict.fail2ban_jail ? out.untrusted_string("fail2ban_jail", *verdict.fail2ban_jail) : out.null("fail2ban_jail");
  out.close();
}

std::string Formatter::storm_text(const StormReport& storm) const {
  const Report& verdict = *storm.verdict;
  std::string text;
  append_rfc3339_micro(text, clock.unix_ns(storm.now_monotonic_ns));
  text += " storm ";
  text += storm_state_name(storm.state);
  text += ": " + std::to_string(storm.count) +
          (verdict.event.kind == EventKind::Drop ? std::string(" packets dropped")
                                                 : " resets " + std::string(direction_name(verdict.event.kind))) +
          " (" + std::to_string(storm.total) + " since ";
  append_rfc3339_micro(text, clock.unix_ns(storm.since_monotonic_ns));
  text += "), port " + std::to_string(storm.key.port) + ", peer ";
  append_address(text, verdict.event.family, storm_peer_address(storm.key));
  text += ": " + verdict.verdict + ": " + verdict.detail;
  return text;
}

nlohmann::ordered_json Formatter::event_json(const Report& report) const {
  return nlohmann::ordered_json::parse(event_line(report));
}

std::string Formatter::event_text(const Report& report) const {
  const TcpEvent& e = report.event;
  std::string line;
  line.reserve(160 + report.verdict.size() + report.detail.size());
  append_rfc3339_micro(line, clock.unix_ns(e.monotonic_ns));  // no space in it: the verdict comes next
  line += ' ';
  line += report.verdict;
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
  return line;
}

std::string json_line(const nlohmann::ordered_json& object) {
  return object.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace rsttrace
