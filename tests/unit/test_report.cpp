#include <catch2/catch.hpp>

#include <sstream>

#include "cli/options.h"
#include "report/capture_reader.h"
#include "report/incident.h"

using namespace rsttrace;

namespace {

std::string event(const std::string& ts, const std::string& verdict, const std::string& remote,
                  const std::string& jail = "") {
  return R"({"type":"event","ts":")" + ts + R"(","kind":"reset","direction":"sent","remote_addr":")" + remote +
         R"(","verdict":")" + verdict + "\"" + (jail.empty() ? "" : R"(,"fail2ban_jail":")" + jail + "\"") + "}";
}

}  // namespace

TEST_CASE("report: counts, top remotes and jails, first and last, per minute", "[report]") {
  Incident incident;
  uint64_t n = 0;
  // Rotated file first on the command line, newer lines later: order does not matter.
  incident.add_line("cap", ++n, event("2026-11-25T02:16:01.000000Z", "firewall", "10.0.0.9", "sshd"));
  incident.add_line("cap.1", ++n, event("2026-11-25T02:13:08.939998Z", "tcp-wrappers", "127.0.0.2", "sshd"));
  incident.add_line("cap.1", ++n, event("2026-11-25T02:13:59.000001Z", "tcp-wrappers", "127.0.0.2", "sshd"));
  incident.add_line("cap.1", ++n, event("2026-11-25T02:14:00.000000Z", "sshd", "127.0.0.3"));
  incident.add_line("cap.1", ++n, R"({"type":"lost","ts":"2026-11-25T02:14:00.000000Z","count":7,"total":7})");
  incident.add_line("cap.1", ++n, R"({"type":"lost","ts":"2026-11-25T02:15:00.000000Z","count":3,"total":10})");
  incident.add_line("cap.1", ++n, R"({"type":"summary","events":4})");
  CHECK(incident.events() == 4);
  CHECK(incident.by_verdict().at("tcp-wrappers") == 2);
  CHECK(incident.by_verdict().at("firewall") == 1);
  CHECK(incident.by_verdict().at("sshd") == 1);
  CHECK(incident.lost() == 10);
  CHECK(incident.runs() == 1);
  CHECK(incident.first_seen() == "2026-11-25T02:13:08.939998Z");
  CHECK(incident.last_seen() == "2026-11-25T02:16:01.000000Z");
  const auto remotes = incident.top_remotes(2);
  REQUIRE(remotes.size() == 2);
  CHECK(remotes[0] == std::pair<std::string, uint64_t>{"127.0.0.2", 2});
  CHECK(remotes[1] == std::pair<std::string, uint64_t>{"10.0.0.9", 1});  // ties by address
  CHECK(incident.top_jails(5) == std::vector<std::pair<std::string, uint64_t>>{{"sshd", 3}});
  const auto& timeline = incident.timeline();
  REQUIRE(timeline.size() == 3);
  CHECK(timeline.at("2026-11-25T02:13Z").at("tcp-wrappers") == 2);
  CHECK(timeline.at("2026-11-25T02:14Z").at("sshd") == 1);
  CHECK(timeline.at("2026-11-25T02:16Z").at("firewall") == 1);
}

