"""rsttrace explain against a real namespace: an nft drop, an iptables-nft
reject, a hosts.deny line of a libwrap listener's own root, no listener, and
an open path; a stopped listener whose accept queue is full (sock_diag, then
the kernel's ListenOverflows), the host's real sshd, its log and its sshd -T
(and its title when sshd -T is refused), and a
PerSourcePenalties line in the auth.log of a listener's root; exit codes
0/1/2 and the "type": "explain" object."""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import harness
from harness import RSTTRACE

CLIENT = "127.0.0.9"


def read(path):
    with open(path) as f:
        return f.read()


def tcpext(name):
    """A TcpExt counter of this network namespace (/proc/net/netstat)."""
    with open("/proc/net/netstat") as f:
        rows = [line.split() for line in f if line.startswith("TcpExt:")]
    return int(rows[1][rows[0].index(name)])


def explain(*args, prefix=()):
    return subprocess.run(list(prefix) + [RSTTRACE, "explain", *args], capture_output=True, text=True, timeout=120)


def explain_json(test, address, port, expected_exit):
    result = explain(address, "--port", str(port), "--json")
    test.assertEqual(result.returncode, expected_exit, result)
    lines = result.stdout.splitlines()
    test.assertEqual(len(lines), 1, result.stdout)
    record = json.loads(lines[0])
    test.assertEqual(record["type"], "explain")
    test.assertEqual([step["step"] for step in record["steps"]],
                     ["routing", "firewall", "listener", "sshd", "tcp-wrappers", "bans"])
    return record


class ExplainTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.require_root()
        cls.netns = harness.enter_private_netns()

    def listen(self, port):
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", port))
        server.listen(8)
        self.addCleanup(server.close)
        return server

    def test_allowed(self):
        self.listen(2201)
        record = explain_json(self, CLIENT, 2201, 0)
        self.assertEqual(record["verdict"], "allowed")
        self.assertEqual(record["remedy"], [])
        self.assertIsNone(record["blocker"])
        listener = record["steps"][2]
        self.assertEqual(listener["result"], "pass")
        self.assertIn(f"[{os.getpid()}]", listener["detail"])  # this test holds the socket
        self.assertEqual(record["netns"], self.netns)
        # Text form: the same verdict, exit 0.
        text = explain(CLIENT, "--port", "2201")
        self.assertEqual(text.returncode, 0, text)
        self.assertIn("verdict: allowed", text.stdout)

    def test_no_listener(self):
        record = explain_json(self, f"{CLIENT}:40022", 2202, 1)
        self.assertEqual(record["verdict"], "no-listener")
        self.assertEqual(record["remote_port"], 40022)
        self.assertEqual(record["remedy"], ["systemctl start ssh"])

    def test_nft_drop(self):
        self.listen(2203)
        subprocess.run(["nft", "-f", "-"], check=True, text=True, input=textwrap.dedent("""\
            table inet rsttrace_explain {
              chain input { type filter hook input priority 0; tcp dport 2203 drop; }
            }"""))
        self.addCleanup(subprocess.run, ["nft", "delete", "table", "inet", "rsttrace_explain"], capture_output=True)
        record = explain_json(self, CLIENT, 2203, 1)
        self.assertEqual(record["verdict"], "firewall")
        rule = record["rule"]
        self.assertEqual((rule["backend"], rule["table"], rule["chain"], rule["verdict"]),
                         ("nftables", "rsttrace_explain", "input", "drop"))
        self.assertIsNone(record["blocker"])  # a hand-written table: no front-end's names
        self.assertIn("written by nftables", record["steps"][1]["detail"])
        self.assertEqual(record["remedy"], [f"nft delete rule inet rsttrace_explain input handle {rule['handle']}"])
        # The remedy works: pasted into a shell, the connection is allowed after it.
        subprocess.run(record["remedy"][0], shell=True, check=True)
        self.assertEqual(explain_json(self, CLIENT, 2203, 0)["verdict"], "allowed")

    def test_iptables_reject(self):
        self.listen(2204)
        rule = ["INPUT", "-s", CLIENT, "-p", "tcp", "--dport", "2204", "-j", "REJECT", "--reject-with", "tcp-reset"]
        subprocess.run(["iptables-nft", "-I", *rule], check=True)
        self.addCleanup(subprocess.run, ["iptables-nft", "-D", *rule], capture_output=True)
        record = explain_json(self, CLIENT, 2204, 1)
        self.assertEqual(record["verdict"], "firewall")
        self.assertEqual(record["rule"]["backend"], "iptables-nft")
        self.assertEqual(record["remedy"], [
            f"iptables-nft -t filter -D INPUT -s {CLIENT}/32 -p tcp -m tcp --dport 2204 -j REJECT --reject-with tcp-reset"])
        subprocess.run(record["remedy"][0], shell=True, check=True)
        self.assertEqual(explain_json(self, CLIENT, 2204, 0)["verdict"], "allowed")

    def test_hosts_deny_of_the_listeners_root(self):
        # A listener that links libwrap, with its own /etc/hosts.deny (a bind mount in a
        # mount namespace of its own: the host's file is never touched).
        with tempfile.TemporaryDirectory() as d:
            deny = os.path.join(d, "hosts.deny")
            with open(deny, "w") as f:
                f.write("# test\nALL: 127.0.0.8\nALL: " + CLIENT + "\n")
            ready = os.path.join(d, "ready")
            script = textwrap.dedent(f"""\
                import ctypes, socket, sys, time
                ctypes.CDLL("libwrap.so.0")
                s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", 2205)); s.listen(8)
                open("{ready}", "w").close()
                sys.stdin.read()
                """)
            child = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                 f'mount --bind "{deny}" /etc/hosts.deny && exec python3 -c "$0"', script],
                stdin=subprocess.PIPE)
            self.addCleanup(child.wait)
            self.addCleanup(child.stdin.close)
            harness.wait_until(lambda: os.path.exists(ready) or child.poll() is not None, what="the listener")
            self.assertIsNone(child.poll(), "the libwrap listener did not start")
            record = explain_json(self, CLIENT, 2205, 1)
            self.assertEqual(record["verdict"], "tcp-wrappers")
            self.assertEqual(record["wrapper_rule"], {"file": "/etc/hosts.deny", "line": 3, "text": "ALL: " + CLIENT})
            self.assertEqual(record["remedy"], ["sed -i 3,3d /etc/hosts.deny"])
            self.assertIn("libwrap is in its memory maps", record["steps"][4]["detail"])
            # Another client is not refused by it.
            self.assertEqual(explain_json(self, "127.0.0.7", 2205, 0)["verdict"], "allowed")

    def test_netns_by_inode_and_path(self):
        self.listen(2206)
        for netns in (str(self.netns), f"/proc/{os.getpid()}/ns/net"):
            result = explain(CLIENT, "--port", "2206", "--netns", netns, "--json")
            self.assertEqual(result.returncode, 0, result)
            self.assertEqual(json.loads(result.stdout)["netns"], self.netns)

    def test_a_stopped_listener_with_a_full_accept_queue_is_kernel(self):
        port = 2209
        script = textwrap.dedent(f"""\
            import os, signal, socket, sys
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", {port})); s.listen(2)
            print("listening", flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)
            sys.stdin.read()
            """)
        child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        self.assertEqual(child.stdout.readline().strip(), "listening")
        harness.wait_until(lambda: harness.status_of(child.pid).get("State", "").startswith("T"), what="the stopped listener")
        record = explain_json(self, CLIENT, port, 0)
        self.assertIn("0 waiting, backlog 2 (sock_diag)", record["steps"][2]["detail"])
        # Three connections wait (the kernel queues one more than the backlog), the fourth SYN is dropped.
        clients = []
        for _ in range(3):
            client = socket.socket()
            self.addCleanup(client.close)
            client.bind((CLIENT, 0))
            client.connect(("127.0.0.1", port))
            clients.append(client)
        record = explain_json(self, CLIENT, port, 1)
        self.assertEqual(record["verdict"], "kernel")
        self.assertFalse(record["certain"])
        self.assertEqual(record["steps"][2]["result"], "block")
        self.assertIn("its accept queue is full: 3 waiting, backlog 2 (sock_diag)", record["steps"][2]["detail"])
        self.assertIn(f"[{child.pid}]", record["steps"][2]["detail"])
        # The kernel agrees: the next SYN overflows the queue.
        before = tcpext("ListenOverflows")
        late = socket.socket()
        self.addCleanup(late.close)
        late.setblocking(False)
        late.bind((CLIENT, 0))
        late.connect_ex(("127.0.0.1", port))
        harness.wait_until(lambda: tcpext("ListenOverflows") > before, what="a listen overflow")

    def host_sshd(self, port, *, config="", prefix=()):
        """Debian 12's sshd (9.2) on `port`, its standard error a file, with `config` added: (Popen, its log's path)."""
        d = tempfile.mkdtemp(prefix="rsttrace-explain-")
        self.addCleanup(subprocess.run, ["rm", "-rf", d])
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/key"], check=True)
        with open(f"{d}/config", "w") as f:
            f.write(f"Port {port}\nHostKey {d}/key\nPidFile {d}/pid\nUsePAM no\nLogLevel VERBOSE\n{config}")
        err = open(f"{d}/err", "w")
        self.addCleanup(err.close)
        sshd = subprocess.Popen(
            list(prefix) + ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            'mount -t tmpfs rsttrace-test /run && mkdir -m 0755 /run/sshd && exec /usr/sbin/sshd -D -e -f "$0"',
                            f"{d}/config"], stderr=err)
        self.addCleanup(sshd.wait)
        # `unshare --fork` ignores SIGTERM while it waits; --kill-child takes sshd with it.
        self.addCleanup(sshd.kill if prefix else sshd.terminate)
        harness.wait_until(lambda: "Server listening" in read(f"{d}/err") or sshd.poll() is not None,
                           what="sshd listening")
        self.assertIsNone(sshd.poll(), read(f"{d}/err"))
        return sshd, f"{d}/err"

    def test_the_host_sshd_and_its_log(self):
        # Debian 12's sshd (9.2: no PerSourcePenalties), its standard error a file: the sshd
        # step says what it read of it; MaxStartups from its own sshd -T, its count from its title.
        port = 2207
        sshd, err = self.host_sshd(port, config="MaxStartups 1:30:1\n")
        # A connection that never authenticates (a penalty on 9.8+, nothing on 9.2).
        with socket.create_connection(("127.0.0.1", port)) as noauth:
            self.assertTrue(noauth.recv(64).startswith(b"SSH-2.0-"))
        harness.wait_until(lambda: "Connection closed by 127.0.0.1" in read(err), what="its end logged")
        record = explain_json(self, CLIENT, port, 0)
        step = record["steps"][3]
        self.assertEqual(step["result"], "pass")
        self.assertFalse(step["certain"])
        self.assertIn(f"its standard error (/proc/{sshd.pid}/fd/2), 0 of them PerSourcePenalties lines", step["detail"])
        self.assertIn(f"no penalty for {CLIENT} in its log (read ", step["detail"])
        self.assertIn("MaxStartups has room: MaxStartups 1:30:1 (sshd -T), 0 pre-auth connections by the listener's "
                      "own title", step["detail"])
        self.assertIn("this sshd has no PerSourcePenalties (before OpenSSH 9.8; sshd -T)", step["detail"])
        self.assertRegex(record["steps"][2]["detail"], r"0 waiting, backlog \d+ \(sock_diag\)")
        # One pre-auth connection open: full, by sshd -T's 1:30:1 and the title's count.
        holder = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(holder.close)
        self.assertTrue(holder.recv(64).startswith(b"SSH-2.0-"))
        harness.wait_until(lambda: "[listener] 1 of " in read(f"/proc/{sshd.pid}/cmdline").replace("\0", " "),
                           what="the listener's title counting the held connection")
        record = explain_json(self, CLIENT, port, 1)
        self.assertEqual(record["verdict"], "sshd")
        self.assertIn("MaxStartups is full: MaxStartups 1:30:1 (sshd -T), 1 pre-auth connections", record["steps"][3]["detail"])

    def test_an_sshd_whose_sshd_t_is_refused_is_judged_by_its_title(self):
        # In a pid namespace of its own, the broker's checks refuse to run its sshd -T (a
        # container's root could otherwise have the host run its binary): the title, and why.
        port = 2210
        sshd, _ = self.host_sshd(port, config="MaxStartups 1:30:1\n", prefix=["unshare", "--pid", "--fork", "--kill-child"])
        record = explain_json(self, CLIENT, port, 0)
        self.assertIn("MaxStartups has room: MaxStartups 1:100:1 by its title (sshd -T not run: it runs in a pid "
                      "namespace of its own (a container?)), 0 pre-auth connections", record["steps"][3]["detail"])

    def test_a_penalty_in_the_auth_log_of_the_listeners_root(self):
        # A root-owned "sshd" chrooted into a directory whose /var/log/auth.log holds
        # rsyslog's lines: its own pid's penalty counts, another pid's (forged) does not.
        port = 2208
        with tempfile.TemporaryDirectory() as root:
            os.makedirs(f"{root}/var/log")
            log = f"{root}/var/log/auth.log"
            open(log, "w").close()
            script = textwrap.dedent(f"""\
                import os, socket, sys
                open("/proc/self/comm", "w").write("sshd")
                s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", {port})); s.listen(8)
                os.chroot("{root}"); os.chdir("/")
                print("listening", flush=True)
                sys.stdin.read()
                """)
            child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
            self.addCleanup(child.wait)
            self.addCleanup(child.kill)
            self.assertEqual(child.stdout.readline().strip(), "listening")
            now = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())
            reason = "penalty: connections without attempting authentication"
            with open(log, "a") as f:
                f.write(f"{now} host sshd[{child.pid}]: srclimit_penalise: ipv4: new {CLIENT}/32 active penalty of "
                        f"300 seconds for {reason}\n")
                f.write(f"{now} host sshd[{child.pid + 100000}]: srclimit_penalise: ipv4: new 127.0.0.7/32 active "
                        f"penalty of 300 seconds for {reason}\n")
                f.write(f"{now} host sshd[{child.pid}]: drop connection #0 from [{CLIENT}]:40000 on [127.0.0.1]:{port} "
                        f"{reason}\n")
            record = explain_json(self, CLIENT, port, 1)
            self.assertEqual(record["verdict"], "sshd")
            self.assertFalse(record["certain"])
            step = record["steps"][3]
            self.assertEqual(step["result"], "block")
            self.assertRegex(step["detail"], rf"a noauth penalty holds {re.escape(CLIENT)} \(at least (2\d\d|300) s left\)")
            self.assertIn(f"/proc/{child.pid}/root/var/log/auth.log", step["detail"])
            self.assertIn(f"echo 'PerSourcePenaltyExemptList {CLIENT}' >> /etc/ssh/sshd_config.d/rsttrace-remedy.conf",
                          record["remedy"])
            other = explain_json(self, "127.0.0.7", port, 0)
            self.assertIn("no penalty for 127.0.0.7 in its log (read 3 lines", other["steps"][3]["detail"])

    def assertOneLineError(self, result, *fragments):
        self.assertEqual(result.returncode, 2, result)
        self.assertEqual(result.stdout, "")
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("rsttrace: error: failed to "), lines[0])
        for fragment in fragments:
            self.assertIn(fragment, lines[0])

    def test_errors(self):
        self.assertOneLineError(explain("not-an-address"), "failed to parse address not-an-address")
        self.assertOneLineError(explain("127.0.0.1:0"), "port")
        self.assertOneLineError(explain(CLIENT, "--netns", "4294967295"), "network namespace 4294967295")
        self.assertOneLineError(explain(CLIENT, "--netns", "/run/netns/rsttrace-no-such-ns"), "No such file")
        self.assertOneLineError(
            explain(CLIENT, prefix=["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                    "--inh-caps=-all", "--bounding-set=-all"]),
            "needs root")


if __name__ == "__main__":
    unittest.main()
