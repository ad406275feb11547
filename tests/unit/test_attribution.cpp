// The attribution rules and the correlation, on synthetic kernel events
// shaped like the sequences measured with the real sshd (docs/attribution.md).
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include "attribute/attributor.h"
#include "attribute/correlator.h"
#include "attribute/rules.h"
#include "collect_helpers.h"
#include "synthetic_btf.h"

using namespace rsttrace;
using rsttrace::testing::SyntheticBtf;

namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint8_t kSyn = 0x02, kAck = 0x10, kAckRst = 0x14;

// Values as on some kernel; the rules only ever use the names.
const KernelNames& names() {
  static const KernelNames table = [] {
    SyntheticBtf types;
    types.add_enum("sk_rst_reason", {{"SK_RST_REASON_NOT_SPECIFIED", 0}, {"SK_RST_REASON_NO_SOCKET", 1},
                                     {"SK_RST_REASON_TCP_ABORT_ON_DATA", 8}, {"SK_RST_REASON_TCP_ABORT_ON_CLOSE", 11},
                                     {"SK_RST_REASON_TCP_STATE", 14}, {"SK_RST_REASON_TCP_KEEPALIVE_TIMEOUT", 15},
                                     {"SK_RST_REASON_TCP_TIMEWAIT_SOCKET", 5}});
    types.add_enum("skb_drop_reason", {{"SKB_DROP_REASON_NO_SOCKET", 3}, {"SKB_DROP_REASON_NETFILTER_DROP", 12},
                                       {"SKB_DROP_REASON_TCP_LISTEN_OVERFLOW", 40}, {"SKB_DROP_REASON_QUEUE_PURGE", 60},
                                       {"SKB_DROP_REASON_IP_RPFILTER", 16}});
    types.add_enum("", {{"TCP_ESTABLISHED", 1}, {"TCP_SYN_SENT", 2}, {"TCP_TIME_WAIT", 6}, {"TCP_CLOSE", 7}, {"TCP_CLOSE_WAIT", 8},
                        {"TCP_LISTEN", 10}});
    return KernelNames::from_btf(types.get());
  }();
  return table;
}

uint32_t reset_reason(const char* name) { return *names().reset_reasons.value(name); }
uint32_t drop_reason(const char* name) { return *names().drop_reasons.value(name); }
uint8_t state(const char* name) { return static_cast<uint8_t>(*names().tcp_states.value(name)); }

Endpoint v4(const char* addr, uint16_t port) {
  Endpoint end;
  inet_pton(AF_INET, addr, end.addr.data());
  end.port = port;
  return end;
}

const Endpoint kServer = v4("127.0.0.1", 22);
const Endpoint kClient = v4("127.0.0.2", 40022);

// An event seen from the server's end (local 22) unless `client_side`.
TcpEvent event(EventKind kind, uint64_t at_ms, bool client_side = false) {
  TcpEvent e;
  e.kind = kind;
  e.monotonic_ns = at_ms * kMs;
  e.netns = 4026532000u;
  e.local = client_side ? kClient : kServer;
  e.remote = client_side ? kServer : kClient;
  return e;
}

// The listener's reset of a late segment (an ACK: TCP_FLAGS) of the client's connection.
TcpEvent late_listener_reset(uint64_t at_ms) {
  TcpEvent late = event(EventKind::ResetSent, at_ms);
  late.reason = reset_reason("TCP_FLAGS");
  late.tcp_state = state("LISTEN");
  late.tcp_flags = kAck;
  late.sock_cookie = 17;  // the listener's
  return late;
}

TcpEvent server_reset(const char* reason, uint64_t at_ms, Process owner, OwnerSource source) {
  TcpEvent e = event(EventKind::ResetSent, at_ms);
  e.reason = reset_reason(reason);
  e.sock_id = 0x1000;
  e.tcp_state = state("CLOSE");
  e.full_socket = true;
  e.owner = owner;
  e.owner_source = source;
  return e;
}

TcpEvent client_received(uint64_t at_ms, const char* state_name) {
  TcpEvent e = event(EventKind::ResetReceived, at_ms, true);
  e.sock_id = 0x2000;
  e.tcp_state = state(state_name);
  e.owner = Process{900, "ssh"};
  e.owner_source = OwnerSource::Connect;
  return e;
}

TcpEvent syn_drop(const char* reason, uint64_t at_ms) {
  TcpEvent e = event(EventKind::Drop, at_ms);
  e.reason = drop_reason(reason);
  e.tcp_flags = kSyn;
  e.ingress = true;
  e.routed = true;
  return e;
}

struct Fixture {
  Evidence evidence;
  std::set<uint16_t> watched{22};
  std::optional<Attribution> judge(const std::vector<TcpEvent>& group) {
    return rsttrace::judge(group, RuleContext{names(), evidence, watched});
  }
  void wrapper_check(uint32_t pid, uint64_t at_ms) {
    for (auto file : {WrapperFile::HostsAllow, WrapperFile::HostsDeny})
      evidence.add(WrapperOpen{at_ms * kMs, Process{pid, "sshd"}, Process{800, "sshd"}, "sshd", file, 0 /* O_RDONLY */, 1});
  }
};

}  // namespace

TEST_CASE_METHOD(Fixture, "libwrap refusal: the child read hosts.deny, sent nothing, closed 5 s later") {
  wrapper_check(812, 1000);
  TcpEvent reset = server_reset("TCP_ABORT_ON_CLOSE", 6000, {812, "sshd"}, OwnerSource::Close);
  reset.acceptor_pid = 800;  // the listener
  reset.acceptor_monotonic_ns = 990 * kMs;
  reset.bytes_received = 41;
  reset.unread_bytes = 41;
  reset.owner_exiting = true;
  const auto report = judge({client_received(6000, "ESTABLISHED"), reset});
  REQUIRE(report);
  CHECK(report->verdict == Verdict::TcpWrappers);
  CHECK(report->event.local.port == 22);  // shown from the server's end
  CHECK(report->packets == 2);
  CHECK(report->peer_saw == "reset");
  CHECK_THAT(report->detail, Catch::Contains("sshd[812] read /etc/hosts.allow and /etc/hosts.deny"));
  CHECK_THAT(report->detail, Catch::Contains("5.0 s later"));
}

TEST_CASE_METHOD(Fixture, "an allowed connection that later aborts is not blamed on the wrappers") {
  wrapper_check(812, 1000);
  TcpEvent reset = server_reset("TCP_ABORT_ON_CLOSE", 1500, {812, "sshd"}, OwnerSource::Close);
  reset.bytes_acked = 41;  // sshd sent its banner: the wrappers let it through
  reset.bytes_received = 60;
  reset.unread_bytes = 13;
  const auto report = judge({reset});
  REQUIRE(report);
  CHECK(report->verdict == Verdict::Sshd);
  CHECK_THAT(report->detail, Catch::Contains("garbage banner"));
}

