// The bench's floor configuration: empty programs on rsttrace's attach points.
//   rsttrace_empty_hooks READY_FILE PROGRAM...
// Attaches the named programs of bench/empty_hooks.bpf.c (the names of the
// programs rsttrace attached, from its --bpf-stats summary), writes
// READY_FILE, and holds them until SIGINT or SIGTERM. A name whose section
// differs from rsttrace's program of the same name is an error: the floor
// must stand on exactly rsttrace's hooks.
#include <bpf/libbpf.h>
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "collect/tracefs.h"
#include "empty_hooks.skel.h"
#include "rsttrace.skel.h"

namespace {

struct EmptyHooksFree {
  void operator()(empty_hooks_bpf* skel) const { empty_hooks_bpf__destroy(skel); }
};
struct RsttraceFree {
  void operator()(rsttrace_bpf* skel) const { rsttrace_bpf__destroy(skel); }
};
struct LinkFree {
  void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};

int fail(const std::string& what, int err) {
  std::fprintf(stderr, "rsttrace_empty_hooks: failed to %s: %s\n", what.c_str(), std::strerror(err < 0 ? -err : err));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: rsttrace_empty_hooks READY_FILE PROGRAM...\n");
    return 2;
  }
  const std::set<std::string> wanted(argv + 2, argv + argc);
  std::unique_ptr<rsttrace_bpf, RsttraceFree> reference(rsttrace_bpf__open());
  std::unique_ptr<empty_hooks_bpf, EmptyHooksFree> skel(empty_hooks_bpf__open());
  if (!reference || !skel) return fail("open BPF objects", errno);
  std::set<std::string> found;
  bpf_program* program;
  bpf_object__for_each_program(program, skel->obj) {
    const std::string name = bpf_program__name(program);
    if (!wanted.count(name)) {
      bpf_program__set_autoload(program, false);
      continue;
    }
    bpf_program__set_autoload(program, true);  // "?" sections (fentry/fexit) load only when named
    const bpf_program* twin = bpf_object__find_program_by_name(reference->obj, name.c_str());
    if (!twin || std::strcmp(bpf_program__section_name(twin), bpf_program__section_name(program)) != 0) {
      std::fprintf(stderr, "rsttrace_empty_hooks: failed to mirror %s: rsttrace's program is in section %s\n",
                   name.c_str(), twin ? bpf_program__section_name(twin) : "(none)");
      return 1;
    }
    found.insert(name);
  }
  for (const auto& name : wanted) {
    if (!found.count(name)) {
      std::fprintf(stderr, "rsttrace_empty_hooks: failed to find program %s: not in bench/empty_hooks.bpf.c\n",
                   name.c_str());
      return 1;
    }
  }
  if (const rsttrace::Result<void> tracefs = rsttrace::ensure_tracefs(); !tracefs)
    std::fprintf(stderr, "rsttrace_empty_hooks: syscall tracepoints may fail: %s\n", tracefs.reason().c_str());
  if (int err = empty_hooks_bpf__load(skel.get())) return fail("load BPF programs", err);
  std::vector<std::unique_ptr<bpf_link, LinkFree>> links;
  bpf_object__for_each_program(program, skel->obj) {
    if (!bpf_program__autoload(program)) continue;
    bpf_link* link = bpf_program__attach(program);
    if (!link) return fail(std::string("attach ") + bpf_program__name(program), errno);
    links.emplace_back(link);
  }
  // Signals are waited for, not handled: no global state.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  if (!std::ofstream(argv[1])) return fail(std::string("write ") + argv[1], errno);
  int signal_number = 0;
  sigwait(&stop, &signal_number);
  return 0;
}
