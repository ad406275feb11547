"""Issue 13, findings 1 and 2 and the failed-open finding, as the audit did
them: hostile processes run as `nobody`, in user namespaces of their own where
that is the attack, and try to make rsttrace (as root) connect to their
socket, name them as the writer of hosts.deny, or print a root-only file."""

import os
import secrets
import shutil
import subprocess
import sys
import select
import tempfile
import time
import unittest

import harness
from harness import Rsttrace

PORT = 2299
# The system python: one nobody can run (the tests' own may live in /root).
PYTHON = "/usr/bin/python3"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

# A fake sshd: in its own network namespace (loopback only), a client child
# connects and sends a banner; the server reads the wrappers files, sends
# nothing and closes with the banner unread: a reset, as libwrap's refusal.
# argv: PORT [CHROOT [BIND_SOURCE]]: chroot there first, after bind-mounting
# BIND_SOURCE over CHROOT/etc/hosts.deny (its own mount namespace).
FAKE_SSHD = r'''
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
port = int(sys.argv[1])
if len(sys.argv) > 3:
    target = os.path.join(sys.argv[2], "etc/hosts.deny")
    if libc.mount(sys.argv[3].encode(), target.encode(), None, 4096, None) != 0:  # MS_BIND
        sys.exit("bind mount failed: errno %d" % ctypes.get_errno())
listener = socket.socket()
listener.bind(("127.0.0.1", port))
listener.listen(1)
if len(sys.argv) > 2:
    os.chroot(sys.argv[2])
    os.chdir("/")
if os.fork() == 0:
    client = socket.socket()
    client.connect(("127.0.0.1", port))
    client.send(b"SSH-2.0-client\r\n")
    # The client stays connected until the test has seen rsttrace's line (a
    # line on stdin): the fake sshd waits for it (os.wait below), so its root is
    # still there when rsttrace reads the files the refusal came from. (A real
    # sshd child may be gone by then: #15.)
    sys.stdin.readline()
    os._exit(0)
libc.prctl(15, b"sshd", 0, 0, 0)  # PR_SET_NAME
conn, _ = listener.accept()
import select
select.select([conn], [], [], 5)
for name in ("/etc/hosts.allow", "/etc/hosts.deny"):
    try:
        with open(name) as f:
            f.read()
    except OSError as e:
        print("read", name, "failed:", e.errno, flush=True)
conn.close()
print("reset-done", flush=True)
os.wait()
'''

# A fake fail2ban-server owned by nobody, with `-s SOCKET` in its command
# line, serving SOCKET; its child (named sh) tries to open /etc/hosts.deny for
# writing. On a line on stdin it says whether anything connected to SOCKET.
FAKE_FAIL2BAN = r'''
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, b"fail2ban-server", 0, 0, 0)
path = sys.argv[sys.argv.index("-s") + 1]
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(8)
child = os.fork()
if child == 0:
    libc.prctl(15, b"sh", 0, 0, 0)
    try:
        os.close(os.open("/etc/hosts.deny", os.O_WRONLY | os.O_APPEND))
        os._exit(0)
    except OSError as e:
        os._exit(e.errno)
_, status = os.waitpid(child, 0)
print("writer", child, os.waitstatus_to_exitcode(status), flush=True)
sys.stdin.readline()
server.setblocking(False)
try:
    server.accept()
    print("connected", flush=True)
except BlockingIOError:
    print("nobody-connected", flush=True)
'''


