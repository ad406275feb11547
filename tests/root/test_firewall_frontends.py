"""Firewall provenance on the configurations servers run (issue 16): the real
front-ends write the block, a client in another network namespace is refused
over a veth pair, and rsttrace must name the rule that dropped it, certain,
and the front-end behind it. Every front-end runs inside this file's private
network namespace; those that write files (fail2ban, ufw) keep them in a
private directory or a private mount namespace, never the host's /etc."""

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


def stray_ack(port=22):
    """One TCP ACK from the client that belongs to no connection (a raw socket)."""
    code = textwrap.dedent(f"""
        import socket, struct
        src, dst = socket.inet_aton("{CLIENT}"), socket.inet_aton("{SERVER}")
        tcp = struct.pack("!HHIIBBHHH", 40404, {port}, 1000, 2000, 5 << 4, 0x10, 65535, 0, 0)
        pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
        data = pseudo + tcp
        total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
        while total >> 16: total = (total & 0xffff) + (total >> 16)
        tcp = tcp[:16] + struct.pack("!H", ~total & 0xffff) + tcp[18:]
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        s.sendto(tcp, ("{SERVER}", 0))
        """)
    sh("ip", "netns", "exec", CLIENT_NS, "python3", "-c", code)


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
        return False


UFW_SCRIPT = """
set -e
mount -t tmpfs tmpfs {private}
for d in /etc/ufw /lib/ufw /etc/default; do mkdir -p {private}$d; cp -a $d/. {private}$d/; mount --bind {private}$d $d; done
: > /etc/ufw/sysctl.conf   # ufw's sysctls are not under test
mkdir -p {private}/run && mount --bind {private}/run /run
{commands}
ufw status numbered
echo READY
exec sleep 600
"""


class Ufw:
    """ufw commands in a private mount namespace whose state files are
    copies; a process stays in it (as ufw's host would) while the test runs.
    `numbered`: `ufw status numbered` as ufw printed it, rule -> number."""

    def __init__(self, *commands):
        self.private = tempfile.mkdtemp(prefix="rsttrace-ufw-")
        script = UFW_SCRIPT.format(private=self.private, commands="\n".join(commands))
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.numbered = {}
        for line in self.proc.stdout:
            if line.strip() == "READY":
                break
            if line.startswith("["):
                number, rest = line[1:].split("]", 1)
                self.numbered[" ".join(rest.split())] = int(number)
        else:
            raise AssertionError(f"ufw failed: {self.proc.stderr.read()}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        os.rmdir(self.private)
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
        """Debian 12's default banaction (iptables-multiport) and the others it ships for sshd."""
        cases = [("iptables-multiport", "f2b-sshd", f"-s {CLIENT}/32 -j REJECT"),
                 ("iptables-allports", "f2b-sshd", f"-s {CLIENT}/32 -j REJECT"),
                 ("nftables-multiport", "f2b-chain", "@addr-set-sshd"),
                 ("nftables-allports", "f2b-chain", "@addr-set-sshd")]
        for banaction, chain, text in cases:
            with self.subTest(banaction=banaction):
                with Fail2ban(banaction) as f2b, self.trace() as rt:
                    f2b.ban(CLIENT)
                    event = self.refused_line(rt)
                    self.assert_rule(event, chain, text, ("fail2ban", "sshd"))
                    self.assertEqual(event["fail2ban_jail"], "sshd")

    def test_ufw_names_the_user_rule_and_its_number(self):
        with Ufw("ufw --force enable", f"ufw deny proto tcp from {CLIENT} to any port 22", "ufw allow 22/tcp") as ufw, \
                self.trace() as rt:
            event = self.refused_line(rt, expect_client="timeout")
        self.assert_rule(event, "ufw-user-input", f"-s {CLIENT}/32", ("ufw", "ufw-user-input"))
        self.assertIn("-j DROP", event["rule"]["text"])
        self.assertEqual(event["blocker"]["rule_number"], ufw.numbered[f"22/tcp DENY IN {CLIENT}"], ufw.numbered)

    def test_ct_state_invalid_drops_a_stray_ack(self):
        # A mid-stream ACK starts no entry: conntrack calls it invalid.
        with open("/proc/sys/net/netfilter/nf_conntrack_tcp_loose", "w") as f:
            f.write("0\n")
        subprocess.run(["nft", "-f", "-"], check=True, text=True, input=(
            "table inet t {\n chain input {\n  type filter hook input priority 0;\n"
            "  ct state invalid counter drop\n }\n}\n"))
        with self.trace() as rt:
            stray_ack()
            event = rt.wait_event(timeout=20, remote_addr=CLIENT, verdict="firewall")
        self.assertEqual(event["tcp_flags"], "ACK")
        rule = event["rule"]
        self.assertIsNotNone(rule, event["detail"])
        self.assertIn("ct state invalid", rule["text"])
        self.assertTrue(rule["certain"], event["detail"])

    def test_dnat_gives_the_port_the_client_dialled(self):
        subprocess.run(["nft", "-f", "-"], check=True, text=True, input=(
            "table ip nat {\n chain pre {\n  type nat hook prerouting priority -100;\n"
            f"  tcp dport 2222 dnat to {SERVER}:22\n }}\n}}\n"
            "table inet t {\n chain input {\n  type filter hook input priority 0;\n"
            f"  ip saddr {CLIENT} tcp dport 22 ct status dnat ct original proto-dst 2222 counter drop\n }}\n}}\n"))
        with self.trace() as rt:
            self.assertEqual(client_connect(port=2222), "timeout")
            event = rt.wait_event(timeout=20, remote_addr=CLIENT, verdict="firewall")
        self.assertEqual(event["local_port"], 22)
        self.assertEqual(event["original_dst"], {"addr": SERVER, "port": 2222})
        rule = event["rule"]
        self.assertIsNotNone(rule, event["detail"])
        self.assertIn("ct original proto-dst 2222", rule["text"])
        self.assertTrue(rule["certain"], event["detail"])

    def test_a_match_rsttrace_cannot_decide_is_never_certain(self):
        # ufw's own rate limit: `ufw limit` writes -m recent; the drop behind it is probable, named.
        sh("iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-m", "recent", "--name", "x", "--rcheck",
           "-j", "ACCEPT")
        sh("iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-s", CLIENT, "-j", "DROP")
        with self.trace() as rt:
            event = self.refused_line(rt, expect_client="timeout")
        rule = event["rule"]
        self.assertIsNotNone(rule, event["detail"])
        self.assertFalse(rule["certain"])
        self.assertIn("-m recent", rule["undecided"])


if __name__ == "__main__":
    harness.require_root()
    NETNS = harness.enter_private_netns()
    CLIENT_NS = setup_client_namespace()
    try:
        unittest.main()
    finally:
        subprocess.run(["ip", "netns", "del", CLIENT_NS], capture_output=True)
