#include "app/trace_session.h"

#include <malloc.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <spdlog/spdlog.h>

#include "app/privileges.h"
#include "app/startup_pages.h"
#include "clock.h"
#include "collect/drain_pacing.h"
#include "collect/feature_probe.h"
#include "collect/tracefs.h"
#include "error.h"
#include "provenance/enrich.h"

namespace rsttrace {
namespace {

std::chrono::steady_clock::duration seconds(double value) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(value));
}

// Who the collector becomes after attach, known first: it may own the capture file.
std::string pick_collector_user(const TraceOptions& options) {
  require_bpf_privileges();
  return options.keep_privileges ? "" : options.user.empty() ? default_collector_user() : options.user;
}

// Besides root, who may own an existing capture file: the collector's user,
// unless that is `nobody`, whom other daemons (and users' jobs) share.
uid_t capture_owner(const std::string& collector_user) {
  const passwd* user = collector_user.empty() || collector_user == "nobody" ? nullptr : getpwnam(collector_user.c_str());
  return user ? user->pw_uid : collector_user.empty() ? geteuid() : 0;
}

}  // namespace

// The syscall tracepoints' cost to every other process, as measured on a loop
// of 1-byte read()s on a quiet machine (bench/results/2026-11-30-floods.md:
// 10.9 M reads a second without them, 8.7 M with them).
constexpr const char* kSyscallTracepointCost =
    "measured about +23 ns per syscall (a loop of 1-byte read()s ran 20% slower)";

TraceSession::KernelFacts TraceSession::read_kernel_facts() {
  // The kernel's BTF (several MB) is needed only for names and tracepoint
  // shapes: freed before libbpf loads its own copy, so the two never add up.
  KernelFacts facts;
  {
    const KernelBtf kernel = KernelBtf::load();
    facts.names = KernelNames::from_btf(kernel.get());
    facts.tracepoints = TracepointShapes::from_btf(kernel.get());
  }
  malloc_trim(0);
  return facts;
}

TraceSession::TraceSession(const TraceOptions& options)
    : options_(options),
      collector_user_(pick_collector_user(options)),
      kernel_(read_kernel_facts()),
      formatter_{kernel_.names, WallClock::now(), options.host_label.empty() ? local_host_label() : options.host_label},
      attributor_(kernel_.names, std::set<uint16_t>(options.ports.begin(), options.ports.end()), options.raw, {},
                  provenance_.host_user_ns()),
      printer_(options, formatter_, capture_owner(collector_user_)),
      deliver_([this](Attribution& report) { deliver(report); }),
      ready_(options.ready_file),
      metrics_(options) {
  for (uint16_t port : options.ports) watched_[port] = true;
}

TraceSession::~TraceSession() = default;

