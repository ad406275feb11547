// Sentences about kernel evidence, shared by the rules (attribute/rules.h) and
// the attributor (attribute/attributor.h). Strings from the kernel are escaped.
#pragma once

#include <cstdint>
#include <string>

#include "collect/kernel_btf.h"
#include "collect/tcp_event.h"

namespace rsttrace {

// "sshd[812]": the process's name, escaped, and its pid.
std::string process_text(const Process& process);

// One sentence of what the kernel showed, e.g. "RST sent for a packet that
// matched no socket (NO_SOCKET), packet flags SYN, hook ran in ssh[812]".
std::string describe_evidence(const KernelNames& names, const TcpEvent& event);

constexpr uint64_t kSecondNs = 1'000'000'000;

// "1.5 s": a span of the kernel's monotonic clock, for sentences.
std::string describe_seconds(uint64_t ns);

}  // namespace rsttrace
