// Storms: the class function shared with the BPF side, the tracker's life
// cycle against a scripted kernel side, and the storm line.
#include <arpa/inet.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <map>
#include <stdexcept>
#include <nlohmann/json.hpp>

#include "attribute/storm.h"
#include "output/format.h"
#include "synthetic_btf.h"

using namespace rsttrace;
using rsttrace::testing::SyntheticBtf;

namespace {

constexpr uint8_t kSynSent = 2, kEstablished = 1, kListen = 10;

rsttrace_tcp_event raw_event(uint8_t kind, const char* local, uint16_t local_port, const char* remote,
                             uint16_t remote_port) {
  rsttrace_tcp_event e{};
  e.header.type = RSTTRACE_RECORD_TCP_EVENT;
  e.header.size = sizeof(e);
  e.kind = kind;
  e.family = 4;
  inet_pton(AF_INET, local, e.local_addr);
  inet_pton(AF_INET, remote, e.remote_addr);
  e.local_port = local_port;
  e.remote_port = remote_port;
  e.netns = 4026532000u;
  return e;
}

std::string address_of(const rsttrace_storm_key& key) {
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, key.peer_addr, text, sizeof(text));
  return text;
}

// The kernel side as the tracker sees it: counts the test sets, calls it records.
struct ScriptedKernel : StormCounters {
  std::map<uint32_t, uint64_t> counts;
  std::map<uint32_t, bool> active;  // slot -> counting
  int activations = 0, removals = 0;
  std::vector<rsttrace_storm_key> activated, deactivated;  // in call order
  bool refuse = false;  // the map update fails
  std::map<uint32_t, bool> tracking;  // slot -> counts its class's peers
  std::map<uint32_t, ClassPeers> peers;  // slot -> what class_peers() answers
  void activate(const rsttrace_storm_key& key, uint32_t slot, bool track_peers) override {
    if (refuse) throw std::runtime_error("failed to add storm key: Cannot allocate memory");
    activated.push_back(key);
    tracking[slot] = track_peers;
    peers.erase(slot);
    ++activations;
    counts[slot] = 0;
    active[slot] = true;
  }
  std::map<uint32_t, uint32_t> shifts;  // slot -> its peers' sampling shift
  bool refuse_sampling = false;
  void sample_peers(const rsttrace_storm_key&, uint32_t slot, uint32_t shift) override {
    if (refuse_sampling) throw std::runtime_error("failed to sample class storm's peers: No such file or directory");
    shifts[slot] = shift;
  }
  void deactivate(const rsttrace_storm_key& key, uint32_t slot) override {
    deactivated.push_back(key);
    active[slot] = false;
  }
  void remove(const rsttrace_storm_key&) override { ++removals; }
  uint64_t count(uint32_t slot) const override { return counts.at(slot); }
  ClassPeers class_peers(uint32_t slot, size_t top) const override {
    ClassPeers answer = peers.count(slot) ? peers.at(slot) : ClassPeers{};
    if (answer.peers.size() > top) answer.peers.resize(top);
    if (answer.prefixes.size() > top) answer.prefixes.resize(top);
    return answer;
  }
};

rsttrace_storm_key key_for(const char* peer) {
  rsttrace_tcp_event raw = raw_event(RSTTRACE_KIND_RESET_SENT, "10.0.0.1", 22, peer, 40000);
  rsttrace_storm_key key{};
  REQUIRE(rsttrace_storm_key_of(&raw, 1, &key));
  return key;
}

TcpEvent event_at(uint64_t ns) {
  TcpEvent e;
  e.monotonic_ns = ns;
  e.local.port = 22;
  return e;
}

Attribution judged(const rsttrace_storm_key&, const TcpEvent& event) { return Attribution{event, Verdict::NoListener, "judged alone"}; }

constexpr uint64_t kSecond = 1'000'000'000ULL;

}  // namespace

TEST_CASE("a server's reset for no socket is classed by client address and watched port") {
  rsttrace_tcp_event raw = raw_event(RSTTRACE_KIND_RESET_SENT, "10.0.0.1", 22, "192.0.2.7", 40000);
  raw.flags = RSTTRACE_FLAG_REASON | RSTTRACE_FLAG_PACKET | RSTTRACE_FLAG_INGRESS;
  raw.reason = 1;
  raw.tcp_flags = 0x02;
  rsttrace_storm_key key{};
  REQUIRE(rsttrace_storm_key_of(&raw, 1, &key) == 1);
  CHECK(address_of(key) == "192.0.2.7");
  CHECK(key.port == 22);
  CHECK(key.watched_local == 1);
  CHECK(key.reason == 1);
  CHECK(key.tcp_flags == 0x02);

  // Another connection of the same client (new source port, time, context): the same class.
  rsttrace_tcp_event other = raw;
  other.remote_port = 51234;
  other.ts_ns = 99;
  other.context_pid = 7;
  rsttrace_storm_key other_key{};
  REQUIRE(rsttrace_storm_key_of(&other, 1, &other_key) == 1);
  CHECK(std::memcmp(&key, &other_key, sizeof(key)) == 0);

  // Another client, another reason: other classes.
  other.remote_addr[3] = 8;
  REQUIRE(rsttrace_storm_key_of(&other, 1, &other_key) == 1);
  CHECK(std::memcmp(&key, &other_key, sizeof(key)) != 0);
}

