"""rsttrace benchmarks (run through bench/run, as root).

Every workload runs on loopback inside a network namespace made here, for a
bounded time. Configurations alternate within each round (A B C D, A B C D,
...) so that a noisy, shared machine affects them alike; figures are ratios
to the baseline of the same round, with min/median/max over the rounds.
"""

import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
RSTTRACE = os.path.join(BUILD, "rsttrace")
LOADGEN = os.path.join(BUILD, "bench", "rsttrace_loadgen")
EMPTY_HOOKS_TOOL = os.path.join(BUILD, "bench", "rsttrace_empty_hooks")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
SOAK_CONNECTIONS = int(os.environ.get("BENCH_SOAK", "1000000"))
NS = f"rsttrace-bench-{os.getpid()}"
WORK = tempfile.mkdtemp(prefix="rsttrace-bench-")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PER_CONNECTION = "rsttrace --storm-threshold 0"
NO_SYSCALLS = "rsttrace --no-syscall-tracepoints"
EMPTY_HOOKS = "empty programs on rsttrace's hooks"
# issue 17: distributed floods (each connection from another 127.16.0.0/12
# source, at the machine's maximum), and unrelated load rsttrace's hooks see:
# a loop of 1-byte read()s (the syscall tracepoints' tax) and a 1-byte
# ping-pong on another port (sock_{send,recv}_length). loadgen modes.
FLOOD_MODES = {"dist_reset_flood": "rst-dist", "dist_drop_flood": "syn-dist", "syscalls": "syscalls",
               "pingpong": "pingpong"}
COST_RUNS = ("unrelated", "unrelated_no_syscalls", "reset_storm", "reset_storm_per_connection")


def sh(*cmd, check=True, **kw):
    return subprocess.run(list(cmd), check=check, capture_output=True, text=True, **kw)


def in_ns(*cmd):
    return ["ip", "netns", "exec", NS, *cmd]