void TraceSession::start() {
  // accept() and wrapper-file opens: on kernel functions where the kernel runs
  // fexit programs (they cost nothing to other syscalls), else on syscall
  // tracepoints, which put every syscall of every process on the kernel's slow
  // path while attached (bench/: the largest cost on unrelated traffic).
  const Result<void> function_hooks = probe_function_hooks();
  const bool want_syscall_tracepoints = options_.syscall_tracepoints && !function_hooks.ok();
  const Result<void> tracefs = want_syscall_tracepoints ? ensure_tracefs() : Result<void>{};
  const bool syscall_tracepoints = want_syscall_tracepoints && tracefs.ok();
  if (function_hooks.ok())
    spdlog::info("accept() and wrapper-file opens: fexit on inet_csk_accept and do_filp_open (no syscall tracepoints)");
  else if (syscall_tracepoints)
    spdlog::warn("accept() and wrapper-file opens: syscall tracepoints (no fexit on this kernel: {}); while attached "
                 "every syscall of every process takes the kernel's slow path: {}; --no-syscall-tracepoints goes "
                 "without them",
                 function_hooks.reason(), kSyscallTracepointCost);
  else
    spdlog::warn("{}; owners are learnt from connect/close only, not accept(), and TCP wrappers go unseen",
                 options_.syscall_tracepoints ? tracefs.reason() : "--no-syscall-tracepoints");
  SessionConfig config{options_.ports, options_.netns, options_.ring_buffer_kib * 1024u, syscall_tracepoints,
                       options_.bpf_stats};
  config.function_hooks = function_hooks.ok();
  if (const Result<void> timewait = probe_timewait_hook(); timewait.ok())
    config.timewait_hook = true;
  else
    spdlog::debug("no fexit on tcp_timewait_state_process ({}): a TIME_WAIT socket's reset is seen only where "
                  "tcp:tcp_send_reset shows it (6.10+)", timewait.reason());
  if (!kernel_.names.drop_reasons.value("TCP_LISTEN_OVERFLOW")) {
    if (const Result<void> overflow = probe_listen_overflow_hooks(); overflow.ok())
      config.listen_overflow_hooks = true;
    else
      spdlog::debug("no fexit on tcp_check_req ({}): a full accept queue's drop is unnamed before 6.15",
                    overflow.reason());
  }
  session_.emplace(config,
                   kernel_.tracepoints, [this](std::span<const std::byte> bytes) { on_record(bytes); });
  malloc_trim(0);  // and libbpf's copy: RSS is watched on long runs
  if (options_.storm_threshold > 0)
    storms_.emplace(options_.storm_threshold, *session_,
                    [this](const rsttrace_storm_key& key, const TcpEvent& event) { return judge_storm(key, event); });
  if (storms_)
    if (const auto no_socket = kernel_.names.drop_reasons.value("NO_SOCKET")) storms_->set_no_socket_drop_reason(*no_socket);
  for (const auto& program : session_->attached_programs()) spdlog::debug("attached {}", program);
  for (const auto& limitation : session_->limitations()) spdlog::warn("{}", limitation);
  // From here on, privileges live only in the brokers: one reads rulesets and
  // hosts files for provenance; this process parses untrusted input and serves HTTP.
  if (!options_.keep_privileges) {
    // The files broker (still root) also opens, rotates and reopens the
    // capture file and writes the ready file, at the paths given now: the
    // collector's user may not write their directories, and no directory is handed to it.
    broker_ = std::make_unique<BrokerAccess>(
        "rsttrace-files",
        BrokerFiles{options_.output, options_.rotate_keep, options_.ready_file, capture_owner(collector_user_)});
    provenance_broker_ = std::make_unique<BrokerAccess>("rsttrace-broker");
    provenance_.use(*provenance_broker_);
    if (CaptureFile* capture = printer_.capture())
      capture->set_opener([&broker = *broker_](CaptureOpen how) { return broker.open_capture(how); });
    ready_.use(broker_.get());
    const DroppedPrivileges dropped = drop_privileges(collector_user_, [&] { return session_->maps_readable(); });
    if (dropped.kept_cap_bpf) spdlog::info("kept CAP_BPF: this kernel checks it on every bpf() call");
    // Said once it is true: a start that fails earlier is one error line, nothing else.
    if (options_.user.empty() && collector_user_ == "rsttrace")
      spdlog::info("the collector runs as user rsttrace");
    else if (options_.user.empty() && !collector_user_.empty())
      spdlog::info("the collector runs as user {} (no user rsttrace: see dist/sysusers.d)", collector_user_);
    spdlog::debug("privileges dropped ({}); broker pids {} (files) and {} (provenance)", privilege_summary(),
                  broker_->pid(), provenance_broker_->pid());
  }
  worker_.emplace([this](Attribution& report) { add_system_provenance(report, provenance_); },
                  [this] { provenance_.access().cancel(); },
                  ProvenanceWorker::Settings{std::chrono::milliseconds(
                      static_cast<int64_t>(options_.provenance_deadline_seconds * 1000))});
  publish_metrics(true);
  metrics_.serve();
  if (options_.metrics) spdlog::info("serving metrics at http://{}/metrics", options_.metrics->text());
  release_startup_pages();  // RSS from here on: what the trace loop touches (app/startup_pages.h)
  ready_.write();

  std::string ports;
  for (uint16_t port : options_.ports) ports += (ports.empty() ? "" : ",") + std::to_string(port);
  spdlog::info("watching TCP port{} {}{}; Ctrl-C to stop", options_.ports.size() > 1 ? "s" : "", ports,
               options_.netns ? " in netns " + std::to_string(options_.netns) : "");

  started_ = Clock::now();
  next_summary_ = started_ + seconds(options_.summary_interval);
  deadline_ = started_ + seconds(options_.duration_seconds);
  next_trim_ = started_;
}

