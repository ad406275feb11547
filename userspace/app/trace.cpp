#include "app/trace.h"

#include <malloc.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <ctime>
#include <fstream>
#include <spdlog/spdlog.h>

#include "app/privileges.h"
#include "attribute/attributor.h"
#include "attribute/storm.h"
#include "collect/bpf_session.h"
#include "collect/kernel_btf.h"
#include "collect/record_decoder.h"
#include "collect/tracefs.h"
#include "error.h"
#include "metrics/exposition.h"
#include "metrics/server.h"
#include "output/capture_file.h"
#include "privsep/broker.h"
#include "provenance/enrich.h"
#include "provenance/worker.h"
#include "output/format.h"
#include "output/tally.h"

namespace rsttrace {
namespace {

// SIGINT/SIGTERM arrive on a file descriptor: no handler, no global flag.
class SignalFd {
 public:
  SignalFd() {
    sigemptyset(&mask_);
    sigaddset(&mask_, SIGINT);
    sigaddset(&mask_, SIGTERM);
    sigaddset(&mask_, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask_, &previous_) != 0) throw failed("block", "signals", errno_text(errno));
    fd_ = signalfd(-1, &mask_, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd_ < 0) throw failed("open", "signalfd", errno_text(errno));
  }
  ~SignalFd() {
    close(fd_);
    sigprocmask(SIG_SETMASK, &previous_, nullptr);
  }
  SignalFd(const SignalFd&) = delete;
  SignalFd& operator=(const SignalFd&) = delete;

  // Waits up to timeout_ms; the signal that arrived, or 0.
  int wait(int timeout_ms) {
    pollfd pfd{fd_, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0) return 0;
    signalfd_siginfo info{};
    return read(fd_, &info, sizeof(info)) == sizeof(info) ? static_cast<int>(info.ssi_signo) : 0;
  }

 private:
  sigset_t mask_{}, previous_{};
  int fd_ = -1;
};

// Written atomically (a temp file created exclusively + rename) once everything
// is attached, removed at exit. After the drop the broker does both: the
// collector's user may not write the directory.
class ReadyFile {
 public:
  explicit ReadyFile(std::string path) : path_(std::move(path)) {}
  ~ReadyFile() {
    if (!written_) return;
    if (!(broker_ && broker_->remove_ready()) && !remove_ready_file(path_, identity_))
      spdlog::debug("ready file {} not removed (replaced, or not allowed)", path_);
  }
  ReadyFile(const ReadyFile&) = delete;
  ReadyFile& operator=(const ReadyFile&) = delete;
  void use(BrokerAccess* broker) { broker_ = broker; }  // it must outlive this
  void write() {
    if (path_.empty()) return;
    const std::string error = broker_ ? broker_->write_ready() : write_ready_file(path_, getpid(), identity_);
    if (!error.empty()) throw failed("write", "ready file " + path_, error);
    written_ = true;
  }

 private:
  std::string path_;
  BrokerAccess* broker_ = nullptr;
  FileIdentity identity_;
  bool written_ = false;
};

// Besides root, who may own an existing capture file: the collector's user,
// unless that is `nobody`, whom other daemons (and users' jobs) share.
uid_t capture_owner(const std::string& collector_user) {
  const passwd* user = collector_user.empty() || collector_user == "nobody" ? nullptr : getpwnam(collector_user.c_str());
  return user ? user->pw_uid : collector_user.empty() ? geteuid() : 0;
}

struct Counts {
  uint64_t reports = 0;
  uint64_t packets = 0;  // kernel events folded into the reports
  uint64_t reset_sent = 0;
  uint64_t reset_received = 0;
  uint64_t drop = 0;
  uint64_t malformed = 0;
  uint64_t lost_reported = 0;
};

class EventPrinter {
 public:
  EventPrinter(const TraceOptions& options, const Formatter& formatter, uid_t capture_owner)
      : json_(options.json), threshold_(options.storm_threshold), formatter_(formatter) {
    if (!options.output.empty())
      capture_ = std::make_unique<CaptureFile>(options.output, options.rotate_bytes, options.rotate_keep,
                                               capture_owner);
  }
  CaptureFile* capture() { return capture_.get(); }
  Tally interval;  // since the last periodic summary
  Tally run;       // since the start

  EventCounters metrics;  // for --metrics
  EventCounters storm_metrics;

