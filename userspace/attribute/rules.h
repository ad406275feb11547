// The attribution rules (docs/attribution.md): one group of kernel events of
// one connection, plus evidence, gives one report. Pure.
#pragma once

#include <set>
#include <vector>

#include "attribute/evidence.h"
#include "attribute/report.h"
#include "collect/kernel_btf.h"

namespace rsttrace {

struct RuleContext {
  const KernelNames& names;
  const Evidence& evidence;
  const std::set<uint16_t>& watched_ports;
};

Report judge(const std::vector<TcpEvent>& group, const RuleContext& context);

// sshd, and the sshd-session / sshd-auth of OpenSSH 9.8+.
bool is_sshd_family(const std::string& comm);

}  // namespace rsttrace
