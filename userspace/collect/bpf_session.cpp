#include "collect/bpf_session.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <spdlog/spdlog.h>

#include "collect/feature_probe.h"
#include "collect/kernel_btf.h"
#include "collect/top_counts.h"
#include "error.h"
#include "rsttrace.skel.h"
#include "rsttrace/records.h"

namespace rsttrace {
namespace {

// libbpf attaches kprobes through the kprobe PMU (perf_event_open).
bool kprobes_available() { return access("/sys/bus/event_source/devices/kprobe/type", R_OK) == 0; }

std::string program_title(const bpf_program* prog) {
  return std::string(bpf_program__name(prog)) + " (" + bpf_program__section_name(prog) + ")";
}

}  // namespace

void BpfSession::SkeletonFree::operator()(rsttrace_bpf* skel) const { rsttrace_bpf__destroy(skel); }
void BpfSession::LinkFree::operator()(bpf_link* link) const { bpf_link__destroy(link); }

BpfSession::BpfSession(const SessionConfig& config, const TracepointShapes& tracepoints, RecordSink sink)
    : sink_(std::move(sink)) {
  const int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) throw failed("count", "possible CPUs", errno_text(ncpus ? ncpus : ENOENT));
  per_cpu_.resize(static_cast<size_t>(ncpus));
  // The tracepoints every run needs, checked before load so a missing one is
  // named instead of surfacing as a verifier error.
  for (const auto& [name, args] : {std::pair{"tcp_send_reset", tracepoints.tcp_send_reset},
                                   std::pair{"tcp_receive_reset", tracepoints.tcp_receive_reset},
                                   std::pair{"kfree_skb", tracepoints.kfree_skb},
                                   std::pair{"inet_sock_set_state", tracepoints.inet_sock_set_state}})
    if (!args)
      throw failed("find", std::string("tracepoint ") + name,
                   "the running kernel's BTF has no btf_trace_" + std::string(name));

  skel_.reset(rsttrace_bpf__open());
  if (!skel_) throw failed("open", "BPF object", errno_text(errno));

