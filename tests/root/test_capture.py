"""Capture files for long runs: rotation by size, logrotate's two modes with
SIGHUP, a full disk that never stops tracing, mode 0600."""

import json
import os
import signal
import socket
import stat
import subprocess
import tempfile
import unittest

import harness
from harness import Rsttrace, wait_until

PORT = 2222
NETNS = None


def refused(count):
    for _ in range(count):
        with socket.socket() as sock:
            sock.connect_ex(("127.0.0.1", PORT))


def read_lines(path, strict=True):
    """The JSON lines of a capture. strict: once rsttrace has stopped, the file
    must end in a whole line; while it runs, a line being written is skipped."""
    with open(path) as f:
        text = f.read()
    if not strict:
        text = text[:text.rfind("\n") + 1]
    assert text == "" or text.endswith("\n"), f"{path} ends in a partial line"
    return [json.loads(line) for line in text.splitlines()]


def polled(path):
    return read_lines(path, strict=False) if os.path.exists(path) else []


class CaptureTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="rsttrace-capture-")
        self.path = os.path.join(self.dir.name, "capture.jsonl")

    def tearDown(self):
        self.dir.cleanup()

    def trace(self, *extra):
        return Rsttrace("--port", str(PORT), "--netns", str(NETNS), "--output", self.path, *extra,
                        json_output=False)

    def test_rotation_keeps_whole_lines_and_the_newest_files(self):
        with self.trace("--rotate-size", "8K", "--rotate-keep", "2") as rt:
            refused(120)
            wait_until(lambda: os.path.exists(self.path + ".2"), 20, "two rotations")
            refused(60)
            wait_until(lambda: len(rt.lines) >= 180, 20, "180 text lines")
        self.assertEqual(rt.returncode, 0)
        self.assertFalse(os.path.exists(self.path + ".3"))
        for path in (self.path, self.path + ".1", self.path + ".2"):
            self.assertLessEqual(os.path.getsize(path), 8192)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
            for record in read_lines(path):
                self.assertIn(record["type"], ("event", "summary", "lost"))
        summary = read_lines(self.path)[-1]
        self.assertEqual(summary["type"], "summary")
        self.assertGreaterEqual(summary["capture"]["rotations"], 2)
        self.assertEqual(summary["capture"]["failed_writes"], 0)

    def logrotate(self, mode, rt):
        config = os.path.join(self.dir.name, "logrotate.conf")
        state = os.path.join(self.dir.name, "logrotate.state")
        postrotate = f"    postrotate\n        kill -HUP {rt.proc.pid}\n    endscript\n" if mode == "create" else ""
        with open(config, "w") as f:
            f.write(f"{self.path} {{\n    rotate 3\n    {mode}\n    missingok\n{postrotate}}}\n")
        subprocess.run(["logrotate", "--force", "--state", state, config], check=True)

    def test_logrotate_create_and_sighup(self):
        with self.trace() as rt:
            refused(5)
            wait_until(lambda: len(rt.lines) >= 5, 10, "5 lines")
            wait_until(lambda: len(polled(self.path)) >= 5, 10, "5 captured")
            self.logrotate("create", rt)
            wait_until(lambda: os.path.exists(self.path), 10, "the file reopened after SIGHUP")
            refused(3)
            wait_until(lambda: len(polled(self.path)) >= 3, 10, "new lines in the new file")
        self.assertEqual(rt.returncode, 0)  # SIGHUP did not stop it
        self.assertEqual(len([r for r in read_lines(self.path + ".1") if r["type"] == "event"]), 5)
        events = [r for r in read_lines(self.path) if r["type"] == "event"]
        self.assertEqual(len(events), 3)

    def test_logrotate_copytruncate(self):
        with self.trace() as rt:
            refused(5)
            wait_until(lambda: len(polled(self.path)) >= 5, 10, "5 captured")
            self.logrotate("copytruncate", rt)
            refused(3)
            wait_until(lambda: len([r for r in polled(self.path) if r["type"] == "event"]) >= 3, 10, "3 more")
        self.assertEqual(len([r for r in read_lines(self.path + ".1") if r["type"] == "event"]), 5)
        self.assertEqual(len([r for r in read_lines(self.path) if r["type"] == "event"]), 3)

    def test_full_disk_never_stops_tracing(self):
        # A 64 KiB tmpfs, mounted in a mount namespace of rsttrace's own.
        mount_dir = os.path.join(self.dir.name, "small")
        os.mkdir(mount_dir)
        path = os.path.join(mount_dir, "capture.jsonl")
        filler = os.path.join(mount_dir, "filler")
        ready = os.path.join(self.dir.name, "ready")
        script = (f'mount -t tmpfs -o size=64k rsttrace-test "{mount_dir}" && '
                  f'exec "{harness.RSTTRACE}" --port {PORT} --netns {NETNS} --output "{path}" --json '
                  f'--ready-file "{ready}"')
        stdout_path = os.path.join(self.dir.name, "stdout")
        stdout = open(stdout_path, "w")
        self.addCleanup(stdout.close)
        proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                stdout=stdout, stderr=subprocess.PIPE, text=True)
        printed = lambda: [r for r in polled(stdout_path) if r["type"] == "event"]
        try:
            wait_until(lambda: os.path.exists(ready) or proc.poll() is not None, 60, "ready")
            root = f"/proc/{proc.pid}/root"
            # Fill the disk from inside rsttrace's mount namespace.
            subprocess.run(["nsenter", "-t", str(proc.pid), "-m", "--", "sh", "-c",
                            f'dd if=/dev/zero of="{filler}" bs=4k 2>/dev/null; true'], check=True)
            refused(20)
            wait_until(lambda: len(printed()) >= 20, 10, "20 lines printed while the disk is full")
            # Space returns: writing resumes.
            subprocess.run(["nsenter", "-t", str(proc.pid), "-m", "--", "rm", filler], check=True)
            refused(4)
            wait_until(lambda: len([r for r in polled(root + path) if r["type"] == "event"]) >= 4, 10,
                       "lines written again after space returned")
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, err)
        summary = read_lines(stdout_path)[-1]
        self.assertEqual(summary["type"], "summary")
        self.assertGreaterEqual(summary["capture"]["failed_writes"], 20)  # the lines that did not fit
        self.assertEqual(summary["events"], 24)  # tracing itself never stopped
        self.assertIn("failed to write capture file", err)
        self.assertIn("is written again", err)


if __name__ == "__main__":
    harness.require_root()
    NETNS = harness.enter_private_netns()
    unittest.main()