TEST_CASE("a client's refused connect is classed by its own address and the server's port") {
  rsttrace_tcp_event raw = raw_event(RSTTRACE_KIND_RESET_RECEIVED, "127.0.0.5", 40000, "127.0.0.1", 22);
  raw.flags = RSTTRACE_FLAG_SOCKET | RSTTRACE_FLAG_FULLSOCK;
  raw.tcp_state = kSynSent;
  rsttrace_storm_key key{};
  REQUIRE(rsttrace_storm_key_of(&raw, 0, &key) == 1);
  CHECK(address_of(key) == "127.0.0.5");
  CHECK(key.port == 22);
  CHECK(key.watched_local == 0);
  CHECK(key.tcp_state == kSynSent);
}

TEST_CASE("events whose socket carries evidence are never classed for a storm") {
  rsttrace_storm_key key{};
  rsttrace_tcp_event received = raw_event(RSTTRACE_KIND_RESET_RECEIVED, "10.0.0.1", 22, "192.0.2.7", 40000);
  received.flags = RSTTRACE_FLAG_SOCKET | RSTTRACE_FLAG_FULLSOCK;
  received.tcp_state = kEstablished;
  CHECK(rsttrace_storm_key_of(&received, 1, &key) == 0);

  rsttrace_tcp_event closed = raw_event(RSTTRACE_KIND_RESET_SENT, "10.0.0.1", 22, "192.0.2.7", 40000);
  closed.flags = RSTTRACE_FLAG_SOCKET | RSTTRACE_FLAG_FULLSOCK | RSTTRACE_FLAG_BY_CLOSER;
  closed.tcp_state = 7;
  CHECK(rsttrace_storm_key_of(&closed, 1, &key) == 0);

  // A drop on a listener (accept queue overflow in a SYN flood) is a class.
  rsttrace_tcp_event overflow = raw_event(RSTTRACE_KIND_DROP, "10.0.0.1", 22, "192.0.2.7", 40000);
  overflow.flags = RSTTRACE_FLAG_SOCKET | RSTTRACE_FLAG_FULLSOCK | RSTTRACE_FLAG_PACKET;
  overflow.tcp_state = kListen;
  CHECK(rsttrace_storm_key_of(&overflow, 1, &key) == 1);

  rsttrace_tcp_event unknown_kind = raw_event(9, "10.0.0.1", 22, "192.0.2.7", 40000);
  CHECK(rsttrace_storm_key_of(&unknown_kind, 1, &key) == 0);
}

TEST_CASE("a storm starts at the threshold within one second, reports each second, and ends when calm") {
  ScriptedKernel kernel;
  StormTracker storms(100, kernel, judged);
  std::vector<StormReport> lines;
  std::vector<std::string> verdicts;
  auto on_line = [&](const StormReport& r) {
    lines.push_back(r);
    verdicts.push_back(std::string(verdict_name(r.verdict->verdict)));
  };
  const rsttrace_storm_key key = key_for("192.0.2.7");

  // 99 events in the first second, 99 in the next: never 100 within one second.
  for (int i = 0; i < 99; ++i) storms.observe(key, event_at(kSecond + i), on_line);
  for (int i = 0; i < 99; ++i) storms.observe(key, event_at(2 * kSecond + 10 + i), on_line);
  CHECK(kernel.activations == 0);
  CHECK(lines.empty());

  storms.observe(key, event_at(2 * kSecond + 500), on_line);  // the 100th of this second
  REQUIRE(kernel.activations == 1);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].state == StormState::Start);
  CHECK(verdicts[0] == "no-listener");
  CHECK(storms.active() == 1);
  const uint32_t slot = kernel.active.begin()->first;

  // Events emitted before the kernel started counting still arrive: no second storm.
  for (int i = 0; i < 200; ++i) storms.observe(key, event_at(2 * kSecond + 600 + i), on_line);
  CHECK(kernel.activations == 1);

  kernel.counts[slot] = 5000;
  storms.tick(2 * kSecond + 900'000'000, on_line);  // under a second since the start line
  CHECK(lines.size() == 1);
  storms.tick(3 * kSecond + 600, on_line);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1].state == StormState::Ongoing);
  CHECK(lines[1].count == 5000);
  CHECK(lines[1].total == 5000);
  CHECK(kernel.active[slot]);

  kernel.counts[slot] = 5040;  // 40 in the next second: under half the threshold
  storms.tick(4 * kSecond + 600, on_line);
  REQUIRE(lines.size() == 3);
  CHECK(lines[2].count == 40);
  CHECK_FALSE(kernel.active[slot]);  // no longer counted in the kernel

  kernel.counts[slot] = 5041;  // a program that saw the slot active just before
  storms.tick(4 * kSecond + 10'000'600, on_line);
  CHECK(lines.size() == 3);  // the last count waits 50 ms
  storms.tick(4 * kSecond + 60'000'600, on_line);
  REQUIRE(lines.size() == 4);
  CHECK(lines[3].state == StormState::End);
  CHECK(lines[3].count == 1);
  CHECK(lines[3].total == 5041);
  CHECK(kernel.removals == 1);
  CHECK(storms.active() == 0);
  CHECK(storms.aggregated() == 5041);
}

