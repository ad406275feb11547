#include "collect/record_decoder.h"

#include <algorithm>
#include <cstring>
#include <string.h>  // strnlen
#include <optional>


namespace rsttrace {
namespace {

std::string comm_bytes(const char (&comm)[RSTTRACE_COMM_LEN]) {
  return std::string(comm, strnlen(comm, RSTTRACE_COMM_LEN));
}

// The same, into a process in place (no temporary string, no move).
void set_process(Process& process, uint32_t pid, const char (&comm)[RSTTRACE_COMM_LEN]) {
  process.pid = pid;
  process.comm.assign(comm, strnlen(comm, RSTTRACE_COMM_LEN));
}

bool is_v4_mapped(const std::array<uint8_t, 16>& a) {
  static constexpr uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::equal(std::begin(prefix), std::end(prefix), a.begin());
}

// ::ffff:a.b.c.d on a dual-stack socket is an IPv4 connection: report it as
// one, so it matches the packet-derived events of the same connection.
void unmap_v4(TcpEvent& event) {
  if (event.family != 6 || !is_v4_mapped(event.local.addr) || !is_v4_mapped(event.remote.addr))
    return;
  for (auto* addr : {&event.local.addr, &event.remote.addr}) {
    std::array<uint8_t, 16> v4{};
    std::copy_n(addr->begin() + 12, 4, v4.begin());
    *addr = v4;
  }
  event.family = 4;
}

DecodeResult decode_tcp_event(const rsttrace_tcp_event& raw, const WatchedPorts* storm_ports);

// The same record, as a note of an accepted or closed server socket.
DecodeResult decode_connection_note(const rsttrace_tcp_event& raw) {
  rsttrace_tcp_event as_event = raw;
  as_event.kind = RSTTRACE_KIND_RESET_SENT;  // decoded by the one path, then marked
  DecodeResult decoded = decode_tcp_event(as_event, nullptr);
  if (!decoded) return decoded;
  ConnectionNote note;
  note.closed = raw.kind == RSTTRACE_KIND_CLOSED;
  note.left_state = note.closed ? raw.tcp_state : 0;
  note.socket = std::move(std::get_if<DecodedEvent>(&*decoded)->event);
  return DecodeResult(std::in_place, std::move(note));
}

NetfilterEvidence netfilter_evidence(const rsttrace_tcp_event& raw) {
  using CtState = NetfilterEvidence::CtState;
  NetfilterEvidence evidence;
  switch (raw.ct_state & ~RSTTRACE_CT_REPLY) {
    case RSTTRACE_CT_INVALID: evidence.ct_state = CtState::Invalid; break;
    case RSTTRACE_CT_NEW: evidence.ct_state = CtState::New; break;
    case RSTTRACE_CT_ESTABLISHED: evidence.ct_state = CtState::Established; break;
    case RSTTRACE_CT_RELATED: evidence.ct_state = CtState::Related; break;
    case RSTTRACE_CT_UNTRACKED: evidence.ct_state = CtState::Untracked; break;
    default: evidence.ct_state = CtState::Unknown; break;
  }
  evidence.ct_reply = raw.ct_state & RSTTRACE_CT_REPLY;
  evidence.ct_status = raw.ct_status;
  std::copy_n(raw.ct_orig_daddr, 16, evidence.ct_original_daddr.begin());
  evidence.ct_original_dport = raw.ct_orig_dport;
  evidence.mark = raw.mark;
  evidence.in_interface = comm_bytes(raw.in_ifname);
  evidence.route_type = raw.route_type;
  return evidence;
}

DecodeResult decode_tcp_event(const rsttrace_tcp_event& raw, const WatchedPorts* storm_ports) {
  EventKind kind;
  switch (raw.kind) {
    case RSTTRACE_KIND_RESET_SENT: kind = EventKind::ResetSent; break;
    case RSTTRACE_KIND_RESET_RECEIVED: kind = EventKind::ResetReceived; break;
    case RSTTRACE_KIND_DROP: kind = EventKind::Drop; break;
    case RSTTRACE_KIND_ACCEPTED:
    case RSTTRACE_KIND_CLOSED: return decode_connection_note(raw);
    default: return Failure{"unknown event kind " + std::to_string(raw.kind)};
  }
  if (raw.family != 4 && raw.family != 6)
    return Failure{"unknown address family " + std::to_string(raw.family)};
  if (raw.owner_source > RSTTRACE_OWNER_IO)
    return Failure{"unknown owner source " + std::to_string(raw.owner_source)};

  // Built in place: no move of the event.
  DecodeResult result(std::in_place, std::in_place_type<DecodedEvent>);
  DecodedEvent& decoded = *std::get_if<DecodedEvent>(&*result);
  TcpEvent& event = decoded.event;
  event.kind = kind;
  event.monotonic_ns = raw.ts_ns;
  event.family = raw.family;
  std::copy_n(raw.local_addr, 16, event.local.addr.begin());
  std::copy_n(raw.remote_addr, 16, event.remote.addr.begin());
  event.local.port = raw.local_port;
  event.remote.port = raw.remote_port;
  event.netns = raw.netns;
  event.sock_id = raw.sock_id;
  event.sock_cookie = raw.sock_cookie;
  event.listen_backlog = raw.listen_backlog;
  event.accept_queue = raw.accept_queue;
  if (raw.flags & RSTTRACE_FLAG_SOCKET) event.tcp_state = raw.tcp_state;
  if (raw.flags & RSTTRACE_FLAG_REASON) event.reason = raw.reason;
  event.full_socket = raw.flags & RSTTRACE_FLAG_FULLSOCK;
  event.sent_by_closer = raw.flags & RSTTRACE_FLAG_BY_CLOSER;
  event.from_kprobe = raw.flags & RSTTRACE_FLAG_KPROBE;
  event.listen_overflow = raw.flags & RSTTRACE_FLAG_LISTEN_OVERFLOW;
  if (raw.flags & RSTTRACE_FLAG_PACKET) {
    event.tcp_flags = raw.tcp_flags;
    event.tcp_seq = raw.tcp_seq;
  }
  event.ingress = raw.flags & RSTTRACE_FLAG_INGRESS;
  event.routed = raw.flags & RSTTRACE_FLAG_ROUTED;
  if (raw.owner_pid != 0) set_process(event.owner.emplace(), raw.owner_pid, raw.owner_comm);
  event.owner_source = static_cast<OwnerSource>(raw.owner_source);
  event.owner_monotonic_ns = raw.owner_ts_ns;
  event.owner_exiting = raw.flags & RSTTRACE_FLAG_OWNER_EXITING;
  event.owner_exit_code = raw.owner_exit_code;
  event.acceptor_pid = raw.acceptor_pid;
  event.acceptor_monotonic_ns = raw.acceptor_ts_ns;
  set_process(event.context, raw.context_pid, raw.context_comm);
  event.bytes_received = raw.bytes_received;
  event.bytes_acked = raw.bytes_acked;
  event.unread_bytes = raw.unread_bytes;
  event.location = raw.location;
  event.ifindex = raw.ifindex;
  if (raw.flags & RSTTRACE_FLAG_NETFILTER) event.netfilter = netfilter_evidence(raw);
  unmap_v4(event);
  if (storm_ports) {
    rsttrace_storm_key key;
    if (rsttrace_storm_key_of(&raw, (*storm_ports)[raw.local_port], &key)) decoded.storm_key = key;
  }
  return result;
}

DecodeResult decode_wrapper_open(const rsttrace_wrapper_open& raw) {
  WrapperOpen open;
  switch (raw.file) {
    case RSTTRACE_HOSTS_ALLOW: open.file = WrapperFile::HostsAllow; break;
    case RSTTRACE_HOSTS_DENY: open.file = WrapperFile::HostsDeny; break;
    default: return Failure{"unknown wrapper file " + std::to_string(raw.file)};
  }
  open.monotonic_ns = raw.ts_ns;
  open.process = Process{raw.pid, comm_bytes(raw.comm)};
  open.parent = Process{raw.parent_pid, comm_bytes(raw.parent_comm)};
  open.parent_thread = comm_bytes(raw.parent_thread);
  open.open_flags = raw.open_flags;
  open.mnt_ns = raw.mnt_ns;
  open.uid = raw.uid;
  open.user_ns = raw.user_ns;
  return DecodeResult(std::in_place, std::move(open));
}

// Copies a record of exactly sizeof(Raw) bytes out of the ring buffer.
template <typename Raw>
std::optional<Failure> copy_exact(std::span<const std::byte> bytes, Raw& raw, const char* what) {
  if (bytes.size() != sizeof(raw))
    return Failure{std::string(what) + " of " + std::to_string(bytes.size()) + " bytes, expected " +
                       std::to_string(sizeof(raw))};
  std::memcpy(&raw, bytes.data(), sizeof(raw));
  return std::nullopt;
}

}  // namespace

DecodeResult decode_record(std::span<const std::byte> bytes, const WatchedPorts* storm_ports) {
  rsttrace_record_header header;
  if (bytes.size() < sizeof(header))
    return Failure{"record of " + std::to_string(bytes.size()) + " bytes is shorter than its header"};
  std::memcpy(&header, bytes.data(), sizeof(header));
  if (header.size != bytes.size())
    return Failure{"record says " + std::to_string(header.size) + " bytes, ring buffer gave " +
                       std::to_string(bytes.size())};
  switch (header.type) {
    case RSTTRACE_RECORD_TCP_EVENT: {
      rsttrace_tcp_event raw;
      if (auto error = copy_exact(bytes, raw, "tcp event")) return *error;
      return decode_tcp_event(raw, storm_ports);
    }
    case RSTTRACE_RECORD_WRAPPER_OPEN: {
      rsttrace_wrapper_open raw;
      if (auto error = copy_exact(bytes, raw, "wrapper open")) return *error;
      return decode_wrapper_open(raw);
    }
    default:
      return Failure{"unknown record type " + std::to_string(header.type)};
  }
}

}  // namespace rsttrace
