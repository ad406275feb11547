// Synthetic microbenchmark of the collector's per-record path, without the
// kernel: ring buffer record bytes -> decode_record -> Attributor (correlation,
// rules) -> Formatter (JSON or text line) -> tallies, as app/trace.cpp does.
//
// Records are generated per poll interval (--poll-ms of simulated time, as the
// trace loop drains the ring buffer) and only their processing is timed; due()
// runs after each batch with the simulated clock. Not run by CTest:
//
//   collector_bench [--workload reset|drop|abort|mixed] [--connections N] [--rate CONN_PER_S]
//                   [--text] [--raw] [--poll-ms MS] [--dump FILE] [--repeat R] [--stream]
//                   [--storm-keys]
//
// By default the pipeline is driven as app/trace.cpp drives it (vectors of
// reports, a string per line). --stream uses the streaming calls where this
// build has them: Attributor::add(TcpEvent&&), Attributor::due(now, callback),
// Formatter::append_event_line into one reused buffer.
//
// Prints ns per connection and per record, lines, and peak RSS (getrusage's
// ru_maxrss: while tracing, and at the end, after the final flush).
// --dump FILE writes every output line to FILE (byte-for-byte comparisons
// between builds); without it lines go to a reused buffer, fwrite to /dev/null.
#include <arpa/inet.h>
#include <bpf/btf.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "attribute/attributor.h"
#include "collect/kernel_btf.h"
#include "collect/record_decoder.h"
#include "metrics/exposition.h"
#include "output/format.h"
#include "output/tally.h"
#include "rsttrace/records.h"

using namespace rsttrace;

