// The netlink fallback (nft_netlink.h): dump lines decoded, their expressions
// turned into nft's document (nft_netlink_json.cpp) and walked. Synthetic
// rules written as nf_tables holds them (what `nft --debug=netlink` shows for
// each rule), and the crash's marker and note.
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

std::string hex(const std::string& text) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text) out += {digits[c >> 4], digits[c & 15]};
  return out;
}

// A dump of one table: its chains (name, hook or "-", priority, policy or "-"),
// rules (chain, handle, expressions), sets and elements as raw lines.
struct Dump {
  std::string family, table, text;
  Dump(std::string f, std::string t) : family(std::move(f)), table(std::move(t)) {}
  Dump& chain(const std::string& name, const std::string& hook = "input", int priority = 0, const std::string& policy = "accept") {
    text += "C " + family + " " + hex(table) + " " + hex(name) + " " + hook + " " + std::to_string(priority) + " " +
            (hook == "-" ? "-" : policy) + "\n";
    return *this;
  }
  Dump& rule(const std::string& chain, int handle, const std::string& expressions) {
    text += "R " + family + " " + hex(table) + " " + hex(chain) + " " + std::to_string(handle) + " " + expressions + "\n";
    return *this;
  }
  Dump& set(const std::string& name, int key_length, bool interval, int key_type) {
    text += "S " + family + " " + hex(table) + " " + hex(name) + " " + std::to_string(key_length) + " " +
            (interval ? "1" : "0") + " " + std::to_string(key_type) + "\n";
    return *this;
  }
  Dump& element(const std::string& set, const std::string& key, const char* kind = "E") {
    text += std::string(kind) + " " + family + " " + hex(table) + " " + hex(set) + " " + key + (kind[0] == 'E' ? " -" : "") + "\n";
    return *this;
  }
  Rulesets crashed() const {
    Rulesets rulesets;
    rulesets.nft_crashed = SIGSEGV;
    rulesets.nft_netlink = text + "D\n";
    return rulesets;
  }
};

PacketFacts from(const char* source, int family = 4) {
  PacketFacts packet;
  packet.family = family, packet.hook = "input", packet.dport = 22, packet.sport = 40000;
  REQUIRE(inet_pton(family == 6 ? AF_INET6 : AF_INET, source, packet.saddr.data()) == 1);
  return packet;
}

std::optional<FirewallRule> dropping(const Dump& dump, const PacketFacts& packet) {
  return RulesetIndex(dump.crashed()).find_dropping_rule(packet);
}

// Expressions as nft 1.1 writes them (NFT_META_L4PROTO 16, NFT_META_NFPROTO 15, payload bases 1 network, 2 transport).
const std::string kTcpDport22 = "m:1:16,cmp:1:0:06,p:1:2:2:2,cmp:1:0:0016";
const std::string kIpv4 = "m:1:15,cmp:1:0:02";
std::string saddr_in(const std::string& set) { return kIpv4 + ",p:1:1:12:4,lk:1:-:0:" + hex(set); }

// fail2ban's nftables-multiport ban as Debian 13's fail2ban writes it.
Dump fail2ban() {
  Dump dump("inet", "f2b-table");
  dump.chain("f2b-chain", "input", -1)
      .rule("f2b-chain", 4, kTcpDport22 + "," + saddr_in("addr-set-sshd") + ",rj:0:3")
      .set("addr-set-sshd", 4, false, 7)
      .element("addr-set-sshd", "0a4d0002");
  return dump;
}

}  // namespace

TEST_CASE("netlink: fail2ban's ban decoded whole is certain, written as nft writes it", "[nft_netlink]") {
  const auto rule = dropping(fail2ban(), from("10.77.0.2"));
  REQUIRE(rule);
  CHECK(rule->backend == "nftables");
  CHECK((rule->family + " " + rule->table + " " + rule->chain) == "inet f2b-table f2b-chain");
  CHECK(rule->handle == 4u);
  CHECK(rule->verdict == "reject");
  CHECK(rule->text == "tcp dport 22 ip saddr @addr-set-sshd reject with icmp port-unreachable");
  CHECK(rule->certain);
  CHECK(rule->fail2ban_jail == "sshd");
  CHECK(blocker_of(*rule)->tool == "fail2ban");
  // Another source, another port, IPv6: the rule does not match.
  CHECK_FALSE(dropping(fail2ban(), from("10.77.0.3")));
  PacketFacts other_port = from("10.77.0.2");
  other_port.dport = 2222;
  CHECK_FALSE(dropping(fail2ban(), other_port));
  CHECK_FALSE(dropping(fail2ban(), from("::a4d:2", 6)));
}

