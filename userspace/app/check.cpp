#include "app/check.h"

#include <bpf/btf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "app/privileges.h"
#include "collect/bpf_session.h"
#include "collect/feature_probe.h"
#include "collect/kernel_btf.h"
#include "collect/tracefs.h"
#include "error.h"

namespace rsttrace {
namespace {

void row(const std::string& what, const std::string& answer) { std::printf("  %-34s %s\n", what.c_str(), answer.c_str()); }

std::string tracepoint_row(const btf* types, const char* name, const char* (*meaning)(int)) {
  const std::optional<int> args = tracepoint_arg_count(types, name);
  if (!args) return "missing";
  return "yes, " + std::to_string(*args) + (*args == 1 ? " argument" : " arguments") + (meaning ? std::string(": ") + meaning(*args) : "");
}

}  // namespace

int run_check() {
  utsname host{};
  uname(&host);
  std::printf("kernel %s (%s)\n", host.release, host.machine);

  std::optional<KernelBtf> kernel;
  try {
    kernel.emplace(KernelBtf::load());
  } catch (const Error& e) {
    std::printf("  %-34s %s\nrsttrace cannot run here: it needs the kernel's BTF (CONFIG_DEBUG_INFO_BTF)\n", "BTF",
                e.what());
    return 1;
  }
  const btf* types = kernel->get();
  row("BTF", "/sys/kernel/btf/vmlinux");

  std::printf("tracepoints\n");
  row("tcp:tcp_send_reset", tracepoint_row(types, "tcp_send_reset", [](int n) {
        return n >= 3 ? "with the reason; also active resets (6.10+)"
                      : "no reason (before 6.10); active resets: see fallbacks in use";
      }));
  row("tcp:tcp_receive_reset", tracepoint_row(types, "tcp_receive_reset", nullptr));
  row("skb:kfree_skb", tracepoint_row(types, "kfree_skb", [](int n) {
        return n >= 4 ? "with the drop reason and rx_sk (6.11+)" : n == 3 ? "with the drop reason (5.17+)" : "no reason";
      }));
  row("sock:inet_sock_set_state", tracepoint_row(types, "inet_sock_set_state", nullptr));
  row("sock:sock_send_length", tracepoint_row(types, "sock_send_length", nullptr));
  row("sock:sock_recv_length", tracepoint_row(types, "sock_recv_length", nullptr));

  const KernelNames names = KernelNames::from_btf(types);
  std::printf("reason enums\n");
  row("enum sk_rst_reason", names.reset_reasons.empty() ? "missing (before 6.10): resets carry no reason" : "yes");
  const auto netfilter_drop = names.drop_reasons.value("NETFILTER_DROP");
  row("SKB_DROP_REASON_NETFILTER_DROP",
      netfilter_drop ? "yes (" + std::to_string(*netfilter_drop) + ")" : "missing (before 5.18): firewall drops unnamed");

  // Issue 15: what the kernel shows of its own refusals (docs/attribution.md, "Kernel refusals").
  std::printf("kernel refusals\n");
  row("SKB_DROP_REASON_TCP_LISTEN_OVERFLOW",
      names.drop_reasons.value("TCP_LISTEN_OVERFLOW")
          ? "yes: a full accept queue drops the segment that would complete a connection with it (6.15+)"
          : "missing (before 6.15): a full accept queue's drop is unnamed (NOT_SPECIFIED)");
  // tcp_conn_request() drops without a reason and tcp_rcv_state_process() then
  // consume_skb()s the SYN: no kfree_skb, and no tracepoint of its own (none in 6.18's BTF).
  row("SYN-queue overflow", "no hook: a SYN refused for a full SYN or accept queue is freed with consume_skb, "
                            "not kfree_skb; read nstat TcpExtListenDrops, TcpExtTCPReqQFullDrop (SYN queue full, "
                            "cookies off), TcpExtListenOverflows (accept queue full)");
  row("SYN cookies", "no hook: a SYN answered with a cookie is no drop; read nstat TcpExtSyncookiesSent, "
                     "TcpExtSyncookiesRecv, TcpExtSyncookiesFailed, TcpExtTCPReqQFullDoCookies");
  row("socket cookies in tracing programs",
      btf__find_by_name_kind(types, "btf_bpf_get_socket_ptr_cookie", BTF_KIND_TYPEDEF) > 0
          ? "yes: a reused four-tuple is told apart by its socket"
          : "no (before 5.12): a socket is told by its address, which the kernel reuses");

  const Result<void> tracefs = ensure_tracefs();
  row("tracefs (syscall tracepoint ids)", tracefs ? "yes" : tracefs.reason());

  try {
    require_bpf_privileges();
  } catch (const Error& e) {
    std::printf("attach probes skipped: %s\n", e.what());
    return 1;
  }
  std::printf("attach probes (each program loaded and attached alone, then detached)\n");
  const struct {
    const char* label;
    const char* program;
  } probes[] = {{"tp_btf (tcp:tcp_send_reset)", "handle_send_reset"},
                {"syscall tracepoint (openat)", "handle_openat_enter"},
                {"kprobe (tcp_send_active_reset)", "handle_active_reset"},
                {"fentry (tcp_send_active_reset)", "probe_fentry"}};
  for (const auto& probe : probes) {
    if (std::string(probe.program) == "handle_openat_enter" && !tracefs) {
      row(probe.label, "skipped: no tracefs");
      continue;
    }
    const Result<void> result = probe_program(probe.program, types);
    row(probe.label, result ? "works" : "no (" + result.reason() + ")");
  }

  const Result<void> function_hooks = probe_function_hooks();
  row("fexit (inet_csk_accept, do_filp_open)", function_hooks ? "works" : "no (" + function_hooks.reason() + ")");
  const Result<void> timewait_hook = probe_timewait_hook();
  row("fexit (tcp_timewait_state_process)", timewait_hook ? "works" : "no (" + timewait_hook.reason() + ")");
  // Issue 15: a full accept queue's drop, where kfree_skb has no TCP_LISTEN_OVERFLOW.
  const bool overflow_named = names.drop_reasons.value("TCP_LISTEN_OVERFLOW").has_value();
  const Result<void> overflow_hooks = overflow_named ? Result<void>{} : probe_listen_overflow_hooks();
  row("fexit (tcp_check_req)", overflow_named ? "not needed: kfree_skb names TCP_LISTEN_OVERFLOW"
                                         : overflow_hooks ? "works: a full accept queue's drop is named"
                                                          : "no (" + overflow_hooks.reason() + ")");
  // Measured, not inferred from the shape: a session runs it when the shape leaves it open.
  const Result<ActiveResetCoverage> coverage = probe_active_reset_coverage(TracepointShapes::from_btf(types));
  row("active reset (close, SO_LINGER 0)", coverage ? coverage->how : "unknown: " + coverage.reason());

  std::printf("a full session (port 22)\n");
  try {
    SessionConfig config{{22}, 0, 1u << 16, tracefs.ok(), false};
    config.function_hooks = function_hooks.ok();
    config.timewait_hook = timewait_hook.ok();
    config.listen_overflow_hooks = !overflow_named && overflow_hooks.ok();
    BpfSession session(config,
                       TracepointShapes::from_btf(types),
                       [](std::span<const std::byte>) {});
    std::printf("fallbacks in use\n");
    row("accept() and wrapper-file opens",
        function_hooks ? "fexit on inet_csk_accept and do_filp_open (no syscall tracepoints)"
        : tracefs      ? "syscall tracepoints (every syscall of the host takes the slow path while attached)"
                       : "none: the accepting process and TCP wrappers go unseen");
    row("active resets", session.active_resets());
    row("programs attached", std::to_string(session.attached_programs().size()));
    for (const auto& program : session.attached_programs()) row("", program);
    if (session.limitations().empty()) {
      std::printf("rsttrace works fully on this kernel\n");
    } else {
      std::printf("rsttrace works on this kernel, with limitations:\n");
      for (const auto& limitation : session.limitations()) std::printf("  - %s\n", limitation.c_str());
    }
  } catch (const Error& e) {
    std::printf("rsttrace cannot trace on this kernel: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace rsttrace