def wait_for(predicate, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


def snmp(name, proto="Tcp:"):
    rows = [l.split() for l in sh(*in_ns("cat", "/proc/net/snmp")).stdout.splitlines() if l.startswith(proto)]
    return int(rows[1][rows[0].index(name)])


def proc_cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def reset_peak_rss(pid):
    """VmHWM from now on (proc(5), clear_refs 5): the workload's peak, not the start's."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def proc_status(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])  # kB
    return 0


def nft_counter():
    out = sh(*in_ns("nft", "-j", "list", "table", "inet", "bench")).stdout
    for obj in json.loads(out)["nftables"]:
        for expr in obj.get("rule", {}).get("expr", []):
            if "counter" in expr:
                return expr["counter"]["packets"]
    return 0


# ---- observers: what runs beside the workload ------------------------------

class Observer:
    name = "baseline"

    def start(self, workload):
        self.proc = None

    def stop(self):
        return {}

    def usage(self):
        return {}


class Rsttrace(Observer):
    name = "rsttrace"

    def __init__(self, extra=(), name="rsttrace"):
        self.extra = list(extra)
        self.name = name

    def start(self, workload):
        ready = os.path.join(WORK, "ready")
        if os.path.exists(ready):
            os.unlink(ready)
        self.out = open(os.path.join(WORK, "rsttrace.out"), "w")
        self.log = open(os.path.join(WORK, "rsttrace.log"), "w")  # its start-up lines (unrelated_costs.py reads them)
        self.proc = subprocess.Popen([RSTTRACE, "--json", "--port", "22", "--netns", f"/run/netns/{NS}",
                                      "--ready-file", ready, *self.extra],
                                     stdout=self.out, stderr=self.log)
        wait_for(lambda: os.path.exists(ready) or self.proc.poll() is not None, 60, "rsttrace ready")
        self.cpu0 = proc_cpu_seconds(self.proc.pid)
        self.rss0 = proc_status(self.proc.pid, "VmRSS")
        self.start_hwm = proc_status(self.proc.pid, "VmHWM")
        reset_peak_rss(self.proc.pid)

    def usage(self):
        return {"cpu_s": proc_cpu_seconds(self.proc.pid) - self.cpu0, "hwm_kb": proc_status(self.proc.pid, "VmHWM"),
                "start_hwm_kb": self.start_hwm, "rss0_kb": self.rss0, "rss_kb": proc_status(self.proc.pid, "VmRSS")}

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)
        self.out.close()
        self.log.close()
        lines = open(os.path.join(WORK, "rsttrace.out")).read().splitlines()
        return json.loads(lines[-1]) if lines else {}


class EmptyHooks(Observer):
    """The floor of any observer on rsttrace's hooks: a program that returns at
    once on each attach point rsttrace uses (bench/empty_hooks.bpf.c). Its cost
    is the tracepoints' own: dispatch, and the syscall slow path."""
    name = EMPTY_HOOKS
    programs = None

    def start(self, workload):
        if EmptyHooks.programs is None:  # the programs rsttrace attaches here, by name
            probe = Rsttrace(["--bpf-stats"])
            probe.start(workload)
            EmptyHooks.programs = [p["name"] for p in probe.stop().get("programs", [])]
            if not EmptyHooks.programs:
                raise RuntimeError("rsttrace --bpf-stats named no programs")
        ready = os.path.join(WORK, "empty-hooks-ready")
        if os.path.exists(ready):
            os.unlink(ready)
        self.proc = subprocess.Popen([EMPTY_HOOKS_TOOL, ready, *EmptyHooks.programs])
        wait_for(lambda: os.path.exists(ready) or self.proc.poll() is not None, 60, "empty hooks ready")
        if self.proc.poll() is not None:
            raise RuntimeError(f"rsttrace_empty_hooks exited {self.proc.returncode}")

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        return {}


class Tool(Observer):
    """Another program doing the same job: started, waited for until it says
    `ready_word` in its log, measured, stopped with SIGINT."""
    ready_word = ""

    def command(self):
        raise NotImplementedError

    def start(self, workload):
        self.log_path = os.path.join(WORK, f"{self.name}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.ready_word in open(self.log_path).read() or self.proc.poll() is not None, 60, self.name)
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited {self.proc.returncode}")
        self.cpu0 = proc_cpu_seconds(self.proc.pid)
        reset_peak_rss(self.proc.pid)

    def usage(self):
        return {"cpu_s": proc_cpu_seconds(self.proc.pid) - self.cpu0, "hwm_kb": proc_status(self.proc.pid, "VmHWM")}

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        self.log.close()
        return {}


class Tcpdump(Tool):
    name = "tcpdump"
    ready_word = "listening on"

    def command(self):
        flt = "tcp port 22 and (tcp[tcpflags] & (tcp-rst|tcp-syn) != 0)"
        return in_ns("tcpdump", "-i", "lo", "-n", "-w", os.path.join(WORK, "tcpdump.pcap"), flt)


# The same hooks as rsttrace's, counting. (This kernel's tcp_send_reset format
# has no dport field to filter on; the bench namespace carries only port 22.)
BPFTRACE_PROGRAM = ("tracepoint:tcp:tcp_send_reset { @resets = count(); } tracepoint:skb:kfree_skb { @drops = count(); } "
                    "interval:ms:200 { print(@resets); }")


class Bpftrace(Tool):
    name = "bpftrace"
    ready_word = "Attaching"
    why_not = None

    @classmethod
    def available(cls):
        if cls.why_not is not None:
            return cls.why_not == ""
        probe = subprocess.run(["unshare", "-m", "sh", "-c",
                                "mount -t tracefs nodev /sys/kernel/tracing && exec timeout 20 bpftrace -e "
                                "'tracepoint:tcp:tcp_send_reset { @ = count(); exit(); } interval:s:1 { exit(); }'"],
                               capture_output=True, text=True)
        cls.why_not = "" if probe.returncode == 0 else (probe.stderr.strip().splitlines() or ["exit %d" % probe.returncode])[-1]
        return cls.why_not == ""

    def command(self):
        return ["unshare", "-m", "sh", "-c",
                f"mount -t tracefs nodev /sys/kernel/tracing && exec bpftrace -B line -e '{BPFTRACE_PROGRAM}'"]

    def start(self, workload):
        super().start(workload)
        # "Attaching N probes" comes before the probes are in place: wait for the first interval print.
        wait_for(lambda: "@" in open(self.log_path).read() or self.proc.poll() is not None, 30, "bpftrace probes")

# ---- workloads -----------------------------------------------------------

def loadgen(mode, port, seconds=SECONDS):
    out = sh(*in_ns(LOADGEN, mode, str(port), str(seconds), "2")).stdout
    return json.loads(out)


def measure(workload, observer):
    observer.start(workload)
    drops = workload in ("drop_storm", "dist_drop_flood")
    before = {"rsts": snmp("OutRsts"), "nft": nft_counter() if drops else 0}
    if workload == "unrelated":
        result = loadgen("fin", 5001)
        rate = result["rate"]
    elif workload == "throughput":
        out = sh(*in_ns("iperf3", "-c", "127.0.0.1", "-p", "5201", "-t", str(SECONDS), "-J")).stdout
        rate = json.loads(out)["end"]["sum_received"]["bits_per_second"]
    elif workload == "reset_storm":
        result = loadgen("rst", 22)
        rate = result["rate"]
    elif workload == "drop_storm":
        result = loadgen("syn", 22)
        rate = result["rate"]
    elif workload in FLOOD_MODES:  # issue 17's workloads (BENCH_SUITE=floods)
        result = loadgen(FLOOD_MODES[workload], 5301 if workload == "pingpong" else 22)
        rate = result["rate"]
    elif workload == "soak":
        # RSS once the load has run a tenth of its time (the warm working set),
        # against RSS at the end: growth, not the working set.
        seconds = max(5.0, SOAK_CONNECTIONS / 70000.0)
        load = subprocess.Popen(in_ns(LOADGEN, "rst", "22", str(seconds), "2"), stdout=subprocess.PIPE, text=True)
        time.sleep(seconds / 10)
        warm_kb = proc_status(observer.proc.pid, "VmRSS")
        rate = json.loads(load.communicate()[0])["rate"]
    usage = observer.usage()
    if workload == "soak":
        usage["warm_kb"] = warm_kb
    after = {"rsts": snmp("OutRsts"), "nft": nft_counter() if drops else 0}
    summary = observer.stop()
    connections = result["connections"] if workload in ("unrelated", "reset_storm", "drop_storm", *FLOOD_MODES) else 0
    return {"workload": workload, "config": observer.name, "rate": rate, "connections": connections,
            "kernel_resets": after["rsts"] - before["rsts"], "nft_drops": after["nft"] - before["nft"],
            "summary": summary, **usage}


def setup_namespace():
    # bench/run installs them; a direct run of a bench script on a fresh machine would
    # otherwise wait 10 s for an iperf3 server that cannot start.
    missing = [tool for tool in ("iperf3", "tcpdump", "nft") if not shutil.which(tool)]
    if missing:
        sys.exit(f"bench: failed to find {', '.join(missing)}: run bench/run once, or apt-get install them")
    sh("ip", "netns", "add", NS)
    sh(*in_ns("ip", "link", "set", "lo", "up"))
    # Room for connect/close churn: all ports, and TIME_WAIT reuse.
    sh(*in_ns("sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65000"))
    sh(*in_ns("sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1"))
    sh(*in_ns("nft", "add table inet bench; add chain inet bench input { type filter hook input priority 0; }"))
    subprocess.Popen(in_ns("iperf3", "-s", "-p", "5201"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: "5201" in sh(*in_ns("ss", "-Htln")).stdout, 10, "iperf3 server")


def drop_rule(on):
    if on:
        sh(*in_ns("nft", "add rule inet bench input tcp dport 22 counter drop"))
    else:
        sh(*in_ns("nft", "flush chain inet bench input"))


def teardown():
    pids = sh("ip", "netns", "pids", NS, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    sh("ip", "netns", "del", NS, check=False)


def run():
    results = []
    # rsttrace as installed (storms counted in the kernel), and with one line per
    # connection at any rate (--storm-threshold 0), for the storm workloads.
    # And without the syscall tracepoints (accept, openat), which put every
    # syscall of every process on the kernel's slow path.
    # The floor: empty programs on the same hooks, in every workload.
    configs = [Observer(), Rsttrace(), EmptyHooks(), Rsttrace(["--storm-threshold", "0"], name=PER_CONNECTION),
               Rsttrace(["--no-syscall-tracepoints"], name=NO_SYSCALLS), Tcpdump()]
    if Bpftrace.available():
        configs.append(Bpftrace())
    for workload in ("unrelated", "throughput", "reset_storm", "drop_storm"):
        drop_rule(workload == "drop_storm")
        # The unrelated workloads' ratios are small against their noise: twice the rounds.
        for round_number in range(ROUNDS * 2 if workload in ("unrelated", "throughput") else ROUNDS):
            for observer in list(configs):
                if workload in ("unrelated", "throughput") and observer.name in ("tcpdump", "bpftrace", PER_CONNECTION):
                    continue
                try:
                    record = measure(workload, observer)
                except RuntimeError as error:  # an observer that cannot run here is reported, not fatal
                    if observer.name != "bpftrace":
                        raise
                    observer.proc.kill()
                    Bpftrace.why_not = f"{error}: " + open(observer.log_path).read()[-300:]
                    configs.remove(observer)
                    continue
                record["round"] = round_number
                results.append(record)
                print(json.dumps({k: v for k, v in record.items() if k != "summary"}), flush=True)
    drop_rule(False)
    # Per-program cost, with the kernel's run time accounting on.
    costs = {}
    for workload, extra in (("unrelated", []), ("unrelated_no_syscalls", ["--no-syscall-tracepoints"]), ("reset_storm", []),
                            ("reset_storm_per_connection", ["--storm-threshold", "0"])):
        record = measure(workload.split("_per_")[0].split("_no_")[0], Rsttrace(["--bpf-stats", *extra]))
        costs[workload] = record["summary"].get("programs", [])
        costs[workload + ":connections"] = record["connections"]
    # Soak: about a million connections ending in a reset.
    soak = measure("soak", Rsttrace())
    return results, costs, soak


def stats(values):
    return (min(values), statistics.median(values), max(values)) if values else (0, 0, 0)


def ratio_rows(results, workload, config, against="baseline"):
    rows = []
    for record in results:
        if record["workload"] != workload or record["config"] != config:
            continue
        base = [r for r in results if r["workload"] == workload and r["config"] == against
                and r["round"] == record["round"]]
        if base:
            rows.append(record["rate"] / base[0]["rate"])
    return rows


def fmt(triple, percent=False, digits=1):
    if percent:
        return " / ".join(f"{(v - 1) * 100:+.{digits}f}%" for v in triple)
    return " / ".join(f"{v:,.{digits}f}" for v in triple)


def write_report(results, costs, soak):
    today = datetime.date.today().isoformat()
    cpu = open("/proc/cpuinfo").read()
    model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("model name")), "?")
    lines = [f"# rsttrace benchmarks, {today}", "",
             f"- machine: {os.cpu_count()} CPUs ({model}), {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB",
             f"- kernel: {platform.release()}",
             f"- rsttrace: {sh('git', '-C', ROOT, 'rev-parse', '--short', 'HEAD', check=False).stdout.strip()}",
             f"- method: {ROUNDS} rounds of {SECONDS:g} s per workload ({ROUNDS * 2} for unrelated traffic and throughput), "
             "configurations alternating within each round; "
             "loopback inside a private network namespace; 2 load threads. Figures are min / median / max over the rounds; "
             "overheads are each round's rate against the same round's baseline (negative: slower).",
             ""]
    targets = []

    def observed(workload, config, key):
        return [r[key] for r in results if r["workload"] == workload and r["config"] == config and key in r]

    lines += ["## Connection rate and throughput", "",
              "| workload | config | rate (min / median / max) | vs baseline |", "| --- | --- | --- | --- |"]
    for workload, unit in (("unrelated", "conn/s"), ("throughput", "bit/s"), ("reset_storm", "conn/s"),
                           ("drop_storm", "SYN/s")):
        for config in ("baseline", "rsttrace", EMPTY_HOOKS, NO_SYSCALLS, PER_CONNECTION, "tcpdump", "bpftrace"):
            rates = observed(workload, config, "rate")
            if not rates:
                continue
            vs = fmt(stats(ratio_rows(results, workload, config)), percent=True) if config != "baseline" else "-"
            lines.append(f"| {workload} | {config} | {fmt(stats(rates), digits=0)} {unit} | {vs} |")
    lines.append("")

    lines += ["## Accounting: rsttrace's events against the kernel's own counters", "",
              "Balanced: `packets + absorbed + ignored = kernel.emitted`, storm lines' counts = `kernel.aggregated`, and "
              "`emitted + lost + folded + aggregated` = every event the programs saw.", "",
              "| workload | config | round | kernel count | rsttrace saw | lost | event lines | in storm lines | balanced |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    all_accounted = True
    for record in results:
        if not record["config"].startswith("rsttrace") or record["workload"] not in ("reset_storm", "drop_storm"):
            continue
        s = record["summary"]
        k = s["kernel"]
        kernel = record["kernel_resets"] if record["workload"] == "reset_storm" else record["nft_drops"]
        saw = k["reset_sent"] if record["workload"] == "reset_storm" else k["drop"]
        balanced = (s["packets"] + s["absorbed"] + s["ignored"] == k["emitted"]
                    and s.get("aggregated", 0) == k.get("aggregated", 0)
                    and k["emitted"] + s["lost"] + k["folded"] + k.get("aggregated", 0)
                    == k["reset_sent"] + k["reset_received"] + k["drop"])
        if record["config"] == "rsttrace":
            all_accounted &= saw == kernel and s["lost"] == 0 and balanced
        lines.append(f"| {record['workload']} | {record['config']} | {record['round']} | {kernel:,} | {saw:,} | "
                     f"{s['lost']:,} | {s['events']:,} | {s.get('aggregated', 0):,} | {'yes' if balanced else 'NO'} |")
    lines.append("")

    lines += ["## Collector cost", "",
              "Peak RSS is the peak during the workload (VmHWM reset once the observer was ready); the start's own peak "
              "(rsttrace: the kernel's BTF parsed by libbpf) is the last column.", "",
              "| workload | config | CPU (% of one core) | peak RSS (MB) | peak RSS at start (MB) |",
              "| --- | --- | --- | --- | --- |"]
    for workload in ("unrelated", "reset_storm", "drop_storm"):
        for config in ("rsttrace", PER_CONNECTION, "tcpdump", "bpftrace"):
            cpu_s = observed(workload, config, "cpu_s")
            if not cpu_s:
                continue
            pct = [c / SECONDS * 100 for c in cpu_s]
            hwm = [h / 1024 for h in observed(workload, config, "hwm_kb")]
            start = [h / 1024 for h in observed(workload, config, "start_hwm_kb")]
            lines.append(f"| {workload} | {config} | {fmt(stats(pct))} | {fmt(stats(hwm))} | "
                         f"{fmt(stats(start)) if start else '-'} |")
    lines.append("")

    lines += ["## BPF program cost (BPF_ENABLE_STATS, one run each)", "",
              "| program | unrelated traffic: runs, ns/run (filtered out early) | unrelated, `--no-syscall-tracepoints` "
              "| reset storm: runs, ns/run (counted in a storm) | reset storm, `--storm-threshold 0`: runs, ns/run (emitting) |",
              "| --- | --- | --- | --- | --- |"]
    names = sorted({p["name"] for programs in costs.values() if isinstance(programs, list) for p in programs})
    for name in names:
        cells = []
        for workload in COST_RUNS:
            p = next((p for p in costs.get(workload, []) if p["name"] == name), None)
            cells.append(f"{p['runs']:,}, {p['ns_per_run']:.0f}" if p else "-")
        lines.append(f"| {name} | {' | '.join(cells)} |")
    # The programs' run time per connection, against what a connection costs the
    # two loaded cores at baseline: an overhead estimate free of the rate's noise.
    cells = []
    for workload in COST_RUNS:
        connections = costs.get(workload + ":connections", 0)
        base = statistics.median(observed(workload.split("_per_")[0].split("_no_")[0], "baseline", "rate") or [0])
        total_ns = sum(p["run_time_ns"] for p in costs.get(workload, []))
        if connections and base:
            per_connection = total_ns / connections
            cells.append(f"{per_connection:,.0f} ns, {per_connection / (2e9 / base) * 100:.1f}% of baseline")
        else:
            cells.append("-")
    lines.append(f"| **all programs, per connection** (share of the 2 cores' time per baseline connection) | "
                 f"{' | '.join(cells)} |")
    lines.append("")

    s = soak["summary"]
    growth = (soak["rss_kb"] - soak["warm_kb"]) / soak["warm_kb"] * 100 if soak.get("warm_kb") else 0
    lines += ["## Soak", "",
              f"- connections ending in a reset: {soak['kernel_resets']:,} (kernel OutRsts), rsttrace saw "
              f"{s['kernel']['reset_sent']:,}, lost {s['lost']}, event lines {s['events']:,}, "
              f"in storm lines {s.get('aggregated', 0):,}",
              f"- RSS: {soak['rss0_kb'] / 1024:.1f} MB after attach, {soak['warm_kb'] / 1024:.1f} MB a tenth into the load "
              f"(warm), {soak['rss_kb'] / 1024:.1f} MB at the end ({growth:+.1f}% from warm), "
              f"peak {soak['hwm_kb'] / 1024:.1f} MB during the load", ""]

    def check(name, ok, figure):
        targets.append(f"| {name} | {'met' if ok else 'MISSED'} | {figure} |")

    def median_ratio(workload, config, against="baseline"):
        return statistics.median(ratio_rows(results, workload, config, against) or [1])

    def pct(ratio):
        return f"{(ratio - 1) * 100:+.1f}%"

    # Beside each rate target: the floor (empty programs on the same hooks),
    # rsttrace against that floor in the same rounds (the cost of its own work),
    # and rsttrace without the syscall tracepoints.
    def rate_target(name, workload, limit):
        ratio = median_ratio(workload, "rsttrace")
        check(name, ratio >= limit,
              f"median {pct(ratio)} (empty programs on the same hooks {pct(median_ratio(workload, EMPTY_HOOKS))}, "
              f"rsttrace against them {pct(median_ratio(workload, 'rsttrace', EMPTY_HOOKS))}; "
              f"`--no-syscall-tracepoints`: {pct(median_ratio(workload, NO_SYSCALLS))})")
        return ratio

    rate_target("unrelated traffic: at most 1% lower connection rate", "unrelated", 0.99)
    rate_target("unrelated traffic: at most 1% lower throughput", "throughput", 0.99)
    storm = rate_target("reset storm: at most 5% lower connection rate", "reset_storm", 0.95)
    tcpdump = median_ratio("reset_storm", "tcpdump")
    check("reset storm: lower overhead than tcpdump", storm >= tcpdump, f"rsttrace {pct(storm)}, tcpdump {pct(tcpdump)}")
    check("reset storm and drop storm: zero loss, every kernel event accounted for", all_accounted,
          "see the accounting table")
    storm_cpu = statistics.median([c / SECONDS * 100 for c in observed("reset_storm", "rsttrace", "cpu_s")] or [0])
    check("reset storm: collector CPU at most 20% of one core", storm_cpu <= 20, f"median {storm_cpu:.1f}%")
    storm_rss = max(observed("reset_storm", "rsttrace", "hwm_kb") or [0]) / 1024
    start_rss = max(observed("reset_storm", "rsttrace", "start_hwm_kb") or [0]) / 1024
    check("reset storm: RSS at most 20 MB", storm_rss <= 20,
          f"peak {storm_rss:.1f} MB during the storm ({start_rss:.1f} MB at start)")
    check("soak: RSS growth under 5%, no loss", growth < 5 and s["lost"] == 0, f"{growth:+.1f}%, lost {s['lost']}")

    lines += ["## Targets", "", "| target | result | figure |", "| --- | --- | --- |", *targets, ""]
    if Bpftrace.why_not:
        lines += ["## bpftrace", "", f"bpftrace could not run here: `{Bpftrace.why_not}`", ""]
    path = os.path.join(ROOT, "bench", "results", f"{today}.md")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines))
    with open(path.replace(".md", ".json"), "w") as f:
        json.dump({"results": results, "costs": costs, "soak": soak}, f, indent=1)
    print(f"wrote {path}")


def run_floods():
    """BENCH_SUITE=floods: issue 17's workloads, configurations alternating (A B A B) in each round."""
    results = []
    # The floor (empty programs on the same hooks) in every workload: what any observer on
    # these hooks pays, so that rsttrace's own work is measured apart (rsttrace against it).
    configs = [Observer(), Rsttrace(), EmptyHooks(), Rsttrace(["--storm-threshold", "0"], name=PER_CONNECTION),
               Rsttrace(["--no-syscall-tracepoints"], name=NO_SYSCALLS), Tcpdump()]
    for workload in FLOOD_MODES:
        drop_rule(workload == "dist_drop_flood")
        for round_number in range(ROUNDS):
            for observer in configs:
                if workload in ("syscalls", "pingpong") and observer.name == PER_CONNECTION:
                    continue
                record = measure(workload, observer)
                record["round"] = round_number
                results.append(record)
                print(json.dumps({k: v for k, v in record.items() if k != "summary"}), flush=True)
    drop_rule(False)
    return results


def flood_kernel_count(record):
    """A flood's connections as the kernel counted them in the bench namespace."""
    return record["kernel_resets"] if record["workload"] == "dist_reset_flood" else record["nft_drops"]


def flood_connections(record):
    """A flood's connections as rsttrace told them: event lines + storm lines' `connections`."""
    return record["summary"]["events"] + record["summary"].get("storm_connections", 0)


def flood_balanced(record):
    s, k = record["summary"], record["summary"]["kernel"]
    return (flood_connections(record) == flood_kernel_count(record) and s["lost"] == 0
            and s["packets"] + s["absorbed"] + s["ignored"] == k["emitted"]
            and s.get("aggregated", 0) == k.get("aggregated", 0))


def flood_accounting(rows):
    """The floods table's cells over a configuration's rounds: kernel count, rsttrace's
    connections, lost (sums), balanced in every round."""
    return (f"{sum(map(flood_kernel_count, rows)):,}", f"{sum(map(flood_connections, rows)):,}",
            f"{sum(r['summary'].get('lost', 0) for r in rows):,}", "yes" if all(map(flood_balanced, rows)) else "NO")


def write_floods_report(results):
    today = datetime.date.today().isoformat()
    lines = [f"# rsttrace flood benchmarks (issue 17), {today}", "",
             f"- machine: {os.cpu_count()} CPUs, kernel {platform.release()}, rsttrace "
             f"{sh('git', '-C', ROOT, 'rev-parse', '--short', 'HEAD', check=False).stdout.strip()}",
             f"- method: {ROUNDS} rounds of {SECONDS:g} s per workload, configurations alternating within each round "
             "(baseline first); 2 load threads; loopback in a private namespace. min / median / max over the rounds; "
             "overheads against the same round's baseline. Load on the machine at the end: "
             f"{open('/proc/loadavg').read().split()[0]} (1-minute load average)", "",
             "Accounting (floods, summed over the rounds): the kernel's count in the bench namespace (OutRsts, or the "
             "drop rule's counter) against rsttrace's connections (event lines + storm lines' `connections`); balanced: "
             "those equal, nothing lost, `packets + absorbed + ignored = kernel.emitted` and `aggregated = "
             "kernel.aggregated` in every round (the identity over `kernel.reset_sent` and friends holds only without "
             "`--netns`: other namespaces' port-22 events, other labs on this machine, count there).", "",
             "| workload | config | rate (min / median / max) | vs baseline | collector CPU (% of a core) | peak RSS (MB) "
             "| kernel count | rsttrace connections | lost | balanced |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for workload in FLOOD_MODES:
        for config in ("baseline", "rsttrace", EMPTY_HOOKS, PER_CONNECTION, NO_SYSCALLS, "tcpdump"):
            rows = [r for r in results if r["workload"] == workload and r["config"] == config]
            if not rows:
                continue
            vs = fmt(stats(ratio_rows(results, workload, config)), percent=True) if config != "baseline" else "-"
            cpu = fmt(stats([r["cpu_s"] / SECONDS * 100 for r in rows])) if "cpu_s" in rows[0] else "-"
            rss = fmt(stats([r["hwm_kb"] / 1024 for r in rows])) if "hwm_kb" in rows[0] else "-"
            kernel, seen, lost, balanced = "-", "-", "-", "-"
            if config.startswith("rsttrace") and workload.startswith("dist_"):
                kernel, seen, lost, balanced = flood_accounting(rows)
            lines.append(f"| {workload} | {config} | {fmt(stats([r['rate'] for r in rows]), digits=0)} | {vs} | {cpu} "
                         f"| {rss} | {kernel} | {seen} | {lost} | {balanced} |")
    lines += ["", "rsttrace against the floor (empty programs on the same hooks) in the same rounds: the cost of "
              "its own work, apart from the hooks' dispatch and the syscall slow path (min / median / max):", ""]
    for workload in FLOOD_MODES:
        ratios = ratio_rows(results, workload, "rsttrace", EMPTY_HOOKS)
        if ratios:
            lines.append(f"- {workload}: {fmt(stats(ratios), percent=True)}")
    lines.append("")
    # BENCH_TAG: a second run on one day gets its own file instead of replacing the first.
    path = os.path.join(ROOT, "bench", "results", f"{today}-floods{os.environ.get('BENCH_TAG', '')}.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    with open(path.replace(".md", ".json"), "w") as f:
        json.dump({"results": results}, f, indent=1)
    print(f"wrote {path}")


def main():
    if os.geteuid() != 0:
        sys.exit("bench: run as root")
    if os.environ.get("BENCH_SUITE") == "floods":
        setup_namespace()
        try:
            results = run_floods()
        finally:
            teardown()
            shutil.rmtree(WORK, ignore_errors=True)
        write_floods_report(results)
        return
    setup_namespace()
    try:
        results, costs, soak = run()
    finally:
        teardown()
        shutil.rmtree(WORK, ignore_errors=True)
    write_report(results, costs, soak)


if __name__ == "__main__":
    main()
