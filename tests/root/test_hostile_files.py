"""Issue 13's lesser findings, reproduced: rsttrace started by root as an
operator would, the attacker as `nobody`. The collector keeps no uid 0; its
--output is never a symlink, a FIFO or another user's file, even after SIGHUP;
rotation works in a root-only directory; a killed broker is noticed."""

import json
import os
import pwd
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness
from harness import Rsttrace, children_of, status_of, wait_until

PORT = 2241
NETNS = None
NOBODY = 65534


def refused(count):
    for _ in range(count):
        with socket.socket() as sock:
            sock.connect_ex(("127.0.0.1", PORT))


def brokers(rt, name="rsttrace-broker"):
    """The collector's broker children of that name, zombies included (until it reaps them).
    rsttrace-broker serves provenance (rulesets, hosts files, fail2ban); rsttrace-files the
    capture and ready files."""
    found = []
    for child in children_of(rt.proc.pid):
        try:
            if status_of(child)["Name"] == name:
                found.append(child)
        except FileNotFoundError:  # reaped meanwhile
            pass
    return found


def broker_of(rt):
    found = brokers(rt)
    assert len(found) == 1, f"expected one broker, found {found}"
    return found[0]


def as_nobody(*argv):
    """The attacker: a command run as nobody, without groups."""
    return subprocess.run(list(argv), user=NOBODY, group=NOBODY, extra_groups=[], check=True)


def collector_user():
    try:
        return pwd.getpwnam("rsttrace")
    except KeyError:
        return pwd.getpwnam("nobody")


def start(*args, timeout=30):
    """rsttrace expected to refuse its start: (returncode, stderr, seconds taken)."""
    began = time.monotonic()
    run = subprocess.run([harness.RSTTRACE, "--port", str(PORT), "--netns", str(NETNS), "--duration", "1"] +
                         list(args), capture_output=True, text=True, timeout=timeout)
    return run.returncode, run.stderr, time.monotonic() - began


