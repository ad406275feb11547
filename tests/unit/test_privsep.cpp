#include <catch2/catch.hpp>

#include "privsep/system_access.h"

using rsttrace::broker_allows_command;
using rsttrace::broker_allows_path;

TEST_CASE("the broker runs only the ruleset and fail2ban readers", "[privsep]") {
  CHECK(broker_allows_command({"nsenter", "--net=/proc/42/ns/net", "--", "nft", "-j", "-a", "list", "ruleset"}));
  CHECK(broker_allows_command({"nsenter", "--net=/run/netns/lab", "--", "iptables-legacy-save", "-c"}));
  CHECK(broker_allows_command({"nsenter", "--net=/proc/1/ns/net", "--", "ip6tables-nft-save", "-c"}));
  CHECK(broker_allows_command({"fail2ban-client", "-s", "/proc/7/root/run/fail2ban/fail2ban.sock", "banned",
                               "127.0.0.2"}));
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

TEST_CASE("the broker opens only namespace, cmdline and hosts files", "[privsep]") {
  CHECK(broker_allows_path("/proc/42/ns/net"));
  CHECK(broker_allows_path("/proc/42/ns/mnt"));
  CHECK(broker_allows_path("/run/netns/lab"));
  CHECK(broker_allows_path("/proc/42/cmdline"));
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
