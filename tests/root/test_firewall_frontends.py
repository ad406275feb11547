"""Firewall provenance on the configurations servers run (issue 16): the real
front-ends write the block, a client in another network namespace is refused
over a veth pair, and rsttrace must name the rule that dropped it, certain,
and the front-end behind it. Every front-end runs inside this file's private
network namespace; fail2ban keeps its files in a private directory, never the
host's /etc. The selftest lab (userspace/selftest/scenarios_frontends.cpp,
test_scenarios.py FrontendScenarioTest) plays fail2ban's iptables-multiport,
-allports, nftables-multiport, -allports and iptables-ipset, ufw, `ct state
invalid`, DNAT and `-m recent` on both userlands; this file keeps what the lab
does not: the iptables-ipset-proto6-allports banaction."""

import os
import shutil
import socket
import subprocess
import tempfile
import textwrap
import unittest

import harness
from harness import Rsttrace, wait_until

SERVER = "10.77.16.1"
CLIENT = "10.77.16.2"
NETNS = None       # the server's namespace: this process's own
CLIENT_NS = None   # the client's: a named namespace of its own, removed at exit


def sh(*argv, **kw):
    return subprocess.run(list(argv), check=True, capture_output=True, text=True, **kw)


def setup_client_namespace():
    name = f"rsttrace-fw-{os.getpid()}"
    sh("ip", "netns", "add", name)
    sh("ip", "link", "add", "veth-srv", "type", "veth", "peer", "name", "veth-cli", "netns", name)
    sh("ip", "addr", "add", f"{SERVER}/24", "dev", "veth-srv")
    sh("ip", "link", "set", "veth-srv", "up")
    for cmd in (["ip", "addr", "add", f"{CLIENT}/24", "dev", "veth-cli"], ["ip", "link", "set", "veth-cli", "up"],
                ["ip", "link", "set", "lo", "up"]):
        sh("ip", "netns", "exec", name, *cmd)
    return name


def client_connect(port=22, timeout=3.0):
    """connect() from the client's namespace; returns what the client saw."""
    code = textwrap.dedent(f"""
        import socket, sys
        s = socket.socket(); s.settimeout({timeout})
        try:
            s.connect(("{SERVER}", {port})); print("connected")
        except ConnectionRefusedError: print("refused")
        except (socket.timeout, TimeoutError): print("timeout")
        except OSError as e: print("error", e.errno)
        """)
    return subprocess.run(["ip", "netns", "exec", CLIENT_NS, "python3", "-c", code], capture_output=True,
                          text=True, check=True).stdout.strip()



def flush_firewalls():
    subprocess.run(["nft", "flush", "ruleset"], check=True)
    for tool in ("iptables-legacy", "ip6tables-legacy"):
        if shutil.which(tool):
            for table in ("filter", "raw", "mangle", "nat"):
                subprocess.run([tool, "-t", table, "-F"], capture_output=True)
                subprocess.run([tool, "-t", table, "-X"], capture_output=True)


class Fail2ban:
    """fail2ban-server with its own configuration, socket, pid file and
    database in a temporary directory, banning through `banaction`."""

    def __init__(self, banaction):
        self.dir = tempfile.mkdtemp(prefix="rsttrace-f2b-")
        self.conf = os.path.join(self.dir, "conf")
        shutil.copytree("/etc/fail2ban", self.conf)
        shutil.rmtree(os.path.join(self.conf, "jail.d"))
        os.mkdir(os.path.join(self.conf, "jail.d"))
        self.log = os.path.join(self.dir, "auth.log")
        open(self.log, "w").close()
        with open(os.path.join(self.conf, "fail2ban.local"), "w") as f:
            f.write(f"[Definition]\nlogtarget = {self.dir}/fail2ban.log\ndbfile = :memory:\n"
                    f"socket = {self.dir}/f2b.sock\npidfile = {self.dir}/f2b.pid\n")
        with open(os.path.join(self.conf, "jail.local"), "w") as f:
            f.write(f"[DEFAULT]\nbanaction = {banaction}\nbanaction_allports = {banaction}\n"
                    f"[sshd]\nenabled = true\nbackend = polling\nlogpath = {self.log}\n")
        self.client = ["fail2ban-client", "-c", self.conf, "-s", f"{self.dir}/f2b.sock"]

    def __enter__(self):
        sh(*self.client, "-b", "-x", "start")
        wait_until(lambda: subprocess.run(self.client + ["ping"], capture_output=True).returncode == 0, 30,
                   "fail2ban-server")
        return self

    def ban(self, address):
        sh(*self.client, "set", "sshd", "banip", address)

    def __exit__(self, *exc):
        subprocess.run(self.client + ["stop"], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        flush_firewalls()
        if shutil.which("ipset"):
            subprocess.run(["ipset", "destroy"], capture_output=True)  # this namespace's sets only
        return False


class FirewallFrontendsTest(unittest.TestCase):
    def setUp(self):
        flush_firewalls()
        self.addCleanup(flush_firewalls)
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind((SERVER, 22))
        self.server.listen(8)
        self.addCleanup(self.server.close)

    def trace(self):
        return Rsttrace("--port", "22", "--netns", str(NETNS))

    def refused_line(self, rt, expect_client="refused"):
        self.assertEqual(client_connect(), expect_client)
        return rt.wait_event(timeout=20, remote_addr=CLIENT, verdict="firewall")

    def assert_rule(self, event, chain, text_part, blocker):
        rule = event["rule"]
        self.assertIsNotNone(rule, event["detail"])
        self.assertEqual(rule["chain"], chain, event["detail"])
        self.assertIn(text_part, rule["text"])
        self.assertTrue(rule["certain"], event["detail"])
        self.assertEqual(event["blocker"]["tool"], blocker[0])
        self.assertEqual(event["blocker"]["name"], blocker[1])

    def test_fail2ban_banactions(self):
        """The banactions Debian ships for sshd that the lab does not play."""
        if not shutil.which("ipset"):  # scripts/install-deps --test installs it
            self.skipTest("ipset is not installed")
        cases = [("iptables-ipset-proto6-allports", "INPUT", "--match-set f2b-sshd src")]
        for banaction, chain, text in cases:
            with self.subTest(banaction=banaction):
                with Fail2ban(banaction) as f2b, self.trace() as rt:
                    f2b.ban(CLIENT)
                    event = self.refused_line(rt)
                    self.assert_rule(event, chain, text, ("fail2ban", "sshd"))
                    self.assertEqual(event["fail2ban_jail"], "sshd")


if __name__ == "__main__":
    harness.require_root()
    NETNS = harness.enter_private_netns()
    CLIENT_NS = setup_client_namespace()
    try:
        unittest.main()
    finally:
        subprocess.run(["ip", "netns", "del", CLIENT_NS], capture_output=True)
