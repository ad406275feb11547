#include "app/privileges.h"

#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "error.h"

namespace rsttrace {
namespace {

constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

uint64_t effective_capabilities() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("CapEff:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  return 0;
}

}  // namespace

void require_bpf_privileges() {
  const uint64_t caps = effective_capabilities();
  auto has = [caps](int cap) { return (caps >> cap) & 1; };
  if (has(kCapSysAdmin) || (has(kCapBpf) && has(kCapPerfmon))) return;
  throw failed("load", "BPF programs",
               geteuid() == 0 ? "root without CAP_BPF/CAP_PERFMON/CAP_SYS_ADMIN in its effective set"
                              : "permission denied; rsttrace needs root, or CAP_BPF and CAP_PERFMON");
}

}  // namespace rsttrace
