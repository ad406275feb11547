// (over 450 lines: one decoder class whose expression readers share a rule's register state and text)
// A netlink dump's expressions decoded into the statements and matches of
// `nft -j list ruleset` (nft_netlink.h), for the nftables walker. The
// expressions are a namespace owner's: every field is checked, and what is not
// understood becomes a match or statement the walker cannot decide, named.
//
// nf_tables evaluates a rule as loads into registers (payload, meta, ct),
// then compares, ranges, bitwise masks and set lookups on them, then a
// verdict. Registers are tracked as nf_tables lays them out (32-bit units:
// NFT_REG_1..4 are 16 bytes each, NFT_REG32_00..15 4 bytes, the same area):
// a compare reads a load only if no later load overwrote any of its bytes.
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>

#include "provenance/firewall/nft_netlink.h"
#include "provenance/firewall/nft_netlink_fields.h"

namespace rsttrace::firewall {
namespace {

using Json = nlohmann::json;
using namespace netlink_fields;

// nftables' datatypes of set keys rendered (nftables include/datatype.h, enum datatypes).
constexpr uint32_t kTypeIpv4 = 7, kTypeIpv6 = 8, kTypeInetProtocol = 12, kTypeInetService = 13, kTypeMark = 19,
                   kTypeIfname = 41;

// ct state bits (nf_conntrack_common.h NF_CT_STATE_BIT, NF_CT_STATE_INVALID_BIT, NF_CT_STATE_UNTRACKED_BIT).
constexpr std::pair<const char*, uint32_t> kCtStates[] = {
    {"invalid", 1}, {"established", 2}, {"related", 4}, {"new", 8}, {"untracked", 64}};
// ct status bits (IPS_*) the walker reads.
constexpr std::pair<const char*, uint32_t> kCtStatus[] = {
    {"expected", 1u << 0}, {"seen-reply", 1u << 1}, {"assured", 1u << 2}, {"confirmed", 1u << 3},
    {"snat", 1u << 4},     {"dnat", 1u << 5},       {"dying", 1u << 9}};

// How a loaded value is compared and written.
enum class Shape { Address, BigEndian, HostU32, Byte, Ifname, CtState, CtStatus };

// What a register holds: a load the walker can read (json, text), or one it cannot (undecided, by name).
struct Load {
  Json left;          // the match's left side, as nft -j writes it; null: not decoded
  std::string text;   // as nft writes it ("ip saddr", "tcp dport", "ct state")
  Shape shape = Shape::Byte;
  uint32_t length = 0;        // bytes loaded
  uint32_t field_length = 0;  // the field's full length: an address load may take only its prefix bytes
  std::string mask;           // a bitwise mask applied since (xor 0), or ""
  bool context = false;       // meta nfproto / l4proto, ip protocol: a dependency later payloads may take
  size_t width() const { return (length + 3) / 4; }
};

std::optional<size_t> register_index(std::string_view field) {
  const auto reg = number<uint32_t>(field);
  if (!reg) return std::nullopt;
  if (*reg >= NFT_REG_1 && *reg <= NFT_REG_4) return *reg * 4;  // NFT_REG_SIZE / NFT_REG32_SIZE
  if (*reg >= NFT_REG32_00 && *reg <= NFT_REG32_15) return *reg - NFT_REG32_00 + 4;
  return std::nullopt;
}

std::string address_text(const std::string& bytes) {
  char out[INET6_ADDRSTRLEN] = {};
  std::array<uint8_t, 16> raw{};
  std::copy(bytes.begin(), bytes.begin() + static_cast<long>(std::min<size_t>(bytes.size(), 16)), raw.begin());
  inet_ntop(bytes.size() == 4 ? AF_INET : AF_INET6, raw.data(), out, sizeof out);
  return out;
}

uint64_t big_endian(const std::string& bytes) {
  uint64_t value = 0;
  for (unsigned char c : bytes) value = value << 8 | c;
  return value;
}

uint32_t host_u32(const std::string& bytes) {
  uint32_t value = 0;
  std::memcpy(&value, bytes.data(), std::min<size_t>(bytes.size(), 4));
  return value;
}

// The number of leading one bits of a contiguous mask, or nullopt.
std::optional<size_t> prefix_length(const std::string& mask) {
  size_t ones = 0;
  bool ended = false;
  for (unsigned char c : mask)
    for (int bit = 7; bit >= 0; --bit) {
      const bool one = c >> bit & 1;
      if (one && ended) return std::nullopt;
      if (one) ++ones;
      else ended = true;
    }
  return ones;
}

std::string hex_text(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out = "0x";
  for (unsigned char c : bytes) out += {digits[c >> 4], digits[c & 15]};
  return out;
}

const char* protocol_name(uint64_t number) {
  switch (number) {
    case 6: return "tcp";
    case 17: return "udp";
    case 136: return "udplite";
    case 132: return "sctp";
    case 33: return "dccp";
    case 1: return "icmp";
    case 58: return "icmpv6";
    default: return nullptr;
  }
}

// Words of a flag mask, or nullopt if a bit is not named.
template <size_t N>
std::optional<std::vector<std::string>> flag_words(uint32_t mask, const std::pair<const char*, uint32_t> (&names)[N]) {
  std::vector<std::string> words;
  for (const auto& [name, bit] : names)
    if (mask & bit) words.push_back(name), mask &= ~bit;
  if (mask || words.empty()) return std::nullopt;
  return words;
}

std::string joined(const std::vector<std::string>& words, const char* separator) {
  std::string out;
  for (const auto& word : words) out += (out.empty() ? "" : separator) + word;
  return out;
}

// A compared value in the load's shape: the right side as nft -j writes it, and its text.
struct ComparedValue {
  Json json;
  std::string text;
};

std::optional<ComparedValue> value_of(const Load& load, const std::string& bytes) {
  switch (load.shape) {
    case Shape::Address: {
      if (bytes.size() != load.length || !load.mask.empty() || load.length > load.field_length) return std::nullopt;
      if (load.length == load.field_length) return ComparedValue{address_text(bytes), address_text(bytes)};
      std::string full = bytes;  // a load of the prefix's bytes only (nft trims `ip saddr 10.0.0.0/8` so)
      full.resize(load.field_length, '\0');
      const size_t length = load.length * 8;
      return ComparedValue{Json{{"prefix", {{"addr", address_text(full)}, {"len", length}}}},
                   address_text(full) + "/" + std::to_string(length)};
    }
    case Shape::BigEndian:
      if (bytes.size() != load.length || !load.mask.empty()) return std::nullopt;
      return ComparedValue{big_endian(bytes), std::to_string(big_endian(bytes))};
    case Shape::Byte: {
      if (bytes.size() != 1 || !load.mask.empty()) return std::nullopt;
      const auto number = static_cast<uint64_t>(static_cast<unsigned char>(bytes[0]));
      const char* name = load.text == "meta nfproto" ? (number == NFPROTO_IPV4 ? "ipv4" : number == NFPROTO_IPV6 ? "ipv6" : nullptr)
                                                     : protocol_name(number);
      return ComparedValue{number, name ? name : std::to_string(number)};
    }
    case Shape::HostU32:
      if (bytes.size() != 4 || !load.mask.empty()) return std::nullopt;
    {
      char text[16];
      std::snprintf(text, sizeof text, "0x%08x", host_u32(bytes));  // as nft writes a mark
      return ComparedValue{host_u32(bytes), text};
    }
    case Shape::Ifname: {
      if (!load.mask.empty() || bytes.empty() || bytes.size() > 16) return std::nullopt;
      const size_t nul = bytes.find('\0');
      std::string name = bytes.substr(0, nul);
      if (nul != std::string::npos && bytes.find_first_not_of('\0', nul) != std::string::npos) return std::nullopt;
      if (name.find_first_of("\\\"") != std::string::npos) return std::nullopt;
      if (nul == std::string::npos && bytes.size() < 16) name += "*";  // a prefix: nft's wildcard
      else if (!name.empty() && name.back() == '*') name.insert(name.size() - 1, "\\");
      return ComparedValue{name, "\"" + name + "\""};
    }
    case Shape::CtState:
    case Shape::CtStatus: {
      if (bytes.size() != 4 || !load.mask.empty()) return std::nullopt;
      const auto words = load.shape == Shape::CtState ? flag_words(host_u32(bytes), kCtStates)
                                                      : flag_words(host_u32(bytes), kCtStatus);
      if (!words || words->size() != 1) return std::nullopt;  // ct state is one bit: equal to one word
      return ComparedValue{words->front(), words->front()};
    }
  }
  return std::nullopt;
}

// A match the walker cannot decide, named.
Json undecided_match(const std::string& name) {
  return Json{{"match", {{"left", {{name, Json::object()}}}, {"right", 0}, {"op", "=="}}}};
}

Json match(const Json& left, const Json& right, const std::string& op) {
  return Json{{"match", {{"left", left}, {"right", right}, {"op", op}}}};
}

const char* cmp_op(std::string_view field) {
  static constexpr const char* kOps[] = {"==", "!=", "<", "<=", ">", ">="};  // NFT_CMP_EQ .. NFT_CMP_GTE
  const auto op = number<uint32_t>(field);
  return op && *op < std::size(kOps) ? kOps[*op] : nullptr;
}

const char* reject_code(uint32_t type, uint32_t code, int network) {
  if (type == NFT_REJECT_ICMPX_UNREACH) {
    static constexpr const char* kCodes[] = {"no-route", "port-unreachable", "host-unreachable", "admin-prohibited"};
    return code < std::size(kCodes) ? kCodes[code] : nullptr;
  }
  if (network == 6) {
    static constexpr const char* kCodes[] = {"no-route", "admin-prohibited", nullptr, "addr-unreachable",
                                             "port-unreachable", "policy-fail", "reject-route"};
    return code < std::size(kCodes) ? kCodes[code] : nullptr;
  }
  switch (code) {
    case 0: return "net-unreachable";
    case 1: return "host-unreachable";
    case 2: return "prot-unreachable";
    case 3: return "port-unreachable";
    case 9: return "net-prohibited";
    case 10: return "host-prohibited";
    case 13: return "admin-prohibited";
    default: return nullptr;
  }
}

// A set's elements as nft -j writes them, for the key types rsttrace compares;
// nullopt (the set left out: its lookups are undecided) for any other or a truncated set.
std::optional<Json> elements_of(const NetlinkSet& set) {
  const bool address = (set.key_type == kTypeIpv4 && set.key_length == 4) ||
                       (set.key_type == kTypeIpv6 && set.key_length == 16);
  const bool number = (set.key_type == kTypeInetService && set.key_length == 2) ||
                      (set.key_type == kTypeInetProtocol && set.key_length == 1);
  const bool mark = set.key_type == kTypeMark && set.key_length == 4;
  const bool ifname = set.key_type == kTypeIfname && set.key_length == 16;
  if (set.truncated || !(address || number || mark || ifname)) return std::nullopt;
  Json elements = Json::array();
  for (const auto& [low_key, high_key] : set.ranges) {
    const std::string low(low_key.begin(), low_key.begin() + set.key_length),
        high(high_key.begin(), high_key.begin() + set.key_length);
    if (address) {
      // A prefix: the bits where the ends differ are the host bits, all 0 at the low end and 1 at the high.
      std::string mask(set.key_length, '\0');
      for (size_t i = 0; i < set.key_length; ++i) mask[i] = static_cast<char>(~(low[i] ^ high[i]));
      const auto length = prefix_length(mask);
      bool aligned = length.has_value();
      for (size_t i = 0; aligned && i < set.key_length; ++i) {
        const auto l = static_cast<uint8_t>(low[i]), h = static_cast<uint8_t>(high[i]), m = static_cast<uint8_t>(mask[i]);
        aligned = (l & ~m & 0xff) == 0 && (h | m) == 0xff;
      }
      if (low == high) elements.push_back(address_text(low));
      else if (aligned) elements.push_back({{"prefix", {{"addr", address_text(low)}, {"len", *length}}}});
      else elements.push_back({{"range", {address_text(low), address_text(high)}}});
    } else if (number || mark) {
      const uint64_t a = mark ? host_u32(low) : big_endian(low), b = mark ? host_u32(high) : big_endian(high);
      if (a == b) elements.push_back(a);
      else elements.push_back({{"range", {a, b}}});
    } else {
      if (low != high) return std::nullopt;
      const Load as_name{nullptr, "", Shape::Ifname, 16, 16};
      const auto value = value_of(as_name, low);
      if (!value) return std::nullopt;
      elements.push_back(value->json);
    }
  }
  return elements;
}

std::string element_text(const Json& element) {
  if (element.is_string()) return element.get<std::string>();
  if (element.is_number_unsigned()) return std::to_string(element.get<uint64_t>());
  if (const auto prefix = element.find("prefix"); prefix != element.end())
    return (*prefix)["addr"].get<std::string>() + "/" + std::to_string((*prefix)["len"].get<uint64_t>());
  if (const auto range = element.find("range"); range != element.end())
    return element_text((*range)[0]) + "-" + element_text((*range)[1]);
  return "?";
}

// One rule's expressions, in order, into statements and their text.
class RuleDecoder {
 public:
  RuleDecoder(const NetlinkRule& rule, const std::map<std::string, Json>& sets)
      : rule_(rule), sets_(sets), network_(rule.family == "ip" ? 4 : rule.family == "ip6" ? 6 : 0) {}

