"""`rsttrace report` on a hand-made capture with known counts: the printed
numbers, malformed and truncated lines, a missing file, the HTML page."""

import os
import re
import subprocess
import sys
import tempfile
import unittest

import capture_fixture

RSTTRACE = os.environ["RSTTRACE"]


class ReportCliTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="rsttrace-report-")
        self.paths = capture_fixture.write(self.dir.name)

    def tearDown(self):
        self.dir.cleanup()

    def report(self, *args):
        return subprocess.run([RSTTRACE, "report", *args], capture_output=True, text=True, timeout=60)

    def test_counts_of_a_known_capture(self):
        # Rotated file last on the command line: the story is the same.
        run = self.report(self.paths[0], self.paths[1])
        self.assertEqual(run.returncode, 0, run.stderr)
        out = run.stdout
        expected = capture_fixture.EXPECTED
        self.assertIn(f"{expected['events']} events from 2026-11-25T02:10:00.000000Z to 2026-11-25T02:25:00.000000Z", out)
        for verdict in ("tcp-wrappers", "firewall", "sshd"):
            self.assertRegex(out, rf"\n  {verdict}\s+{expected[verdict]}\n")
        self.assertIn(f"lost in the kernel: {expected['lost']}", out)
        self.assertIn("skipped lines: 1 malformed, 1 truncated", out)
        self.assertRegex(out, r"top remote addresses:\n  127\.0\.0\.2\s+4\n  127\.0\.0\.4\s+2\n")
        self.assertRegex(out, r"fail2ban jails:\n  sshd\s+5\n  recidive\s+2\n")
        self.assertRegex(out, r"2026-11-25T02:20\s+2  firewall 2")
        self.assertRegex(out, r"fixes \(run as root; rsttrace never runs them\):\n  fail2ban-client set sshd unbanip 127\.0\.0\.2\s+4\n")
        name, line = expected["malformed_line"]
        self.assertIn(f"{name}:{line}: skipped a malformed line", run.stderr)
        self.assertIn("1 truncated last line(s) skipped", run.stderr)

    def test_missing_file_is_one_line_and_nothing_printed(self):
        run = self.report(self.paths[0], os.path.join(self.dir.name, "nope.jsonl"))
        self.assertEqual(run.returncode, 1)
        self.assertEqual(run.stdout, "")
        self.assertEqual(run.stderr.strip().splitlines(),
                         [f"rsttrace: error: failed to read {self.dir.name}/nope.jsonl: No such file or directory"])

    def test_malformed_lines_are_capped_on_stderr_and_never_fatal(self):
        garbage = os.path.join(self.dir.name, "garbage.jsonl")
        with open(garbage, "wb") as f:
            f.write(b"\x1b[31m not json\n" * 500 + b"x" * (3 << 20) + b"\n")  # and one 3 MiB line
        run = self.report(garbage, *self.paths)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("9 events from", run.stdout)
        self.assertIn("skipped lines: 502 malformed, 1 truncated", run.stdout)
        warnings = run.stderr.splitlines()
        self.assertLessEqual(len(warnings), 25)
        self.assertIn(f"rsttrace: warning: {garbage}:1: skipped a malformed line: not a JSON object", warnings)
        self.assertIn("rsttrace: warning: ... and 482 more malformed lines (502 in all)", warnings)
        self.assertNotIn("\x1b", run.stderr + run.stdout)

    def test_a_directory_is_unreadable(self):
        run = self.report(self.paths[0], self.dir.name)
        self.assertEqual(run.returncode, 1)
        self.assertEqual(run.stdout, "")
        self.assertEqual(run.stderr.strip().splitlines(),
                         [f"rsttrace: error: failed to read {self.dir.name}: Is a directory"])

    def test_html_page(self):
        page = os.path.join(self.dir.name, "report.html")
        run = self.report(*self.paths, "--html", page)
        self.assertEqual(run.returncode, 0, run.stderr)
        with open(page) as f:
            html = f.read()
        self.assertIn("<svg", html)
        self.assertEqual(len(re.findall(r"<rect [^>]*fill=\"#d95f02\"><title>", html)), 4)  # wrappers: in 4 bars of 10 s
        self.assertNotIn("<script>", html)
        self.assertIn("&lt;script&gt;", html)
        self.assertNotRegex(html, r"<[^>]* (src|href)=")  # self-contained: no attribute loads anything
        self.assertNotIn("<img", html)
        # Each verdict's meaning and fix, the rules and front-ends, the latest lines.
        self.assertIn("What each verdict means, and the fix", html)
        self.assertIn("<code>fail2ban-client set recidive unbanip 127.0.0.4</code> (2)", html)
        self.assertIn("<code>nft delete rule inet t input handle 7</code>", html)
        self.assertRegex(html, r"<td>fail2ban</td><td class=\"n\">7</td>")  # 5 sshd-jail wrappers lines + 2 recidive
        self.assertIn("nftables inet f2b-table f2b-chain handle 3: tcp dport 22 ip saddr @addr-set-recidive reject", html)
        latest = html[html.index('<table id="latest">'):]
        latest = latest[:latest.index("</table>")]
        self.assertEqual(latest.count("<tr>") - 1, 9)  # every event line of the capture, newest first
        self.assertLess(latest.index("2026-11-25T02:25:00"), latest.index("2026-11-25T02:10:00"))
        bad = self.report(self.paths[0], "--html", os.path.join(self.dir.name, "no/such/dir/x.html"))
        self.assertEqual(bad.returncode, 2)
        self.assertIn("does not exist", bad.stderr)


if __name__ == "__main__":
    unittest.main()