TEST_CASE("report: a storm line counts as its count of events, under its peer and jail", "[report]") {
  Incident incident;
  incident.add_line("cap", 1, event("2026-11-25T02:13:08.000000Z", "firewall", "192.0.2.7", "sshd"));
  const std::string storm = R"({"type":"storm","ts":"2026-11-25T02:13:09.000000Z","state":"ongoing","count":90000,)"
                            R"("port":22,"peer_addr":"192.0.2.7","verdict":"firewall","fail2ban_jail":"sshd"})";
  incident.add_line("cap", 2, storm);
  incident.add_line("cap", 3, R"({"type":"storm","ts":"2026-11-25T02:14:10.000000Z","state":"end","count":0,)"
                              R"("peer_addr":"192.0.2.7","verdict":"firewall"})");
  incident.add_line("cap", 4, R"({"type":"storm","ts":"2026-11-25T02:14:10.000000Z","verdict":"firewall"})");
  CHECK(incident.events() == 90001);
  CHECK(incident.storm_events() == 90000);
  CHECK(incident.by_verdict().at("firewall") == 90001);
  CHECK(incident.top_remotes(1) == std::vector<std::pair<std::string, uint64_t>>{{"192.0.2.7", 90001}});
  CHECK(incident.top_jails(1) == std::vector<std::pair<std::string, uint64_t>>{{"sshd", 90001}});
  CHECK(incident.timeline().at("2026-11-25T02:13Z").at("firewall") == 90001);
  CHECK(incident.last_seen() == "2026-11-25T02:13:09.000000Z");  // an empty end line is no event
  CHECK(incident.malformed() == 1);
  CHECK(incident.malformed_lines().at(0).why == "storm without a count");
  CHECK_THAT(render_text(incident, {"cap"}), Catch::Contains("90001 events from 2026-11-25T02:13:08.000000Z to "
                                                             "2026-11-25T02:13:09.000000Z (90000 of them counted in storms)"));
}

TEST_CASE("report: a storm line counts its connections: a loopback twin's ends count none", "[report]") {
  Incident incident;
  incident.add_line("cap", 1, R"({"type":"storm","ts":"2026-11-25T02:13:09.000000Z","count":2000,"connections":2000,)"
                              R"("twin":false,"peer_addr":"127.0.0.5","verdict":"no-listener"})");
  incident.add_line("cap", 2, R"({"type":"storm","ts":"2026-11-25T02:13:09.000000Z","count":1999,"connections":0,)"
                              R"("twin":true,"peer_addr":"127.0.0.5","verdict":"no-listener"})");
  incident.add_line("cap", 3, R"({"type":"storm","ts":"2026-11-25T02:13:09.000000Z","count":5,"connections":6,)"
                              R"("peer_addr":"127.0.0.5","verdict":"no-listener"})");
  CHECK(incident.events() == 2000);
  CHECK(incident.by_verdict().at("no-listener") == 2000);
  CHECK(incident.top_remotes(1) == std::vector<std::pair<std::string, uint64_t>>{{"127.0.0.5", 2000}});
  CHECK(incident.malformed() == 1);  // more connections than events
}

TEST_CASE("report: a class storm's connections count under its top peers and prefixes", "[report]") {
  Incident incident;
  incident.add_line("cap", 1, R"({"type":"storm","ts":"2026-11-25T02:13:09.000000Z","count":300,"connections":300,)"
                              R"("twin":false,"peer_addr":null,"verdict":"firewall","peerless":true,)"
                              R"("top_peers":[{"addr":"192.0.2.7","count":40,"total":90},{"addr":"192.0.2.9","count":7,"total":7}],)"
                              R"("top_prefixes":[{"addr":"192.0.2.0/24","count":280,"total":800}]})");
  // A hostile line: a count above the line's, a non-string address, a non-array list.
  incident.add_line("cap", 2, R"({"type":"storm","ts":"2026-11-25T02:13:10.000000Z","count":10,"connections":10,)"
                              R"("peer_addr":null,"verdict":"firewall","top_peers":[{"addr":"192.0.2.7","count":99},)"
                              R"({"addr":5,"count":1},"x"],"top_prefixes":{"addr":"10.0.0.0/24"}})");
  CHECK(incident.events() == 310);
  CHECK(incident.top_remotes(2) == std::vector<std::pair<std::string, uint64_t>>{{"192.0.2.7", 50}, {"192.0.2.9", 7}});
  CHECK(incident.top_class_prefixes(5) == std::vector<std::pair<std::string, uint64_t>>{{"192.0.2.0/24", 280}});
  CHECK(incident.malformed() == 0);
  CHECK(render_text(incident, {"cap"}).find("top networks of class storms (many peers):\n  192.0.2.0/24") !=
        std::string::npos);
}

