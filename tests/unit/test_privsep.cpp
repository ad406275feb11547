#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <string>

#include "privsep/safe_access.h"
#include "privsep/system_access.h"

using rsttrace::broker_allows_command;
using rsttrace::broker_allows_path;

TEST_CASE("the broker runs only the ruleset and fail2ban readers", "[privsep]") {
  CHECK(broker_allows_command({"nsenter", "--net=/proc/42/ns/net", "--", "nft", "-j", "-a", "list", "ruleset"}));
  CHECK(broker_allows_command({"nsenter", "--net=/run/netns/lab", "--", "iptables-legacy-save", "-c"}));
  CHECK(broker_allows_command({"nsenter", "--net=/run/netns/lab", "--", "ipset", "save"}));
  CHECK_FALSE(broker_allows_command({"nsenter", "--net=/run/netns/lab", "--", "ipset", "flush"}));
  CHECK(broker_allows_command({"nsenter", "--net=/proc/1/ns/net", "--", "ip6tables-nft-save", "-c"}));
  CHECK(broker_allows_command({"fail2ban-client", "-s", "/run/fail2ban/fail2ban.sock", "banned", "127.0.0.2"}));
  CHECK(broker_allows_command({"fail2ban-client", "-s", "/run/fail2ban/fail2ban.sock", "banned", "fd00::2"}));
  // Issue 13, finding 1: no socket a process names or roots, not even at the fixed path.
  CHECK_FALSE(broker_allows_command({"fail2ban-client", "-s", "/proc/7/root/run/fail2ban/fail2ban.sock", "banned",
                                     "127.0.0.2"}));
  CHECK_FALSE(broker_allows_command({"fail2ban-client", "-s", "/proc/7/root/tmp/x.sock", "banned", "127.0.0.2"}));
  CHECK_FALSE(broker_allows_command({"fail2ban-client", "-s", "/var/run/fail2ban/fail2ban.sock", "banned", "1.2.3.4"}));
  CHECK_FALSE(broker_allows_command({"nsenter", "--net=/proc/1/ns/net", "--", "fail2ban-client", "-s",
                                     "/run/fail2ban/fail2ban.sock", "banned", "1.2.3.4"}));
  CHECK_FALSE(broker_allows_command({"fail2ban-client", "-c", "/tmp/conf", "-s", "/run/fail2ban/fail2ban.sock",
                                     "banned", "1.2.3.4"}));
  CHECK_FALSE(broker_allows_command({}));
  CHECK_FALSE(broker_allows_command({"sh", "-c", "id"}));
  CHECK_FALSE(broker_allows_command({"nsenter", "--net=/proc/1/ns/net", "--", "sh"}));
  CHECK_FALSE(broker_allows_command({"nsenter", "--mount=/proc/1/ns/mnt", "--", "nft", "-a", "list", "ruleset"}));
  CHECK_FALSE(broker_allows_command({"nft", "flush", "ruleset"}));
  CHECK_FALSE(broker_allows_command({"nft", "-f", "/tmp/rules"}));
  CHECK_FALSE(broker_allows_command({"iptables-nft-save", "-c", "-M", "/tmp/x"}));
  CHECK_FALSE(broker_allows_command({"fail2ban-client", "-s", "/tmp/sock", "banned", "1.2.3.4"}));
  CHECK_FALSE(broker_allows_command({"fail2ban-client", "-s", "/proc/7/root/../../tmp/s", "banned", "1.2.3.4"}));
  CHECK_FALSE(broker_allows_command({"fail2ban-client", "-s", "/proc/7/root/s", "unban", "1.2.3.4"}));
  CHECK_FALSE(broker_allows_command({"fail2ban-client", "-s", "/proc/7/root/s", "banned", "1.2.3.4; reboot"}));
}

