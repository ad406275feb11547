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

BENCH_SUITE=floods measures issue 17's distributed floods the same way:
`dist_reset_flood` and `dist_drop_flood` exactly as bench.py's floods suite
makes them (loadgen rst-dist and syn-dist on port 22, its namespace, the drop
rule for the drop flood), FLOOD_THREADS load threads (one: the --icount guest
has one vCPU), against baseline, rsttrace, the floor (empty programs on the
programs rsttrace attached, bench.EmptyHooks) and tcpdump in each round
(BENCH_PER_CONNECTION=1 adds rsttrace --storm-threshold 0). Per connection:
the load's CPU and the system's busy time, as above; and rsttrace's
accounting from its final summary against the kernel's count (bench.py's
flood_accounting).

  tests/kernel-matrix/run-guest --kernel 6.1 --icount -- env BENCH_SUITE=floods python3 bench/unrelated_costs.py
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
FLOODS = {"dist_reset_flood": 22, "dist_drop_flood": 22}  # loadgen mode: bench.FLOOD_MODES
FLOOD_THREADS = int(os.environ.get("FLOOD_THREADS", "1"))


class LoggedRsttrace(bench.Rsttrace):
    """rsttrace, and its start-up lines (which accept/open hooks it attached)."""

    def startup_lines(self):
        """Its start-up's info and warning lines (what it attached, what this kernel lacks)."""
        return [line.strip() for line in open(os.path.join(bench.WORK, "rsttrace.log"), errors="replace")
                if "info:" in line or "warning:" in line]