TEST_CASE("report: class storms' top networks and peers are in the text and the page, escaped", "[report]") {
  Incident incident;
  incident.add_line("cap", 1, event("2026-11-25T02:13:08.000000Z", "firewall", "198.51.100.1"));
  incident.add_line("cap", 2, R"({"type":"storm","ts":"2026-11-25T02:13:09.000000Z","count":500,"connections":500,)"
                              R"("twin":false,"peer_addr":null,"verdict":"firewall","peerless":true,)"
                              R"("top_peers":[{"addr":"192.0.2.7","count":40,"total":40},)"
                              R"({"addr":"<img src=x>\u001b[31m","count":3,"total":3}],)"
                              R"("top_prefixes":[{"addr":"192.0.2.0/24","count":450,"total":450},)"
                              R"({"addr":"<b>/24","count":2,"total":2}]})");
  // A peer's own storm: its peer counts among the remotes, not among the class storms' peers.
  incident.add_line("cap", 3, R"({"type":"storm","ts":"2026-11-25T02:13:10.000000Z","count":900,"connections":900,)"
                              R"("peer_addr":"203.0.113.5","verdict":"firewall","peerless":false,"top_peers":null,)"
                              R"("top_prefixes":null})");
  CHECK(incident.class_storm_connections() == 500);
  CHECK(incident.top_class_peers(5) ==
        std::vector<std::pair<std::string, uint64_t>>{{"192.0.2.7", 40}, {"<img src=x>\x1b[31m", 3}});
  CHECK(incident.top_remotes(1) == std::vector<std::pair<std::string, uint64_t>>{{"203.0.113.5", 900}});

  const std::string text = render_text(incident, {"cap"});
  CHECK_THAT(text, Catch::Contains("class storms (many peers, none above the threshold alone): 500 connections"));
  CHECK_THAT(text, Catch::Contains("top networks of class storms (many peers):\n  192.0.2.0/24"));
  CHECK_THAT(text, Catch::Contains("top peers of class storms (many peers):\n  192.0.2.7"));
  CHECK_THAT(text, Catch::Contains("<img src=x>\\x1b[31m"));  // escaped: no terminal escape reaches the reader
  CHECK_THAT(text, !Catch::Contains("\x1b"));

  const std::string page = render_html(incident, {"cap"});
  CHECK_THAT(page, Catch::Contains("500 connections"));
  CHECK_THAT(page, Catch::Contains("<caption>Top networks of class storms</caption>"));
  CHECK_THAT(page, Catch::Contains("<tr><td>192.0.2.0/24</td><td class=\"n\">450</td></tr>"));
  CHECK_THAT(page, Catch::Contains("<caption>Top peers of class storms</caption>"));
  CHECK_THAT(page, Catch::Contains("<tr><td>192.0.2.7</td><td class=\"n\">40</td></tr>"));
  CHECK_THAT(page, Catch::Contains("<tr><td>&lt;b&gt;/24</td><td class=\"n\">2</td></tr>"));
  CHECK_THAT(page, Catch::Contains("&lt;img src=x&gt;\\x1b[31m"));
  CHECK_THAT(page, !Catch::Contains("<img"));
  CHECK_THAT(page, !Catch::Contains("<b>"));

  Incident without;  // no class storm: no such section
  without.add_line("cap", 1, event("2026-11-25T02:13:08.000000Z", "firewall", "198.51.100.1"));
  CHECK_THAT(render_html(without, {"cap"}), !Catch::Contains("class storms"));
  CHECK_THAT(render_text(without, {"cap"}), !Catch::Contains("class storms"));
}

TEST_CASE("report: malformed lines are counted with their line numbers, a cut last line is truncated", "[report]") {
  Incident incident;
  incident.add_line("cap", 1, "{not json");
  incident.add_line("cap", 2, R"({"type":"event","verdict":"sshd"})");            // no ts
  incident.add_line("cap", 3, R"({"type":"event","ts":"yesterday","verdict":"sshd"})");
  incident.add_line("cap", 4, R"(["an","array"])");
  incident.add_line("cap", 5, R"({"type":"mystery"})");
  incident.add_line("cap", 6, R"({"type":"lost","count":-1})");
  incident.add_line("cap", 7, "");
  incident.add_line("cap", 8, R"({"type":"event","ts":"2026-11-25T02:1)", true);
  CHECK(incident.events() == 0);
  CHECK(incident.malformed() == 6);
  CHECK(incident.truncated() == 1);
  REQUIRE(incident.malformed_lines().size() == 6);
  CHECK(incident.malformed_lines()[0].line == 1);
  CHECK(incident.malformed_lines()[1].why == "event without an RFC 3339 \"ts\"");
  CHECK(incident.malformed_lines()[5].line == 6);
  // A whole last line without a newline still counts.
  incident.add_line("cap", 9, event("2026-11-25T02:13:08Z", "sshd", "::1"), true);
  CHECK(incident.events() == 1);
}

TEST_CASE("report: minute_of takes RFC 3339 UTC only", "[report]") {
  CHECK(minute_of("2026-11-25T02:13:08.939998Z") == "2026-11-25T02:13Z");
  CHECK(minute_of("2026-11-25T02:13:08Z") == "2026-11-25T02:13Z");
  CHECK_FALSE(minute_of("2026-11-25T02:13:08+01:00"));
  CHECK_FALSE(minute_of("2026-11-25 02:13:08Z"));
  CHECK_FALSE(minute_of(""));
}

TEST_CASE("report: text and HTML escape what came from the capture", "[report]") {
  Incident incident;
  incident.add_line("cap", 1, event("2026-11-25T02:13:08Z", "firewall", "<script>alert(1)</script>\\u001b[31m",
                                    "jail\\\"><img src=x>"));
  incident.add_line("cap", 2, event("2026-11-25T02:20:08Z", "sshd", "127.0.0.1"));
  const std::string text = render_text(incident, {"cap\n"});
  CHECK_THAT(text, !Catch::Contains("\x1b"));
  CHECK_THAT(text, Catch::Contains("cap\\x0a"));
  const std::string page = render_html(incident, {"cap<b>"});
  CHECK_THAT(page, !Catch::Contains("<script>"));
  CHECK_THAT(page, !Catch::Contains("<img"));
  CHECK_THAT(page, !Catch::Contains("<b>"));
  CHECK_THAT(page, Catch::Contains("&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[31m"));
  CHECK_THAT(page, Catch::Contains("<svg"));
  CHECK_THAT(page, Catch::Contains("fill=\"#1b9e77\""));  // firewall's colour
  CHECK_THAT(page, Catch::Contains("fill=\"#7570b3\""));  // sshd's
  CHECK_THAT(page, !Catch::Contains("<script"));
  CHECK_THAT(page, !Catch::Contains("http://www.w3.org/1999"));  // nothing external but the SVG namespace
}

TEST_CASE("report: rotated files read out of order give the same story, line numbers per file", "[report]") {
  const std::string older = event("2026-11-25T02:13:08.000000Z", "tcp-wrappers", "127.0.0.2", "sshd") + "\n" +
                            "{garbage\n" + event("2026-11-25T02:14:00.000000Z", "sshd", "127.0.0.3") + "\n";
  const std::string newer = event("2026-11-25T02:15:00.000000Z", "firewall", "127.0.0.4") + "\n" +
                            R"({"type":"lost","ts":"2026-11-25T02:15:01.000000Z","count":2,"total":2})" + "\n" +
                            R"({"type":"event","ts":"2026-11-25T02:1)";  // cut mid-write
  auto story = [&](bool newest_first) {
    Incident incident;
    std::istringstream a(newest_first ? newer : older), b(newest_first ? older : newer);
    CHECK(read_capture(a, newest_first ? "cap" : "cap.1", incident));
    CHECK(read_capture(b, newest_first ? "cap.1" : "cap", incident));
    return incident;
  };
  for (const bool newest_first : {true, false}) {
    const Incident incident = story(newest_first);
    CHECK(incident.events() == 3);
    CHECK(incident.first_seen() == "2026-11-25T02:13:08.000000Z");
    CHECK(incident.last_seen() == "2026-11-25T02:15:00.000000Z");
    CHECK(incident.lost() == 2);
    CHECK(incident.truncated() == 1);
    REQUIRE(incident.malformed_lines().size() == 1);
    CHECK(incident.malformed_lines()[0].file == "cap.1");
    CHECK(incident.malformed_lines()[0].line == 2);
    CHECK(render_text(incident, {"cap"}) == render_text(story(!newest_first), {"cap"}));
  }
}

