#include <arpa/inet.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "collect/malformed_records.h"
#include "output/summary.h"

using namespace rsttrace;

namespace {

// Verdicts are left as they default: these tests are about counts, and the
// verdict names are attribute/'s (the summary copies Tally's map as it is).
Attribution report(EventKind kind, const char* remote, uint64_t packets) {
  Attribution r;
  r.event.kind = kind;
  r.event.family = 4;
  r.packets = packets;
  inet_pton(AF_INET, remote, r.event.remote.addr.data());
  return r;
}

}  // namespace

TEST_CASE("a run tally counts each report once by direction, and the interval apart") {
  RunTally tally;
  tally.add(report(EventKind::ResetSent, "192.0.2.7", 2));
  tally.add(report(EventKind::ResetReceived, "192.0.2.7", 1));
  tally.add(report(EventKind::Drop, "192.0.2.9", 3));
  tally.add_storm(report(EventKind::Drop, "192.0.2.9", 1), "192.0.2.9", 500, 500);
  // A loopback twin's line: its events count, its connections are the sent storm's.
  tally.add_storm(report(EventKind::ResetReceived, "127.0.0.5", 1), "127.0.0.5", 499, 0);
  CHECK(tally.counts().reports == 3);
  CHECK(tally.counts().packets == 6);
  CHECK(tally.counts().reset_sent == 1);
  CHECK(tally.counts().reset_received == 1);
  CHECK(tally.counts().drop == 1);
  CHECK(tally.run().total() == 3);
  CHECK(tally.run().storm_events() == 999);
  CHECK(tally.run().storm_connections() == 500);
  CHECK(tally.run().storm_by_verdict().size() == 1);
  CHECK(tally.run().top_remotes(5).size() == 2);  // no 127.0.0.5: no connection of its own
  CHECK(tally.interval().total() == 3);
  tally.clear_interval();
  CHECK(tally.interval().total() == 0);
  CHECK(tally.run().total() == 3);  // the run's tally is not the interval's
  CHECK(tally.counts().reports == 3);
}

TEST_CASE("the summary line holds every documented field, in order, from plain counts") {
  RunTally tally;
  tally.add(report(EventKind::ResetSent, "192.0.2.7", 2));
  tally.add(report(EventKind::Drop, "192.0.2.9", 1));
  tally.add_storm(report(EventKind::Drop, "192.0.2.9", 1), "192.0.2.9", 40, 40);
  SummaryFacts facts{.unix_ns = 1'764'064'800'000'001'000ULL,  // 2025-11-25T10:00:00.000001Z
                     .duration_s = 2.5,
                     .counts = tally.counts(),
                     .absorbed = 4,
                     .ignored = 5,
                     .malformed = 6,
                     .storms = 1,
                     .provenance_timed_out = 7,
                     .provenance_skipped = 8};
  facts.kernel = KernelStats{.emitted = 20, .lost = 3, .reset_sent = 11, .reset_received = 0, .drop = 52,
                             .evidence = 1, .folded = 2, .aggregated = 40, .failed_reads = 9};
  const std::string line = summary_line(facts, tally.run());
  CHECK(line.find('\n') == std::string::npos);
  const auto summary = nlohmann::ordered_json::parse(line);

  std::vector<std::string> keys;
  for (const auto& [key, value] : summary.items()) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"type", "ts", "host", "duration_s", "events", "packets", "absorbed", "ignored",
                                         "reset_sent", "reset_received", "drop", "lost", "malformed", "storms",
                                         "provenance", "aggregated", "kernel", "verdicts", "storm_verdicts",
                                         "top_remotes", "storm_connections"});
  CHECK(summary["type"] == "summary");
  CHECK(summary["ts"] == "2025-11-25T10:00:00.000001Z");
  CHECK(summary["duration_s"] == 2.5);
  CHECK(summary["events"] == 2);
  CHECK(summary["packets"] == 3);
  CHECK(summary["absorbed"] == 4);
  CHECK(summary["ignored"] == 5);
  CHECK(summary["reset_sent"] == 1);
  CHECK(summary["reset_received"] == 0);
  CHECK(summary["drop"] == 1);
  CHECK(summary["lost"] == 3);
  CHECK(summary["malformed"] == 6);
  CHECK(summary["storms"] == 1);
  CHECK(summary["provenance"] == nlohmann::ordered_json{{"timed_out", 7}, {"skipped", 8}});
  CHECK(summary["aggregated"] == 40);
  CHECK(summary["kernel"]["emitted"] == 20);
  CHECK(summary["kernel"]["drop"] == 52);
  CHECK(summary["kernel"]["aggregated"] == 40);
  CHECK(summary["kernel"]["failed_reads"] == 9);
  CHECK(summary["verdicts"] == nlohmann::ordered_json(tally.run().by_verdict()));
  CHECK(summary["storm_verdicts"] == nlohmann::ordered_json(tally.run().storm_by_verdict()));
  // The storm's 40 events count under its peer: it leads.
  REQUIRE(summary["top_remotes"].size() == 2);
  CHECK(summary["top_remotes"][0] == nlohmann::ordered_json{{"remote_addr", "192.0.2.9"}, {"events", 41}});
  CHECK(summary["top_remotes"][1] == nlohmann::ordered_json{{"remote_addr", "192.0.2.7"}, {"events", 1}});
}

