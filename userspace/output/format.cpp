#include "output/format.h"

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
  tm utc{};
  gmtime_r(&seconds, &utc);
  char text[64];
  std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, micros);
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

nlohmann::ordered_json optional_json(const std::optional<std::string>& value) {
  return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
}

nlohmann::ordered_json written_by_json(const Report& report, const WallClock& clock) {
  if (report.written_by) {
    const WrapperOpen& w = *report.written_by;
    return {{"source", "observed"},
            {"ts", format_rfc3339_micro(clock.unix_ns(w.monotonic_ns))},
            {"pid", w.process.pid},
            {"comm", escape_untrusted(w.process.comm)},
            {"parent_pid", w.parent.pid},
            {"parent_comm", escape_untrusted(w.parent.comm)},
            {"parent_thread", escape_untrusted(w.parent_thread)}};
  }
  if (report.written_mtime_unix_ns)
    return {{"source", "mtime"}, {"ts", format_rfc3339_micro(*report.written_mtime_unix_ns)}};
  return nullptr;
}

nlohmann::ordered_json rule_json(const FirewallRule& rule) {
  return {{"backend", rule.backend},
          {"family", rule.family},
          {"table", escape_untrusted(rule.table)},
          {"chain", escape_untrusted(rule.chain)},
          {"handle", rule.handle ? nlohmann::ordered_json(*rule.handle) : nlohmann::ordered_json(nullptr)},
          {"text", escape_untrusted(rule.text)},
          {"verdict", rule.verdict},
          {"packets", rule.packets ? nlohmann::ordered_json(*rule.packets) : nlohmann::ordered_json(nullptr)},
          {"certain", rule.certain}};
}

}  // namespace

nlohmann::ordered_json Formatter::event_json(const Report& report) const {
  const TcpEvent& e = report.event;
  nlohmann::ordered_json out = {
      {"type", "event"},
      {"ts", format_rfc3339_micro(clock.unix_ns(e.monotonic_ns))},
      {"kind", kind_name(e.kind)},
      {"direction", direction_name(e.kind)},
      {"family", e.family},
      {"local_addr", format_address(e.family, e.local.addr)},
      {"local_port", e.local.port},
      {"remote_addr", format_address(e.family, e.remote.addr)},
      {"remote_port", e.remote.port},
      {"netns", e.netns},
      {"tcp_state", optional_json(state_name(names, e))},
      {"kernel_reason", optional_json(reason_name(names, e))},
      {"pid", e.owner ? nlohmann::ordered_json(e.owner->pid) : nlohmann::ordered_json(nullptr)},
      {"comm", e.owner ? nlohmann::ordered_json(escape_untrusted(e.owner->comm)) : nlohmann::ordered_json(nullptr)},
      {"verdict", report.verdict},
      {"detail", report.detail},
      // Extensions beyond the core contract (docs/events.md).
      {"owner_source", owner_source_name(e.owner_source)},
      {"context_pid", e.context.pid},
      {"context_comm", escape_untrusted(e.context.comm)},
      {"packets", report.packets},
      {"tcp_flags", e.tcp_flags ? nlohmann::ordered_json(format_tcp_flags(*e.tcp_flags)) : nlohmann::ordered_json(nullptr)},
      {"peer_saw", optional_json(report.peer_saw)},
      {"netfilter_hook", optional_json(report.netfilter_hook)},
      {"rule", report.rule ? rule_json(*report.rule) : nlohmann::ordered_json(nullptr)},
      {"fail2ban_jail", report.fail2ban_jail ? nlohmann::ordered_json(escape_untrusted(*report.fail2ban_jail))
                                             : nlohmann::ordered_json(nullptr)},
      {"wrapper_rule", report.wrapper_rule ? nlohmann::ordered_json{{"file", report.wrapper_rule->file},
                                                                    {"line", report.wrapper_rule->line},
                                                                    {"text", escape_untrusted(report.wrapper_rule->text)}}
                                           : nlohmann::ordered_json(nullptr)},
      {"written_by", written_by_json(report, clock)},
  };
  if (e.full_socket) {
    out["bytes_received"] = e.bytes_received;
    out["bytes_acked"] = e.bytes_acked;
    out["unread_bytes"] = e.unread_bytes;
  }
  return out;
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