TEST_CASE("report: a line far too long is skipped without being held, the next one still counts", "[report]") {
  std::istringstream in(std::string(5000, 'x') + "\n" + event("2026-11-25T02:13:08Z", "sshd", "::1") + "\n" +
                        std::string(5000, 'y'));
  LineReader reader(in, 1000);
  CaptureLine line;
  REQUIRE(reader.next(line));
  CHECK(line.too_long);
  CHECK(line.text.empty());
  CHECK(line.number == 1);
  REQUIRE(reader.next(line));
  CHECK_FALSE(line.too_long);
  CHECK_FALSE(line.unterminated);
  CHECK(line.number == 2);
  REQUIRE(reader.next(line));
  CHECK(line.too_long);
  CHECK(line.unterminated);
  CHECK_FALSE(reader.next(line));

  std::istringstream again(in.str());
  Incident incident;
  CHECK(read_capture(again, "cap", incident, 1000));
  CHECK(incident.events() == 1);
  CHECK(incident.malformed() == 2);
  CHECK(incident.malformed_lines()[1].line == 3);
}

TEST_CASE("report: timestamps must be real UTC dates, ordered by time not text", "[report]") {
  CHECK(timestamp_us("1970-01-01T00:00:00Z") == 0);
  CHECK(timestamp_us("1970-01-02T00:00:01.5Z") == 86'401'500'000LL);
  CHECK(timestamp_us("2024-02-29T23:59:59.999999Z").has_value());
  CHECK_FALSE(timestamp_us("2026-02-29T00:00:00Z"));  // not a leap year
  CHECK_FALSE(timestamp_us("2026-02-31T00:00:00Z"));
  CHECK_FALSE(timestamp_us("2026-13-01T00:00:00Z"));
  CHECK_FALSE(timestamp_us("2026-99-99T99:99:99Z"));
  CHECK_FALSE(timestamp_us("2026-11-25T02:13:08.Z"));
  CHECK_FALSE(timestamp_us("2026-11-25T02:13:08.12a456Z"));
  Incident incident;
  incident.add_line("cap", 1, event("2026-11-25T02:13:08.5Z", "sshd", "::1"));
  incident.add_line("cap", 2, event("2026-11-25T02:13:08Z", "sshd", "::1"));  // "08Z" > "08.5Z" as text
  CHECK(incident.first_seen() == "2026-11-25T02:13:08Z");
  CHECK(incident.last_seen() == "2026-11-25T02:13:08.5Z");
  incident.add_line("cap", 3, event("2026-02-31T00:00:00Z", "sshd", "::1"));
  CHECK(incident.malformed() == 1);
}

TEST_CASE("report: the chart stays bounded for years of events and many verdicts", "[report]") {
  Incident incident;
  uint64_t n = 0;
  for (int year = 1971; year <= 9999; year += 7)
    incident.add_line("cap", ++n, event(std::to_string(year) + "-06-15T12:00:00Z", "firewall", "10.0.0.1"));
  for (int i = 0; i < 100; ++i)
    incident.add_line("cap", ++n, event("2026-11-25T02:13:08Z", "made-up-" + std::to_string(i), "10.0.0.1"));
  CHECK(incident.by_verdict().size() == 65);  // 64 and the overflow
  CHECK(incident.by_verdict().at(Incident::kOtherVerdicts) == 37);
  CHECK(incident.timeline().at("2026-11-25T02:13Z").at(Incident::kOtherVerdicts) == 37);
  const std::string page = render_html(incident, {"cap"});
  size_t rects = 0;
  for (size_t at = page.find("<rect x="); at != std::string::npos; at = page.find("<rect x=", at + 1)) ++rects;
  CHECK(rects < 400);  // at most 240 bars, a few verdicts each, and the legend
  CHECK_THAT(page, Catch::Contains("</svg>"));
}

TEST_CASE("report: a hostile verdict of any length stays escaped and whole in the page", "[report]") {
  Incident incident;
  const std::string verdict = std::string(2000, 'v') + "<script>alert(1)</script>";
  incident.add_line("cap", 1, event("2026-11-25T02:13:08Z", verdict, "10.0.0.1"));
  const std::string page = render_html(incident, {"cap"});
  CHECK_THAT(page, !Catch::Contains("<script"));
  CHECK_THAT(page, Catch::Contains(std::string(2000, 'v') + "&lt;script&gt;alert(1)&lt;/script&gt;: 1</title></rect>"));
  const std::string text = render_text(incident, {"cap"});
  CHECK_THAT(text, Catch::Contains("<script>alert(1)</script>          1\n"));
}

TEST_CASE("report: the subcommand takes files in any number and --html", "[report]") {
  const auto parsed = parse_command_line({"rsttrace", "report", "cap", "cap.2", "cap.1", "--html", "/tmp/r.html"});
  REQUIRE(std::holds_alternative<ReportOptions>(parsed));
  const auto& options = std::get<ReportOptions>(parsed);
  CHECK(options.files == std::vector<std::string>{"cap", "cap.2", "cap.1"});
  CHECK(options.html == "/tmp/r.html");
  const auto none = parse_command_line({"rsttrace", "report"});
  REQUIRE(std::holds_alternative<CliExit>(none));
  CHECK(std::get<CliExit>(none).code == 2);
  const auto bad_html = parse_command_line({"rsttrace", "report", "cap", "--html", "/no/such/dir/r.html"});
  REQUIRE(std::holds_alternative<CliExit>(bad_html));
  CHECK_THAT(std::get<CliExit>(bad_html).message, Catch::Contains("does not exist"));
}

TEST_CASE("report: a truncated, a deeply nested and a hostile line are skipped, never thrown", "[report][hostile]") {
  std::string capture = event("2026-11-25T02:13:08Z", "sshd", "::1") + "\n";
  capture += std::string(100000, '[') + "\n";                                  // a bracket bomb
  capture += R"({"type":"storm","ts":"2026-11-25T02:13:08Z","verdict":"x","count":1.5})" "\n";
  capture += R"({"type":"event","ts":1,"verdict":["sshd"],"remote_addr":{}})" "\n";
  capture += std::string("\xff\xfe{\"type\":\"event\"}\0\n", 20);
  capture += R"({"type":"event","ts":"2026-11-25T02:13:09Z","verdict":"ss)";  // cut mid-write
  std::istringstream in(capture);
  Incident incident;
  REQUIRE(read_capture(in, "cap", incident));
  CHECK(incident.events() == 1);
  CHECK(incident.truncated() == 1);
  CHECK(incident.malformed() == 4);
  REQUIRE(incident.malformed_lines().size() == 4);
  CHECK(incident.malformed_lines()[0].line == 2);
  CHECK(incident.malformed_lines()[0].why == "nested deeper than 32 levels");
}

