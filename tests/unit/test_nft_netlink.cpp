// The netlink fallback's decoding and its one decision (nft_netlink.h), on a
// dump taken from a namespace whose ruleset Debian 13's nft wrote (Debian
// 12's nft crashes on it), and the crash's marker and note.
#include <arpa/inet.h>
#include <signal.h>

#include <catch2/catch.hpp>

#include "privsep/system_access.h"
#include "provenance/command.h"
#include "provenance/firewall.h"
#include "provenance/firewall/nft_netlink.h"

using namespace rsttrace;
using namespace rsttrace::firewall;

namespace {

// `rsttrace nft-netlink-dump` in a namespace with table inet f2b-table: set
// addr-set-sshd { 10.77.0.2 }, interval set r { 10.1.0.0/16, 10.9.0.5-10.9.0.7 },
// chain f2b-chain (input, priority -1): handle 4 `tcp dport 22 ip saddr @addr-set-sshd reject`,
// handle 5 `ip saddr @r drop`.
const char* kDump =
    "C inet 6632622d7461626c65 6632622d636861696e input -1 accept\n"
    "R inet 6632622d7461626c65 6632622d636861696e 4 reject - n:12:4:0:616464722d7365742d73736864\n"
    "R inet 6632622d7461626c65 6632622d636861696e 5 drop - n:12:4:0:72\n"
    "S inet 6632622d7461626c65 616464722d7365742d73736864 4 0\n"
    "S inet 6632622d7461626c65 72 4 1\n"
    "E inet 6632622d7461626c65 616464722d7365742d73736864 0a4d0002 -\n"
    "I inet 6632622d7461626c65 72 0a090008\n"
    "E inet 6632622d7461626c65 72 0a090005 -\n"
    "I inet 6632622d7461626c65 72 0a020000\n"
    "E inet 6632622d7461626c65 72 0a010000 -\n"
    "I inet 6632622d7461626c65 72 00000000\n"
    "D\n";

PacketFacts from(const char* source, int family = 4) {
  PacketFacts packet;
  packet.family = family, packet.hook = "input", packet.dport = 22;
  REQUIRE(inet_pton(family == 6 ? AF_INET6 : AF_INET, source, packet.saddr.data()) == 1);
  return packet;
}

}  // namespace

TEST_CASE("netlink fallback: a banned source names fail2ban's rule, probable", "[nft_netlink]") {
  const NetlinkRuleset ruleset = parse_nft_netlink_dump(kDump);
  REQUIRE(ruleset.read);
  CHECK(ruleset.notes.empty());
  const auto rule = find_netlink_drop(ruleset, from("10.77.0.2"));
  REQUIRE(rule);
  CHECK(rule->table == "f2b-table");
  CHECK(rule->chain == "f2b-chain");
  CHECK(rule->handle == 4u);
  CHECK(rule->verdict == "reject");
  CHECK_FALSE(rule->certain);
  CHECK(rule->undecided == "read without nft: only its set lookup and verdict are known");
  CHECK(rule->fail2ban_jail == "sshd");
  CHECK(blocker_of(*rule)->tool == "fail2ban");
}

TEST_CASE("netlink fallback: intervals hold their ends, not past them", "[nft_netlink]") {
  const NetlinkRuleset ruleset = parse_nft_netlink_dump(kDump);
  for (const char* inside : {"10.1.0.0", "10.1.255.255", "10.9.0.5", "10.9.0.7"}) {
    const auto rule = find_netlink_drop(ruleset, from(inside));
    REQUIRE(rule);
    CHECK(rule->handle == 5u);
    CHECK_FALSE(rule->fail2ban_jail);
  }
  for (const char* outside : {"10.2.0.0", "10.0.255.255", "10.9.0.4", "10.9.0.8", "10.77.0.3", "0.0.0.0"})
    CHECK_FALSE(find_netlink_drop(ruleset, from(outside)));
  CHECK_FALSE(find_netlink_drop(ruleset, from("::a4d:2", 6)));  // an IPv6 packet: the ipv4 sets say nothing
  PacketFacts output = from("10.77.0.2");
  output.hook = "output";
  CHECK_FALSE(find_netlink_drop(ruleset, output));
}

TEST_CASE("netlink fallback: inverted lookups, other fields and jumps", "[nft_netlink]") {
  // Table ip sshguard: chain blacklist (input, -10) jumps to chain inner, which drops ip saddr @attackers;
  // a rule before it drops ip daddr @attackers and one drops ip saddr != @attackers.
  const std::string dump =
      "C ip 7373686775617264 626c61636b6c697374 input -10 accept\n"
      "C ip 7373686775617264 696e6e6572 - 0 -\n"
      "R ip 7373686775617264 626c61636b6c697374 1 drop - n:16:4:0:61747461636b657273\n"
      "R ip 7373686775617264 626c61636b6c697374 2 drop - n:12:4:1:61747461636b657273\n"
      "R ip 7373686775617264 626c61636b6c697374 3 jump 696e6e6572 -\n"
      "R ip 7373686775617264 696e6e6572 4 drop - n:12:4:0:61747461636b657273\n"
      "S ip 7373686775617264 61747461636b657273 4 0\n"
      "E ip 7373686775617264 61747461636b657273 c0000202 -\n"
      "D\n";
  const auto rule = find_netlink_drop(parse_nft_netlink_dump(dump), from("192.0.2.2"));
  REQUIRE(rule);
  CHECK(rule->chain == "inner");
  CHECK(rule->handle == 4u);
  CHECK(blocker_of(*rule)->tool == "sshguard");
}

TEST_CASE("netlink fallback: malformed lines are skipped with a note, never thrown", "[nft_netlink]") {
  const auto ruleset = parse_nft_netlink_dump(
      "C inet zz 61 input -1 accept\nR inet 61 61 x drop - -\nE inet 61 62 0a -\nS inet 61 62 4 7\n"
      "R inet 61 61 1 drop - n:12:4:0:6\nQ\n\n");
  CHECK_FALSE(ruleset.read);
  CHECK(ruleset.rules.empty());
  CHECK(ruleset.notes.size() == 7);
}

TEST_CASE("a reader killed by a signal is told apart from its output", "[nft_netlink]") {
  CHECK(killed_by_signal(killed_by_signal_output(SIGSEGV)) == SIGSEGV);
  CHECK_FALSE(killed_by_signal("{\"nftables\": []}"));
  CHECK_FALSE(killed_by_signal(killed_by_signal_output(SIGSEGV) + "x"));
  CHECK(nft_crash_note(SIGSEGV) ==
        "this host's nft crashed reading the namespace's ruleset (SIGSEGV): written by a newer nft?");
  Rulesets crashed;
  crashed.nft_crashed = SIGSEGV;
  crashed.nft_netlink = kDump;
  const RulesetIndex index(crashed);
  CHECK(index.reader_failure() == nft_crash_note(SIGSEGV));
  const auto rule = index.find_dropping_rule(from("10.77.0.2"));
  REQUIRE(rule);
  CHECK(rule->blocker->name == "sshd");
  CHECK(rule->undecided.find("(SIGSEGV)") != std::string::npos);
}

TEST_CASE("the broker runs the netlink dump only under nsenter, without arguments", "[nft_netlink]") {
  CHECK(broker_allows_command({"nsenter", "--net=/proc/42/ns/net", "--", "nft-netlink-dump"}));
  CHECK_FALSE(broker_allows_command({"nft-netlink-dump"}));
  CHECK_FALSE(broker_allows_command({"nsenter", "--net=/proc/42/ns/net", "--", "nft-netlink-dump", "x"}));
}
