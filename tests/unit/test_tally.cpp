#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include "output/tally.h"

using namespace rsttrace;

namespace {

Attribution report(Verdict verdict, const char* remote) {
  Attribution r;
  r.verdict = verdict;
  r.event.family = 4;
  inet_pton(AF_INET, remote, r.event.remote.addr.data());
  return r;
}

}  // namespace

TEST_CASE("a tally counts by verdict and ranks remote addresses") {
  Tally tally;
  for (int i = 0; i < 3; ++i) tally.add(report(Verdict::TcpWrappers, "192.0.2.7"));
  tally.add(report(Verdict::Firewall, "192.0.2.9"));
  CHECK(tally.total() == 4);
  CHECK(tally.by_verdict().at("tcp-wrappers") == 3);
  const auto top = tally.top_remotes(1);
  REQUIRE(top.size() == 1);
  CHECK(top[0] == std::pair<std::string, uint64_t>{"192.0.2.7", 3});
  CHECK(tally.text() == "4 events: tcp-wrappers 3, firewall 1; top remotes 192.0.2.7 (3), 192.0.2.9 (1)");
  tally.clear();
  CHECK(tally.text() == "0 events");
}

TEST_CASE("bounded counts: runs of one key, new keys, and the overflow key count as a plain map would") {
  BoundedCounts counts(5, "(other)");
  std::map<std::string, uint64_t> expected;
  uint32_t state = 1;
  for (int i = 0; i < 5000; ++i) {
    state = state * 1103515245u + 12345u;
    const int pick = static_cast<int>((state >> 16) % 12);  // runs of the same key, and more keys than room
    const std::string key = pick == 11 ? std::string("(other)") : std::string{'k', static_cast<char>('0' + pick / 2)};
    for (int repeat = 0; repeat < 1 + pick % 3; ++repeat) {
      counts.add(key);
      if (expected.count(key) || expected.size() < 5)
        ++expected[key];
      else
        ++expected["(other)"];
    }
    if (i == 2500) {  // a copy counts on its own
      BoundedCounts copy = counts;
      copy.add("k0");
      CHECK(copy.all().at("k0") == counts.all().at("k0") + 1);
    }
  }
  CHECK(counts.all() == expected);
}