namespace {

// Enum values as on kernel 6.18 (only names matter to the rules; values make it realistic).
const std::pair<const char*, long long> kResetReasons[] = {
    {"SK_RST_REASON_NOT_SPECIFIED", 0},        {"SK_RST_REASON_NO_SOCKET", 1},
    {"SK_RST_REASON_TCP_INVALID_ACK_SEQUENCE", 2}, {"SK_RST_REASON_TCP_RFC7323_PAWS", 3},
    {"SK_RST_REASON_TCP_TOO_OLD_ACK", 4},      {"SK_RST_REASON_TCP_ACK_UNSENT_DATA", 5},
    {"SK_RST_REASON_TCP_FLAGS", 6},            {"SK_RST_REASON_TCP_OLD_ACK", 7},
    {"SK_RST_REASON_TCP_ABORT_ON_DATA", 8},    {"SK_RST_REASON_TCP_TIMEWAIT_SOCKET", 9},
    {"SK_RST_REASON_INVALID_SYN", 10},         {"SK_RST_REASON_TCP_ABORT_ON_CLOSE", 11},
    {"SK_RST_REASON_TCP_ABORT_ON_LINGER", 12}, {"SK_RST_REASON_TCP_ABORT_ON_MEMORY", 13},
    {"SK_RST_REASON_TCP_STATE", 14},           {"SK_RST_REASON_TCP_KEEPALIVE_TIMEOUT", 15},
    {"SK_RST_REASON_TCP_DISCONNECT_WITH_DATA", 16}, {"SK_RST_REASON_MPTCP_RST_EUNSPEC", 17},
};
const std::pair<const char*, long long> kDropReasons[] = {
    {"SKB_NOT_DROPPED_YET", 0},         {"SKB_CONSUMED", 1},
    {"SKB_DROP_REASON_NOT_SPECIFIED", 2}, {"SKB_DROP_REASON_NO_SOCKET", 3},
    {"SKB_DROP_REASON_SOCKET_CLOSE", 4}, {"SKB_DROP_REASON_SOCKET_FILTER", 5},
    {"SKB_DROP_REASON_SOCKET_RCVBUFF", 6}, {"SKB_DROP_REASON_PKT_TOO_SMALL", 9},
    {"SKB_DROP_REASON_TCP_CSUM", 10},    {"SKB_DROP_REASON_NETFILTER_DROP", 12},
    {"SKB_DROP_REASON_OTHERHOST", 13},   {"SKB_DROP_REASON_SOCKET_BACKLOG", 27},
    {"SKB_DROP_REASON_TCP_FLAGS", 28},   {"SKB_DROP_REASON_TCP_OLD_DATA", 36},
    {"SKB_DROP_REASON_TCP_OVERWINDOW", 37}, {"SKB_DROP_REASON_TCP_OFOMERGE", 38},
    {"SKB_DROP_REASON_TCP_RFC7323_PAWS", 39}, {"SKB_DROP_REASON_TCP_LISTEN_OVERFLOW", 50},
    {"SKB_DROP_REASON_TCP_CLOSE", 47},   {"SKB_DROP_REASON_QUEUE_PURGE", 104},
};
const std::pair<const char*, long long> kStates[] = {
    {"TCP_ESTABLISHED", 1}, {"TCP_SYN_SENT", 2},   {"TCP_SYN_RECV", 3}, {"TCP_FIN_WAIT1", 4},
    {"TCP_FIN_WAIT2", 5},   {"TCP_TIME_WAIT", 6},  {"TCP_CLOSE", 7},    {"TCP_CLOSE_WAIT", 8},
    {"TCP_LAST_ACK", 9},    {"TCP_LISTEN", 10},    {"TCP_CLOSING", 11}, {"TCP_NEW_SYN_RECV", 12},
};

KernelNames make_names() {
  btf* types = btf__new_empty();
  auto add = [&](const char* name, const auto& values) {
    btf__add_enum(types, name, 4);
    for (const auto& [constant, value] : values) btf__add_enum_value(types, constant, value);
  };
  add("sk_rst_reason", kResetReasons);
  add("skb_drop_reason", kDropReasons);
  add("", kStates);
  KernelNames names = KernelNames::from_btf(types);
  btf__free(types);
  return names;
}

constexpr uint64_t kMs = 1'000'000;
constexpr uint8_t kSyn = 0x02, kRstAck = 0x14, kAck = 0x10;

struct Settings {
  std::string workload = "reset";
  uint64_t connections = 200'000;
  double rate = 25'000;  // connections per second (simulated)
  bool text = false;
  bool raw = false;
  uint64_t poll_ms = 50;
  std::string dump;
  int repeat = 1;
  bool stream = false;
  bool storm_keys = false;  // decode computes each event's storm class too, as rsttrace does with storms on
};

// The streaming calls, where the build under test has them (the bench also
// builds against older trees for A/B runs).
template <typename A, typename F>
void add_event(A& attributor, TcpEvent& event, bool stream, F&& report) {
  if (stream)
    for (const Attribution& r : attributor.add(std::move(event))) report(r);
  else
    for (const Attribution& r : attributor.add(event)) report(r);
}

template <typename A, typename F>
void settle(A& attributor, uint64_t now_ns, bool stream, F&& report) {
  if constexpr (requires { attributor.due(now_ns, report); }) {
    if (stream) return attributor.due(now_ns, report);
  }
  if constexpr (requires { attributor.due(now_ns); }) {
    for (const Attribution& r : attributor.due(now_ns)) report(r);
  } else {  // the vector form of older trees: reports gathered first, then handed on
    // (a deque: no regrowth copies, as the old form reserved its vector exactly)
    std::deque<Attribution> reports;
    attributor.due(now_ns, [&](Attribution& r) { reports.push_back(std::move(r)); });
    for (const Attribution& r : reports) report(r);
  }
}

// A metrics label's verdict: a string in older trees, a Verdict since.
template <typename V>
std::string verdict_text(const V& verdict) {
  if constexpr (requires { verdict.c_str(); })
    return verdict;
  else
    return std::string(verdict_name(verdict));
}

template <typename Fmt>
void append_line(const Fmt& formatter, std::string& out, const Attribution& report, bool stream) {
  if constexpr (requires { formatter.append_event_line(out, report); }) {
    if (stream) return formatter.append_event_line(out, report);
  }
  out += formatter.event_line(report);
}

// Appends records to a byte buffer laid out like the ring buffer's contents.
class RecordBuffer {
 public:
  void clear() { sizes_.clear(), bytes_.clear(); }
  template <typename Raw>
  void add(const Raw& raw) {
    const size_t at = bytes_.size();
    bytes_.resize(at + sizeof(raw));
    std::memcpy(bytes_.data() + at, &raw, sizeof(raw));
    sizes_.push_back(sizeof(raw));
  }
  template <typename Visit>
  void for_each(Visit visit) const {
    size_t at = 0;
    for (size_t size : sizes_) {
      visit(std::span<const std::byte>(bytes_.data() + at, size));
      at += size;
    }
  }
  size_t count() const { return sizes_.size(); }