TEST_CASE("the broker opens only namespace and hosts files", "[privsep]") {
  CHECK(broker_allows_path("/proc/42/ns/net"));
  CHECK(broker_allows_path("/proc/42/ns/mnt"));
  CHECK(broker_allows_path("/run/netns/lab"));
  CHECK(broker_allows_path("/run/netns/rsttrace-lab-12-x.y"));
  CHECK(broker_allows_path("/proc/42/root/etc/hosts.sshd-allowed"));
  // A command line is the process's own word: it once picked the fail2ban socket.
  CHECK(broker_allows_path("/proc/42/ns/user"));
  CHECK(broker_allows_path("/proc/42/root/etc/ufw/user.rules"));
  CHECK(broker_allows_path("/proc/42/root/etc/ufw/user6.rules"));
  CHECK_FALSE(broker_allows_path("/proc/42/root/etc/ufw/ufw.conf"));
  CHECK_FALSE(broker_allows_path("/proc/42/root/etc/ufw/../shadow"));
  CHECK(broker_allows_path("/proc/42/root/etc/firewalld/zones/drop.xml"));
  CHECK(broker_allows_path("/etc/firewalld/zones/my_zone-2.xml"));
  CHECK(broker_allows_path("/proc/42/root/etc/firewalld/policies/sshd_deny.xml"));
  CHECK_FALSE(broker_allows_path("/proc/42/root/etc/firewalld/policies/../zones/x.xml"));
  CHECK_FALSE(broker_allows_path("/proc/42/root/etc/firewalld/policies/a b.xml"));
  CHECK_FALSE(broker_allows_path("/proc/42/root/etc/firewalld/firewalld.conf"));
  CHECK_FALSE(broker_allows_path("/proc/42/root/etc/firewalld/zones/../../shadow.xml"));
  CHECK_FALSE(broker_allows_path("/proc/42/root/etc/firewalld/zones/a/b.xml"));
  CHECK_FALSE(broker_allows_path("/proc/42/cmdline"));
  CHECK_FALSE(broker_allows_path("/proc/0/root/etc/hosts.deny"));
  CHECK_FALSE(broker_allows_path("/proc/42/root/etc/hosts.deny/"));
  CHECK_FALSE(broker_allows_path("/proc/42/root/etc/hosts..deny/x"));
  CHECK_FALSE(broker_allows_path("/proc/42/root/./etc/hosts.deny"));
  CHECK_FALSE(broker_allows_path("/proc/42/root/etc/../etc/hosts.deny"));
  CHECK_FALSE(broker_allows_path("/run/netns/.."));
  CHECK_FALSE(broker_allows_path("/run/netns/."));
  CHECK_FALSE(broker_allows_path("/proc/42/root/proc/1/root/etc/hosts.deny"));
  CHECK(broker_allows_path("/proc/42/root/etc/hosts.deny"));
  CHECK(broker_allows_path("/proc/42/root/etc/hosts.allow"));
  CHECK(broker_allows_path("/etc/hosts.deny"));
  CHECK_FALSE(broker_allows_path("/etc/shadow"));
  CHECK_FALSE(broker_allows_path("/proc/1/root/etc/shadow"));
  CHECK_FALSE(broker_allows_path("/proc/1/root/etc/hosts.deny/../shadow"));
  CHECK_FALSE(broker_allows_path("/proc/1/root/etc/hosts.d/../../root/.ssh/id_rsa"));
  CHECK_FALSE(broker_allows_path("/run/netns/../../etc/shadow"));
  CHECK_FALSE(broker_allows_path("/proc/self/ns/net"));
  CHECK_FALSE(broker_allows_path("/proc/1/environ"));
  CHECK_FALSE(broker_allows_path("/proc/1/root/etc/hosts.x/.."));
}

TEST_CASE("a process's file is opened only if it is a regular file inside its root", "[privsep]") {
  if (!rsttrace::openat2_supported()) return;  // refused there: nothing to check
  char dir_template[] = "/tmp/rsttrace-privsep-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string relative = dir.substr(1);
  std::ofstream(dir + "/hosts.deny") << "sshd: 127.0.0.2\n";
  REQUIRE(mkfifo((dir + "/fifo").c_str(), 0600) == 0);
  REQUIRE(symlink("/proc/self/root/etc/passwd", (dir + "/magic").c_str()) == 0);
  const int fd = rsttrace::open_process_file(getpid(), relative + "/hosts.deny");
  CHECK(fd >= 0);
  if (fd >= 0) close(fd);
  // A FIFO would block the reader (or hang an open without O_NONBLOCK): refused, at once.
  CHECK(rsttrace::open_process_file(getpid(), relative + "/fifo") == -EINVAL);
  // A directory is no hosts file.
  CHECK(rsttrace::open_process_file(0, relative) == -EINVAL);
  // /proc/self/root inside the path is a magic link: RESOLVE_NO_MAGICLINKS refuses it.
  CHECK(rsttrace::open_process_file(getpid(), relative + "/magic") == -ELOOP);
  CHECK(rsttrace::open_process_file(getpid(), relative + "/missing") == -ENOENT);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("a large file is read only up to the cap", "[privsep]") {
  char path_template[] = "/tmp/rsttrace-privsep-big-XXXXXX";
  const int fd = mkstemp(path_template);
  REQUIRE(fd >= 0);
  const std::string block(100000, 'x');
  for (int i = 0; i < 30; ++i) REQUIRE(write(fd, block.data(), block.size()) == static_cast<ssize_t>(block.size()));
  close(fd);
  rsttrace::DirectAccess access;
  const auto text = access.read_file(path_template, 1 << 20);
  REQUIRE(text);
  CHECK(text->size() == (1u << 20));
  unlink(path_template);
}