  const int send_reset_args = *tracepoints.tcp_send_reset;
  const int kfree_skb_args = *tracepoints.kfree_skb;
  // Active resets (close() with SO_LINGER 0 or unread data, disconnect): a
  // tracepoint with the reason argument reports them (core_fixes.bpf.h cites
  // the commits); without it, whether it does is measured here, not assumed
  // from a version: Debian's 6.1 does. The kprobe fills in only where it does
  // not, or it would duplicate every such reset.
  bool active_reset_kprobe = false;
  if (send_reset_args >= 3) {
    active_resets_ = "tcp:tcp_send_reset (its reason argument comes with active resets)";
  } else {
    const Result<ActiveResetCoverage> coverage = probe_active_reset_coverage(tracepoints);
    const bool covered = coverage && coverage->tracepoint;
    active_reset_kprobe = !covered && kprobes_available();
    const std::string why = coverage ? coverage->how : "the probe failed (" + coverage.reason() + ")";
    if (covered)
      active_resets_ = "tcp:tcp_send_reset, no fallback: an abort " + why;
    else
      active_resets_ = (active_reset_kprobe ? "kprobe on tcp_send_active_reset: an abort " : "none: an abort ") + why;
    limitations_.push_back(
        covered ? "tcp:tcp_send_reset has no reason on this kernel: reset reasons are null (it reports resets from "
                  "close(), without the kprobe)"
        : active_reset_kprobe
            ? "tcp:tcp_send_reset has no reason on this kernel: reset reasons are null; resets from close() come from "
              "a kprobe on tcp_send_active_reset (" + why + ")"
            : "tcp:tcp_send_reset has no reason on this kernel and it has no kprobes: reset reasons are null, and "
              "aborts by the owner may go unseen (" + why + ")");
  }
  bpf_program__set_autoload(skel_->progs.handle_active_reset, active_reset_kprobe);
  if (kfree_skb_args < 3)
    limitations_.push_back("skb:kfree_skb has no drop reason on this kernel (before 5.17): drops are unnamed");
  // sock:sock_{send,recv}_length are newer than 6.1; without them a forked child
  // is learnt only when it closes the socket.
  if (!tracepoints.sock_send_length || !tracepoints.sock_recv_length) {
    bpf_program__set_autoload(skel_->progs.handle_send_length, false);
    bpf_program__set_autoload(skel_->progs.handle_recv_length, false);
    limitations_.push_back("no sock:sock_send_length/sock_recv_length tracepoints on this kernel: "
                           "a process that inherited a socket is named only once it closes it");
  }
  skel_->rodata->filter_netns = config.netns;
  skel_->rodata->tcp_send_reset_args = static_cast<__u8>(send_reset_args);
  skel_->rodata->kfree_skb_args = static_cast<__u8>(kfree_skb_args);
  bpf_program__set_autoload(skel_->progs.handle_accept_fexit, config.function_hooks);
  bpf_program__set_autoload(skel_->progs.handle_open_fexit, config.function_hooks);
  // TIME_WAIT resets, which tcp:tcp_send_reset shows only from 6.10 (it stops itself there: packet.bpf.h).
  bpf_program__set_autoload(skel_->progs.handle_timewait_fexit, config.timewait_hook);
  // A full accept queue's drop before TCP_LISTEN_OVERFLOW (6.15); kfree_skb folds its reasonless free.
  bpf_program__set_autoload(skel_->progs.handle_listen_overflow_entry, config.listen_overflow_hooks);
  bpf_program__set_autoload(skel_->progs.handle_listen_overflow_fexit, config.listen_overflow_hooks);
  skel_->rodata->listen_overflow_fexit = config.listen_overflow_hooks ? 1 : 0;
  if (!config.syscall_tracepoints || config.function_hooks) {
    bpf_program__set_autoload(skel_->progs.handle_accept4_exit, false);
    bpf_program__set_autoload(skel_->progs.handle_accept_exit, false);
    bpf_program__set_autoload(skel_->progs.handle_openat_enter, false);
    bpf_program__set_autoload(skel_->progs.handle_openat_exit, false);
  }
  if (int err = bpf_map__set_max_entries(skel_->maps.events, config.ring_buffer_bytes))
    throw failed("size", "ring buffer", errno_text(err));

  if (int err = rsttrace_bpf__load(skel_.get())) {
    std::string reason = errno_text(err);
    if (err == -EPERM || err == -EACCES)
      reason += " (rsttrace needs root, or CAP_BPF and CAP_PERFMON)";
    else
      reason += " (run with -v for the verifier log)";
    throw failed("load", "BPF programs", reason);
  }

  for (uint16_t port : config.ports) skel_->bss->watched_ports[port] = 1;

  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel_->obj) {
    if (!bpf_program__autoload(prog)) continue;
    bpf_link* link = bpf_program__attach(prog);
    if (!link) throw failed("attach", "program " + program_title(prog), errno_text(errno));
    links_.emplace_back(link);
    attached_.push_back(program_title(prog));
  }

  if (config.program_stats) {
    stats_fd_.reset(bpf_enable_stats(BPF_STATS_RUN_TIME));
    if (!stats_fd_) throw failed("enable", "BPF run time statistics", errno_text(errno));
  }

  reader_ = std::make_unique<RingBufferReader>(bpf_map__fd(skel_->maps.events), bpf_map__max_entries(skel_->maps.events),
                                               sink_);
}

BpfSession::~BpfSession() = default;

std::vector<ProgramStats> BpfSession::program_stats() const {
  std::vector<ProgramStats> all;
  if (!stats_fd_) return all;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel_->obj) {
    if (!bpf_program__autoload(prog)) continue;
    bpf_prog_info info{};
    __u32 length = sizeof(info);
    if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &length) != 0) continue;
    all.push_back(ProgramStats{bpf_program__name(prog), info.run_cnt, info.run_time_ns});
  }
  return all;
}

double BpfSession::drain() { return reader_->consume(); }

Result<uint64_t> BpfSession::sum_per_cpu(const bpf_map* map, uint32_t index) const {
  if (int err = bpf_map__lookup_elem(map, &index, sizeof(index), per_cpu_.data(), per_cpu_.size() * sizeof(uint64_t), 0))
    return Failure{errno_text(err)};
  uint64_t total = 0;
  for (uint64_t value : per_cpu_) total += value;
  return total;
}

