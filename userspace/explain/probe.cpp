#include "explain/probe.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

#include "error.h"
#include "explain/probe_listener.h"
#include "fd.h"
#include "privsep/safe_access.h"
#include "provenance/command.h"
#include "provenance/firewall.h"
#include "provenance/provenance.h"
#include "text/escape.h"

namespace rsttrace::explain {
namespace {

std::string read_small(const std::string& path, size_t max = 1 << 20) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd) return "";
  std::string text;
  char buffer[8192];
  ssize_t n = 0;
  while (text.size() < max && (n = read(fd.get(), buffer, sizeof(buffer))) > 0) text.append(buffer, static_cast<size_t>(n));
  return text;
}

int read_int(const std::string& path) {
  const std::string text = read_small(path, 64);
  return text.empty() ? -1 : std::atoi(text.c_str());
}

// RTM_GETROUTE for the client's address, in the namespace entered.
RoutingFacts read_route(const ClientAddress& client) {
  RoutingFacts facts;
  Fd sock(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!sock) {
    facts.error = "failed to open a netlink socket: " + errno_text(errno);
    return facts;
  }
  struct {
    nlmsghdr header;
    rtmsg route;
    char attributes[64];
  } request{};
  const size_t addr_size = client.family == 6 ? 16 : 4;
  request.header.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
  request.header.nlmsg_type = RTM_GETROUTE;
  request.header.nlmsg_flags = NLM_F_REQUEST;
  request.header.nlmsg_seq = 1;
  request.route.rtm_family = client.family == 6 ? AF_INET6 : AF_INET;
  request.route.rtm_dst_len = static_cast<unsigned char>(addr_size * 8);
  auto* attribute = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(&request) + NLMSG_ALIGN(request.header.nlmsg_len));
  attribute->rta_type = RTA_DST;
  attribute->rta_len = static_cast<unsigned short>(RTA_LENGTH(addr_size));
  std::memcpy(RTA_DATA(attribute), client.addr.data(), addr_size);
  request.header.nlmsg_len = NLMSG_ALIGN(request.header.nlmsg_len) + RTA_ALIGN(attribute->rta_len);
  if (send(sock.get(), &request, request.header.nlmsg_len, 0) < 0) {
    facts.error = "failed to ask the route: " + errno_text(errno);
    return facts;
  }
  alignas(nlmsghdr) char reply[8192];
  const ssize_t n = recv(sock.get(), reply, sizeof(reply), 0);
  if (n < static_cast<ssize_t>(sizeof(nlmsghdr))) {
    facts.error = "failed to read the route: " + errno_text(errno);
    return facts;
  }
  auto* header = reinterpret_cast<nlmsghdr*>(reply);
  if (!NLMSG_OK(header, static_cast<unsigned>(n))) {
    facts.error = "failed to read the route: a short answer";
    return facts;
  }
  if (header->nlmsg_type == NLMSG_ERROR) {
    const auto* error = reinterpret_cast<nlmsgerr*>(NLMSG_DATA(header));
    facts.known = true;
    facts.route_type = "unreachable: " + errno_text(-error->error);
    return facts;
  }
  const auto* route = reinterpret_cast<rtmsg*>(NLMSG_DATA(header));
  facts.known = true;
  switch (route->rtm_type) {
    case RTN_UNICAST: facts.route_type = "unicast"; break;
    case RTN_LOCAL: facts.route_type = "local"; break;
    case RTN_UNREACHABLE: facts.route_type = "unreachable"; break;
    case RTN_BLACKHOLE: facts.route_type = "blackhole"; break;
    case RTN_PROHIBIT: facts.route_type = "prohibit"; break;
    default: facts.route_type = "type " + std::to_string(route->rtm_type); break;
  }
  int length = static_cast<int>(RTM_PAYLOAD(header));
  for (auto* a = RTM_RTA(route); RTA_OK(a, length); a = RTA_NEXT(a, length)) {
    if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) >= sizeof(int)) {
      int index = 0;
      std::memcpy(&index, RTA_DATA(a), sizeof(index));
      char name[IF_NAMESIZE] = {};
      facts.reply_interface = if_indextoname(static_cast<unsigned>(index), name) ? name : "if" + std::to_string(index);
    } else if (a->rta_type == RTA_PREFSRC && RTA_PAYLOAD(a) >= addr_size) {
      std::array<uint8_t, 16> source{};
      std::memcpy(source.data(), RTA_DATA(a), addr_size);
      facts.local_address = format_address(client.family, source);
    }
  }
  if (client.family == 4) {
    facts.rp_filter_all = read_int("/proc/sys/net/ipv4/conf/all/rp_filter");
    // An interface name is the kernel's (IFNAMSIZ, no '/'), from the lookup above.
    if (!facts.reply_interface.empty() && facts.reply_interface.find('/') == std::string::npos)
      facts.rp_filter_interface = read_int("/proc/sys/net/ipv4/conf/" + facts.reply_interface + "/rp_filter");
  }
  return facts;
}

