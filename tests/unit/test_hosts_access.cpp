#include <catch2/catch.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "provenance/hosts_access.h"

using namespace rsttrace;

namespace {

AccessClient client_of(std::string daemon, std::string address, std::string hostname = "", std::string user = "") {
  AccessClient client;
  client.daemon = std::move(daemon);
  client.address = std::move(address);
  client.hostname = std::move(hostname);
  client.user = std::move(user);
  return client;
}

AccessDecision deny_only(std::string_view deny, const AccessClient& client) { return decide_access("", deny, client); }

// The line number that decided, or 0 when none did.
int deciding_line(const AccessDecision& decision) { return decision.rule ? decision.rule->line : 0; }

bool has_note(const AccessDecision& decision, std::string_view part) {
  for (const auto& note : decision.notes)
    if (note.find(part) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("fail2ban's hosts.deny line ALL: 127.0.0.2 denies the client") {
  const auto decision = deny_only("# fail2ban\nALL: 127.0.0.2\n", client_of("sshd", "127.0.0.2"));
  CHECK_FALSE(decision.allowed);
  REQUIRE(decision.rule);
  CHECK(decision.rule->file == "/etc/hosts.deny");
  CHECK(decision.rule->line == 2);
  CHECK(decision.rule->last_line == 2);
  CHECK(decision.rule->text == "ALL: 127.0.0.2");
  CHECK(decision.certain);
  CHECK(decision.notes.empty());
}

TEST_CASE("a per-daemon line sshd: 127.0.0.2 denies only sshd") {
  const std::string deny = "in.telnetd: 127.0.0.3\nsshd: 127.0.0.2\n";
  const auto sshd = deny_only(deny, client_of("sshd", "127.0.0.2"));
  CHECK_FALSE(sshd.allowed);
  REQUIRE(sshd.rule);
  CHECK(sshd.rule->line == 2);
  CHECK(sshd.rule->text == "sshd: 127.0.0.2");
  const auto other = deny_only(deny, client_of("vsftpd", "127.0.0.2"));
  CHECK(other.allowed);
  CHECK_FALSE(other.rule);
}

TEST_CASE("no matching line grants access with no rule") {
  const auto decision = decide_access("sshd: 10.0.0.1\n", "sshd: 10.0.0.2\n", client_of("sshd", "127.0.0.2"));
  CHECK(decision.allowed);
  CHECK_FALSE(decision.rule);
  CHECK(decision.certain);
  CHECK(decision.notes.empty());
  CHECK(decide_access("", "", client_of("sshd", "127.0.0.2")).allowed);
}

TEST_CASE("the first matching line of a file wins") {
  const auto decision = deny_only("sshd: 10.0.0.9\nsshd: 127.0.0.2 : spawn echo first\nALL: ALL\n",
                                  client_of("sshd", "127.0.0.2"));
  REQUIRE(decision.rule);
  CHECK(decision.rule->line == 2);
  CHECK(decision.rule->text == "sshd: 127.0.0.2 : spawn echo first");
}

TEST_CASE("a matching hosts.allow line beats hosts.deny") {
  const auto decision = decide_access("sshd: 127.0.0.2\n", "ALL: ALL\n", client_of("sshd", "127.0.0.2"),
                                      "/srv/allow", "/srv/deny");
  CHECK(decision.allowed);
  REQUIRE(decision.rule);
  CHECK(decision.rule->file == "/srv/allow");
  CHECK(decision.rule->line == 1);

  const auto other = decide_access("sshd: 127.0.0.2\n", "ALL: ALL\n", client_of("sshd", "127.0.0.3"),
                                   "/srv/allow", "/srv/deny");
  CHECK_FALSE(other.allowed);
  REQUIRE(other.rule);
  CHECK(other.rule->file == "/srv/deny");
  CHECK(other.rule->text == "ALL: ALL");
}

TEST_CASE("daemon lists take names separated by commas and blanks, and EXCEPT") {
  const std::string deny = "sshd, in.telnetd : 10.0.0.1\nALL EXCEPT sshd : 10.0.0.2\nvsftpd,,proftpd\tin.ftpd: 10.0.0.3\n";
  CHECK(deciding_line(deny_only(deny, client_of("in.telnetd", "10.0.0.1"))) == 1);
  CHECK(deciding_line(deny_only(deny, client_of("sshd", "10.0.0.1"))) == 1);
  CHECK(deciding_line(deny_only(deny, client_of("vsftpd", "10.0.0.1"))) == 0);
  CHECK(deciding_line(deny_only(deny, client_of("vsftpd", "10.0.0.2"))) == 2);
  CHECK(deciding_line(deny_only(deny, client_of("sshd", "10.0.0.2"))) == 0);
  CHECK(deciding_line(deny_only(deny, client_of("in.ftpd", "10.0.0.3"))) == 3);
  CHECK(deciding_line(deny_only(deny, client_of("proftpd", "10.0.0.3"))) == 3);
}

TEST_CASE("daemon patterns use the string patterns: wildcards and prefixes") {
  CHECK(deciding_line(deny_only("ssh*: ALL\n", client_of("sshd", "10.0.0.1"))) == 1);
  CHECK(deciding_line(deny_only("in.: ALL\n", client_of("in.telnetd", "10.0.0.1"))) == 1);
  CHECK(deciding_line(deny_only("in.: ALL\n", client_of("sshd", "10.0.0.1"))) == 0);
}

TEST_CASE("ALL EXCEPT in a client list, as in the man page") {
  const std::string deny = "ALL EXCEPT in.fingerd : ALL EXCEPT 10.0.0.0/255.0.0.0 192.168.\n";
  CHECK(deciding_line(deny_only(deny, client_of("sshd", "172.16.0.1"))) == 1);
  CHECK(deciding_line(deny_only(deny, client_of("sshd", "10.1.2.3"))) == 0);
  CHECK(deciding_line(deny_only(deny, client_of("sshd", "192.168.7.7"))) == 0);
  CHECK(deciding_line(deny_only(deny, client_of("in.fingerd", "172.16.0.1"))) == 0);
}

TEST_CASE("EXCEPT nests to the right and a lone EXCEPT matches nothing") {
  // ALL EXCEPT (10. EXCEPT 10.1.2.3)
  const std::string deny = "sshd: ALL EXCEPT 10. EXCEPT 10.1.2.3\n";
  CHECK(deciding_line(deny_only(deny, client_of("sshd", "10.1.2.3"))) == 1);
  CHECK(deciding_line(deny_only(deny, client_of("sshd", "10.1.2.4"))) == 0);
  CHECK(deciding_line(deny_only(deny, client_of("sshd", "11.0.0.1"))) == 1);
  CHECK(deciding_line(deny_only("sshd: EXCEPT 10.1.2.3\n", client_of("sshd", "10.1.2.4"))) == 0);
  // An empty exception list excepts nothing.
  CHECK(deciding_line(deny_only("sshd: 10.1.2.3 except\n", client_of("sshd", "10.1.2.3"))) == 1);
}

TEST_CASE("IPv4 net/mask and net/prefixlen patterns") {
  const auto client = client_of("sshd", "10.1.2.3");
  CHECK(deciding_line(deny_only("sshd: 10.1.0.0/255.255.0.0\n", client)) == 1);
  CHECK(deciding_line(deny_only("sshd: 10.2.0.0/255.255.0.0\n", client)) == 0);
  CHECK(deciding_line(deny_only("sshd: 10.1.2.0/24\n", client)) == 1);
  CHECK(deciding_line(deny_only("sshd: 10.1.3.0/24\n", client)) == 0);
  CHECK(deciding_line(deny_only("sshd: 10.1.2.3/32\n", client)) == 1);
  CHECK(deciding_line(deny_only("sshd: 0.0.0.0/0\n", client)) == 1);
  CHECK(deciding_line(deny_only("sshd: 10.0.0.0/255.0.0.0\n", client_of("sshd", "::ffff:10.9.9.9"))) == 1);
}

TEST_CASE("net/mask quirks libwrap has") {
  const auto client = client_of("sshd", "10.1.2.3");
  // The net is compared as written: host bits in it never match.
  const auto host_bits = deny_only("sshd: 10.1.2.3/255.255.0.0\n", client);
  CHECK_FALSE(host_bits.rule);
  CHECK(has_note(host_bits, "host bits"));
  CHECK_FALSE(deny_only("sshd: 10.1.2.3/16\n", client).rule);
  // 255.255.255.255 is not a valid mask; nor is /33 or a word.
  const auto all_ones = deny_only("sshd: 10.1.2.3/255.255.255.255\n", client);
  CHECK_FALSE(all_ones.rule);
  CHECK(has_note(all_ones, "bad net/mask 10.1.2.3/255.255.255.255"));
  CHECK_FALSE(deny_only("sshd: 10.1.2.3/33\n", client).rule);
  CHECK_FALSE(deny_only("sshd: 10.1.2.3/abc\n", client).rule);
  CHECK_FALSE(deny_only("sshd: 10.1/16\n", client).rule);
  // A v4 net/mask never matches an IPv6 client.
  CHECK_FALSE(deny_only("sshd: 0.0.0.0/0\n", client_of("sshd", "fd00::1")).rule);
}

TEST_CASE("bracketed IPv6 addresses and prefixes") {
  const auto client = client_of("sshd", "fd00:5eed::2");
  CHECK(deciding_line(deny_only("sshd: [fd00:5eed::]/64\n", client)) == 1);
  CHECK(deciding_line(deny_only("sshd: [fd00:5eee::]/64\n", client)) == 0);
  // Both sides are masked for IPv6, unlike IPv4.
  CHECK(deciding_line(deny_only("sshd: [fd00:5eed::1]/64\n", client)) == 1);
  CHECK(deciding_line(deny_only("sshd: [3ffe:505:2:1::]/64\n", client)) == 0);
  CHECK(deciding_line(deny_only("sshd: [fd00:5eed::2]\n", client)) == 1);
  CHECK(deciding_line(deny_only("sshd: [FD00:5EED:0::2]\n", client)) == 1);
  CHECK(deciding_line(deny_only("sshd: [fd00:5eed::3]\n", client)) == 0);
  CHECK(deciding_line(deny_only("sshd: [fd00::]/129\n", client)) == 0);
  // Prefixes that end inside a byte.
  CHECK(deciding_line(deny_only("sshd: [fd00:5eed::]/63\n", client_of("sshd", "fd00:5eed:0:1::2"))) == 1);
  CHECK(deciding_line(deny_only("sshd: [fd00:5eed::]/65\n", client_of("sshd", "fd00:5eed::7fff:0:0:2"))) == 1);
  CHECK(deciding_line(deny_only("sshd: [fd00:5eed::]/65\n", client_of("sshd", "fd00:5eed::8000:0:0:2"))) == 0);
  // The client's spelling does not matter: libwrap sees inet_ntop's.
  CHECK(deciding_line(deny_only("sshd: [fd00:5eed::2]\n", client_of("sshd", "FD00:5EED:0:0::2"))) == 1);
  // An IPv4-mapped client is matched as IPv4.
  CHECK(deciding_line(deny_only("sshd: 127.0.0.2\n", client_of("sshd", "::ffff:127.0.0.2"))) == 1);
}

TEST_CASE("an unbracketed IPv6 address is cut at its colons and does not match") {
  const auto decision = deny_only("sshd: fd00:5eed::2\n", client_of("sshd", "fd00:5eed::2"));
  // "fd00" is the client list and "5eed::2" the options.
  CHECK_FALSE(decision.rule);
  CHECK(decision.allowed);
}

TEST_CASE("a trailing dot is an address prefix") {
  CHECK(deciding_line(deny_only("sshd: 192.168.\n", client_of("sshd", "192.168.1.9"))) == 1);
  CHECK(deciding_line(deny_only("sshd: 192.168.\n", client_of("sshd", "192.169.1.9"))) == 0);
  CHECK(deciding_line(deny_only("sshd: 192.16.\n", client_of("sshd", "192.168.1.9"))) == 0);
  CHECK(deciding_line(deny_only("sshd: 127.\n", client_of("sshd", "127.0.0.2"))) == 1);
}

TEST_CASE("a leading dot is a host name suffix and needs the host name") {
  const std::string deny = "sshd: .example.com\nsshd: 127.0.0.2\n";
  const auto named = deny_only(deny, client_of("sshd", "127.0.0.2", "box.Example.COM"));
  CHECK(deciding_line(named) == 1);
  CHECK(named.certain);
  CHECK(deciding_line(deny_only(deny, client_of("sshd", "127.0.0.3", "example.com"))) == 0);
  // The name must be longer than the suffix.
  CHECK(deciding_line(deny_only(deny, client_of("sshd", "127.0.0.3", ".example.com"))) == 0);

  // Without a host name line 1 cannot be decided: line 2 decides, uncertainly.
  const auto unnamed = deny_only(deny, client_of("sshd", "127.0.0.2"));
  CHECK(deciding_line(unnamed) == 2);
  CHECK_FALSE(unnamed.allowed);
  CHECK_FALSE(unnamed.certain);
  CHECK(has_note(unnamed, "/etc/hosts.deny line 1 may match"));
  CHECK(has_note(unnamed, "host name is unknown"));
}

TEST_CASE("an undecided pattern under EXCEPT leaves the line undecided") {
  const auto decision = deny_only("sshd: ALL EXCEPT .example.com\n", client_of("sshd", "127.0.0.2"));
  CHECK(decision.allowed);
  CHECK_FALSE(decision.rule);
  CHECK_FALSE(decision.certain);
  CHECK(has_note(decision, "line 1 may match"));
  // A pattern that matched first needs nothing undecided after it.
  const auto sure = deny_only("sshd: 127.0.0.2 .example.com\n", client_of("sshd", "127.0.0.2"));
  CHECK(deciding_line(sure) == 1);
  CHECK(sure.certain);
}

TEST_CASE("wildcards * and ? in addresses and host names") {
  CHECK(deciding_line(deny_only("sshd: 10.1.2.*\n", client_of("sshd", "10.1.2.3"))) == 1);
  CHECK(deciding_line(deny_only("sshd: 10.1.?.3\n", client_of("sshd", "10.1.2.3"))) == 1);
  CHECK(deciding_line(deny_only("sshd: 10.1.?.3\n", client_of("sshd", "10.1.22.3"))) == 0);
  CHECK(deciding_line(deny_only("sshd: *.com\n", client_of("sshd", "10.1.2.3", "A.EXAMPLE.COM"))) == 1);
  CHECK(deciding_line(deny_only("sshd: b?x*\n", client_of("sshd", "10.1.2.3", "box7.lan"))) == 1);
  // Not combined with the prefix and suffix forms: those stay literal.
  CHECK(deciding_line(deny_only("sshd: 10.1.*.\n", client_of("sshd", "10.1.2.3"))) == 0);
  CHECK(deciding_line(deny_only("sshd: .ex*.com\n", client_of("sshd", "10.1.2.3", "a.example.com"))) == 0);
}

TEST_CASE("KNOWN, UNKNOWN, LOCAL and PARANOID") {
  const auto named = client_of("sshd", "10.0.0.1", "gateway");
  const auto dotted = client_of("sshd", "10.0.0.1", "gw.example.com");
  const auto unnamed = client_of("sshd", "10.0.0.1");
  CHECK(deciding_line(deny_only("sshd: LOCAL\n", named)) == 1);
  CHECK(deciding_line(deny_only("sshd: local\n", dotted)) == 0);
  CHECK(deciding_line(deny_only("sshd: KNOWN\n", dotted)) == 1);
  CHECK(deciding_line(deny_only("sshd: UNKNOWN\n", dotted)) == 0);
  // A given host name counts as verified, so it is never PARANOID.
  CHECK(deciding_line(deny_only("sshd: PARANOID\n", dotted)) == 0);
  for (const char* wildcard : {"LOCAL", "KNOWN", "UNKNOWN", "PARANOID"}) {
    INFO(wildcard);
    const auto decision = deny_only(std::string("sshd: ") + wildcard + "\n", unnamed);
    CHECK_FALSE(decision.rule);
    CHECK_FALSE(decision.certain);
    CHECK(has_note(decision, "line 1 may match"));
  }
}

TEST_CASE("user@host patterns match only a known user") {
  const std::string deny = "sshd: bob@10.0.0.1\n";
  CHECK(deciding_line(deny_only(deny, client_of("sshd", "10.0.0.1", "", "BOB"))) == 1);
  CHECK(deciding_line(deny_only(deny, client_of("sshd", "10.0.0.1", "", "alice"))) == 0);
  CHECK(deciding_line(deny_only(deny, client_of("sshd", "10.0.0.2", "", "bob"))) == 0);
  const auto no_user = deny_only(deny, client_of("sshd", "10.0.0.1"));
  CHECK_FALSE(no_user.rule);
  CHECK_FALSE(no_user.certain);
  CHECK(has_note(no_user, "client user is unknown"));
  // The host part decides before the user is needed.
  CHECK(deny_only(deny, client_of("sshd", "10.0.0.2")).certain);
  CHECK(deciding_line(deny_only("sshd: ALL@10.0.0.1\n", client_of("sshd", "10.0.0.1"))) == 1);
  CHECK(deciding_line(deny_only("sshd: KNOWN@ALL\n", client_of("sshd", "10.0.0.1", "", "bob"))) == 1);
}

TEST_CASE("netgroups are not looked up") {
  const auto decision = deny_only("sshd: @trusted\nALL: ALL\n", client_of("sshd", "10.0.0.1"));
  CHECK(deciding_line(decision) == 2);
  CHECK_FALSE(decision.certain);
  CHECK(has_note(decision, "netgroup @trusted is not looked up"));
}

TEST_CASE("pattern files are read through the loader only") {
  const std::map<std::string, std::string> files = {
      {"/etc/blocked", "# one per line\n10.9.9.9 10.1.\n.bad.example\n"},
      {"/etc/outer", "/etc/blocked\n"},
  };
  PatternFileLoader loader = [&files](const std::string& path) -> std::optional<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return std::nullopt;
    return it->second;
  };
  const std::string deny = "sshd: /etc/blocked\n";
  CHECK(deciding_line(decide_access("", deny, client_of("sshd", "10.1.2.3"), "a", "d", loader)) == 1);
  CHECK(deciding_line(decide_access("", deny, client_of("sshd", "10.2.2.3", "x.bad.example"), "a", "d", loader)) == 1);
  CHECK(deciding_line(decide_access("", "sshd: /etc/outer\n", client_of("sshd", "10.9.9.9"), "a", "d", loader)) == 1);
  CHECK(deciding_line(decide_access("", deny, client_of("sshd", "10.2.2.3", "ok.example"), "a", "d", loader)) == 0);

  const auto missing = decide_access("", "sshd: /etc/none\n", client_of("sshd", "10.1.2.3"), "a", "d", loader);
  CHECK_FALSE(missing.rule);
  CHECK(missing.certain);
  CHECK(has_note(missing, "/etc/none cannot be read"));

  const auto no_loader = deny_only(deny, client_of("sshd", "10.1.2.3"));
  CHECK_FALSE(no_loader.rule);
  CHECK_FALSE(no_loader.certain);
  CHECK(has_note(no_loader, "pattern file /etc/blocked is not read"));
}

TEST_CASE("daemon@host matches the server address") {
  AccessClient client = client_of("sshd", "10.1.2.3");
  client.server_address = "10.0.0.1";
  CHECK(deciding_line(deny_only("sshd@10.0.0.1: ALL\n", client)) == 1);
  CHECK(deciding_line(deny_only("sshd@10.0.0.2: ALL\n", client)) == 0);
  CHECK(deciding_line(deny_only("sshd@10.0.0.0/8: ALL\n", client)) == 1);
  CHECK(deciding_line(deny_only("ALL@ALL: ALL\n", client)) == 1);
  client.server_address.clear();
  const auto unknown = deny_only("sshd@10.0.0.1: ALL\n", client);
  CHECK_FALSE(unknown.rule);
  CHECK_FALSE(unknown.certain);
  CHECK(has_note(unknown, "server address is unknown"));
}

TEST_CASE("a port number in a daemon list matches the server port") {
  AccessClient client = client_of("sshd", "10.1.2.3");
  client.server_port = 22;
  CHECK(deciding_line(deny_only("22: ALL\n", client)) == 1);
  CHECK(deciding_line(deny_only("2222: ALL\n", client)) == 0);
  client.server_port = 0;
  const auto unknown = deny_only("22: ALL\n", client);
  CHECK_FALSE(unknown.rule);
  CHECK_FALSE(unknown.certain);
}

TEST_CASE("comments, blank lines and continued lines keep their line numbers") {
  const std::string deny =
      "# header\n"
      "\n"
      "   \t\n"
      "sshd, \\\n"
      "  in.telnetd : \\\n"
      "  127.0.0.2\n"
      "ALL: 127.0.0.3\n";
  const auto continued = deny_only(deny, client_of("in.telnetd", "127.0.0.2"));
  REQUIRE(continued.rule);
  CHECK(continued.rule->line == 4);
  CHECK(continued.rule->last_line == 6);
  CHECK(continued.rule->text == "sshd,   in.telnetd :   127.0.0.2");
  const auto after = deny_only(deny, client_of("sshd", "127.0.0.3"));
  REQUIRE(after.rule);
  CHECK(after.rule->line == 7);
  CHECK(after.rule->text == "ALL: 127.0.0.3");
  CHECK(after.notes.empty());
}

TEST_CASE("a comment continued by a backslash swallows the next line") {
  const auto decision = deny_only("# old rule \\\nsshd: 127.0.0.2\nALL: ALL\n", client_of("sshd", "127.0.0.2"));
  REQUIRE(decision.rule);
  CHECK(decision.rule->line == 3);
}

TEST_CASE("matching is case-insensitive") {
  CHECK(deciding_line(deny_only("SSHD : all\n", client_of("sshd", "127.0.0.2"))) == 1);
  CHECK(deciding_line(deny_only("All Except SshD: ALL\n", client_of("sshd", "127.0.0.2"))) == 0);
  CHECK(deciding_line(deny_only("sshd: Box.Example.Com\n", client_of("sshd", "10.0.0.1", "box.example.com"))) == 1);
}

TEST_CASE("CRLF line endings and tabs still parse") {
  const auto decision = deny_only("sshd\t:\t127.0.0.2\r\n", client_of("sshd", "127.0.0.2"));
  REQUIRE(decision.rule);
  CHECK(decision.rule->line == 1);
  CHECK(decision.rule->text == "sshd\t:\t127.0.0.2\r");
}

TEST_CASE("bad lines are skipped with a note") {
  const std::string deny =
      "sshd 127.0.0.2\n"          // no colon
      "  # indented comment\n"    // only a '#' in column one starts a comment
      ": 127.0.0.2\n"             // empty daemon list: matches nothing, silently
      "sshd :\n"                  // empty client list
      "sshd: 127.0.0.2\n";
  const auto decision = deny_only(deny, client_of("sshd", "127.0.0.2"));
  REQUIRE(decision.rule);
  CHECK(decision.rule->line == 5);
  CHECK(decision.certain);
  REQUIRE(decision.notes.size() == 2);
  CHECK(decision.notes[0] == "/etc/hosts.deny line 1: missing \":\" separator: libwrap skips the line");
  CHECK(decision.notes[1] == "/etc/hosts.deny line 2: missing \":\" separator: libwrap skips the line");
}

TEST_CASE("a last line without a newline is ignored, as libwrap does") {
  const auto decision = deny_only("ALL: 10.0.0.9\nsshd: 127.0.0.2", client_of("sshd", "127.0.0.2"));
  CHECK(decision.allowed);
  CHECK_FALSE(decision.rule);
  CHECK_FALSE(decision.certain);
  CHECK(has_note(decision, "/etc/hosts.deny line 2: missing newline or line too long"));
}

TEST_CASE("a line too long for libwrap ends the file") {
  const std::string deny = "sshd: " + std::string(3000, 'x') + "\nsshd: 127.0.0.2\n";
  const auto decision = deny_only(deny, client_of("sshd", "127.0.0.2"));
  CHECK(decision.allowed);
  CHECK_FALSE(decision.rule);
  CHECK(has_note(decision, "line 1: missing newline or line too long"));
}

TEST_CASE("allow and deny options decide whatever the file") {
  const auto denied = decide_access("sshd: 127.0.0.2 : DENY\nALL: ALL\n", "", client_of("sshd", "127.0.0.2"));
  CHECK_FALSE(denied.allowed);
  REQUIRE(denied.rule);
  CHECK(denied.rule->file == "/etc/hosts.allow");
  CHECK(denied.rule->line == 1);
  const auto allowed = deny_only("sshd: 127.0.0.2 : spawn echo a\\:b : allow\n", client_of("sshd", "127.0.0.2"));
  CHECK(allowed.allowed);
  CHECK(deciding_line(allowed) == 1);
  CHECK(allowed.certain);
}

TEST_CASE("a matched line with bad options refuses the connection") {
  const auto client = client_of("sshd", "127.0.0.2");
  const auto bogus = decide_access("sshd: 127.0.0.2 : bogus\n", "", client);
  CHECK_FALSE(bogus.allowed);
  CHECK(deciding_line(bogus) == 1);
  CHECK(has_note(bogus, "/etc/hosts.allow line 1: bad option name \"bogus\": libwrap refuses the connection"));
  // A trailing colon leaves an empty option.
  CHECK(has_note(decide_access("sshd: 127.0.0.2:\n", "", client), "missing option name"));
  CHECK_FALSE(decide_access("sshd: 127.0.0.2:\n", "", client).allowed);
  CHECK_FALSE(decide_access("sshd: 127.0.0.2 : allow : severity info\n", "", client).allowed);
  CHECK_FALSE(decide_access("sshd: 127.0.0.2 : deny=x\n", "", client).allowed);
  CHECK_FALSE(decide_access("sshd: 127.0.0.2 : spawn\n", "", client).allowed);
  // A trailing '#' is no comment: "x:y" makes an option named "y".
  CHECK_FALSE(decide_access("sshd: 127.0.0.2 # x:y\n", "", client).allowed);
  // The options of a line that does not match are never read.
  CHECK(decide_access("sshd: 10.0.0.1 : bogus\n", "", client).allowed);
}

TEST_CASE("twist and aclexec options") {
  const auto client = client_of("sshd", "127.0.0.2");
  const auto twist = decide_access("sshd: ALL : twist /bin/echo 421 go away\n", "", client);
  CHECK_FALSE(twist.allowed);
  CHECK(has_note(twist, "twist"));
  const auto aclexec = decide_access("sshd: ALL : aclexec /usr/bin/check %a\n", "", client);
  CHECK(aclexec.allowed);
  CHECK_FALSE(aclexec.certain);
  CHECK(has_note(aclexec, "aclexec"));
}

TEST_CASE("spawn in hosts.deny: named in words, its command never run") {
  const auto client = client_of("sshd", "127.0.0.2");
  const auto denied = decide_access("", "sshd: 127.0.0.2 : spawn /bin/touch /tmp/rsttrace-spawn-%a\n", client);
  CHECK_FALSE(denied.allowed);
  CHECK(denied.certain);
  REQUIRE(denied.rule);
  CHECK(denied.rule->line == 1);
  REQUIRE(denied.option_notes.size() == 1);
  CHECK(denied.option_notes[0] ==
        "spawn: libwrap ran `/bin/touch /tmp/rsttrace-spawn-%a` in a child of the refusing process (rsttrace never runs it)");
  CHECK_FALSE(std::filesystem::exists("/tmp/rsttrace-spawn-127.0.0.2"));
  CHECK_FALSE(std::filesystem::exists("/tmp/rsttrace-spawn-%a"));
  // A line that does not match names no option.
  CHECK(decide_access("", "sshd: 10.0.0.1 : spawn /bin/true\n", client).option_notes.empty());
}

TEST_CASE("the file loader reads both files under a root") {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("rsttrace-hosts-access-" + std::to_string(::getpid()));
  fs::create_directories(root / "etc");
  std::ofstream(root / "etc/hosts.allow") << "sshd: 127.0.0.1\n";
  std::ofstream(root / "etc/hosts.deny") << "# fail2ban\nsshd: /etc/blocked\n";
  std::ofstream(root / "etc/blocked") << "127.0.0.2\n";
  const auto denied = decide_access_from_files(client_of("sshd", "127.0.0.2"), root.string());
  const auto allowed = decide_access_from_files(client_of("sshd", "127.0.0.1"), root.string());
  const auto missing = decide_access_from_files(client_of("sshd", "127.0.0.2"), (root / "nowhere").string());
  fs::remove_all(root);
  CHECK_FALSE(denied.allowed);
  REQUIRE(denied.rule);
  CHECK(denied.rule->file == "/etc/hosts.deny");
  CHECK(denied.rule->line == 2);
  CHECK(allowed.allowed);
  CHECK(deciding_line(allowed) == 1);
  CHECK(missing.allowed);
  CHECK_FALSE(missing.rule);
}

// issue 13, finding 4: a pattern file naming itself n times is n^depth
// references; 12 of them never finished. One budget bounds an evaluation.
TEST_CASE("a pattern file naming itself 12 times is decided within the budget, uncertain", "[hosts_access][hostile]") {
  std::string self;
  for (int i = 0; i < 12; ++i) self += "/etc/loop ";
  self += "\n";
  int loads = 0;
  PatternFileLoader loader = [&](const std::string& path) -> std::optional<std::string> {
    ++loads;
    if (path == "/etc/loop") return self;
    return std::nullopt;
  };
  const auto started = std::chrono::steady_clock::now();
  const auto decision = decide_access("sshd: /etc/loop\n", "ALL: ALL\n", client_of("sshd", "127.0.0.2"),
                                      "/etc/hosts.allow", "/etc/hosts.deny", loader);
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CHECK(seconds < 2.0);
  CHECK(loads == 1);  // read once per evaluation
  CHECK_FALSE(decision.certain);
  CHECK(has_note(decision, "pattern files exceed the budget"));
  // hosts.allow's line may match, so hosts.deny decides, uncertain.
  CHECK_FALSE(decision.allowed);
  CHECK(decision.rule->file == "/etc/hosts.deny");
}

TEST_CASE("pattern files that name each other and a real address still match within the budget", "[hosts_access][hostile]") {
  const std::map<std::string, std::string> files = {
      {"/etc/a", "10.1.2.3 /etc/b /etc/a\n"},
      {"/etc/b", "/etc/a /etc/b 10.4.\n"},
  };
  PatternFileLoader loader = [&files](const std::string& path) -> std::optional<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return std::nullopt;
    return it->second;
  };
  // libwrap stops at the first match: found before the loop is followed far.
  const auto first = decide_access("", "sshd: /etc/a\n", client_of("sshd", "10.1.2.3"), "a", "d", loader);
  CHECK(deciding_line(first) == 1);
  CHECK(first.certain);
  const auto through_b = decide_access("", "sshd: /etc/a\n", client_of("sshd", "10.4.0.1"), "a", "d", loader);
  CHECK(deciding_line(through_b) == 1);
  CHECK(through_b.certain);
}

TEST_CASE("long lists, deep EXCEPT nesting and long wildcard tokens stay bounded", "[hosts_access][hostile]") {
  // A 2000-byte rule of EXCEPTs, and a pattern file of long wildcard tokens referenced many times.
  std::string excepts = "sshd: ALL";
  while (excepts.size() < 2000) excepts += " EXCEPT ALL";
  std::string stars;
  for (int i = 0; i < 4000; ++i) stars += "*a";
  std::string refs;
  for (int i = 0; i < 64; ++i) refs += "/etc/stars /etc/refs ";
  PatternFileLoader loader = [&](const std::string& path) -> std::optional<std::string> {
    if (path == "/etc/stars") return stars + "\n";
    if (path == "/etc/refs") return refs + "\n";
    return std::nullopt;
  };
  const auto started = std::chrono::steady_clock::now();
  const auto nested = decide_access("", excepts + "\n", client_of("sshd", "10.1.2.3"), "a", "d", loader);
  const auto wild = decide_access("", "sshd: /etc/refs\n", client_of("sshd", "10.1.2.3"), "a", "d", loader);
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() < 2.0);
  CHECK(nested.certain);
  CHECK(wild.rule == std::nullopt);
  CHECK_FALSE(wild.certain);
  CHECK(has_note(wild, "pattern files exceed the budget"));
}

TEST_CASE("a blocklist pattern file of 100k addresses is decided exactly, within the budget", "[hosts_access][hostile]") {
  std::string blocklist;
  for (int i = 0; i < 100000; ++i)
    blocklist += "10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256) + "\n";
  PatternFileLoader loader = [&](const std::string& path) -> std::optional<std::string> {
    if (path == "/etc/blocklist") return blocklist;
    return std::nullopt;
  };
  const auto last = decide_access("", "sshd: /etc/blocklist\n", client_of("sshd", "10.1.134.159"), "a", "d", loader);
  CHECK(deciding_line(last) == 1);
  CHECK(last.certain);
  const auto absent = decide_access("", "sshd: /etc/blocklist\n", client_of("sshd", "10.9.0.1"), "a", "d", loader);
  CHECK_FALSE(absent.rule);
  CHECK(absent.certain);
}
