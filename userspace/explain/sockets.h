// Listening sockets as the kernel's sock_diag (NETLINK_SOCK_DIAG, inet_diag)
// reports them, with their accept queue and backlog, and as /proc/net/tcp and
// /proc/net/tcp6 list them (without the backlog: the fallback when inet_diag
// is not there). Read by explain/probe.cpp in the namespace it entered.
// Pure; unit-tested and fuzzed.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "error.h"

namespace rsttrace::explain {

struct ListeningSocket {
  int family = 4;
  std::array<uint8_t, 16> addr{};  // network order
  uint16_t port = 0;
  uint32_t accept_queue = 0;  // a listener's rx_queue column: connections waiting to be accepted
  uint64_t inode = 0;
  std::optional<uint32_t> backlog;  // listen()'s backlog as the kernel keeps it (sk_max_ack_backlog): sock_diag only
};

// The TCP_LISTEN records of one datagram of an inet_diag dump (the answer to
// SOCK_DIAG_BY_FAMILY with NLM_F_DUMP): appended to `out`, at most 100000.
// Returns true when the dump is complete (NLMSG_DONE), false when more
// datagrams follow, or a Failure for a netlink error or a malformed message.
Result<bool> parse_inet_diag_dump(const void* data, size_t size, uint32_t sequence, std::vector<ListeningSocket>& out);

// The LISTEN lines of one file (family 4: tcp, 6: tcp6); other lines and
// malformed ones are skipped. At most 100000 sockets.
std::vector<ListeningSocket> parse_proc_net_tcp(const std::string& text, int family);

}  // namespace rsttrace::explain
