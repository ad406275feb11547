// rsttrace explain's parsers on hostile input: the client address (the
// command line), /proc/net/tcp{,6} (a namespace's sockets), the listener's
// title (a process names itself) and an iptables rule text turned into a
// remedy (a namespace owner's rule), and a sock_diag dump (the kernel's, read
// through libmnl). Parts separated by NUL bytes; the last takes the rest, NULs too.
#include <string>

#include "attribute/remedy.h"
#include "explain/address.h"
#include "explain/sockets.h"
#include "explain/walk.h"
#include "fuzz_input.h"
#include "text/shell_quote.h"

using namespace rsttrace;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = fuzz::split_parts(data, size, 5);
  (void)explain::parse_client_address(parts[0]);
  for (const int family : {4, 6})
    for (const auto& socket : explain::parse_proc_net_tcp(parts[1], family))
      if (socket.family != family) __builtin_trap();
  if (const auto startups = explain::parse_listener_title(parts[2]); startups && parts[2].find("[listener]") == std::string::npos)
    __builtin_trap();
  FirewallRule rule{.backend = "iptables-nft", .family = "ip", .table = "filter", .chain = "INPUT", .text = parts[3],
                    .verdict = "drop"};
  Attribution blocked;
  blocked.verdict = Verdict::Firewall;
  blocked.rule = rule;
  for (const std::string& command : remedy_commands(blocked))
    for (const char c : command)
      if (c < 0x20 || c > 0x7e) __builtin_trap();  // printable, as a line shows it
  std::vector<explain::ListeningSocket> sockets;
  (void)explain::parse_inet_diag_dump(parts[4].data(), parts[4].size(), 1, sockets);
  return 0;
}