bool TraceSession::poll_once() {
  int timeout_ms = static_cast<int>(wait_ms_ ? wait_ms_ : options_.poll_interval_ms);
  if (options_.duration_seconds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
    timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, timeout_ms));
  }
  const int signal = signals_.wait(timeout_ms);
  if (broker_) broker_->alive();  // logs once if it died
  if (provenance_broker_) provenance_broker_->alive();
  if (signal == SIGHUP && printer_.capture()) printer_.capture()->reopen();
  const bool stop = signal == SIGINT || signal == SIGTERM;
  wait_ms_ = next_drain_wait_ms(options_.poll_interval_ms, session_->drain());
  attributor_.due(monotonic_now_ns(), [this](Attribution& report) { emit(report); });
  worker_->take_ready(monotonic_now_ns());
  attributor_.take_folded(monotonic_now_ns(), [this](Attribution& report) { write_line(report); });
  if (storms_) storms_->tick(monotonic_now_ns(), [this](const StormReport& storm) { on_storm(storm); });
  if (const auto line = malformed_.tick(monotonic_now_ns())) spdlog::warn("{}", *line);
  const KernelStats stats = session_->stats();
  if (stats.lost > lost_reported_) {
    printer_.lost(stats.lost - lost_reported_, stats.lost, unix_now_ns());
    lost_reported_ = stats.lost;
  }
  printer_.flush();
  publish_metrics(false);
  // After a storm, give freed memory back: RSS is what operators watch.
  if (const auto now = Clock::now(); now >= next_trim_) {
    malloc_trim(0);
    next_trim_ = now + std::chrono::seconds(1);
  }
  if (options_.summary_interval > 0 && Clock::now() >= next_summary_) {
    spdlog::info("last {:g} s: {}; lost {}", options_.summary_interval, tally_.interval().text(), stats.lost);
    tally_.clear_interval();
    next_summary_ += seconds(options_.summary_interval);
  }
  return !(stop || (options_.duration_seconds > 0 && Clock::now() >= deadline_));
}

void TraceSession::finish() {
  const auto on_storm_line = [this](const StormReport& storm) { on_storm(storm); };
  // Storms stop counting before the last drain: their events after this are
  // emitted, so every event is either in a storm line or in the ring buffer.
  if (storms_) storms_->stop_counting(monotonic_now_ns());
  session_->drain();
  attributor_.flush([this](Attribution& report) { emit(report); });
  // Lookups still running get a moment, then are cancelled: SIGTERM is
  // honoured within a second whatever they wait for.
  worker_->finish(std::chrono::milliseconds(250));
  attributor_.take_folded(UINT64_MAX, [this](Attribution& report) { write_line(report); });
  if (storms_) storms_->flush(monotonic_now_ns(), on_storm_line);
  if (const auto line = malformed_.tick(UINT64_MAX)) spdlog::warn("{}", *line);
  const double elapsed = std::chrono::duration<double>(Clock::now() - started_).count();
  SummaryFacts facts{
      .unix_ns = unix_now_ns(),
      .duration_s = elapsed,
      .counts = tally_.counts(),
      .absorbed = attributor_.absorbed(),
      .ignored = attributor_.ignored(),
      .malformed = malformed_.total(),
      .storms = storms_ ? storms_->started() : 0,
      .provenance_timed_out = worker_->timed_out(),
      .provenance_skipped = worker_->skipped(),
      .kernel = session_->stats(),
  };
  facts.host = formatter_.host;
  if (options_.bpf_stats) facts.programs = session_->program_stats();
  if (const CaptureFile* capture = printer_.capture())
    facts.capture = CaptureCounts{capture->failed_writes(), capture->rotations()};
  printer_.record(summary_line(facts, tally_.run()));
  printer_.flush();
  spdlog::info("{} in {:.1f} s; lost {}, malformed {}", tally_.run().text(), elapsed, facts.kernel.lost,
               malformed_.total());
}