 private:
  std::vector<std::byte> bytes_;
  std::vector<size_t> sizes_;
};

void set_comm(char (&comm)[RSTTRACE_COMM_LEN], const char* text, size_t length) {
  std::memset(comm, 0, sizeof(comm));
  std::memcpy(comm, text, std::min<size_t>(length, sizeof(comm)));
}
void set_comm(char (&comm)[RSTTRACE_COMM_LEN], const char* text) { set_comm(comm, text, std::strlen(text)); }

rsttrace_tcp_event base(uint8_t kind, uint64_t ts_ns) {
  rsttrace_tcp_event raw{};
  raw.header.type = RSTTRACE_RECORD_TCP_EVENT;
  raw.header.size = sizeof(raw);
  raw.kind = kind;
  raw.family = 4;
  raw.ts_ns = ts_ns;
  raw.netns = 4026532300u;
  return raw;
}

void v4(uint8_t (&addr)[RSTTRACE_ADDR_LEN], uint32_t host_order) {
  std::memset(addr, 0, sizeof(addr));
  const uint32_t net = htonl(host_order);
  std::memcpy(addr, &net, 4);
}

// The events the kernel emits for one connection of the workload.
class Generator {
 public:
  explicit Generator(std::string workload) : workload_(std::move(workload)) {}

  void connection(RecordBuffer& out, uint64_t i, uint64_t ts_ns) {
    if (workload_ == "reset") return refused(out, i, ts_ns);
    if (workload_ == "drop") return firewall_drop(out, i, ts_ns);
    if (workload_ == "abort") return sshd_abort(out, i, ts_ns);  // every connection remembered as aborted
    switch (i % 8) {  // mixed
      case 0: case 1: case 2: return refused(out, i, ts_ns);
      case 3: return firewall_drop(out, i, ts_ns);
      case 4: return sshd_abort(out, i, ts_ns);
      case 5: return peer_reset(out, i, ts_ns);
      case 6: return teardown_drop(out, i, ts_ns);
      default: return v6_hostile(out, i, ts_ns);
    }
  }

 private:
  static uint16_t client_port(uint64_t i) { return static_cast<uint16_t>(1024 + i % 63977); }
  static uint32_t isn(uint64_t i) { return static_cast<uint32_t>(i * 2654435761u); }

