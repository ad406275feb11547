"""Bad input and bad environments: one clear line on stderr, a non-zero exit,
no ready file, nothing left attached."""

import os
import subprocess
import tempfile
import unittest

import harness
from harness import RSTTRACE


def run(args, prefix=(), timeout=60):
    return subprocess.run(list(prefix) + [RSTTRACE] + list(args), capture_output=True, text=True,
                          timeout=timeout)


class ErrorTest(unittest.TestCase):
    def assertOneLineError(self, result, *fragments):
        self.assertNotEqual(result.returncode, 0, result)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("rsttrace: "), lines[0])
        for fragment in fragments:
            self.assertIn(fragment, lines[0])
        self.assertEqual(result.stdout, "")

    def test_bad_ports(self):
        self.assertOneLineError(run(["--port", "0"]), "--port")
        self.assertOneLineError(run(["--port", "65536"]), "65536")
        self.assertOneLineError(run(["--port", "ssh"]), "--port")

    def test_unwritable_ready_file(self):
        with tempfile.TemporaryDirectory() as d:
            self.assertOneLineError(run(["--ready-file", os.path.join(d, "missing", "ready")]),
                                    "failed to use --ready-file", "does not exist")
            self.assertOneLineError(run(["--ready-file", d]), "is a directory")

    def test_unknown_netns(self):
        self.assertOneLineError(run(["--netns", "/run/netns/rsttrace-no-such-ns"]),
                                "failed to open --netns", "No such file")

    def test_not_root(self):
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o777)
            ready = os.path.join(d, "ready")
            result = run(["--ready-file", ready],
                         prefix=["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                 "--inh-caps=-all", "--bounding-set=-all"])
            self.assertOneLineError(result, "failed to load BPF programs", "needs root, or CAP_BPF and CAP_PERFMON")
            self.assertFalse(os.path.exists(ready))

    def test_kernel_without_btf(self):
        # Hide /sys/kernel/btf in a private mount namespace of the child only.
        script = f'mount -t tmpfs none /sys/kernel/btf && exec "{RSTTRACE}" --duration 1'
        result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                capture_output=True, text=True, timeout=60)
        self.assertOneLineError(result, "failed to read kernel BTF", "CONFIG_DEBUG_INFO_BTF")

    def test_help_is_not_an_error(self):
        result = run(["--help"])
        self.assertEqual(result.returncode, 0)
        self.assertIn("--port", result.stdout)


if __name__ == "__main__":
    harness.require_root()
    unittest.main()
