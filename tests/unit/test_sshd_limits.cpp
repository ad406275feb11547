// sshd -T's output (synthetic, in the shape of servconf.c's dump_config() of
// OpenSSH 9.2 and 10.0), the -f argument of a listener's command line, and
// the listener's refusal judged against configured limits.
#include <catch2/catch.hpp>

#include <string>

#include "attribute/sshd_limits.h"
#include "attribute/sshd_refusal.h"
#include "privsep/sshd_test_mode.h"

using namespace rsttrace;

namespace {

// The lines that matter among others, as 9.2 prints them (no persourcepenalties).
const std::string kOpenSsh92 =
    "port 22\naddressfamily any\nlistenaddress [::]:22\nlogingracetime 45\nx11displayoffset 10\n"
    "maxstartups 2:30:4\npersourcemaxstartups none\npersourcenetblocksize 32:128\npermittunnel no\n"
    "ipqos lowdelay throughput\nrekeylimit 0 0\npermitopen any\n";

const std::string kOpenSsh100 =
    "port 22\nlogingracetime 120\npersourcepenaltyexemptlist none\nsubsystem sftp /usr/lib/openssh/sftp-server\n"
    "maxstartups 10:30:100\npersourcemaxstartups 3\npersourcenetblocksize 24:64\n"
    "persourcepenalties crash:90 authfail:5 noauth:30 grace-exceeded:10 refuseconnection:10 max:600 min:15 "
    "max-sources4:65536 max-sources6:65536 overflow:permissive overflow6:deny-all\n";

}  // namespace

TEST_CASE("sshd -T of OpenSSH 9.2: MaxStartups, no penalties", "[sshd_limits]") {
  const auto limits = parse_sshd_limits(kOpenSsh92);
  REQUIRE(limits);
  CHECK(limits->max_startups_text() == "2:30:4");
  CHECK(limits->login_grace_time == 45);
  CHECK_FALSE(limits->per_source_max_startups);
  CHECK(limits->netblock4 == 32);
  CHECK(limits->netblock6 == 128);
  CHECK_FALSE(limits->penalties);
  CHECK_FALSE(limits->penalties_line);
}

TEST_CASE("sshd -T of OpenSSH 10.0: every PerSourcePenalties key", "[sshd_limits]") {
  const auto limits = parse_sshd_limits(kOpenSsh100);
  REQUIRE(limits);
  REQUIRE(limits->penalties);
  const SourcePenalties& p = *limits->penalties;
  CHECK(p.crash == 90);
  CHECK(p.authfail == 5);
  CHECK(p.noauth == 30);
  CHECK(p.grace_exceeded == 10);
  CHECK(p.refuseconnection == 10);
  CHECK(p.max == 600);
  CHECK(p.min == 15);
  CHECK(p.max_sources4 == 65536);
  CHECK(p.overflow == "permissive");
  CHECK(p.overflow6 == "deny-all");
  CHECK(limits->per_source_max_startups == 3u);
  CHECK(limits->netblock4 == 24);
  CHECK(limits->netblock6 == 64);
  CHECK(limits->penalty_exempt_list.empty());
}

TEST_CASE("sshd -T: 9.8's penalties (no refuseconnection), penalties off, an exempt list", "[sshd_limits]") {
  auto limits = parse_sshd_limits(
      "maxstartups 10:30:100\npersourcenetblocksize 32:128\nlogingracetime 120\n"
      "persourcepenalties crash:90 authfail:5 noauth:1 grace-exceeded:20 max:600 min:15 max-sources4:65536 "
      "max-sources6:65536 overflow:permissive overflow6:permissive\npersourcepenaltyexemptlist 10.0.0.0/8,fd00::/8\n");
  REQUIRE(limits);
  REQUIRE(limits->penalties);
  CHECK_FALSE(limits->penalties->refuseconnection);
  CHECK(limits->penalties->grace_exceeded == 20);
  CHECK(limits->penalty_exempt_list == "10.0.0.0/8,fd00::/8");
  limits = parse_sshd_limits("maxstartups 1:100:1\npersourcenetblocksize 32:128\nlogingracetime 0\npersourcepenalties no\n");
  REQUIRE(limits);
  CHECK_FALSE(limits->penalties);
  CHECK(limits->penalties_line);
  CHECK(limits->login_grace_time == 0);
  // A later sshd's fractions and new keys.
  limits = parse_sshd_limits("maxstartups 1:100:1\r\npersourcenetblocksize 32:128\nlogingracetime 10\npersourcepenalties "
                             "crash:90.5 authfail:5 noauth:1 grace-exceeded:20 max:600 min:15 newclass:3\n");
  REQUIRE(limits);
  CHECK(limits->penalties->crash == 90.5);
}