TEST_CASE("a storm the kernel refuses stays per connection, and may start later") {
  ScriptedKernel kernel;
  kernel.refuse = true;
  StormTracker storms(2, kernel, judged);
  std::vector<StormReport> lines;
  auto on_line = [&](const StormReport& r) { lines.push_back(r); };
  const rsttrace_storm_key key = key_for("192.0.2.9");
  storms.observe(key, event_at(kSecond), on_line);
  storms.observe(key, event_at(kSecond + 1), on_line);
  CHECK(lines.empty());
  CHECK(storms.active() == 0);
  CHECK(storms.not_started() == 1);
  kernel.refuse = false;
  storms.observe(key, event_at(2 * kSecond), on_line);
  storms.observe(key, event_at(2 * kSecond + 1), on_line);
  CHECK(storms.active() == 1);
  CHECK(lines.size() == 1);
}

TEST_CASE("storms end with their last count at exit, and slots run out without harm") {
  ScriptedKernel kernel;
  StormTracker storms(2, kernel, judged);
  std::vector<StormReport> lines;
  auto on_line = [&](const StormReport& r) { lines.push_back(r); };
  for (int peer = 0; peer < RSTTRACE_STORM_SLOTS + 3; ++peer) {
    const std::string address = "198.51.100." + std::to_string(peer);
    const rsttrace_storm_key key = key_for(address.c_str());
    storms.observe(key, event_at(kSecond), on_line);
    storms.observe(key, event_at(kSecond + 1), on_line);
  }
  CHECK(storms.active() == RSTTRACE_STORM_SLOTS);
  CHECK(storms.not_started() == 3);
  uint64_t expected = 0;
  for (auto& [slot, count] : kernel.counts) expected += (count = slot + 1);

  lines.clear();
  storms.stop_counting(kSecond + 2);
  for (const auto& [slot, counting] : kernel.active) CHECK_FALSE(counting);
  storms.flush(kSecond + 3, on_line);
  CHECK(lines.size() == RSTTRACE_STORM_SLOTS);
  uint64_t reported = 0;
  for (const StormReport& line : lines) {
    CHECK(line.state == StormState::End);
    reported += line.count;
  }
  CHECK(reported == expected);
  CHECK(storms.aggregated() == expected);
  CHECK(storms.active() == 0);
}