  void report(const Report& report, Counts& counts) {
    metrics.add(report);
    interval.add(report);
    run.add(report);
    ++counts.reports;
    counts.packets += report.packets;
    switch (report.event.kind) {
      case EventKind::ResetSent: ++counts.reset_sent; break;
      case EventKind::ResetReceived: ++counts.reset_received; break;
      case EventKind::Drop: ++counts.drop; break;
    }
    if (json_ || capture_) {
      line_.clear();  // reused: a storm writes tens of thousands of lines a second
      formatter_.append_event_line(line_, report);
      if (capture_) capture_->write_line(line_);
      if (json_) line(line_);
    }
    if (!json_) line(formatter_.event_text(report));
  }

  void storm(const StormReport& storm) {
    const Report& verdict = *storm.verdict;
    const std::string peer_addr = format_address(verdict.event.family, storm_peer_address(storm.key));
    storm_metrics.add(verdict, storm.key.port, storm.count);
    interval.add_storm(verdict, peer_addr, storm.count);
    run.add_storm(verdict, peer_addr, storm.count);
    if (json_ || capture_) {
      line_.clear();
      formatter_.append_storm_line(line_, storm);
      if (capture_) capture_->write_line(line_);
      if (json_) line(line_);
    }
    if (!json_) line(formatter_.storm_text(storm));
    if (storm.state == StormState::Start)
      spdlog::warn("storm on port {} from {}: {} events/s or more of one class ({}); counted in the kernel, one line "
                   "a second (--storm-threshold)",
                   storm.key.port, peer_addr, threshold_, verdict_name(verdict.verdict));
  }

  // Kernel-side losses since the last call: a log line, and a JSON record.
  void lost(uint64_t count, uint64_t total, uint64_t now_unix_ns) {
    spdlog::warn("lost {} events (ring buffer full; {} in total): raise --ring-buffer-kib", count, total);
    record(json_line({{"type", "lost"}, {"ts", format_rfc3339_micro(now_unix_ns)}, {"count", count}, {"total", total}}));
  }

  void summary(const nlohmann::ordered_json& summary) { record(json_line(summary)); }

  void flush() { std::fflush(stdout); }

 private:
  void line(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
  }
  // A JSON-only record (lost, summary): stdout under --json, and the capture file.
  void record(const std::string& json) {
    if (capture_) capture_->write_line(json);
    if (json_) line(json);
  }
  bool json_;
  uint64_t threshold_;
  const Formatter& formatter_;
  std::unique_ptr<CaptureFile> capture_;
  std::string line_;
};

uint64_t monotonic_now_ns() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(now.tv_nsec);
}

uint64_t unix_now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// Publishes --metrics pages about once a second, with events/s over that span.
class MetricsPublisher {
 public:
  explicit MetricsPublisher(const TraceOptions& options)
      : start_unix_(static_cast<double>(unix_now_ns()) / 1e9), bpf_stats_(options.bpf_stats) {
    if (options.metrics) server_ = std::make_unique<MetricsServer>(*options.metrics);
  }
  void serve() {
    if (server_) server_->serve();
  }

  void maybe_publish(const BpfSession& session, const Attributor& attributor, const StormTracker* storms,
                     EventPrinter& printer, const Counts& counts, bool force = false) {
    if (!server_) return;
    const uint64_t now = monotonic_now_ns();
    if (!force && now < last_ns_ + 1'000'000'000ULL) return;
    MetricsSnapshot snapshot;
    snapshot.events = printer.metrics.counts();
    const KernelStats stats = session.stats();
    snapshot.packets = counts.packets;
    snapshot.absorbed = attributor.absorbed();
    snapshot.ignored = attributor.ignored();
    snapshot.lost = stats.lost;
    snapshot.malformed = counts.malformed;
    snapshot.kernel_emitted = stats.emitted;
    snapshot.kernel_folded = stats.folded;
    snapshot.storm_events = printer.storm_metrics.counts();
    snapshot.kernel_aggregated = stats.aggregated;
    snapshot.storms_active = storms ? storms->active() : 0;
    if (const CaptureFile* capture = printer.capture()) {
      snapshot.failed_writes = capture->failed_writes();
      snapshot.rotations = capture->rotations();
    }
    snapshot.open_connections = attributor.pending();
    snapshot.evicted_connections = attributor.evicted();
    if (last_ns_ != 0 && now > last_ns_)
      snapshot.events_per_second = static_cast<double>(counts.reports - last_reports_) * 1e9 /
                                   static_cast<double>(now - last_ns_);
    const ProcessUsage usage = read_process_usage();
    snapshot.cpu_seconds = usage.cpu_seconds;
    snapshot.resident_bytes = usage.resident_bytes;
    snapshot.start_time_seconds = start_unix_;
    snapshot.program_stats = bpf_stats_;
    if (bpf_stats_)
      for (const ProgramStats& program : session.program_stats())
        snapshot.programs.push_back({program.name, program.runs, program.run_time_ns});
    server_->publish(render_prometheus(snapshot));
    last_ns_ = now;
    last_reports_ = counts.reports;
  }

 private:
  std::unique_ptr<MetricsServer> server_;
  double start_unix_;
  bool bpf_stats_;
  uint64_t last_ns_ = 0;
  uint64_t last_reports_ = 0;
};

}  // namespace

