#include "attribute/describe.h"

#include <cstdio>

#include "text/escape.h"
#include "text/event_names.h"

namespace rsttrace {

std::string process_text(const Process& process) {
  return escape_untrusted(process.comm) + "[" + std::to_string(process.pid) + "]";
}

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
  else if (event.listen_overflow) text += " (at a full accept queue; no drop reason on this kernel)";
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

std::string describe_seconds(uint64_t ns) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f s", static_cast<double>(ns) / kSecondNs);
  return text;
}

}  // namespace rsttrace
