"""Issue 13, finding 3: a user's own namespace holds rulesets no parser may
trust. As `nobody`, in a user and network namespace of its own (unshare -Urn),
the audit added an iptables-nft rule whose comment holds newlines and a
counter-shaped line, then sent a SYN to the port: rsttrace aborted with
std::out_of_range from parse_iptables_save. Here, with nft rules of odd shapes
beside it, rsttrace (root, every namespace, no --netns) must stay alive, report
the drop with the rule, and exit 0 at SIGTERM."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

import harness
from harness import Rsttrace, wait_until

PORT = 2917
EVIL_COMMENT = "x\n[0:0]\ny"

# nft rules a parser meets rarely: a concatenation, a verdict map, an interval
# set, a jump, and a comment with newlines (only nft's JSON input takes one).
ODD_NFT = {"nftables": [
    {"table": {"family": "inet", "name": "odd"}},
    {"chain": {"family": "inet", "table": "odd", "name": "in", "type": "filter", "hook": "input",
               "prio": -10, "policy": "accept"}},
    {"chain": {"family": "inet", "table": "odd", "name": "side"}},
    {"set": {"family": "inet", "table": "odd", "name": "ranges", "type": "inet_service",
             "flags": ["interval"], "elem": [{"range": [1, 1023]}, PORT + 1]}},
    {"rule": {"family": "inet", "table": "odd", "chain": "in", "comment": EVIL_COMMENT, "expr": [
        {"match": {"op": "==", "left": {"concat": [{"payload": {"protocol": "ip", "field": "saddr"}},
                                                  {"payload": {"protocol": "tcp", "field": "dport"}}]},
                   "right": {"set": [{"concat": ["127.0.0.9", PORT]}]}}},
        {"counter": None}]}},
    {"rule": {"family": "inet", "table": "odd", "chain": "in", "expr": [
        {"vmap": {"key": {"payload": {"protocol": "tcp", "field": "dport"}},
                  "data": {"set": [[PORT, {"jump": {"target": "side"}}]]}}}]}},
    {"rule": {"family": "inet", "table": "odd", "chain": "in", "expr": [
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": "@ranges"}},
        {"counter": None}, {"drop": None}]}},
    {"rule": {"family": "inet", "table": "odd", "chain": "side", "expr": [{"counter": None}]}},
]}

# Runs as nobody inside its own user and network namespace.
INSIDE = r"""
set -e
ip link set lo up
iptables-nft -A INPUT -p tcp --dport "$PORT" -m comment --comment "$EVIL_COMMENT" -j DROP
nft -j -f "$ODD_NFT"
echo ready
python3 -c '
import socket, sys
s = socket.socket()
s.settimeout(1.5)  # the SYN and its retransmission after 1 s, both dropped
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
    print("connected")
except OSError:
    print("dropped")
' "$PORT"
read _
"""


def userns_as_nobody_works():
    probe = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            "unshare", "-Urn", "true"], capture_output=True, text=True)
    return probe.returncode == 0, probe.stderr.strip()


class HostileRulesetsTest(unittest.TestCase):
    def test_an_iptables_comment_with_newlines_in_a_user_namespace(self):
        works, why = userns_as_nobody_works()
        if not works:
            self.skipTest(f"nobody cannot make a user namespace here: {why}")
        # Where nf_tables and xt_comment are modules, a user namespace cannot load them.
        if shutil.which("modprobe"):
            for module in ("nf_tables", "nft_compat", "xt_comment", "xt_tcpudp"):
                subprocess.run(["modprobe", "-q", module], capture_output=True)
        with tempfile.TemporaryDirectory(prefix="rsttrace-hostile-") as d:
            os.chmod(d, 0o755)
            odd = os.path.join(d, "odd.json")
            with open(odd, "w") as f:
                json.dump(ODD_NFT, f)
            os.chmod(odd, 0o644)
            env = dict(os.environ, PORT=str(PORT), EVIL_COMMENT=EVIL_COMMENT, ODD_NFT=odd)
            with Rsttrace("--port", str(PORT)) as rt:
                inside = subprocess.Popen(
                    ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                     "unshare", "-Urn", "sh", "-c", INSIDE],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=d)
                try:
                    self.assertEqual(inside.stdout.readline().strip(), "ready", inside.stderr.read() if inside.poll() is not None else "")
                    self.assertEqual(inside.stdout.readline().strip(), "dropped")
                    # The namespace lives until the verdict is in, so that its rulesets can be read.
                    event = rt.wait_event(timeout=20, verdict="firewall", local_port=PORT)
                finally:
                    inside.stdin.close()
                    inside.wait(timeout=30)
                    inside.stdout.close()
                    inside.stderr.close()
                self.assertIsNone(rt.proc.poll(), "rsttrace exited")
                self.assertEqual(event["kernel_reason"], "NETFILTER_DROP")
                rule = event["rule"]
                self.assertIsNotNone(rule, event["detail"])
                self.assertEqual(rule["backend"], "iptables-nft")
                self.assertEqual(rule["chain"], "INPUT")
                self.assertEqual(rule["verdict"], "drop")
                self.assertTrue(rule["certain"], rule)  # -m comment matches every packet
                # The whole rule, its comment escaped (kernel and namespace strings are untrusted).
                self.assertIn('--comment "x\\x0a[0:0]\\x0ay" -j DROP', rule["text"])
                self.assertNotIn("\n", rule["text"])
                self.assertNotEqual(event["netns"], os.stat("/proc/self/ns/net").st_ino)
                rt.stop(signal.SIGTERM)
            self.assertEqual(rt.returncode, 0, rt.stderr)
            self.assertNotIn("terminate", rt.stderr)
            self.assertEqual(rt.summary()["type"], "summary")


if __name__ == "__main__":
    harness.require_root()
    if not shutil.which("iptables-nft") or not shutil.which("setpriv"):
        print("SKIP: iptables-nft or setpriv missing (scripts/install-deps --test)")
        sys.exit(harness.SKIP)
    harness.enter_private_netns()
    unittest.main()