  void decode() {
    for (const NetlinkExpression& e : rule_.expressions) {
      const auto& f = e.fields;
      const bool ok = e.kind == "p" && f.size() == 4     ? payload(f)
                      : e.kind == "m" && f.size() == 2   ? meta(f)
                      : e.kind == "c" && f.size() == 3   ? ct(f)
                      : e.kind == "cmp" && f.size() == 3 ? compare(f)
                      : e.kind == "rg" && f.size() == 4  ? range(f)
                      : e.kind == "bw" && f.size() == 5  ? bitwise(f)
                      : e.kind == "lk" && f.size() == 4  ? lookup(f)
                      : e.kind == "v" && f.size() == 2   ? verdict(f)
                      : e.kind == "i" && f.size() == 1   ? clobber(f[0], 64)
                      : e.kind == "ctr" && f.size() == 2 ? counter(f)
                      : e.kind == "rj" && f.size() == 2  ? reject(f)
                      : (e.kind == "xm" || e.kind == "xt") && f.size() == 1 ? xtables(e.kind == "xm", f[0])
                      : e.kind == "ms" && f.size() == 1  ? meta_set(f[0])
                      : e.kind == "?" && f.size() == 1   ? other(f[0])
                                                         : false;
      if (!ok) unknown_statement("an expression rsttrace does not read (" + e.kind + ")");
    }
  }