TEST_CASE("report: hosts counted apart, lines without a host under (no host)", "[report][host]") {
  Incident incident;
  auto with_host = [](std::string line, const std::string& host) {
    return line.insert(line.find(",\"kind\""), ",\"host\":\"" + host + "\"");
  };
  incident.add_line("web-01.jsonl", 1, with_host(event("2026-11-25T02:13:08.000000Z", "sshd", "192.0.2.1"), "web-01"));
  incident.add_line("web-01.jsonl", 2, with_host(event("2026-11-25T02:14:08.000000Z", "sshd", "192.0.2.1"), "web-01"));
  incident.add_line("web-01.jsonl", 3, R"({"type":"lost","ts":"2026-11-25T02:14:09.000000Z","host":"web-01","count":4,"total":4})");
  incident.add_line("web-01.jsonl", 4, R"({"type":"summary","ts":"2026-11-25T02:15:00.000000Z","host":"web-01"})");
  incident.add_line("web-02.jsonl", 1, with_host(event("2026-11-25T02:10:00.000000Z", "firewall", "192.0.2.9"), "web-02"));
  incident.add_line("old.jsonl", 1, event("2026-11-25T01:00:00.000000Z", "peer", "192.0.2.3"));
  REQUIRE(incident.hosts().size() == 3);
  const HostCounts& web01 = incident.hosts().at("web-01");
  CHECK(web01.events == 2);
  CHECK(web01.lost == 4);
  CHECK(web01.runs == 1);
  CHECK(web01.first == "2026-11-25T02:13:08.000000Z");
  CHECK(web01.last == "2026-11-25T02:14:08.000000Z");
  CHECK(incident.hosts().at("web-02").events == 1);
  CHECK(incident.hosts().at(Incident::kNoHost).events == 1);
  CHECK(incident.events() == 4);
  CHECK(incident.clock_steps_back() == 0);  // each file in order; hosts apart are never compared
  const std::string text = render_text(incident, {"web-01.jsonl", "web-02.jsonl", "old.jsonl"});
  CHECK_THAT(text, Catch::Contains("by host:\n  (no host)"));
  CHECK_THAT(text, Catch::Contains("\n  web-01 "));
  CHECK_THAT(text, Catch::Contains(" 2 events, 2026-11-25T02:13:08.000000Z to 2026-11-25T02:14:08.000000Z, lost 4, runs 1\n"));
  CHECK_THAT(text, Catch::Contains("clock order: no line more than 60 s earlier"));
  CHECK_THAT(render_html(incident, {"x"}), Catch::Contains("<caption>By host</caption>"));
}

