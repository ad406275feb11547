"""The kernel matrix: the same rsttrace binary on a stock Debian kernel booted
under qemu by run-guest (`--kernel 6.1`: Debian 12's; `--kernel 6.12`:
Debian 13's). In each guest: `rsttrace check` must report what that kernel
offers and the fallbacks it needs (measured at start, not from a version),
active resets must count once (against the kernel's OutRsts), and the scenario
lab must pass on the rows below. Guests run one after the other (one CTest test
each, RUN_SERIAL); each prints its time. Skipped (77) with the reason when qemu
or the kernel package cannot be had.

The lab rows: a representative subset, not the whole lab. TCG runs a
scenario in about 20-30 s, so the whole lab (21 scenarios) on one userland and
one client placement takes 5-9 minutes, and CI has about 15 minutes for both
guests together. Every row runs SUBSET, which covers each verdict and each
kernel path that differs between these kernels: an active reset by close()
(hosts-deny, maxstartups: no reason on 6.1, the tracepoint instead of the
kprobe), a firewall reject and drop (iptables-reject, nft-drop), a reset
without a socket (no-sshd: 6.1's tracepoint does not fire, the drop stands in)
and a received reset (peer-abort). 6.12 (Debian 13's userland, the combination
most servers run) runs it with local and remote clients; 6.1 with Debian 12's
userland locally, plus EXTRA_6_1 (fail2ban's thread names and hosts.deny write
seen by the fexit open hook; sshd's close() with unread data, the tracepoint's
active reset without a reason), and with
Debian 13's userland remotely. The host runs the whole lab on every userland
and placement. The guests set RSTTRACE_LAB_TIME_SCALE=4 (run-guest): the lab's
deadlines grow, it never sleeps longer.

Issues 15 and 16 (6.1 only, NEW_6_1): of their 24 scenarios, all run by hand
in the 6.1 guest on both userlands, CI keeps one per kernel path or kind of
evidence that differs on 6.1, on Debian 13's userland with remote clients and
the tracer's --netns only (the server's end is where every check looks; the
unfiltered remote row is SUBSET's): an iptables front-end's user chain
(f2b-iptables-multiport: multiport, the jump, the REJECT's ICMP answer), an
nft set's membership (f2b-nftables-multiport), the conntrack state read at
the drop (ct-state-invalid), conntrack's original tuple (dnat-port), and
sshd's listener refusing from its connection history and sshd -T
(sshd-noauth-refused: PerSourcePenalties; on 6.1 its refusal is often seen
only as the TIME_WAIT reset of the client's late banner, which only the fexit
on tcp_timewait_state_process shows there), and a ban that cuts an established
connection (ban-cuts-established: a connection's later drops folded into one
line; in an emulated guest the scenario keeps the ban until the tracer's line
names its rule). About 90-210 s for the six, quiet to loaded.
accept-queue-overflow is not a row (25-36 s a row in the 6.1 guest, its queue
filled across a slow link): its 6.1 path, fentry/fexit on tcp_check_req, is
asserted attached by the check rows; by hand 4/4 remote rows passed there.

Left out to keep CI near 45 minutes (measured at 6e5e3a2: 6.1 guest 509 s, 6.12
guest 482 s, CI 62 min in all): Debian 12's userland on 6.12 (a Debian 12
container on a Debian 13 host; its sshd and tools are the host's own, which the
host's lab runs on every row, and 6.12's kernel paths are the Debian 13 rows'),
and the floods on 6.12 (issue 17: test_floods and test_class_storms run in the
6.1 guest, whose paths differ: a refused SYN's server end is a NO_SOCKET drop
there; 6.12's kfree_skb and tcp_send_reset carry what the host's 6.18 does, and
the host runs both tests)."""

import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_GUEST = os.path.join(HERE, "run-guest")
RSTTRACE = os.environ["RSTTRACE"]
SKIP = 77
SUBSET = ["hosts-deny", "maxstartups", "iptables-reject", "nft-drop", "no-sshd", "peer-abort"]
EXTRA_6_1 = ["fail2ban-hostsdeny", "garbage-banner"]
NEW_6_1 = ["f2b-iptables-multiport", "f2b-nftables-multiport", "ct-state-invalid", "dnat-port", "sshd-noauth-refused",
           "ban-cuts-established"]