  Json statements = Json::array();
  std::string text() const {
    std::string out;
    for (const auto& [piece, hidden] : pieces_)
      if (!hidden) out += (out.empty() ? "" : " ") + piece;
    return out;
  }

 private:
  // A statement the walker cannot decide and that may end the walk: the rule is probable, named by it.
  void unknown_statement(const std::string& name) {
    statements.push_back({{name, nullptr}});
    pieces_.push_back({"[" + name + "]", false});
  }

  void add(Json statement, std::string text) {
    statements.push_back(std::move(statement));
    pieces_.push_back({std::move(text), false});
  }

  // Any load over these registers' bytes is gone.
  bool clobber(std::string_view reg, uint32_t length) {
    const auto index = register_index(reg);
    if (!index || length == 0 || length > 64) return false;
    const size_t end = *index + (length + 3) / 4;
    for (auto it = registers_.begin(); it != registers_.end();)
      it = it->first < end && *index < it->first + it->second.width() ? registers_.erase(it) : std::next(it);
    return true;
  }

  bool store(std::string_view reg, Load load) {
    if (!clobber(reg, load.length)) return false;
    registers_[*register_index(reg)] = std::move(load);
    return true;
  }

  const Load* loaded(std::string_view reg) const {
    const auto index = register_index(reg);
    const auto it = index ? registers_.find(*index) : registers_.end();
    return it == registers_.end() ? nullptr : &it->second;
  }