TEST_CASE("report: a host's clock set back between runs is stated; lines waiting for provenance are not", "[report][host]") {
  Incident incident;
  uint64_t n = 0;
  const std::string host = R"(,"host":"web-01")";
  auto line = [&](const std::string& type, const std::string& ts) {
    return R"({"type":")" + type + R"(","ts":")" + ts + "\"" + host + R"(,"verdict":"sshd","count":1})";
  };
  incident.add_line("cap", ++n, line("event", "2026-11-25T03:00:00.000000Z"));
  incident.add_line("cap", ++n, line("event", "2026-11-25T02:59:50.000000Z"));  // waited 10 s for its rule: ordinary
  incident.add_line("cap", ++n, line("summary", "2026-11-25T03:01:00.000000Z"));
  incident.add_line("cap", ++n, line("event", "2026-11-25T02:00:00.000000Z"));  // the next run: an hour earlier
  incident.add_line("cap", ++n, line("event", "2026-11-25T02:00:01.000000Z"));  // the same run: no second note
  incident.add_line("cap.1", 1, line("event", "2026-11-25T01:00:00.000000Z"));   // another file starts afresh
  CHECK(incident.clock_steps_back() == 1);  // line 5 is measured from line 4: one step, one note
  REQUIRE(incident.clock_step_back_lines().size() == 1);
  const ClockStepBack& step = incident.clock_step_back_lines()[0];
  CHECK(step.file == "cap");
  CHECK(step.line == 4);
  CHECK(step.host == "web-01");
  CHECK(step.ts == "2026-11-25T02:00:00.000000Z");
  CHECK(step.after == "2026-11-25T03:01:00.000000Z");
  const std::string text = render_text(incident, {"cap", "cap.1"});
  CHECK_THAT(text, Catch::Contains("clock order: 1 step(s) back: a line more than 60 s earlier"));
  CHECK_THAT(text, Catch::Contains("  cap:4: host web-01 at 2026-11-25T02:00:00.000000Z, after 2026-11-25T03:01:00.000000Z"));
}
