// The attribution rules (docs/attribution.md): one group of kernel events of
// one connection, plus evidence, gives one report. Pure.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "attribute/evidence.h"
#include "attribute/attribution.h"
#include "collect/kernel_btf.h"

namespace rsttrace {

struct RuleContext {
  const KernelNames& names;
  const Evidence& evidence;
  const std::set<uint16_t>& watched_ports;
};

// nullopt: the group is ordinary teardown (e.g. QUEUE_PURGE drops of a
// normal close), not a connection failure; --raw still shows its events.
std::optional<Attribution> judge(const std::vector<TcpEvent>& group, const RuleContext& context);

// How a process ended, from task->exit_code: "was killed by SIGKILL",
// "exited (status 255)".
std::string exit_words(uint32_t exit_code);

// sshd, and the sshd-session / sshd-auth of OpenSSH 9.8+.
bool is_sshd_family(const std::string& comm);

}  // namespace rsttrace
