#include <arpa/inet.h>
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "collect/record_decoder.h"
#include "rsttrace/records.h"

using namespace rsttrace;

namespace {

rsttrace_tcp_event sample_event() {
  rsttrace_tcp_event raw{};
  raw.header.type = RSTTRACE_RECORD_TCP_EVENT;
  raw.header.size = sizeof(raw);
  raw.kind = RSTTRACE_KIND_RESET_SENT;
  raw.family = 4;
  raw.ts_ns = 123456789;
  raw.sock_id = 0xffff888012345678ULL;
  raw.netns = 4026532000u;
  raw.reason = 11;
  raw.tcp_state = 7;
  raw.flags = RSTTRACE_FLAG_REASON | RSTTRACE_FLAG_SOCKET | RSTTRACE_FLAG_FULLSOCK;
  inet_pton(AF_INET, "127.0.0.1", raw.local_addr);
  inet_pton(AF_INET, "127.0.0.2", raw.remote_addr);
  raw.local_port = 22;
  raw.remote_port = 40000;
  raw.owner_pid = 812;
  std::memcpy(raw.owner_comm, "sshd", 4);
  raw.owner_source = RSTTRACE_OWNER_ACCEPT;
  raw.context_pid = 900;
  std::memcpy(raw.context_comm, "0123456789abcdef", 16);  // no NUL: all 16 bytes used
  raw.unread_bytes = 21;
  raw.acceptor_pid = 811;
  raw.acceptor_ts_ns = 100;
  return raw;
}

std::vector<std::byte> bytes_of(const rsttrace_tcp_event& raw) {
  std::vector<std::byte> bytes(sizeof(raw));
  std::memcpy(bytes.data(), &raw, sizeof(raw));
  return bytes;
}

}  // namespace

TEST_CASE("a reset record decodes field by field") {
  const auto bytes = bytes_of(sample_event());
  const DecodeResult result = decode_record(bytes);
  REQUIRE(result.ok());
  REQUIRE(std::holds_alternative<DecodedEvent>(*result));
  const TcpEvent& e = std::get<DecodedEvent>(*result).event;
  CHECK_FALSE(std::get<DecodedEvent>(*result).storm_key);  // not asked for
  CHECK(e.kind == EventKind::ResetSent);
  CHECK(e.family == 4);
  CHECK(e.local.port == 22);
  CHECK(e.remote.port == 40000);
  CHECK(e.local.addr[0] == 127);
  CHECK(e.remote.addr[3] == 2);
  CHECK(e.netns == 4026532000u);
  CHECK(e.reason == 11u);
  CHECK(e.tcp_state == 7);
  CHECK(e.full_socket);
  CHECK_FALSE(e.tcp_flags);
  REQUIRE(e.owner);
  CHECK(e.owner->pid == 812);
  CHECK(e.owner->comm == "sshd");
  CHECK(e.owner_source == OwnerSource::Accept);
  CHECK(e.context.comm == "0123456789abcdef");
  CHECK(e.unread_bytes == 21);
  CHECK(e.acceptor_pid == 811);
  CHECK(e.acceptor_monotonic_ns == 100);
  CHECK_FALSE(e.owner_exiting);
}

TEST_CASE("an owner that closed from exit() carries its exit code") {
  auto raw = sample_event();
  raw.flags |= RSTTRACE_FLAG_OWNER_EXITING;
  raw.owner_exit_code = 9;  // killed by SIGKILL
  const auto bytes = bytes_of(raw);
  const TcpEvent e = std::get<DecodedEvent>(*decode_record(bytes)).event;
  CHECK(e.owner_exiting);
  CHECK(e.owner_exit_code == 9);
}

TEST_CASE("a wrapper-file open decodes") {
  rsttrace_wrapper_open raw{};
  raw.header.type = RSTTRACE_RECORD_WRAPPER_OPEN;
  raw.header.size = sizeof(raw);
  raw.ts_ns = 55;
  raw.pid = 4242;
  raw.file = RSTTRACE_HOSTS_DENY;
  raw.open_flags = 01101;  // O_WRONLY|O_CREAT|O_TRUNC
  std::memcpy(raw.comm, "sh", 2);
  raw.parent_pid = 4200;
  std::memcpy(raw.parent_comm, "fail2ban-server", 15);
  std::memcpy(raw.parent_thread, "f2b/a.sshd-lab", 14);
  raw.uid = 65534;
  raw.user_ns = 4026532999u;
  std::vector<std::byte> bytes(sizeof(raw));
  std::memcpy(bytes.data(), &raw, sizeof(raw));
  const WrapperOpen open = std::get<WrapperOpen>(*decode_record(bytes));
  CHECK(open.file == WrapperFile::HostsDeny);
  CHECK(open.process == Process{4242, "sh"});
  CHECK(open.parent == Process{4200, "fail2ban-server"});
  CHECK(open.parent_thread == "f2b/a.sshd-lab");
  CHECK(open.for_writing());
  CHECK(open.uid == 65534);
  CHECK(open.user_ns == 4026532999u);
  raw.file = 9;
  std::memcpy(bytes.data(), &raw, sizeof(raw));
  CHECK(!decode_record(bytes).ok());
}