std::string readlink_text(const std::string& path) {
  char buffer[256];
  const ssize_t n = readlink(path.c_str(), buffer, sizeof(buffer));
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
}

// Every process holding socket `inode` (/proc/*/fd/*: "socket:[INODE]").
std::vector<uint32_t> holders_of(uint64_t inode) {
  std::vector<uint32_t> pids;
  const std::string wanted = "socket:[" + std::to_string(inode) + "]";
  DIR* proc = opendir("/proc");
  if (!proc) return pids;
  while (dirent* entry = readdir(proc)) {
    if (entry->d_name[0] < '1' || entry->d_name[0] > '9') continue;
    const std::string fd_dir = std::string("/proc/") + entry->d_name + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (!fds) continue;
    while (dirent* fd = readdir(fds)) {
      if (fd->d_name[0] == '.') continue;
      if (readlink_text(fd_dir + "/" + fd->d_name) == wanted) {
        pids.push_back(static_cast<uint32_t>(std::strtoul(entry->d_name, nullptr, 10)));
        break;
      }
    }
    closedir(fds);
    if (pids.size() >= 64) break;  // a reuseport group or a forking server: enough to name them
  }
  closedir(proc);
  return pids;
}

// Does this sshd (or the session binary it runs per connection) call libwrap?
void find_libwrap(ListenerProcess& process) {
  const std::string maps = read_small("/proc/" + std::to_string(process.pid) + "/maps", 4 << 20);
  if (maps.empty()) {
    process.libwrap_evidence = "its memory maps could not be read: libwrap assumed";
    return;
  }
  if (maps.find("libwrap.so") != std::string::npos) {
    process.libwrap = "yes";
    process.libwrap_evidence = "libwrap is in its memory maps";
    return;
  }
  // OpenSSH 9.8+: the listener execs sshd-session per connection, which links libwrap on Debian.
  const int fd = open_process_file(static_cast<pid_t>(process.pid), "usr/lib/openssh/sshd-session");
  if (fd >= 0) {
    Fd session(fd);
    std::string bytes;
    char buffer[65536];
    ssize_t n = 0;
    while (bytes.size() < (16u << 20) && (n = read(session.get(), buffer, sizeof(buffer))) > 0)
      bytes.append(buffer, static_cast<size_t>(n));
    const bool links = bytes.find("libwrap.so") != std::string::npos;
    process.libwrap = links ? "yes" : "no";
    process.libwrap_evidence = links ? "its /usr/lib/openssh/sshd-session links libwrap"
                                     : "neither it nor its /usr/lib/openssh/sshd-session links libwrap";
    return;
  }
  process.libwrap = "no";
  process.libwrap_evidence = "libwrap is not in its memory maps";
}

ListenerProcess describe_process(uint32_t pid) {
  ListenerProcess process;
  process.pid = pid;
  const std::string dir = "/proc/" + std::to_string(pid);
  process.comm = read_small(dir + "/comm", 64);
  if (!process.comm.empty() && process.comm.back() == '\n') process.comm.pop_back();
  process.title = read_small(dir + "/cmdline", 4096);
  while (!process.title.empty() && process.title.back() == '\0') process.title.pop_back();
  for (char& c : process.title)
    if (c == '\0') c = ' ';
  const std::string exe = readlink_text(dir + "/exe");
  process.exe = exe.substr(exe.rfind('/') + 1);
  return process;
}

