"""Where the collector's peak RSS comes from in issue 17's distributed floods,
and an A/B of two binaries (run as root; not part of the bench suite).

    python3 bench/rss_probe.py RUNS SECONDS BINARY_A [BINARY_B] [-- EXTRA ARGS]

For each flood (dist_reset_flood, dist_drop_flood) and each run, the binaries
start alternately (A B A B) in bench.py's private namespace with bench.py's
arguments, VmHWM is reset once the ready file exists (as bench.py does), and
the collector's smaps is sampled every ~20 ms while the load generator runs:
the peak of each kind of mapping is printed with VmHWM at the end, the run's
lines (events written one per connection: those that came before the storm
started) and its accounting (the kernel's count against rsttrace's
connections, lost). Kinds: bpf_maps (the 4 MiB ring buffer and the mmapable
maps: the kernel names them all anon_inode:bpf-map), heap, anon (other
anonymous memory: thread arenas and stacks), binary, libs, other.
RSS_TIMELINE=1 also prints (seconds, heap kB, total kB) every ~0.1 s.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (its namespace, load generator and observers)


def kind_of(name, exe):
    if name == "[heap]":
        return "heap"
    if name.startswith("anon_inode:"):
        return "bpf_maps"
    if name == "":
        return "anon"
    if name == exe:
        return "binary"
    if ".so" in name:
        return "libs"
    return "other"


def smaps_kinds(pid, exe):
    kinds = {}
    name = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):  # a mapping's header
                parts = line.split(None, 5)
                name = parts[5].strip() if len(parts) > 5 else ""
            elif first == "Rss:":
                kind = kind_of(name, exe)
                kinds[kind] = kinds.get(kind, 0) + int(line.split()[1])
    return kinds


class Probe(bench.Rsttrace):
    def __init__(self, binary, extra, name):
        super().__init__(extra, name)
        self.binary = binary

    def start(self, workload):
        bench.RSTTRACE = self.binary  # Rsttrace.start reads the module's path
        super().start(workload)


def run_one(workload, probe, seconds):
    probe.start(workload)
    drops = workload == "dist_drop_flood"
    before = bench.nft_counter() if drops else bench.snmp("OutRsts")
    exe = os.path.realpath(probe.binary)
    peaks, total_peak = {}, 0
    load = subprocess.Popen(bench.in_ns(bench.LOADGEN, bench.FLOOD_MODES[workload], "22", str(seconds), "2"),
                            stdout=subprocess.PIPE, text=True)
    timeline, t0 = [], time.monotonic()
    while load.poll() is None:
        kinds = smaps_kinds(probe.proc.pid, exe)
        timeline.append((round(time.monotonic() - t0, 2), kinds.get("heap", 0), sum(kinds.values())))
        for kind, kb in kinds.items():
            peaks[kind] = max(peaks.get(kind, 0), kb)
        total_peak = max(total_peak, sum(kinds.values()))
        time.sleep(0.02)
    rate = json.loads(load.communicate()[0])["rate"]
    hwm = bench.proc_status(probe.proc.pid, "VmHWM")
    after = bench.nft_counter() if drops else bench.snmp("OutRsts")
    summary = probe.stop()
    if os.environ.get("RSS_TIMELINE"):  # (seconds into the load, heap kB, total kB), every ~0.1 s
        print(json.dumps(timeline[::5]), file=sys.stderr)
    connections = summary.get("events", 0) + summary.get("storm_connections", 0)
    return {"workload": workload, "binary": probe.name, "rate": rate, "hwm_kb": hwm, "start_hwm_kb": probe.start_hwm,
            "sampled_peak_kb": total_peak, "peaks_kb": peaks, "kernel": after - before, "connections": connections,
            "lines": summary.get("events", 0), "lost": summary.get("lost", -1)}


def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        extra = args[args.index("--") + 1:]
        args = args[:args.index("--")]
    runs, seconds, binaries = int(args[0]), float(args[1]), args[2:]
    probes = [Probe(b, extra, chr(ord("A") + i)) for i, b in enumerate(binaries)]
    bench.setup_namespace()
    results = []
    try:
        for workload in ("dist_reset_flood", "dist_drop_flood"):
            bench.drop_rule(workload == "dist_drop_flood")
            for _ in range(runs):
                for probe in probes:
                    record = run_one(workload, probe, seconds)
                    results.append(record)
                    print(json.dumps(record), flush=True)
        bench.drop_rule(False)
    finally:
        bench.teardown()
        shutil.rmtree(bench.WORK, ignore_errors=True)
    for workload in ("dist_reset_flood", "dist_drop_flood"):
        for probe in probes:
            rows = [r for r in results if r["workload"] == workload and r["binary"] == probe.name]
            hwm = sorted(r["hwm_kb"] / 1024 for r in rows)
            heap = sorted(r["peaks_kb"].get("heap", 0) / 1024 for r in rows)
            ok = all(r["lost"] == 0 and r["kernel"] == r["connections"] for r in rows)
            print(f"{workload} {probe.name} ({probe.binary}): VmHWM MB min/median/max {hwm[0]:.1f} / "
                  f"{statistics.median(hwm):.1f} / {hwm[-1]:.1f}; heap peak {heap[0]:.1f} / "
                  f"{statistics.median(heap):.1f} / {heap[-1]:.1f}; lost {sum(r['lost'] for r in rows)}; "
                  f"balanced {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