void TraceSession::on_record(std::span<const std::byte> bytes) {
  // Storm keys only while storms are on; the bytes are read once either way.
  DecodeResult decoded = decode_record(bytes, storms_ ? &watched_ : nullptr);
  if (!decoded) {
    if (const auto line = malformed_.add(decoded.reason(), monotonic_now_ns())) spdlog::warn("{}", *line);
    return;
  }
  if (auto* tcp = std::get_if<DecodedEvent>(&*decoded)) {
    if (tcp->storm_key)
      storms_->observe(*tcp->storm_key, tcp->event, [this](const StormReport& storm) { on_storm(storm); });
    for (Attribution& report : attributor_.add(std::move(tcp->event))) emit(report);
  } else if (auto* open = std::get_if<WrapperOpen>(&*decoded)) {
    attributor_.add(*open);
  } else {
    attributor_.add(std::get<ConnectionNote>(*decoded));
  }
}

void TraceSession::emit(Attribution& report) {
  if (report.needs_provenance && worker_) {
    if (worker_->submit(report, monotonic_now_ns(), deliver_)) return;
    report.detail += "; provenance skipped: " + std::to_string(worker_->waiting()) + " lookups already waiting";
  }
  deliver(report);
}

void TraceSession::deliver(Attribution& report) {
  attributor_.hold(report, monotonic_now_ns(), [this](Attribution& line) { write_line(line); });
}

void TraceSession::write_line(Attribution& report) {
  tally_.add(report);
  metrics_.add(report);
  printer_.report(report);
}

void TraceSession::on_storm(const StormReport& storm) {
  const Attribution& verdict = *storm.verdict;
  // A class storm (many peers) names its top peers instead of one.
  const std::string peer_addr =
      storm.key.peerless ? std::string() : format_address(verdict.event.family, storm_peer_address(storm.key));
  metrics_.add_storm(verdict, storm.key.port, storm.count, storm.connections,
                     storm.key.peerless ? &storm : nullptr);
  tally_.add_storm(verdict, peer_addr, storm.count, storm.connections);
  if (storm.connections)
    for (const StormReport::PeerShare& share : storm.top_peers)
      if (share.delta) tally_.add_storm_peer(class_peer_text(share.peer), share.delta);
  printer_.storm(storm);
  if (storm.state == StormState::Start)
    spdlog::warn("storm on port {} from {}: {} events/s or more of one class ({}); counted in the kernel, one line "
                 "a second (--storm-threshold)",
                 storm.key.port, storm.key.peerless ? std::string("many peers") : peer_addr, options_.storm_threshold,
                 verdict_name(verdict.verdict));
}

Attribution TraceSession::judge_storm(const rsttrace_storm_key& key, const TcpEvent& event) {
  Attribution verdict = attributor_.judge_alone(event);
  if (verdict.needs_provenance && worker_) {
    // Its start line waits for the rule (at most the worker's deadline).
    Attribution copy = verdict;
    if (!worker_->submit(copy, monotonic_now_ns(), [this, key](Attribution& enriched) {
          if (storms_)
            storms_->update_verdict(key, std::move(enriched), monotonic_now_ns(),
                                    [this](const StormReport& storm) { on_storm(storm); });
        }))
      verdict.needs_provenance = false;  // skipped: its lines go out without the rule
  }
  return verdict;
}

void TraceSession::publish_metrics(bool force) {
  if (!metrics_.enabled()) return;
  metrics_.maybe_publish(tally_.counts().reports, [this](MetricsSnapshot& snapshot) { fill_metrics(snapshot); }, force);
}

void TraceSession::fill_metrics(MetricsSnapshot& snapshot) const {
  const KernelStats stats = session_->stats();
  snapshot.packets = tally_.counts().packets;
  snapshot.absorbed = attributor_.absorbed();
  snapshot.ignored = attributor_.ignored();
  snapshot.lost = stats.lost;
  snapshot.malformed = malformed_.total();
  snapshot.kernel_emitted = stats.emitted;
  snapshot.kernel_folded = stats.folded;
  snapshot.kernel_aggregated = stats.aggregated;
  snapshot.kernel_failed_reads = stats.failed_reads;
  snapshot.storms_active = storms_ ? storms_->active() : 0;
  if (const CaptureFile* capture = printer_.capture()) {
    snapshot.failed_writes = capture->failed_writes();
    snapshot.rotations = capture->rotations();
  }
  snapshot.open_connections = attributor_.pending();
  snapshot.evicted_connections = attributor_.evicted();
  if (options_.bpf_stats) snapshot.programs = session_->program_stats();
}

}  // namespace rsttrace
