// Owner of everything rsttrace puts in the kernel: the skeleton (programs and
// maps), one link per attached program, and the ring buffer reader. Built
// whole or not at all: a constructor that throws leaves nothing attached, and
// the destructor detaches in reverse order.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "collect/kernel_btf.h"
#include "collect/kernel_stats.h"
#include "collect/ring_buffer_reader.h"
#include "collect/storm_counters.h"
#include "collect/storm_shortcuts.h"
#include "error.h"
#include "fd.h"
#include "rsttrace/records.h"

struct rsttrace_bpf;
struct bpf_link;
struct bpf_map;

namespace rsttrace {

struct SessionConfig {
  std::vector<uint16_t> ports;
  uint32_t netns = 0;
  uint32_t ring_buffer_bytes = 4u << 20;
  // accept() and wrapper-file tracking need syscall tracepoints; off when tracefs is missing.
  bool syscall_tracepoints = true;
  // Turn on the kernel's per-program run time accounting for this session.
  bool program_stats = false;
  // accept() and wrapper-file opens on kernel functions (fexit) instead of the
  // syscall tracepoints: set when probe_function_hooks() works.
  bool function_hooks = false;
  // TIME_WAIT resets on fexit of tcp_timewait_state_process (bpf/packet.bpf.h):
  // set when probe_timewait_hook() works.
  bool timewait_hook = false;
  // A full accept queue's drop on fentry/fexit of tcp_check_req, on kernels
  // without TCP_LISTEN_OVERFLOW: set when probe_listen_overflow_hooks() works there.
  bool listen_overflow_hooks = false;
};

class BpfSession : public StormCounters {
 public:
  // Loads and attaches; throws Error naming what failed.
  BpfSession(const SessionConfig& config, const TracepointShapes& tracepoints, RecordSink sink);
  ~BpfSession() override;
  BpfSession(const BpfSession&) = delete;
  BpfSession& operator=(const BpfSession&) = delete;

  // Hands every record waiting in the ring buffer to the sink.
  // Reads every record waiting; returns the share of the ring buffer that was waiting.
  double drain();
  // The kernel's counters. A counter whose read fails keeps its last value
  // and is counted in failed_reads (and logged once per run of failures).
  KernelStats stats() const;
  // Whether this process can read the BPF maps, e.g. after dropping CAP_BPF
  // (kernels before 6.5 check it on every bpf() call while unprivileged BPF is off).
  bool maps_readable() const;
  std::vector<ProgramStats> program_stats() const;  // empty unless config.program_stats

  // StormCounters: the storm_keys and storm_counts maps; throw Error on failure.
  void activate(const rsttrace_storm_key& key, uint32_t slot, bool track_peers) override;
  void sample_peers(const rsttrace_storm_key& key, uint32_t slot, uint32_t shift) override;
  void deactivate(const rsttrace_storm_key& key, uint32_t slot) override;
  void remove(const rsttrace_storm_key& key) override;
  uint64_t count(uint32_t slot) const override;
  ClassPeers class_peers(uint32_t slot, size_t top) const override;
  std::vector<std::string> attached_programs() const { return attached_; }
  // What this kernel cannot show, one sentence each (empty on 6.11+).
  std::vector<std::string> limitations() const { return limitations_; }
  // What reports active resets (close() aborts) in this session, and how that was learnt.
  const std::string& active_resets() const { return active_resets_; }

 private:
  struct SkeletonFree {
    void operator()(rsttrace_bpf* skel) const;
  };
  struct LinkFree {
    void operator()(bpf_link* link) const;
  };
  // One CPU's value after another, of the per-CPU map `map` at `index`,
  // summed; a Failure (errno text) if the kernel refused the read.
  Result<uint64_t> sum_per_cpu(const bpf_map* map, uint32_t index) const;
  // Every counter of the cpu_state map (records.h: rsttrace_counters), summed over the CPUs.
  Result<std::array<uint64_t, RSTTRACE_STAT_COUNT>> sum_counters() const;
  // After every change of storm_keys: the CPUs' cached lookups of it are stale (bpf/maps.bpf.h: cpu_state, storm_lookup).
  void storm_keys_changed();

  RecordSink sink_;
  // Destroyed bottom-up: reader, then links, then the skeleton.
  std::unique_ptr<rsttrace_bpf, SkeletonFree> skel_;
  std::vector<std::unique_ptr<bpf_link, LinkFree>> links_;
  std::unique_ptr<RingBufferReader> reader_;
  Fd stats_fd_;  // holds BPF_STATS_RUN_TIME on while open
  uint32_t storm_keys_ = 0;  // entries in storm_keys, mirrored to storms_in_use
  uint32_t class_keys_ = 0;  // of which class storms' (peerless), mirrored to class_storms_in_use
  std::map<std::string, int> storm_peer_refs_;  // storm_peers entries (as bytes) -> storms using them
  ShortcutTable twin_shortcuts_;     // mirrored to .bss loopback_twin_shortcuts
  ShortcutTable connect_shortcuts_;  // mirrored to .bss spared_connect_shortcuts
  std::set<std::string> peer_counting_storms_;  // keys (as bytes) of the active storms that count peers
  mutable std::vector<uint64_t> per_cpu_;  // one value per possible CPU, reused by every read
  mutable std::vector<unsigned char> per_cpu_state_;  // cpu_state's value of every possible CPU
  mutable KernelStats last_stats_;         // what a failed read keeps
  mutable bool stats_failing_ = false;     // in a run of failed reads: logged once
  std::vector<std::string> attached_;
  std::vector<std::string> limitations_;
  std::string active_resets_;
};

}  // namespace rsttrace