  // Marks the dependency a payload of this layer took (nft does not print it).
  void took_dependency(std::optional<size_t>& piece) {
    if (piece) pieces_[*piece].second = true;
    piece.reset();
  }

  bool payload(const std::vector<std::string>& f) {
    const auto base = number<uint32_t>(f[1]), offset = number<uint32_t>(f[2]), length = number<uint32_t>(f[3]);
    if (!base || !offset || !length) return false;
    Load load;
    load.length = *length;
    const std::string raw = std::string("payload @") +
                            (*base == NFT_PAYLOAD_NETWORK_HEADER ? "nh" : *base == NFT_PAYLOAD_TRANSPORT_HEADER ? "th" : "ll") +
                            "," + std::to_string(*offset * 8) + "," + std::to_string(*length * 8);
    if (*base == NFT_PAYLOAD_NETWORK_HEADER && (network_ == 4 || network_ == 6)) {
      const bool v4 = network_ == 4;
      const char* protocol = v4 ? "ip" : "ip6";
      const uint32_t saddr = v4 ? 12 : 8, daddr = v4 ? 16 : 24, field = v4 ? 4 : 16, proto = v4 ? 9 : 6;
      if ((*offset == saddr || *offset == daddr) && *length <= field) {
        load.shape = Shape::Address, load.field_length = field;
        load.left = {{"payload", {{"protocol", protocol}, {"field", *offset == saddr ? "saddr" : "daddr"}}}};
        load.text = std::string(protocol) + (*offset == saddr ? " saddr" : " daddr");
      } else if (*offset == proto && *length == 1) {
        load.shape = Shape::Byte, load.context = true;
        load.left = {{"payload", {{"protocol", protocol}, {"field", v4 ? "protocol" : "nexthdr"}}}};
        load.text = std::string(protocol) + (v4 ? " protocol" : " nexthdr");
      }
      if (!load.left.is_null()) took_dependency(network_piece_);
    } else if (*base == NFT_PAYLOAD_TRANSPORT_HEADER && (*offset == 0 || *offset == 2) && *length == 2) {
      const char* protocol = transport_ ? protocol_name(*transport_) : nullptr;
      if (transport_ && !protocol) protocol = "th";
      const std::string name = protocol ? protocol : "th";
      load.shape = Shape::BigEndian;
      load.left = {{"payload", {{"protocol", name}, {"field", *offset == 0 ? "sport" : "dport"}}}};
      load.text = name + (*offset == 0 ? " sport" : " dport");
      took_dependency(transport_piece_);
    } else if (*base == NFT_PAYLOAD_TRANSPORT_HEADER && *offset == 13 && *length == 1 && transport_ == 6) {
      load.left = {{"payload", {{"protocol", "tcp"}, {"field", "flags"}}}};  // the walker does not decide it: named
      load.text = "tcp flags";
    }
    if (load.left.is_null()) load.text = raw;
    return store(f[0], std::move(load));
  }

