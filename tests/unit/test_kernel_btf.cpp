#include <catch2/catch.hpp>
#include <unistd.h>

#include "collect/kernel_btf.h"
#include "synthetic_btf.h"

using namespace rsttrace;
using rsttrace::testing::SyntheticBtf;

TEST_CASE("enum names come from BTF with the prefix stripped") {
  SyntheticBtf types;
  types.add_enum("sk_rst_reason", {{"SK_RST_REASON_NOT_SPECIFIED", 0}, {"SK_RST_REASON_NO_SOCKET", 1},
                                   {"SK_RST_REASON_TCP_ABORT_ON_CLOSE", 11}});
  const EnumNames names = EnumNames::from_btf(types.get(), "sk_rst_reason", "", "SK_RST_REASON_");
  CHECK(names.name(1) == "NO_SOCKET");
  CHECK(names.name(11) == "TCP_ABORT_ON_CLOSE");
  CHECK_FALSE(names.name(12));
  CHECK(names.value("TCP_ABORT_ON_CLOSE") == 11u);
}

TEST_CASE("the numbers of a kernel are its own: the same name may have another value") {
  SyntheticBtf older;
  older.add_enum("skb_drop_reason", {{"SKB_DROP_REASON_NOT_SPECIFIED", 2}, {"SKB_DROP_REASON_NETFILTER_DROP", 9}});
  const KernelNames names = KernelNames::from_btf(older.get());
  CHECK(names.drop_reasons.name(9) == "NETFILTER_DROP");
  CHECK(names.drop_reasons.name(12) == std::nullopt);
  CHECK(names.reset_reasons.empty());  // a kernel before 6.10 has no sk_rst_reason
}

TEST_CASE("TCP states are found in the anonymous enum that holds TCP_ESTABLISHED") {
  SyntheticBtf types;
  types.add_enum("", {{"OTHER_THING", 1}});
  types.add_enum("", {{"TCP_ESTABLISHED", 1}, {"TCP_SYN_SENT", 2}, {"TCP_CLOSE", 7}});
  const KernelNames names = KernelNames::from_btf(types.get());
  CHECK(names.tcp_states.name(1) == "ESTABLISHED");
  CHECK(names.tcp_states.name(7) == "CLOSE");
}

TEST_CASE("tracepoint arity is read from btf_trace typedefs") {
  SyntheticBtf types;
  types.add_tracepoint("tcp_send_reset", 2).add_tracepoint("kfree_skb", 4);
  CHECK(tracepoint_arg_count(types.get(), "tcp_send_reset") == 2);
  CHECK(tracepoint_arg_count(types.get(), "kfree_skb") == 4);
  CHECK(tracepoint_arg_count(types.get(), "tcp_receive_reset") == std::nullopt);
}

TEST_CASE("the running kernel's BTF names the reasons rsttrace relies on") {
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    WARN("no /sys/kernel/btf/vmlinux here; nothing to check");
    return;
  }
  const KernelBtf kernel = KernelBtf::load();
  const KernelNames names = KernelNames::from_btf(kernel.get());
  CHECK(names.drop_reasons.value("NETFILTER_DROP"));
  CHECK(names.tcp_states.value("ESTABLISHED") == 1u);
  CHECK(tracepoint_arg_count(kernel.get(), "tcp_receive_reset") == 1);
}