# Per kernel: what `rsttrace check` must say, and the lab rows (userland, clients, scenarios or None: all).
KERNELS = {
    "6.1": {
        "check": [
            (r"kernel 6\.1\.", "the guest did not run a 6.1 kernel"),
            (r"tcp:tcp_send_reset\s+yes, 2 arguments: no reason", "6.1's tcp_send_reset should lack the reason"),
            # Measured: Debian's 6.1 fires the tracepoint for active resets, so the kprobe stays out.
            (r"active reset \(close, SO_LINGER 0\)\s+seen by tcp:tcp_send_reset", "the probe should see 6.1's active reset"),
            (r"active resets\s+tcp:tcp_send_reset, no fallback", "no fallback should be in use for active resets"),
            (r"tp_btf \(tcp:tcp_send_reset\)\s+works", "tp_btf should work on 6.1"),
            (r"kprobe \(tcp_send_active_reset\)\s+works", "kprobes should work on 6.1"),
            (r"fentry \(tcp_send_active_reset\)\s+works", "fentry should work on 6.1"),
            # issue 17: accept() and wrapper-file opens on fexit there, not on syscall tracepoints.
            (r"fexit \(inet_csk_accept, do_filp_open\)\s+works", "fexit hooks should work on 6.1"),
            (r"accept\(\) and wrapper-file opens\s+fexit on inet_csk_accept", "fexit hooks not in use on 6.1"),
            # issue 15: 6.1's tcp_send_reset misses a TIME_WAIT socket's reset; the fexit reports it.
            (r"fexit \(tcp_timewait_state_process\)\s+works", "the TIME_WAIT fexit should work on 6.1"),
            (r"handle_timewait_fexit", "the TIME_WAIT fexit should be attached on 6.1"),
            # issue 15: 6.1's kfree_skb gives a full accept queue's drop no reason; the fexit names it.
            (r"fexit \(tcp_check_req\)\s+works", "the accept-queue fexit should work on 6.1"),
            (r"handle_listen_overflow_fexit", "the accept-queue fexit should be attached on 6.1"),
            (r"with limitations:\n"
             r"  - tcp:tcp_send_reset has no reason on this kernel: reset reasons are null \(it reports resets from "
             r"close\(\), without the kprobe\)\n"
             r"  - no sock:sock_send_length/sock_recv_length tracepoints on this kernel: [^\n]*\n(?!  - )",
             "6.1's limitations: exactly the missing reason and the missing send/recv length tracepoints"),
        ],
        "absent": [("handle_active_reset", "the kprobe must not be attached where the tracepoint reports active resets")],
        "rows": [("debian12", "loopback", SUBSET + EXTRA_6_1), ("debian13", "remote", SUBSET),
                 ("debian13", "remote-netns", NEW_6_1)],
        "floods": True,
    },
    "6.12": {
        "check": [
            (r"kernel 6\.12\.", "the guest did not run a 6.12 kernel"),
            (r"tcp:tcp_send_reset\s+yes, 3 arguments: with the reason", "6.12's tcp_send_reset has the reason"),
            (r"skb:kfree_skb\s+yes, 4 arguments", "6.12's kfree_skb has rx_sk"),
            (r"active reset \(close, SO_LINGER 0\)\s+seen by tcp:tcp_send_reset", "the probe should see 6.12's active reset"),
            (r"active resets\s+tcp:tcp_send_reset \(its reason argument", "no fallback on 6.12"),
            (r"rsttrace works fully on this kernel", "6.12 should have no limitation"),
            # issue 15: 6.12's kfree_skb has no TCP_LISTEN_OVERFLOW either.
            (r"fexit \(tcp_check_req\)\s+works", "the accept-queue fexit should work on 6.12"),
        ],
        "absent": [("handle_active_reset", "no kprobe on 6.12")],
        "rows": [("debian13", "loopback", SUBSET), ("debian13", "remote", SUBSET)],
        "floods": False,
    },
}


