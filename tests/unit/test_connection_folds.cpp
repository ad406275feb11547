// Issue 16: one line per connection past its handshake (a ban that cuts an
// established connection: its retransmissions fold into the first line), and
// the client's view of a reset netfilter built on this host.
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include "attribute/attributor.h"
#include "synthetic_btf.h"

using namespace rsttrace;
using rsttrace::testing::SyntheticBtf;

namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint8_t kAck = 0x10, kPshAck = 0x18, kSyn = 0x02;
constexpr uint32_t kServerNs = 4026532001u, kClientNs = 4026532002u;

const KernelNames& names() {
  static const KernelNames table = [] {
    SyntheticBtf types;
    types.add_enum("sk_rst_reason", {{"SK_RST_REASON_NOT_SPECIFIED", 0}, {"SK_RST_REASON_NO_SOCKET", 1}});
    types.add_enum("skb_drop_reason", {{"SKB_DROP_REASON_NO_SOCKET", 3}, {"SKB_DROP_REASON_NETFILTER_DROP", 12}, {"SKB_DROP_REASON_SOCKET_RCVBUFF", 20}});
    types.add_enum("", {{"TCP_ESTABLISHED", 1}, {"TCP_SYN_SENT", 2}, {"TCP_CLOSE", 7}});
    return KernelNames::from_btf(types.get());
  }();
  return table;
}

Endpoint v4(const char* addr, uint16_t port) {
  Endpoint end;
  inet_pton(AF_INET, addr, end.addr.data());
  end.port = port;
  return end;
}

const Endpoint kServer = v4("10.77.0.1", 22);
const Endpoint kClient = v4("10.77.0.2", 40022);

// An event at `at_ms` in `netns` between `local` and `remote`, in `state`.
TcpEvent at(EventKind kind, uint64_t at_ms, uint32_t netns, const Endpoint& local, const Endpoint& remote,
            const char* state) {
  TcpEvent e;
  e.kind = kind;
  e.monotonic_ns = at_ms * kMs;
  e.netns = netns;
  e.local = local;
  e.remote = remote;
  e.tcp_state = static_cast<uint8_t>(*names().tcp_states.value(state));
  return e;
}

// The client's segment of an established connection, dropped by netfilter at
// the server's input hook (early demux gave the server socket: its cookie).
TcpEvent banned_segment(uint64_t at_ms, uint64_t cookie = 77, uint8_t flags = kPshAck) {
  TcpEvent e = at(EventKind::Drop, at_ms, kServerNs, kServer, kClient, "ESTABLISHED");
  e.reason = *names().drop_reasons.value("NETFILTER_DROP");
  e.tcp_flags = flags;
  e.ingress = true;
  e.routed = true;
  e.sock_cookie = cookie;
  return e;
}

// The client end, in a namespace of its own on this host, receives a reset.
TcpEvent client_reset(uint64_t at_ms, const char* state) {
  TcpEvent e = at(EventKind::ResetReceived, at_ms, kClientNs, kClient, kServer, state);
  e.sock_cookie = 99;
  e.owner = Process{900, "ssh"};
  e.owner_source = OwnerSource::Connect;
  return e;
}

struct Trace {
  Attributor attributor{names(), {22}};
  std::vector<Attribution> lines;
  // One poll of the trace loop at `at_ms`: settled groups judged, their
  // reports held or written (provenance is not run here: delivered at once).
  void poll(uint64_t at_ms) {
    const uint64_t now = at_ms * kMs;
    attributor.due(now, [&](Attribution& report) {
      attributor.hold(report, now, [&](Attribution& line) { lines.push_back(line); });
    });
    attributor.take_folded(now, [&](Attribution& line) { lines.push_back(line); });
  }
  void add(const TcpEvent& event) { CHECK(attributor.add(event).empty()); }
};

}  // namespace

