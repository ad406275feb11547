// The three-valued logic shared by the firewall walkers and hosts_access.
#include <catch2/catch.hpp>

#include "provenance/tristate.h"

using rsttrace::Match;

namespace {
constexpr Match kAll[] = {Match::No, Match::Yes, Match::Maybe};
}

TEST_CASE("tristate: both, either and negate follow Kleene's tables", "[tristate]") {
  // Rows: a = No, Yes, Maybe; columns: b = No, Yes, Maybe.
  const Match both_table[3][3] = {{Match::No, Match::No, Match::No},
                                  {Match::No, Match::Yes, Match::Maybe},
                                  {Match::No, Match::Maybe, Match::Maybe}};
  const Match either_table[3][3] = {{Match::No, Match::Yes, Match::Maybe},
                                    {Match::Yes, Match::Yes, Match::Yes},
                                    {Match::Maybe, Match::Yes, Match::Maybe}};
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 3; ++b) {
      CAPTURE(a, b);
      CHECK(rsttrace::both(kAll[a], kAll[b]) == both_table[a][b]);
      CHECK(rsttrace::either(kAll[a], kAll[b]) == either_table[a][b]);
    }
  CHECK(rsttrace::negate(Match::No) == Match::Yes);
  CHECK(rsttrace::negate(Match::Yes) == Match::No);
  CHECK(rsttrace::negate(Match::Maybe) == Match::Maybe);
  CHECK(rsttrace::match_of(true) == Match::Yes);
  CHECK(rsttrace::match_of(false) == Match::No);
}

TEST_CASE("tristate: De Morgan holds, and an undecided test stays undecided", "[tristate]") {
  for (Match a : kAll)
    for (Match b : kAll) {
      CHECK(rsttrace::negate(rsttrace::both(a, b)) == rsttrace::either(rsttrace::negate(a), rsttrace::negate(b)));
      CHECK(rsttrace::negate(rsttrace::either(a, b)) == rsttrace::both(rsttrace::negate(a), rsttrace::negate(b)));
      CHECK(rsttrace::negate(rsttrace::negate(a)) == a);
    }
  // `ALL EXCEPT <undecidable>`: both(Yes, negate(Maybe)) must not become Yes.
  CHECK(rsttrace::both(Match::Yes, rsttrace::negate(Match::Maybe)) == Match::Maybe);
  static_assert(rsttrace::both(Match::Yes, Match::Yes) == Match::Yes, "usable in constant expressions");
}
