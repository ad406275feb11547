// Every rule of the verdict, in its order of precedence, in one Judge class: over 450 lines so the order reads in one place.
#include "attribute/rules.h"

#include <string.h>

#include <algorithm>
#include <cstdio>

#include "attribute/describe.h"
#include "attribute/sshd_refusal.h"
#include "attribute/tcp_flags.h"
#include "text/escape.h"
#include "text/event_names.h"

namespace rsttrace {
namespace {

// How far back a wrapper check may lie when the accept() itself was not seen.
constexpr uint64_t kWrapperLookback = 300 * kSecondNs;
// sshd's default LoginGraceTime; a child that closes later than this after
// accept() without a word ran into it (or a longer configured one).
constexpr uint64_t kLoginGraceTime = 120 * kSecondNs;
// PerSourcePenalties' default max:600: older endings cannot weigh on a refusal.
constexpr uint64_t kPenaltyWindow = 600 * kSecondNs;

using Group = std::vector<TcpEvent>;

// Concatenation with one allocation (details are built per reported connection).
template <typename... Parts>
std::string cat(const Parts&... parts) {
  const std::string_view views[] = {std::string_view(parts)...};
  size_t size = 0;
  for (std::string_view view : views) size += view.size();
  std::string out;
  out.reserve(size);
  for (std::string_view view : views) out.append(view);
  return out;
}

std::string plural(uint64_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

class Judge {
 public:
  Judge(const Group& group, const RuleContext& context) : group_(group), context_(context) {
    // Named once, without copies: the rules ask many times.
    static const std::string kNone;
    if (group.size() > kInlineReasons) {
      more_reasons_.resize(group.size());
      reasons_ = more_reasons_.data();
    }
    size_t i = 0;
    for (const TcpEvent& e : group) {
      const std::string* name = e.kind == EventKind::ResetSent ? unnamed_reset(context.names, e) : &kNone;
      if (e.reason) {
        const EnumNames& table = e.kind == EventKind::Drop ? context.names.drop_reasons : context.names.reset_reasons;
        name = table.find(*e.reason);
        if (!name) {  // a value this kernel's BTF does not name: "reason 93"
          if (unnamed_.capacity() == 0) unnamed_.reserve(group.size());  // pointers into it stay valid
          unnamed_.push_back(*reason_name(context.names, e));
          name = &unnamed_.back();
        }
      }
      reasons_[i++] = name;
    }
  }
  Judge(const Judge&) = delete;
  Judge& operator=(const Judge&) = delete;

  // A sent reset without a reason (before 6.10): what its hook and socket say
  // it was, in words, for the details' "(REASON)" (an empty "()" before).
  static const std::string* unnamed_reset(const KernelNames& names, const TcpEvent& e) {
    static const std::string kByCloser = "no reason on this kernel: the closing process's abort";
    static const std::string kStack = "no reason on this kernel: a reset by the TCP stack";
    static const std::string kTimeWait = "no reason on this kernel: a TIME_WAIT socket's reset";
    static const std::string kOther = "no reason on this kernel";
    if (e.sent_by_closer) return &kByCloser;
    if (e.full_socket) return &kStack;
    const std::string* state = e.tcp_state ? names.tcp_states.find(*e.tcp_state) : nullptr;
    return state && *state == "TIME_WAIT" ? &kTimeWait : &kOther;
  }

  std::optional<Attribution> run() {
    if (auto report = firewall()) return report;
    if (auto report = no_listener()) return report;
    if (auto report = closed_by_owner()) return report;
    if (auto report = stack_reset()) return report;
    if (auto report = peer_reset()) return report;
    if (only_teardown_drops()) return std::nullopt;
    if (auto report = kernel_drop()) return report;
    return make(group_.front(), Verdict::Unknown, "no rule matched: " + describe_evidence(context_.names, group_.front()));
  }

  // Drops that every normal connection may see (data queued at close,
  // duplicate or old segments): not a failure of the connection.
  bool only_teardown_drops() const {
    return std::all_of(group_.begin(), group_.end(), [&](const TcpEvent& e) {
      if (e.kind != EventKind::Drop || is_syn(e) || e.listen_overflow) return false;
      static const char* const failures[] = {"TCP_LISTEN_OVERFLOW", "TCP_REQQFULLDROP", "SOCKET_BACKLOG",
                                             "SOCKET_RCVBUFF",      "PROTO_MEM",        "TCP_RFC7323_PAWS",
                                             "TCP_INVALID_SEQUENCE", "TCP_INVALID_ACK_SEQUENCE", "TCP_MD5",
                                             "TCP_AO",              "XFRM",             "TCP_ABORT_ON_DATA"};
      const std::string name = reason(e);
      return std::none_of(std::begin(failures), std::end(failures),
                          [&](const char* failure) { return name.rfind(failure, 0) == 0; });
    });
  }

 private:
  const std::string& reason(const TcpEvent& e) const { return *reasons_[static_cast<size_t>(&e - group_.data())]; }
  std::string_view reason_or_none(const TcpEvent& e) const {
    return e.reason ? std::string_view(reason(e)) : std::string_view("no reason given");
  }
  bool reason_is(const TcpEvent& e, std::string_view name) const { return reason(e) == name; }
  bool state_is(const TcpEvent& e, std::string_view name) const {
    if (!e.tcp_state) return false;
    if (const std::string* known = context_.names.tcp_states.find(*e.tcp_state)) return *known == name;
    return state_name(context_.names, e) == name;
  }
  bool watched(uint16_t port) const { return context_.watched_ports.count(port) != 0; }
  std::string local(const TcpEvent& e) const { return format_endpoint(e.family, e.local); }
  std::string remote(const TcpEvent& e) const { return format_endpoint(e.family, e.remote); }

  Attribution make(const TcpEvent& decisive, Verdict verdict, std::string detail) const {
    return Attribution{decisive, verdict, std::move(detail), static_cast<uint32_t>(group_.size())};
  }

  // The event to show: the one the rule rests on, seen from the watched end
  // when both ends are on this host.
  template <typename Predicate>
  const TcpEvent* find(Predicate predicate) const {
    const TcpEvent* fallback = nullptr;
    for (const TcpEvent& e : group_) {
      if (!predicate(e)) continue;
      if (watched(e.local.port)) return &e;
      if (!fallback) fallback = &e;
    }
    return fallback;
  }

  // netfilter dropped packets of this connection (NETFILTER_DROP).
  std::optional<Attribution> firewall() const {
    const TcpEvent* drop = find([&](const TcpEvent& e) { return e.kind == EventKind::Drop && reason_is(e, "NETFILTER_DROP"); });
    if (!drop) return std::nullopt;
    const auto drops = std::count_if(group_.begin(), group_.end(), [&](const TcpEvent& e) {
      return e.kind == EventKind::Drop && reason_is(e, "NETFILTER_DROP");
    });
    // REJECT --reject-with tcp-reset: netfilter answers with its own RST,
    // which only a local client socket shows (received in SYN_SENT; or, for
    // a ban that cut an established connection, at the client's end of it).
    const bool client_reset = std::any_of(group_.begin(), group_.end(), [&](const TcpEvent& e) {
      return e.kind == EventKind::ResetReceived &&
             (state_is(e, "SYN_SENT") || (!is_syn(*drop) && drop->ingress && e.local == drop->remote));
    });
    const std::string hook = !drop->ingress ? "output" : drop->routed ? "input" : "prerouting";
    std::string what = is_syn(*drop) ? "the SYN" : "packets";
    std::string detail = cat("netfilter dropped ", what, drop->ingress ? " from " : " to ", remote(*drop), " at the ", hook,
                             " hook (NETFILTER_DROP, ", plural(drops, "packet"), ")");
    Attribution report = make(*drop, Verdict::Firewall, "");
    report.netfilter_hook = hook;
    if (client_reset) {
      report.peer_saw = "reset";
      detail += "; the client got a reset from the firewall (REJECT with tcp-reset)";
    } else if (drops > 1 && is_syn(*drop)) {
      report.peer_saw = "silence";
      detail += "; the client retransmitted: a silent DROP, the client times out";
    } else if (is_syn(*drop)) {
      detail += "; no retransmission within 1.3 s: a REJECT answers with a reset or ICMP, else the client gave up";
    }
    report.detail = detail;
    return report;
  }

  // A SYN found no socket: nothing listens on the port.
  std::optional<Attribution> no_listener() const {
    const TcpEvent* reset = find([&](const TcpEvent& e) {
      return e.kind == EventKind::ResetSent && !e.sock_id && reason_is(e, "NO_SOCKET");
    });
    if (!reset) {
      // Kernels before 6.10 give no reason: a reset for a SYN with no socket.
      reset = find([&](const TcpEvent& e) { return e.kind == EventKind::ResetSent && !e.sock_id && !e.reason && is_syn(e); });
    }
    if (!reset) {
      // Before 6.10 tcp:tcp_send_reset does not fire without a socket; the
      // SYN's drop (NO_SOCKET, 5.17+) is then the evidence, and the kernel
      // answers such a SYN with a reset (TcpOutRsts counts it).
      const TcpEvent* drop = find([&](const TcpEvent& e) {
        return e.kind == EventKind::Drop && e.ingress && reason_is(e, "NO_SOCKET") && is_syn(e);
      });
      if (!drop) return std::nullopt;
      Attribution report = make(*drop, Verdict::NoListener,
                           cat("nothing listens on ", local(*drop), " (sshd down or restarting): the SYN from ",
                               remote(*drop), " found no socket (NO_SOCKET) and the kernel refused it with a reset"));
      report.peer_saw = "reset";
      return report;
    }
    if (is_syn(*reset)) {
      Attribution report = make(*reset, Verdict::NoListener,
                           cat("nothing listens on ", local(*reset), " (sshd down or restarting): the kernel refused the SYN from ",
                               remote(*reset), " with a reset (", reason_or_none(*reset), ")"));
      report.peer_saw = "reset";
      return report;
    }
    Attribution report = make(*reset, Verdict::Kernel,
                         cat("a segment from ", remote(*reset), " matched no socket (NO_SOCKET): the connection no longer ",
                             "exists here (closed, timed out, or its process restarted)"));
    report.peer_saw = "reset";
    return report;
  }

  // The owning process closed or aborted the connection itself: the rules
  // below, in this order, say why.
  std::optional<Attribution> closed_by_owner() const {
    const TcpEvent* reset = owner_reset();
    if (!reset) return std::nullopt;
    const TcpEvent& e = *reset;
    if (auto report = client_gave_up(e)) return report;
    if (auto report = wrappers_refused(e)) return report;
    if (auto report = wrappers_twisted(e)) return report;
    if (!is_sshd_family(e.owner->comm)) return not_sshd(e);
    if (auto report = child_killed(e)) return report;
    if (auto report = listener_refused(e)) return report;
    if (auto report = listener_closed_unaccepted(e)) return report;
    if (auto report = login_grace_then_data(e)) return report;
    if (auto report = login_grace_expired(e)) return report;
    if (auto report = garbage_banner(e)) return report;
    return sshd_closed(e);
  }

  // The reset its owner's close() or exit sent.
  const TcpEvent* owner_reset() const {
    return find([&](const TcpEvent& e) {
      // Before 6.10 there is no reason: the kprobe's active resets and the stack's
      // reset of data arriving after close (ABORT_ON_DATA) come without one.
      return e.kind == EventKind::ResetSent && e.owner && e.owner_source == OwnerSource::Close &&
             (reason_is(e, "TCP_ABORT_ON_CLOSE") || reason_is(e, "TCP_ABORT_ON_DATA") || reason_is(e, "TCP_STATE") ||
              reason_is(e, "TCP_DISCONNECT_WITH_DATA") || (!e.reason && (e.sent_by_closer || e.full_socket)));
    });
  }

  // A report on the owner's reset: the client got it.
  Attribution owner_report(const TcpEvent& e, Verdict verdict, std::string detail) const {
    Attribution report = make(e, verdict, std::move(detail));
    report.peer_saw = "reset";
    return report;
  }

  // The closing end is the client of the watched port: the peer gave up.
  std::optional<Attribution> client_gave_up(const TcpEvent& e) const {
    if (watched(e.local.port) || !watched(e.remote.port)) return std::nullopt;
    // Both ends on this host: show the watched end, which received it.
    const TcpEvent* server_side = find([&](const TcpEvent& other) {
      return other.kind == EventKind::ResetReceived && watched(other.local.port);
    });
    return make(server_side ? *server_side : e, Verdict::Peer,
                "the client " + process_text(*e.owner) + " at " + local(e) + " aborted the connection to " + remote(e) +
                    " (" + reason(e) + ")");
  }

  // The owner read the wrapper files, sent nothing and closed: libwrap refused.
  std::optional<Attribution> wrappers_refused(const TcpEvent& e) const {
    const Process& owner = *e.owner;
    const uint64_t from = e.acceptor_monotonic_ns ? e.acceptor_monotonic_ns
                                                  : (e.monotonic_ns > kWrapperLookback ? e.monotonic_ns - kWrapperLookback : 0);
    const auto check = context_.evidence.wrapper_check(owner.pid, from, e.monotonic_ns);
    // bytes_acked counts the SYN on an active open: at most 1 means nothing sent.
    if (!check || e.bytes_acked > 1) return std::nullopt;
    const char* files = wrapper_files(*check);
    Attribution report = owner_report(e, Verdict::TcpWrappers,
                                 process_text(owner) + " read " + files + ", sent nothing, and " + how_closed(e) + " " +
                                     describe_seconds(e.monotonic_ns - check->last_ns) + " later: TCP wrappers refused " +
                                     remote(e) + " (" + reason(e) + ")");
    report.wrapper_mnt_ns = check->mnt_ns;
    report.wrapper_pid = owner.pid;
    return report;
  }

  // hosts_options(5) twist: libwrap, having read the wrapper files, replaces
  // sshd's process by the shell command (same pid, a new name), whose output
  // goes to the client; its exit closes the connection.
  std::optional<Attribution> wrappers_twisted(const TcpEvent& e) const {
    const Process& owner = *e.owner;
    if (is_sshd_family(owner.comm) || !e.acceptor_pid || e.acceptor_pid == owner.pid) return std::nullopt;
    const auto check = context_.evidence.wrapper_check(owner.pid, e.acceptor_monotonic_ns, e.monotonic_ns);
    if (!check) return std::nullopt;
    Attribution report = owner_report(
        e, Verdict::TcpWrappers,
        "the sshd child " + std::to_string(owner.pid) + " read " + wrapper_files(*check) + ", then became " +
            process_text(owner) + " (a hosts_options twist command), which answered the client (" +
            plural(e.bytes_acked > 1 ? e.bytes_acked - 1 : 0, "byte") + " acknowledged) and " + how_closed(e) + " " +
            describe_seconds(e.monotonic_ns - check->last_ns) + " later: TCP wrappers refused " +
            remote(e) + " with twist (" + reason(e) + ")");
    report.wrapper_mnt_ns = check->mnt_ns;
    report.wrapper_pid = owner.pid;
    return report;
  }

  static const char* wrapper_files(const WrapperCheck& check) {
    return check.hosts_allow && check.hosts_deny ? "/etc/hosts.allow and /etc/hosts.deny"
           : check.hosts_deny                    ? "/etc/hosts.deny"
                                                 : "/etc/hosts.allow";
  }

  // A process that is not sshd closed it: no sshd rule applies.
  Attribution not_sshd(const TcpEvent& e) const {
    return owner_report(e, Verdict::Unknown,
                        "the local process " + process_text(*e.owner) + " on " + local(e) + " " + how_closed(e) + " (" +
                            reason(e) + ", " + plural(e.unread_bytes, "unread byte") + "); it is not sshd");
  }

  // The listener itself closed an accepted connection: MaxStartups or
  // PerSourcePenalties, told apart by the connections rsttrace saw.
  std::optional<Attribution> listener_refused(const TcpEvent& e) const {
    if (!e.acceptor_pid || e.acceptor_pid != e.owner->pid) return std::nullopt;
    return listener_refusal(e, *e.owner, e.acceptor_monotonic_ns, e.sock_id,
                            "the listening " + process_text(*e.owner) + " closed the connection from " + remote(e) + " " +
                                describe_seconds(e.monotonic_ns - e.acceptor_monotonic_ns) +
                                " after accept(), before any child took it (" + reason(e) + "): ");
  }

  // The same refusal, seen only after the close was acknowledged: the
  // listener closed the connection before the client's banner came, its
  // orphan went to TIME_WAIT at the FIN's ACK, and the banner met that
  // socket's reset (on 6.1 the fexit's, under load in the guest: the
  // client's data comes late). The connection notes of the four-tuple say
  // the listener accepted it and closed it itself.
  std::optional<Attribution> listener_refused_then_late_segment(const TcpEvent& reset) const {
    const SeenConnection* seen = ended_before(reset);
    if (!seen || !seen->closer || !seen->acceptor_pid || seen->closer->pid != seen->acceptor_pid ||
        !is_sshd_family(seen->closer->comm) || !seen->server_closed_first() || seen->closed_ns < seen->accepted_ns)
      return std::nullopt;
    return listener_refusal(reset, *seen->closer, seen->accepted_ns, seen->sock_id,
                            "the listening " + process_text(*seen->closer) + " closed the connection from " +
                                remote(reset) + " " + describe_seconds(seen->closed_ns - seen->accepted_ns) +
                                " after accept(), before any child took it; the client's data came after that close "
                                "was acknowledged, and the closed socket reset it (" +
                                reason_words("TCP_TIMEWAIT_SOCKET") + "): ");
  }

  // MaxStartups or PerSourcePenalties, told apart by the connections rsttrace saw.
  Attribution listener_refusal(const TcpEvent& shown, const Process& listener, uint64_t accepted_ns, uint64_t sock_id,
                               std::string said_before) const {
    const ConnectionHistory& history = context_.evidence.connections();
    ListenerRefusal refusal;
    refusal.refused_ns = accepted_ns;
    refusal.open_connections = history.open_at(shown.netns, listener.pid, accepted_ns, sock_id);
    refusal.earlier = history.ended_from(shown.netns, shown.family, shown.remote.addr,
                                         accepted_ns > kPenaltyWindow ? accepted_ns - kPenaltyWindow : 0, accepted_ns);
    refusal.source = format_address(shown.family, shown.remote.addr);
    refusal.listener_pid = listener.pid;
    refusal.said_before = std::move(said_before);
    // OpenSSH's defaults until the provenance worker has this sshd's own (sshd -T, through the broker).
    Attribution report = owner_report(shown, Verdict::Sshd, refusal.said_before + listener_refusal_cause(refusal, {}));
    report.sshd_refusal = std::move(refusal);
    report.needs_provenance = true;
    return report;
  }

  // The owner was killed by a signal (task->exit_code: the signal in the low
  // 7 bits). Checked before the listener rule: a killed listener refused nothing.
  std::optional<Attribution> child_killed(const TcpEvent& e) const {
    if (!e.owner_exiting || !(e.owner_exit_code & 0x7f)) return std::nullopt;
    if (e.acceptor_pid && e.acceptor_pid == e.owner->pid)
      return owner_report(e, Verdict::Sshd,
                          "the listening " + process_text(*e.owner) + " " + how_closed(e) +
                              " holding the connection from " + remote(e) + ", accepted " +
                              describe_seconds(e.monotonic_ns - e.acceptor_monotonic_ns) + " before (" + reason(e) + ")");
    if (auto report = listener_closed_unaccepted(e)) return report;
    return owner_report(e, Verdict::Sshd,
                        "the sshd child " + process_text(*e.owner) + " " + how_closed(e) + " holding the connection from " +
                            remote(e) + " (" + reason(e) + ")");
  }

  // A connection still in the accept queue when its listener closed or died:
  // the kernel's listen-stop (inet_csk_listen_stop) disconnects each queued
  // child (TCP_STATE) in the closing process; no accept() of it was seen.
  // Before 6.10 there is no reason: the closer's own reset (the kprobe) stands for it.
  std::optional<Attribution> listener_closed_unaccepted(const TcpEvent& e) const {
    const bool disconnected = reason_is(e, "TCP_STATE") || (!e.reason && e.sent_by_closer);
    if (e.acceptor_pid || !disconnected || !watched(e.local.port)) return std::nullopt;
    return owner_report(e, Verdict::Sshd,
                        "the listening " + process_text(*e.owner) + " " + how_closed(e) + " with the connection from " +
                            remote(e) + " still in its accept queue (no accept() of it was seen): the kernel reset it (" +
                            std::string(reason_or_none(e)) + ")");
  }

  std::optional<Attribution> login_grace_expired(const TcpEvent& e) const {
    if (!e.acceptor_monotonic_ns || e.monotonic_ns - e.acceptor_monotonic_ns < kLoginGraceTime) return std::nullopt;
    return owner_report(e, Verdict::Sshd,
                        "the sshd child " + process_text(*e.owner) + " " + how_closed(e) + " " +
                            describe_seconds(e.monotonic_ns - e.acceptor_monotonic_ns) + " after accept: LoginGraceTime expired for " +
                            remote(e) + " (" + reason(e) + ")");
  }

  // The pre-auth child left client data unread: not SSH, or a bad banner.
  std::optional<Attribution> garbage_banner(const TcpEvent& e) const {
    if (e.bytes_received == 0 || (e.unread_bytes == 0 && !reason_is(e, "TCP_ABORT_ON_DATA"))) return std::nullopt;
    return owner_report(e, Verdict::Sshd,
                        "the pre-auth sshd child " + process_text(*e.owner) + " " + how_closed(e) +
                            " with client data unread (" + plural(e.bytes_received, "byte") + " received, " +
                            std::to_string(e.unread_bytes) + " unread" + "): protocol mismatch or a garbage banner from " +
                            remote(e) + " (" + reason(e) + ")");
  }

  // None of the above: the child closed it (authentication failed, the client left, ...).
  Attribution sshd_closed(const TcpEvent& e) const {
    return owner_report(e, Verdict::Sshd,
                        process_text(*e.owner) + " " + closing_words(e.owner_exiting, e.owner_exit_code) +
                            " the connection from " + remote(e) + " (" +
                            reason(e) + ", " + plural(e.bytes_received, "byte") + " received, " +
                            plural(e.bytes_acked, "byte") + " sent)");
  }

  // task->exit_code: a signal in bits 0-6 (bit 7: core dumped), else the exit status in bits 8-15.
  static std::string how_closed(const TcpEvent& e) {
    if (!e.owner_exiting) return "closed it";
    return exit_words(e.owner_exit_code);
  }
  // "closed", or "exited (status 1), which closed": before "the connection".
  static std::string closing_words(bool exiting, uint32_t exit_code) {
    return exiting ? exit_words(exit_code) + ", which closed" : "closed";
  }

  // A TIME_WAIT socket's reset (before 6.10 it has no reason: its state says it).
  bool time_wait_reset(const TcpEvent& e) const {
    return reason_is(e, "TCP_TIMEWAIT_SOCKET") || (!e.reason && state_is(e, "TIME_WAIT"));
  }

  // The connection notes of the connection `reset` answered for, once it had ended.
  const SeenConnection* ended_before(const TcpEvent& reset) const {
    return context_.evidence.connections().ended_before(reset.netns, reset.family, reset.remote, reset.local.port,
                                                        reset.monotonic_ns);
  }

  // The TCP stack reset the connection for a protocol reason of its own.
  std::optional<Attribution> stack_reset() const {
    const TcpEvent* reset = find([&](const TcpEvent& e) {
      return e.kind == EventKind::ResetSent && e.reason && !reason_is(e, "NOT_SPECIFIED");
    });
    if (const TcpEvent* late = find([&](const TcpEvent& e) { return e.kind == EventKind::ResetSent && time_wait_reset(e); })) {
      if (auto report = listener_refused_then_late_segment(*late)) return report;
      if (auto report = login_grace_then_late_segment(*late)) return report;
    }
    if (!reset) return std::nullopt;
    std::string detail = "the kernel reset the connection with " + remote(*reset) + ": " + reason_words(reason(*reset));
    TcpEvent shown = *reset;  // a copy: reason() and friends take group_'s events only
    if (shown.owner) {
      detail += "; socket of " + process_text(*shown.owner);
    } else if (const SeenConnection* seen = time_wait_reset(*reset) ? ended_before(*reset) : nullptr;
               seen && seen->closer) {
      // A TIME_WAIT socket is a new, ownerless one: the process is the one that closed the
      // connection, in its notes (when the FIN's ACK came after close() returned).
      shown.owner = seen->closer;
      shown.owner_source = OwnerSource::Close;
      // Whether the peer's late segment meets the closed full socket (FIN_WAIT2:
      // not_sshd) or its TIME_WAIT successor is a race of the kernel's: one verdict.
      // (Only a connection the server closed first leaves it a TIME_WAIT socket.)
      if (seen->server_closed_first()) {
        const std::string late = "a later segment from " + remote(shown) + " met its TIME_WAIT socket (" + reason(*reset) + ")";
        if (!is_sshd_family(shown.owner->comm))
          return owner_report(shown, Verdict::Unknown,
                              "the local process " + process_text(*shown.owner) + " on " + local(shown) +
                                  " had closed it; " + late + "; it is not sshd");
        // sshd closed it for a reason none of the sshd rules above names: as sshd_closed.
        return owner_report(shown, Verdict::Sshd,
                            process_text(*shown.owner) + " " + closing_words(seen->closer_exiting, seen->closer_exit_code) +
                                " the connection (" + plural(seen->bytes_received, "byte") + " received, " +
                                plural(seen->bytes_acked, "byte") + " sent) " +
                                describe_seconds(reset->monotonic_ns - seen->closed_ns) + " before " + late);
      }
      detail += "; " + process_text(*shown.owner) + " had closed it";
    }
    Attribution report = make(shown, Verdict::Kernel, detail);
    report.peer_saw = "reset";
    return report;
  }

  // The client wrote into a connection sshd had closed when its LoginGraceTime
  // ran out: the socket, in TIME_WAIT, answered with a reset. Why sshd closed
  // it is in the connection notes of that four-tuple (who closed it, when
  // after accept(), how it exited, what the client had sent).
  std::optional<Attribution> login_grace_then_late_segment(const TcpEvent& reset) const {
    const SeenConnection* seen = ended_before(reset);
    if (!seen || !seen->closer || !is_sshd_family(seen->closer->comm)) return std::nullopt;
    return login_grace_report(reset, *seen, reason_words("TCP_TIMEWAIT_SOCKET"));
  }

  // The same, when the closed socket was still a full one (FIN_WAIT2, not yet
  // TIME_WAIT: its owner held it when the FIN's ACK came, as on loopback): the
  // client's data met it (TCP_ABORT_ON_DATA), and the reset carries the owner's close.
  std::optional<Attribution> login_grace_then_data(const TcpEvent& e) const {
    // Before 6.10: no reason, a stack reset (not the closer's own) on the full socket.
    const bool data_after_close = reason_is(e, "TCP_ABORT_ON_DATA") || (!e.reason && e.full_socket && !e.sent_by_closer);
    if (!data_after_close || !e.acceptor_monotonic_ns || e.owner_monotonic_ns < e.acceptor_monotonic_ns)
      return std::nullopt;
    SeenConnection seen;
    seen.acceptor_pid = e.acceptor_pid;
    seen.accepted_ns = e.acceptor_monotonic_ns;
    seen.closed_ns = e.owner_monotonic_ns;
    seen.left_state = 5;  // FIN_WAIT2: the owner closed with nothing unread, and data came after
    seen.closer = e.owner;
    seen.closer_exiting = e.owner_exiting;
    seen.closer_exit_code = e.owner_exit_code;
    seen.bytes_received = e.bytes_received;
    return login_grace_report(e, seen, "data arrived after the close (TCP_ABORT_ON_DATA)");
  }

  std::optional<Attribution> login_grace_report(const TcpEvent& reset, const SeenConnection& seen,
                                                const std::string& later) const {
    const auto grace = login_grace_expiry(seen);
    if (!grace) return std::nullopt;
    LoginGraceNote note{.grace = *grace, .listener_pid = seen.acceptor_pid,
                        .said_before = cat("sshd closed the connection from ", remote(reset), " when its LoginGraceTime ("),
                        .said_after = cat(") ran out (", grace->evidence,
                                          "); the later reset came from the closed socket: ", later, ", ",
                                          describe_seconds(reset.monotonic_ns > seen.closed_ns ? reset.monotonic_ns - seen.closed_ns : 0),
                                          " after the close")};
    Attribution report =
        owner_report(reset, Verdict::Sshd, note.said_before + login_grace_words(*grace, nullptr) + note.said_after);
    if (note.listener_pid) {
      report.login_grace = std::move(note);
      report.needs_provenance = true;
    }
    return report;
  }

  // A reset came from the other end. A received reset on the same socket as
  // one sent is the kernel's own abort (tcp_reset() runs for both), not the peer's.
  std::optional<Attribution> peer_reset() const {
    const TcpEvent* received = find([&](const TcpEvent& e) {
      if (e.kind != EventKind::ResetReceived) return false;
      return std::none_of(group_.begin(), group_.end(), [&](const TcpEvent& other) {
        return other.kind == EventKind::ResetSent && other.sock_id == e.sock_id;
      });
    });
    if (!received) return std::nullopt;
    std::string detail = "the peer " + remote(*received) + " sent a reset to " + local(*received);
    if (auto state = state_name(context_.names, *received)) detail += " in " + *state;
    if (received->owner) detail += " (socket of " + process_text(*received->owner) + ")";
    return make(*received, Verdict::Peer, detail);
  }

  // Packets dropped for a reason of the kernel's own.
  std::optional<Attribution> kernel_drop() const {
    // Before 6.15 the fexit on tcp_check_req names a full accept queue's drop (no reason).
    if (const TcpEvent* overflow = find([](const TcpEvent& e) { return e.kind == EventKind::Drop && e.listen_overflow; }))
      return accept_queue_full(*overflow);
    const TcpEvent* drop = find([](const TcpEvent& e) { return e.kind == EventKind::Drop; });
    if (!drop) return std::nullopt;
    const std::string name = reason(*drop).empty() ? "no reason given" : reason(*drop);
    if (name == "TCP_LISTEN_OVERFLOW" && drop->tcp_state && state_is(*drop, "LISTEN")) return accept_queue_full(*drop);
    return make(*drop, Verdict::Kernel, "the kernel dropped " + plural(group_.size(), "packet") + " of the connection with " +
                                     remote(*drop) + ": " + reason_words(name));
  }

  // The listener's accept queue was full (kfree_skb TCP_LISTEN_OVERFLOW on
  // the listening socket, 6.15+; before, the fexit on tcp_check_req: no
  // socket, a listen drop counted inside, a full queue): its owner did not accept() (stopped,
  // stuck or too slow). The client's ACK was dropped: it believes it is connected.
  Attribution accept_queue_full(const TcpEvent& drop) const {
    std::string who = drop.owner ? process_text(*drop.owner) : std::string("the listener");
    std::string detail = cat("the accept queue of ", who, " on ", local(drop), " was full (",
                             std::to_string(drop.accept_queue), " waiting, backlog ", std::to_string(drop.listen_backlog),
                             "): it was not accepting connections (stopped, stuck or too slow), and the kernel dropped ",
                             plural(group_.size(), "packet"), " from ", remote(drop),
                             drop.listen_overflow && !drop.reason
                                 ? " (no drop reason on this kernel: tcp_check_req found the queue full; nstat "
                                   "TcpExtListenOverflows)"
                                 : " (TCP_LISTEN_OVERFLOW; nstat TcpExtListenOverflows)");
    return make(drop, Verdict::Kernel, std::move(detail));
  }

  // "words (NAME)", or the name alone where there are no words for it.
  static std::string reason_words(const std::string& name) {
    const std::string phrase = kernel_reason_phrase(name);
    return phrase == name ? name : phrase + " (" + name + ")";
  }

  static std::string kernel_reason_phrase(const std::string& reason) {
    static const std::pair<const char*, const char*> phrases[] = {
        {"TCP_INVALID_ACK_SEQUENCE", "an ACK for data never sent"},
        {"TCP_RFC7323_PAWS", "a segment with an old timestamp (PAWS)"},
        {"TCP_TOO_OLD_ACK", "an ACK too old to be valid"},
        {"TCP_ACK_UNSENT_DATA", "an ACK for unsent data"},
        {"TCP_FLAGS", "a segment with invalid flags"},
        {"TCP_OLD_ACK", "an old ACK"},
        {"TCP_TIMEWAIT_SOCKET", "a segment for a connection in TIME_WAIT"},
        {"INVALID_SYN", "an invalid SYN"},
        {"TCP_ABORT_ON_MEMORY", "memory pressure (too many orphaned sockets, or out of socket memory)"},
        {"TCP_KEEPALIVE_TIMEOUT", "keepalive probes went unanswered"},
        {"TCP_ABORT_ON_LINGER", "the FIN_WAIT2 timeout of an orphaned socket"},
        {"TCP_LISTEN_OVERFLOW", "the accept queue was full: the listener does not accept fast enough"},
        {"TCP_STATE", "a segment the socket's state does not allow"},
        {"NO_SOCKET", "no socket for it"},
        {"IP_RPFILTER", "reverse-path filtering (rp_filter): the route back to the source leaves by another interface"},
        {"TCP_REQQFULLDROP", "the SYN queue was full and SYN cookies are off"},
        {"SOCKET_BACKLOG", "the socket's backlog was full (its owner held the socket lock too long)"},
        {"SOCKET_RCVBUFF", "the socket's receive buffer was full"},
        {"PROTO_MEM", "TCP's memory limit (tcp_mem) was reached"},
    };
    for (const auto& [name, phrase] : phrases)
      if (reason == name) return phrase;
    return reason;
  }

  const Group& group_;
  const RuleContext& context_;
  // Parallel to group_: names in context_.names, or in unnamed_. Groups are
  // small (a reset seen from both ends and a drop): no allocation for them.
  static constexpr size_t kInlineReasons = 8;
  const std::string* inline_reasons_[kInlineReasons];
  std::vector<const std::string*> more_reasons_;
  const std::string** reasons_ = inline_reasons_;
  std::vector<std::string> unnamed_;
};

}  // namespace

std::string exit_words(uint32_t exit_code) {
  if (const int signal = static_cast<int>(exit_code & 0x7f)) {
    const char* name = sigabbrev_np(signal);
    return std::string("was killed by ") + (name ? std::string("SIG") + name : "signal " + std::to_string(signal)) +
           ((exit_code & 0x80) ? " (core dumped)" : "");
  }
  return "exited (status " + std::to_string((exit_code >> 8) & 0xff) + ")";
}

bool is_sshd_family(const std::string& comm) {
  return comm == "sshd" || comm == "sshd-session" || comm == "sshd-auth" || comm.rfind("sshd:", 0) == 0;
}

std::optional<Attribution> judge(const std::vector<TcpEvent>& group, const RuleContext& context) {
  return Judge(group, context).run();
}

}  // namespace rsttrace
