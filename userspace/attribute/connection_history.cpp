#include "attribute/connection_history.h"

#include <algorithm>

namespace rsttrace {

void ConnectionHistory::add(const ConnectionNote& note) {
  const TcpEvent& socket = note.socket;
  if (!note.closed) {
    SeenConnection seen;
    seen.sock_id = socket.sock_id;
    seen.netns = socket.netns;
    seen.family = socket.family;
    seen.remote = socket.remote;
    seen.local_port = socket.local.port;
    seen.acceptor_pid = socket.acceptor_pid;
    seen.accepted_ns = socket.acceptor_monotonic_ns ? socket.acceptor_monotonic_ns : socket.monotonic_ns;
    open_[seen.sock_id] = first_sequence_ + connections_.size();  // a reused socket address: the new one
    connections_.push_back(std::move(seen));
    while (connections_.size() > max_connections_) {
      auto open = open_.find(connections_.front().sock_id);
      if (open != open_.end() && open->second == first_sequence_) open_.erase(open);
      connections_.pop_front();
      ++first_sequence_;
      ++evicted_;
    }
    return;
  }
  auto open = open_.find(socket.sock_id);
  if (open == open_.end()) return;  // accepted before rsttrace started, or evicted
  SeenConnection* it = &connections_[open->second - first_sequence_];
  open_.erase(open);
  {
    it->closed_ns = socket.monotonic_ns;
    it->left_state = note.left_state;
    it->closer = socket.owner;
    it->closer_exiting = socket.owner_exiting;
    it->closer_exit_code = socket.owner_exit_code;
    it->bytes_received = socket.bytes_received;
    it->bytes_acked = socket.bytes_acked;
    return;
  }
}

size_t ConnectionHistory::open_at(uint32_t netns, uint32_t acceptor_pid, uint64_t at_ns, uint64_t except_sock) const {
  return static_cast<size_t>(std::count_if(connections_.begin(), connections_.end(), [&](const SeenConnection& seen) {
    return seen.netns == netns && seen.acceptor_pid == acceptor_pid && seen.sock_id != except_sock &&
           seen.accepted_ns <= at_ns && (!seen.closed_ns || seen.closed_ns > at_ns);
  }));
}

std::vector<SeenConnection> ConnectionHistory::ended_from(uint32_t netns, int family,
                                                          const std::array<uint8_t, 16>& address, uint64_t from_ns,
                                                          uint64_t to_ns) const {
  std::vector<SeenConnection> ended;
  for (const SeenConnection& seen : connections_)
    if (seen.netns == netns && seen.family == family && seen.remote.addr == address && seen.closed_ns &&
        seen.closed_ns >= from_ns && seen.closed_ns <= to_ns)
      ended.push_back(seen);
  std::sort(ended.begin(), ended.end(),
            [](const SeenConnection& a, const SeenConnection& b) { return a.closed_ns < b.closed_ns; });
  return ended;
}

const SeenConnection* ConnectionHistory::ended_before(uint32_t netns, int family, const Endpoint& remote,
                                                     uint16_t local_port, uint64_t at_ns) const {
  // Newest first: a four-tuple is reused only after its last connection ended.
  for (auto it = connections_.rbegin(); it != connections_.rend(); ++it)
    if (it->netns == netns && it->family == family && it->remote == remote && it->local_port == local_port &&
        it->closed_ns && it->closed_ns <= at_ns)
      return &*it;
  return nullptr;
}

const SeenConnection* ConnectionHistory::find(uint64_t sock_id, uint64_t accepted_ns) const {
  for (auto it = connections_.rbegin(); it != connections_.rend(); ++it)
    if (it->sock_id == sock_id && (!accepted_ns || it->accepted_ns == accepted_ns)) return &*it;
  return nullptr;
}

}  // namespace rsttrace