ListenerFacts read_listener(const ClientAddress& client, uint16_t port, std::string& server_address) {
  ListenerFacts facts;
  std::vector<ListeningSocket> sockets;
  // sock_diag first: it gives the backlog too. /proc/net/tcp when inet_diag is not there.
  auto diag4 = client.family == 4 ? read_diag_listeners(AF_INET) : Result<std::vector<ListeningSocket>>(std::vector<ListeningSocket>{});
  auto diag6 = read_diag_listeners(AF_INET6);
  if (diag4 && diag6) {
    facts.read = true;
    facts.sockets_source = "sock_diag";
    sockets = std::move(*diag4);
    sockets.insert(sockets.end(), diag6->begin(), diag6->end());
  } else {
    facts.sockets_source = "/proc/net/tcp (" + (diag4 ? diag6.reason() : diag4.reason()) + ")";
    const std::string tcp4 = read_small("/proc/self/net/tcp", 64 << 20), tcp6 = read_small("/proc/self/net/tcp6", 64 << 20);
    if (tcp4.empty() && tcp6.empty()) {
      facts.error = "failed to read /proc/self/net/tcp: " + errno_text(errno) + "; " + facts.sockets_source;
      return facts;
    }
    facts.read = true;
    if (client.family == 4) sockets = parse_proc_net_tcp(tcp4, 4);
    for (const ListeningSocket& s : parse_proc_net_tcp(tcp6, 6)) sockets.push_back(s);
  }
  const ListeningSocket* best = nullptr;
  int best_rank = 0;
  std::array<uint8_t, 16> server{};
  inet_pton(client.family == 6 ? AF_INET6 : AF_INET, server_address.c_str(), server.data());
  for (const ListeningSocket& s : sockets) {
    if (s.port != port) continue;
    const bool wildcard = s.addr == std::array<uint8_t, 16>{};
    // An IPv4 client reaches an IPv6 socket on [::] (dual stack unless IPV6_V6ONLY) or ::ffff:a.b.c.d.
    const bool mapped = s.family == 6 && client.family == 4 && s.addr[10] == 0xff && s.addr[11] == 0xff &&
                        std::memcmp(s.addr.data() + 12, server.data(), 4) == 0;
    int rank = 0;
    if (s.family == client.family && !wildcard && s.addr == server) rank = 4;
    else if (mapped) rank = 4;
    else if (s.family == client.family && wildcard) rank = 3;
    else if (wildcard) rank = 2;  // [::] for an IPv4 client
    else if (s.family == client.family) rank = 1;  // another address: the client would use that one
    if (rank > best_rank) best = &s, best_rank = rank;
  }
  if (!best) return facts;
  facts.listening = true;
  if (best_rank == 1) server_address = format_address(best->family, best->addr);
  Endpoint endpoint{};
  endpoint.addr = best->addr;
  endpoint.port = best->port;
  facts.bound = format_endpoint(best->family, endpoint);
  facts.accept_queue = best->accept_queue;
  facts.backlog = best->backlog;
  for (const uint32_t pid : holders_of(best->inode)) facts.processes.push_back(describe_process(pid));
  return facts;
}

}  // namespace