def in_guest(kernel, *command, timeout=1800):
    run = subprocess.run([RUN_GUEST, "--kernel", kernel, "--timeout", str(timeout), "--", *command],
                         capture_output=True, text=True)
    sys.stderr.write(run.stderr)
    if run.returncode == SKIP:
        print(run.stdout.strip())
        sys.exit(SKIP)
    return run


def selftest_command(userland, clients, scenarios):
    command = [RSTTRACE, "selftest", "--json", "--userland", userland, "--clients", clients]
    for scenario in scenarios or []:
        command += ["--scenario", scenario]
    return " ".join(command)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kernel", choices=sorted(KERNELS), default="6.1")
    kernel = parser.parse_args().kernel
    expect = KERNELS[kernel]
    started = time.monotonic()

    count_script = os.path.join(HERE, "active-reset-count")
    # Floods counted as connections, not ends, against the guest kernel's own counters (issue 17:
    # 6.1 reports a refused SYN's server end as a NO_SOCKET drop, not a sent reset); the class
    # storms' threshold lowered for emulation.
    root_tests = os.path.join(os.path.dirname(HERE), "root")
    flood_tests = ("test_floods", "test_class_storms") if expect["floods"] else ()
    floods = " ".join(f"(cd {root_tests} && RSTTRACE={RSTTRACE} RSTTRACE_CLASS_STORM_THRESHOLD=60 "
                      f"python3 {test}.py 2>&1 | tail -3; echo \"{test} exit $?\");"
                      for test in flood_tests)
    check = in_guest(kernel, "bash", "-c", f"{RSTTRACE} check; echo \"check exit $?\"; {count_script}; "
                     f"set -o pipefail; {floods}", timeout=900)
    print(check.stdout)
    print(f"{kernel} guest: check and active-reset count in {time.monotonic() - started:.0f} s")
    out = check.stdout
    assert "check exit 0" in out, f"rsttrace check failed in the {kernel} guest"
    for pattern, message in expect["check"]:
        assert re.search(pattern, out), message
    for program, message in expect["absent"]:
        assert program not in out.split("a full session", 1)[1], message
    assert re.search(r"^OK: active resets", out, re.M), f"active resets miscounted on {kernel}"
    for test in flood_tests:
        assert f"{test} exit 0" in out, f"{test} failed in the {kernel} guest"

    rows = expect["rows"]
    print(f"{kernel} guest lab rows: " + "; ".join(f"{u} userland, {c} clients, " +
                                                  (f"{len(s)} scenarios ({', '.join(s)})" if s else "every scenario")
                                                  for u, c, s in rows))
    script = "status=0; " + " ".join(f"{selftest_command(*row)} || status=1;" for row in rows) + " exit $status"
    lab_started = time.monotonic()
    lab = in_guest(kernel, "sh", "-c", script, timeout=2700)
    print(f"{kernel} guest: scenario lab in {time.monotonic() - lab_started:.0f} s")
    results = [json.loads(line) for line in lab.stdout.splitlines() if line.startswith("{")]
    results = [r for r in results if r.get("type", "selftest") == "selftest"]
    assert results, f"no scenario results from the guest:\n{lab.stdout}"
    failed = [r for r in results if r["result"] not in ("pass", "skip")]
    for r in results:
        row = f"{r.get('userland', '?')}/{r.get('clients', '?')}"
        print(f"{kernel} guest: {row:<20} {r['scenario']:<24} {r['result']}" + (f"  ({r.get('error')})" if r.get("error") else ""))
        for check_result in r.get("checks", []):
            for problem in check_result.get("problems", []):
                print(f"    {problem}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed (scenario lab on the {kernel} guest); "
          f"guest total {time.monotonic() - started:.0f} s")
    assert not failed and lab.returncode == 0, f"{len(failed)} scenario rows failed on {kernel}"
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: the kernel matrix needs root")
        sys.exit(SKIP)
    sys.exit(main())