TEST_CASE("flags decide which optional facts exist") {
  auto raw = sample_event();
  raw.flags = RSTTRACE_FLAG_PACKET | RSTTRACE_FLAG_INGRESS;
  raw.tcp_flags = 0x02;
  raw.owner_pid = 0;
  const auto bytes = bytes_of(raw);
  const TcpEvent e = std::get<DecodedEvent>(*decode_record(bytes)).event;
  CHECK_FALSE(e.reason);
  CHECK_FALSE(e.tcp_state);
  CHECK_FALSE(e.owner);
  CHECK(e.tcp_flags == 0x02);
  CHECK(e.ingress);
}

TEST_CASE("IPv4-mapped IPv6 addresses are reported as IPv4") {
  auto raw = sample_event();
  raw.family = 6;
  inet_pton(AF_INET6, "::ffff:10.1.2.3", raw.local_addr);
  inet_pton(AF_INET6, "::ffff:10.1.2.4", raw.remote_addr);
  const auto bytes = bytes_of(raw);
  const TcpEvent e = std::get<DecodedEvent>(*decode_record(bytes)).event;
  CHECK(e.family == 4);
  CHECK(e.local.addr[0] == 10);
  CHECK(e.remote.addr[3] == 4);
  CHECK(e.remote.addr[4] == 0);

  inet_pton(AF_INET6, "2001:db8::1", raw.remote_addr);
  const auto real_v6 = bytes_of(raw);
  CHECK(std::get<DecodedEvent>(*decode_record(real_v6)).event.family == 6);
}

TEST_CASE("malformed records are refused with a reason, never misread") {
  auto raw = sample_event();
  auto bytes = bytes_of(raw);
  SECTION("truncated") {
    const DecodeResult r = decode_record(std::span(bytes).first(20));
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.reason(), Catch::Contains("says " + std::to_string(sizeof(rsttrace_tcp_event)) + " bytes"));
  }
  SECTION("shorter than a header") {
    CHECK(!decode_record(std::span(bytes).first(3)).ok());
  }
  SECTION("unknown type") {
    raw.header.type = 99;
    bytes = bytes_of(raw);
    const DecodeResult r = decode_record(bytes);
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.reason(), Catch::Contains("unknown record type 99"));
  }
  SECTION("unknown kind") {
    raw.kind = 7;
    bytes = bytes_of(raw);
    CHECK(!decode_record(bytes).ok());
  }
  SECTION("unknown family") {
    raw.family = 5;
    bytes = bytes_of(raw);
    CHECK(!decode_record(bytes).ok());
  }
}

TEST_CASE("the decoder gives the storm class of the bytes it decoded, as the BPF side computes it") {
  WatchedPorts watched{};
  watched[22] = true;
  auto raw = sample_event();
  raw.flags = RSTTRACE_FLAG_REASON;  // no full socket: a reset for no socket may form a storm
  const auto bytes = bytes_of(raw);
  const DecodeResult result = decode_record(bytes, &watched);
  REQUIRE(result.ok());
  const DecodedEvent& decoded = std::get<DecodedEvent>(*result);
  REQUIRE(decoded.storm_key);
  rsttrace_storm_key expected;
  REQUIRE(rsttrace_storm_key_of(&raw, 1, &expected));
  CHECK(std::memcmp(&*decoded.storm_key, &expected, sizeof(expected)) == 0);
  CHECK(decoded.storm_key->port == 22);
  CHECK(decoded.storm_key->watched_local == 1);
  CHECK(decoded.event.local.port == 22);

  // The watched table decides which side is the peer's.
  watched[22] = false;
  const DecodeResult unwatched = decode_record(bytes, &watched);
  REQUIRE(std::get<DecodedEvent>(*unwatched).storm_key);
  CHECK(std::get<DecodedEvent>(*unwatched).storm_key->port == 40000);
  CHECK(std::get<DecodedEvent>(*unwatched).storm_key->watched_local == 0);

  // A reset on a full, established socket is judged per connection: no class.
  raw.flags = RSTTRACE_FLAG_REASON | RSTTRACE_FLAG_SOCKET | RSTTRACE_FLAG_FULLSOCK;
  raw.tcp_state = 1;
  CHECK_FALSE(std::get<DecodedEvent>(*decode_record(bytes_of(raw), &watched)).storm_key);
}

TEST_CASE("a drop's netfilter evidence is decoded only when the kernel read it", "[firewall]") {
  auto raw = sample_event();
  raw.kind = RSTTRACE_KIND_DROP;
  CHECK_FALSE(std::get<DecodedEvent>(*decode_record(bytes_of(raw))).event.netfilter);
  raw.flags |= RSTTRACE_FLAG_NETFILTER;
  raw.ct_state = RSTTRACE_CT_ESTABLISHED | RSTTRACE_CT_REPLY;
  raw.ct_status = 1u << 5;
  raw.ct_orig_dport = 2222;
  raw.mark = 7;
  raw.route_type = 2;
  std::memcpy(raw.in_ifname, "veth-srv\0\0\0\0\0\0\0\0", 16);
  const auto e = std::get<DecodedEvent>(*decode_record(bytes_of(raw))).event;
  REQUIRE(e.netfilter);
  CHECK(e.netfilter->ct_state == NetfilterEvidence::CtState::Established);
  CHECK(e.netfilter->ct_reply);
  CHECK(e.netfilter->ct_status == 32u);
  CHECK(e.netfilter->ct_original_dport == 2222);
  CHECK(e.netfilter->mark == 7u);
  CHECK(e.netfilter->in_interface == "veth-srv");
  CHECK(e.netfilter->route_type == 2);
}