  // loadgen rst: connect() to the closed port 22 on loopback. The SYN meets no
  // socket: RST sent (NO_SOCKET, no socket), the SYN dropped (NO_SOCKET), the
  // client receives the RST in SYN_SENT. All in the client's task.
  void refused(RecordBuffer& out, uint64_t i, uint64_t ts) {
    const uint16_t port = client_port(i);
    const uint32_t pid = 4000 + static_cast<uint32_t>(i % 2);
    auto sent = base(RSTTRACE_KIND_RESET_SENT, ts);
    v4(sent.local_addr, 0x7f000001), v4(sent.remote_addr, 0x7f000001);
    sent.local_port = 22, sent.remote_port = port;
    sent.reason = 1, sent.tcp_flags = kSyn, sent.tcp_seq = isn(i);
    sent.flags = RSTTRACE_FLAG_REASON | RSTTRACE_FLAG_PACKET | RSTTRACE_FLAG_INGRESS;
    sent.context_pid = pid, set_comm(sent.context_comm, "rsttrace_loadge");
    out.add(sent);
    auto drop = base(RSTTRACE_KIND_DROP, ts + 2'000);
    std::memcpy(drop.local_addr, sent.local_addr, 16), std::memcpy(drop.remote_addr, sent.remote_addr, 16);
    drop.local_port = 22, drop.remote_port = port;
    drop.reason = 3, drop.tcp_flags = kSyn, drop.tcp_seq = isn(i);
    drop.flags = RSTTRACE_FLAG_REASON | RSTTRACE_FLAG_PACKET | RSTTRACE_FLAG_INGRESS | RSTTRACE_FLAG_ROUTED;
    drop.location = 0xffffffff81c2a3b4ULL, drop.ifindex = 1;
    drop.context_pid = pid, set_comm(drop.context_comm, "rsttrace_loadge");
    out.add(drop);
    auto received = base(RSTTRACE_KIND_RESET_RECEIVED, ts + 5'000);
    std::memcpy(received.local_addr, sent.remote_addr, 16), std::memcpy(received.remote_addr, sent.local_addr, 16);
    received.local_port = port, received.remote_port = 22;
    received.sock_id = 0xffff888100000000ULL + i * 0x800;
    received.tcp_state = 2;  // SYN_SENT
    received.flags = RSTTRACE_FLAG_SOCKET | RSTTRACE_FLAG_FULLSOCK;
    received.owner_pid = pid, set_comm(received.owner_comm, "rsttrace_loadge");
    received.owner_source = RSTTRACE_OWNER_CONNECT, received.owner_ts_ns = ts - 3'000;
    received.context_pid = pid, set_comm(received.context_comm, "rsttrace_loadge");
    out.add(received);
  }

  // loadgen syn with an nft drop rule: one SYN dropped at input, never retransmitted.
  void firewall_drop(RecordBuffer& out, uint64_t i, uint64_t ts) {
    auto drop = base(RSTTRACE_KIND_DROP, ts);
    v4(drop.local_addr, 0x7f000001), v4(drop.remote_addr, 0x7f000001);
    drop.local_port = 22, drop.remote_port = client_port(i);
    drop.reason = 12, drop.tcp_flags = kSyn, drop.tcp_seq = isn(i);
    drop.flags = RSTTRACE_FLAG_REASON | RSTTRACE_FLAG_PACKET | RSTTRACE_FLAG_INGRESS | RSTTRACE_FLAG_ROUTED;
    drop.location = 0xffffffff81b00000ULL, drop.ifindex = 1;
    drop.context_pid = 4000, set_comm(drop.context_comm, "rsttrace_loadge");
    out.add(drop);
  }

  // sshd child closes with client data unread; the client receives the reset.
  void sshd_abort(RecordBuffer& out, uint64_t i, uint64_t ts) {
    const uint16_t port = client_port(i);
    auto sent = base(RSTTRACE_KIND_RESET_SENT, ts);
    v4(sent.local_addr, 0x0a000001), v4(sent.remote_addr, 0xc0000200 + static_cast<uint32_t>(i % 200));
    sent.local_port = 22, sent.remote_port = port;
    sent.sock_id = 0xffff888200000000ULL + i * 0x800;
    sent.reason = 11, sent.tcp_state = 7;
    sent.flags = RSTTRACE_FLAG_REASON | RSTTRACE_FLAG_SOCKET | RSTTRACE_FLAG_FULLSOCK | RSTTRACE_FLAG_OWNER_EXITING |
                 RSTTRACE_FLAG_BY_CLOSER;
    sent.owner_pid = 9000 + static_cast<uint32_t>(i % 1000), set_comm(sent.owner_comm, "sshd-session");
    sent.owner_source = RSTTRACE_OWNER_CLOSE, sent.owner_ts_ns = ts - 1'000;
    sent.owner_exit_code = 255 << 8;
    sent.acceptor_pid = 800, sent.acceptor_ts_ns = ts - 2'000 * kMs;
    sent.bytes_received = 41, sent.bytes_acked = 1 + 32, sent.unread_bytes = 41;
    sent.context_pid = sent.owner_pid, set_comm(sent.context_comm, "sshd-session");
    out.add(sent);
  }

  // The remote peer resets an established connection.
  void peer_reset(RecordBuffer& out, uint64_t i, uint64_t ts) {
    auto received = base(RSTTRACE_KIND_RESET_RECEIVED, ts);
    v4(received.local_addr, 0x0a000001), v4(received.remote_addr, 0xcb007100 + static_cast<uint32_t>(i % 50));
    received.local_port = 22, received.remote_port = client_port(i);
    received.sock_id = 0xffff888300000000ULL + i * 0x800;
    received.tcp_state = 1, received.tcp_flags = kRstAck, received.tcp_seq = isn(i);
    received.flags = RSTTRACE_FLAG_SOCKET | RSTTRACE_FLAG_FULLSOCK | RSTTRACE_FLAG_PACKET | RSTTRACE_FLAG_INGRESS;
    received.owner_pid = 7000, set_comm(received.owner_comm, "sshd");
    received.owner_source = RSTTRACE_OWNER_IO, received.owner_ts_ns = ts - 5'000;
    received.bytes_received = 3000, received.bytes_acked = 4000;
    out.add(received);
  }

  // Data queued at a normal close, purged: ordinary teardown (ignored).
  void teardown_drop(RecordBuffer& out, uint64_t i, uint64_t ts) {
    for (int k = 0; k < 2; ++k) {
      auto drop = base(RSTTRACE_KIND_DROP, ts + k * 1'000);
      v4(drop.local_addr, 0x0a000001), v4(drop.remote_addr, 0xc6336400 + static_cast<uint32_t>(i % 20));
      drop.local_port = 22, drop.remote_port = client_port(i);
      drop.reason = 104, drop.tcp_flags = kAck, drop.tcp_seq = isn(i) + k;
      drop.sock_id = 0xffff888400000000ULL + i * 0x800, drop.tcp_state = 7;
      drop.flags = RSTTRACE_FLAG_REASON | RSTTRACE_FLAG_PACKET | RSTTRACE_FLAG_SOCKET | RSTTRACE_FLAG_FULLSOCK;
      out.add(drop);
    }
  }

  // IPv6 (and v4-mapped) with hostile process names and unknown enum values.
  void v6_hostile(RecordBuffer& out, uint64_t i, uint64_t ts) {
    static const char* const comms[] = {"x\"}\n{\"a\xff", "\x1b[31mred\x1b[0m", "back\\slash", "caf\xc3\xa9",
                                        "\t\r\b\f\x01\x7f", "0123456789abcdef"};
    auto sent = base(RSTTRACE_KIND_RESET_SENT, ts);
    sent.family = 6;
    i /= 8;  // the mixed workload's every 8th connection: vary by its own count
    if (i % 2) {
      inet_pton(AF_INET6, "2001:db8::1", sent.local_addr);
      inet_pton(AF_INET6, "2001:db8::beef", sent.remote_addr);
      sent.remote_addr[15] = static_cast<uint8_t>(i);
    } else {
      inet_pton(AF_INET6, "::ffff:10.0.0.1", sent.local_addr);
      inet_pton(AF_INET6, "::ffff:10.9.8.7", sent.remote_addr);
    }
    sent.local_port = 2222, sent.remote_port = client_port(i);
    sent.sock_id = 0xffff888500000000ULL + i * 0x800;
    sent.reason = i % 3 ? 15 : 93, sent.tcp_state = i % 4 ? 1 : 99;
    sent.tcp_flags = 0xff, sent.tcp_seq = isn(i);
    sent.flags = RSTTRACE_FLAG_REASON | RSTTRACE_FLAG_SOCKET | RSTTRACE_FLAG_FULLSOCK | RSTTRACE_FLAG_PACKET;
    const char* comm = comms[i % 6];
    sent.owner_pid = 123, set_comm(sent.owner_comm, comm, i % 6 == 5 ? 16 : std::strlen(comm));
    sent.owner_source = RSTTRACE_OWNER_ACCEPT;
    sent.context_pid = 0;
    set_comm(sent.context_comm, comms[(i + 1) % 6]);
    out.add(sent);
  }

  std::string workload_;
};

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

long current_rss_kib() {
  FILE* status = std::fopen("/proc/self/status", "r");
  if (!status) return 0;
  char line[256];
  long kib = 0;
  while (std::fgets(line, sizeof(line), status))
    if (std::strncmp(line, "VmRSS:", 6) == 0) kib = std::atol(line + 6);
  std::fclose(status);
  return kib;
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--workload reset|drop|abort|mixed] [--connections N] [--rate CONN_PER_S] [--text] [--raw]\n"
               "          [--poll-ms MS] [--dump FILE] [--repeat R] [--stream] [--storm-keys]\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (arg == "--text") s.text = true;
    else if (arg == "--stream") s.stream = true;
    else if (arg == "--storm-keys") s.storm_keys = true;
    else if (arg == "--raw") s.raw = true;
    else if (arg == "--workload" && (v = value())) s.workload = v;
    else if (arg == "--connections" && (v = value())) s.connections = std::strtoull(v, nullptr, 10);
    else if (arg == "--rate" && (v = value())) s.rate = std::strtod(v, nullptr);
    else if (arg == "--poll-ms" && (v = value())) s.poll_ms = std::strtoull(v, nullptr, 10);
    else if (arg == "--dump" && (v = value())) s.dump = v;
    else if (arg == "--repeat" && (v = value())) s.repeat = std::atoi(v);
    else return usage(argv[0]);
  }
  if ((s.workload != "reset" && s.workload != "drop" && s.workload != "abort" && s.workload != "mixed") || s.rate <= 0 || s.poll_ms == 0)
    return usage(argv[0]);

  const KernelNames names = make_names();
  const Formatter formatter{names, WallClock{1'795'000'000'000'000'000LL}};
  FILE* sink = std::fopen(s.dump.empty() ? "/dev/null" : s.dump.c_str(), "w");
  if (!sink) {
    std::perror("open output");
    return 1;
  }
  const long rss_start = current_rss_kib();

  for (int round = 0; round < s.repeat; ++round) {
    Attributor attributor(names, {22, 2222}, s.raw);
    WatchedPorts watched{};
    watched[22] = watched[2222] = true;
    Tally interval, run;
    EventCounters metrics;
    Generator generator(s.workload);
    RecordBuffer batch;
    std::string out;  // stdout's buffer stand-in
    uint64_t lines = 0, records = 0, bytes = 0, malformed = 0;
    std::chrono::nanoseconds busy{0};

    auto report = [&](const Attribution& r) {
      metrics.add(r);
      interval.add(r);
      run.add(r);
      if (s.text)
        out += formatter.event_text(r);
      else
        append_line(formatter, out, r, s.stream);
      out += '\n';
      ++lines;
      if (out.size() >= 1 << 16) {
        bytes += out.size();
        std::fwrite(out.data(), 1, out.size(), sink);
        out.clear();
      }
    };

    const uint64_t start_ns = 1'000'000 * kMs;  // CLOCK_MONOTONIC, 1000 s after boot
    const double gap_ns = 1e9 / s.rate;
    const uint64_t poll_ns = s.poll_ms * kMs;
    uint64_t next = 0;
    for (uint64_t now = start_ns + poll_ns; next < s.connections; now += poll_ns) {
      batch.clear();
      for (; next < s.connections; ++next) {
        const uint64_t ts = start_ns + static_cast<uint64_t>(static_cast<double>(next) * gap_ns);
        if (ts >= now) break;
        generator.connection(batch, next, ts);
      }
      const auto t0 = std::chrono::steady_clock::now();
      batch.for_each([&](std::span<const std::byte> bytes) {
        DecodeResult decoded = decode_record(bytes, s.storm_keys ? &watched : nullptr);
        if (!decoded) {
          ++malformed;
          return;
        }
        if (auto* tcp = std::get_if<DecodedEvent>(&*decoded))
          add_event(attributor, tcp->event, s.stream, report);
        else if (auto* open = std::get_if<WrapperOpen>(&*decoded))
          attributor.add(*open);
      });
      settle(attributor, now + kMs, s.stream, report);
      busy += std::chrono::steady_clock::now() - t0;
      records += batch.count();
    }
    // As the benchmark reads VmHWM: while tracing, before the exit's flush of every open group.
    const long peak_tracing = peak_rss_kib();
    const auto t0 = std::chrono::steady_clock::now();
    settle(attributor, UINT64_MAX, s.stream, report);
    bytes += out.size();
    std::fwrite(out.data(), 1, out.size(), sink);
    out.clear();
    busy += std::chrono::steady_clock::now() - t0;
    if (!s.dump.empty()) {  // the tallies too, for comparisons between builds
      std::fprintf(sink, "tally: %s\ninterval: %s\n", run.text(10).c_str(), interval.text(10).c_str());
      for (const auto& [labels, count] : metrics.counts())
        std::fprintf(sink, "metric: %s %s %s %u %llu\n", verdict_text(labels.verdict).c_str(), labels.kind.c_str(),
                     labels.direction.c_str(), labels.port, static_cast<unsigned long long>(count));
    }

    const double ns = static_cast<double>(busy.count());
    std::printf(
        "{\"workload\": \"%s\", \"format\": \"%s\", \"stream\": %s, \"connections\": %llu, \"records\": %llu, \"lines\": %llu, "
        "\"bytes\": %llu, \"ignored\": %llu, \"malformed\": %llu, \"ns_per_connection\": %.1f, \"ns_per_record\": %.1f, "
        "\"cpu_at_25k_conn_s\": \"%.1f%%\", \"rss_start_kib\": %ld, \"peak_rss_tracing_kib\": %ld, \"rss_end_kib\": %ld, "
        "\"peak_rss_kib\": %ld}\n",
        s.workload.c_str(), s.text ? "text" : "json", s.stream ? "true" : "false", static_cast<unsigned long long>(s.connections),
        static_cast<unsigned long long>(records), static_cast<unsigned long long>(lines),
        static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(attributor.ignored()),
        static_cast<unsigned long long>(malformed), ns / static_cast<double>(s.connections),
        ns / static_cast<double>(records), ns / static_cast<double>(s.connections) * 25'000 / 1e9 * 100, rss_start,
        peak_tracing, current_rss_kib(), peak_rss_kib());
    std::fflush(stdout);
  }
  std::fclose(sink);
  return 0;
}