Result<std::array<uint64_t, RSTTRACE_STAT_COUNT>> BpfSession::sum_counters() const {
  // Each CPU's value of cpu_state (bpf/maps.bpf.h) begins with its counters; the
  // kernel rounds each CPU's value up to 8 bytes.
  const size_t stride = (bpf_map__value_size(skel_->maps.cpu_state) + 7) / 8 * 8;
  const size_t ncpus = per_cpu_.size();
  if (stride < sizeof(rsttrace_counters)) return Failure{"cpu_state is smaller than its counters"};
  per_cpu_state_.resize(stride * ncpus);
  const uint32_t zero = 0;
  if (int err = bpf_map__lookup_elem(skel_->maps.cpu_state, &zero, sizeof(zero), per_cpu_state_.data(),
                                     per_cpu_state_.size(), 0))
    return Failure{errno_text(err)};
  std::array<uint64_t, RSTTRACE_STAT_COUNT> totals{};
  for (size_t cpu = 0; cpu < ncpus; ++cpu) {
    rsttrace_counters counters;
    std::memcpy(&counters, per_cpu_state_.data() + cpu * stride, sizeof(counters));
    for (size_t i = 0; i < totals.size(); ++i) totals[i] += counters.count[i];
  }
  return totals;
}

bool BpfSession::maps_readable() const { return sum_counters().ok(); }

KernelStats BpfSession::stats() const {
  KernelStats& stats = last_stats_;
  const uint64_t failed_before = stats.failed_reads;
  const auto totals = sum_counters();
  std::string reason;
  for (const auto& [index, field] : {std::pair{RSTTRACE_STAT_EMITTED, &KernelStats::emitted},
                                     std::pair{RSTTRACE_STAT_LOST, &KernelStats::lost},
                                     std::pair{RSTTRACE_STAT_RESET_SENT, &KernelStats::reset_sent},
                                     std::pair{RSTTRACE_STAT_RESET_RECEIVED, &KernelStats::reset_received},
                                     std::pair{RSTTRACE_STAT_DROP, &KernelStats::drop},
                                     std::pair{RSTTRACE_STAT_EVIDENCE, &KernelStats::evidence},
                                     std::pair{RSTTRACE_STAT_FOLDED, &KernelStats::folded},
                                     std::pair{RSTTRACE_STAT_AGGREGATED, &KernelStats::aggregated}}) {
    if (totals) {
      stats.*field = (*totals)[index];
    } else {
      ++stats.failed_reads;
      reason = totals.reason();
    }
  }
  if (stats.failed_reads > failed_before && !stats_failing_)
    spdlog::warn("failed to read the kernel's counters: {}; they keep their last value (failed_reads in the summary)",
                 reason);
  stats_failing_ = stats.failed_reads > failed_before;
  return stats;
}

namespace {

rsttrace_storm_peer peer_of(const rsttrace_storm_key& key) {
  rsttrace_storm_peer peer{};
  std::memcpy(peer.addr, key.peer_addr, sizeof(peer.addr));
  peer.netns = key.netns;
  peer.port = key.port;
  peer.family = key.family;
  return peer;
}

// Whose connect()s a storm spares the owner record (storm_peers): a peer's, or a loopback class's
// (its client ends are on this host); a remote class's clients are elsewhere.
bool spares_connects(const rsttrace_storm_key& key) { return !key.peerless || rsttrace_storm_key_loopback(&key); }

std::string bytes_of(const rsttrace_storm_peer& peer) { return std::string(reinterpret_cast<const char*>(&peer), sizeof(peer)); }
std::string bytes_of(const rsttrace_storm_key& key) { return std::string(reinterpret_cast<const char*>(&key), sizeof(key)); }

// Word `index` of a .bss shortcut table as `table` says, stored whole (the programs read it at any time).
void write_shortcut(__u64* words, const ShortcutTable& table, std::optional<uint32_t> index) {
  if (index) __atomic_store_n(&words[*index], table.word(*index), __ATOMIC_RELEASE);
}

}  // namespace

