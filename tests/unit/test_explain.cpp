// rsttrace explain's pure parts: the client address, the listener's title,
// /proc/net/tcp, and the judgement from facts to steps, verdict and fix.
#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "explain/address.h"
#include "explain/sockets.h"
#include "explain/walk.h"
#include "text/escape.h"

using namespace rsttrace;
using namespace rsttrace::explain;

namespace {

std::string address_of(const ClientAddress& client) { return format_address(client.family, client.addr); }

Facts open_facts() {
  Facts facts;
  facts.client = *parse_client_address("192.0.2.7");
  facts.server_address = "192.0.2.1";
  facts.routing = {.known = true, .route_type = "unicast", .reply_interface = "eth0", .local_address = "192.0.2.1",
                   .rp_filter_all = 0, .rp_filter_interface = 2};
  facts.firewall_read = true;
  facts.hooks = {"prerouting", "input"};
  facts.listener = {.read = true, .listening = true, .bound = "0.0.0.0:22",
                    .processes = {{.pid = 812, .comm = "sshd", .title = "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups",
                                   .exe = "sshd", .libwrap = "yes"}}};
  facts.wrappers = AccessDecision{};
  facts.bans = {.asked = true};
  return facts;
}

}  // namespace

TEST_CASE("client addresses: IPv4, IPv6, with and without a source port", "[explain]") {
  auto v4 = parse_client_address("192.0.2.7");
  REQUIRE(v4);
  CHECK(v4->family == 4);
  CHECK(address_of(*v4) == "192.0.2.7");
  CHECK(v4->port == 0);
  auto v4_port = parse_client_address("192.0.2.7:40022");
  REQUIRE(v4_port);
  CHECK(v4_port->port == 40022);
  auto v6 = parse_client_address("fd00:5eed::2");
  REQUIRE(v6);
  CHECK(v6->family == 6);
  CHECK(address_of(*v6) == "fd00:5eed::2");
  auto v6_port = parse_client_address("[fd00:5eed::2]:40022");
  REQUIRE(v6_port);
  CHECK((v6_port->family == 6 && v6_port->port == 40022));
  auto bracketed = parse_client_address("[::1]");
  REQUIRE(bracketed);
  CHECK(bracketed->port == 0);
  auto mapped = parse_client_address("::ffff:127.0.0.2");
  REQUIRE(mapped);
  CHECK((mapped->family == 4 && address_of(*mapped) == "127.0.0.2"));
  for (const char* bad : {"", "host.example", "192.0.2.7:", "192.0.2.7:0", "192.0.2.7:65536", "192.0.2.7:22x",
                          "[fd00::2", "[fd00::2]22", "[192.0.2.7]", "256.0.0.1", "fe80::1%eth0", "1.2.3.4:-1",
                          "[::1]:", "::1:22:x"})
    CHECK_FALSE(parse_client_address(bad));
  CHECK(parse_client_address("192.0.2.7:0").reason() == "the port must be a number from 1 to 65535");
}

TEST_CASE("OpenSSH's listener title gives the startups", "[explain]") {
  auto two = parse_listener_title("sshd: /usr/sbin/sshd -D [listener] 1 of 1-1 startups");
  REQUIRE(two);
  CHECK((two->current == 1 && two->start == 1 && two->full == 1 && !two->rate));
  auto three = parse_listener_title("sshd: /usr/sbin/sshd -D -f /x [listener] 3 of 10-30-100 startups");
  REQUIRE(three);
  CHECK((three->current == 3 && three->start == 10 && three->rate == 30u && three->full == 100));
  for (const char* bad : {"sshd: /usr/sbin/sshd -D", "[listener] x of 1-1 startups", "[listener] 1 of 1 startups",
                          "[listener] 1 of 1-1", "[listener] 99999999999 of 1-1 startups"})
    CHECK_FALSE(parse_listener_title(bad));
}

TEST_CASE("/proc/net/tcp: listening sockets with their queues", "[explain]") {
  const std::string tcp =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
      "   0: 0100007F:0016 00000000:0000 0A 00000080:00000002 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n"
      "   1: 0100007F:0016 0200007F:9C96 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0 20 4 30 10 -1\n"
      "   2: garbage\n";
  const auto sockets = parse_proc_net_tcp(tcp, 4);
  REQUIRE(sockets.size() == 1);
  CHECK(format_address(4, sockets[0].addr) == "127.0.0.1");
  CHECK(sockets[0].port == 22);
  CHECK(sockets[0].accept_queue == 2);
  CHECK(sockets[0].inode == 4242);
  const std::string tcp6 =
      "  sl  local_address                         remote_address                        st tx_queue rx_queue ...\n"
      "   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 "
      "00000000     0        0 5151 1 0 100 0 0 10 0\n"
      "   1: 0000ED5F00000000000000000000FE80:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 "
      "00000000     0        0 5252 1 0 100 0 0 10 0\n";
  const auto sockets6 = parse_proc_net_tcp(tcp6, 6);
  REQUIRE(sockets6.size() == 2);
  CHECK(format_address(6, sockets6[0].addr) == "::");
  CHECK(sockets6[1].inode == 5252);
}