def fake_sshd_command(*args, userns_flags="-Urn"):
    """The fake sshd as nobody in `unshare userns_flags`, loopback up."""
    return NOBODY + ["unshare", userns_flags, "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                     PYTHON, "-c", FAKE_SSHD, str(PORT)] + [str(a) for a in args]


def refused_by_fake_sshd(rt, command, timeout=30):
    """Runs a fake sshd until its reset, waits for rsttrace's wrappers line
    while its client is still connected, then lets the client go. Returns
    (event, the fake's stdout up to its reset, its stderr)."""
    fake = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        # The raw descriptor, not readline(): two lines in one chunk would
        # leave the second in Python's buffer, where select() cannot see it.
        received, deadline = b"", time.monotonic() + timeout
        while b"reset-done\n" not in received:
            ready, _, _ = select.select([fake.stdout], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(fake.stdout.fileno(), 4096) if ready else b""
            if not chunk:
                fake.kill()
                raise AssertionError(f"the fake sshd gave no reset: {received!r} {fake.communicate()[1]}")
            received += chunk
        lines = received.decode().splitlines()
        event = rt.wait_event(verdict="tcp-wrappers", local_port=PORT, timeout=15)
        _, stderr = fake.communicate("go\n", timeout=timeout)
        return event, "\n".join(lines), stderr
    finally:
        if fake.poll() is None:
            fake.kill()
            fake.communicate()


class HostileProcessesTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="rsttrace-hostile-")
        os.chmod(self.dir, 0o755)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_fake_fail2ban_socket_is_never_asked(self):
        """Finding 1: a fail2ban-server named by nobody, its failed write and a
        userns sshd's refusal must not make rsttrace run fail2ban-client against
        the fake socket (which would unpickle its answer as root)."""
        sock = os.path.join(self.dir, "x.sock")
        os.chmod(self.dir, 0o1777)
        with Rsttrace("--port", str(PORT)) as rt:
            fake = subprocess.Popen(NOBODY + [PYTHON, "-c", FAKE_FAIL2BAN, "-s", sock],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                words = fake.stdout.readline().split()
                self.assertEqual(words[0], "writer")
                writer_pid, errno = int(words[1]), int(words[2])
                self.assertEqual(errno, 13, "the fake writer's open must fail with EACCES")
                event, _, _ = refused_by_fake_sshd(rt, fake_sshd_command())
                fake.stdin.write("report\n")
                fake.stdin.flush()
                self.assertEqual(fake.stdout.readline().strip(), "nobody-connected")
            finally:
                fake.kill()
                fake.wait()
                fake.stdin.close()
                fake.stdout.close()
        # The refused open is no writer; the userns sshd's words are its own.
        self.assertFalse(event["written_by"] and event["written_by"].get("pid") == writer_pid, event)
        self.assertNotIn(f"[{writer_pid}]", event["detail"])
        self.assertIsNone(event["fail2ban_jail"], event)
        self.assertIn("uid 65534: its own word", event["detail"])

    def secret(self):
        """A root-only file with a rule line holding a random marker."""
        marker = "MARKER" + secrets.token_hex(8)
        secret_dir = tempfile.mkdtemp(prefix="rsttrace-secret-", dir="/var/tmp")
        self.addCleanup(shutil.rmtree, secret_dir, True)
        os.chmod(secret_dir, 0o755)
        path = os.path.join(secret_dir, "secret")
        with open(path, "w") as f:
            f.write(f"sshd, {marker}: ALL\n")
        os.chmod(path, 0o600)
        return path, marker

    def chroot_dir(self):
        root = os.path.join(self.dir, "root")
        os.makedirs(os.path.join(root, "etc"))
        with open(os.path.join(root, "etc/hosts.allow"), "w") as f:
            f.write("# decoy\n")
        return root

    def test_symlink_out_of_a_chroot_is_not_followed(self):
        """Finding 2: etc/hosts.deny in a userns chroot is a symlink to a
        root-only file outside; rsttrace resolves it inside the chroot."""
        path, marker = self.secret()
        root = self.chroot_dir()
        os.symlink(path, os.path.join(root, "etc/hosts.deny"))
        # Inside the chroot the link leads to a decoy of the user's own.
        inner = root + path
        os.makedirs(os.path.dirname(inner))
        with open(inner, "w") as f:
            f.write("sshd: 127.0.0.1\n")
        with Rsttrace("--port", str(PORT)) as rt:
            event, _, _ = refused_by_fake_sshd(rt, fake_sshd_command(root, userns_flags="-Urnm"))
        output = "\n".join(rt.lines)
        self.assertNotIn(marker, output)
        # The broker did read the process's own view of the file: the decoy.
        self.assertEqual(event["wrapper_rule"]["text"], "sshd: 127.0.0.1", event)
        self.assertIn("its own word", event["detail"])

    def test_bind_mounted_root_file_is_not_read(self):
        """Finding 2, bind-mount variant: in its own user and mount
        namespaces, nobody bind-mounts a root-only file over its chroot's
        etc/hosts.deny; rsttrace opens the user's files as that user."""
        path, marker = self.secret()
        root = self.chroot_dir()
        open(os.path.join(root, "etc/hosts.deny"), "w").close()
        with Rsttrace("--port", str(PORT)) as rt:
            event, output, stderr = refused_by_fake_sshd(rt, fake_sshd_command(root, path, userns_flags="-Urnm"))
            self.assertIn("read /etc/hosts.deny failed: 13", output, stderr)
        self.assertNotIn(marker, "\n".join(rt.lines))
        self.assertIsNone(event["wrapper_rule"], event)

    def test_failed_write_open_is_not_the_writer(self):
        """Low finding: only an open for writing that succeeded makes a writer.
        In a private mount namespace with its own hosts.deny: root writes it,
        then nobody fails to; the reported writer is root's process."""
        deny = os.path.join(self.dir, "hosts.deny")
        with open(deny, "w") as f:
            f.write("sshd: 127.0.0.1\n")
        os.chmod(deny, 0o644)
        script = (f'mount --bind "$1" /etc/hosts.deny && '
                  f'sh -c \'exec 3>>/etc/hosts.deny; echo "wrote $$"\' && '
                  f'{" ".join(NOBODY)} sh -c \'echo "failed $$"; exec 3>>/etc/hosts.deny\' ; '
                  f'exec unshare -n sh -c \'ip link set lo up && exec "$0" -c "$1" "$2"\' '
                  f'{sys.executable} "$2" {PORT}')
        with Rsttrace("--port", str(PORT)) as rt:
            event, output, stderr = refused_by_fake_sshd(
                rt, ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", deny, FAKE_SSHD])
            self.assertIn("Permission denied", stderr)
        pids = {line.split()[0]: int(line.split()[1]) for line in output.splitlines()
                if line.split()[0] in ("wrote", "failed")}
        self.assertEqual(event["written_by"]["pid"], pids["wrote"], event)
        self.assertNotIn("its own word", event["detail"])


if __name__ == "__main__":
    harness.require_root()
    harness.enter_private_netns()
    unittest.main()