int run_trace(const TraceOptions& options) {
  require_bpf_privileges();
  // Who the collector becomes after attach, known first: it may own the capture file.
  const std::string collector_user =
      options.keep_privileges ? "" : options.user.empty() ? default_collector_user() : options.user;
  if (!options.keep_privileges && options.user.empty() && collector_user == "rsttrace")
    spdlog::info("after attaching, the collector runs as user rsttrace");
  else if (!options.keep_privileges && options.user.empty() && !collector_user.empty())
    spdlog::info("after attaching, the collector runs as user {} (no user rsttrace: see dist/sysusers.d)",
                 collector_user);
  // The kernel's BTF (several MB) is needed only for names and tracepoint
  // shapes: freed before libbpf loads its own copy, so the two never add up.
  KernelNames names;
  TracepointShapes tracepoints;
  {
    const KernelBtf kernel = KernelBtf::load();
    names = KernelNames::from_btf(kernel.get());
    tracepoints = TracepointShapes::from_btf(kernel.get());
  }
  malloc_trim(0);
  const Formatter formatter{names, WallClock::now()};
  Provenance provenance;
  Attributor attributor(names, std::set<uint16_t>(options.ports.begin(), options.ports.end()), options.raw, {},
                        provenance.host_user_ns());
  EventPrinter printer(options, formatter, capture_owner(collector_user));
  Counts counts;
  // Built once the session exists (it holds the storm maps); records arrive only on drain().
  std::optional<StormTracker> storms;
  auto on_storm = [&](const StormReport& storm) { printer.storm(storm); };
  std::unique_ptr<BrokerAccess> broker;  // before `ready`: it removes the ready file at exit
  // Provenance's own broker: its slow requests (a ruleset read) never delay
  // the trace loop's file operations on `broker`, and stopping cancels them.
  std::unique_ptr<BrokerAccess> provenance_broker;
  // Rulesets, other processes' files and fail2ban are read on a thread of
  // its own, under a deadline (provenance/worker.h): started once the broker
  // serves it, before the first drain.
  std::optional<ProvenanceWorker> worker;
  const ProvenanceWorker::Deliver print = [&](Report& report) { printer.report(report, counts); };
  auto emit = [&](Report& report) {
    if (report.needs_provenance && worker) {
      if (worker->submit(report, monotonic_now_ns(), print)) return;
      report.detail += "; provenance skipped: " + std::to_string(worker->waiting()) + " lookups already waiting";
    }
    printer.report(report, counts);
  };
  std::array<bool, 65536> watched{};
  for (uint16_t port : options.ports) watched[port] = true;

  SignalFd signals;
  ReadyFile ready(options.ready_file);
  // Bound before anything is attached: a taken port fails the start cleanly.
  MetricsPublisher metrics(options);
  // Syscall tracepoints (accept, openat) put every syscall of every process on
  // the kernel's slow path while attached: measured in bench/ as the largest
  // cost on unrelated traffic, hence the option to go without them.
  const std::string no_tracefs = options.syscall_tracepoints ? ensure_tracefs() : "";
  const bool syscall_tracepoints = options.syscall_tracepoints && no_tracefs.empty();
  if (!syscall_tracepoints)
    spdlog::warn("{}; owners are learnt from connect/close only, not accept(), and TCP wrappers go unseen",
                 options.syscall_tracepoints ? no_tracefs : "--no-syscall-tracepoints");
  BpfSession session(
      SessionConfig{options.ports, options.netns, options.ring_buffer_kib * 1024u, syscall_tracepoints,
                    options.bpf_stats},
      tracepoints,
      [&](std::span<const std::byte> bytes) {
        DecodeResult decoded = decode_record(bytes);
        if (auto* error = std::get_if<DecodeError>(&decoded)) {
          ++counts.malformed;
          spdlog::warn("failed to decode record: {}", error->message);
          return;
        }
        if (auto* event = std::get_if<TcpEvent>(&decoded)) {
          // The storm class is computed from the raw record, by the function the BPF side uses.
          rsttrace_tcp_event raw;
          rsttrace_storm_key key;
          if (storms && bytes.size() == sizeof(raw)) {
            std::memcpy(&raw, bytes.data(), sizeof(raw));
            if (rsttrace_storm_key_of(&raw, watched[raw.local_port], &key)) storms->observe(key, *event, on_storm);
          }
          for (Report& report : attributor.add(std::move(*event))) emit(report);
        }
        else
          attributor.add(std::get<WrapperOpen>(decoded));
      });
  malloc_trim(0);  // and libbpf's copy: RSS is watched on long runs
  if (options.storm_threshold > 0)
    storms.emplace(options.storm_threshold, session, [&](const rsttrace_storm_key& key, const TcpEvent& event) {
      Report verdict = attributor.judge_alone(event);
      if (verdict.needs_provenance && worker) {
        // Its start line waits for the rule (at most the worker's deadline).
        Report copy = verdict;
        if (!worker->submit(copy, monotonic_now_ns(), [&storms, &on_storm, key](Report& enriched) {
              if (storms) storms->update_verdict(key, std::move(enriched), monotonic_now_ns(), on_storm);
            }))
          verdict.needs_provenance = false;  // skipped: its lines go out without the rule
      }
      return verdict;
    });
  for (const auto& program : session.attached_programs()) spdlog::debug("attached {}", program);
  for (const auto& limitation : session.limitations()) spdlog::warn("{}", limitation);
  // From here on, privileges live only in the broker: it reads rulesets and
  // hosts files for provenance; this process parses untrusted input and serves HTTP.
  if (!options.keep_privileges) {
    // The broker (still root) also opens, rotates and reopens the capture file
    // and writes the ready file, at the paths given now: the collector's user
    // may not write their directories, and no directory is handed to it.
    broker = std::make_unique<BrokerAccess>(
        "rsttrace-files", BrokerFiles{options.output, options.rotate_keep, options.ready_file, capture_owner(collector_user)});
    provenance_broker = std::make_unique<BrokerAccess>("rsttrace-broker");
    provenance.use(*provenance_broker);
    if (CaptureFile* capture = printer.capture())
      capture->set_opener([&broker = *broker](CaptureOpen how) { return broker.open_capture(how); });
    ready.use(broker.get());
    const DroppedPrivileges dropped = drop_privileges(collector_user, [&] { return session.maps_readable(); });
    if (dropped.kept_cap_bpf) spdlog::info("kept CAP_BPF: this kernel checks it on every bpf() call");
    spdlog::debug("privileges dropped ({}); broker pids {} (files) and {} (provenance)", privilege_summary(),
                  broker->pid(), provenance_broker->pid());
  }
  worker.emplace([&](Report& report) { add_system_provenance(report, provenance); },
                 [&] { provenance.access().cancel(); });
  metrics.maybe_publish(session, attributor, storms ? &*storms : nullptr, printer, counts, true);
  metrics.serve();
  if (options.metrics) spdlog::info("serving metrics at http://{}/metrics", options.metrics->text());
  ready.write();

  std::string ports;
  for (uint16_t port : options.ports) ports += (ports.empty() ? "" : ",") + std::to_string(port);
  spdlog::info("watching TCP port{} {}{}; Ctrl-C to stop", options.ports.size() > 1 ? "s" : "", ports,
               options.netns ? " in netns " + std::to_string(options.netns) : "");

  const auto started = std::chrono::steady_clock::now();
  auto next_summary = started + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(options.summary_interval));
  const auto deadline = started + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                      std::chrono::duration<double>(options.duration_seconds));
  auto next_trim = started;
  for (;;) {
    int timeout_ms = static_cast<int>(options.poll_interval_ms);
    if (options.duration_seconds > 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, timeout_ms));
    }
    const int signal = signals.wait(timeout_ms);
    if (broker) broker->alive();  // logs once if it died
    if (provenance_broker) provenance_broker->alive();
    if (signal == SIGHUP && printer.capture()) printer.capture()->reopen();
    const bool stop = signal == SIGINT || signal == SIGTERM;
    session.drain();
    attributor.due(monotonic_now_ns(), emit);
    worker->take_ready(monotonic_now_ns());
    if (storms) storms->tick(monotonic_now_ns(), on_storm);
    const KernelStats stats = session.stats();
    if (stats.lost > counts.lost_reported) {
      printer.lost(stats.lost - counts.lost_reported, stats.lost, unix_now_ns());
      counts.lost_reported = stats.lost;
    }
    printer.flush();
    metrics.maybe_publish(session, attributor, storms ? &*storms : nullptr, printer, counts);
    // After a storm, give freed memory back: RSS is what operators watch.
    if (const auto now = std::chrono::steady_clock::now(); now >= next_trim) {
      malloc_trim(0);
      next_trim = now + std::chrono::seconds(1);
    }
    if (options.summary_interval > 0 && std::chrono::steady_clock::now() >= next_summary) {
      spdlog::info("last {:g} s: {}; lost {}", options.summary_interval, printer.interval.text(), stats.lost);
      printer.interval.clear();
      next_summary += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(options.summary_interval));
    }
    if (stop || (options.duration_seconds > 0 && std::chrono::steady_clock::now() >= deadline)) break;
  }

  // Storms stop counting before the last drain: their events after this are
  // emitted, so every event is either in a storm line or in the ring buffer.
  if (storms) storms->stop_counting(monotonic_now_ns());
  session.drain();
  attributor.flush(emit);
  // Lookups still running get a moment, then are cancelled: SIGTERM is
  // honoured within a second whatever they wait for.
  worker->finish(std::chrono::milliseconds(250));
  if (storms) storms->flush(monotonic_now_ns(), on_storm);
  const KernelStats stats = session.stats();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  nlohmann::ordered_json programs = nlohmann::ordered_json::array();
  for (const ProgramStats& program : session.program_stats())
    programs.push_back({{"name", program.name},
                        {"runs", program.runs},
                        {"run_time_ns", program.run_time_ns},
                        {"ns_per_run", program.runs ? static_cast<double>(program.run_time_ns) / program.runs : 0.0}});
  nlohmann::ordered_json summary = {
      {"type", "summary"},
      {"ts", format_rfc3339_micro(unix_now_ns())},
      {"duration_s", elapsed},
      {"events", counts.reports},
      {"packets", counts.packets},
      {"absorbed", attributor.absorbed()},
      {"ignored", attributor.ignored()},
      {"reset_sent", counts.reset_sent},
      {"reset_received", counts.reset_received},
      {"drop", counts.drop},
      {"lost", stats.lost},
      {"malformed", counts.malformed},
      {"storms", storms ? storms->started() : 0},
      {"provenance", {{"timed_out", worker->timed_out()}, {"skipped", worker->skipped()}}},
      {"aggregated", printer.run.storm_events()},
      {"kernel", {{"emitted", stats.emitted},
                  {"reset_sent", stats.reset_sent},
                  {"reset_received", stats.reset_received},
                  {"drop", stats.drop},
                  {"evidence", stats.evidence},
                  {"folded", stats.folded},
                  {"aggregated", stats.aggregated}}},
  };
  summary["verdicts"] = printer.run.by_verdict();
  summary["storm_verdicts"] = printer.run.storm_by_verdict();
  nlohmann::ordered_json top = nlohmann::ordered_json::array();
  for (const auto& [address, count] : printer.run.top_remotes(10))
    top.push_back({{"remote_addr", address}, {"events", count}});
  summary["top_remotes"] = top;
  if (options.bpf_stats) summary["programs"] = programs;
  if (const CaptureFile* capture = printer.capture())
    summary["capture"] = {{"failed_writes", capture->failed_writes()}, {"rotations", capture->rotations()}};
  printer.summary(summary);
  printer.flush();
  spdlog::info("{} in {:.1f} s; lost {}, malformed {}", printer.run.text(), elapsed, stats.lost, counts.malformed);
  return 0;
}

}  // namespace rsttrace
