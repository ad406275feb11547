#include "attribute/attributor.h"

#include <algorithm>
#include <cstdlib>

#include "attribute/rules.h"
#include "provenance/provenance.h"
#include "text/escape.h"

namespace rsttrace {
namespace {

// What a process in a user namespace of its own says (its name, its threads'
// names, its files) is that user's word: shown as such, never acted on.
std::string own_word(uint32_t user_ns, uint32_t uid) {
  return " (in user namespace " + std::to_string(user_ns) + ", uid " + std::to_string(uid) + ": its own word)";
}

}  // namespace

Attributor::Attributor(const KernelNames& names, std::set<uint16_t> watched_ports, bool raw,
                       CorrelatorSettings settings, uint32_t host_user_ns)
    : names_(names), watched_ports_(std::move(watched_ports)), raw_(raw), correlator_(settings),
      host_user_ns_(host_user_ns) {}

// What the evidence rsttrace gathered itself says about a report: who read
// and who last wrote the wrapper files. The system's own state (rulesets,
// the files now, fail2ban) is read later, off the trace loop
// (provenance/enrich.h), for the reports marked needs_provenance.
void Attributor::add_evidence(Attribution& report) {
  if (report.verdict == Verdict::TcpWrappers) {
    report.needs_provenance = true;
    const auto check = evidence_.wrapper_check(report.wrapper_pid, 0, UINT64_MAX);
    if (check && check->user_ns != host_user_ns_) {
      report.wrapper_reader_note = own_word(check->user_ns, check->uid);
      report.detail += "; the process that read the wrapper files runs" + report.wrapper_reader_note;
    }
    report.written_by = evidence_.last_writer(report.wrapper_mnt_ns, WrapperFile::HostsDeny);
    if (report.written_by) {
      const WrapperOpen& writer = *report.written_by;
      report.detail += "; /etc/hosts.deny last written by " + process_text(writer.process) + ", child of " +
                       process_text(writer.parent) + " (thread " + escape_untrusted(writer.parent_thread) + ")";
      if (writer.user_ns != host_user_ns_) {
        // Its thread names (f2b/a.<jail>) are its own: no jail is inferred, fail2ban is not asked.
        report.detail += own_word(writer.user_ns, writer.uid);
        report.writer_speaks_for_itself = true;
      } else if ((report.fail2ban_jail = Provenance::fail2ban_jail_from_thread(writer))) {
        report.detail += " (fail2ban jail " + escape_untrusted(*report.fail2ban_jail) + ")";
      }
    }
  }
  if (report.verdict == Verdict::Firewall && report.netfilter_hook) report.needs_provenance = true;
  add_netfilter_reset(report);
}

uint64_t Attributor::group_last_ns(const std::vector<TcpEvent>& group) {
  uint64_t last = 0;
  for (const TcpEvent& e : group) last = std::max(last, e.monotonic_ns);
  return last;
}

bool Attributor::opens_fold(const Attribution& report, const std::vector<TcpEvent>& group) {
  // A group with a reset is a connection that ended: nothing more to fold.
  return rsttrace::opens_fold(report) &&
         std::none_of(group.begin(), group.end(), [](const TcpEvent& e) { return e.kind != EventKind::Drop; });
}

void Attributor::remember_netfilter_drop(const TcpEvent& event) {
  if (event.kind != EventKind::Drop || !event.ingress || !event.reason) return;
  const std::string* name = names_.drop_reasons.find(*event.reason);
  if (!name || *name != "NETFILTER_DROP") return;
  ConnectionKey key = ConnectionKey::of(event);
  key.netns = 0;  // the client's end may be in another namespace of this host
  if (netfilter_drops_.size() >= kMaxNetfilterDrops) netfilter_drops_.clear();  // bounded: a flood forgets
  std::vector<NetfilterDrop>& drops = netfilter_drops_[key];
  if (drops.size() >= kDropsPerConnection) drops.erase(drops.begin());
  drops.push_back(NetfilterDrop::of(event));
}

namespace {

// The facts a netfilter drop keeps, copied either way (the same names in both).
template <typename To, typename From>
void copy_drop_facts(To& to, const From& from) {
  to.monotonic_ns = from.monotonic_ns;
  to.netns = from.netns;
  to.family = from.family;
  to.local = from.local;
  to.remote = from.remote;
  to.reason = from.reason;
  to.tcp_flags = from.tcp_flags;
  to.ingress = from.ingress;
  to.routed = from.routed;
  to.tcp_seq = from.tcp_seq;
  to.ifindex = from.ifindex;
  to.netfilter = from.netfilter;
}

}  // namespace

Attributor::NetfilterDrop Attributor::NetfilterDrop::of(const TcpEvent& drop) {
  NetfilterDrop facts;
  copy_drop_facts(facts, drop);
  return facts;
}

TcpEvent Attributor::NetfilterDrop::event() const {
  TcpEvent drop;
  drop.kind = EventKind::Drop;
  copy_drop_facts(drop, *this);
  return drop;
}

// A peer's reset that netfilter built on this host: REJECT --reject-with
// tcp-reset answers the dropped packet with a RST of its own (nf_send_reset:
// no tcp_send_reset fires), so the client end sees a reset from a peer that
// sent none. Evidence: netfilter dropped a packet of the same connection
// (four-tuple reversed) entering the other end, just before: of the drops of
// that four-tuple in any namespace, the nearest one before the reset.
void Attributor::add_netfilter_reset(Attribution& report) {
  const TcpEvent& reset = report.event;
  if (report.verdict != Verdict::Peer || reset.kind != EventKind::ResetReceived || netfilter_drops_.empty()) return;
  ConnectionKey key = ConnectionKey::of(reset);
  key.netns = 0;
  const auto found = netfilter_drops_.find(key);
  if (found == netfilter_drops_.end()) return;
  const NetfilterDrop* nearest = nullptr;
  int64_t gap_ns = 0;
  for (const NetfilterDrop& drop : found->second) {
    const int64_t gap = static_cast<int64_t>(reset.monotonic_ns - drop.monotonic_ns);
    if (!(drop.local == reset.remote && drop.remote == reset.local) || gap < -kNetfilterResetSkewNs ||
        gap > kNetfilterResetWindowNs)
      continue;
    if (!nearest || std::llabs(gap) < std::llabs(gap_ns)) nearest = &drop, gap_ns = gap;
  }
  if (!nearest) return;
  const NetfilterDrop& drop = *nearest;
  report.netfilter_reset_drop = drop.event();
  report.needs_provenance = true;
  const char* hook = drop.routed ? "input" : "prerouting";
  report.detail += "; netfilter on this host built this reset (REJECT with tcp-reset: no tcp_send_reset fired): it "
                   "dropped the connection's packet from " + format_endpoint(reset.family, reset.local) + " at the " +
                   hook + " hook of netns " + std::to_string(drop.netns) + " " +
                   std::to_string(std::llabs(gap_ns) / 1'000'000) + " ms " + (gap_ns >= 0 ? "before" : "after") +
                   " (NETFILTER_DROP)";
}

bool Attributor::finish(const std::vector<TcpEvent>& group, std::optional<Attribution>& report) {
  if (report) {
    add_evidence(*report);
    return true;
  }
  if (raw_) {  // raw: every kernel event has its line
    report = judge_alone(group.front());
    return true;
  }
  ignored_ += group.size();
  return false;
}

Attribution Attributor::judge_alone(const TcpEvent& event) {
  const std::vector<TcpEvent> group{event};
  std::optional<Attribution> report = judge(group, RuleContext{names_, evidence_, watched_ports_});
  if (report) {
    add_evidence(*report);
    return std::move(*report);
  }
  return Attribution{event, Verdict::None, "ordinary teardown, not a failure: " + describe_evidence(names_, event)};
}

std::vector<Attribution> Attributor::judge_all(const std::vector<std::vector<TcpEvent>>& groups) {
  std::vector<Attribution> reports;
  reports.reserve(groups.size());
  for (const auto& group : groups) {
    std::optional<Attribution> report = judge(group, RuleContext{names_, evidence_, watched_ports_});
    if (finish(group, report)) reports.push_back(std::move(*report));
  }
  return reports;
}

bool Attributor::folded(const TcpEvent& event) {
  if (folds_.absorb(event)) return true;
  if (event.kind != EventKind::Drop) folds_.end(event);
  remember_netfilter_drop(event);
  return false;
}

std::vector<Attribution> Attributor::add(const TcpEvent& event) {
  if (raw_) return judge_all({{event}});
  if (!folded(event)) correlator_.add(event);
  return {};
}

std::vector<Attribution> Attributor::add(TcpEvent&& event) {
  if (raw_) return judge_all({{std::move(event)}});
  if (!folded(event)) correlator_.add(std::move(event));
  return {};
}

}  // namespace rsttrace