TEST_CASE("netlink: a dump of rules Debian 13's nft 1.1.3 wrote, read back as nft writes them", "[nft_netlink]") {
  // `rsttrace nft-netlink-dump` in a namespace where the Debian 13 root's nft added fail2ban's
  // ban, sshguard's subnet ban (10.77.0.0/24) and a table inet fw (this host's nft 1.0.6 crashes on it).
  const std::string dump =
      "C inet 6632622d7461626c65 6632622d636861696e input -1 accept\n"
      "C ip 7373686775617264 626c61636b6c697374 input -10 accept\n"
      "C inet 6677 696e input 0 accept\n"
      "R inet 6632622d7461626c65 6632622d636861696e 3 m:1:16,cmp:1:0:06,p:1:2:2:2,cmp:1:0:0016,m:1:15,cmp:1:0:02,p:1:1:12:4,lk:1:-:0:616464722d7365742d73736864,rj:0:3\n"
      "R ip 7373686775617264 626c61636b6c697374 3 p:1:1:12:4,lk:1:-:0:61747461636b657273,v:0:-\n"
      "R inet 6677 696e 2 c:1:0:-,bw:1:1:4:06000000:00000000,cmp:1:1:00000000,v:1:-\n"
      "R inet 6677 696e 3 m:1:6,cmp:1:0:6c6f0000000000000000000000000000,v:1:-\n"
      "R inet 6677 696e 4 c:1:0:-,bw:1:1:4:01000000:00000000,cmp:1:1:00000000,ctr:0:0,v:0:-\n"
      "R inet 6677 696e 6 m:1:16,cmp:1:0:06,p:1:2:2:2,lk:1:-:0:5f5f73657430,m:1:15,cmp:1:0:02,p:1:1:12:4,bw:1:1:4:fffff000:00000000,cmp:1:0:0a501000,v:0:-\n"
      "R inet 6677 696e 7 m:1:3,cmp:1:0:07000000,m:1:15,cmp:1:0:0a,p:1:1:8:8,cmp:1:0:fd00000000000000,?:6c696d6974,v:0:-\n"
      "S inet 6632622d7461626c65 616464722d7365742d73736864 4 0 7\n"
      "S ip 7373686775617264 61747461636b657273 4 1 7\n"
      "S inet 6677 5f5f73657430 2 0 13\n"
      "E inet 6632622d7461626c65 616464722d7365742d73736864 0a4d0002 -\n"
      "I ip 7373686775617264 61747461636b657273 0a4d0100\n"
      "E ip 7373686775617264 61747461636b657273 0a4d0000 -\n"
      "I ip 7373686775617264 61747461636b657273 00000000\n"
      "E inet 6677 5f5f73657430 0016 -\n"
      "E inet 6677 5f5f73657430 08ae -\n"
      "D\n"
      ;
  std::map<std::string, std::string> texts;
  nft_json_of_netlink(parse_nft_netlink_dump(dump), texts);
  CHECK(texts["inet/f2b-table/f2b-chain/3"] == "tcp dport 22 ip saddr @addr-set-sshd reject with icmp port-unreachable");
  CHECK(texts["ip/sshguard/blacklist/3"] == "ip saddr @attackers drop");
  CHECK(texts["inet/fw/in/2"] == "ct state established,related accept");
  CHECK(texts["inet/fw/in/3"] == "iifname \"lo\" accept");
  CHECK(texts["inet/fw/in/4"] == "ct state invalid counter packets 0 bytes 0 drop");
  CHECK(texts["inet/fw/in/6"] == "tcp dport { 22, 2222 } ip saddr 10.80.16.0/20 drop");
  CHECK(texts["inet/fw/in/7"] == "meta mark 0x00000007 ip6 saddr fd00::/64 limit drop");
  Rulesets crashed;
  crashed.nft_crashed = SIGSEGV, crashed.nft_netlink = dump;
  const RulesetIndex index(crashed);
  PacketFacts packet = from("10.77.0.9");
  packet.in_interface = "veth0";
  packet.conntrack = ConntrackFacts{};
  packet.conntrack->state = ConntrackFacts::State::New;
  auto rule = index.find_dropping_rule(packet);  // sshguard's /24 ban, before fail2ban's (priority -10 < -1)
  REQUIRE(rule);
  CHECK((rule->table + " " + rule->chain) == "sshguard blacklist");
  CHECK(rule->certain);
  CHECK(rule->set_element == "10.77.0.0/24");
  rule = index.find_dropping_rule(from("10.80.20.1"));
  REQUIRE(rule);
  CHECK(rule->handle == 6u);
  CHECK_FALSE(rule->certain);  // ct state not known for this packet: the accept of established may have taken it
  packet = from("10.80.20.1");
  packet.in_interface = "veth0";
  packet.conntrack = ConntrackFacts{};
  packet.conntrack->state = ConntrackFacts::State::New;
  rule = index.find_dropping_rule(packet);
  REQUIRE(rule);
  CHECK(rule->handle == 6u);
  CHECK(rule->certain);
}