TEST_CASE("a storm line names its class, count and verdict, escaped like event lines") {
  SyntheticBtf types;
  types.add_enum("sk_rst_reason", {{"SK_RST_REASON_NO_SOCKET", 1}});
  types.add_enum("skb_drop_reason", {{"SKB_DROP_REASON_NETFILTER_DROP", 12}});
  types.add_enum("", {{"TCP_ESTABLISHED", 1}, {"TCP_SYN_SENT", 2}});
  const KernelNames names = KernelNames::from_btf(types.get());
  const Formatter formatter{names, WallClock{0}, "edge-7"};

  rsttrace_tcp_event raw = raw_event(RSTTRACE_KIND_DROP, "2001:db8::1", 22, "2001:db8::7", 40000);
  raw.family = 6;
  inet_pton(AF_INET6, "2001:db8::1", raw.local_addr);
  inet_pton(AF_INET6, "2001:db8::7", raw.remote_addr);
  rsttrace_storm_key key{};
  REQUIRE(rsttrace_storm_key_of(&raw, 1, &key));

  TcpEvent event;
  event.kind = EventKind::Drop;
  event.family = 6;
  event.reason = 12;
  event.tcp_flags = 0x02;
  Attribution verdict{event, Verdict::Firewall, "dropped by \"f2b\"\n rule"};
  verdict.fail2ban_jail = "ssh\x01" "d";
  StormReport storm;
  storm.state = StormState::Ongoing;
  storm.key = key;
  storm.verdict = &verdict;
  storm.count = 1234;
  storm.total = 5678;
  storm.since_monotonic_ns = 1'000'000;
  storm.now_monotonic_ns = 2'001'000'000;
  storm.interval_s = 1.0004;

  std::string line;
  formatter.append_storm_line(line, storm);
  CHECK(line.find('\n') == std::string::npos);
  const auto json = nlohmann::ordered_json::parse(line);
  CHECK(json.begin().key() == "type");
  CHECK(json["type"] == "storm");
  CHECK(json["state"] == "ongoing");
  CHECK(json["ts"] == "1970-01-01T00:00:02.001000Z");
  CHECK(json["host"] == "edge-7");
  CHECK(json["since"] == "1970-01-01T00:00:00.001000Z");
  CHECK(json["interval_ms"] == 1000);
  CHECK(json["count"] == 1234);
  CHECK(json["total"] == 5678);
  CHECK(json["kind"] == "drop");
  CHECK(json["direction"] == "dropped");
  CHECK(json["family"] == 6);
  CHECK(json["port"] == 22);
  CHECK(json["port_end"] == "local");
  CHECK(json["peer_addr"] == "2001:db8::7");
  CHECK(json["kernel_reason"] == "NETFILTER_DROP");
  CHECK(json["tcp_state"].is_null());
  CHECK(json["tcp_flags"] == "SYN");
  CHECK(json["verdict"] == "firewall");
  CHECK(json["detail"] == "dropped by \"f2b\"\n rule");
  CHECK(json["fail2ban_jail"] == "ssh\\x01d");

  CHECK(json["remedy"] == nlohmann::ordered_json::array());  // a jail name that cannot be pasted gives no command

  const std::string text = formatter.storm_text(storm);
  CHECK(text.find("storm ongoing: 1234 packets dropped (5678 since") != std::string::npos);
  CHECK(text.find("peer 2001:db8::7") != std::string::npos);
  CHECK(text.find("fix:") == std::string::npos);

  // The fix for the peer the line names, in JSON and text alike.
  inet_pton(AF_INET6, "2001:db8::7", verdict.event.remote.addr.data());
  verdict.fail2ban_jail = "sshd";
  verdict.rule = FirewallRule{.backend = "nftables", .family = "inet", .table = "f2b-table", .chain = "f2b-chain",
                              .handle = 3, .text = "tcp dport 22 ip6 saddr @addr6-set-sshd reject",
                              .verdict = "reject", .fail2ban_jail = "sshd"};
  line.clear();
  formatter.append_storm_line(line, storm);
  CHECK(nlohmann::ordered_json::parse(line)["remedy"] ==
        nlohmann::ordered_json::array({"fail2ban-client set sshd unbanip 2001:db8::7"}));
  CHECK(formatter.storm_text(storm).find("; fix: fail2ban-client set sshd unbanip 2001:db8::7") != std::string::npos);
}

// As judged(), for a class whose verdict waits for the system's state (a firewall rule).
Attribution judged_needing_provenance(const rsttrace_storm_key& key, const TcpEvent& event) {
  Attribution verdict = judged(key, event);
  verdict.needs_provenance = true;
  return verdict;
}

TEST_CASE("a storm whose verdict needs provenance starts once it is in, and every line carries it") {
  ScriptedKernel kernel;
  StormTracker storms(2, kernel, judged_needing_provenance);
  std::vector<std::pair<StormState, std::string>> lines;
  auto on_line = [&](const StormReport& r) { lines.emplace_back(r.state, r.verdict->detail); };
  const rsttrace_storm_key key = key_for("192.0.2.7");
  storms.observe(key, event_at(kSecond), on_line);
  storms.observe(key, event_at(kSecond + 1), on_line);
  CHECK(lines.empty());  // held until the rule is known
  CHECK(storms.active() == 1);
  kernel.counts[0] = 5000;
  storms.tick(2 * kSecond + 1, on_line);  // still waiting: no ongoing line before the start
  CHECK(lines.empty());
  Attribution enriched = judged(key, event_at(kSecond));
  enriched.detail += "; rule: nftables inet t c handle 3: drop";
  storms.update_verdict(key, enriched, 2 * kSecond + 2, on_line);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0] == std::make_pair(StormState::Start, enriched.detail));
  storms.flush(3 * kSecond, on_line);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1] == std::make_pair(StormState::End, enriched.detail));
  storms.update_verdict(key, enriched, 4 * kSecond, on_line);  // ended: nothing, no harm
  CHECK(lines.size() == 2);
}

TEST_CASE("a storm still waiting for its provenance at exit gets its start and end lines") {
  ScriptedKernel kernel;
  StormTracker storms(2, kernel, judged_needing_provenance);
  std::vector<StormState> states;
  auto on_line = [&](const StormReport& r) { states.push_back(r.state); };
  const rsttrace_storm_key key = key_for("192.0.2.8");
  storms.observe(key, event_at(kSecond), on_line);
  storms.observe(key, event_at(kSecond + 1), on_line);
  kernel.counts[0] = 7;
  storms.flush(2 * kSecond, on_line);
  CHECK(states == std::vector<StormState>{StormState::Start, StormState::End});
  CHECK(storms.aggregated() == 7);
}

