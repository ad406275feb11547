#include "collect/feature_probe.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <memory>

#include "collect/kernel_btf.h"
#include "error.h"
#include "rsttrace.skel.h"

namespace rsttrace {

Result<void> probe_program(const std::string& program, const btf* kernel_types) {
  std::unique_ptr<rsttrace_bpf, decltype(&rsttrace_bpf__destroy)> skel(rsttrace_bpf__open(), rsttrace_bpf__destroy);
  if (!skel) return Failure{"failed to open BPF object: " + errno_text(errno)};
  bpf_program* target = nullptr;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel->obj) {
    const bool wanted = program == bpf_program__name(prog);
    bpf_program__set_autoload(prog, wanted);
    if (wanted) target = prog;
  }
  if (!target) return Failure{"no program " + program};
  // As a session sets them: the verifier rejects reading arguments a tracepoint lacks.
  skel->rodata->tcp_send_reset_args = static_cast<__u8>(tracepoint_arg_count(kernel_types, "tcp_send_reset").value_or(2));
  skel->rodata->kfree_skb_args = static_cast<__u8>(tracepoint_arg_count(kernel_types, "kfree_skb").value_or(2));
  if (int err = rsttrace_bpf__load(skel.get())) return Failure{"load: " + errno_text(err)};
  bpf_link* link = bpf_program__attach(target);
  if (!link) return Failure{"attach: " + errno_text(errno)};
  bpf_link__destroy(link);
  return {};
}

}  // namespace rsttrace
