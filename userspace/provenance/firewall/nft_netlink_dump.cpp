// The netlink side of nft_netlink.h: runs in the namespace (its own process,
// `rsttrace nft-netlink-dump` under nsenter) and prints one line per object:
//   C <family> <table> <chain> <hook|-> <priority> <policy|->
//   R <family> <table> <chain> <handle> <expressions|->
//       expressions, comma-separated, each `kind:field:...` (registers, numbers in decimal, data in hex):
//       p:dreg:base:offset:len (payload load)  m:dreg:key (meta load)  ms:key (meta set)
//       c:dreg:key:dir|- (ct load)  cmp:sreg:op:data  rg:sreg:op:from:to (range)
//       bw:sreg:dreg:len:mask:xor (bitwise, mask and xor)  lk:sreg:dreg|-:inverted:set (lookup)
//       v:verdict:chain|- (immediate verdict)  i:dreg (immediate data)  ctr:packets:bytes
//       rj:type:code|- (reject)  xm:name / xt:name (xtables match / target)  ?:name (any other)
//   S <family> <table> <set> <key length> <interval 0|1> <key type (nftables' datatype)>
//   E <family> <table> <set> <key> <key end|->   (hex bytes; end: NFTA_SET_ELEM_KEY_END)
//   I <family> <table> <set> <key>               an interval's end (NFT_SET_ELEM_INTERVAL_END)
//   N <note>          D                          (the dump ended)
// Names are hex-encoded: a namespace's owner chooses them.
// glibc's netinet/in.h before the kernel's: linux/in.h then defers to it (libc-compat.h).
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "provenance/firewall/nft_netlink.h"

namespace rsttrace::firewall {
namespace {

std::string hex(const void* data, size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  const auto* bytes = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) out += {digits[bytes[i] >> 4], digits[bytes[i] & 15]};
  return out.empty() ? "-" : out;
}
std::string hex(const char* text) { return text ? hex(text, strlen(text)) : "-"; }

std::string family_name(uint32_t family) {
  switch (family) {
    case NFPROTO_INET: return "inet";
    case NFPROTO_IPV4: return "ip";
    case NFPROTO_IPV6: return "ip6";
    case NFPROTO_ARP: return "arp";
    case NFPROTO_BRIDGE: return "bridge";
    case NFPROTO_NETDEV: return "netdev";
    default: return "unknown";
  }
}

std::string hook_name(uint32_t family, uint32_t hook) {
  if (family == NFPROTO_NETDEV) return hook == 0 ? "ingress" : "egress";
  static const char* names[] = {"prerouting", "input", "forward", "output", "postrouting"};
  return hook < 5 ? names[hook] : "unknown";
}

struct Dumper {
  mnl_socket* socket = nullptr;
  uint32_t seq = 1;
  size_t rules = 0, chains = 0, sets = 0, elements = 0;
  bool failed = false;
  struct SetId { uint32_t family; std::string table, name; };
  std::vector<SetId> set_ids;