namespace {

// Every entry of a class_peers / class_prefixes map (an LRU hash of
// rsttrace_class_peer -> u64) handed to `visit`, in batches small enough to
// stay on the heap's reused chunks; a Failure if the kernel refused.
template <typename Visit>
Result<void> for_each_class_entry(const bpf_map* map, Visit&& visit) {
  const int fd = bpf_map__fd(map);
  const uint32_t capacity = bpf_map__max_entries(map);
  std::vector<rsttrace_class_peer> keys(std::min<uint32_t>(capacity, 1024));
  std::vector<uint64_t> values(keys.size());
  uint32_t batch = 0, seen = 0;
  bool first = true;
  for (;;) {
    uint32_t count = static_cast<uint32_t>(keys.size());
    const int err = bpf_map_lookup_batch(fd, first ? nullptr : &batch, &batch, keys.data(), values.data(), &count, nullptr);
    const int code = err ? errno : 0;
    for (uint32_t i = 0; i < count; ++i) visit(keys[i], values[i]);
    first = false;
    seen += count;
    if (code == ENOENT) return {};  // the last batch
    if (err) return Failure{errno_text(code)};
    if (seen > capacity) return {};  // a map that changes while read: enough
  }
}

}  // namespace

ClassPeers BpfSession::class_peers(uint32_t slot, size_t top) const {
  ClassPeers result;
  for (auto [map, list] : {std::pair{skel_->maps.class_peers, &result.peers},
                           std::pair{skel_->maps.class_prefixes, &result.prefixes}}) {
    TopCounts most(top);
    const auto read = for_each_class_entry(map, [&](const rsttrace_class_peer& key, uint64_t value) {
      if (key.slot != slot) return;
      ClassPeerCount peer;
      std::memcpy(peer.addr.data(), key.addr, peer.addr.size());
      peer.family = key.family;
      peer.prefix_len = key.prefix_len;
      peer.count = value;
      most.offer(peer);
    });
    if (!read) {
      spdlog::warn("failed to read {}: {}; a class storm's line names no peers", bpf_map__name(map), read.reason());
      continue;
    }
    *list = std::move(most).take();
  }
  return result;
}

void BpfSession::activate(const rsttrace_storm_key& key, uint32_t slot, bool track_peers) {
  if (track_peers) {
    // A new generation: no first sighting of an earlier class storm in this slot matches.
    ++skel_->bss->class_generation;
    // Alone, it may forget every mark: no counting storm's key is in class_peers (a storm counts only its own slot's).
    if (peer_counting_storms_.empty())
      std::memset(skel_->bss->class_peers_marks, 0, sizeof(skel_->bss->class_peers_marks));
    peer_counting_storms_.insert(bytes_of(key));
    // A slot's entries from an earlier class storm: gone before this one counts.
    for (const bpf_map* map : {skel_->maps.class_peers, skel_->maps.class_prefixes}) {
      std::vector<rsttrace_class_peer> stale;  // deleted after the walk, which deletions would disturb
      const auto read = for_each_class_entry(map, [&](const rsttrace_class_peer& peer, uint64_t) {
        if (peer.slot == slot) stale.push_back(peer);
      });
      if (!read) throw failed("read", bpf_map__name(map), read.reason());
      for (const rsttrace_class_peer& peer : stale)
        bpf_map__delete_elem(map, &peer, sizeof(peer), 0);  // an LRU may have evicted it already
    }
  }
  const std::vector<uint64_t> zeros(per_cpu_.size(), 0);
  if (bpf_map__update_elem(skel_->maps.storm_counts, &slot, sizeof(slot), zeros.data(), zeros.size() * sizeof(uint64_t),
                           BPF_ANY))
    throw failed("reset", "storm counter " + std::to_string(slot), errno_text(errno));
  const rsttrace_storm_slot value{
      .index = slot, .active = RSTTRACE_STORM_COUNTING | (track_peers ? RSTTRACE_STORM_TRACK_PEERS : 0u)};
  if (bpf_map__update_elem(skel_->maps.storm_keys, &key, sizeof(key), &value, sizeof(value), BPF_NOEXIST))
    throw failed("add", "storm key", errno_text(errno));
  storm_keys_changed();
  skel_->bss->storms_in_use = ++storm_keys_;
  if (key.peerless) skel_->bss->class_storms_in_use = ++class_keys_;
  if (const auto shortcut = twin_shortcut(key, slot, track_peers))
    write_shortcut(skel_->bss->loopback_twin_shortcuts, twin_shortcuts_, twin_shortcuts_.add(bytes_of(key), *shortcut));
  if (!spares_connects(key)) return;
  // Best effort: without the peer entry, connects from it are only recorded as before.
  // A class's entry holds its scope address: connects from within the scope.
  const rsttrace_storm_peer peer = peer_of(key);
  const uint8_t one = 1;
  if (storm_peer_refs_[bytes_of(peer)]++ == 0 &&
      bpf_map__update_elem(skel_->maps.storm_peers, &peer, sizeof(peer), &one, sizeof(one), BPF_ANY) == 0 &&
      key.peerless)
    write_shortcut(skel_->bss->spared_connect_shortcuts, connect_shortcuts_,
                   connect_shortcuts_.add(bytes_of(peer), connect_shortcut(peer)));
}

