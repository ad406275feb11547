// Names for the kernel's values in an event: TCP flags, kinds, directions,
// owner sources, and the running kernel's names for reasons and states.
// Shared by attribute/ (details) and output/ (lines). Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "collect/kernel_btf.h"
#include "collect/tcp_event.h"

namespace rsttrace {

std::string format_tcp_flags(uint8_t flags);             // SYN|ACK
void append_tcp_flags(std::string& out, uint8_t flags);
constexpr size_t kMaxTcpFlags = 32;                      // FIN|SYN|RST|PSH|ACK|URG|ECE|CWR
char* put_tcp_flags(char* out, uint8_t flags);

std::string_view direction_name(EventKind kind);         // sent / received / dropped
std::string_view kind_name(EventKind kind);              // reset / drop
std::string_view owner_source_name(OwnerSource source);  // connect / accept / ...

// The kernel's name for the event's reason and TCP state, from the running
// kernel's BTF; "reason 93" for a value the BTF does not name.
std::optional<std::string> reason_name(const KernelNames& names, const TcpEvent& event);
std::optional<std::string> state_name(const KernelNames& names, const TcpEvent& event);
// The same, appended to `out`; false (nothing appended) when the event has none.
bool append_reason_name(std::string& out, const KernelNames& names, const TcpEvent& event);
bool append_state_name(std::string& out, const KernelNames& names, const TcpEvent& event);

// "state 99", "reason 93": a value the kernel's BTF does not name.
constexpr size_t kMaxUnnamed = 20;
char* put_unnamed(char* out, std::string_view what, uint32_t value);

}  // namespace rsttrace