TEST_CASE("netlink: interval sets hold their ends, not past them; prefixes and ranges", "[nft_netlink]") {
  // sshguard's set: `type ipv4_addr; flags interval` holding 10.1.0.0/16 and 10.9.0.5-10.9.0.7.
  Dump dump("ip", "sshguard");
  dump.chain("blacklist", "input", -10)
      .rule("blacklist", 3, "p:1:1:12:4,lk:1:-:0:" + hex("attackers") + ",v:0:-")
      .set("attackers", 4, true, 7)
      .element("attackers", "0a090008", "I")
      .element("attackers", "0a090005")
      .element("attackers", "0a020000", "I")
      .element("attackers", "0a010000")
      .element("attackers", "00000000", "I");
  for (const char* inside : {"10.1.0.0", "10.1.255.255", "10.9.0.5", "10.9.0.7"}) {
    const auto rule = dropping(dump, from(inside));
    REQUIRE(rule);
    CHECK(rule->handle == 3u);
    CHECK(rule->text == "ip saddr @attackers drop");
    CHECK(rule->certain);
    CHECK(blocker_of(*rule)->tool == "sshguard");
  }
  for (const char* outside : {"10.2.0.0", "10.0.255.255", "10.9.0.4", "10.9.0.8", "10.77.0.3", "0.0.0.0"})
    CHECK_FALSE(dropping(dump, from(outside)));
  PacketFacts output = from("10.1.0.1");
  output.hook = "output";
  CHECK_FALSE(dropping(dump, output));
  // The set's elements, as nft -j would list them.
  std::map<std::string, std::string> texts;
  const auto json = nft_json_of_netlink(parse_nft_netlink_dump(dump.text + "D\n"), texts);
  std::string elements;
  for (const auto& object : json["nftables"])
    if (object.contains("set")) elements = object["set"]["elem"].dump();
  CHECK(elements == R"([{"prefix":{"addr":"10.1.0.0","len":16}},{"range":["10.9.0.5","10.9.0.7"]}])");
}

TEST_CASE("netlink: address prefixes nft trims to their bytes or masks", "[nft_netlink]") {
  Dump dump("ip", "t");
  dump.chain("c")
      .rule("c", 1, "p:1:1:12:3,cmp:1:0:0a4d00,v:0:-")                       // ip saddr 10.77.0.0/24
      .rule("c", 2, "p:1:1:12:3,bw:1:1:3:fffff0:000000,cmp:1:0:0a5010,v:0:-");  // ip saddr 10.80.16.0/20
  auto rule = dropping(dump, from("10.77.0.200"));
  REQUIRE(rule);
  CHECK(rule->text == "ip saddr 10.77.0.0/24 drop");
  CHECK(rule->certain);
  rule = dropping(dump, from("10.80.31.1"));
  REQUIRE(rule);
  CHECK(rule->handle == 2u);
  CHECK(rule->text == "ip saddr 10.80.16.0/20 drop");
  CHECK_FALSE(dropping(dump, from("10.80.32.1")));
}

