// The netlink side of nft_netlink.h: runs in the namespace (its own process,
// `rsttrace nft-netlink-dump` under nsenter) and prints one line per object:
//   C <family> <table> <chain> <hook|-> <priority> <policy|->
//   R <family> <table> <chain> <handle> <verdict|-> <target|-> <lookups|->
//       lookups: comma-separated <n|o>:<offset>:<length>:<inverted 0|1>:<set>
//   S <family> <table> <set> <key length> <interval 0|1>
//   E <family> <table> <set> <key> <key end|->   (hex bytes; end: NFTA_SET_ELEM_KEY_END)
//   I <family> <table> <set> <key>               an interval's end (NFT_SET_ELEM_INTERVAL_END)
//   N <note>          D                          (the dump ended)
// Names are hex-encoded: a namespace's owner chooses them.
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

// Which network-header bytes each register holds, for the lookups that read them.
struct RuleScan {
  std::map<uint32_t, std::string> loads;  // register -> "n:offset:length" or "o"
  std::string verdict = "-", target = "-", lookups;
};

int scan_expression(nftnl_expr* expr, void* data) {
  auto& scan = *static_cast<RuleScan*>(data);
  const char* name = nftnl_expr_get_str(expr, NFTNL_EXPR_NAME);
  const std::string kind = name ? name : "";
  if (kind == "payload" && nftnl_expr_is_set(expr, NFTNL_EXPR_PAYLOAD_DREG)) {
    const uint32_t reg = nftnl_expr_get_u32(expr, NFTNL_EXPR_PAYLOAD_DREG);
    if (nftnl_expr_get_u32(expr, NFTNL_EXPR_PAYLOAD_BASE) == NFT_PAYLOAD_NETWORK_HEADER)
      scan.loads[reg] = "n:" + std::to_string(nftnl_expr_get_u32(expr, NFTNL_EXPR_PAYLOAD_OFFSET)) + ":" +
                        std::to_string(nftnl_expr_get_u32(expr, NFTNL_EXPR_PAYLOAD_LEN));
    else
      scan.loads[reg] = "o:0:0";
  } else if (kind == "lookup" && nftnl_expr_is_set(expr, NFTNL_EXPR_LOOKUP_SET)) {
    const auto load = scan.loads.find(nftnl_expr_get_u32(expr, NFTNL_EXPR_LOOKUP_SREG));
    const bool inverted = nftnl_expr_is_set(expr, NFTNL_EXPR_LOOKUP_FLAGS) &&
                          (nftnl_expr_get_u32(expr, NFTNL_EXPR_LOOKUP_FLAGS) & NFT_LOOKUP_F_INV);
    if (!scan.lookups.empty()) scan.lookups += ",";
    scan.lookups += (load != scan.loads.end() ? load->second : "o:0:0") + ":" + (inverted ? "1" : "0") + ":" +
                    hex(nftnl_expr_get_str(expr, NFTNL_EXPR_LOOKUP_SET));
  } else if (kind == "reject") {
    scan.verdict = "reject";
  } else if (kind == "immediate" && nftnl_expr_is_set(expr, NFTNL_EXPR_IMM_VERDICT)) {
    switch (static_cast<int32_t>(nftnl_expr_get_u32(expr, NFTNL_EXPR_IMM_VERDICT))) {
      case NF_DROP: scan.verdict = "drop"; break;
      case NF_ACCEPT: scan.verdict = "accept"; break;
      case NFT_RETURN: scan.verdict = "return"; break;
      case NFT_JUMP: scan.verdict = "jump"; break;
      case NFT_GOTO: scan.verdict = "goto"; break;
      default: break;
    }
    if (nftnl_expr_is_set(expr, NFTNL_EXPR_IMM_CHAIN)) scan.target = hex(nftnl_expr_get_str(expr, NFTNL_EXPR_IMM_CHAIN));
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
      std::printf("R %s %s %s %llu %s %s %s\n", family_name(nftnl_rule_get_u32(rule, NFTNL_RULE_FAMILY)).c_str(),
                  hex(nftnl_rule_get_str(rule, NFTNL_RULE_TABLE)).c_str(),
                  hex(nftnl_rule_get_str(rule, NFTNL_RULE_CHAIN)).c_str(),
                  static_cast<unsigned long long>(nftnl_rule_get_u64(rule, NFTNL_RULE_HANDLE)), scan.verdict.c_str(),
                  scan.target.c_str(), scan.lookups.empty() ? "-" : scan.lookups.c_str());
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
      std::printf("S %s %s %s %u %d\n", family_name(family).c_str(), hex(table).c_str(), hex(name).c_str(),
                  nftnl_set_get_u32(set, NFTNL_SET_KEY_LEN),
                  (nftnl_set_get_u32(set, NFTNL_SET_FLAGS) & NFT_SET_INTERVAL) ? 1 : 0);
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