  bool meta(const std::vector<std::string>& f) {
    const auto key = number<uint32_t>(f[1]);
    if (!key) return false;
    Load load;
    switch (*key) {
      case NFT_META_L4PROTO: load = {Json{{"meta", {{"key", "l4proto"}}}}, "meta l4proto", Shape::Byte, 1}; break;
      case NFT_META_NFPROTO: load = {Json{{"meta", {{"key", "nfproto"}}}}, "meta nfproto", Shape::Byte, 1}; break;
      case NFT_META_IIFNAME: load = {Json{{"meta", {{"key", "iifname"}}}}, "iifname", Shape::Ifname, 16}; break;
      case NFT_META_MARK: load = {Json{{"meta", {{"key", "mark"}}}}, "meta mark", Shape::HostU32, 4}; break;
      case NFT_META_IIF: load = {Json{{"meta", {{"key", "iif"}}}}, "iif", Shape::HostU32, 4}; break;
      default: load.text = "meta key " + std::to_string(*key), load.length = 16; break;
    }
    load.context = *key == NFT_META_L4PROTO || *key == NFT_META_NFPROTO;
    return store(f[0], std::move(load));
  }

  bool ct(const std::vector<std::string>& f) {
    const auto key = number<uint32_t>(f[1]);
    const auto dir = f[2] == "-" ? std::optional<uint32_t>() : number<uint32_t>(f[2]);
    if (!key || (f[2] != "-" && !dir)) return false;
    const bool original = dir && *dir == 0;  // IP_CT_DIR_ORIGINAL
    Load load;
    if (*key == NFT_CT_STATE && !dir) {
      load = {Json{{"ct", {{"key", "state"}}}}, "ct state", Shape::CtState, 4};
    } else if (*key == NFT_CT_STATUS && !dir) {
      load = {Json{{"ct", {{"key", "status"}}}}, "ct status", Shape::CtStatus, 4};
    } else if (*key == NFT_CT_PROTO_DST && original) {
      load = {Json{{"ct", {{"key", "proto-dst"}, {"dir", "original"}}}}, "ct original proto-dst", Shape::BigEndian, 2};
    } else if ((*key == NFT_CT_DST_IP || *key == NFT_CT_DST_IP6) && original) {
      const bool v4 = *key == NFT_CT_DST_IP;
      load = {Json{{"ct", {{"key", "daddr"}, {"dir", "original"}, {"family", v4 ? "ip" : "ip6"}}}},
              std::string("ct original ") + (v4 ? "ip" : "ip6") + " daddr", Shape::Address, v4 ? 4u : 16u, v4 ? 4u : 16u};
    } else {
      load.text = "ct key " + std::to_string(*key), load.length = 16;
    }
    return store(f[0], std::move(load));
  }

