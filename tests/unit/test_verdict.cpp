// Verdict names (attribute/verdict.h): every verdict has its printed name,
// names read back to the same verdict, anything else is not a verdict.
#include <catch2/catch.hpp>

#include <set>
#include <algorithm>
#include <string>

#include "attribute/verdict.h"

using namespace rsttrace;

TEST_CASE("verdict names: one each, read back, nothing else parses", "[verdict]") {
  std::set<std::string_view> names;
  for (size_t i = 0; i < kVerdictCount; ++i) {
    const auto verdict = static_cast<Verdict>(i);
    const std::string_view name = verdict_name(verdict);
    CHECK(names.insert(name).second);
    CHECK(parse_verdict(name) == verdict);
  }
  CHECK(verdict_name(Verdict::TcpWrappers) == "tcp-wrappers");
  CHECK(verdict_name(Verdict::NoListener) == "no-listener");
  CHECK(verdict_name(Verdict::None) == "none");
  for (const char* other : {"", "TCP-WRAPPERS", "tcp-wrappers ", "(other verdicts)", "drop"}) CHECK(!parse_verdict(other));
  // In name order (the enum's order is the name order: maps keep their order).
  CHECK(std::is_sorted(names.begin(), names.end()));
}
