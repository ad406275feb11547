// A decoded rsttrace_tcp_event: the kernel's facts about one reset or drop,
// in host-friendly types. Strings from the kernel (comm) stay raw bytes here;
// output/ escapes them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace rsttrace {

enum class EventKind { ResetSent, ResetReceived, Drop };

enum class OwnerSource { None, Connect, Accept, Close, Listen, Io };

struct Process {
  uint32_t pid = 0;
  std::string comm;  // raw bytes from the kernel: untrusted
  bool operator==(const Process&) const = default;
};

struct Endpoint {
  std::array<uint8_t, 16> addr{};  // network order; IPv4 in the first 4 bytes
  uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
};

// A dropped packet as netfilter's matches read it, when it was freed.
struct NetfilterEvidence {
  enum class CtState { Invalid, New, Established, Related, Untracked, Unknown } ct_state = CtState::Unknown;
  bool ct_reply = false;                // the packet went in the reply direction
  uint32_t ct_status = 0;               // IPS_* bits
  std::array<uint8_t, 16> ct_original_daddr{};  // before DNAT
  uint16_t ct_original_dport = 0;
  uint32_t mark = 0;
  std::string in_interface;  // raw bytes from the kernel: untrusted; "" when it came from no device
  uint8_t route_type = 0;    // RTN_*; 0 when it had no IPv4 route
};

struct TcpEvent {
  EventKind kind = EventKind::ResetSent;
  uint64_t monotonic_ns = 0;
  int family = 4;  // 4 or 6; IPv4-mapped IPv6 addresses are reported as 4
  Endpoint local;
  Endpoint remote;
  uint32_t netns = 0;
  std::optional<uint8_t> tcp_state;  // when a socket was involved
  std::optional<uint32_t> reason;    // raw sk_rst_reason / skb_drop_reason value
  std::optional<Process> owner;
  OwnerSource owner_source = OwnerSource::None;
  uint64_t owner_monotonic_ns = 0;
  bool owner_exiting = false;    // the owner closed it from exit()
  uint32_t owner_exit_code = 0;  // its task->exit_code then (signal in the low 7 bits)
  uint32_t acceptor_pid = 0;     // who accept()ed it; 0 if not seen
  uint64_t acceptor_monotonic_ns = 0;
  Process context;  // the task the hook ran in (may be unrelated: softirq, peer)
  uint64_t sock_id = 0;
  uint64_t sock_cookie = 0;      // the socket's cookie: unique, never reused (0: the kernel gave none)
  uint32_t listen_backlog = 0;   // a listener's backlog (sk_max_ack_backlog)
  uint32_t accept_queue = 0;     // a listener's connections waiting for accept() (sk_ack_backlog)
  bool full_socket = false;
  bool sent_by_closer = false;  // an active reset from close()/disconnect in the owner's task
  bool from_kprobe = false;     // seen by the tcp_send_active_reset kprobe (kernels before 6.10)
  bool listen_overflow = false; // a drop at a full accept queue, seen by the tcp_check_req fexit (no reason: before 6.15)
  uint64_t bytes_received = 0;
  uint64_t bytes_acked = 0;
  uint32_t unread_bytes = 0;
  std::optional<uint8_t> tcp_flags;  // from the packet's TCP header
  uint32_t tcp_seq = 0;              // the packet's sequence number (a SYN's: the connection's ISN)
  bool ingress = false;              // the packet was received by this host
  bool routed = false;
  uint64_t location = 0;  // kfree_skb caller address
  uint32_t ifindex = 0;
  std::optional<NetfilterEvidence> netfilter;  // drops
};

enum class WrapperFile { HostsAllow, HostsDeny };

// A process opened /etc/hosts.allow or /etc/hosts.deny, successfully.
struct WrapperOpen {
  uint64_t monotonic_ns = 0;
  Process process;
  Process parent;             // the parent process (comm of its main thread)
  std::string parent_thread;  // the parent thread that started it
  WrapperFile file = WrapperFile::HostsDeny;
  uint32_t open_flags = 0;
  uint32_t mnt_ns = 0;
  uint32_t uid = 0;      // the opener's uid as the initial user namespace sees it
  uint32_t user_ns = 0;  // its user namespace inode (not the initial one: its own word)
  bool for_writing() const { return (open_flags & 3) != 0; }  // O_WRONLY or O_RDWR
};

// A server socket of a watched local port was accepted, or closed (no reset
// needed): sshd's connection history (attribute/connection_history.h). The
// socket's facts are those of a TcpEvent (owner: who closed it last, acceptor).
struct ConnectionNote {
  bool closed = false;         // false: accepted
  uint8_t left_state = 0;      // closed: the kernel TCP state it left for CLOSE
  TcpEvent socket;             // kind is unused
};

}  // namespace rsttrace
