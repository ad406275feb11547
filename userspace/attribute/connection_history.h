// sshd's connection history as rsttrace saw it in the kernel (connection
// notes: accepted server sockets of watched ports and their end). Bounded:
// the oldest entries go first. Behind the MaxStartups and PerSourcePenalties
// verdicts: how many connections a listener had open when it refused one,
// and how a source's earlier connections ended.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "collect/tcp_event.h"

namespace rsttrace {

// One connection to a watched port, accepted and (maybe) ended.
struct SeenConnection {
  uint64_t sock_id = 0;
  uint32_t netns = 0;
  int family = 4;
  Endpoint remote;
  uint16_t local_port = 0;
  uint32_t acceptor_pid = 0;
  uint64_t accepted_ns = 0;
  uint64_t closed_ns = 0;  // 0: still open
  uint8_t left_state = 0;  // the TCP state it left for CLOSE
  std::optional<Process> closer;  // the last process that closed or used it
  bool closer_exiting = false;
  uint32_t closer_exit_code = 0;
  uint64_t bytes_received = 0;
  uint64_t bytes_acked = 0;

  bool client_closed_first() const { return left_state == 9 /* LAST_ACK */ || left_state == 8 /* CLOSE_WAIT */; }
  bool server_closed_first() const {
    return left_state == 4 || left_state == 5 || left_state == 6 || left_state == 11;  // FIN_WAIT1/2, TIME_WAIT, CLOSING
  }
  int killed_by() const { return closer_exiting ? static_cast<int>(closer_exit_code & 0x7f) : 0; }
};

class ConnectionHistory {
 public:
  explicit ConnectionHistory(size_t max_connections = 16384) : max_connections_(max_connections) {}

  void add(const ConnectionNote& note);
  // How many connections `acceptor_pid` had accepted in `netns` and not yet
  // closed at `at_ns`, other than `except_sock`.
  size_t open_at(uint32_t netns, uint32_t acceptor_pid, uint64_t at_ns, uint64_t except_sock) const;
  // Connections from `remote`'s address in `netns` that ended within [from_ns, to_ns], oldest first.
  std::vector<SeenConnection> ended_from(uint32_t netns, int family, const std::array<uint8_t, 16>& address,
                                         uint64_t from_ns, uint64_t to_ns) const;
  // The latest connection from `remote` to `local_port` in `netns` that ended
  // at or before `at_ns`: the one a late segment of that four-tuple belonged to.
  const SeenConnection* ended_before(uint32_t netns, int family, const Endpoint& remote, uint16_t local_port,
                                     uint64_t at_ns) const;
  // The connection on socket `sock_id` accepted at `accepted_ns`, if it was seen.
  const SeenConnection* find(uint64_t sock_id, uint64_t accepted_ns) const;
  uint64_t evicted() const { return evicted_; }

 private:
  size_t max_connections_;
  std::deque<SeenConnection> connections_;  // in accept order
  uint64_t first_sequence_ = 0;              // the sequence number of connections_.front()
  std::unordered_map<uint64_t, uint64_t> open_;  // sock_id -> sequence number of its open connection
  uint64_t evicted_ = 0;
};

}  // namespace rsttrace
