// Decoding nft_netlink_dump's lines (a namespace owner's data: bounded, total).
// Their expressions are interpreted in nft_netlink_json.cpp.
#include "provenance/firewall/nft_netlink.h"

#include <algorithm>

#include "provenance/firewall/nft_netlink_fields.h"

namespace rsttrace::firewall {
namespace {

using namespace netlink_fields;

constexpr size_t kMaxFields = 8;
constexpr size_t kMaxExpressionFields = 6;
constexpr size_t kMaxNotes = 16;

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
  if (f[0] == "R" && f.size() == 6) {
    const auto handle = number<uint64_t>(f[4]);
    if (!handle || ruleset.rules.size() >= kMaxNetlinkRules) return false;
    NetlinkRule rule{std::string(f[1]), *table, *name, *handle, {}};
    if (f[5] != "-") {
      const auto tokens = split(f[5], ',', kMaxNetlinkExpressions + 1);
      if (tokens.size() > kMaxNetlinkExpressions) return false;
      for (std::string_view token : tokens) {
        const auto parts = split(token, ':', kMaxExpressionFields + 1);
        if (parts.size() > kMaxExpressionFields || parts[0].empty()) return false;
        rule.expressions.push_back({std::string(parts[0]), {parts.begin() + 1, parts.end()}});
      }
    }
    ruleset.rules.push_back(std::move(rule));
    return true;
  }
  if (f[0] == "S" && f.size() == 7) {
    const auto key_length = number<uint32_t>(f[4]), key_type = number<uint32_t>(f[6]);
    if (!key_length || !key_type || (f[5] != "0" && f[5] != "1") || ruleset.sets.size() >= kMaxNetlinkSets)
      return false;
    NetlinkSet& set = ruleset.sets[set_key(f[1], *table, *name)];
    set.family = f[1], set.table = *table, set.name = *name;
    set.key_length = *key_length, set.interval = f[5] == "1", set.key_type = *key_type;
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

}  // namespace rsttrace::firewall
