"""The unrelated workloads' tax, as CPU time per operation (issue 17), where
rates mean nothing: a qemu TCG guest (tests/kernel-matrix/run-guest), or a
shared machine. Run as root, with the build's rsttrace and rsttrace_loadgen:

  tests/kernel-matrix/run-guest --kernel 6.1 -- python3 bench/unrelated_costs.py
  BENCH_ROUNDS=10 BENCH_SECONDS=3 python3 bench/unrelated_costs.py   # on this host

Workloads (bench/loadgen.cpp): `syscalls` (1-byte read()s of /dev/zero: the
syscall tracepoints' tax on every process), `pingpong` (1-byte round trips
on port 5301: the socket I/O tracepoints) and `opens` (open and close of
/dev/null: fexit on do_filp_open runs for every open of the host). Each round
runs baseline, rsttrace and tcpdump one after the other (A B C, A B C: the
first configuration rotates from round to round, so none always follows
another's stop), in a namespace of its own. Per run: the load's CPU time
(its rusage: every hook runs in the task it taxes) and the whole system's
busy time (/proc/stat, rsttrace and tcpdump themselves included), each
divided by the operations done; a configuration's cost is that over the same
round's baseline. Then one more run of rsttrace --bpf-stats per workload: how
often each of its programs ran, and its mean time per run (stats on: inflated).
Prints JSON lines per run and a Markdown table; writes nothing.
"""

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys

import bench

WORKLOADS = {"syscalls": 0, "pingpong": 5301, "opens": 0}  # loadgen mode: port
THREADS = 2


class LoggedRsttrace(bench.Rsttrace):
    """rsttrace, and the start-up line that says which accept/open hooks it attached."""

    def hooks_line(self):
        for line in open(os.path.join(bench.WORK, "rsttrace.log"), errors="replace"):
            if "accept() and wrapper-file opens" in line:
                return line.strip()
        return "(no start-up line about accept() and opens)"


def busy_seconds():
    """Every CPU's non-idle time since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / bench.CLK_TCK


def run_load(mode, port):
    before = busy_seconds()
    proc = subprocess.Popen(bench.in_ns(bench.LOADGEN, mode, str(port), str(bench.SECONDS), str(THREADS)),
                            stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()  # one line; then reap it ourselves for its rusage
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    busy = busy_seconds() - before
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen {mode} exited {proc.returncode}")
    result = json.loads(out)
    return {"ops": result["connections"], "rate": result["rate"], "load_cpu_s": usage.ru_utime + usage.ru_stime,
            "busy_s": busy}


def measure(workload, observer):
    observer.start(workload)
    record = run_load(workload, WORKLOADS[workload])
    record.update(observer.usage())
    summary = observer.stop()
    record.update({"workload": workload, "config": observer.name})
    if summary.get("programs"):
        record["programs"] = summary["programs"]
    return record


def stats(values):
    return (min(values), statistics.median(values), max(values)) if values else None


def costs(results, workload, config, key):
    """The config's CPU per operation over the same round's baseline, minus 1, per round."""
    out = []
    for r in results:
        if r["workload"] != workload or r["config"] != config:
            continue
        base = [b for b in results if b["workload"] == workload and b["config"] == "baseline" and b["round"] == r["round"]]
        if base and base[0]["ops"] and r["ops"]:
            out.append((r[key] / r["ops"]) / (base[0][key] / base[0]["ops"]) - 1)
    return out


def pct(triple):
    return " / ".join(f"{v * 100:+.1f}%" for v in triple) if triple else "-"


def main():
    if os.geteuid() != 0:
        sys.exit("unrelated_costs: run as root")
    rounds = bench.ROUNDS
    rsttrace = LoggedRsttrace()
    configs = [bench.Observer(), rsttrace, bench.Tcpdump()]
    results, hooks, programs = [], "", {}
    bench.sh("ip", "netns", "add", bench.NS)
    try:
        bench.sh(*bench.in_ns("ip", "link", "set", "lo", "up"))
        for workload in WORKLOADS:
            for round_number in range(rounds):
                for i in range(len(configs)):
                    observer = configs[(round_number + i) % len(configs)]
                    record = measure(workload, observer)
                    record["round"] = round_number
                    results.append(record)
                    if observer is rsttrace:
                        hooks = rsttrace.hooks_line()
                    print(json.dumps(record), flush=True)
            stats_run = LoggedRsttrace(["--bpf-stats"], name="rsttrace --bpf-stats")
            record = measure(workload, stats_run)
            programs[workload] = (record["ops"], record.get("programs", []))
            print(json.dumps(record), flush=True)
    finally:
        bench.teardown()
        shutil.rmtree(bench.WORK, ignore_errors=True)
    load = open("/proc/loadavg").read().split()[0]
    lines = [f"## unrelated workloads, CPU time per operation: kernel {platform.release()}, {os.cpu_count()} CPUs",
             "", f"- {rounds} rounds of {bench.SECONDS:g} s per workload and configuration, {THREADS} load threads; "
             f"1-minute load average at the end {load}", f"- rsttrace: {hooks}", "",
             "| workload | config | load's CPU per op, ns (min / median / max) | vs baseline | "
             "system busy per op, ns | vs baseline | collector CPU (% of a core) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for workload in WORKLOADS:
        for config in ("baseline", "rsttrace", "tcpdump"):
            rows = [r for r in results if r["workload"] == workload and r["config"] == config]
            per_op = stats([r["load_cpu_s"] / r["ops"] * 1e9 for r in rows if r["ops"]])
            busy = stats([r["busy_s"] / r["ops"] * 1e9 for r in rows if r["ops"]])
            vs_load = pct(stats(costs(results, workload, config, "load_cpu_s"))) if config != "baseline" else "-"
            vs_busy = pct(stats(costs(results, workload, config, "busy_s"))) if config != "baseline" else "-"
            cpu = (" / ".join(f"{v:.1f}" for v in stats([r["cpu_s"] / bench.SECONDS * 100 for r in rows]))
                   if rows and "cpu_s" in rows[0] else "-")
            lines.append(f"| {workload} | {config} | {' / '.join(f'{v:.0f}' for v in per_op)} | {vs_load} | "
                         f"{' / '.join(f'{v:.0f}' for v in busy)} | {vs_busy} | {cpu} |")
    lines += ["", "rsttrace --bpf-stats, one run per workload: each program that ran, its runs per operation and "
              "mean ns per run (stats on):", ""]
    for workload, (ops, progs) in programs.items():
        ran = [p for p in progs if p.get("runs")]
        lines.append(f"- {workload}: " + (", ".join(
            f"{p['name']} {p['runs'] / max(ops, 1):.3f}/op {p.get('run_time_ns', 0) / p['runs']:.0f} ns" for p in ran)
            or "no program ran"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