Facts read_facts(const ClientAddress& client, uint16_t port, uint32_t netns, SystemAccess& access) {
  Facts facts;
  facts.client = client;
  facts.port = port;
  struct stat own {};
  if (stat("/proc/self/ns/net", &own) != 0) throw failed("stat", "/proc/self/ns/net", errno_text(errno));
  facts.netns = netns ? netns : static_cast<uint32_t>(own.st_ino);
  if (facts.netns != own.st_ino) {
    const std::string path = netns_path(facts.netns, access);
    if (path.empty()) throw failed("find", "network namespace " + std::to_string(facts.netns), "no process or /run/netns entry has it");
    Fd ns(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) throw failed("open", path, errno_text(errno));
    if (setns(ns.get(), CLONE_NEWNET) != 0) throw failed("enter", "network namespace " + std::to_string(facts.netns), errno_text(errno));
  }
  facts.routing = read_route(client);
  facts.server_address = facts.routing.local_address;
  if (facts.server_address.empty()) facts.server_address = client.family == 6 ? "::1" : "127.0.0.1";
  facts.listener = read_listener(client, port, facts.server_address);

  // The firewall: the SYN at each hook it passes, as live attribution walks a drop.
  const Rulesets rulesets = read_rulesets(facts.netns, access);
  facts.firewall_read = true;  // a tool that is missing or fails reads as no rules, as in live attribution
  const RulesetIndex index(rulesets);
  facts.firewall_notes = index.notes();
  PacketFacts packet;
  packet.family = client.family;
  packet.saddr = client.addr;
  inet_pton(client.family == 6 ? AF_INET6 : AF_INET, facts.server_address.c_str(), packet.daddr.data());
  packet.sport = client.port ? client.port : 40000;
  packet.dport = port;
  // A new connection's first packet: a SYN, conntrack state new, to an address of
  // this namespace (input route local). Its mark and, from a remote client, its
  // arrival interface are not known: matches on them stay undecided.
  packet.tcp_flags = 0x02;
  packet.conntrack = ConntrackFacts{.state = ConntrackFacts::State::New, .original_daddr = packet.daddr,
                                    .original_dport = port};
  packet.route_type = RTN_LOCAL;
  if (facts.routing.route_type == "local") packet.in_interface = "lo";
  if (facts.routing.route_type == "local") facts.hooks.push_back("output");
  facts.hooks.push_back("prerouting");
  facts.hooks.push_back("input");
  for (const std::string& hook : facts.hooks) {
    packet.hook = hook;
    if ((facts.rule = index.find_dropping_rule(packet))) break;
  }
  if (!client.port) facts.firewall_notes.insert(facts.firewall_notes.begin(), "no source port given: 40000 assumed");

  // TCP wrappers, with the hosts files of the sshd that listens, inside its root.
  ListenerProcess* listener = nullptr;
  for (ListenerProcess& p : facts.listener.processes)
    if (p.pid != 1 && (!listener || p.title.find("[listener]") != std::string::npos)) listener = &p;
  if (!facts.listener.listening) {
    facts.wrappers_note = "no listener";
  } else if (!listener) {
    facts.wrappers_note = "only systemd holds the socket: the daemon it starts is unknown, so no hosts files are read";
  } else {
    find_libwrap(*listener);
    const std::string who_text = escape_untrusted(listener->comm) + "[" + std::to_string(listener->pid) + "]";
    if (listener->libwrap == "no") {
      facts.wrappers_note = who_text + " does not use TCP wrappers: " + listener->libwrap_evidence;
    } else {
      facts.wrappers_note = who_text + ": " + listener->libwrap_evidence;
      AccessClient who;
      who.daemon = listener->exe.rfind("sshd", 0) == 0 || listener->comm.rfind("sshd", 0) == 0 ? "sshd" : listener->comm;
      who.address = format_address(client.family, client.addr);
      who.server_address = facts.server_address;
      who.server_port = port;
      const std::string root = "/proc/" + std::to_string(listener->pid) + "/root";
      facts.wrappers =
          decide_access_from_files(who, root, [&access](const std::string& path) { return access.read_file(path); });
    }
  }

  // sshd's log: its PerSourcePenalties, as it wrote them; its settings from its own
  // sshd -T (the collector's call, with its checks: privsep/sshd_test_mode.h).
  if (listener && (listener->exe.rfind("sshd", 0) == 0 || listener->comm.rfind("sshd", 0) == 0)) {
    facts.sshd_log = read_sshd_log(*listener, client, access);
    facts.sshd_settings = read_sshd_limits(access, listener->pid);
  }

  // fail2ban, at its fixed socket in rsttrace's own mount namespace, checked (privsep/safe_access.h).
  const auto answer = access.run({"fail2ban-client", "-s", kFail2banSocket, "banned", format_address(client.family, client.addr)});
  if (!answer) {
    facts.bans.note = std::string("no fail2ban answered at ") + kFail2banSocket + " (not running, or its socket or peer failed the checks)";
  } else {
    facts.bans.asked = true;
    // [['jail', ...]]: the quoted names.
    for (size_t open = answer->find('\''); open != std::string::npos && facts.bans.jails.size() < 32;) {
      const size_t close = answer->find('\'', open + 1);
      if (close == std::string::npos) break;
      facts.bans.jails.push_back(answer->substr(open + 1, close - open - 1));
      open = answer->find('\'', close + 1);
    }
    for (const std::string& jail : facts.bans.jails) {
      const auto times = fail2ban_ban_times(jail);
      const auto left = times ? ban_time_left(*times, format_address(client.family, client.addr), time(nullptr)) : std::nullopt;
      facts.bans.time_left.push_back(left.value_or(""));
    }
  }
  return facts;
}

}  // namespace rsttrace::explain
