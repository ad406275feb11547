"""rsttrace explain against a real namespace: an nft drop, an iptables-nft
reject, a hosts.deny line of a libwrap listener's own root, no listener, and
an open path; exit codes 0/1/2 and the "type": "explain" object."""

import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import unittest

import harness
from harness import RSTTRACE

CLIENT = "127.0.0.9"


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
