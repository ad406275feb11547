#include "collect/feature_probe.h"

#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include "collect/kernel_btf.h"
#include "error.h"
#include "rsttrace.skel.h"

namespace rsttrace {

Result<void> probe_program(const std::string& program, const btf* kernel_types) {
  return probe_programs({program}, kernel_types);
}

Result<void> probe_programs(const std::vector<std::string>& programs, const btf* kernel_types) {
  std::unique_ptr<rsttrace_bpf, decltype(&rsttrace_bpf__destroy)> skel(rsttrace_bpf__open(), rsttrace_bpf__destroy);
  if (!skel) return Failure{"failed to open BPF object: " + errno_text(errno)};
  std::vector<bpf_program*> targets;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel->obj) {
    const bool wanted = std::find(programs.begin(), programs.end(), bpf_program__name(prog)) != programs.end();
    bpf_program__set_autoload(prog, wanted);
    if (wanted) targets.push_back(prog);
  }
  if (targets.size() != programs.size()) return Failure{"no program " + programs.front()};
  // As a session sets them: the verifier rejects reading arguments a tracepoint lacks.
  auto args = [kernel_types](const char* name) {
    return static_cast<__u8>((kernel_types ? tracepoint_arg_count(kernel_types, name) : std::nullopt).value_or(2));
  };
  skel->rodata->tcp_send_reset_args = args("tcp_send_reset");
  skel->rodata->kfree_skb_args = args("kfree_skb");
  if (int err = rsttrace_bpf__load(skel.get())) return Failure{"load: " + errno_text(err)};
  for (bpf_program* target : targets) {
    bpf_link* link = bpf_program__attach(target);
    if (!link) return Failure{"attach " + std::string(bpf_program__name(target)) + ": " + errno_text(errno)};
    bpf_link__destroy(link);
  }
  return {};
}

}  // namespace rsttrace