  bool bitwise(const std::vector<std::string>& f) {
    const auto length = number<uint32_t>(f[2]);
    const auto mask = unhex(f[3], 64), xor_bytes = unhex(f[4], 64);
    if (!length || !mask || !xor_bytes) return false;
    const Load* source = loaded(f[0]);
    Load load = source ? *source : Load{};
    if (!source) load.text = "a register rsttrace did not read";
    const bool plain = source && source->mask.empty() && mask->size() == *length && *length == source->length &&
                       xor_bytes->find_first_not_of('\0') == std::string::npos;
    if (!plain) load.left = nullptr, load.text += " (bitwise)";
    load.mask = plain ? *mask : std::string(), load.length = *length;
    return store(f[1], std::move(load));
  }

  // Masks the walker reads: an address prefix, ct state or status bits tested for any.
  std::optional<std::pair<ComparedValue, std::string>> masked(const Load& load, const std::string& bytes, const std::string& op) {
    if (op != "==" && op != "!=") return std::nullopt;
    if (load.shape == Shape::Address && load.length <= load.field_length && bytes.size() == load.length) {
      // The load may be the prefix's bytes only (`ip saddr 10.0.0.0/20`: 3 bytes, mask ff:ff:f0).
      std::string full = bytes, mask = load.mask;
      full.resize(load.field_length, '\0'), mask.resize(load.field_length, '\0');
      const auto length = prefix_length(mask);
      for (size_t i = 0; length && i < full.size(); ++i)
        if (static_cast<uint8_t>(full[i]) & ~static_cast<uint8_t>(mask[i]) & 0xff) return std::nullopt;  // never equal
      if (!length) return std::nullopt;
      const std::string text = address_text(full) + "/" + std::to_string(*length);
      return std::pair{ComparedValue{Json{{"prefix", {{"addr", address_text(full)}, {"len", *length}}}}, text}, op};
    }
    if ((load.shape == Shape::CtState || load.shape == Shape::CtStatus) && bytes.size() == 4 && host_u32(bytes) == 0) {
      const auto words = load.shape == Shape::CtState ? flag_words(host_u32(load.mask), kCtStates)
                                                      : flag_words(host_u32(load.mask), kCtStatus);
      if (!words) return std::nullopt;
      // (value & mask) != 0: any of the words; == 0: none of them.
      return std::pair{ComparedValue{*words, joined(*words, ",")}, std::string(op == "!=" ? "==" : "!=")};
    }
    return std::nullopt;
  }

  bool compare(const std::vector<std::string>& f) {
    const char* op = cmp_op(f[1]);
    const auto bytes = unhex(f[2], 64);
    if (!op || !bytes || !register_index(f[0])) return false;
    const Load* load = loaded(f[0]);
    if (!load || load->left.is_null()) {
      add(undecided_match(load ? load->text : "a register rsttrace did not read"),
          "[" + (load ? load->text : std::string("?")) + " " + op + " " + hex_text(*bytes) + "]");
      return true;
    }
    auto decoded = load->mask.empty() ? std::optional<std::pair<ComparedValue, std::string>>()
                                      : masked(*load, *bytes, op);
    if (load->mask.empty())
      if (auto value = value_of(*load, *bytes)) decoded = std::pair{*value, std::string(op)};
    if (!decoded) {
      add(undecided_match(load->text + " " + op + " " + hex_text(*bytes)), "[" + load->text + " " + op + " " + hex_text(*bytes) + "]");
      return true;
    }
    const auto& [value, final_op] = *decoded;
    // A dependency (meta nfproto ipv4, meta l4proto tcp): later payloads read its layer.
    if (load->context && final_op == "==" && value.json.is_number_unsigned()) {
      const uint64_t number = value.json.get<uint64_t>();
      if (load->text == "meta nfproto") {
        network_ = number == NFPROTO_IPV4 ? 4 : number == NFPROTO_IPV6 ? 6 : -1;
        network_piece_ = pieces_.size();
      } else {
        transport_ = number;
        transport_piece_ = pieces_.size();
      }
    }
    add(match(load->left, value.json, final_op), load->text + (final_op == "==" ? " " : " " + final_op + " ") + value.text);
    return true;
  }

