"""A ruleset this host's nft cannot read (issue 16): Debian 13's nft 1.1 writes
fail2ban's nftables ban (table inet f2b-table, set addr-set-sshd) and Debian
12's nft 1.0.6 crashes listing it. rsttrace must say so, never "changed
since?", and name the rule it read over netlink, its expressions decoded:
certain, written as nft writes it, with fail2ban's jail.
Runs in a private network namespace, the client over a veth pair; the
Debian 13 root is only chrooted into, never written."""

import os
import socket
import subprocess
import unittest

import harness
import test_firewall_frontends as fw
from harness import Rsttrace
from test_firewall_frontends import CLIENT, SERVER, client_connect, sh

DEBIAN13 = "/var/cache/rsttrace-lab/debian13"
NETNS = None

# fail2ban's nftables-multiport action, as fail2ban 1.1 on Debian 13 writes it for a ban of CLIENT.
RULESET = ("add table inet f2b-table; "
           "add set inet f2b-table addr-set-sshd { type ipv4_addr; elements = { %s } }; "
           "add chain inet f2b-table f2b-chain { type filter hook input priority -1; }; "
           "add rule inet f2b-table f2b-chain tcp dport { 22 } ip saddr @addr-set-sshd reject with icmp port-unreachable"
           % CLIENT)


def setUpModule():
    # The server in this process's private namespace, the client over veth (test_firewall_frontends' lab).
    global NETNS
    harness.require_root()
    NETNS = harness.enter_private_netns()
    fw.CLIENT_NS = fw.setup_client_namespace()


def tearDownModule():
    subprocess.run(["ip", "netns", "del", fw.CLIENT_NS], capture_output=True)


class NewerNftRulesetTest(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(os.path.join(DEBIAN13, "usr/sbin/nft")):
            self.skipTest(f"no Debian 13 root with nft at {DEBIAN13}")
        subprocess.run(["nft", "flush", "ruleset"], check=True)
        self.addCleanup(subprocess.run, ["nft", "flush", "ruleset"], check=True)
        # A private mount namespace for the chroot: nothing is written into the shared root.
        sh("unshare", "-m", "chroot", DEBIAN13, "nft", RULESET)
        listed = subprocess.run(["nft", "list", "ruleset"], capture_output=True)
        if listed.returncode >= 0 and listed.returncode < 128:
            self.skipTest(f"this host's nft reads the ruleset (exit {listed.returncode}): nothing to fall back from")
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind((SERVER, 22))
        self.server.listen(8)
        self.addCleanup(self.server.close)

    def test_crash_is_said_and_the_rule_read_over_netlink_is_certain(self):
        with Rsttrace("--port", "22", "--netns", str(NETNS)) as rt:
            self.assertEqual(client_connect(), "refused")
            event = rt.wait_event(timeout=20, remote_addr=CLIENT, verdict="firewall")
        detail = event["detail"]
        self.assertNotIn("changed since", detail)
        self.assertIn("this host's nft crashed reading the namespace's ruleset (SIGSEGV): written by a newer nft?",
                      detail)
        rule = event["rule"]
        self.assertIsNotNone(rule, detail)
        self.assertEqual((rule["family"], rule["table"], rule["chain"]), ("inet", "f2b-table", "f2b-chain"))
        self.assertEqual(rule["verdict"], "reject")
        self.assertEqual(rule["text"], "tcp dport 22 ip saddr @addr-set-sshd reject with icmp port-unreachable")
        self.assertTrue(rule["certain"], rule["undecided"])
        self.assertEqual(rule["set_element"], CLIENT)
        self.assertIn("(read over netlink: ", detail)
        handle = subprocess.run(["unshare", "-m", "chroot", DEBIAN13, "nft", "-a", "list", "chain", "inet",
                                 "f2b-table", "f2b-chain"], capture_output=True, text=True, check=True).stdout
        self.assertIn(f"# handle {rule['handle']}", handle)
        self.assertEqual(event["fail2ban_jail"], "sshd")
        self.assertEqual((event["blocker"]["tool"], event["blocker"]["name"]), ("fail2ban", "sshd"))
        self.assertIn("fail2ban jail sshd", detail)

    def test_a_rule_without_a_set_is_decoded_and_a_limit_named(self):
        sh("unshare", "-m", "chroot", DEBIAN13, "nft", "delete element inet f2b-table addr-set-sshd { %s }" % CLIENT)
        # Matches netlink states only as loads and compares (this host's nft crashes here too).
        sh("unshare", "-m", "chroot", DEBIAN13, "nft", "add table inet t; add chain inet t c { type filter hook input priority 0; }; "
                  f"add rule inet t c ip saddr {CLIENT} tcp dport 22 reject")
        with Rsttrace("--port", "22", "--netns", str(NETNS)) as rt:
            self.assertEqual(client_connect(), "refused")
            event = rt.wait_event(timeout=20, remote_addr=CLIENT, verdict="firewall")
        rule = event["rule"]
        self.assertIsNotNone(rule, event["detail"])
        self.assertEqual((rule["table"], rule["chain"]), ("t", "c"))
        self.assertEqual(rule["text"], f"ip saddr {CLIENT} tcp dport 22 reject with icmp port-unreachable")
        self.assertTrue(rule["certain"], rule["undecided"])
        self.assertNotIn("changed since", event["detail"])
        # A limit before the reject: undecided, named, the rule probable.
        sh("unshare", "-m", "chroot", DEBIAN13, "nft", "flush chain inet t c; "
                  f"add rule inet t c ip saddr {CLIENT} limit rate 1000/second reject")
        with Rsttrace("--port", "22", "--netns", str(NETNS)) as rt:
            client_connect()
            event = rt.wait_event(timeout=20, remote_addr=CLIENT, verdict="firewall")
        rule = event["rule"]
        self.assertIsNotNone(rule, event["detail"])
        self.assertFalse(rule["certain"])
        self.assertTrue(rule["undecided"].startswith("limit in c"), rule["undecided"])

if __name__ == "__main__":
    unittest.main()