TEST_CASE_METHOD(Fixture, "the listener closing what it accepted is MaxStartups") {
  TcpEvent reset = server_reset("TCP_ABORT_ON_DATA", 2000, {800, "sshd"}, OwnerSource::Close);
  reset.acceptor_pid = 800;
  reset.acceptor_monotonic_ns = 1999 * kMs;
  reset.context = Process{900, "ssh"};  // ran in the client's task
  const auto report = judge({reset});
  REQUIRE(report);
  CHECK(report->verdict == Verdict::Sshd);
  CHECK_THAT(report->detail, Catch::Contains("MaxStartups"));
  CHECK(report->event.owner->pid == 800);
}

TEST_CASE_METHOD(Fixture, "a killed sshd child is named with its signal") {
  TcpEvent reset = server_reset("TCP_ABORT_ON_CLOSE", 2000, {812, "sshd"}, OwnerSource::Close);
  reset.acceptor_pid = 800;
  reset.owner_exiting = true;
  reset.owner_exit_code = 9;
  const auto report = judge({reset});
  REQUIRE(report);
  CHECK(report->verdict == Verdict::Sshd);
  CHECK_THAT(report->detail, Catch::Contains("killed by SIGKILL"));
}

TEST_CASE_METHOD(Fixture, "a reset for a SYN with no socket: nothing listens") {
  TcpEvent reset = event(EventKind::ResetSent, 10);
  reset.reason = reset_reason("NO_SOCKET");
  reset.tcp_flags = kSyn;
  const auto report = judge({reset, syn_drop("NO_SOCKET", 10), client_received(10, "SYN_SENT")});
  REQUIRE(report);
  CHECK(report->verdict == Verdict::NoListener);
  CHECK(report->packets == 3);
  CHECK(report->event.kind == EventKind::ResetSent);
}

TEST_CASE_METHOD(Fixture, "before 6.10 the no-socket reset is untraced: the SYN's NO_SOCKET drop is the evidence") {
  const auto report = judge({syn_drop("NO_SOCKET", 10), client_received(10, "SYN_SENT")});
  REQUIRE(report);
  CHECK(report->verdict == Verdict::NoListener);
  CHECK(report->peer_saw == "reset");
  CHECK(report->event.kind == EventKind::Drop);
  CHECK_THAT(report->detail, Catch::Contains("found no socket (NO_SOCKET)"));
}

TEST_CASE_METHOD(Fixture, "netfilter: REJECT shows as a reset to the local client, DROP as retransmissions") {
  SECTION("reject") {
    const auto report = judge({syn_drop("NETFILTER_DROP", 10), client_received(10, "SYN_SENT")});
    REQUIRE(report);
    CHECK(report->verdict == Verdict::Firewall);
    CHECK(report->peer_saw == "reset");
    CHECK(report->netfilter_hook == "input");
    CHECK_THAT(report->detail, Catch::Contains("REJECT"));
  }
  SECTION("drop") {
    const auto report = judge({syn_drop("NETFILTER_DROP", 10), syn_drop("NETFILTER_DROP", 1010)});
    REQUIRE(report);
    CHECK(report->verdict == Verdict::Firewall);
    CHECK(report->peer_saw == "silence");
    CHECK(report->packets == 2);
  }
  SECTION("prerouting: dropped before routing") {
    TcpEvent drop = syn_drop("NETFILTER_DROP", 10);
    drop.routed = false;
    CHECK(judge({drop})->netfilter_hook == "prerouting");
  }
}

TEST_CASE_METHOD(Fixture, "the client aborting is the peer, shown from the server's end") {
  TcpEvent abort = event(EventKind::ResetSent, 10, true);
  abort.reason = reset_reason("TCP_STATE");
  abort.sock_id = 0x2000;
  abort.owner = Process{900, "ssh"};
  abort.owner_source = OwnerSource::Close;
  TcpEvent received = event(EventKind::ResetReceived, 10);
  received.sock_id = 0x1000;
  received.tcp_state = state("ESTABLISHED");
  received.owner = Process{812, "sshd"};
  const auto report = judge({received, abort});
  REQUIRE(report);
  CHECK(report->verdict == Verdict::Peer);
  CHECK(report->event.kind == EventKind::ResetReceived);
  CHECK(report->event.local.port == 22);
  CHECK_THAT(report->detail, Catch::Contains("ssh[900]"));
}

TEST_CASE_METHOD(Fixture, "a remote peer's reset alone is the peer") {
  TcpEvent received = event(EventKind::ResetReceived, 10);
  received.sock_id = 0x1000;
  received.tcp_state = state("ESTABLISHED");
  CHECK(judge({received})->verdict == Verdict::Peer);
}

TEST_CASE_METHOD(Fixture, "the kernel's own resets and meaningful drops are the kernel, named") {
  TcpEvent keepalive = event(EventKind::ResetSent, 10);
  keepalive.reason = reset_reason("TCP_KEEPALIVE_TIMEOUT");
  keepalive.sock_id = 0x1000;
  auto report = judge({keepalive});
  REQUIRE(report);
  CHECK(report->verdict == Verdict::Kernel);
  CHECK_THAT(report->detail, Catch::Contains("keepalive"));

  report = judge({syn_drop("TCP_LISTEN_OVERFLOW", 10)});
  REQUIRE(report);
  CHECK(report->verdict == Verdict::Kernel);
  CHECK_THAT(report->detail, Catch::Contains("accept queue"));
}

TEST_CASE_METHOD(Fixture, "ordinary teardown drops are not a verdict") {
  TcpEvent purge = event(EventKind::Drop, 10, true);
  purge.reason = drop_reason("QUEUE_PURGE");
  purge.tcp_flags = 0x11;  // FIN|ACK
  CHECK_FALSE(judge({purge}));
}

