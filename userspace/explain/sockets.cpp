#include "explain/sockets.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace rsttrace::explain {

std::vector<ListeningSocket> parse_proc_net_tcp(const std::string& text, int family) {
  std::vector<ListeningSocket> out;
  std::istringstream lines(text);
  std::string line;
  std::getline(lines, line);  // header
  while (std::getline(lines, line) && out.size() < 100000) {
    // "  0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 12345 ..."
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
    if (!(fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode)) continue;
    if (state != "0A") continue;  // TCP_LISTEN
    const size_t colon = local.find(':');
    const size_t hex_size = family == 6 ? 32 : 8;
    if (colon != hex_size || local.size() != hex_size + 5) continue;
    ListeningSocket s;
    s.family = family;
    bool ok = true;
    // The kernel prints each 32-bit word of the address in host order (%08X).
    for (size_t word = 0; word < hex_size / 8 && ok; ++word) {
      char* end = nullptr;
      const std::string hex = local.substr(word * 8, 8);
      const uint32_t value = static_cast<uint32_t>(std::strtoul(hex.c_str(), &end, 16));
      ok = end == hex.c_str() + 8;
      std::memcpy(s.addr.data() + word * 4, &value, 4);
    }
    char* end = nullptr;
    s.port = static_cast<uint16_t>(std::strtoul(local.c_str() + colon + 1, &end, 16));
    const size_t queue_colon = queues.find(':');
    if (!ok || queue_colon == std::string::npos) continue;
    s.accept_queue = static_cast<uint32_t>(std::strtoul(queues.substr(queue_colon + 1).c_str(), nullptr, 16));
    s.inode = std::strtoull(inode.c_str(), nullptr, 10);
    out.push_back(s);
  }
  return out;
}

}  // namespace rsttrace::explain

// sock_diag's answer, through libmnl: it checks every message's length and
// turns NLMSG_DONE and NLMSG_ERROR into return codes. What is read by hand is
// one fixed struct inet_diag_msg per message, after its size is checked.
// (Debian's libnl-idiag-3 does the same with two more libraries; libmnl is
// already rsttrace's, for nf_tables.)
namespace rsttrace::explain {
namespace {

struct DiagDump {
  std::vector<ListeningSocket>* out;
};

int on_diag_message(const nlmsghdr* header, void* data) {
  auto& dump = *static_cast<DiagDump*>(data);
  if (header->nlmsg_type != SOCK_DIAG_BY_FAMILY) return MNL_CB_OK;
  if (mnl_nlmsg_get_payload_len(header) < sizeof(inet_diag_msg)) {
    errno = EBADMSG;
    return MNL_CB_ERROR;
  }
  inet_diag_msg message;
  std::memcpy(&message, mnl_nlmsg_get_payload(header), sizeof(message));
  if (message.idiag_state != 10 /* TCP_LISTEN */ || dump.out->size() >= 100000) return MNL_CB_OK;
  if (message.idiag_family != AF_INET && message.idiag_family != AF_INET6) return MNL_CB_OK;
  ListeningSocket s;
  s.family = message.idiag_family == AF_INET ? 4 : 6;
  std::memcpy(s.addr.data(), message.id.idiag_src, s.family == 4 ? 4 : 16);
  s.port = ntohs(message.id.idiag_sport);
  // For a listener, inet_diag reports sk_ack_backlog (connections waiting for
  // accept()) as rqueue and sk_max_ack_backlog (listen()'s backlog) as wqueue (tcp_diag.c).
  s.accept_queue = message.idiag_rqueue;
  s.backlog = message.idiag_wqueue;
  s.inode = message.idiag_inode;
  dump.out->push_back(s);
  return MNL_CB_OK;
}

}  // namespace

Result<bool> parse_inet_diag_dump(const void* data, size_t size, uint32_t sequence, std::vector<ListeningSocket>& out) {
  // Every byte must belong to a whole message, checked here first: libmnl stops quietly at
  // one cut short, and takes a length over 2 GiB (negative as its int) for a valid one.
  if (size > (1u << 30)) return Failure{"a sock_diag answer of " + std::to_string(size) + " bytes"};
  for (size_t at = 0; at < size;) {
    uint32_t length = 0;
    if (size - at < sizeof(nlmsghdr)) return Failure{"sock_diag's answer has a message cut short"};
    std::memcpy(&length, static_cast<const char*>(data) + at, sizeof(length));
    if (length < sizeof(nlmsghdr) || length > size - at) return Failure{"sock_diag's answer has a message cut short"};
    at += std::min<size_t>(NLMSG_ALIGN(length), size - at);
  }
  DiagDump dump{&out};
  errno = 0;
  const int result = mnl_cb_run(data, size, sequence, 0, on_diag_message, &dump);
  if (result == MNL_CB_ERROR) return Failure{"sock_diag answered " + errno_text(errno ? errno : EBADMSG)};
  return result == MNL_CB_STOP;
}

}  // namespace rsttrace::explain
