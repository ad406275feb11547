// What the running kernel's BTF says: reason and state names (the enum values
// differ between kernels, so they are never hard-coded) and the shape of the
// tracepoints rsttrace attaches to.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct btf;

namespace rsttrace {

// Value -> name of one kernel enum, with a common prefix stripped
// (SK_RST_REASON_NO_SOCKET -> NO_SOCKET).
class EnumNames {
 public:
  EnumNames() = default;
  // The enum named `enum_name`, or (empty name) the anonymous enum that has a
  // constant called `member`: TCP states live in one.
  static EnumNames from_btf(const btf* types, std::string_view enum_name, std::string_view member,
                            std::string_view strip_prefix);
  std::optional<std::string> name(uint32_t value) const;
  const std::string* find(uint32_t value) const;  // the same without a copy; nullptr if unnamed
  std::optional<uint32_t> value(std::string_view name) const;
  bool empty() const { return by_value_.empty(); }

 private:
  std::unordered_map<uint32_t, std::string> by_value_;
};

// The names used to print events.
struct KernelNames {
  EnumNames reset_reasons;  // enum sk_rst_reason (6.10+; empty before)
  EnumNames drop_reasons;   // enum skb_drop_reason (5.17+; empty before)
  EnumNames tcp_states;     // TCP_ESTABLISHED ...

  static KernelNames from_btf(const btf* types);
};

// Number of arguments of tracepoint `name` (btf_trace_<name> typedef, minus
// the context pointer), or nullopt if the kernel has no such tracepoint.
std::optional<int> tracepoint_arg_count(const btf* types, std::string_view name);

// The argument counts of the tracepoints rsttrace loads programs for, read
// once: the kernel's BTF (several MB) can then be freed before libbpf parses
// its own copy while loading, which keeps the start's RSS peak low.
struct TracepointShapes {
  std::optional<int> tcp_send_reset;  // 2 before 6.10, 3 with the reason
  std::optional<int> tcp_receive_reset;
  std::optional<int> kfree_skb;  // 2 before 5.17, 3 with the reason, 4 with rx_sk
  std::optional<int> inet_sock_set_state;
  std::optional<int> sock_send_length;  // 6.3+
  std::optional<int> sock_recv_length;

  static TracepointShapes from_btf(const btf* types);
};

// Owner of the running kernel's BTF (/sys/kernel/btf/vmlinux).
class KernelBtf {
 public:
  static KernelBtf load();  // throws Error when the kernel has no BTF
  const btf* get() const { return types_.get(); }

 private:
  struct Free {
    void operator()(btf* types) const;
  };
  std::unique_ptr<btf, Free> types_;
};

}  // namespace rsttrace