class HostileFilesTest(unittest.TestCase):
    def setUp(self):
        # A root directory others can enter, holding one that nobody controls
        # (an application's log directory, say).
        self.root = tempfile.TemporaryDirectory(prefix="rsttrace-hostile-")
        os.chmod(self.root.name, 0o755)
        self.shared = os.path.join(self.root.name, "shared")
        os.mkdir(self.shared, 0o755)
        os.chown(self.shared, NOBODY, NOBODY)
        self.path = os.path.join(self.shared, "capture.jsonl")

    def tearDown(self):
        self.root.cleanup()

    def test_collector_is_not_root_and_cannot_read_shadow(self):
        user = collector_user()
        with Rsttrace("--port", str(PORT), "--netns", str(NETNS)) as rt:
            status = status_of(rt.proc.pid)
            broker = status_of(broker_of(rt))
            self.assertEqual(status["Uid"].split(), [str(user.pw_uid)] * 4)
            self.assertEqual(status["Gid"].split(), [str(user.pw_gid)] * 4)
            self.assertEqual(status["Groups"].strip(), "")
            self.assertEqual(int(status["CapEff"], 16), 0)
            self.assertEqual(broker["Uid"].split()[0], "0")  # the broker alone keeps root
            # What those credentials can do: neither read /etc/shadow nor create files in /etc.
            same = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--"]
            shadow = subprocess.run(same + ["cat", "/etc/shadow"], capture_output=True, text=True)
            self.assertNotEqual(shadow.returncode, 0)
            self.assertIn("Permission denied", shadow.stderr)
            probe = f"/etc/rsttrace-probe-{os.getpid()}"
            self.addCleanup(lambda: os.path.exists(probe) and os.unlink(probe))
            self.assertNotEqual(subprocess.run(same + ["touch", probe], capture_output=True).returncode, 0)
        self.assertEqual(rt.returncode, 0)
        self.assertIn(f"the collector runs as user {user.pw_name}", rt.stderr)

    def test_symlink_to_a_root_file_is_refused_and_the_target_untouched(self):
        secret = os.path.join(self.root.name, "secret")
        with open(secret, "w") as f:
            f.write("root's secret\n")
        os.chmod(secret, 0o640)
        as_nobody("ln", "-s", secret, self.path)
        code, err, _ = start("--output", self.path)
        self.assertEqual(code, 1, err)
        self.assertIn(f"rsttrace: error: failed to open capture file {self.path}: a symbolic link", err)
        with open(secret) as f:
            self.assertEqual(f.read(), "root's secret\n")
        self.assertEqual(os.stat(secret).st_mode & 0o7777, 0o640)

    def test_file_precreated_by_another_user_is_refused(self):
        as_nobody("touch", self.path)
        code, err, _ = start("--output", self.path)
        self.assertEqual(code, 1, err)
        self.assertIn(f"failed to open capture file {self.path}: owned by uid {NOBODY}", err)
        self.assertEqual(os.path.getsize(self.path), 0)
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o644)  # not made rsttrace's

    def test_hard_link_is_refused(self):
        linked = os.path.join(self.root.name, "root-file")
        open(linked, "w").close()
        os.link(linked, os.path.join(self.root.name, "capture.jsonl"))
        code, err, _ = start("--output", os.path.join(self.root.name, "capture.jsonl"))
        self.assertEqual(code, 1, err)
        self.assertIn("a file with 2 links", err)

    def test_fifo_is_refused_at_start_without_hanging(self):
        as_nobody("mkfifo", self.path)
        code, err, seconds = start("--output", self.path, timeout=20)
        self.assertEqual(code, 1, err)
        self.assertIn(f"failed to open capture file {self.path}: not a regular file", err)
        self.assertLess(seconds, 10)

    def test_fifo_swapped_in_then_sighup_blocks_nothing(self):
        with Rsttrace("--port", str(PORT), "--netns", str(NETNS), "--output", self.path) as rt:
            refused(3)
            wait_until(lambda: len(rt.events()) >= 3, 10, "3 events")
            as_nobody("mv", self.path, self.path + ".moved")
            as_nobody("mkfifo", self.path)
            rt.proc.send_signal(signal.SIGHUP)  # no reader: the open would block without O_NONBLOCK
            refused(5)
            wait_until(lambda: len(rt.events()) >= 8, 10, "events on stdout after the FIFO")
            # A FIFO with a reader opens: fstat refuses it, nothing reaches the reader.
            reader = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            self.addCleanup(os.close, reader)
            rt.proc.send_signal(signal.SIGHUP)
            refused(2)
            wait_until(lambda: len(rt.events()) >= 10, 10, "events on stdout with a reader on the FIFO")
            try:
                data = os.read(reader, 4096)  # b"": no writer holds it
            except BlockingIOError:  # a writer holds it, without writing
                data = b""
            self.assertEqual(data, b"")
            began = time.monotonic()
            rt.stop(signal.SIGTERM)
            self.assertLess(time.monotonic() - began, 1.0, "SIGTERM took more than a second")
        self.assertEqual(rt.returncode, 0)
        summary = rt.summary()
        self.assertEqual(summary["events"], 10)
        self.assertGreaterEqual(summary["capture"]["failed_writes"], 7)
        self.assertEqual(rt.stderr.count("failed to reopen capture file"), 1, rt.stderr)  # once per episode
        self.assertIn("not a regular file", rt.stderr)
        with open(self.path + ".moved") as f:
            self.assertEqual(len([json.loads(line) for line in f]), 3)

    def test_rotation_in_a_root_only_directory(self):
        with tempfile.TemporaryDirectory(prefix="rsttrace-rootonly-") as directory:
            self.assertEqual(os.stat(directory).st_mode & 0o777, 0o700)
            path = os.path.join(directory, "capture.jsonl")
            with Rsttrace("--port", str(PORT), "--netns", str(NETNS), "--output", path,
                          "--rotate-size", "4K", "--rotate-keep", "2") as rt:
                self.assertNotEqual(status_of(rt.proc.pid)["Uid"].split()[0], "0")
                refused(60)
                wait_until(lambda: os.path.exists(path + ".2"), 20, "two rotations")
                wait_until(lambda: len(rt.events()) >= 60, 10, "60 events")
                rt.proc.send_signal(signal.SIGHUP)  # reopened through the broker as well
                refused(1)
                wait_until(lambda: len(rt.events()) >= 61, 10, "an event after SIGHUP")
            self.assertEqual(rt.returncode, 0)
            summary = rt.summary()
            self.assertGreaterEqual(summary["capture"]["rotations"], 2)
            self.assertEqual(summary["capture"]["failed_writes"], 0)
            self.assertFalse(os.path.exists(path + ".3"))
            for name in (path, path + ".1", path + ".2"):
                st = os.stat(name)
                self.assertEqual((st.st_uid, st.st_mode & 0o777), (0, 0o600), name)
                self.assertLessEqual(st.st_size, 4096)
                with open(name) as f:
                    text = f.read()
                self.assertTrue(text.endswith("\n"))
                for line in text.splitlines():
                    json.loads(line)

    def test_killed_broker_is_noticed_and_tracing_goes_on(self):
        table = "rsttrace_hostile"
        harness.nft_reject_table(self, table, PORT, "hostile-test")
        with socket.socket() as listener:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", PORT))
            listener.listen(16)
            with Rsttrace("--port", str(PORT), "--netns", str(NETNS)) as rt:
                refused(1)
                before = rt.wait_event(verdict="firewall")
                self.assertIn("hostile-test", before["detail"])  # the broker read the ruleset
                os.kill(broker_of(rt), signal.SIGKILL)
                wait_until(lambda: not brokers(rt), 10, "the broker reaped by the collector")
                refused(5)
                wait_until(lambda: len(rt.events(verdict="firewall")) >= 6, 10, "drops after the broker died")
                rt.stop(signal.SIGTERM)
        self.assertEqual(rt.returncode, 0)
        after = rt.events(verdict="firewall")[1:]
        for event in after:
            self.assertIn("provenance unavailable (broker exited)", event["detail"])
            self.assertNotIn("no rule", event["detail"])
        self.assertEqual(rt.stderr.count("broker exited (signal 9): provenance unavailable"), 1, rt.stderr)
        self.assertIn("cannot be restarted", rt.stderr)


if __name__ == "__main__":
    harness.require_root()
    NETNS = harness.enter_private_netns()
    unittest.main()
