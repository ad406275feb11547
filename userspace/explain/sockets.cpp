#include "explain/sockets.h"

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