TEST_CASE("explain: allowed when nothing refuses", "[explain]") {
  const Explanation e = explain_facts(open_facts());
  CHECK(e.allowed);
  CHECK(verdict_text(e) == "allowed");
  // sshd's PerSourcePenalties are in its memory: a penalised client would be refused all the same.
  CHECK_FALSE(e.certain);
  CHECK(e.steps[3].detail.find("PerSourcePenalties") != std::string::npos);
  CHECK(e.remedy.empty());
  REQUIRE(e.steps.size() == 6);
  CHECK(e.steps[0].name == "routing");
  CHECK(e.steps[0].detail.find("rp_filter all=0 eth0=2") != std::string::npos);
  CHECK(e.steps[2].detail.find("held by sshd[812]") != std::string::npos);
}

TEST_CASE("explain: the first block on the path decides, as a live trace would", "[explain]") {
  Facts facts = open_facts();
  facts.wrappers = AccessDecision{.allowed = false, .rule = WrapperRule{"/etc/hosts.deny", 1, 1, "sshd: 192.0.2.7"}};
  facts.listener.processes[0].title = "sshd: /usr/sbin/sshd -D [listener] 1 of 1-1 startups";
  // MaxStartups comes before TCP wrappers (the listener refuses before a child reads the files).
  Explanation e = explain_facts(facts);
  CHECK(verdict_text(e) == "sshd");
  CHECK_FALSE(e.certain);  // the title is the process's own word
  CHECK(e.remedy.size() == 2);
  facts.listener.processes[0].title = "sshd: /usr/sbin/sshd -D [listener] 0 of 1-1 startups";
  e = explain_facts(facts);
  CHECK(verdict_text(e) == "tcp-wrappers");
  CHECK(e.remedy == std::vector<std::string>{"sed -i 1,1d /etc/hosts.deny"});
  // fail2ban bans it: its jail is the fix.
  facts.bans.jails = {"sshd"};
  e = explain_facts(facts);
  CHECK(e.front_end == "fail2ban");
  CHECK(e.remedy == std::vector<std::string>{"fail2ban-client set sshd unbanip 192.0.2.7"});
  // Nothing listens: no-listener, before any daemon's own checks.
  facts.listener.listening = false;
  e = explain_facts(facts);
  CHECK(verdict_text(e) == "no-listener");
  CHECK(e.remedy == std::vector<std::string>{"systemctl start ssh"});
  // A rule drops the SYN: firewall, before everything else.
  facts.rule = FirewallRule{.backend = "nftables", .family = "inet", .table = "t", .chain = "input", .handle = 3,
                            .text = "tcp dport 22 drop", .verdict = "drop"};
  facts.bans.jails.clear();
  e = explain_facts(facts);
  CHECK(verdict_text(e) == "firewall");
  CHECK(e.front_end == "nftables");
  CHECK(e.attribution.rule->handle == 3u);
  CHECK(e.remedy == std::vector<std::string>{"nft delete rule inet t input handle 3"});
}

TEST_CASE("explain: sshd's MaxStartups and PerSourcePenalties come from its sshd -T, the count from its title", "[explain]") {
  Facts facts = open_facts();
  facts.listener.processes[0].title = "sshd: /usr/sbin/sshd -D [listener] 1 of 1-1 startups";
  SshdLimits limits;
  limits.max_startups_start = 1, limits.max_startups_rate = 30, limits.max_startups_full = 1;
  limits.netblock4 = 24, limits.netblock6 = 64;
  facts.sshd_settings = SshdLimitsSource{.limits = limits, .from_sshd = true, .not_run_reason = ""};
  Explanation e = explain_facts(facts);
  CHECK(verdict_text(e) == "sshd");
  CHECK_FALSE(e.certain);  // the count is the title's, the process's own word
  CHECK(e.steps[3].detail.find("MaxStartups is full: MaxStartups 1:30:1 (sshd -T), 1 pre-auth connections by the "
                               "listener's own title") != std::string::npos);
  CHECK(e.steps[3].detail.find("PerSourcePenalties crash:90 authfail:5 noauth:1 grace-exceeded:10 max:600 min:15, "
                               "PerSourceNetBlockSize 24:64 (sshd -T)") != std::string::npos);
  // 9.2 prints no persourcepenalties line; `persourcepenalties no` turns them off.
  facts.sshd_settings->limits.penalties_line = false;
  facts.sshd_settings->limits.penalties.reset();
  CHECK(explain_facts(facts).steps[3].detail.find("this sshd has no PerSourcePenalties (before OpenSSH 9.8; sshd -T)") !=
        std::string::npos);
  // The configuration changed since the listener started: its title's numbers are the ones it applies.
  facts.sshd_settings->limits.max_startups_full = 100;
  e = explain_facts(facts);
  CHECK(verdict_text(e) == "sshd");
  CHECK(e.steps[3].detail.find("MaxStartups start 1, full 1 by its title, while sshd -T reads 1:30:100 (the "
                               "configuration changed since it started") != std::string::npos);
  // sshd -T refused: the title's numbers, with the reason.
  facts.sshd_settings = SshdLimitsSource{.limits = {}, .from_sshd = false,
                                         .not_run_reason = "it runs in a pid namespace of its own (a container?)"};
  facts.listener.processes[0].title = "sshd: /usr/sbin/sshd -D [listener] 0 of 1-1 startups";
  e = explain_facts(facts);
  CHECK(e.steps[3].result == "pass");
  CHECK(e.steps[3].detail.find("MaxStartups has room: MaxStartups 1:100:1 by its title (sshd -T not run: it runs in a "
                               "pid namespace of its own (a container?)), 0 pre-auth connections") != std::string::npos);
  // No count in the title: MaxStartups cannot be judged, whatever sshd -T says.
  facts.sshd_settings = SshdLimitsSource{.limits = limits, .from_sshd = true, .not_run_reason = ""};
  facts.listener.processes[0].title = "/usr/sbin/sshd -D";
  e = explain_facts(facts);
  CHECK(e.steps[3].result == "unknown");
  CHECK(e.steps[3].detail.find("MaxStartups 1:30:1 (sshd -T), but the listener's title gives no count") != std::string::npos);
}

