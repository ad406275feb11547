#include "provenance/firewall/ipsets.h"

#include <sstream>

#include "provenance/firewall/field_matches.h"
#include "provenance/firewall/limits.h"

namespace rsttrace::firewall {

Ipsets parse_ipset_save(std::string_view text, std::vector<std::string>& notes) {
  Ipsets sets;
  if (text.size() > kMaxRulesetText) {
    notes.push_back("ipset save: larger than " + std::to_string(kMaxRulesetText) + " bytes: not read");
    return sets;
  }
  size_t entries = 0;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string verb, name, value;
    words >> verb >> name >> value;
    if (verb == "create" && !name.empty()) {
      Ipset& set = sets[name];
      set.type = value;
      std::string word;
      while (words >> word)
        if (word == "family" && words >> word) set.family = word == "inet6" ? 6 : 4;
    } else if (verb == "add" && !value.empty()) {
      const auto set = sets.find(name);
      if (set == sets.end()) continue;  // not created first: not ipset's own output
      if (++entries > kMaxIptablesRules) {
        notes.push_back("ipset save: more than " + std::to_string(kMaxIptablesRules) + " entries: the rest is skipped");
        break;
      }
      set->second.entries.push_back(value);
    }
  }
  return sets;
}

Match ipset_contains(const Ipset& set, const std::string& flags, int family, const std::array<uint8_t, 16>& addr) {
  if ((set.type != "hash:ip" && set.type != "hash:net") || (flags != "src" && flags != "dst")) return Match::Maybe;
  if (set.family != family) return Match::No;  // a set of the other family never matches
  Match any = Match::No;
  for (const std::string& entry : set.entries) {
    any = either(any, address_matches(entry, family, addr));
    if (any == Match::Yes) break;
  }
  return any;
}

std::optional<std::string> ipset_entry_holding(const Ipset& set, int family, const std::array<uint8_t, 16>& addr) {
  if ((set.type != "hash:ip" && set.type != "hash:net") || set.family != family) return std::nullopt;
  for (const std::string& entry : set.entries)
    if (address_matches(entry, family, addr) == Match::Yes) return entry;
  return std::nullopt;
}

}  // namespace rsttrace::firewall