TEST_CASE("the correlator folds one connection's events and waits for a dropped SYN's retransmission") {
  Correlator correlator;
  SECTION("a reset and its loopback twin become one group once settled") {
    correlator.add(event(EventKind::ResetSent, 100));
    correlator.add(client_received(100, "ESTABLISHED"));  // the same connection, from the other end
    CHECK(test::take_due(correlator, 200 * kMs).empty());         // not settled yet
    const auto groups = test::take_due(correlator, 300 * kMs);
    REQUIRE(groups.size() == 1);
    CHECK(groups[0].size() == 2);
  }
  SECTION("a lone dropped SYN waits for the first retransmission (1 s)") {
    correlator.add(syn_drop("NETFILTER_DROP", 0));
    CHECK(test::take_due(correlator, 500 * kMs).empty());
    correlator.add(syn_drop("NETFILTER_DROP", 1000));
    const auto groups = test::take_due(correlator, 1200 * kMs);
    REQUIRE(groups.size() == 1);
    CHECK(groups[0].size() == 2);
    // Later retransmissions of the reported drop are absorbed, not reported again.
    CHECK_FALSE(correlator.add(syn_drop("NETFILTER_DROP", 3000)));
    CHECK(correlator.absorbed() == 1);
    CHECK(test::take_due(correlator, 10'000 * kMs).empty());
  }
  SECTION("a lone dropped SYN is reported after the wait even without a retransmission") {
    correlator.add(syn_drop("NETFILTER_DROP", 0));
    CHECK(test::take_due(correlator, 1400 * kMs).size() == 1);
  }
  SECTION("a reused client port with a new SYN is a new connection") {
    TcpEvent first = syn_drop("NO_SOCKET", 0);
    first.tcp_seq = 1000;
    TcpEvent second = syn_drop("NO_SOCKET", 5);
    second.tcp_seq = 777777;
    correlator.add(first);
    correlator.add(second);
    CHECK(test::take_all(correlator).size() == 2);
  }
  SECTION("a new connection on a reported drop's tuple is not absorbed") {
    TcpEvent syn = syn_drop("NETFILTER_DROP", 0);
    syn.tcp_seq = 1000;
    TcpEvent again = syn;
    again.monotonic_ns = 1000 * kMs;
    correlator.add(syn);
    correlator.add(again);
    CHECK(test::take_due(correlator, 1200 * kMs).size() == 1);
    TcpEvent fresh = syn;
    fresh.monotonic_ns = 5000 * kMs;
    fresh.tcp_seq = 99;
    CHECK(correlator.add(fresh));
  }
  SECTION("different connections stay apart, oldest first") {
    TcpEvent other = event(EventKind::ResetSent, 50);
    other.remote.port = 40023;
    correlator.add(event(EventKind::ResetSent, 60));
    correlator.add(other);
    const auto groups = test::take_all(correlator);
    REQUIRE(groups.size() == 2);
    CHECK(groups[0][0].remote.port == 40023);
  }
  SECTION("memory is bounded: beyond the cap the oldest group is judged early") {
    Correlator small(CorrelatorSettings{.max_open = 2});
    for (uint16_t port = 1; port <= 3; ++port) {
      TcpEvent e = event(EventKind::ResetSent, port);
      e.remote.port = port;
      small.add(e);
    }
    CHECK(small.open_groups() == 2);
    CHECK(small.evicted() == 1);
    CHECK(test::take_due(small, 0).size() == 1);
  }
}

TEST_CASE("raw mode reports every kernel event at once") {
  Attributor raw(names(), {22}, true);
  CHECK(raw.add(event(EventKind::ResetSent, 1)).size() == 1);
  Attributor folded(names(), {22}, false);
  CHECK(folded.add(event(EventKind::ResetSent, 1)).empty());
  CHECK(test::flush(folded).size() == 1);
}

TEST_CASE("wrapper evidence is bounded and forgets the oldest process first") {
  Evidence evidence(2);
  auto open = [&](uint32_t pid, uint64_t at_ms) {
    evidence.add(WrapperOpen{at_ms * kMs, Process{pid, "sshd"}, Process{1, "sshd"}, "sshd", WrapperFile::HostsDeny, 0, 1});
  };
  open(10, 1);
  open(11, 2);
  open(10, 100'000);  // pid 10 again, long after: a new process, now the newest
  open(12, 100'001);  // over the cap: 11 is the oldest now
  CHECK(evidence.wrapper_check(10, 0, UINT64_MAX));
  CHECK_FALSE(evidence.wrapper_check(11, 0, UINT64_MAX));
  CHECK(evidence.wrapper_check(12, 0, UINT64_MAX));
  CHECK(evidence.evicted() == 1);
}

TEST_CASE("writers of the wrapper files are kept per mount namespace, checks are not writers") {
  Evidence evidence;
  evidence.add(WrapperOpen{5 * kMs, Process{70, "sh"}, Process{60, "fail2ban-server"}, "f2b/a.sshd", WrapperFile::HostsDeny,
                           02101 /* O_WRONLY|O_CREAT|O_APPEND */, 42});
  const auto writer = evidence.last_writer(42, WrapperFile::HostsDeny);
  REQUIRE(writer);
  CHECK(writer->parent.comm == "fail2ban-server");
  CHECK_FALSE(evidence.last_writer(43, WrapperFile::HostsDeny));
  CHECK_FALSE(evidence.wrapper_check(70, 0, UINT64_MAX));
}

// closed_by_owner's causes, each with its whole detail (the split into one
// rule per cause must not change a byte), in the order the rules ask.
TEST_CASE_METHOD(Fixture, "an owner's reset: each cause with its exact detail") {
  SECTION("the client gave up: peer") {
    TcpEvent abort = server_reset("TCP_ABORT_ON_CLOSE", 2000, {900, "ssh"}, OwnerSource::Close);
    std::swap(abort.local, abort.remote);  // the client's end closed
    const TcpEvent received = event(EventKind::ResetReceived, 2000);
    const auto report = judge({abort, received});
    REQUIRE(report);
    CHECK(report->verdict == Verdict::Peer);
    CHECK(report->event.kind == EventKind::ResetReceived);  // the watched end
    CHECK(!report->peer_saw);
    CHECK(report->detail == "the client ssh[900] at 127.0.0.2:40022 aborted the connection to 127.0.0.1:22 (TCP_ABORT_ON_CLOSE)");
  }
  SECTION("the wrappers refused: tcp-wrappers") {
    wrapper_check(812, 1000);
    TcpEvent reset = server_reset("TCP_ABORT_ON_CLOSE", 6000, {812, "sshd"}, OwnerSource::Close);
    reset.owner_exiting = true;
    const auto report = judge({reset});
    REQUIRE(report);
    CHECK(report->verdict == Verdict::TcpWrappers);
    CHECK(report->wrapper_pid == 812);
    CHECK(report->detail == "sshd[812] read /etc/hosts.allow and /etc/hosts.deny, sent nothing, and exited (status 0) 5.0 s "
                            "later: TCP wrappers refused 127.0.0.2:40022 (TCP_ABORT_ON_CLOSE)");
  }
  SECTION("a process that is not sshd: unknown") {
    TcpEvent reset = server_reset("TCP_ABORT_ON_CLOSE", 2000, {700, "nginx"}, OwnerSource::Close);
    reset.unread_bytes = 1;
    const auto report = judge({reset});
    REQUIRE(report);
    CHECK(report->verdict == Verdict::Unknown);
    CHECK(report->peer_saw == "reset");
    CHECK(report->detail == "the local process nginx[700] on 127.0.0.1:22 closed it (TCP_ABORT_ON_CLOSE, 1 unread byte); it is not sshd");
  }
  SECTION("sshd's own causes, in order") {
    struct Case {
      const char* cause;
      uint64_t at_ms;
      Process owner;
      void (*shape)(TcpEvent&);
      const char* detail;
    };
    const Case cases[] = {
        {"MaxStartups", 2000, {800, "sshd"},
         [](TcpEvent& e) { e.reason = reset_reason("TCP_ABORT_ON_DATA"), e.acceptor_pid = 800, e.acceptor_monotonic_ns = 1999 * kMs; },
         "the listening sshd[800] closed the connection from 127.0.0.2:40022 0.0 s after accept(), before any child took it "
         "(TCP_ABORT_ON_DATA): MaxStartups or PerSourcePenalties refused it: 0 other connections it had accepted were "
         "open against MaxStartups 10:30:100, defaults (sshd -T not run: pending), and rsttrace saw no earlier "
         "connection from 127.0.0.2"},
        {"killed", 2000, {812, "sshd"}, [](TcpEvent& e) { e.owner_exiting = true, e.owner_exit_code = 9; },
         "the sshd child sshd[812] was killed by SIGKILL holding the connection from 127.0.0.2:40022 (TCP_ABORT_ON_CLOSE)"},
        {"LoginGraceTime", 122'000, {812, "sshd-session"},
         [](TcpEvent& e) {
           e.acceptor_pid = 800, e.acceptor_monotonic_ns = 1000 * kMs;
           e.owner_exiting = true, e.owner_exit_code = 255 << 8;
         },
         "the sshd child sshd-session[812] exited (status 255) 121.0 s after accept: LoginGraceTime expired for "
         "127.0.0.2:40022 (TCP_ABORT_ON_CLOSE)"},
        {"garbage banner", 1500, {812, "sshd"}, [](TcpEvent& e) { e.bytes_received = 60, e.unread_bytes = 13; },
         "the pre-auth sshd child sshd[812] closed it with client data unread (60 bytes received, 13 unread): protocol "
         "mismatch or a garbage banner from 127.0.0.2:40022 (TCP_ABORT_ON_CLOSE)"},
        {"none of these", 1500, {812, "sshd"}, [](TcpEvent& e) { e.bytes_received = 2000, e.bytes_acked = 1; },
         "sshd[812] closed the connection from 127.0.0.2:40022 (TCP_ABORT_ON_CLOSE, 2000 bytes received, 1 byte sent)"},
    };
    for (const Case& c : cases) {
      INFO(c.cause);
      TcpEvent reset = server_reset("TCP_ABORT_ON_CLOSE", c.at_ms, c.owner, OwnerSource::Close);
      c.shape(reset);
      const auto report = judge({reset});
      REQUIRE(report);
      CHECK(report->verdict == Verdict::Sshd);
      CHECK(report->peer_saw == "reset");
      CHECK(report->detail == c.detail);
    }
  }
}

namespace {

// A connection note: the listener 800 accepted a connection from `client` at
// `accepted_ms`; closed at `closed_ms` (0: still open) leaving `left_state`.
void note_connection(Evidence& evidence, uint64_t sock, Endpoint client, uint64_t accepted_ms, uint64_t closed_ms,
                     uint8_t left_state, Process closer, uint64_t bytes_received = 21, uint32_t exit_code = 0) {
  ConnectionNote accepted;
  accepted.socket.sock_id = sock;
  accepted.socket.netns = 4026532000u;
  accepted.socket.local = kServer;
  accepted.socket.remote = client;
  accepted.socket.acceptor_pid = 800;
  accepted.socket.acceptor_monotonic_ns = accepted.socket.monotonic_ns = accepted_ms * kMs;
  evidence.add(accepted);
  if (!closed_ms) return;
  ConnectionNote closed = accepted;
  closed.closed = true;
  closed.left_state = left_state;
  closed.socket.monotonic_ns = closed_ms * kMs;
  closed.socket.owner = closer;
  closed.socket.owner_exiting = exit_code != 0;
  closed.socket.owner_exit_code = exit_code;
  closed.socket.bytes_received = bytes_received;
  evidence.add(closed);
}

TcpEvent listener_reset(uint64_t at_ms) {
  TcpEvent reset = server_reset("TCP_ABORT_ON_DATA", at_ms, {800, "sshd"}, OwnerSource::Close);
  reset.acceptor_pid = 800;
  reset.acceptor_monotonic_ns = at_ms * kMs;
  return reset;
}

constexpr uint8_t kLastAck = 9, kFinWait2 = 5;

}  // namespace

TEST_CASE_METHOD(Fixture, "PerSourcePenalties and MaxStartups told apart by the connections rsttrace saw") {
  SECTION("two earlier connections the client closed before key exchange: noauth penalty") {
    note_connection(evidence, 0x10, v4("127.0.0.2", 40001), 1000, 1100, kLastAck, {820, "sshd-auth"});
    note_connection(evidence, 0x11, v4("127.0.0.2", 40002), 2000, 2100, kLastAck, {821, "sshd-session"});
    const auto report = judge({listener_reset(4100)});
    REQUIRE(report);
    CHECK(report->verdict == Verdict::Sshd);
    CHECK(report->detail ==
          "the listening sshd[800] closed the connection from 127.0.0.2:40022 0.0 s after accept(), before any child "
          "took it (TCP_ABORT_ON_DATA): PerSourcePenalties refused it (MaxStartups cannot have: 0 other connections it "
          "had accepted were open, fewer than the start of MaxStartups 10:30:100, defaults (sshd -T not run: pending)); "
          "sources counted per netblock: PerSourceNetBlockSize 32:128, defaults (sshd -T not run: pending); "
          "penalty noauth (1 s a connection, refused from 15 s): 2 earlier connections from "
          "127.0.0.2 ended (3.0 s before: closed by the client after 0.1 s with 21 bytes received; 2.0 s before: "
          "closed by the client after 0.1 s with 21 bytes received)");
  }
  SECTION("a session killed by a signal: crash penalty; another address's history does not count") {
    note_connection(evidence, 0x10, v4("127.0.0.2", 40001), 1000, 3000, kFinWait2, {820, "sshd-session"}, 3000, 11);
    note_connection(evidence, 0x12, v4("127.0.0.3", 40001), 1000, 1100, kLastAck, {822, "sshd-session"});
    const auto report = judge({listener_reset(4000)});
    REQUIRE(report);
    CHECK_THAT(report->detail, Catch::Contains("penalty crash (its sshd was killed by SIGSEGV) (90 s a connection, refused from 15 s): 1 earlier connection "
                                               "from 127.0.0.2 ended (1.0 s before: closed by sshd after 2.0 s with "
                                               "3000 bytes received)"));
  }
  SECTION("ten connections open: MaxStartups") {
    for (uint64_t i = 0; i < 10; ++i) note_connection(evidence, 0x100 + i, v4("127.0.0.5", 40100 + i), 1000 + i, 0, 0, {});
    note_connection(evidence, 0x10, v4("127.0.0.2", 40001), 1000, 1100, kLastAck, {820, "sshd-session"});
    const auto report = judge({listener_reset(4000)});
    REQUIRE(report);
    CHECK_THAT(report->detail, Catch::EndsWith("(TCP_ABORT_ON_DATA): MaxStartups refused it: 10 other connections it "
                                               "had accepted were open against MaxStartups 10:30:100, "
                                               "defaults (sshd -T not run: pending): at or past its start, where "
                                               "sshd refuses 30% or more at random"));
  }
  SECTION("a connection closed before the refusal no longer counts as open") {
    for (uint64_t i = 0; i < 10; ++i) note_connection(evidence, 0x100 + i, v4("127.0.0.5", 40100 + i), 1000 + i, 3000, kLastAck, {});
    const auto report = judge({listener_reset(4000)});
    REQUIRE(report);
    CHECK_THAT(report->detail, Catch::Contains("0 other connections it had accepted were open"));
  }
  SECTION("children named sshd: OpenSSH before 9.8, no PerSourcePenalties") {
    note_connection(evidence, 0x10, v4("127.0.0.2", 40001), 1000, 1100, kLastAck, {820, "sshd"});
    const auto report = judge({listener_reset(4000)});
    REQUIRE(report);
    CHECK_THAT(report->detail, Catch::EndsWith("MaxStartups refused it: 0 other connections it had accepted were open "
                                               "against MaxStartups 10:30:100, defaults (sshd -T not run: pending) "
                                               "(its children are named sshd: an OpenSSH before 9.8, which has no "
                                               "PerSourcePenalties; MaxStartups must be set below its default start)"));
  }
}

TEST_CASE_METHOD(Fixture, "a TIME_WAIT reset after a process that is not sshd closed: the FIN_WAIT2 path's verdict") {
  // Which socket answers a late segment is a race of the kernel's; the verdict must not depend on it.
  note_connection(evidence, 0x10, kClient, 1000, 3010, kFinWait2, {930, "python3"});
  TcpEvent reset = event(EventKind::ResetSent, 3500);
  reset.reason = reset_reason("TCP_TIMEWAIT_SOCKET");
  const auto report = judge({reset});
  REQUIRE(report);
  CHECK(report->verdict == Verdict::Unknown);
  CHECK(report->peer_saw == "reset");
  REQUIRE(report->event.owner);
  CHECK(report->event.owner->pid == 930u);
  CHECK_THAT(report->detail, Catch::StartsWith("the local process python3[930] on ") &&
                                 Catch::Contains(" had closed it; a later segment from 127.0.0.2:40022 met its TIME_WAIT "
                                                 "socket (TCP_TIMEWAIT_SOCKET); it is not sshd"));
}

TEST_CASE_METHOD(Fixture, "a TIME_WAIT reset after an sshd close no sshd rule names: sshd, as on the full socket") {
  note_connection(evidence, 0x10, kClient, 1000, 60000, kFinWait2, {820, "sshd-session"}, 3000);
  TcpEvent reset = event(EventKind::ResetSent, 60500);
  reset.reason = reset_reason("TCP_TIMEWAIT_SOCKET");
  const auto report = judge({reset});
  REQUIRE(report);
  CHECK(report->verdict == Verdict::Sshd);
  CHECK(report->detail == "sshd-session[820] closed the connection (3000 bytes received, 0 bytes sent) 0.5 s before a "
                          "later segment from 127.0.0.2:40022 met its TIME_WAIT socket (TCP_TIMEWAIT_SOCKET)");
}

TEST_CASE_METHOD(Fixture, "a TIME_WAIT reset after sshd's LoginGraceTime ran out: certain from the exit status") {
  // The reset of the TIME_WAIT socket sshd's close left: the client wrote after the grace time.
  auto late_reset = [](uint64_t at_ms) {
    TcpEvent reset = event(EventKind::ResetSent, at_ms);
    reset.reason = reset_reason("TCP_TIMEWAIT_SOCKET");
    reset.sock_id = 0x3000;
    return reset;
  };
  const std::string kCertainGrace =
      "sshd closed the connection from 127.0.0.2:40022 when its LoginGraceTime (1 to 2 s: OpenSSH 9.8+ adds up to 4 s "
      "of random jitter) ran out (certain: sshd-session[820] exited with status 3, OpenSSH's EXIT_LOGIN_GRACE, 2.0 s "
      "after accept(), with 0 bytes from the client); the later reset came from the closed socket: ";
  SECTION("OpenSSH 9.8+: sshd-session exited with EXIT_LOGIN_GRACE (3)") {
    note_connection(evidence, 0x10, kClient, 1000, 3010, kFinWait2, {820, "sshd-session"}, 0, 3 << 8);
    const auto report = judge({late_reset(3500)});
    REQUIRE(report);
    CHECK(report->verdict == Verdict::Sshd);
    CHECK(report->peer_saw == "reset");
    CHECK(report->detail == kCertainGrace + "a segment for a connection in TIME_WAIT (TCP_TIMEWAIT_SOCKET), 0.5 s after the close");
  }
  SECTION("OpenSSH 9.2: sshd exited 1, as from any fatal error: probable") {
    note_connection(evidence, 0x10, kClient, 1000, 3010, kFinWait2, {820, "sshd"}, 0, 1 << 8);
    const auto report = judge({late_reset(3500)});
    REQUIRE(report);
    CHECK(report->verdict == Verdict::Sshd);
    CHECK_THAT(report->detail, Catch::Contains("when its LoginGraceTime (2 s) ran out (probable: sshd[820] exited "
                                               "(status 1) 2.0 s after accept(), with 0 bytes from the client, too "
                                               "few to authenticate; only OpenSSH 9.8+'s sshd-session exit status (3) "
                                               "proves the grace alarm)"));
  }
  SECTION("not the grace time: killed by SIGKILL, a key exchange received; closed by the client, another port") {
    note_connection(evidence, 0x10, kClient, 1000, 3010, kFinWait2, {820, "sshd-session"}, 0, 9);
    note_connection(evidence, 0x11, v4("127.0.0.2", 40023), 1000, 3010, kFinWait2, {821, "sshd-session"}, 3000, 3 << 8);
    note_connection(evidence, 0x12, v4("127.0.0.2", 40024), 1000, 3010, kLastAck, {822, "sshd-session"}, 0, 3 << 8);
    const std::string closed[] = {"sshd-session[820] was killed by SIGKILL, which closed the connection (0 bytes",
                                  "sshd-session[821] exited (status 3), which closed the connection (3000 bytes"};
    for (uint16_t port : {40022, 40023}) {
      TcpEvent reset = late_reset(3500);
      reset.remote.port = port;
      const auto report = judge({reset});
      REQUIRE(report);
      CHECK(report->verdict == Verdict::Sshd);  // sshd's close, as on the full socket
      CHECK_THAT(report->detail, Catch::StartsWith(closed[port - 40022]));
    }
    // The client closed first (no TIME_WAIT of the server's), or no notes: the kernel's.
    for (uint16_t port : {40024, 40025}) {
      TcpEvent reset = late_reset(3500);
      reset.remote.port = port;
      const auto report = judge({reset});
      REQUIRE(report);
      CHECK(report->verdict == Verdict::Kernel);
      CHECK_THAT(report->detail, Catch::StartsWith("the kernel reset the connection with 127.0.0.2:"));
    }
  }
  SECTION("the closed socket still a full one (FIN_WAIT2): the client's data meets it, TCP_ABORT_ON_DATA") {
    TcpEvent reset = server_reset("TCP_ABORT_ON_DATA", 3500, {820, "sshd-session"}, OwnerSource::Close);
    reset.acceptor_pid = 800, reset.acceptor_monotonic_ns = 1000 * kMs;
    reset.owner_monotonic_ns = 3010 * kMs;
    reset.owner_exiting = true, reset.owner_exit_code = 3 << 8;
    const auto report = judge({reset});
    REQUIRE(report);
    CHECK(report->verdict == Verdict::Sshd);
    CHECK(report->detail == kCertainGrace + "data arrived after the close (TCP_ABORT_ON_DATA), 0.5 s after the close");
    reset.owner_exit_code = 255 << 8;  // fatal(): not the grace alarm
    CHECK(judge({reset})->detail == "sshd-session[820] exited (status 255), which closed the connection from 127.0.0.2:40022 "
                                    "(TCP_ABORT_ON_DATA, 0 bytes received, 0 bytes sent)");
  }
  SECTION("the latest connection of the four-tuple decides") {
    note_connection(evidence, 0x10, kClient, 1000, 3010, kFinWait2, {820, "sshd-session"}, 0, 3 << 8);
    note_connection(evidence, 0x11, kClient, 4000, 4100, kFinWait2, {821, "sshd-session"}, 0, 255 << 8);
    const auto report = judge({late_reset(4200)});
    REQUIRE(report);
    CHECK_THAT(report->detail, Catch::StartsWith("sshd-session[821] exited (status 255), which closed"));
  }
}

TEST_CASE_METHOD(Fixture, "the listener's refusal seen only as the TIME_WAIT reset of the client's late banner") {
  // sshd's listener closed the accepted connection before the client's banner came (MaxStartups full: one
  // connection held); the FIN was acknowledged, the orphan went to TIME_WAIT, and the banner met its reset.
  note_connection(evidence, 0x21, v4("127.0.0.3", 40100), 900, 0, 0, {});
  note_connection(evidence, 0x20, kClient, 1000, 1001, kFinWait2, {800, "sshd"});
  TcpEvent reset = event(EventKind::ResetSent, 1300);
  reset.sock_id = 0x3000;
  const std::string kRefusal =
      "the listening sshd[800] closed the connection from 127.0.0.2:40022 0.0 s after accept(), before any child "
      "took it; the client's data came after that close was acknowledged, and the closed socket reset it (a segment "
      "for a connection in TIME_WAIT (TCP_TIMEWAIT_SOCKET)): MaxStartups or PerSourcePenalties refused it: 1 other "
      "connection it had accepted was open against MaxStartups 10:30:100";
  SECTION("before 6.10: no reason, the socket's state (the fexit on tcp_timewait_state_process)") {
    reset.tcp_state = state("TIME_WAIT");
    const auto report = judge({reset});
    REQUIRE(report);
    CHECK(report->verdict == Verdict::Sshd);
    CHECK(report->peer_saw == "reset");
    CHECK_THAT(report->detail, Catch::StartsWith(kRefusal));
    REQUIRE(report->sshd_refusal);
    CHECK(report->sshd_refusal->listener_pid == 800);
    CHECK(report->needs_provenance);
  }
  SECTION("6.10 and later: TCP_TIMEWAIT_SOCKET") {
    reset.reason = reset_reason("TCP_TIMEWAIT_SOCKET");
    const auto report = judge({reset});
    REQUIRE(report);
    CHECK(report->verdict == Verdict::Sshd);
    CHECK_THAT(report->detail, Catch::StartsWith(kRefusal));
  }
  SECTION("closed by a child, not by the listener: not a listener's refusal") {
    Evidence other;
    note_connection(other, 0x20, kClient, 1000, 1001, kFinWait2, {820, "sshd"});
    reset.tcp_state = state("TIME_WAIT");
    const auto report = rsttrace::judge({reset}, RuleContext{names(), other, watched});
    CHECK((!report || report->detail.find("MaxStartups") == std::string::npos));
  }
}

TEST_CASE_METHOD(Fixture, "a session killed by SIGKILL earns no crash penalty (OpenSSH's signal_is_crash)") {
  note_connection(evidence, 0x10, v4("127.0.0.2", 40001), 1000, 3000, kFinWait2, {820, "sshd-session"}, 3000, 9);
  const auto report = judge({listener_reset(4000)});
  REQUIRE(report);
  CHECK_THAT(report->detail, Catch::Contains("penalty none (its sshd was killed by SIGKILL, which OpenSSH does not "
                                             "count as a crash): 1 earlier connection from 127.0.0.2 ended"));
}

TEST_CASE("the connection history is bounded and follows reused socket addresses") {
  Evidence evidence;
  ConnectionHistory history(4);
  for (uint64_t i = 0; i < 6; ++i) {
    ConnectionNote note;
    note.socket.sock_id = 0x10;  // the same address, reused
    note.socket.netns = 1;
    note.socket.acceptor_pid = 800;
    note.socket.acceptor_monotonic_ns = note.socket.monotonic_ns = (i + 1) * 1000 * kMs;
    history.add(note);
    note.closed = true;
    note.socket.monotonic_ns += 500 * kMs;
    history.add(note);
  }
  CHECK(history.evicted() == 2);
  CHECK(history.open_at(1, 800, 6200 * kMs, 0) == 1);
  CHECK(history.open_at(1, 800, 6600 * kMs, 0) == 0);
  CHECK(history.ended_from(1, 4, {}, 0, UINT64_MAX).size() == 4);
}

TEST_CASE_METHOD(Fixture, "a twist command of hosts.deny: the sshd child became a shell") {
  wrapper_check(812, 1000);
  TcpEvent reset = server_reset("TCP_ABORT_ON_CLOSE", 1100, {812, "sh"}, OwnerSource::Close);
  reset.acceptor_pid = 800;
  reset.acceptor_monotonic_ns = 990 * kMs;
  reset.bytes_acked = 10;  // "go away\r\n" and the SYN
  reset.owner_exiting = true;
  const auto report = judge({reset});
  REQUIRE(report);
  CHECK(report->verdict == Verdict::TcpWrappers);
  CHECK(report->detail ==
        "the sshd child 812 read /etc/hosts.allow and /etc/hosts.deny, then became sh[812] (a hosts_options twist "
        "command), which answered the client (9 bytes acknowledged) and exited (status 0) 0.1 s later: TCP wrappers refused 127.0.0.2:40022 with "
        "twist (TCP_ABORT_ON_CLOSE)");
  CHECK(report->wrapper_pid == 812);
}

// Issue 15: kernel refusals, signals, one line per connection.

namespace {
// The handshake's last ACK, dropped on sshd's listener with 3 waiting, backlog 2.
TcpEvent ack_dropped_at_full_queue() {
  TcpEvent ack = event(EventKind::Drop, 10);
  ack.tcp_flags = 0x10;
  ack.ingress = true;
  ack.sock_id = 0x3000;
  ack.tcp_state = state("LISTEN");
  ack.full_socket = true;
  ack.owner = Process{800, "sshd"};
  ack.owner_source = OwnerSource::Listen;
  ack.listen_backlog = 2;
  ack.accept_queue = 3;
  return ack;
}
}  // namespace

TEST_CASE_METHOD(Fixture, "a full accept queue names the listener, its backlog and that it was not accepting") {
  TcpEvent ack = ack_dropped_at_full_queue();
  ack.reason = drop_reason("TCP_LISTEN_OVERFLOW");
  const auto report = judge({ack});
  REQUIRE(report);
  CHECK(report->verdict == Verdict::Kernel);
  CHECK(report->detail ==
        "the accept queue of sshd[800] on 127.0.0.1:22 was full (3 waiting, backlog 2): it was not accepting connections "
        "(stopped, stuck or too slow), and the kernel dropped 1 packet from 127.0.0.2:40022 (TCP_LISTEN_OVERFLOW; nstat "
        "TcpExtListenOverflows)");
}

// Before 6.15 the drop has no reason: the fexit on tcp_check_req saw the full queue.
TEST_CASE_METHOD(Fixture, "a full accept queue seen by the tcp_check_req fexit gets the same verdict, without a reason") {
  TcpEvent ack = ack_dropped_at_full_queue();
  ack.listen_overflow = true;
  auto report = judge({ack});
  REQUIRE(report);
  CHECK(report->verdict == Verdict::Kernel);
  CHECK(report->detail ==
        "the accept queue of sshd[800] on 127.0.0.1:22 was full (3 waiting, backlog 2): it was not accepting connections "
        "(stopped, stuck or too slow), and the kernel dropped 1 packet from 127.0.0.2:40022 (no drop reason on this "
        "kernel: tcp_check_req found the queue full; nstat TcpExtListenOverflows)");
  // Without the fexit's mark, the same reasonless drop of an ACK is a teardown drop: no line.
  ack.listen_overflow = false;
  CHECK_FALSE(judge({ack}));
}

TEST_CASE_METHOD(Fixture, "reverse-path filtering is named in words, its reason once") {
  const auto report = judge({syn_drop("IP_RPFILTER", 10)});
  REQUIRE(report);
  CHECK(report->verdict == Verdict::Kernel);
  CHECK(report->detail ==
        "the kernel dropped 1 packet of the connection with 127.0.0.2:40022: reverse-path filtering (rp_filter): the route "
        "back to the source leaves by another interface (IP_RPFILTER)");
}

TEST_CASE("exit codes: a signal in the low 7 bits, the status above") {
  CHECK(exit_words(9) == "was killed by SIGKILL");
  CHECK(exit_words(15) == "was killed by SIGTERM");
  CHECK(exit_words(11 | 0x80) == "was killed by SIGSEGV (core dumped)");
  CHECK(exit_words(0) == "exited (status 0)");
  CHECK(exit_words(255 << 8) == "exited (status 255)");
}

TEST_CASE_METHOD(Fixture, "a listener killed by a signal is named with the signal, never 'exited (status 0)'") {
  SECTION("holding a connection it accepted: not MaxStartups") {
    TcpEvent reset = server_reset("TCP_ABORT_ON_CLOSE", 2000, {800, "sshd"}, OwnerSource::Close);
    reset.acceptor_pid = 800;
    reset.acceptor_monotonic_ns = 1500 * kMs;
    reset.owner_exiting = true;
    reset.owner_exit_code = 9;
    const auto report = judge({reset});
    REQUIRE(report);
    CHECK(report->verdict == Verdict::Sshd);
    CHECK(report->detail == "the listening sshd[800] was killed by SIGKILL holding the connection from 127.0.0.2:40022, "
                            "accepted 0.5 s before (TCP_ABORT_ON_CLOSE)");
  }
  SECTION("with a connection never accepted, still in its accept queue") {
    TcpEvent reset = server_reset("TCP_STATE", 2000, {800, "sshd"}, OwnerSource::Close);
    reset.owner_exiting = true;
    reset.owner_exit_code = 15;
    const auto report = judge({reset});
    REQUIRE(report);
    CHECK(report->verdict == Verdict::Sshd);
    CHECK(report->detail == "the listening sshd[800] was killed by SIGTERM with the connection from 127.0.0.2:40022 still "
                            "in its accept queue (no accept() of it was seen): the kernel reset it (TCP_STATE)");
  }
  SECTION("sshd's own SIGTERM handler closes its listeners and exits 0: the queue is reset by close()") {
    TcpEvent reset = server_reset("TCP_STATE", 2000, {800, "sshd"}, OwnerSource::Close);
    const auto report = judge({reset});
    REQUIRE(report);
    CHECK(report->detail == "the listening sshd[800] closed it with the connection from 127.0.0.2:40022 still in its "
                            "accept queue (no accept() of it was seen): the kernel reset it (TCP_STATE)");
  }
  SECTION("another program killed by a signal") {
    TcpEvent reset = server_reset("TCP_ABORT_ON_CLOSE", 2000, {700, "python3"}, OwnerSource::Close);
    reset.owner_exiting = true;
    reset.owner_exit_code = 9;
    const auto report = judge({reset});
    REQUIRE(report);
    CHECK(report->verdict == Verdict::Unknown);
    CHECK_THAT(report->detail, Catch::Contains("python3[700] on 127.0.0.1:22 was killed by SIGKILL (TCP_ABORT_ON_CLOSE"));
  }
}

TEST_CASE("a reused four-tuple is a new connection when its socket's cookie differs, even at the same address") {
  Correlator correlator;
  // An abort leaves no TIME_WAIT: the client's next connect() reuses its port
  // at once, and the slab hands it the freed socket's address.
  for (uint64_t i = 0; i < 3; ++i) {
    TcpEvent abort = event(EventKind::ResetSent, 10 + i, true);
    abort.reason = reset_reason("TCP_STATE");
    abort.sock_id = 0x2000;  // the same address each time
    abort.sock_cookie = 100 + i;
    TcpEvent received = event(EventKind::ResetReceived, 10 + i);
    received.sock_id = 0x1000;
    received.sock_cookie = 200 + i;
    correlator.add(abort);
    correlator.add(received);
  }
  const auto groups = test::take_all(correlator);
  REQUIRE(groups.size() == 3);
  for (const auto& group : groups) {
    REQUIRE(group.size() == 2);
    CHECK(group[1].sock_cookie == group[0].sock_cookie + 100);
  }
  SECTION("without cookies (older kernels) the address is all there is") {
    Correlator no_cookies;
    for (uint64_t i = 0; i < 3; ++i) {
      TcpEvent abort = event(EventKind::ResetSent, 10 + i, true);
      abort.sock_id = 0x2000;
      no_cookies.add(abort);
    }
    CHECK(test::take_all(no_cookies).size() == 1);
  }
}

TEST_CASE_METHOD(Fixture, "the listener's reset of the client's late segment after an abort is the same connection") {
  // Measured (CI, Debian 13's client on loopback, MaxStartups 1): the listener closed what it
  // accepted with the banner unread (TCP_ABORT_ON_DATA); the client's next segment, already in
  // flight, met the listener, which reset it (TCP_FLAGS: an ACK with no request behind it).
  TcpEvent abort = server_reset("TCP_ABORT_ON_DATA", 2000, {800, "sshd"}, OwnerSource::Close);
  abort.sock_cookie = 4097;
  abort.acceptor_pid = 800;
  abort.acceptor_monotonic_ns = 1999 * kMs;
  TcpEvent received = client_received(2000, "ESTABLISHED");
  received.sock_cookie = 4098;
  TcpEvent late = late_listener_reset(2001);
  late.owner = Process{800, "sshd"};
  late.owner_source = OwnerSource::Listen;
  Correlator correlator;
  for (const TcpEvent& e : {abort, received, late}) correlator.add(e);
  const auto groups = test::take_all(correlator);
  REQUIRE(groups.size() == 1);
  CHECK(groups[0].size() == 3);
  const auto report = judge(groups[0]);
  REQUIRE(report);
  CHECK(report->verdict == Verdict::Sshd);
  CHECK_THAT(report->detail, Catch::Contains("MaxStartups"));
  SECTION("a listener's reset of a SYN is not a late segment: a new connection") {
    TcpEvent syn_reset = late;
    syn_reset.tcp_flags = kSyn;
    Correlator other;
    for (const TcpEvent& e : {abort, syn_reset}) other.add(e);
    CHECK(test::take_all(other).size() == 2);
  }
}

TEST_CASE_METHOD(Fixture, "the listener's reset of a late segment after the abort's line was judged is absorbed") {
  // Measured (CI, Debian 13's sshd refusing by PerSourcePenalties on loopback, the lab
  // on two jobs): the client's late segment met the listener after the abort's group
  // had settled (150 ms), and got a 'kernel' line of its own.
  TcpEvent abort = server_reset("TCP_ABORT_ON_DATA", 2000, {800, "sshd"}, OwnerSource::Close);
  abort.sock_cookie = 4097;
  TcpEvent late = late_listener_reset(2400);
  Correlator correlator;
  correlator.add(abort);
  size_t lines = 0;
  correlator.take_due(2300 * kMs, [&](std::vector<TcpEvent>&) { ++lines; });
  REQUIRE(lines == 1);
  SECTION("within 3 s of the abort: absorbed, counted") {
    CHECK_FALSE(correlator.add(late));
    CHECK(correlator.absorbed() == 1);
    CHECK(test::take_all(correlator).empty());
  }
  SECTION("later: a line of its own") {
    late.monotonic_ns = 5100 * kMs;
    CHECK(correlator.add(late));
    CHECK(test::take_all(correlator).size() == 1);
  }
  SECTION("a listener's reset of a SYN: a new connection's, a line of its own") {
    late.tcp_flags = kSyn;
    CHECK(correlator.add(late));
    CHECK(test::take_all(correlator).size() == 1);
  }
  SECTION("after a refusal by the listener itself (no accepted socket): a line of its own") {
    TcpEvent refused = late;
    refused.tcp_flags = kSyn;
    refused.monotonic_ns = 3000 * kMs;
    Correlator other;
    other.add(refused);
    other.take_due(3300 * kMs, [](std::vector<TcpEvent>&) {});
    CHECK(other.add(late));
    CHECK(other.absorbed() == 0);
  }
  SECTION("after a reset sent for no socket (nothing listened): a line of its own") {
    // No socket, no state (std::nullopt): not an abort. The reset flood's connections
    // were all remembered as aborted before this was checked (a map insert each).
    TcpEvent refused = event(EventKind::ResetSent, 3000);
    refused.reason = reset_reason("NO_SOCKET");
    refused.tcp_flags = kSyn;
    Correlator other;
    other.add(refused);
    other.take_due(3300 * kMs, [](std::vector<TcpEvent>&) {});
    late.monotonic_ns = 3400 * kMs;
    CHECK(other.add(late));
    CHECK(other.absorbed() == 0);
  }
}

namespace {

// Debian's 6.1, measured in the kernel matrix (--raw, MaxStartups 1 on
// loopback): tcp:tcp_send_reset reports the listener's close() with skb NULL,
// no reason, state CLOSE; the client's data then meets the closed socket (a
// drop), and the client receives the reset in CLOSE_WAIT.
std::vector<TcpEvent> max_startups_on_6_1() {
  TcpEvent sent = event(EventKind::ResetSent, 1000);
  sent.sock_id = 0x1000;
  sent.sock_cookie = 4097;  // the tracepoint's own argument: a cookie is made
  sent.tcp_state = state("CLOSE");
  sent.full_socket = true;
  sent.sent_by_closer = true;
  sent.owner = Process{800, "sshd"};
  sent.owner_source = OwnerSource::Close;
  sent.acceptor_pid = 800;
  sent.acceptor_monotonic_ns = 1000 * kMs;
  sent.context = Process{900, "ssh"};
  sent.bytes_acked = 23;
  TcpEvent dropped = event(EventKind::Drop, 1001);
  dropped.tcp_flags = 0x18;  // PSH|ACK: the client's banner
  dropped.ingress = true;
  dropped.context = Process{900, "ssh"};
  TcpEvent received = client_received(1006, "CLOSE_WAIT");
  received.sock_cookie = 4098;
  received.bytes_received = 23;
  received.unread_bytes = 23;
  return {sent, dropped, received};
}

}  // namespace

TEST_CASE("6.1's active reset from the tracepoint: one MaxStartups line as soon as the connection settles") {
  std::vector<TcpEvent> events = max_startups_on_6_1();
  // The ring buffer is filled by both CPUs: any order of arrival.
  std::sort(events.begin(), events.end(), [](const TcpEvent& a, const TcpEvent& b) { return a.kind < b.kind; });
  do {
    Attributor attributor(names(), {22}, false);
    for (const TcpEvent& e : events) attributor.add(e);
    CHECK(test::due(attributor, 1100 * kMs).empty());  // not settled yet
    const auto reports = test::due(attributor, 1200 * kMs);
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].verdict == Verdict::Sshd);
    CHECK(reports[0].event.local.port == 22);  // shown from the server's end, where the selftest looks
    CHECK(reports[0].event.remote.port == kClient.port);
    CHECK_THAT(reports[0].detail, Catch::Contains("MaxStartups"));
    CHECK(attributor.pending() == 0);
  } while (std::next_permutation(events.begin(), events.end(),
                                 [](const TcpEvent& a, const TcpEvent& b) { return a.kind < b.kind; }));
}