TEST_CASE("a ban that cuts an established connection: one line, its retransmissions folded in") {
  Trace trace;
  trace.add(banned_segment(0));
  trace.poll(200);  // judged (settled after 150 ms), its line held
  CHECK(trace.lines.empty());
  // Retransmissions at doubling intervals: each would be a group of its own.
  for (uint64_t at : {200, 600, 1400}) {
    trace.add(banned_segment(at));
    trace.poll(at + 200);
  }
  trace.poll(3000);  // 1.6 s quiet, less than 3x the last gap (0.8 s)
  CHECK(trace.lines.empty());
  trace.poll(3900);
  REQUIRE(trace.lines.size() == 1);
  const Attribution& line = trace.lines.front();
  CHECK(line.verdict == Verdict::Firewall);
  CHECK(line.packets == 4);
  CHECK(line.folded_drops == 3);
  CHECK(line.last_folded_ns == 1400 * kMs);
  CHECK(line.event.monotonic_ns == 0);  // the first drop is the line's event
  CHECK_THAT(line.detail, Catch::Contains("3 later packets of the connection dropped too"));
  CHECK_THAT(line.detail, Catch::Contains("the last 1.4 s after the first"));

  SECTION("later drops of the connection are absorbed, never judged again (a rule removed meanwhile cannot re-attribute them)") {
    trace.add(banned_segment(5000));
    trace.add(banned_segment(60'000));
    trace.poll(70'000);
    CHECK(trace.lines.size() == 1);
    CHECK(trace.attributor.absorbed() == 2);
  }
  SECTION("a drop for another reason is other evidence: judged on its own") {
    TcpEvent other = banned_segment(5000);
    other.reason = *names().drop_reasons.value("SOCKET_RCVBUFF");
    trace.add(other);
    trace.poll(5200);  // judged; its own line held for its own later drops
    trace.poll(7000);
    REQUIRE(trace.lines.size() == 2);
    CHECK(trace.lines.back().verdict == Verdict::Kernel);
  }
  SECTION("another socket on the same four-tuple is another connection") {
    trace.add(banned_segment(5000, 78));
    trace.poll(5200);
    trace.poll(20'000);
    REQUIRE(trace.lines.size() == 2);
    CHECK(trace.lines.back().folded_drops == 0);
  }
}

TEST_CASE("a folded connection's line is written when the connection closes, or after at most 5 s") {
  Trace trace;
  trace.add(banned_segment(0));
  trace.poll(200);
  trace.add(banned_segment(200));
  SECTION("its close") {
    ConnectionNote closed{.closed = true, .left_state = 1, .socket = banned_segment(300)};
    trace.attributor.add(closed);
    trace.poll(350);
    REQUIRE(trace.lines.size() == 1);
    CHECK(trace.lines.front().folded_drops == 1);
  }
  SECTION("a ban that lasts: the line after 5 s, then absorbed") {
    for (uint64_t at : {600, 1200, 2400, 4800}) {
      trace.add(banned_segment(at));
      trace.poll(at + 10);
    }
    CHECK(trace.lines.empty());
    trace.poll(5'000);
    REQUIRE(trace.lines.size() == 1);
    CHECK(trace.lines.front().folded_drops == 5);
    trace.add(banned_segment(9'600));
    trace.poll(20'000);
    CHECK(trace.lines.size() == 1);
    CHECK(trace.attributor.absorbed() == 1);
  }
}

TEST_CASE("a dropped SYN opens no fold (its retransmissions are the correlator's), nor a drop answered by a reset") {
  Trace trace;
  trace.add(banned_segment(0, 77, kSyn));
  trace.poll(1400);
  REQUIRE(trace.lines.size() == 1);
  CHECK(trace.lines.front().fold_id == 0);
  Trace acked;
  acked.add(banned_segment(0, 77, kAck));
  TcpEvent received = client_reset(1, "ESTABLISHED");
  received.netns = kServerNs;  // loopback: both ends in one namespace, one group
  acked.add(received);
  acked.poll(200);
  REQUIRE(acked.lines.size() == 1);
  CHECK(acked.lines.front().verdict == Verdict::Firewall);
  CHECK(acked.lines.front().peer_saw == "reset");  // the client end got the REJECT's reset
}

TEST_CASE("the client's view: a reset netfilter built on this host is said so on the client's peer line") {
  Trace trace;
  trace.add(banned_segment(0, 77, kSyn));
  trace.add(client_reset(0, "SYN_SENT"));
  trace.poll(1400);
  REQUIRE(trace.lines.size() == 2);
  const auto peer = std::find_if(trace.lines.begin(), trace.lines.end(),
                                 [](const Attribution& line) { return line.verdict == Verdict::Peer; });
  REQUIRE(peer != trace.lines.end());
  CHECK(peer->event.netns == kClientNs);
  REQUIRE(peer->netfilter_reset_drop);
  CHECK(peer->netfilter_reset_drop->netns == kServerNs);
  CHECK(peer->needs_provenance);  // the rule is read in the server's namespace
  CHECK_THAT(peer->detail, Catch::Contains("netfilter on this host built this reset"));
  CHECK_THAT(peer->detail, Catch::Contains("input hook of netns 4026532001"));

  SECTION("a reset with no netfilter drop of its connection is the peer's alone") {
    Trace alone;
    alone.add(client_reset(0, "ESTABLISHED"));
    alone.poll(200);
    REQUIRE(alone.lines.size() == 1);
    CHECK_FALSE(alone.lines.front().netfilter_reset_drop);
  }
  SECTION("another namespace's drop of the same four-tuple after the reset did not build it") {
    // Two labs (or containers) with identical addresses: the REJECT's drop comes before its reset.
    Trace twins;
    twins.add(banned_segment(0, 77, kSyn));
    twins.add(client_reset(0, "SYN_SENT"));
    TcpEvent other = banned_segment(72, 78, kSyn);
    other.netns = 4026532099u;
    twins.add(other);
    twins.poll(1400);
    const auto line = std::find_if(twins.lines.begin(), twins.lines.end(),
                                   [](const Attribution& l) { return l.verdict == Verdict::Peer; });
    REQUIRE(line != twins.lines.end());
    REQUIRE(line->netfilter_reset_drop);
    CHECK(line->netfilter_reset_drop->netns == kServerNs);
  }
  SECTION("a drop long before the reset is not its cause") {
    Trace late;
    late.add(banned_segment(0, 77, kSyn));
    late.add(client_reset(5000, "SYN_SENT"));
    late.poll(8000);
    for (const auto& line : late.lines) CHECK_FALSE(line.netfilter_reset_drop);
  }
}
