// Three-valued (Kleene) logic for matching rules rsttrace can only partly
// evaluate: Maybe is a test it cannot decide (a host name it does not resolve,
// a firewall match it does not model), so that `ALL EXCEPT .example.com` or
// `! -i eth0` stays undecided instead of becoming a wrong yes or no.
// Used by the firewall walkers and by the hosts_access matcher.
#pragma once

namespace rsttrace {

enum class Match { No, Yes, Maybe };

constexpr Match match_of(bool holds) { return holds ? Match::Yes : Match::No; }

// Both must hold: No wins, then Maybe.
constexpr Match both(Match a, Match b) {
  if (a == Match::No || b == Match::No) return Match::No;
  if (a == Match::Yes && b == Match::Yes) return Match::Yes;
  return Match::Maybe;
}

// One is enough: Yes wins, then Maybe.
constexpr Match either(Match a, Match b) {
  if (a == Match::Yes || b == Match::Yes) return Match::Yes;
  if (a == Match::No && b == Match::No) return Match::No;
  return Match::Maybe;
}

// An undecided test stays undecided when negated.
constexpr Match negate(Match a) {
  if (a == Match::Maybe) return a;
  return a == Match::Yes ? Match::No : Match::Yes;
}

}  // namespace rsttrace