TEST_CASE("the summary adds programs with --bpf-stats and capture counts with --output") {
  SummaryFacts facts;
  facts.programs = std::vector<ProgramStats>{{"handle_send_reset", 4, 1000}, {"handle_kfree_skb", 0, 0}};
  facts.capture = CaptureCounts{2, 1};
  const auto summary = nlohmann::ordered_json::parse(summary_line(facts, Tally{}));
  REQUIRE(summary["programs"].size() == 2);
  CHECK(summary["programs"][0] ==
        nlohmann::ordered_json{{"name", "handle_send_reset"}, {"runs", 4}, {"run_time_ns", 1000}, {"ns_per_run", 250.0}});
  CHECK(summary["programs"][1]["ns_per_run"] == 0.0);  // never ran: no division by zero
  CHECK(summary["capture"] == nlohmann::ordered_json{{"failed_writes", 2}, {"rotations", 1}});
  const auto plain = nlohmann::ordered_json::parse(summary_line(SummaryFacts{}, Tally{}));
  CHECK_FALSE(plain.contains("programs"));
  CHECK_FALSE(plain.contains("capture"));
}

TEST_CASE("malformed records: every one counted, the first logged, then one line a second with the count") {
  constexpr uint64_t kSecond = 1'000'000'000ULL;
  MalformedRecords malformed;
  const auto first = malformed.add("unknown record type 99", 10 * kSecond);
  REQUIRE(first);
  CHECK(*first == "failed to decode record: unknown record type 99");
  for (int i = 0; i < 999; ++i) CHECK_FALSE(malformed.add("unknown record type 98", 10 * kSecond + i));
  CHECK(malformed.total() == 1000);
  CHECK_FALSE(malformed.tick(10 * kSecond + kSecond / 2));  // within the second: quiet
  const auto summary = malformed.tick(11 * kSecond);
  REQUIRE(summary);
  CHECK(*summary == "failed to decode 999 more records (the last: unknown record type 98); 1000 in total");
  CHECK_FALSE(malformed.tick(13 * kSecond));  // nothing new: nothing said
  // A failure long after is logged at once again, with its own reason.
  const auto later = malformed.add("record of 3 bytes is shorter than its header", 20 * kSecond);
  REQUIRE(later);
  CHECK(*later == "failed to decode record: record of 3 bytes is shorter than its header");
  CHECK_FALSE(malformed.add("unknown event kind 7", 20 * kSecond + 1));
  // At exit the rest is said whatever the time.
  const auto last = malformed.tick(UINT64_MAX);
  REQUIRE(last);
  CHECK(*last == "failed to decode 1 more record (the last: unknown event kind 7); 1002 in total");
  CHECK(malformed.total() == 1002);
}