TEST_CASE("netlink: ct state, interface and mark are decided against the packet's facts", "[nft_netlink]") {
  Dump dump("inet", "filter");
  dump.chain("input", "input", 0)
      .rule("input", 1, "c:1:0:-,bw:1:1:4:06000000:00000000,cmp:1:1:00000000,v:1:-")  // ct state established,related accept
      .rule("input", 3, "m:1:6,cmp:1:0:6c6f0000000000000000000000000000,v:1:-")  // iifname "lo" accept
      .rule("input", 4, "m:1:3,cmp:1:0:07000000,v:1:-")                            // meta mark 0x7 accept
      .rule("input", 5, "c:1:0:-,bw:1:1:4:01000000:00000000,cmp:1:1:00000000,ctr:3:180,v:0:-")  // ct state invalid counter drop
      .rule("input", 6, kTcpDport22 + ",ctr:9:540,v:0:-");
  PacketFacts packet = from("10.77.0.2");
  packet.in_interface = "veth0", packet.mark = 0;
  packet.conntrack = ConntrackFacts{};
  packet.conntrack->state = ConntrackFacts::State::New;
  auto rule = dropping(dump, packet);
  REQUIRE(rule);
  CHECK(rule->handle == 6u);
  CHECK(rule->text == "tcp dport 22 counter packets 9 bytes 540 drop");
  INFO(rule->undecided);
  CHECK(rule->certain);
  packet.conntrack->state = ConntrackFacts::State::Invalid;
  rule = dropping(dump, packet);
  REQUIRE(rule);
  CHECK(rule->handle == 5u);
  CHECK(rule->text == "ct state invalid counter packets 3 bytes 180 drop");
  CHECK(rule->packets == 3u);
  CHECK(rule->certain);
  packet.conntrack->state = ConntrackFacts::State::Established;
  CHECK_FALSE(dropping(dump, packet));
  packet.conntrack->state = ConntrackFacts::State::New;
  packet.in_interface = "lo";
  CHECK_FALSE(dropping(dump, packet));
  packet.in_interface = "veth0", packet.mark = 7;
  CHECK_FALSE(dropping(dump, packet));
  packet.mark.reset();  // the mark not known: rule 4 may have accepted it
  rule = dropping(dump, packet);
  REQUIRE(rule);
  CHECK_FALSE(rule->certain);
  CHECK(rule->undecided.find("meta mark") != std::string::npos);
}

TEST_CASE("netlink: what is not decoded stays in the rule, named, and leaves it probable", "[nft_netlink]") {
  Dump dump("inet", "t");
  dump.chain("c")
      .rule("c", 1, "?:" + hex("connlimit") + ",v:0:-")                          // ct count over N drop
      .rule("c", 2, kIpv4 + ",p:1:1:12:4,p:8:2:2:2,cmp:1:0:0a4d0002,v:0:-")       // reg 1 overwritten by the port
      .rule("c", 3, kIpv4 + ",p:1:1:12:4,p:9:1:16:4,lk:1:-:0:" + hex("pairs") + ",v:0:-")  // a concatenation
      .rule("c", 4, saddr_in("names") + ",v:0:-")                                  // a set of a type not compared
      .rule("c", 5, "m:1:10,cmp:1:0:e8030000,v:0:-")                               // meta skuid 1000
      .rule("c", 6, "p:1:1:12:4,lk:1:0:0:" + hex("vmap"))                          // a verdict map
      .rule("c", 8, "p:1:1:12:4,lk:1:1:0:" + hex("map") + ",cmp:1:0:01")            // a map into its own key's register
      .set("pairs", 8, false, (7 << 6) | 7)
      .set("names", 4, false, 5);
  const PacketFacts packet = from("10.77.0.2");
  std::map<std::string, std::string> texts;
  const auto json = nft_json_of_netlink(parse_nft_netlink_dump(dump.text + "D\n"), texts);
  CHECK(texts["inet/t/c/1"] == "[connlimit] drop");
  auto rule = dropping(dump, packet);
  REQUIRE(rule);
  CHECK(rule->handle == 1u);
  CHECK_FALSE(rule->certain);
  CHECK(rule->undecided.rfind("statement connlimit in c", 0) == 0);
  // Each of the others, alone before an accept-all, is a candidate at best, never certain.
  for (int handle : {2, 3, 4, 5}) {
    Dump one("inet", "t");
    one.chain("c");
    const std::string key = "inet/t/c/" + std::to_string(handle);
    INFO(key << ": " << texts[key]);
    // Its expressions from the dump above.
    const size_t at = dump.text.find(" " + std::to_string(handle) + " ");
    const size_t end = dump.text.find('\n', at);
    one.text += "R inet " + hex("t") + " " + hex("c") + " " + dump.text.substr(at + 1, end - at - 1) + "\n";
    one.set("pairs", 8, false, (7 << 6) | 7).set("names", 4, false, 5);
    const auto found = dropping(one, packet);
    REQUIRE(found);
    CHECK(found->handle == static_cast<uint64_t>(handle));
    CHECK_FALSE(found->certain);
    CHECK_FALSE(found->undecided.empty());
  }
  CHECK(texts["inet/t/c/4"] == "ip saddr @names drop");
  CHECK(texts["inet/t/c/6"] == "[a verdict map (@vmap)]");
  CHECK(texts["inet/t/c/8"] == "[map @map] [? == 0x01]");
}

