// Decoding nft_netlink_dump's lines (a namespace owner's data: bounded, total)
// and the one question asked of them: which rule drops this source address.
#include "provenance/firewall/nft_netlink.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "provenance/firewall.h"

namespace rsttrace::firewall {
namespace {

constexpr size_t kMaxFields = 8;
constexpr size_t kMaxLookupsPerRule = 16;
constexpr size_t kMaxNotes = 16;
constexpr int kMaxJumpDepth = 16;  // nf_tables' own limit

std::vector<std::string_view> split(std::string_view text, char separator, size_t max) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (parts.size() < max) {
    const size_t end = text.find(separator, pos);
    parts.push_back(text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return parts;
}

int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "-" is the empty string; anything not hex is nullopt.
std::optional<std::string> unhex(std::string_view text, size_t max_bytes = 256) {
  if (text == "-") return std::string();
  if (text.empty() || text.size() % 2 || text.size() / 2 > max_bytes) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < text.size(); i += 2) {
    const int high = nibble(text[i]), low = nibble(text[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
  }
  return out;
}

template <typename T>
std::optional<T> number(std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<std::array<uint8_t, 16>> key_of(std::string_view text, uint32_t key_length) {
  const auto bytes = unhex(text, 16);
  if (!bytes || bytes->size() != key_length || key_length == 0) return std::nullopt;
  std::array<uint8_t, 16> key{};
  std::copy(bytes->begin(), bytes->end(), key.begin());
  return key;
}

bool known_family(std::string_view family) {
  return family == "inet" || family == "ip" || family == "ip6" || family == "arp" || family == "bridge" ||
         family == "netdev";
}

std::string set_key(std::string_view family, const std::string& table, const std::string& set) {
  return std::string(family) + "/" + table + "/" + set;
}

// Decodes one line into `ruleset`; false if malformed. `pending` holds interval starts.
bool decode_line(std::string_view line, NetlinkRuleset& ruleset, size_t& elements,
                 std::map<std::string, std::vector<std::pair<std::array<uint8_t, 16>, bool>>>& bounds) {
  const auto f = split(line, ' ', kMaxFields);
  if (f.empty()) return false;
  if (f[0] == "D" && f.size() == 1) return ruleset.read = true;
  if (f[0] == "N") return true;  // the dump's own note: its text is not repeated (the namespace's data is not in it)
  if (f.size() < 4 || !known_family(f[1])) return false;
  const auto table = unhex(f[2]), name = unhex(f[3]);
  if (!table || !name) return false;
  if (f[0] == "C" && f.size() == 7) {
    const auto priority = number<int32_t>(f[5]);
    if (!priority || ruleset.chains.size() >= kMaxNetlinkChains) return false;
    ruleset.chains.push_back({std::string(f[1]), *table, *name, f[4] == "-" ? "" : std::string(f[4]), *priority,
                              f[6] == "-" ? "" : std::string(f[6])});
    return true;
  }
  if (f[0] == "R" && f.size() == 8) {
    const auto handle = number<uint64_t>(f[4]);
    const auto target = unhex(f[6]);
    if (!handle || !target || ruleset.rules.size() >= kMaxNetlinkRules) return false;
    NetlinkRule rule{std::string(f[1]), *table, *name, *handle, f[5] == "-" ? "" : std::string(f[5]), *target, {}};
    if (f[7] != "-")
      for (std::string_view lookup : split(f[7], ',', kMaxLookupsPerRule)) {
        const auto parts = split(lookup, ':', 6);
        if (parts.size() != 5 || (parts[0] != "n" && parts[0] != "o") || (parts[3] != "0" && parts[3] != "1"))
          return false;
        const auto offset = number<uint32_t>(parts[1]), length = number<uint32_t>(parts[2]);
        const auto set = unhex(parts[4]);
        if (!offset || !length || !set) return false;
        rule.lookups.push_back({*set, *offset, *length, parts[0] == "n", parts[3] == "1"});
      }
    ruleset.rules.push_back(std::move(rule));
    return true;
  }
  if (f[0] == "S" && f.size() == 6) {
    const auto key_length = number<uint32_t>(f[4]);
    if (!key_length || (f[5] != "0" && f[5] != "1") || ruleset.sets.size() >= kMaxNetlinkSets) return false;
    NetlinkSet& set = ruleset.sets[set_key(f[1], *table, *name)];
    set.key_length = *key_length, set.interval = f[5] == "1";
    return true;
  }
  if ((f[0] == "E" && f.size() == 6) || (f[0] == "I" && f.size() == 5)) {
    const auto found = ruleset.sets.find(set_key(f[1], *table, *name));
    if (found == ruleset.sets.end()) return false;
    NetlinkSet& set = found->second;
    if (++elements > kMaxNetlinkElements) {
      set.truncated = true;
      return true;
    }
    const auto key = key_of(f[4], set.key_length);
    if (!key) return set.key_length > 16;  // a key rsttrace does not compare (concatenations...): not an error
    if (f[0] == "I") {
      bounds[found->first].push_back({*key, true});
    } else if (f[5] != "-") {  // NFTA_SET_ELEM_KEY_END: an inclusive range in one element
      const auto end = key_of(f[5], set.key_length);
      if (!end) return false;
      set.ranges.push_back({*key, *end});
    } else if (set.interval) {
      bounds[found->first].push_back({*key, false});
    } else {
      set.ranges.push_back({*key, *key});
    }
    return true;
  }
  return false;
}

// Old-style intervals: a start, then (in key order) the end element, exclusive.
void pair_intervals(NetlinkSet& set, std::vector<std::pair<std::array<uint8_t, 16>, bool>>& bounds) {
  std::sort(bounds.begin(), bounds.end());
  const size_t length = std::min<size_t>(set.key_length, 16);
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (bounds[i].second) continue;  // an end without its start
    std::array<uint8_t, 16> last{};
    std::fill(last.begin(), last.begin() + static_cast<long>(length), 0xff);  // open to the top
    if (i + 1 < bounds.size() && bounds[i + 1].second) {
      last = bounds[i + 1].first;
      // Exclusive end minus one, big-endian.
      for (size_t b = length; b-- > 0;)
        if (last[b]-- != 0) break;
    }
    set.ranges.push_back({bounds[i].first, last});
  }
}

bool holds(const NetlinkSet& set, const std::array<uint8_t, 16>& address, size_t length) {
  if (set.key_length != length) return false;
  for (const auto& [low, high] : set.ranges)
    if (std::lexicographical_compare(address.begin(), address.begin() + static_cast<long>(length), low.begin(),
                                     low.begin() + static_cast<long>(length)) == false &&
        std::lexicographical_compare(high.begin(), high.begin() + static_cast<long>(length), address.begin(),
                                     address.begin() + static_cast<long>(length)) == false)
      return true;
  return false;
}

bool applies_to(std::string_view chain_family, int packet_family) {
  return chain_family == "inet" || (chain_family == "ip" && packet_family == 4) ||
         (chain_family == "ip6" && packet_family == 6);
}

struct Walk {
  const NetlinkRuleset& ruleset;
  const PacketFacts& packet;
  size_t steps = 0;

  // A lookup of the packet's source address (ip saddr: offset 12, ip6 saddr: offset 8) in a set holding it.
  std::optional<std::string> source_lookup(const NetlinkRule& rule) const {
    const uint32_t offset = packet.family == 6 ? 8 : 12, length = packet.family == 6 ? 16 : 4;
    for (const NetlinkLookup& lookup : rule.lookups) {
      if (!lookup.network_header || lookup.inverted || lookup.payload_offset != offset ||
          lookup.payload_length != length)
        continue;
      const auto set = ruleset.sets.find(set_key(rule.family, rule.table, lookup.set));
      if (set != ruleset.sets.end() && holds(set->second, packet.saddr, length)) return lookup.set;
    }
    return std::nullopt;
  }

  std::optional<FirewallRule> chain(const std::string& family, const std::string& table, const std::string& name,
                                    int depth) {
    if (depth > kMaxJumpDepth) return std::nullopt;
    for (const NetlinkRule& rule : ruleset.rules) {
      if (++steps > 4 * kMaxNetlinkRules) return std::nullopt;
      if (rule.family != family || rule.table != table || rule.chain != name) continue;
      if (rule.verdict == "jump" || rule.verdict == "goto") {
        // Followed whatever the rule's matches: what it calls is asked the same narrow question.
        if (auto found = this->chain(family, table, rule.target, depth + 1)) return found;
        continue;
      }
      if (rule.verdict != "drop" && rule.verdict != "reject") continue;
      const auto set = source_lookup(rule);
      if (!set) continue;
      FirewallRule found;
      found.backend = "nftables", found.family = family, found.table = table, found.chain = name;
      found.handle = rule.handle, found.verdict = rule.verdict;
      found.text = std::string(packet.family == 6 ? "ip6" : "ip") + " saddr @" + *set + " ... " + rule.verdict;
      found.certain = false;
      found.undecided = "read without nft: only its set lookup and verdict are known";
      if (table == "f2b-table" && set->starts_with("addr-set-")) found.fail2ban_jail = set->substr(9);
      return found;
    }
    return std::nullopt;
  }
};

}  // namespace

NetlinkRuleset parse_nft_netlink_dump(std::string_view text) {
  NetlinkRuleset ruleset;
  size_t elements = 0, skipped = 0, line_number = 0;
  std::map<std::string, std::vector<std::pair<std::array<uint8_t, 16>, bool>>> bounds;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    ++line_number;
    if (!decode_line(text.substr(pos, end - pos), ruleset, elements, bounds) && skipped++ < kMaxNotes)
      ruleset.notes.push_back("nft netlink dump line " + std::to_string(line_number) + ": not understood: skipped");
    pos = end + 1;
  }
  for (auto& [key, set_bounds] : bounds) pair_intervals(ruleset.sets[key], set_bounds);
  return ruleset;
}

std::optional<FirewallRule> find_netlink_drop(const NetlinkRuleset& ruleset, const PacketFacts& packet) {
  std::vector<const NetlinkChain*> base;
  for (const NetlinkChain& chain : ruleset.chains)
    if (chain.hook == packet.hook && applies_to(chain.family, packet.family)) base.push_back(&chain);
  std::stable_sort(base.begin(), base.end(),
                   [](const NetlinkChain* a, const NetlinkChain* b) { return a->priority < b->priority; });
  Walk walk{ruleset, packet};
  for (const NetlinkChain* chain : base)
    if (auto found = walk.chain(chain->family, chain->table, chain->name, 0)) return found;
  return std::nullopt;
}

}  // namespace rsttrace::firewall