void BpfSession::storm_keys_changed() {
  // After the map's change (a syscall): a program that reads the new generation finds the new value.
  __atomic_add_fetch(&skel_->bss->storm_keys_generation, 1, __ATOMIC_RELEASE);
}

void BpfSession::sample_peers(const rsttrace_storm_key& key, uint32_t slot, uint32_t shift) {
  const rsttrace_storm_slot value{.index = slot,
                                  .active = RSTTRACE_STORM_COUNTING | RSTTRACE_STORM_TRACK_PEERS |
                                            (std::min<uint32_t>(shift, RSTTRACE_STORM_PEER_SHIFT_MAX)
                                             << RSTTRACE_STORM_PEER_SHIFT_BIT)};
  if (bpf_map__update_elem(skel_->maps.storm_keys, &key, sizeof(key), &value, sizeof(value), BPF_EXIST))
    throw failed("sample", "class storm's peers", errno_text(errno));
  storm_keys_changed();
}

void BpfSession::deactivate(const rsttrace_storm_key& key, uint32_t slot) {
  // The shortcut first: no event may count in a slot that stopped counting.
  write_shortcut(skel_->bss->loopback_twin_shortcuts, twin_shortcuts_, twin_shortcuts_.remove(bytes_of(key)));
  peer_counting_storms_.erase(bytes_of(key));
  const rsttrace_storm_slot value{.index = slot, .active = 0};
  if (bpf_map__update_elem(skel_->maps.storm_keys, &key, sizeof(key), &value, sizeof(value), BPF_EXIST))
    throw failed("end", "storm", errno_text(errno));
  storm_keys_changed();
}

void BpfSession::remove(const rsttrace_storm_key& key) {
  write_shortcut(skel_->bss->loopback_twin_shortcuts, twin_shortcuts_, twin_shortcuts_.remove(bytes_of(key)));
  peer_counting_storms_.erase(bytes_of(key));
  if (bpf_map__delete_elem(skel_->maps.storm_keys, &key, sizeof(key), 0))
    throw failed("remove", "storm key", errno_text(errno));
  storm_keys_changed();
  skel_->bss->storms_in_use = --storm_keys_;
  if (key.peerless) skel_->bss->class_storms_in_use = --class_keys_;
  if (!spares_connects(key)) return;
  const rsttrace_storm_peer peer = peer_of(key);
  if (auto it = storm_peer_refs_.find(bytes_of(peer)); it != storm_peer_refs_.end() && --it->second == 0) {
    storm_peer_refs_.erase(it);
    write_shortcut(skel_->bss->spared_connect_shortcuts, connect_shortcuts_, connect_shortcuts_.remove(bytes_of(peer)));
    bpf_map__delete_elem(skel_->maps.storm_peers, &peer, sizeof(peer), 0);
  }
}

uint64_t BpfSession::count(uint32_t slot) const {
  const Result<uint64_t> sum = sum_per_cpu(skel_->maps.storm_counts, slot);
  if (!sum) throw failed("read", "storm counter " + std::to_string(slot), sum.reason());
  return *sum;
}

}  // namespace rsttrace
