"""Floods: connections counted once whatever path they take (event line or
storm), checked against the kernel's own counters (the MIB counters nstat
reads), in the lines, the summary, the metrics page and `rsttrace report`."""

import errno
import os
import re
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import harness
from harness import Rsttrace, tcp_mib, wait_until

PORT = 2224
NETNS = None
METRICS = "127.0.0.1:9831"


def connect_refused(addr, port, bind):
    with socket.socket() as sock:
        sock.bind((bind, 0))
        err = sock.connect_ex((addr, port))
        assert err == errno.ECONNREFUSED, f"expected ECONNREFUSED, got {errno.errorcode.get(err, err)}"


def metric_sums():
    """{family: sum over its samples} of the metrics page."""
    with urllib.request.urlopen(f"http://{METRICS}/metrics", timeout=5) as response:
        text = response.read().decode()
    sums = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            name = series.split("{", 1)[0]
            sums[name] = sums.get(name, 0) + float(value)
    return sums


def metric_by_verdict(name):
    with urllib.request.urlopen(f"http://{METRICS}/metrics", timeout=5) as response:
        text = response.read().decode()
    counts = {}
    for verdict, value in re.findall(rf'^{name}\{{verdict="([^"]+)"[^}}]*\}} (\S+)$', text, re.M):
        counts[verdict] = counts.get(verdict, 0) + float(value)
    return counts


class LoopbackRefusalsTest(unittest.TestCase):
    def test_refused_loopback_connections_count_once_everywhere(self):
        tail = 1000  # sent once both storms are counting in the kernel: these must be aggregated
        capture_dir = tempfile.mkdtemp(prefix="rsttrace-floods-")
        capture = os.path.join(capture_dir, "events.jsonl")
        # A threshold the loop passes at once: both ends' storms start early in it.
        with Rsttrace("--port", str(PORT), "--netns", str(NETNS), "--storm-threshold", "200",
                      "--output", capture, "--metrics", METRICS) as rt:
            sent_before, failed_before = tcp_mib("OutRsts"), tcp_mib("AttemptFails")
            # The collector starts a storm from the lines it has read, on its own timer: a slow
            # collector (the sanitizer's) may start it after any fixed loop has ended. So the loop
            # runs until both storms have started (the kernel counts them from then), then sends
            # a tail that the kernel must aggregate.
            count = 0
            started = lambda: len([r for r in rt.records() if r["type"] == "storm" and r["state"] == "start"]) == 2
            deadline = time.monotonic() + 60
            while not started():
                self.assertLess(time.monotonic(), deadline, "both ends' storms never started")
                for _ in range(100):
                    connect_refused("127.0.0.1", PORT, bind="127.0.0.5")
                count += 100
            for _ in range(tail):
                connect_refused("127.0.0.1", PORT, bind="127.0.0.5")
            count += tail
            resets = tcp_mib("OutRsts") - sent_before
            refused = tcp_mib("AttemptFails") - failed_before
            # Every connection's line has settled and every storm has ended.
            wait_until(lambda: len([r for r in rt.records() if r["type"] == "storm" and r["state"] == "end"]) == 2,
                       30, "both ends' storms to end")

            def connections_on_page():
                sums = metric_sums()
                return sums.get("rsttrace_events_total", 0) + sums.get("rsttrace_storm_connections_total", 0)
            wait_until(lambda: connections_on_page() == count, 30, f"the metrics page to count {count} connections")
            by_verdict = metric_by_verdict("rsttrace_events_total")
            for verdict, value in metric_by_verdict("rsttrace_storm_connections_total").items():
                by_verdict[verdict] = by_verdict.get(verdict, 0) + value
        self.assertEqual(rt.returncode, 0)
        # The kernel: one reset sent per connection, and each connection's client refused.
        self.assertEqual(resets, count)
        self.assertEqual(refused, count)
        self.assertEqual(by_verdict, {"no-listener": count})

        summary = rt.summary()
        self.assertEqual(summary["lost"], 0)
        self.assertGreaterEqual(summary["aggregated"], tail)  # the storm path was taken
        self.assertEqual(summary["events"] + summary["storm_connections"], count)
        self.assertEqual(summary["verdicts"].keys() | summary["storm_verdicts"].keys(), {"no-listener"})
        self.assertEqual(summary["aggregated"], summary["kernel"]["aggregated"])
        # Both ends are still every kernel event: the twin's count is in `aggregated`.
        kernel = summary["kernel"]
        # The server end of each connection, once: a sent reset whose SYN's NO_SOCKET drop is folded
        # (6.18), or that drop alone where tcp_send_reset misses resets without a socket (6.1).
        self.assertEqual(kernel["reset_sent"] + kernel["drop"] - kernel["folded"], count)
        self.assertEqual(kernel["reset_received"], count)
        self.assertEqual(kernel["emitted"] + kernel["folded"] + kernel["aggregated"],
                         kernel["reset_sent"] + kernel["reset_received"] + kernel["drop"])

        storms = [r for r in rt.records() if r["type"] == "storm"]
        twins = [r for r in storms if r["twin"]]
        self.assertTrue(twins)
        for line in twins:
            self.assertEqual((line["direction"], line["tcp_state"], line["connections"]), ("received", "SYN_SENT", 0))
            self.assertEqual(line["verdict"], "no-listener")
        for line in storms:
            if not line["twin"]:
                self.assertEqual(line["connections"], line["count"])

        report = subprocess.run([harness.RSTTRACE, "report", capture], capture_output=True, text=True, check=True)
        self.assertIn(f"\n{count} events from ", report.stdout)
        verdicts = report.stdout.split("by verdict:\n", 1)[1].split("top remote addresses:", 1)[0]
        self.assertEqual(verdicts.split(), ["no-listener", str(count)])


if __name__ == "__main__":
    harness.require_root()
    NETNS = harness.enter_private_netns()
    unittest.main()
