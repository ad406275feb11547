// TCP header flag bits as the kernel's events carry them (TcpEvent::tcp_flags):
// the one definition the rules and the correlator share.
#pragma once

#include <cstdint>

#include "collect/tcp_event.h"

namespace rsttrace {
namespace tcp_flag {
inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;
}  // namespace tcp_flag

// A connection's first packet: SYN without ACK.
inline bool is_syn(const TcpEvent& event) {
  return event.tcp_flags && (*event.tcp_flags & (tcp_flag::kSyn | tcp_flag::kAck)) == tcp_flag::kSyn;
}

}  // namespace rsttrace