namespace {

bool same_key(const rsttrace_storm_key& a, const rsttrace_storm_key& b) { return std::memcmp(&a, &b, sizeof(a)) == 0; }

// A refused loopback connection as the BPF side classes its two ends.
std::pair<rsttrace_storm_key, rsttrace_storm_key> loopback_refusal_keys(const char* client) {
  rsttrace_tcp_event sent = raw_event(RSTTRACE_KIND_RESET_SENT, "127.0.0.1", 22, client, 40000);
  sent.flags = RSTTRACE_FLAG_REASON | RSTTRACE_FLAG_PACKET | RSTTRACE_FLAG_INGRESS;
  sent.reason = 1;
  sent.tcp_flags = 0x02;
  rsttrace_tcp_event received = raw_event(RSTTRACE_KIND_RESET_RECEIVED, client, 40000, "127.0.0.1", 22);
  received.flags = RSTTRACE_FLAG_SOCKET | RSTTRACE_FLAG_FULLSOCK | RSTTRACE_FLAG_OWNER_EXITING;
  received.tcp_state = kSynSent;
  rsttrace_storm_key sent_key{}, received_key{};
  REQUIRE(rsttrace_storm_key_of(&sent, 1, &sent_key));
  REQUIRE(rsttrace_storm_key_of(&received, 0, &received_key));
  return {sent_key, received_key};
}

}  // namespace

TEST_CASE("where no reset is reported without a socket (6.1), the refused SYN's NO_SOCKET drop is the sent end") {
  const auto [sent, received] = loopback_refusal_keys("127.16.3.4");
  constexpr uint32_t kNoSocket = 2;  // 6.1's SKB_DROP_REASON_NO_SOCKET, as the session reads it from BTF
  rsttrace_storm_key dropped = sent;
  dropped.kind = RSTTRACE_KIND_DROP;
  dropped.reason = kNoSocket;
  // Only with this kernel's NO_SOCKET value, and only that reason.
  CHECK_FALSE(loopback_twin_key(dropped));
  const auto twin = loopback_twin_key(dropped, kNoSocket);
  REQUIRE(twin);
  CHECK(same_key(*twin, received));
  rsttrace_storm_key other_drop = dropped;
  other_drop.reason = kNoSocket + 1;
  CHECK_FALSE(loopback_twin_key(other_drop, kNoSocket));

  // The tracker pairs them: one storm of connections, its received twin counting none.
  ScriptedKernel kernel;
  StormTracker storms(100, kernel, judged);
  storms.set_no_socket_drop_reason(kNoSocket);
  std::vector<StormReport> lines;
  auto on_line = [&](const StormReport& r) { lines.push_back(r); };
  for (int i = 0; i < 150; ++i) {
    storms.observe(dropped, event_at(kSecond + 2 * i), on_line);
    storms.observe(received, event_at(kSecond + 2 * i + 1), on_line);
  }
  REQUIRE_FALSE(lines.empty());
  for (const auto& line : lines) CHECK(line.twin == (line.key.kind == RSTTRACE_KIND_RESET_RECEIVED));
  CHECK(std::any_of(lines.begin(), lines.end(), [](const StormReport& r) { return r.twin; }));
}

TEST_CASE("a loopback refusal's received end is the twin of its sent end: one connection, not two") {
  const auto [sent, received] = loopback_refusal_keys("127.16.3.4");
  const auto twin = loopback_twin_key(sent);
  REQUIRE(twin);
  CHECK(same_key(*twin, received));
  // Not loopback, or not a refused SYN (its received end is no SYN_SENT socket): no twin.
  CHECK_FALSE(loopback_twin_key(key_for("192.0.2.7")));
  rsttrace_storm_key not_syn = sent;
  not_syn.tcp_flags = 0x10;
  CHECK_FALSE(loopback_twin_key(not_syn));
  CHECK_FALSE(loopback_twin_key(received));

  ScriptedKernel kernel;
  StormTracker storms(100, kernel, judged);
  std::vector<StormReport> lines;
  auto on_line = [&](const StormReport& r) { lines.push_back(r); };
  // Each connection's sent reset, then its received one; the received class
  // reaches the threshold too, after the sent one.
  for (int i = 0; i < 150; ++i) {
    storms.observe(sent, event_at(kSecond + 2 * i), on_line);
    storms.observe(received, event_at(kSecond + 2 * i + 1), on_line);
  }
  // The twin counts first, so that no sent reset counted has its received end in a line.
  REQUIRE(kernel.activated.size() == 2);
  CHECK(same_key(kernel.activated[0], received));
  CHECK(same_key(kernel.activated[1], sent));
  REQUIRE(lines.size() == 2);
  CHECK((lines[0].twin == false && same_key(lines[0].key, sent)));
  CHECK((lines[1].twin == true && same_key(lines[1].key, received)));
  CHECK(lines[1].verdict->verdict == Verdict::NoListener);  // the connections' verdict, not "peer"
  CHECK(storms.active() == 2);

  const uint32_t twin_slot = 0, sent_slot = 1;  // slots are taken lowest first
  kernel.counts[sent_slot] = 5000;
  kernel.counts[twin_slot] = 4999;
  storms.tick(2 * kSecond + 200, on_line);  // a second after the start (the 100th sent reset, at 1 s + 198 ns)
  REQUIRE(lines.size() == 4);
  uint64_t connections = 0, events = 0;
  for (const StormReport& line : lines) connections += line.connections, events += line.count;
  CHECK(connections == 5000);
  CHECK(events == 9999);

  // Calm: the sent storm stops counting; its twin only 50 ms later, with its end line.
  storms.tick(3 * kSecond + 400, on_line);
  REQUIRE(kernel.deactivated.size() == 1);
  CHECK(same_key(kernel.deactivated[0], sent));
  CHECK(kernel.active[twin_slot]);
  storms.tick(3 * kSecond + 60'000'400, on_line);
  REQUIRE(kernel.deactivated.size() == 2);
  CHECK(same_key(kernel.deactivated[1], received));
  CHECK(storms.active() == 1);
  storms.tick(3 * kSecond + 120'000'400, on_line);
  CHECK(storms.active() == 0);
  CHECK(lines.back().state == StormState::End);
  CHECK(lines.back().twin);
}

