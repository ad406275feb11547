"""Issue 15: `sshd -T` of a listening sshd, run by the broker as root, only
for a listener it is safe to run for (docs/security.md, "sshd -T of a
listener"). A fake sshd (a small C program compiled here, named sshd) listens,
accepts a connection and closes it unread, as sshd's listener does for
MaxStartups; run as `sshd -T` it creates a marker file next to itself (one per
run) and prints limits no real sshd has. The marker proves whether it ran."""

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

import harness
from harness import Rsttrace

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

FAKE_SSHD_C = r'''
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "-T") == 0) {
    char path[4200];
    ssize_t n = readlink("/proc/self/exe", path, 4096);
    if (n <= 0) return 2;
    snprintf(path + n, sizeof(path) - n, ".ran.%d", (int)getpid());
    close(open(path, O_CREAT | O_WRONLY, 0644));  /* empty: RLIMIT_FSIZE 0 allows it */
    /* How to misbehave: the test names it in a file beside the binary. */
    snprintf(path + n, sizeof(path) - n, ".mode");
    char mode[16] = "";
    int fd = open(path, O_RDONLY);
    if (fd >= 0) read(fd, mode, sizeof(mode) - 1), close(fd);
    if (strncmp(mode, "garbage", 7) == 0) return printf("\033[2Jhello\n"), 0;
    if (strncmp(mode, "hang", 4) == 0) for (;;) pause();
    if (strncmp(mode, "flood", 5) == 0) for (;;) fputs("maxstartups 1:2:3\n", stdout);
    printf("port 22\nmaxstartups 4:50:9\npersourcemaxstartups none\npersourcenetblocksize 32:128\n"
           "logingracetime 120\npersourcepenalties no\n");
    return 0;
  }
  int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1])),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(listener, (struct sockaddr*)&address, sizeof(address)) || listen(listener, 8)) return perror("listen"), 1;
  printf("listening\n");
  fflush(stdout);
  for (;;) {
    int connection = accept(listener, NULL, NULL);
    if (connection < 0) return 1;
    struct pollfd data = {connection, POLLIN, 0};
    poll(&data, 1, 5000);  /* the client's banner arrives; it is never read */
    close(connection);     /* data unread: a reset (TCP_ABORT_ON_DATA) from the listener itself */
  }
}
'''


class SshdSettingsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.build = tempfile.mkdtemp(prefix="rsttrace-sshd-T-")
        source = os.path.join(cls.build, "fake_sshd.c")
        with open(source, "w") as f:
            f.write(FAKE_SSHD_C)
        cls.binary = os.path.join(cls.build, "fake_sshd")
        subprocess.run(["cc", "-O1", "-o", cls.binary, source], check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.build, ignore_errors=True)

    def setUp(self):
        # Root's own directory (mkdtemp: 0700, root's), under the sticky /tmp.
        self.dir = tempfile.mkdtemp(prefix="rsttrace-sshd-T-")
        os.chmod(self.dir, 0o755)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.sshd = os.path.join(self.dir, "sshd")
        shutil.copy(self.binary, self.sshd)
        os.chmod(self.sshd, 0o755)

    def runs(self):
        return glob.glob(self.sshd + ".ran.*")

    def listener(self, port, prefix=()):
        proc = subprocess.Popen(list(prefix) + [self.sshd, str(port)], stdout=subprocess.PIPE, text=True)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        self.addCleanup(proc.stdout.close)
        self.assertEqual(proc.stdout.readline().strip(), "listening")
        return proc

    def refused(self, rt, port, count=1):
        """`count` connections refused by the listener on `port`; their events."""
        for _ in range(count):
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            client.sendall(b"SSH-2.0-rsttrace-test\r\n")
            with self.assertRaises((ConnectionResetError, BrokenPipeError)):
                while client.recv(100):
                    pass
            client.close()
        return harness.wait_until(lambda: len(rt.events(verdict="sshd", local_port=port)) >= count and
                                  rt.events(verdict="sshd", local_port=port), 30, f"{count} sshd events on {port}")

    def test_root_listener_is_run_once_a_minute(self):
        """The control: a root listener of a root-owned sshd is run (so the
        refusals below can fail), with its limits quoted, once for two refusals."""
        port = 2291
        with Rsttrace("--port", str(port)) as rt:
            self.listener(port)
            events = self.refused(rt, port, count=2)
        for event in events:
            self.assertIn("against MaxStartups 4:50:9 (sshd -T); PerSourcePenalties is off", event["detail"])
        self.assertEqual(len(self.runs()), 1, "sshd -T runs at most once a minute per listener")

    def misbehaving(self, port, mode):
        with open(self.sshd + ".mode", "w") as f:
            f.write(mode)
        with Rsttrace("--port", str(port)) as rt:
            self.listener(port)
            event = self.refused(rt, port)[0]
        self.assertEqual(len(self.runs()), 1)
        return event["detail"]

    def test_garbage_output_leaves_the_defaults(self):
        self.assertIn("MaxStartups 10:30:100, defaults (sshd -T not run: not sshd -T output: no maxstartups line)",
                      self.misbehaving(2296, "garbage"))

    def test_a_hanging_sshd_is_killed_after_2_s(self):
        self.assertIn("defaults (sshd -T not run: it did not finish within 2 s)", self.misbehaving(2297, "hang"))

    def test_endless_output_is_cut_at_64_KiB(self):
        self.assertIn("defaults (sshd -T not run: its output passed 64 KiB)", self.misbehaving(2298, "flood"))

    def never_run(self, port, prefix=(), says=None):
        """The listener on `port` (started under `prefix`) is refused: the
        detail gives the defaults and `says(listener process)`; no run."""
        with Rsttrace("--port", str(port)) as rt:
            proc = self.listener(port, prefix)
            expected = says(proc)
            event = self.refused(rt, port)[0]
        self.assertIn(f"MaxStartups 10:30:100, defaults (sshd -T not run: {expected})", event["detail"])
        self.assertEqual(self.runs(), [])

    def test_executable_owned_by_a_user_is_never_run(self):
        os.chown(self.sshd, 65534, 65534)
        self.never_run(2292, says=lambda _: "its executable is owned by uid 65534, not root")

    def test_group_writable_directory_is_never_run(self):
        os.chmod(self.dir, 0o775)
        self.never_run(2293, says=lambda _: "its executable: a directory on it is not root's alone")

    def test_listener_in_a_user_namespace_is_never_run(self):
        self.never_run(2294, NOBODY + ["unshare", "--user", "--map-root-user"],
                       lambda proc: f"it runs in user namespace {os.stat(f'/proc/{proc.pid}/ns/user').st_ino}, "
                                    "not the initial one")

    def test_container_without_a_user_namespace_is_never_run(self):
        """uid 0 in the initial user namespace, but with fewer capabilities, as
        a container without a user namespace runs: its binary must not get the
        broker's whole root."""
        self.never_run(2290, ["setpriv", "--bounding-set", "-sys_admin,-sys_module", "--inh-caps", "-all"],
                       lambda _: "it holds fewer capabilities than rsttrace's broker (a container?)")

    def test_listener_in_a_pid_namespace_is_never_run(self):
        self.never_run(2289, ["unshare", "--pid", "--fork", "--kill-child"],
                       lambda _: "it runs in a pid namespace of its own (a container?)")

    def test_listener_of_a_user_is_never_run(self):
        self.never_run(2295, NOBODY, lambda _: "it runs as uid 65534, not root")

if __name__ == "__main__":
    harness.require_root()
    harness.enter_private_netns()
    unittest.main()