  // One dump request; `parse` is called for each message. False on failure.
  template <typename Build, typename Parse>
  bool dump(uint16_t type, uint16_t family, Build build, Parse parse) {
    std::vector<char> buffer(32768);  // MNL_SOCKET_DUMP_SIZE (libmnl 1.0.5+)
    nlmsghdr* header = nftnl_nlmsg_build_hdr(buffer.data(), type, family, NLM_F_DUMP, ++seq);
    build(header);
    if (mnl_socket_sendto(socket, header, header->nlmsg_len) < 0) return false;
    const uint32_t port = mnl_socket_get_portid(socket);
    struct Context { Parse* parse; } context{&parse};
    auto callback = [](const nlmsghdr* message, void* data) -> int {
      return (*static_cast<Context*>(data)->parse)(message) ? MNL_CB_OK : MNL_CB_STOP;
    };
    for (;;) {
      const ssize_t n = mnl_socket_recvfrom(socket, buffer.data(), buffer.size());
      if (n <= 0) return false;
      const int result = mnl_cb_run(buffer.data(), static_cast<size_t>(n), seq, port, callback, &context);
      if (result < 0) return false;
      if (result == MNL_CB_STOP) return true;
    }
  }
};

// A rule's expressions, one token each, in order (the format's head comment):
// what they load, compare and decide, decoded by the collector (nft_netlink_json.cpp).
struct RuleScan {
  std::string tokens;
  void add(const std::string& token) { tokens += (tokens.empty() ? "" : ",") + token; }
};

std::string u32(const nftnl_expr* expr, uint16_t attribute) {
  return nftnl_expr_is_set(expr, attribute) ? std::to_string(nftnl_expr_get_u32(expr, attribute)) : "-";
}

std::string data(const nftnl_expr* expr, uint16_t attribute) {
  uint32_t length = 0;
  const void* bytes = nftnl_expr_is_set(expr, attribute) ? nftnl_expr_get(expr, attribute, &length) : nullptr;
  return bytes ? hex(bytes, length) : "-";
}

int scan_expression(nftnl_expr* expr, void* scan_data) {
  auto& scan = *static_cast<RuleScan*>(scan_data);
  const char* name = nftnl_expr_get_str(expr, NFTNL_EXPR_NAME);
  const std::string kind = name ? name : "";
  if (kind == "payload" && nftnl_expr_is_set(expr, NFTNL_EXPR_PAYLOAD_DREG)) {
    scan.add("p:" + u32(expr, NFTNL_EXPR_PAYLOAD_DREG) + ":" + u32(expr, NFTNL_EXPR_PAYLOAD_BASE) + ":" +
             u32(expr, NFTNL_EXPR_PAYLOAD_OFFSET) + ":" + u32(expr, NFTNL_EXPR_PAYLOAD_LEN));
  } else if (kind == "meta" && nftnl_expr_is_set(expr, NFTNL_EXPR_META_DREG)) {
    scan.add("m:" + u32(expr, NFTNL_EXPR_META_DREG) + ":" + u32(expr, NFTNL_EXPR_META_KEY));
  } else if (kind == "meta") {  // meta ... set
    scan.add("ms:" + u32(expr, NFTNL_EXPR_META_KEY));
  } else if (kind == "ct" && nftnl_expr_is_set(expr, NFTNL_EXPR_CT_DREG)) {
    scan.add("c:" + u32(expr, NFTNL_EXPR_CT_DREG) + ":" + u32(expr, NFTNL_EXPR_CT_KEY) + ":" +
             (nftnl_expr_is_set(expr, NFTNL_EXPR_CT_DIR) ? std::to_string(nftnl_expr_get_u8(expr, NFTNL_EXPR_CT_DIR)) : "-"));
  } else if (kind == "cmp") {
    scan.add("cmp:" + u32(expr, NFTNL_EXPR_CMP_SREG) + ":" + u32(expr, NFTNL_EXPR_CMP_OP) + ":" +
             data(expr, NFTNL_EXPR_CMP_DATA));
  } else if (kind == "range") {
    scan.add("rg:" + u32(expr, NFTNL_EXPR_RANGE_SREG) + ":" + u32(expr, NFTNL_EXPR_RANGE_OP) + ":" +
             data(expr, NFTNL_EXPR_RANGE_FROM_DATA) + ":" + data(expr, NFTNL_EXPR_RANGE_TO_DATA));
  } else if (kind == "bitwise" && (!nftnl_expr_is_set(expr, NFTNL_EXPR_BITWISE_OP) ||
                                   nftnl_expr_get_u32(expr, NFTNL_EXPR_BITWISE_OP) == NFT_BITWISE_BOOL)) {
    scan.add("bw:" + u32(expr, NFTNL_EXPR_BITWISE_SREG) + ":" + u32(expr, NFTNL_EXPR_BITWISE_DREG) + ":" +
             u32(expr, NFTNL_EXPR_BITWISE_LEN) + ":" + data(expr, NFTNL_EXPR_BITWISE_MASK) + ":" +
             data(expr, NFTNL_EXPR_BITWISE_XOR));
  } else if (kind == "lookup") {
    const bool inverted = nftnl_expr_is_set(expr, NFTNL_EXPR_LOOKUP_FLAGS) &&
                          (nftnl_expr_get_u32(expr, NFTNL_EXPR_LOOKUP_FLAGS) & NFT_LOOKUP_F_INV);
    scan.add("lk:" + u32(expr, NFTNL_EXPR_LOOKUP_SREG) + ":" + u32(expr, NFTNL_EXPR_LOOKUP_DREG) + ":" +
             (inverted ? "1" : "0") + ":" + hex(nftnl_expr_get_str(expr, NFTNL_EXPR_LOOKUP_SET)));
  } else if (kind == "immediate" && nftnl_expr_is_set(expr, NFTNL_EXPR_IMM_VERDICT)) {
    scan.add("v:" + std::to_string(static_cast<int32_t>(nftnl_expr_get_u32(expr, NFTNL_EXPR_IMM_VERDICT))) + ":" +
             (nftnl_expr_is_set(expr, NFTNL_EXPR_IMM_CHAIN) ? hex(nftnl_expr_get_str(expr, NFTNL_EXPR_IMM_CHAIN)) : "-"));
  } else if (kind == "immediate") {
    scan.add("i:" + u32(expr, NFTNL_EXPR_IMM_DREG));
  } else if (kind == "counter") {
    scan.add("ctr:" + std::to_string(nftnl_expr_get_u64(expr, NFTNL_EXPR_CTR_PACKETS)) + ":" +
             std::to_string(nftnl_expr_get_u64(expr, NFTNL_EXPR_CTR_BYTES)));
  } else if (kind == "reject") {
    scan.add("rj:" + u32(expr, NFTNL_EXPR_REJECT_TYPE) + ":" +
             (nftnl_expr_is_set(expr, NFTNL_EXPR_REJECT_CODE) ? std::to_string(nftnl_expr_get_u8(expr, NFTNL_EXPR_REJECT_CODE)) : "-"));
  } else if (kind == "match" || kind == "target") {  // iptables-nft's xtables extensions
    scan.add(std::string(kind == "match" ? "xm:" : "xt:") +
             hex(nftnl_expr_get_str(expr, kind == "match" ? static_cast<uint16_t>(NFTNL_EXPR_MT_NAME)
                                                  : static_cast<uint16_t>(NFTNL_EXPR_TG_NAME))));
  } else {
    scan.add("?:" + hex(kind.c_str()));  // anything else: the collector calls it undecided, by name
  }
  return 0;
}

}  // namespace