TEST_CASE("netlink: jumps and gotos are followed, returns come back", "[nft_netlink]") {
  Dump dump("ip", "sshguard");
  dump.chain("blacklist", "input", -10)
      .chain("inner", "-")
      .chain("skipped", "-")
      .rule("blacklist", 1, "p:1:1:16:4,lk:1:-:0:" + hex("attackers") + ",v:0:-")  // ip daddr @attackers drop
      .rule("blacklist", 2, "p:1:1:12:4,lk:1:-:1:" + hex("attackers") + ",v:0:-")  // ip saddr != @attackers drop
      .rule("blacklist", 3, "v:-3:" + hex("skipped"))
      .rule("blacklist", 4, "v:-3:" + hex("inner"))
      .rule("skipped", 5, "v:-5:-")
      .rule("skipped", 6, "v:0:-")
      .rule("inner", 7, "p:1:1:12:4,lk:1:-:0:" + hex("attackers") + ",v:0:-")
      .set("attackers", 4, false, 7)
      .element("attackers", "c0000202");
  const auto rule = dropping(dump, from("192.0.2.2"));
  REQUIRE(rule);
  CHECK(rule->chain == "inner");
  CHECK(rule->handle == 7u);
  CHECK(rule->certain);
  CHECK(blocker_of(*rule)->tool == "sshguard");
}

TEST_CASE("netlink: malformed lines are skipped with a note, never thrown", "[nft_netlink]") {
  const auto ruleset = parse_nft_netlink_dump(
      "C inet zz 61 input -1 accept\nR inet 61 61 x -\nE inet 61 62 0a -\nS inet 61 62 4 7 7\n"
      "R inet 61 61 1 drop - n:12:4:0:6\nQ\n\n");
  CHECK_FALSE(ruleset.read);
  CHECK(ruleset.rules.empty());
  CHECK(ruleset.notes.size() == 7);
  // Expressions with wrong fields decode as statements rsttrace does not read.
  std::map<std::string, std::string> texts;
  nft_json_of_netlink(parse_nft_netlink_dump("R inet 61 61 1 cmp:1:0,p:x:1:2:3,lk:1:-:2:61,v:zz:-,cmp:99:0:00\nD\n"),
                      texts);
  CHECK(texts["inet/a/a/1"] ==
        "[an expression rsttrace does not read (cmp)] [an expression rsttrace does not read (p)] "
        "[an expression rsttrace does not read (lk)] [an expression rsttrace does not read (v)] "
        "[an expression rsttrace does not read (cmp)]");
  // A prefix of a name (iifname "veth*") is nft's wildcard.
  nft_json_of_netlink(parse_nft_netlink_dump("R inet 61 61 2 m:1:6,cmp:1:0:76657468,v:1:-\nD\n"), texts);
  CHECK(texts["inet/a/a/2"] == "iifname \"veth*\" accept");
}

TEST_CASE("a reader killed by a signal is told apart from its output", "[nft_netlink]") {
  CHECK(killed_by_signal(killed_by_signal_output(SIGSEGV)) == SIGSEGV);
  CHECK_FALSE(killed_by_signal("{\"nftables\": []}"));
  CHECK_FALSE(killed_by_signal(killed_by_signal_output(SIGSEGV) + "x"));
  CHECK(nft_crash_note(SIGSEGV) ==
        "this host's nft crashed reading the namespace's ruleset (SIGSEGV): written by a newer nft?");
  const RulesetIndex index(fail2ban().crashed());
  CHECK(index.reader_failure() == nft_crash_note(SIGSEGV));
  const auto rule = index.find_dropping_rule(from("10.77.0.2"));
  REQUIRE(rule);
  CHECK(rule->blocker->name == "sshd");
  // The counter of a rule read over netlink is compared like nft's (corroboration).
  Dump counted("inet", "t");
  counted.chain("c").rule("c", 2, kTcpDport22 + ",ctr:4:240,v:0:-");
  const RulesetIndex before(counted.crashed());
  auto found = before.find_dropping_rule(from("10.77.0.2"));
  REQUIRE(found);
  CHECK(before.counter_of(*found) == 4u);
}

TEST_CASE("the broker runs the netlink dump only under nsenter, without arguments", "[nft_netlink]") {
  CHECK(broker_allows_command({"nsenter", "--net=/proc/42/ns/net", "--", "nft-netlink-dump"}));
  CHECK_FALSE(broker_allows_command({"nft-netlink-dump"}));
  CHECK_FALSE(broker_allows_command({"nsenter", "--net=/proc/42/ns/net", "--", "nft-netlink-dump", "x"}));
}