TEST_CASE("sshd -T: garbage is a failure with its reason, never a throw", "[sshd_limits]") {
  const std::pair<std::string, std::string> cases[] = {
      {"", "no maxstartups line"},
      {"Usage: sshd [-46DdeGiqTtV]\n", "no maxstartups line"},
      {"maxstartups 10:30\npersourcenetblocksize 32:128\nlogingracetime 120\n", "maxstartups has the value \"10:30\""},
      {"maxstartups 10:30:100:5\npersourcenetblocksize 32:128\nlogingracetime 120\n", "maxstartups has"},
      {"maxstartups 10:0:100\npersourcenetblocksize 32:128\nlogingracetime 120\n", "maxstartups has"},
      {"maxstartups 20:30:10\npersourcenetblocksize 32:128\nlogingracetime 120\n", "maxstartups has"},
      {"maxstartups 10:30:99999999999\npersourcenetblocksize 32:128\nlogingracetime 120\n", "maxstartups has"},
      {"maxstartups -1:30:100\npersourcenetblocksize 32:128\nlogingracetime 120\n", "maxstartups has"},
      {"maxstartups 10:30:100\npersourcenetblocksize 33:128\nlogingracetime 120\n", "persourcenetblocksize has"},
      {"maxstartups 10:30:100\nmaxstartups 1:30:100\n", "maxstartups printed twice"},
      {"maxstartups 10:30:100\npersourcenetblocksize 32:128\nlogingracetime 2m\n", "logingracetime has"},
      {"maxstartups 10:30:100\npersourcenetblocksize 32:128\nlogingracetime 120\npersourcepenalties crash:90\n",
       "persourcepenalties lacks"},
      {"maxstartups 10:30:100\npersourcenetblocksize 32:128\nlogingracetime 120\npersourcepenalties crash:x authfail:5\n",
       "persourcepenalties has the value \"crash:x\""},
      {"maxstartups 10:30:100\npersourcenetblocksize 32:128\nlogingracetime 120\npersourcepenalties overflow:maybe\n",
       "persourcepenalties has"},
      {"maxstartups 10:30:100\npersourcenetblocksize 32:128\n", "no logingracetime line"},
      {std::string(kMaxSshdTestOutput + 1, 'x'), "more than 65536 bytes"},
  };
  for (const auto& [text, says] : cases) {
    const auto limits = parse_sshd_limits(text);
    INFO(text.substr(0, 80));
    REQUIRE_FALSE(limits);
    CHECK_THAT(limits.reason(), Catch::Contains(says));
  }
}

TEST_CASE("the listener's -f: only an absolute plain path", "[sshd_limits]") {
  using namespace std::string_literals;
  bool refused = false;
  CHECK(sshd_config_argument("/usr/sbin/sshd\0-D\0-f\0/etc/ssh/lab.conf\0"s, &refused) == "/etc/ssh/lab.conf");
  CHECK_FALSE(refused);
  CHECK(sshd_config_argument("/usr/sbin/sshd\0-Df/etc/a\0-f\0/etc/b\0"s) == "/etc/b");  // the last one wins
  CHECK(sshd_config_argument("/usr/sbin/sshd\0-De\0"s, &refused).empty());
  CHECK_FALSE(refused);
  // -o's argument is not an option, even when it looks like one.
  CHECK(sshd_config_argument("/usr/sbin/sshd\0-o\0-f/x\0"s, &refused).empty());
  // sshd's listener title (setproctitle): one string.
  CHECK(sshd_config_argument("sshd: /usr/sbin/sshd -D -e -f /tmp/rsttrace-lab-1-ab/sshd22.config [listener] 0 of "
                             "10-100 startups") == "/tmp/rsttrace-lab-1-ab/sshd22.config");
  CHECK(sshd_config_argument("sshd: /usr/sbin/sshd -D [listener] 1 of 2-4 startups", &refused).empty());
  CHECK_FALSE(refused);
  for (const std::string& bad : {"/usr/sbin/sshd\0-f\0relative.conf\0"s, "/usr/sbin/sshd\0-f\0/etc/../tmp/x\0"s,
                                "/usr/sbin/sshd\0-f\0/etc//x\0"s, "/usr/sbin/sshd\0-f\0/etc/./x\0"s,
                                "/usr/sbin/sshd\0-f\0/etc/x y\0"s, "/usr/sbin/sshd\0-f\0/etc/\x1b[2Jx\0"s,
                                "/usr/sbin/sshd\0-f\0/etc/"s + std::string(2000, 'a'),
                                "/usr/sbin/sshd\0-f\0/etc/ssh/\0"s, "/usr/sbin/sshd\0-f\0"s}) {
    INFO(bad);
    CHECK(sshd_config_argument(bad, &refused).empty());
    CHECK(refused);
  }
}