int run_nft_netlink_dump() {
  Dumper dumper;
  dumper.socket = mnl_socket_open(NETLINK_NETFILTER);
  if (!dumper.socket || mnl_socket_bind(dumper.socket, 0, MNL_SOCKET_AUTOPID) < 0) {
    std::fprintf(stderr, "failed to open netlink socket\n");
    return 1;
  }
  auto none = [](nlmsghdr*) {};
  bool ok = dumper.dump(NFT_MSG_GETCHAIN, NFPROTO_UNSPEC, none, [&](const nlmsghdr* message) {
    nftnl_chain* chain = nftnl_chain_alloc();
    if (chain && nftnl_chain_nlmsg_parse(message, chain) == 0 && dumper.chains++ < kMaxNetlinkChains) {
      const uint32_t family = nftnl_chain_get_u32(chain, NFTNL_CHAIN_FAMILY);
      const bool base = nftnl_chain_is_set(chain, NFTNL_CHAIN_HOOKNUM);
      std::printf("C %s %s %s %s %d %s\n", family_name(family).c_str(),
                  hex(nftnl_chain_get_str(chain, NFTNL_CHAIN_TABLE)).c_str(),
                  hex(nftnl_chain_get_str(chain, NFTNL_CHAIN_NAME)).c_str(),
                  base ? hook_name(family, nftnl_chain_get_u32(chain, NFTNL_CHAIN_HOOKNUM)).c_str() : "-",
                  base ? nftnl_chain_get_s32(chain, NFTNL_CHAIN_PRIO) : 0,
                  !nftnl_chain_is_set(chain, NFTNL_CHAIN_POLICY)                 ? "-"
                  : nftnl_chain_get_u32(chain, NFTNL_CHAIN_POLICY) == NF_DROP ? "drop"
                                                                                : "accept");
    }
    if (chain) nftnl_chain_free(chain);
    return true;
  });
  ok = ok && dumper.dump(NFT_MSG_GETRULE, NFPROTO_UNSPEC, none, [&](const nlmsghdr* message) {
    nftnl_rule* rule = nftnl_rule_alloc();
    if (rule && nftnl_rule_nlmsg_parse(message, rule) == 0 && dumper.rules++ < kMaxNetlinkRules) {
      RuleScan scan;
      nftnl_expr_foreach(rule, scan_expression, &scan);
      std::printf("R %s %s %s %llu %s\n", family_name(nftnl_rule_get_u32(rule, NFTNL_RULE_FAMILY)).c_str(),
                  hex(nftnl_rule_get_str(rule, NFTNL_RULE_TABLE)).c_str(),
                  hex(nftnl_rule_get_str(rule, NFTNL_RULE_CHAIN)).c_str(),
                  static_cast<unsigned long long>(nftnl_rule_get_u64(rule, NFTNL_RULE_HANDLE)),
                  scan.tokens.empty() ? "-" : scan.tokens.c_str());
    }
    if (rule) nftnl_rule_free(rule);
    return true;
  });
  ok = ok && dumper.dump(NFT_MSG_GETSET, NFPROTO_UNSPEC, none, [&](const nlmsghdr* message) {
    nftnl_set* set = nftnl_set_alloc();
    if (set && nftnl_set_nlmsg_parse(message, set) == 0 && dumper.sets++ < kMaxNetlinkSets) {
      const uint32_t family = nftnl_set_get_u32(set, NFTNL_SET_FAMILY);
      const char* table = nftnl_set_get_str(set, NFTNL_SET_TABLE);
      const char* name = nftnl_set_get_str(set, NFTNL_SET_NAME);
      std::printf("S %s %s %s %u %d %u\n", family_name(family).c_str(), hex(table).c_str(), hex(name).c_str(),
                  nftnl_set_get_u32(set, NFTNL_SET_KEY_LEN),
                  (nftnl_set_get_u32(set, NFTNL_SET_FLAGS) & NFT_SET_INTERVAL) ? 1 : 0,
                  nftnl_set_get_u32(set, NFTNL_SET_KEY_TYPE));
      if (table && name) dumper.set_ids.push_back({family, table, name});
    }
    if (set) nftnl_set_free(set);
    return true;
  });
  for (const auto& id : dumper.set_ids) {
    if (!ok || dumper.elements >= kMaxNetlinkElements) break;
    const std::string prefix = family_name(id.family) + " " + hex(id.table.c_str()) + " " + hex(id.name.c_str());
    ok = dumper.dump(
        NFT_MSG_GETSETELEM, static_cast<uint16_t>(id.family),
        [&](nlmsghdr* header) {
          nftnl_set* set = nftnl_set_alloc();
          nftnl_set_set_str(set, NFTNL_SET_TABLE, id.table.c_str());
          nftnl_set_set_str(set, NFTNL_SET_NAME, id.name.c_str());
          nftnl_set_elems_nlmsg_build_payload(header, set);
          nftnl_set_free(set);
        },
        [&](const nlmsghdr* message) {
          nftnl_set* set = nftnl_set_alloc();
          if (set && nftnl_set_elems_nlmsg_parse(message, set) == 0) {
            nftnl_set_elems_iter* iter = nftnl_set_elems_iter_create(set);
            for (nftnl_set_elem* elem = iter ? nftnl_set_elems_iter_next(iter) : nullptr;
                 elem && dumper.elements++ < kMaxNetlinkElements; elem = nftnl_set_elems_iter_next(iter)) {
              uint32_t key_length = 0, end_length = 0;
              const void* key = nftnl_set_elem_get(elem, NFTNL_SET_ELEM_KEY, &key_length);
              if (!key) continue;
              const bool interval_end = nftnl_set_elem_is_set(elem, NFTNL_SET_ELEM_FLAGS) &&
                                        (nftnl_set_elem_get_u32(elem, NFTNL_SET_ELEM_FLAGS) & NFT_SET_ELEM_INTERVAL_END);
              const void* end = nftnl_set_elem_is_set(elem, NFTNL_SET_ELEM_KEY_END)
                                    ? nftnl_set_elem_get(elem, NFTNL_SET_ELEM_KEY_END, &end_length)
                                    : nullptr;
              if (interval_end)
                std::printf("I %s %s\n", prefix.c_str(), hex(key, key_length).c_str());
              else
                std::printf("E %s %s %s\n", prefix.c_str(), hex(key, key_length).c_str(),
                            end ? hex(end, end_length).c_str() : "-");
            }
            if (iter) nftnl_set_elems_iter_destroy(iter);
          }
          if (set) nftnl_set_free(set);
          return true;
        });
  }
  if (dumper.rules > kMaxNetlinkRules || dumper.chains > kMaxNetlinkChains || dumper.sets > kMaxNetlinkSets ||
      dumper.elements >= kMaxNetlinkElements)
    std::printf("N the ruleset is larger than rsttrace reads over netlink: cut\n");
  if (ok) std::printf("D\n");
  mnl_socket_close(dumper.socket);
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace rsttrace::firewall
