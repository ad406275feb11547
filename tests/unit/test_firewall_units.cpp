// The firewall units below RulesetIndex: field matches and the iptables walk,
// each match kind through the option table.
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include "provenance/firewall/field_matches.h"
#include "provenance/firewall/iptables_ruleset.h"

using namespace rsttrace;
using namespace rsttrace::firewall;

namespace {

std::array<uint8_t, 16> v4(const char* text) {
  std::array<uint8_t, 16> out{};
  REQUIRE(inet_pton(AF_INET, text, out.data()) == 1);
  return out;
}

PacketFacts ssh_syn() {
  PacketFacts packet;
  packet.family = 4;
  packet.saddr = v4("10.0.0.2");
  packet.daddr = v4("10.0.0.1");
  packet.sport = 40000;
  packet.dport = 22;
  packet.hook = "input";
  packet.tcp_flags = 0x02;
  packet.conntrack = ConntrackFacts{ConntrackFacts::State::New};
  return packet;
}

// The verdict of one INPUT rule `spec` (policy ACCEPT) for an SSH SYN.
std::string verdict_of(const std::string& spec) {
  const std::string save = "*filter\n:INPUT ACCEPT [0:0]\n[3:180] -A INPUT " + spec + "\nCOMMIT\n";
  const IptRuleset ruleset = parse_iptables_save(save, "test");
  REQUIRE(ruleset.notes.empty());
  const Outcome outcome = walk_iptables(ruleset, ssh_syn(), "iptables-legacy");
  if (outcome.kind == Outcome::Dropped) return "drop";
  if (outcome.candidate) return "maybe";
  return "none";
}

}  // namespace

TEST_CASE("field matches: addresses, masks, prefixes and port ranges", "[firewall]") {
  const auto addr = v4("192.0.2.77");
  CHECK(address_matches("192.0.2.0/24", 4, addr) == Match::Yes);
  CHECK(address_matches("192.0.2.0/255.255.255.128", 4, addr) == Match::Yes);
  CHECK(address_matches("192.0.2.128/25", 4, addr) == Match::No);
  CHECK(address_matches("fd00::1", 4, addr) == Match::No);  // the other family
  CHECK(address_matches("192.0.2.0/33", 4, addr) == Match::Maybe);
  CHECK(address_matches("example.org", 4, addr) == Match::Maybe);
  CHECK(port_matches("22", 22) == Match::Yes);
  CHECK(port_matches(":1024", 22) == Match::Yes);
  CHECK(port_matches("1024:", 22) == Match::No);
  CHECK(port_matches("20:21", 22) == Match::No);
  CHECK(port_matches("70000", 22) == Match::Maybe);
  CHECK(small_number("99999999999999999999", 100) == std::nullopt);
}

TEST_CASE("iptables match options: each kind decides, or leaves the rule undecided", "[firewall]") {
  CHECK(verdict_of("-p tcp -m tcp --dport 22 -j DROP") == "drop");
  CHECK(verdict_of("-p udp -j DROP") == "none");
  CHECK(verdict_of("-s 10.0.0.0/8,192.0.2.1 -j REJECT") == "drop");
  CHECK(verdict_of("! -s 10.0.0.0/8 -j DROP") == "none");
  CHECK(verdict_of("-p tcp -m multiport --dports 80,20:23 -j DROP") == "drop");
  CHECK(verdict_of("-m conntrack --ctstate NEW -j DROP") == "drop");
  CHECK(verdict_of("-m state --state ESTABLISHED -j DROP") == "none");
  CHECK(verdict_of("-m comment --comment \"keep out\" -j DROP") == "drop");
  // What rsttrace does not model: an interface, an unknown module or option.
  CHECK(verdict_of("-i eth0 -j DROP") == "maybe");
  CHECK(verdict_of("! -i eth0 -j DROP") == "maybe");
  CHECK(verdict_of("-m recent --rcheck -j DROP") == "maybe");
  CHECK(verdict_of("--frobnicate -j DROP") == "maybe");
}