def busy_seconds():
    """Every CPU's non-idle time since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / bench.CLK_TCK


def run_load(mode, port, threads=THREADS):
    before = busy_seconds()
    proc = subprocess.Popen(bench.in_ns(bench.LOADGEN, mode, str(port), str(bench.SECONDS), str(threads)),
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


def kernel_counts(drops):
    """The bench namespace's OutRsts and drop rule counter (bench.measure's keys)."""
    return {"kernel_resets": bench.snmp("OutRsts"), "nft_drops": bench.nft_counter() if drops else 0}


def run_flood(workload):
    drops = workload == "dist_drop_flood"
    before = kernel_counts(drops)
    record = run_load(bench.FLOOD_MODES[workload], FLOODS[workload], FLOOD_THREADS)
    after = kernel_counts(drops)
    record.update({key: after[key] - before[key] for key in after})
    return record


def measure(workload, observer):
    observer.start(workload)
    record = run_flood(workload) if workload in FLOODS else run_load(workload, WORKLOADS[workload])
    record.update(observer.usage())
    summary = observer.stop()
    record.update({"workload": workload, "config": observer.name})
    if summary.get("programs"):
        record["programs"] = summary["programs"]
    if workload in FLOODS and summary:  # the accounting (bench.flood_accounting)
        record["summary"] = {key: value for key, value in summary.items() if key != "programs"}
    return record


def stats(values):
    return (min(values), statistics.median(values), max(values)) if values else None


def costs(results, workload, config, key, against="baseline"):
    """The config's CPU per operation over the same round's baseline (or `against`), minus 1, per round."""
    out = []
    for r in results:
        if r["workload"] != workload or r["config"] != config:
            continue
        base = [b for b in results if b["workload"] == workload and b["config"] == against and b["round"] == r["round"]]
        if base and base[0]["ops"] and r["ops"]:
            out.append((r[key] / r["ops"]) / (base[0][key] / base[0]["ops"]) - 1)
    return out


def pct(triple):
    return " / ".join(f"{v * 100:+.1f}%" for v in triple) if triple else "-"


def run_rounds(workloads, configs, rsttrace, before_workload=lambda workload: None):
    """Each workload: ROUNDS rounds of every configuration (the first one rotating),
    then one rsttrace --bpf-stats run. Returns the records, rsttrace's start-up lines
    and, per workload, (operations, programs) of the stats run."""
    results, startup, programs = [], [], {}
    for workload in workloads:
        before_workload(workload)
        for round_number in range(bench.ROUNDS):
            for i in range(len(configs)):
                observer = configs[(round_number + i) % len(configs)]
                record = measure(workload, observer)
                record["round"] = round_number
                results.append(record)
                if observer is rsttrace:
                    startup = rsttrace.startup_lines()
                print(json.dumps({k: v for k, v in record.items() if k != "summary"}), flush=True)
        stats_run = LoggedRsttrace(["--bpf-stats"], name="rsttrace --bpf-stats")
        record = measure(workload, stats_run)
        programs[workload] = (record["ops"], record.get("programs", []))
        print(json.dumps({k: v for k, v in record.items() if k != "summary"}), flush=True)
    return results, startup, programs


def table_row(results, workload, config, extra_cells=()):
    rows = [r for r in results if r["workload"] == workload and r["config"] == config]
    per_op = stats([r["load_cpu_s"] / r["ops"] * 1e9 for r in rows if r["ops"]])
    busy = stats([r["busy_s"] / r["ops"] * 1e9 for r in rows if r["ops"]])
    vs_load = pct(stats(costs(results, workload, config, "load_cpu_s"))) if config != "baseline" else "-"
    vs_busy = pct(stats(costs(results, workload, config, "busy_s"))) if config != "baseline" else "-"
    cpu = (" / ".join(f"{v:.1f}" for v in stats([r["cpu_s"] / bench.SECONDS * 100 for r in rows]))
           if rows and "cpu_s" in rows[0] else "-")
    return (f"| {workload} | {config} | {' / '.join(f'{v:.0f}' for v in per_op)} | {vs_load} | "
            f"{' / '.join(f'{v:.0f}' for v in busy)} | {vs_busy} | {cpu} |" + "".join(f" {c} |" for c in extra_cells))


def program_lines(programs, unit="op"):
    lines = []
    for workload, (ops, progs) in programs.items():
        ran = [p for p in progs if p.get("runs")]
        lines.append(f"- {workload}: " + (", ".join(
            f"{p['name']} {p['runs'] / max(ops, 1):.3f}/{unit} {p.get('run_time_ns', 0) / p['runs']:.0f} ns" for p in ran)
            or "no program ran"))
    return lines


def unrelated():
    rsttrace = LoggedRsttrace()
    configs = [bench.Observer(), rsttrace, bench.Tcpdump()]
    bench.sh("ip", "netns", "add", bench.NS)
    try:
        bench.sh(*bench.in_ns("ip", "link", "set", "lo", "up"))
        results, startup, programs = run_rounds(WORKLOADS, configs, rsttrace)
    finally:
        bench.teardown()
        shutil.rmtree(bench.WORK, ignore_errors=True)
    hooks = next((line for line in startup if "accept() and wrapper-file opens" in line),
                 "(no start-up line about accept() and opens)")
    load = open("/proc/loadavg").read().split()[0]
    lines = [f"## unrelated workloads, CPU time per operation: kernel {platform.release()}, {os.cpu_count()} CPUs",
             "", f"- {bench.ROUNDS} rounds of {bench.SECONDS:g} s per workload and configuration, {THREADS} load threads; "
             f"1-minute load average at the end {load}", f"- rsttrace: {hooks}", "",
             "| workload | config | load's CPU per op, ns (min / median / max) | vs baseline | "
             "system busy per op, ns | vs baseline | collector CPU (% of a core) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for workload in WORKLOADS:
        for config in ("baseline", "rsttrace", "tcpdump"):
            lines.append(table_row(results, workload, config))
    lines += ["", "rsttrace --bpf-stats, one run per workload: each program that ran, its runs per operation and "
              "mean ns per run (stats on):", "", *program_lines(programs)]
    print("\n".join(lines))


def floods():
    rsttrace = LoggedRsttrace()
    configs = [bench.Observer(), rsttrace, bench.EmptyHooks(), bench.Tcpdump()]
    if os.environ.get("BENCH_PER_CONNECTION") == "1":
        configs.append(LoggedRsttrace(["--storm-threshold", "0"], name=bench.PER_CONNECTION))
    bench.setup_namespace()
    try:
        results, startup, programs = run_rounds(
            FLOODS, configs, rsttrace, lambda workload: bench.drop_rule(workload == "dist_drop_flood"))
    finally:
        bench.teardown()
        shutil.rmtree(bench.WORK, ignore_errors=True)
    load = open("/proc/loadavg").read().split()[0]
    lines = [f"## distributed floods, CPU time per connection: kernel {platform.release()}, {os.cpu_count()} CPUs",
             "", f"- {bench.ROUNDS} rounds of {bench.SECONDS:g} s per workload and configuration, {FLOOD_THREADS} load "
             f"thread(s); 1-minute load average at the end {load}", "- rsttrace's start-up:",
             *(f"  - `{line}`" for line in startup), "",
             "| workload | config | load's CPU per connection, ns (min / median / max) | vs baseline | "
             "system busy per connection, ns | vs baseline | collector CPU (% of a core) | kernel count | "
             "rsttrace connections | lost | balanced |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for workload in FLOODS:
        for config in [c.name for c in configs]:
            rows = [r for r in results if r["workload"] == workload and r["config"] == config]
            accounting = (bench.flood_accounting(rows) if config.startswith("rsttrace") and all("summary" in r for r in rows)
                          else ("-",) * 4)
            lines.append(table_row(results, workload, config, accounting))
    lines += ["", "rsttrace against the floor in the same round (load's CPU / system busy per connection, "
              "min / median / max):", ""]
    for workload in FLOODS:
        lines.append(f"- {workload}: {pct(stats(costs(results, workload, 'rsttrace', 'load_cpu_s', bench.EMPTY_HOOKS)))}"
                     f"; {pct(stats(costs(results, workload, 'rsttrace', 'busy_s', bench.EMPTY_HOOKS)))}")
    lines += ["", "rsttrace --bpf-stats, one run per workload: each program that ran, its runs per connection and "
              "mean ns per run (stats on):", "", *program_lines(programs, "connection")]
    print("\n".join(lines))


def main():
    if os.geteuid() != 0:
        sys.exit("unrelated_costs: run as root")
    floods() if os.environ.get("BENCH_SUITE") == "floods" else unrelated()


if __name__ == "__main__":
    main()