TEST_CASE("a loopback twin class reaching the threshold before its sent class waits for it") {
  const auto [sent, received] = loopback_refusal_keys("127.0.0.3");
  ScriptedKernel kernel;
  StormTracker storms(10, kernel, judged);
  std::vector<StormReport> lines;
  auto on_line = [&](const StormReport& r) { lines.push_back(r); };
  storms.observe(sent, event_at(kSecond), on_line);
  for (int i = 0; i < 20; ++i) storms.observe(received, event_at(kSecond + 1 + i), on_line);
  CHECK(kernel.activations == 0);
  for (int i = 0; i < 9; ++i) storms.observe(sent, event_at(kSecond + 30 + i), on_line);
  CHECK(kernel.activations == 2);
  storms.flush(kSecond + 100, on_line);
  // At exit the sent storm stops counting before its twin.
  REQUIRE(kernel.deactivated.size() == 2);
  CHECK(same_key(kernel.deactivated[0], sent));
}

// Issue 17: class storms, a flood from many peers none of which passes the threshold alone.
namespace {

rsttrace_storm_key class_of(rsttrace_storm_key key) {
  rsttrace_storm_class_of(&key);
  return key;
}

ClassPeerCount peer_count(const char* address, uint8_t prefix_len, uint64_t count) {
  ClassPeerCount peer;
  peer.family = 4;
  peer.prefix_len = prefix_len;
  inet_pton(AF_INET, address, peer.addr.data());
  peer.count = count;
  return peer;
}

}  // namespace

TEST_CASE("a class key is the peer's key without the peer: only its loopback scope stays") {
  const rsttrace_storm_key remote = class_of(key_for("192.0.2.7"));
  CHECK(remote.peerless == 1);
  CHECK(address_of(remote) == "0.0.0.0");
  CHECK(same_key(remote, class_of(key_for("198.51.100.200"))));  // every remote peer: one class
  const rsttrace_storm_key loopback = class_of(key_for("127.16.3.4"));
  CHECK(address_of(loopback) == "127.0.0.0");
  CHECK(same_key(loopback, class_of(key_for("127.0.0.2"))));
  CHECK_FALSE(same_key(loopback, remote));
  rsttrace_storm_key other_port = key_for("192.0.2.7");
  other_port.port = 2222;
  CHECK_FALSE(same_key(class_of(other_port), remote));  // the rest of the class stays

  rsttrace_tcp_event v6 = raw_event(RSTTRACE_KIND_RESET_SENT, "10.0.0.1", 22, "10.0.0.2", 40000);
  v6.family = 6;
  rsttrace_storm_key key{};
  inet_pton(AF_INET6, "::1", v6.remote_addr);
  REQUIRE(rsttrace_storm_key_of(&v6, 1, &key));
  rsttrace_storm_key v6_class = class_of(key);
  CHECK(std::memcmp(v6_class.peer_addr, v6.remote_addr, 16) == 0);  // ::1 is its own scope
  inet_pton(AF_INET6, "2001:db8::1", v6.remote_addr);
  REQUIRE(rsttrace_storm_key_of(&v6, 1, &key));
  v6_class = class_of(key);
  const uint8_t zeros[16] = {};
  CHECK(std::memcmp(v6_class.peer_addr, zeros, 16) == 0);
  // A loopback class keeps its twin: the client ends are on this host too.
  const auto [sent, received] = loopback_refusal_keys("127.16.0.9");
  const auto twin = loopback_twin_key(class_of(sent));
  REQUIRE(twin);
  CHECK(same_key(*twin, class_of(received)));
  CHECK_FALSE(loopback_twin_key(remote));
}

