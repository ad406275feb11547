"""Shared plumbing for the root tests: a private network namespace per test
file, rsttrace run as a separate process, and waiting on conditions (never on
fixed sleeps). Python standard library only."""

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RSTTRACE = os.environ.get("RSTTRACE", os.path.join(HERE, "..", "..", "build", "rsttrace"))
CLONE_NEWNET = 0x40000000
SKIP = 77  # CTest SKIP_RETURN_CODE


def require_root():
    if os.geteuid() != 0:
        print("SKIP: root tests need root (BPF, network namespaces)")
        sys.exit(SKIP)
    if not os.access(RSTTRACE, os.X_OK):
        print(f"FAIL: no rsttrace binary at {RSTTRACE}")
        sys.exit(1)


def enter_private_netns():
    """Moves this process (and every child it starts) into a new network
    namespace with loopback up; returns the namespace inode."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    return os.stat("/proc/self/ns/net").st_ino


def status_of(pid):
    """/proc/PID/status as a dict of its fields."""
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def children_of(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(child) for child in f.read().split()]


def nft_reject_table(test, table, port, comment):
    """An inet table whose input chain rejects TCP to `port` with a reset, removed at the test's end."""
    subprocess.run(["nft", "-f", "-"], check=True, text=True, input=(
        f"table inet {table} {{\n  chain input {{\n    type filter hook input priority 0;\n"
        f"    tcp dport {port} reject with tcp reset comment \"{comment}\"\n  }}\n}}\n"))
    test.addCleanup(subprocess.run, ["nft", "delete", "table", "inet", table], capture_output=True)


POLL_INTERVAL = 0.02  # how often a condition is checked, not a wait for an outcome


def wait_until(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(POLL_INTERVAL)


def tcp_mib(name):
    """A TCP counter of the current network namespace (/proc/net/snmp)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index(name)])


class Rsttrace:
    """rsttrace --json as a child process; lines are collected as they come."""

    def __init__(self, *args, json_output=True, ready_owner=None):
        self.args = list(args)
        self.ready_owner = ready_owner  # uid that must write the ready file (--user)
        self.json_output = json_output
        self.lines = []
        self.stderr = ""
        self.returncode = None
        self._lock = threading.Lock()

    def __enter__(self):
        self._dir = tempfile.TemporaryDirectory(prefix="rsttrace-test-")
        self.ready_file = os.path.join(self._dir.name, "ready")
        if self.ready_owner is not None:
            os.chown(self._dir.name, self.ready_owner, -1)
        cmd = [RSTTRACE, "--ready-file", self.ready_file] + self.args
        if self.json_output:
            cmd.append("--json")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        try:
            wait_until(lambda: os.path.exists(self.ready_file) or self.proc.poll() is not None,
                       timeout=60, what="rsttrace ready file")
            if self.proc.poll() is not None:
                raise AssertionError(f"rsttrace exited {self.proc.returncode}: {self.proc.stderr.read()}")
        except BaseException:
            self._kill()
            raise
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.stop()
        self._dir.cleanup()
        return False

    def _read_stdout(self):
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def _kill(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()

    def stop(self, sig=signal.SIGINT, timeout=30):
        if self.proc.stdout.closed:
            return self.returncode
        self.proc.send_signal(sig)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise AssertionError("rsttrace did not stop on a signal")
        self._reader.join(timeout=10)
        self.stderr = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.returncode

    def records(self):
        with self._lock:
            lines = list(self.lines)
        return [json.loads(line) for line in lines]

    def events(self, **match):
        """Events whose fields equal every keyword given."""
        return [r for r in self.records()
                if r["type"] == "event" and all(r.get(k) == v for k, v in match.items())]

    def wait_event(self, timeout=10, **match):
        return wait_until(lambda: self.events(**match), timeout, f"event {match}")[0]

    def summary(self):
        found = [r for r in self.records() if r["type"] == "summary"]
        assert len(found) == 1, f"expected one summary, got {len(found)}"
        return found[0]


PEER = os.path.join(HERE, "peer.py")


class Peer:
    """A helper process (peer.py) with a comm of its own, driven over stdio:
    it prints 'ready' lines and waits for a line on stdin between steps."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, PEER] + [str(a) for a in args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def expect(self, word, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"peer exited before '{word}'")
            if line.split()[0] == word:
                return line.split()[1:]
        raise AssertionError(f"peer did not say '{word}'")

    def step(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