TEST_CASE("a listener's refusal quotes sshd -T's limits, or says why the defaults stand", "[sshd_limits]") {
  ListenerRefusal refusal;
  refusal.open_connections = 1;
  refusal.source = "10.77.0.2";
  refusal.refused_ns = 10'000'000'000;
  SshdLimitsSource source;
  source.from_sshd = true;
  source.limits = *parse_sshd_limits("maxstartups 1:100:3\npersourcenetblocksize 24:64\nlogingracetime 120\n");
  SECTION("MaxStartups from sshd -T") {
    CHECK(listener_refusal_cause(refusal, source) ==
          "MaxStartups refused it: 1 other connection it had accepted was open against MaxStartups 1:100:3 (sshd -T): "
          "at or past its start, where sshd refuses every new one");
    refusal.open_connections = 3;
    CHECK_THAT(listener_refusal_cause(refusal, source), Catch::EndsWith("against MaxStartups 1:100:3 (sshd -T): full"));
  }
  SECTION("an sshd without penalties: MaxStartups even below its start") {
    source.limits.max_startups_start = 5;
    CHECK(listener_refusal_cause(refusal, source) ==
          "MaxStartups refused it: 1 other connection it had accepted was open against MaxStartups 5:100:3 (sshd -T); "
          "this sshd has no PerSourcePenalties (before OpenSSH 9.8) (connections accepted before rsttrace started "
          "are not counted)");
  }
  SECTION("PerSourcePenalties with the class's configured duration and the netblock") {
    source.limits = *parse_sshd_limits(kOpenSsh100);
    refusal.open_connections = 0;
    SeenConnection seen;
    seen.accepted_ns = 1'000'000'000;
    seen.closed_ns = 1'100'000'000;
    seen.bytes_received = 21;
    refusal.earlier.push_back(seen);
    CHECK_THAT(listener_refusal_cause(refusal, source),
               Catch::StartsWith("PerSourcePenalties refused it (MaxStartups cannot have: 0 other connections it had "
                                 "accepted were open, fewer than the start of MaxStartups 10:30:100 (sshd -T)); sources "
                                 "counted per netblock: PerSourceNetBlockSize 24:64 (sshd -T); penalty noauth (30 s a "
                                 "connection, refused from 15 s): 1 earlier connection from 10.77.0.2 ended"));
  }
  SECTION("the defaults, with the reason sshd -T was not run") {
    SshdLimitsSource defaults;
    defaults.not_run_reason = "its executable is owned by uid 1000, not root";
    CHECK(listener_refusal_cause(refusal, defaults) ==
          "MaxStartups or PerSourcePenalties refused it: 1 other connection it had accepted was open against "
          "MaxStartups 10:30:100, defaults (sshd -T not run: its executable is owned by uid 1000, not root), and "
          "rsttrace saw no earlier connection from 10.77.0.2");
  }
}

TEST_CASE("LoginGraceTime: the listener's own setting once sshd -T is in, else what the kernel's times bound") {
  GraceExpiry grace;
  grace.grace_seconds = grace.least_seconds = 6;  // 9.2: closed 6 s after accept()
  CHECK(login_grace_words(grace, nullptr) == "6 s");
  SshdLimitsSource source;
  source.not_run_reason = "it runs in a pid namespace of its own";
  CHECK(login_grace_words(grace, &source) == "6 s");  // sshd -T not run: the measured bound stays
  source.from_sshd = true;
  source.limits.login_grace_time = 4;  // a slow re-exec: the alarm started 2 s after accept()
  CHECK(login_grace_words(grace, &source) == "4 s (sshd -T), closed 6 s after accept()");
  grace.jitter = true;  // 9.8+: sshd-session adds 0-4 s
  grace.least_seconds = 3;
  CHECK(login_grace_words(grace, &source) ==
        "4 s (sshd -T), closed 6 s after accept(): OpenSSH 9.8+ adds up to 4 s of random jitter");
  CHECK(login_grace_words(grace, nullptr) == "3 to 6 s: OpenSSH 9.8+ adds up to 4 s of random jitter");
}