TEST_CASE("many peers below the threshold start a class storm that names its top peers and prefixes") {
  ScriptedKernel kernel;
  StormTracker storms(100, kernel, judged);
  std::vector<StormReport> lines;
  auto on_line = [&](const StormReport& r) { lines.push_back(r); };
  // 100 peers, 2 events each, within one second: 200 events of one class.
  for (int i = 0; i < 200; ++i) {
    const std::string address = "198.51." + std::to_string(100 + i % 2) + "." + std::to_string(i % 100);
    storms.observe(key_for(address.c_str()), event_at(kSecond + i), on_line);
  }
  REQUIRE(kernel.activated.size() == 1);  // the class alone: no peer passed the threshold
  const rsttrace_storm_key klass = kernel.activated[0];
  CHECK(klass.peerless == 1);
  CHECK(same_key(klass, class_of(key_for("198.51.100.1"))));
  const uint32_t slot = 0;
  CHECK(kernel.tracking[slot]);  // its peers are counted in the kernel
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].state == StormState::Start);
  CHECK(lines[0].key.peerless == 1);
  CHECK(lines[0].top_peers.empty());  // nothing counted in the kernel yet

  kernel.counts[slot] = 3000;
  kernel.peers[slot].peers = {peer_count("198.51.100.7", 32, 40), peer_count("198.51.101.3", 32, 20)};
  kernel.peers[slot].prefixes = {peer_count("198.51.100.0", 24, 1600), peer_count("198.51.101.0", 24, 1400)};
  storms.tick(2 * kSecond + 100, on_line);
  REQUIRE(lines.size() == 2);
  REQUIRE(lines[1].top_peers.size() == 2);
  CHECK(lines[1].top_peers[0].peer.count == 40);
  CHECK(lines[1].top_peers[0].delta == 40);
  REQUIRE(lines[1].top_prefixes.size() == 2);
  CHECK(lines[1].top_prefixes[0].peer.prefix_len == 24);
  CHECK(lines[1].count == 3000);

  // The next second: deltas since the previous line; a peer new in the top counts from the start.
  kernel.counts[slot] = 6000;
  kernel.peers[slot].peers = {peer_count("198.51.100.7", 32, 70), peer_count("198.51.100.9", 32, 30)};
  storms.tick(3 * kSecond + 200, on_line);
  REQUIRE(lines.size() == 3);
  CHECK(lines[2].top_peers[0].delta == 30);
  CHECK(lines[2].top_peers[1].delta == 30);
  CHECK(lines[2].connections == 3000);
}

TEST_CASE("a fast class storm's peers are sampled: 1 in 2^shift events from 2,048 a second") {
  CHECK(peer_sample_shift(0) == 0);
  CHECK(peer_sample_shift(2047) == 0);
  CHECK(peer_sample_shift(2048) == 1);
  CHECK(peer_sample_shift(4095) == 1);
  CHECK(peer_sample_shift(4096) == 2);
  CHECK(peer_sample_shift(27000) == 4);
  CHECK(peer_sample_shift(34000) == 5);
  CHECK(peer_sample_shift(65536) == 6);
  CHECK(peer_sample_shift(140000) == 6);
  CHECK(peer_sample_shift(1e12) == RSTTRACE_STORM_PEER_SHIFT_MAX);

  ScriptedKernel kernel;
  StormTracker storms(100, kernel, judged);
  std::vector<StormReport> lines;
  auto on_line = [&](const StormReport& r) { lines.push_back(r); };
  for (int i = 0; i < 200; ++i) {
    const std::string address = "198.51.100." + std::to_string(i % 100);
    storms.observe(key_for(address.c_str()), event_at(kSecond + i), on_line);
  }
  REQUIRE(kernel.activated.size() == 1);
  const uint32_t slot = 0;
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].peer_sampling == 1);  // the start line: every event so far
  // 50 ms in: not yet measured.
  kernel.counts[slot] = 5000;
  storms.tick(kSecond + kSecond / 20, on_line);
  CHECK(kernel.shifts.count(slot) == 0);
  // 100 ms in, 10,000 counted: 100,000 a second, 1 in 64.
  kernel.counts[slot] = 10000;
  storms.tick(kSecond + kSecond / 10 + 200, on_line);
  CHECK(kernel.shifts[slot] == 6);
  // Its first line: 1 in 64; a slow second after it (1,500 a second) counts every event again, the line still says 64.
  kernel.counts[slot] = 110000;
  storms.tick(2 * kSecond + 200, on_line);
  REQUIRE(lines.size() == 2);
  CHECK(lines[1].peer_sampling == 64);
  CHECK(kernel.shifts[slot] == 6);
  kernel.counts[slot] = 111500;
  storms.tick(3 * kSecond + 300, on_line);
  REQUIRE(lines.size() == 3);
  CHECK(kernel.shifts[slot] == 0);
  CHECK(lines[2].peer_sampling == 64);  // its totals still hold sampled counts
  // The kernel refuses: the sampling stays as it was, the storm goes on.
  kernel.refuse_sampling = true;
  kernel.counts[slot] = 215000;
  storms.tick(4 * kSecond + 400, on_line);
  REQUIRE(lines.size() == 4);
  CHECK(kernel.shifts[slot] == 0);
  CHECK(lines[3].state == StormState::Ongoing);
}

