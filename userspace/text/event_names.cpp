#include "text/event_names.h"

#include <cstring>

#include "text/escape.h"

namespace rsttrace {

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

char* put_unnamed(char* out, std::string_view what, uint32_t value) {
  std::memcpy(out, what.data(), what.size());
  out[what.size()] = ' ';
  return put_decimal(out + what.size() + 1, value);
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

}  // namespace rsttrace
