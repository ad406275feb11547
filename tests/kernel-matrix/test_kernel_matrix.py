"""The kernel matrix: the same rsttrace binary on Debian 12's stock 6.1 kernel,
booted under qemu by run-guest. `rsttrace check` must find the 6.1 fallbacks
(the tcp_send_active_reset kprobe) and the whole scenario lab must pass there,
as it does on the host. Skipped (77) with the reason when qemu or the kernel
package cannot be had."""

import json
import re
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_GUEST = os.path.join(HERE, "run-guest")
RSTTRACE = os.environ["RSTTRACE"]
SKIP = 77


def in_guest(*command, timeout=1800):
    run = subprocess.run([RUN_GUEST, "--timeout", str(timeout), "--", *command], capture_output=True, text=True)
    sys.stderr.write(run.stderr)
    if run.returncode == SKIP:
        print(run.stdout.strip())
        sys.exit(SKIP)
    return run


def main():
    check = in_guest(RSTTRACE, "check", timeout=600)
    print(check.stdout)
    assert check.returncode == 0, f"rsttrace check failed in the guest ({check.returncode})"
    out = check.stdout
    assert "kernel 6.1." in out, "the guest did not run a 6.1 kernel"
    assert "no reason, and not called for active resets" in out, "6.1's tcp_send_reset should lack the reason"
    assert "kprobe on tcp_send_active_reset" in out, "the active-reset kprobe fallback is not in use"
    # Debian's 6.1 runs all three kinds: the probes must say so (they load the real programs).
    for kind in (r"tp_btf \(tcp:tcp_send_reset\)", r"kprobe \(tcp_send_active_reset\)", r"fentry \(tcp_send_active_reset\)"):
        assert re.search(kind + r"\s+works", out), f"{kind} should work on 6.1"

    # The rows of today's guest run (the userland x clients subset for the
    # guests is chosen from the host's stage times: see README, "The Debian 13 lab").
    lab = in_guest(RSTTRACE, "selftest", "--json", "--userland", "debian12", "--clients", "loopback")
    results = [json.loads(line) for line in lab.stdout.splitlines() if line.startswith("{")]
    assert results, f"no scenario results from the guest:\n{lab.stdout}"
    failed = [r for r in results if r["result"] not in ("pass", "skip")]
    for r in results:
        row = f"{r['scenario']:<24} {r.get('userland', '-'):<9} {r.get('clients', '-'):<13}"
        print(f"6.1 guest: {row} {r['result']}" + (f"  ({r.get('error') or r.get('skip_reason')})"
                                                   if r.get("error") or r.get("skip_reason") else ""))
        for check_result in r.get("checks", []):
            for problem in check_result.get("problems", []):
                print(f"    {problem}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed (scenario lab on the 6.1 guest)")
    assert not failed and lab.returncode == 0, f"{len(failed)} scenarios failed on 6.1"
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: the kernel matrix needs root")
        sys.exit(SKIP)
    sys.exit(main())