  bool range(const std::vector<std::string>& f) {
    const auto op = number<uint32_t>(f[1]);
    const auto from = unhex(f[2], 64), to = unhex(f[3], 64);
    if (!op || *op > NFT_RANGE_NEQ || !from || !to) return false;
    const Load* load = loaded(f[0]);
    const auto low = load && !load->left.is_null() ? value_of(*load, *from) : std::nullopt;
    const auto high = load && !load->left.is_null() ? value_of(*load, *to) : std::nullopt;
    const std::string op_text = *op == NFT_RANGE_EQ ? "==" : "!=";
    if (!low || !high || !(load->shape == Shape::Address || load->shape == Shape::BigEndian) ||
        !low->json.is_primitive() || !high->json.is_primitive()) {
      add(undecided_match((load ? load->text : std::string("a register")) + " in a range"), "[range]");
      return true;
    }
    add(match(load->left, Json{{"range", {low->json, high->json}}}, op_text),
        load->text + (*op == NFT_RANGE_EQ ? " " : " != ") + low->text + "-" + high->text);
    return true;
  }

  bool lookup(const std::vector<std::string>& f) {
    const auto name = unhex(f[3]);
    if (!name || (f[2] != "0" && f[2] != "1")) return false;
    const bool inverted = f[2] == "1";
    if (f[1] != "-") {  // a map: a verdict map decides the packet; a data map loads a register
      if (f[1] == "0") {
        unknown_statement("a verdict map (@" + *name + ")");
        return true;
      }
      const Load* source = loaded(f[0]);
      const std::string left = source ? source->text : std::string("a register");  // before the map's output overwrites it
      if (!clobber(f[1], 16)) return false;
      add(undecided_match(left + " mapped by @" + *name), "[map @" + *name + "]");
      return true;
    }
    const Load* load = loaded(f[0]);
    const auto set = sets_.find(rule_.family + "/" + rule_.table + "/" + *name);
    const bool anonymous = name->rfind("__set", 0) == 0;
    const std::string op = inverted ? "!=" : "==";
    if (!load || load->left.is_null() || !load->mask.empty() || set == sets_.end() ||
        set->second.at("key_length") != load->length) {
      const std::string left = load ? load->text : std::string("a register rsttrace did not read");
      add(undecided_match(left + " in @" + *name + (set == sets_.end() ? " (a set rsttrace does not compare)" : "")),
          left + " " + (inverted ? "!= " : "") + "@" + *name);
      return true;
    }
    std::string right = "@" + *name;
    if (anonymous) {
      std::vector<std::string> words;
      for (const auto& element : set->second.at("elem")) words.push_back(element_text(element));
      right = words.size() == 1 ? words.front() : "{ " + joined(words, ", ") + " }";
    }
    add(match(load->left, "@" + *name, op), load->text + (inverted ? " != " : " ") + right);
    return true;
  }

  bool verdict(const std::vector<std::string>& f) {
    const auto code = number<int32_t>(f[0]);
    const auto chain = unhex(f[1]);
    if (!code || !chain) return false;
    switch (*code) {
      case NF_DROP: add({{"drop", nullptr}}, "drop"); return true;
      case NF_ACCEPT: add({{"accept", nullptr}}, "accept"); return true;
      case NFT_RETURN: add({{"return", nullptr}}, "return"); return true;
      case NFT_CONTINUE: return true;
      case NFT_JUMP:
      case NFT_GOTO: {
        if (chain->empty()) return false;
        const char* kind = *code == NFT_JUMP ? "jump" : "goto";
        add({{kind, {{"target", *chain}}}}, std::string(kind) + " " + *chain);
        return true;
      }
      default: unknown_statement("verdict " + std::to_string(*code)); return true;
    }
  }

  bool counter(const std::vector<std::string>& f) {
    const auto packets = number<uint64_t>(f[0]), bytes = number<uint64_t>(f[1]);
    if (!packets || !bytes) return false;
    add({{"counter", {{"packets", *packets}, {"bytes", *bytes}}}},
        "counter packets " + std::to_string(*packets) + " bytes " + std::to_string(*bytes));
    return true;
  }

