"""Each BPF program's cost per run under issue 17's distributed floods, for
two rsttrace binaries alternated (A B A B ...) under the same workload: on a
shared machine wall-clock rate ratios mean little, but the kernel's own
per-program accounting (kernel.bpf_stats_enabled: run_time_ns / run_cnt) does.
Run as root:

  python3 bench/prog_cost.py A_BINARY B_BINARY [C_BINARY ...] [ROUNDS] [SECONDS]

PROG_COST_WORKLOADS (comma-separated) picks workloads (default: both floods).

Each run starts the binary with the flood bench's options, waits until its
class storms count (the storm path is what a flood costs), then reads every
program's counters before and after SECONDS of the flood. Prints one JSON
line per run and, at the end, a Markdown table of medians. Also reports the
collector's peak RSS (VmHWM) over the run.
"""

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the namespace name, loadgen and helpers)

WORKLOADS = {"dist_reset_flood": "rst-dist", "dist_drop_flood": "syn-dist"}
WARM_SECONDS = 1.5
# The programs a refused connection runs (the others see unrelated host-wide traffic).
FLOOD_PROGRAMS = ("handle_send_reset", "handle_receive_reset", "handle_kfree_skb", "handle_set_state",
                  "handle_timewait_fexit")


def prog_stats(pid):
    """name -> (run_time_ns, run_cnt) of the programs process `pid` holds."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            for line in open(f"/proc/{pid}/fdinfo/{fd}"):
                if line.startswith("prog_id:"):
                    ids.add(int(line.split()[1]))
        except OSError:
            pass
    out = {}
    for prog in json.loads(bench.sh("bpftool", "prog", "show", "-j").stdout):
        if prog["id"] in ids:
            out[prog.get("name", str(prog["id"]))] = (prog.get("run_time_ns", 0), prog.get("run_cnt", 0))
    return out


def kernel_count(workload):
    return bench.snmp("OutRsts") if workload == "dist_reset_flood" else bench.nft_counter()


def one_run(binary, workload, seconds, extra):
    ready = os.path.join(bench.WORK, "ready")
    if os.path.exists(ready):
        os.unlink(ready)
    out = open(os.path.join(bench.WORK, "out"), "w")
    proc = subprocess.Popen([binary, "--json", "--port", "22", "--netns", f"/run/netns/{bench.NS}",
                             "--ready-file", ready, *extra], stdout=out, stderr=subprocess.DEVNULL)
    bench.wait_for(lambda: os.path.exists(ready) or proc.poll() is not None, 60, "rsttrace ready")
    bench.reset_peak_rss(proc.pid)
    load = subprocess.Popen(bench.in_ns(bench.LOADGEN, WORKLOADS[workload], "22", str(WARM_SECONDS + seconds + 0.5),
                                        "2"), stdout=subprocess.PIPE, text=True)
    time.sleep(WARM_SECONDS)  # the storm path: class storms start within the first second
    before, count0, t0 = prog_stats(proc.pid), kernel_count(workload), time.monotonic()
    time.sleep(seconds)
    after, count1, t1 = prog_stats(proc.pid), kernel_count(workload), time.monotonic()
    rate = json.loads(load.communicate()[0])["rate"]
    hwm = bench.proc_status(proc.pid, "VmHWM")
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    out.close()
    lines = open(os.path.join(bench.WORK, "out")).read().splitlines()
    summary = json.loads(lines[-1]) if lines else {}
    connections = count1 - count0
    progs = {}
    for name, (ns1, runs1) in after.items():
        ns0, runs0 = before.get(name, (0, 0))
        if runs1 > runs0 and name in FLOOD_PROGRAMS:
            progs[name] = {"ns_per_run": (ns1 - ns0) / (runs1 - runs0), "runs_per_connection":
                           (runs1 - runs0) / max(1, connections)}
    per_connection = sum(p["ns_per_run"] * p["runs_per_connection"] for p in progs.values())
    return {"binary": binary, "workload": workload, "rate": rate, "connections_per_s": connections / (t1 - t0),
            "hwm_kb": hwm, "ns_per_connection": per_connection, "progs": progs,
            "lost": summary.get("lost", summary.get("stats", {}).get("lost"))}


def main():
    binaries = [a for a in sys.argv[1:] if not re.fullmatch(r"[0-9.]+", a)]
    numbers = [a for a in sys.argv[1:] if re.fullmatch(r"[0-9.]+", a)]
    if len(binaries) < 2 or len(set(binaries)) != len(binaries) or len(numbers) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    rounds = int(numbers[0]) if numbers else 3
    seconds = float(numbers[1]) if len(numbers) > 1 else 3.0
    wanted = os.environ.get("PROG_COST_WORKLOADS")
    workloads = [w for w in WORKLOADS if not wanted or w in wanted.split(",")]
    extra = os.environ.get("PROG_COST_ARGS", "").split()
    stats_before = bench.sh("sysctl", "-n", "kernel.bpf_stats_enabled").stdout.strip()
    bench.sh("ip", "netns", "add", bench.NS)
    results = []
    try:
        bench.sh(*bench.in_ns("ip", "link", "set", "lo", "up"))
        bench.sh(*bench.in_ns("sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65000"))
        bench.sh(*bench.in_ns("sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1"))
        bench.sh(*bench.in_ns("nft", "add table inet bench; add chain inet bench input "
                              "{ type filter hook input priority 0; }"))
        bench.sh("sysctl", "-q", "-w", "kernel.bpf_stats_enabled=1")
        for workload in workloads:
            bench.drop_rule(workload == "dist_drop_flood")
            for _ in range(rounds):
                for binary in binaries:
                    record = one_run(binary, workload, seconds, extra)
                    results.append(record)
                    print(json.dumps(record), flush=True)
            bench.drop_rule(False)
    finally:
        bench.sh("sysctl", "-q", "-w", f"kernel.bpf_stats_enabled={stats_before}", check=False)
        bench.teardown()
    print()
    print("| workload | binary | program | ns/run | runs/connection |")
    print("| --- | --- | --- | --- | --- |")
    for workload in workloads:
        for binary in binaries:
            runs = [r for r in results if r["workload"] == workload and r["binary"] == binary]
            names = sorted({n for r in runs for n in r["progs"]})
            for name in names:
                ns = statistics.median(r["progs"][name]["ns_per_run"] for r in runs if name in r["progs"])
                per = statistics.median(r["progs"][name]["runs_per_connection"] for r in runs if name in r["progs"])
                print(f"| {workload} | {binary} | {name} | {ns:.0f} | {per:.2f} |")
            total = statistics.median(r["ns_per_connection"] for r in runs)
            hwm = [r["hwm_kb"] for r in runs]
            print(f"| {workload} | {binary} | **per connection** | {total:.0f} | "
                  f"peak RSS {min(hwm) / 1024:.1f}-{max(hwm) / 1024:.1f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
