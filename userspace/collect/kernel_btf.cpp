#include "collect/kernel_btf.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <string>

#include "error.h"

namespace rsttrace {
namespace {

std::string_view type_name(const btf* types, const btf_type* type) {
  const char* name = btf__name_by_offset(types, type->name_off);
  return name ? std::string_view(name) : std::string_view();
}

// Calls visit(name, value) for each constant of an enum or enum64 type.
template <typename Visit>
void for_each_enum_value(const btf* types, const btf_type* type, Visit visit) {
  const int count = btf_vlen(type);
  if (btf_is_enum(type)) {
    const struct btf_enum* values = btf_enum(type);
    for (int i = 0; i < count; ++i)
      visit(std::string_view(btf__name_by_offset(types, values[i].name_off)),
            static_cast<uint32_t>(values[i].val));
  } else if (btf_is_enum64(type)) {
    const struct btf_enum64* values = btf_enum64(type);
    for (int i = 0; i < count; ++i)
      visit(std::string_view(btf__name_by_offset(types, values[i].name_off)),
            static_cast<uint32_t>(btf_enum64_value(&values[i])));
  }
}

bool has_member(const btf* types, const btf_type* type, std::string_view member) {
  bool found = false;
  for_each_enum_value(types, type, [&](std::string_view name, uint32_t) { found |= name == member; });
  return found;
}

}  // namespace

EnumNames EnumNames::from_btf(const btf* types, std::string_view enum_name, std::string_view member,
                              std::string_view strip_prefix) {
  EnumNames names;
  const uint32_t count = btf__type_cnt(types);
  for (uint32_t id = 1; id < count; ++id) {
    const btf_type* type = btf__type_by_id(types, id);
    if (!btf_is_enum(type) && !btf_is_enum64(type)) continue;
    if (type_name(types, type) != enum_name) continue;
    if (!member.empty() && !has_member(types, type, member)) continue;
    for_each_enum_value(types, type, [&](std::string_view name, uint32_t value) {
      if (name.starts_with(strip_prefix)) name.remove_prefix(strip_prefix.size());
      names.by_value_.try_emplace(value, name);  // first name wins (aliases like _MAX)
    });
    break;
  }
  return names;
}

std::optional<std::string> EnumNames::name(uint32_t value) const {
  auto it = by_value_.find(value);
  if (it == by_value_.end()) return std::nullopt;
  return it->second;
}

const std::string* EnumNames::find(uint32_t value) const {
  auto it = by_value_.find(value);
  return it == by_value_.end() ? nullptr : &it->second;
}

std::optional<uint32_t> EnumNames::value(std::string_view name) const {
  for (const auto& [value, candidate] : by_value_)
    if (candidate == name) return value;
  return std::nullopt;
}

KernelNames KernelNames::from_btf(const btf* types) {
  return KernelNames{
      .reset_reasons = EnumNames::from_btf(types, "sk_rst_reason", "", "SK_RST_REASON_"),
      .drop_reasons = EnumNames::from_btf(types, "skb_drop_reason", "", "SKB_DROP_REASON_"),
      .tcp_states = EnumNames::from_btf(types, "", "TCP_ESTABLISHED", "TCP_"),
  };
}

std::optional<int> tracepoint_arg_count(const btf* types, std::string_view name) {
  const std::string typedef_name = "btf_trace_" + std::string(name);
  const int id = btf__find_by_name_kind(types, typedef_name.c_str(), BTF_KIND_TYPEDEF);
  if (id < 0) return std::nullopt;
  const btf_type* type = btf__type_by_id(types, btf__type_by_id(types, id)->type);
  if (!btf_is_ptr(type)) return std::nullopt;
  type = btf__type_by_id(types, type->type);
  if (!btf_is_func_proto(type) || btf_vlen(type) < 1) return std::nullopt;
  return btf_vlen(type) - 1;  // the first parameter is the tracepoint's context
}

TracepointShapes TracepointShapes::from_btf(const btf* types) {
  if (!types) return {};  // unknown shapes: programs that read no tracepoint arguments
  return TracepointShapes{tracepoint_arg_count(types, "tcp_send_reset"),
                          tracepoint_arg_count(types, "tcp_receive_reset"),
                          tracepoint_arg_count(types, "kfree_skb"),
                          tracepoint_arg_count(types, "inet_sock_set_state"),
                          tracepoint_arg_count(types, "sock_send_length"),
                          tracepoint_arg_count(types, "sock_recv_length")};
}

void KernelBtf::Free::operator()(btf* types) const { btf__free(types); }

KernelBtf KernelBtf::load() {
  KernelBtf kernel;
  btf* types = btf__load_vmlinux_btf();
  const int err = libbpf_get_error(types);
  if (err || !types)
    throw failed("read", "kernel BTF (/sys/kernel/btf/vmlinux)",
                 errno_text(err ? err : ENOENT) +
                     "; rsttrace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y");
  kernel.types_.reset(types);
  return kernel;
}

}  // namespace rsttrace
