#include "collect/feature_probe.h"

#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

#include "collect/kernel_btf.h"
#include "error.h"
#include "fd.h"
#include "rsttrace.skel.h"

namespace rsttrace {
namespace {

using Skeleton = std::unique_ptr<rsttrace_bpf, decltype(&rsttrace_bpf__destroy)>;

// The object opened with only `programs` to load, the tracepoint argument counts
// set as a session sets them (the verifier rejects reading arguments a tracepoint lacks).
Result<std::pair<Skeleton, std::vector<bpf_program*>>> open_for(const std::vector<std::string>& programs,
                                                                const TracepointShapes& shapes) {
  Skeleton skel(rsttrace_bpf__open(), rsttrace_bpf__destroy);
  if (!skel) return Failure{"failed to open BPF object: " + errno_text(errno)};
  std::vector<bpf_program*> targets;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel->obj) {
    const bool wanted = std::find(programs.begin(), programs.end(), bpf_program__name(prog)) != programs.end();
    bpf_program__set_autoload(prog, wanted);
    if (wanted) targets.push_back(prog);
  }
  if (programs.empty() || targets.size() != programs.size())
    return Failure{"no program " + (programs.empty() ? std::string("given") : programs.front())};
  skel->rodata->tcp_send_reset_args = static_cast<__u8>(shapes.tcp_send_reset.value_or(2));
  skel->rodata->kfree_skb_args = static_cast<__u8>(shapes.kfree_skb.value_or(2));
  if (int err = rsttrace_bpf__load(skel.get())) return Failure{"load: " + errno_text(err)};
  return std::pair{std::move(skel), std::move(targets)};
}

Failure socket_failure(const char* verb, const char* object) {
  return Failure{std::string("failed to ") + verb + " " + object + ": " + std::strerror(errno)};
}

// Loopback up in the calling thread's network namespace (a new one starts with it down).
Result<void> loopback_up() {
  Fd control(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!control) return socket_failure("open", "control socket");
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(control.get(), SIOCGIFFLAGS, &request) != 0) return socket_failure("read", "lo flags");
  request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP);
  if (ioctl(control.get(), SIOCSIFFLAGS, &request) != 0) return socket_failure("bring up", "lo");
  return {};
}

// One loopback connection on 127.0.0.1, its client end aborted by close() with
// a zero linger (tcp_close() -> tcp_send_active_reset()). `arm` gets the
// listener's port (the client's remote port) before the close.
template <typename Arm>
Result<void> abort_one_connection(Arm arm) {
  Fd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  Fd client(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener || !client) return socket_failure("open", "probe sockets");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(listener.get(), 1) != 0 ||
      getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0)
    return socket_failure("listen on", "127.0.0.1");
  if (connect(client.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0)
    return socket_failure("connect", "probe socket");
  Fd accepted(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!accepted) return socket_failure("accept", "probe connection");
  const linger abortive{1, 0};
  if (setsockopt(client.get(), SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive)) != 0)
    return socket_failure("prepare", "probe socket");
  arm(ntohs(address.sin_port));
  client.reset();  // the active reset, traced synchronously in this close()
  return {};
}

}  // namespace

Result<void> probe_program(const std::string& program, const btf* kernel_types) {
  return probe_programs({program}, kernel_types);
}

Result<void> probe_programs(const std::vector<std::string>& programs, const btf* kernel_types) {
  auto opened = open_for(programs, TracepointShapes::from_btf(kernel_types));
  if (!opened) return Failure{opened.reason()};
  for (bpf_program* target : opened->second) {
    bpf_link* link = bpf_program__attach(target);
    if (!link) return Failure{"attach " + std::string(bpf_program__name(target)) + ": " + errno_text(errno)};
    bpf_link__destroy(link);
  }
  return {};
}

Result<ActiveResetCoverage> probe_active_reset_coverage(const TracepointShapes& shapes) {
  auto opened = open_for({"probe_active_reset_tracepoint"}, shapes);
  if (!opened) return Failure{"failed to load the probe: " + opened.reason()};
  rsttrace_bpf* skel = opened->first.get();
  std::unique_ptr<bpf_link, decltype(&bpf_link__destroy)> link(bpf_program__attach(opened->second.front()), bpf_link__destroy);
  if (!link) return Failure{"failed to attach the probe: " + errno_text(errno)};

  // In a thread of its own: unshare(CLONE_NEWNET) moves only that thread, and
  // the namespace goes with its last socket. No other process's traffic or
  // counters see the probe's connection.
  Result<void> done = Failure{"not run"};
  std::string where = "a throwaway network namespace";
  std::thread([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      where = "the collector's network namespace (no new one: " + std::string(std::strerror(errno)) + ")";
    } else if (Result<void> up = loopback_up(); !up) {
      done = Failure{up.reason()};
      return;
    }
    done = abort_one_connection([&](uint16_t port) { skel->bss->active_reset_probe_port = port; });
  }).join();
  if (!done) return Failure{done.reason()};
  const bool seen = __atomic_load_n(&skel->bss->active_reset_probe_seen, __ATOMIC_ACQUIRE) != 0;
  return ActiveResetCoverage{seen, std::string(seen ? "seen" : "not seen") +
                                       " by tcp:tcp_send_reset: a zero-linger close() on loopback in " + where};
}

}  // namespace rsttrace