  bool reject(const std::vector<std::string>& f) {
    const auto type = number<uint32_t>(f[0]);
    const auto code = f[1] == "-" ? std::optional<uint32_t>(0) : number<uint32_t>(f[1]);
    if (!type || !code) return false;
    if (*type == NFT_REJECT_TCP_RST) {
      add({{"reject", {{"type", "tcp reset"}}}}, "reject with tcp reset");
      return true;
    }
    const bool icmpx = *type == NFT_REJECT_ICMPX_UNREACH;
    const char* name = reject_code(*type, *code, network_);
    if (*type != NFT_REJECT_ICMP_UNREACH && !icmpx) return false;
    const std::string family = icmpx ? "icmpx" : network_ == 6 ? "icmpv6" : "icmp";
    if (!icmpx) took_dependency(network_piece_);  // reject with icmp needs the family: nft does not print it
    add({{"reject", {{"type", family}, {"expr", name ? name : std::to_string(*code)}}}},
        "reject with " + family + " " + (name ? name : std::to_string(*code)));
    return true;
  }

  bool xtables(bool is_match, std::string_view name_hex) {
    const auto name = unhex(name_hex, 64);
    if (!name) return false;
    add({{"xt", {{"type", is_match ? "match" : "target"}, {"name", *name}}}},
        std::string("xt ") + (is_match ? "match" : "target") + " \"" + *name + "\"");
    return true;
  }

  bool meta_set(std::string_view key) {
    const auto number_key = number<uint32_t>(key);
    if (!number_key) return false;
    // A mark set here: what later rules' `meta mark` reads is not the mark at the drop (the walker forgets it).
    const std::string name = *number_key == NFT_META_MARK ? "mark" : "key " + std::to_string(*number_key);
    add({{"mangle", {{"key", {{"meta", {{"key", name}}}}}, {"value", 0}}}}, "meta " + name + " set");
    return true;
  }

  bool other(std::string_view name_hex) {
    auto name = unhex(name_hex, 32);
    if (!name) return false;
    for (char& c : *name)
      if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '_') c = '_';
    // The walker's own: logging lets the packet on; rate and quota matches are undecided.
    if (*name == "log" || *name == "limit" || *name == "quota") {
      add({{*name, Json::object()}}, *name);
      return true;
    }
    unknown_statement(*name);  // it may load registers too: compares on them are undecided
    registers_.clear();
    return true;
  }

  const NetlinkRule& rule_;
  const std::map<std::string, Json>& sets_;
  int network_;                          // 4, 6, 0 (not known), -1 (neither)
  std::optional<uint64_t> transport_;    // the l4 protocol a dependency fixed
  std::optional<size_t> network_piece_, transport_piece_;
  std::map<size_t, Load> registers_;     // by 32-bit index
  std::vector<std::pair<std::string, bool>> pieces_;  // text, hidden
};

}  // namespace

Json nft_json_of_netlink(const NetlinkRuleset& ruleset, std::map<std::string, std::string>& texts) {
  Json objects = Json::array();
  for (const NetlinkChain& chain : ruleset.chains) {
    Json body{{"family", chain.family}, {"table", chain.table}, {"name", chain.name}};
    if (!chain.hook.empty()) body["hook"] = chain.hook, body["prio"] = chain.priority;
    if (!chain.policy.empty()) body["policy"] = chain.policy;
    objects.push_back({{"chain", std::move(body)}});
  }
  // Sets by family/table/name, with their key length (the lookup checks it) and elements.
  std::map<std::string, Json> sets;
  for (const auto& [key, set] : ruleset.sets) {
    const auto elements = elements_of(set);
    if (!elements) continue;
    sets[key] = {{"key_length", set.key_length}, {"elem", *elements}};
    objects.push_back({{"set", {{"family", set.family}, {"table", set.table}, {"name", set.name}, {"elem", *elements}}}});
  }
  for (const NetlinkRule& rule : ruleset.rules) {
    RuleDecoder decoder(rule, sets);
    decoder.decode();
    texts[rule.family + "/" + rule.table + "/" + rule.chain + "/" + std::to_string(rule.handle)] = decoder.text();
    objects.push_back({{"rule", {{"family", rule.family}, {"table", rule.table}, {"chain", rule.chain},
                                 {"handle", rule.handle}, {"expr", std::move(decoder.statements)}}}});
  }
  return Json{{"nftables", std::move(objects)}};
}

}  // namespace rsttrace::firewall
