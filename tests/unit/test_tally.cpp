#include <arpa/inet.h>

#include <catch2/catch.hpp>

#include "output/tally.h"

using namespace rsttrace;

namespace {

Report report(const char* verdict, const char* remote) {
  Report r;
  r.verdict = verdict;
  r.event.family = 4;
  inet_pton(AF_INET, remote, r.event.remote.addr.data());
  return r;
}

}  // namespace

TEST_CASE("a tally counts by verdict and ranks remote addresses") {
  Tally tally;
  for (int i = 0; i < 3; ++i) tally.add(report("tcp-wrappers", "192.0.2.7"));
  tally.add(report("firewall", "192.0.2.9"));
  CHECK(tally.total() == 4);
  CHECK(tally.by_verdict().at("tcp-wrappers") == 3);
  const auto top = tally.top_remotes(1);
  REQUIRE(top.size() == 1);
  CHECK(top[0] == std::pair<std::string, uint64_t>{"192.0.2.7", 3});
  CHECK(tally.text() == "4 events: tcp-wrappers 3, firewall 1; top remotes 192.0.2.7 (3), 192.0.2.9 (1)");
  tally.clear();
  CHECK(tally.text() == "0 events");
}
