"""`rsttrace check` on the running kernel: it names what the kernel offers and
its answers agree with what can be seen independently (BTF, sysfs)."""

import os
import subprocess
import unittest

import harness


class CheckTest(unittest.TestCase):
    def test_reports_this_kernel(self):
        run = subprocess.run([harness.RSTTRACE, "check"], capture_output=True, text=True, timeout=120)
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        out = run.stdout
        self.assertIn(f"kernel {os.uname().release}", out)
        for tracepoint in ("tcp:tcp_send_reset", "tcp:tcp_receive_reset", "skb:kfree_skb", "sock:inet_sock_set_state"):
            line = next(l for l in out.splitlines() if l.strip().startswith(tracepoint))
            self.assertIn("yes", line)
        self.assertRegex(out, r"tp_btf \(tcp:tcp_send_reset\)\s+works")
        # kprobes: the answer must match the kernel's kprobe PMU.
        kprobes = os.path.exists("/sys/bus/event_source/devices/kprobe/type")
        line = next(l for l in out.splitlines() if "kprobe (tcp_send_active_reset)" in l)
        self.assertEqual(line.split(")", 1)[1].strip().startswith("works"), kprobes, line)
        self.assertIn("fentry (tcp_send_active_reset)", out)
        self.assertRegex(out, r"rsttrace works (fully )?on this kernel")


if __name__ == "__main__":
    harness.require_root()
    unittest.main()