TEST_CASE("one peer's flood is that peer's storm, not its class's") {
  ScriptedKernel kernel;
  StormTracker storms(100, kernel, judged);
  std::vector<StormReport> lines;
  auto on_line = [&](const StormReport& r) { lines.push_back(r); };
  // Its 100 events, and a few of other peers of the class among them.
  for (int i = 0; i < 100; ++i) {
    storms.observe(key_for("192.0.2.7"), event_at(kSecond + 2 * i), on_line);
    if (i % 10 == 0) storms.observe(key_for("192.0.2.8"), event_at(kSecond + 2 * i + 1), on_line);
  }
  REQUIRE(kernel.activated.size() == 1);
  CHECK(kernel.activated[0].peerless == 0);
  CHECK(address_of(kernel.activated[0]) == "192.0.2.7");
  CHECK_FALSE(kernel.tracking[0]);
}

TEST_CASE("a loopback class storm has a peerless twin whose peers are not counted twice") {
  ScriptedKernel kernel;
  StormTracker storms(50, kernel, judged);
  std::vector<StormReport> lines;
  auto on_line = [&](const StormReport& r) { lines.push_back(r); };
  for (int i = 0; i < 100; ++i) {
    const std::string client = "127.16." + std::to_string(i / 200) + "." + std::to_string(i % 200 + 1);
    const auto [sent, received] = loopback_refusal_keys(client.c_str());
    storms.observe(sent, event_at(kSecond + 2 * i), on_line);
    storms.observe(received, event_at(kSecond + 2 * i + 1), on_line);
  }
  const auto [sent, received] = loopback_refusal_keys("127.16.0.1");
  REQUIRE(kernel.activated.size() == 2);
  CHECK(same_key(kernel.activated[0], class_of(received)));  // the twin first, as for a peer's storm
  CHECK(same_key(kernel.activated[1], class_of(sent)));
  CHECK_FALSE(kernel.tracking[0]);
  CHECK(kernel.tracking[1]);
  kernel.peers[0].peers = {peer_count("127.16.0.1", 32, 9)};  // never asked: a twin names none
  storms.flush(2 * kSecond, on_line);
  for (const StormReport& line : lines) {
    CHECK(line.key.peerless == 1);
    if (line.twin) CHECK(line.top_peers.empty());
  }
}

TEST_CASE("a class storm's line names top peers and prefixes instead of one peer") {
  SyntheticBtf types;
  types.add_enum("sk_rst_reason", {{"SK_RST_REASON_NO_SOCKET", 1}});
  const KernelNames names = KernelNames::from_btf(types.get());
  const Formatter formatter{names, WallClock{0}, "edge-7"};
  TcpEvent event;
  event.kind = EventKind::ResetSent;
  event.family = 4;
  event.reason = 1;
  event.tcp_flags = 0x02;
  const Attribution verdict{event, Verdict::NoListener, "nothing listens"};
  StormReport storm;
  storm.state = StormState::Ongoing;
  storm.key = class_of(key_for("192.0.2.7"));
  storm.verdict = &verdict;
  storm.count = storm.connections = 300;
  storm.total = 900;
  storm.top_peers = {{peer_count("192.0.2.7", 32, 12), 5}, {peer_count("192.0.2.9", 32, 11), 11}};
  storm.top_prefixes = {{peer_count("192.0.2.0", 24, 900), 300}};

  std::string line;
  formatter.append_storm_line(line, storm);
  const auto json = nlohmann::ordered_json::parse(line);
  CHECK(json["peer_addr"].is_null());
  CHECK(json["peerless"] == true);
  CHECK(json["top_peers"] == nlohmann::ordered_json::parse(
                                 R"([{"addr":"192.0.2.7","count":5,"total":12},{"addr":"192.0.2.9","count":11,"total":11}])"));
  CHECK(json["top_prefixes"] == nlohmann::ordered_json::parse(R"([{"addr":"192.0.2.0/24","count":300,"total":900}])"));
  const std::string text = formatter.storm_text(storm);
  CHECK(text.find("port 22, many peers, top peers 192.0.2.7 (12), 192.0.2.9 (11), top prefixes 192.0.2.0/24 (900)") !=
        std::string::npos);

  // A peer's storm: one peer_addr, no lists.
  storm.key = key_for("192.0.2.7");
  line.clear();
  formatter.append_storm_line(line, storm);
  const auto peer_json = nlohmann::ordered_json::parse(line);
  CHECK(peer_json["peer_addr"] == "192.0.2.7");
  CHECK(peer_json["peerless"] == false);
  CHECK(peer_json["top_peers"].is_null());
}
