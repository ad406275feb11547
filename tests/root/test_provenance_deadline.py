"""Provenance runs off the trace loop, under a deadline (issue 13: "No input ends
or stalls tracing"). The provenance broker is stopped with SIGSTOP, as a hung
nft would leave it for up to its 5 s timeout (a stopped broker is the
deterministic form of that): the lookup it was asked for does not answer. rsttrace must keep reporting other connections at once, hand out
the stuck report without its rule when its deadline passes, and still stop
within a second of SIGTERM while a lookup hangs."""

import os
import signal
import socket
import time
import unittest

import harness
from harness import Rsttrace, wait_until
from test_hostile_files import broker_of

FIREWALLED = 2241  # test_hostile_files's refused() dials this port
CLOSED = 2242      # nothing listens here: a no-listener reset, needing no provenance
NETNS = None
DEADLINE_S = 3.0   # --provenance-deadline (default 10 s)


def connect_once(port):
    with socket.socket() as sock:
        sock.settimeout(2)
        sock.connect_ex(("127.0.0.1", port))


class ProvenanceDeadlineTest(unittest.TestCase):
    def setUp(self):
        table = "rsttrace_deadline"
        harness.nft_reject_table(self, table, FIREWALLED, "deadline-test")
        self.listener = socket.socket()  # the firewall rejects before it: a listener makes it a firewall verdict
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", FIREWALLED))
        self.listener.listen(16)
        self.addCleanup(self.listener.close)

    def test_a_stuck_lookup_stalls_nothing_and_stop_is_prompt(self):
        with Rsttrace("--port", str(FIREWALLED), "--port", str(CLOSED), "--netns", str(NETNS),
                      "--provenance-deadline", str(DEADLINE_S)) as rt:
            connect_once(FIREWALLED)
            first = rt.wait_event(verdict="firewall")
            self.assertIn("deadline-test", first["detail"])  # the broker answers while it runs
            broker = broker_of(rt)
            os.kill(broker, signal.SIGSTOP)
            try:
                connect_once(FIREWALLED)  # its rule lookup now hangs in the broker
                asked = time.monotonic()
                connect_once(CLOSED)
                # Other connections are reported as before: the loop does not wait for the lookup.
                rt.wait_event(verdict="no-listener", timeout=DEADLINE_S - 1)
                self.assertEqual(len(rt.events(verdict="firewall")), 1)
                late = wait_until(lambda: rt.events(verdict="firewall")[1:], DEADLINE_S + 3,
                                  "the stuck report after its deadline")[0]
                self.assertGreaterEqual(time.monotonic() - asked, DEADLINE_S - 0.5)
                self.assertIn("provenance not read within 3.0 s", late["detail"])
                self.assertIsNone(late["rule"])
                # Another lookup is queued behind the stuck one; SIGTERM must not wait for either.
                # Drained now or at stop, its lookup is queued behind the stuck one either way.
                connect_once(FIREWALLED)
                began = time.monotonic()
                rt.proc.send_signal(signal.SIGTERM)
                self.assertEqual(rt.proc.wait(timeout=5), 0)
                self.assertLess(time.monotonic() - began, 1.0, "SIGTERM honoured within a second")
            finally:
                # The stopped broker reads EOF once it runs again, and exits (its stderr is
                # the collector's: rt.stop() reads it to the end).
                try:
                    os.kill(broker, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            rt.stop()
        last = rt.events(verdict="firewall")[-1]
        self.assertIn("provenance not read: rsttrace was stopping", last["detail"])
        summary = rt.summary()
        self.assertGreaterEqual(summary["provenance"]["timed_out"], 2)
        self.assertEqual(summary["lost"], 0)


if __name__ == "__main__":
    harness.require_root()
    NETNS = harness.enter_private_netns()
    unittest.main()