TEST_CASE("explain: untrusted names are escaped in the steps", "[explain]") {
  Facts facts = open_facts();
  facts.listener.processes[0].comm = "ss\nhd";
  facts.listener.processes[0].title = "evil\x1b[2J title";
  const Explanation e = explain_facts(facts);
  CHECK(e.steps[2].detail.find("ss\\x0ahd[812]") != std::string::npos);
  CHECK(e.steps[2].detail.find("\x1b") == std::string::npos);
  CHECK(e.steps[3].result == "unknown");  // no startups in that title
}

TEST_CASE("explain: a route back that does not exist", "[explain]") {
  Facts facts = open_facts();
  facts.routing.route_type = "unreachable";
  facts.routing.rp_filter_all = 1;
  Explanation e = explain_facts(facts);
  CHECK(verdict_text(e) == "kernel");
  CHECK_FALSE(e.certain);
  facts.routing.rp_filter_all = 0;
  facts.routing.rp_filter_interface = 0;
  e = explain_facts(facts);
  CHECK(e.allowed);
}

TEST_CASE("fail2ban's ban list gives the time left", "[explain]") {
  std::tm tm{};
  strptime("2026-11-30 16:00:00", "%Y-%m-%d %H:%M:%S", &tm);
  tm.tm_isdst = -1;
  const int64_t start = static_cast<int64_t>(mktime(&tm));
  const std::string answer = "['192.0.2.70 \t2026-11-30 16:00:00 + 60 = 2026-11-30 16:01:00', "
                             "'192.0.2.7 \t2026-11-30 16:00:00 + 600 = 2026-11-30 16:10:00']";
  CHECK(ban_time_left(answer, "192.0.2.7", start + 100) == "8 min 20 s (until 2026-11-30 16:10:00)");
  CHECK(ban_time_left(answer, "192.0.2.70", start + 10) == "50 s (until 2026-11-30 16:01:00)");
  CHECK_FALSE(ban_time_left(answer, "192.0.2.8", start));
  CHECK_FALSE(ban_time_left("192.0.2.7 \tgarbage = x", "192.0.2.7", start));
  Facts facts = open_facts();
  facts.bans.jails = {"sshd"};
  facts.bans.time_left = {"8 min 20 s (until 2026-11-30 16:10:00)"};
  CHECK(explain_facts(facts).steps[5].detail.find("jail sshd for 8 min 20 s (until 2026-11-30 16:10:00) more") !=
        std::string::npos);
}

TEST_CASE("explain: an sshguard block names its set and says its time left is not known", "[explain]") {
  Facts facts = open_facts();
  facts.rule = FirewallRule{.backend = "nftables", .family = "ip", .table = "sshguard", .chain = "blacklist",
                            .handle = 4, .text = "ip saddr @attackers drop", .verdict = "drop",
                            .blocker = Blocker{"sshguard", "table sshguard", std::nullopt}};
  const Explanation e = explain_facts(facts);
  CHECK(verdict_text(e) == "firewall");
  CHECK(e.front_end == "sshguard");
  CHECK(e.remedy == std::vector<std::string>{"nft delete element ip sshguard attackers '{ 192.0.2.7 }'"});
  CHECK(e.steps[5].detail.find("sshguard blocks it (table sshguard, the firewall rule above): the time left is not "
                               "known") != std::string::npos);
  facts.rule.reset();
  CHECK(explain_facts(facts).steps[5].detail.find("a ban of its would show as the firewall rule above") !=
        std::string::npos);
}
