"""A real Prometheus (Debian's `prometheus`, its storage in a temporary
directory, listening on 127.0.0.1 in a network namespace of this test's own)
scrapes a running rsttrace every second, with dist/prometheus/rsttrace.rules.yml
loaded. The test provokes resets in that namespace (connections to a port
nothing listens on), then asks Prometheus' HTTP API for the values and checks
them against the kernel's own counter (nstat TcpOutRsts) and rsttrace's
summary; the no-listener alert is pending; `promtool check metrics` is clean on
a scrape of the same page. Root; 77 without prometheus."""

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "root"))
import harness  # noqa: E402

RULES = os.path.join(HERE, "..", "..", "dist", "prometheus", "rsttrace.rules.yml")
RESETS = 40


def nstat(counter):
    """A kernel counter of this network namespace, as nstat reads it (absolute, history untouched)."""
    out = subprocess.run(["nstat", "-a", "-z", "-s", "--json", counter], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)["kernel"][counter]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


class Prometheus:
    def __init__(self, workdir, target):
        self.port = random.randint(20000, 29999)  # a namespace of our own: nothing else listens
        self.url = f"http://127.0.0.1:{self.port}"
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    f"rule_files:\n  - {os.path.abspath(RULES)}\n"
                    f"scrape_configs:\n  - job_name: rsttrace\n    static_configs:\n"
                    f"      - targets: ['{target}']\n")
        self.log = open(os.path.join(workdir, "prometheus.log"), "w")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={workdir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}"], stdout=self.log, stderr=subprocess.STDOUT)

    def ready(self):
        try:
            return "Ready" in http_get(self.url + "/-/ready", timeout=1)
        except OSError:
            return False

    def query(self, expr):
        """The instant vector of `expr`, as {labels tuple: float}."""
        body = json.loads(http_get(self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
        assert body["status"] == "success", body
        return {tuple(sorted(sample["metric"].items())): float(sample["value"][1])
                for sample in body["data"]["result"]}

    def value(self, expr):
        samples = self.query(expr)
        return next(iter(samples.values())) if len(samples) == 1 else None

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def main():
    harness.require_root()
    if not shutil.which("prometheus") or not shutil.which("promtool"):
        print("SKIP: no prometheus (apt-get install prometheus; scripts/install-deps --test)")
        return harness.SKIP
    netns = harness.enter_private_netns()
    port = 2222
    metrics = f"127.0.0.1:{random.randint(30000, 39999)}"
    with tempfile.TemporaryDirectory(prefix="rsttrace-prometheus-") as workdir, \
            harness.Rsttrace("--port", str(port), "--netns", str(netns), "--metrics", metrics) as rsttrace:
        prometheus = Prometheus(workdir, metrics)
        try:
            harness.wait_until(prometheus.ready, timeout=60, what="prometheus /-/ready")
            harness.wait_until(lambda: prometheus.value('up{job="rsttrace"}') == 1.0, timeout=30,
                               what="a first scrape of rsttrace")
            page = http_get(f"http://{metrics}/metrics")
            check = subprocess.run(["promtool", "check", "metrics"], input=page, capture_output=True, text=True)
            assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), \
                f"promtool check metrics: {check.stdout}{check.stderr}"
            print(f"promtool check metrics: clean ({len(page.splitlines())} lines)")

            before = nstat("TcpOutRsts")
            for _ in range(RESETS):  # nothing listens on the port: the kernel answers each SYN with a reset
                with socket.socket() as client:
                    try:
                        client.connect(("127.0.0.1", port))
                        raise AssertionError(f"something listens on {port}")
                    except ConnectionRefusedError:
                        pass
            kernel_resets = nstat("TcpOutRsts") - before
            assert kernel_resets == RESETS, f"nstat TcpOutRsts rose by {kernel_resets}, not {RESETS}"

            expr = 'sum(rsttrace_events_total{job="rsttrace",verdict="no-listener",port="2222"})'
            harness.wait_until(lambda: prometheus.value(expr) == RESETS, timeout=60,
                               what=f"Prometheus to hold {RESETS} no-listener events (last: {prometheus.query(expr)})")
            top = prometheus.value('rsttrace_top_remote_events{remote_addr="127.0.0.1"}')
            assert top == RESETS, f"top remote 127.0.0.1: {top}"
            assert prometheus.value("rsttrace_lost_events_total") == 0.0
            assert prometheus.value("rsttrace:collector_resident_bytes") > 0
            harness.wait_until(lambda: prometheus.query('ALERTS{alertname="RsttraceNoListener"}'), timeout=60,
                               what="the RsttraceNoListener alert (pending)")
            alert = prometheus.query('ALERTS{alertname="RsttraceNoListener"}')
            print("alert:", dict(next(iter(alert))))
            prometheus_events = prometheus.value(expr)
        finally:
            prometheus.stop()
        rsttrace.stop()
        summary = rsttrace.summary()
        assert summary["verdicts"].get("no-listener") == prometheus_events, summary["verdicts"]
        assert summary["kernel"]["reset_sent"] == kernel_resets, summary["kernel"]
        print(f"{RESETS} resets: nstat TcpOutRsts +{kernel_resets}, Prometheus {prometheus_events} no-listener "
              f"events, rsttrace's summary {summary['verdicts']} (kernel reset_sent {summary['kernel']['reset_sent']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
