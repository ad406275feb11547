"""Running as a service: metrics scraped over HTTP and checked against the
events and the kernel's counters, and rsttrace keeping on through what happens
on a server during a long incident (a second rsttrace beside it, sshd
restarting, namespaces coming and going, rulesets reloaded)."""

import os
import signal
import socket
import subprocess
import tempfile
import unittest
import urllib.request

import harness
from harness import Rsttrace, children_of, status_of, wait_until

PORT = 2223
NETNS = None
METRICS = "127.0.0.1:9829"


def refused(count, port=PORT, addr="127.0.0.1"):
    for _ in range(count):
        with socket.socket() as sock:
            sock.connect_ex((addr, port))


def scrape(address=METRICS):
    """The metrics page parsed: {(name, frozenset(labels)): value}."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, value = line.rsplit(" ", 1)
        labels = frozenset()
        if "{" in series:
            series, body = series[:-1].split("{", 1)
            labels = frozenset(tuple(pair.split("=", 1)) for pair in body.split(","))
        samples[(series, labels)] = float(value)
    return samples


def scrape_slowly(address=METRICS):
    """scrape() with room for one stalled client ahead of it (5 s server timeout)."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=15) as response:
        response.read()
    return scrape(address)


def events_metric(samples, verdict, port=PORT):
    key = ("rsttrace_events_total", frozenset({("verdict", f'"{verdict}"'), ("kind", '"reset"'),
                                                ("direction", '"sent"'), ("port", f'"{port}"')}))
    return samples.get(key, 0)


class MetricsTest(unittest.TestCase):
    def test_scraped_counters_match_events_and_kernel(self):
        with Rsttrace("--port", str(PORT), "--netns", str(NETNS), "--metrics", METRICS, "--bpf-stats") as rt:
            before = harness.tcp_mib("OutRsts")
            refused(25)
            sent = harness.tcp_mib("OutRsts") - before
            wait_until(lambda: len(rt.events()) >= 25, 10, "25 events")
            samples = wait_until(lambda: (s := scrape()) and events_metric(s, "no-listener") >= 25 and s, 10,
                                 "the metrics page to count 25 no-listener resets")
            self.assertEqual(sent, 25)
            self.assertEqual(events_metric(samples, "no-listener"), 25)
            self.assertEqual(samples[("rsttrace_lost_events_total", frozenset())], 0)
            self.assertGreaterEqual(samples[("rsttrace_kernel_events_total", frozenset())], 25)
            self.assertGreater(samples[("process_resident_memory_bytes", frozenset())], 1 << 20)
            self.assertGreater(samples[("process_cpu_seconds_total", frozenset())], 0)
            runs = samples[("rsttrace_bpf_program_runs_total", frozenset({("program", '"handle_send_reset"')}))]
            self.assertGreaterEqual(runs, 25)
        self.assertEqual(rt.returncode, 0)

    def test_http_answers_in_kind_and_a_stalled_client_stalls_nothing_else(self):
        host, port = METRICS.split(":")

        def exchange(request, read_all=True):
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(request)
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
                return data

        with Rsttrace("--port", str(PORT), "--netns", str(NETNS), "--metrics", METRICS) as rt:
            self.assertTrue(exchange(b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405 "))
            self.assertTrue(exchange(b"GET /nope HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404 "))
            self.assertTrue(exchange(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
                            .startswith(b"HTTP/1.1 431 "))
            head = exchange(b"HEAD /metrics HTTP/1.1\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n"))
            # A client that connects and says nothing holds the server for its 5 s
            # timeout at most; tracing goes on meanwhile, and the next scrape is served.
            with socket.create_connection((host, int(port))):
                refused(5)
                wait_until(lambda: len(rt.events()) >= 5, 10, "events while the metrics server waits")
                self.assertGreaterEqual(events_metric(scrape_slowly(), "no-listener"), 0)
            self.assertEqual(events_metric(wait_until(lambda: (s := scrape()) and events_metric(s, "no-listener") >= 5
                                                      and s, 10, "5 resets on the page"), "no-listener"), 5)
        self.assertEqual(rt.returncode, 0)

    def test_refuses_remote_address_and_taken_port(self):
        remote = subprocess.run([harness.RSTTRACE, "--metrics", "0.0.0.0:9829"], capture_output=True, text=True)
        self.assertEqual(remote.returncode, 2)
        self.assertIn("--metrics-allow-remote", remote.stderr)
        self.assertEqual(len(remote.stderr.strip().splitlines()), 1)
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            proc = subprocess.run([harness.RSTTRACE, "--metrics", f"127.0.0.1:{port}", "--duration", "1"],
                                  capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(f"failed to bind metrics address 127.0.0.1:{port}: Address already in use", proc.stderr)


class KeepsWorkingTest(unittest.TestCase):
    def test_second_rsttrace_beside_the_first(self):
        with Rsttrace("--port", str(PORT), "--netns", str(NETNS)) as first, \
                Rsttrace("--port", str(PORT), "--netns", str(NETNS)) as second:
            refused(10)
            wait_until(lambda: len(first.events()) >= 10 and len(second.events()) >= 10, 10, "both see 10")
        for rt in (first, second):
            self.assertEqual(rt.returncode, 0)
            self.assertEqual(rt.summary()["events"], 10)
            self.assertEqual(rt.summary()["lost"], 0)

    def test_namespaces_created_and_deleted(self):
        # Watching every namespace: each new one is seen, deleted ones leave no trace behind.
        with Rsttrace("--port", str(PORT)) as rt:
            for round_number in range(3):
                name = f"rsttrace-test-{os.getpid()}-{round_number}"
                subprocess.run(["ip", "netns", "add", name], check=True)
                try:
                    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
                    inode = os.stat(f"/run/netns/{name}").st_ino
                    subprocess.run(["ip", "netns", "exec", name, "python3", "-c",
                                    f"import socket\nfor _ in range(3): socket.socket().connect_ex(('127.0.0.1', {PORT}))"],
                                   check=True)
                    wait_until(lambda: len(rt.events(netns=inode)) >= 3, 10, f"3 events in netns {name}")
                finally:
                    subprocess.run(["ip", "netns", "del", name], check=True)
            refused(2)
            wait_until(lambda: len(rt.events(netns=NETNS)) >= 2, 10, "events in the test's own netns still")
        self.assertEqual(rt.returncode, 0)
        self.assertEqual(rt.summary()["lost"], 0)

    def test_ruleset_reloaded(self):
        # A rule replaced while rsttrace runs: each drop names the rule that was there when it happened.
        table = "rsttrace_reload"
        def load(comment):
            subprocess.run(["nft", "-f", "-"], check=True, text=True, input=(
                f"table inet {table}\ndelete table inet {table}\n"
                f"table inet {table} {{\n  chain input {{\n    type filter hook input priority 0;\n"
                f"    tcp dport {PORT} reject with tcp reset comment \"{comment}\"\n  }}\n}}\n"))
        self.addCleanup(subprocess.run, ["nft", "delete", "table", "inet", table], capture_output=True)
        with socket.socket() as listener:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", PORT))
            listener.listen(16)
            with Rsttrace("--port", str(PORT), "--netns", str(NETNS)) as rt:
                for generation in ("first", "second"):
                    load(generation)
                    refused(1)
                    wait_until(lambda: any(generation in (e.get("rule") or {}).get("text", "")
                                           for e in rt.events(verdict="firewall")), 10, f"the {generation} rule")
        firewall = rt.events(verdict="firewall")
        self.assertEqual(len(firewall), 2)
        self.assertIn("first", firewall[0]["rule"]["text"])
        self.assertIn("second", firewall[1]["rule"]["text"])

    def test_sshd_restarts(self):
        # sshd with MaxStartups 1: a second unauthenticated connection is reset by sshd.
        workdir = tempfile.TemporaryDirectory(prefix="rsttrace-sshd-")
        self.addCleanup(workdir.cleanup)

        def holding_the_only_slot():
            # The slot of an earlier probe frees when its sshd child exits: retry until sshd greets us.
            while True:
                holder = socket.create_connection(("127.0.0.1", PORT))
                if holder.recv(64).startswith(b"SSH-"):
                    return holder
                holder.close()

        def beyond_max_startups(rt, pid):
            with holding_the_only_slot():
                with socket.create_connection(("127.0.0.1", PORT)) as extra:
                    # Like ssh: the banner goes out at once, so sshd's close finds it unread and resets.
                    extra.sendall(b"SSH-2.0-rsttrace-test\r\n")
                    wait_until(lambda: rt.events(verdict="sshd", pid=pid), 15, f"an sshd verdict for pid {pid}")

        with Rsttrace("--port", str(PORT), "--netns", str(NETNS)) as rt:
            first = start_sshd(self, workdir.name, "MaxStartups 1\n")
            beyond_max_startups(rt, first.pid)
            first.terminate()
            first.wait()
            refused(1)
            wait_until(lambda: rt.events(verdict="no-listener"), 10, "no-listener while sshd is down")
            second = start_sshd(self, workdir.name, "MaxStartups 1\n")
            beyond_max_startups(rt, second.pid)
            second.terminate()
            second.wait()
        self.assertEqual(rt.returncode, 0)
        self.assertEqual(rt.summary()["lost"], 0)


def start_sshd(test, workdir, extra_config="", wrap=None):
    """A real sshd on PORT in the test's netns; wrap: argv prefix (e.g. a mount namespace of its own)."""
    key = os.path.join(workdir, "host_key")
    if not os.path.exists(key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    config = os.path.join(workdir, "sshd_config")
    with open(config, "w") as f:
        f.write(f"Port {PORT}\nListenAddress 127.0.0.1\nHostKey {key}\nPidFile {workdir}/sshd.pid\n"
                f"UsePAM no\n{extra_config}")
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen((wrap or []) + ["/usr/sbin/sshd", "-D", "-e", "-f", config],
                            stderr=subprocess.DEVNULL)
    test.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))

    wait_until(listening, 10, "sshd listening")
    return proc


def listening(port=PORT):
    """A socket of this netns listens on port (connecting would itself be traced)."""
    with open("/proc/net/tcp") as f:
        return any(fields[1].endswith(f":{port:04X}") and fields[3] == "0A"
                   for fields in (line.split() for line in f.readlines()[1:]))


class PrivilegesTest(unittest.TestCase):
    def test_dropped_after_attach_and_broker_keeps_them(self):
        with Rsttrace("--port", str(PORT), "--netns", str(NETNS), "--metrics", METRICS) as rt:
            status = status_of(rt.proc.pid)
            for field in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"):
                self.assertEqual(int(status[field], 16), 0, f"{field} {status[field]}")
            self.assertEqual(status["NoNewPrivs"], "1")
            for task in os.listdir(f"/proc/{rt.proc.pid}/task"):  # the metrics threads too
                self.assertEqual(int(status_of(f"{rt.proc.pid}/task/{task}")["CapEff"], 16), 0)
            brokers = [c for c in children_of(rt.proc.pid) if status_of(c)["Name"] == "rsttrace-broker"]
            self.assertEqual(len(brokers), 1)
            self.assertNotEqual(int(status_of(brokers[0])["CapEff"], 16), 0)
            scrape()  # the metrics thread serves without privileges
        self.assertEqual(rt.returncode, 0)
        self.assertFalse(os.path.exists(f"/proc/{brokers[0]}/status") and
                         status_of(brokers[0]).get("PPid") == str(rt.proc.pid), "the broker outlived rsttrace")

    def test_user_switch(self):
        with tempfile.TemporaryDirectory(prefix="rsttrace-user-") as directory:
            os.chown(directory, 65534, 65534)
            capture = os.path.join(directory, "capture.jsonl")
            with Rsttrace("--port", str(PORT), "--netns", str(NETNS), "--user", "nobody", "--output", capture,
                          ready_owner=65534) as rt:
                status = status_of(rt.proc.pid)
                self.assertEqual(status["Uid"].split(), ["65534"] * 4)
                self.assertEqual(status["Groups"].strip(), "")
                self.assertEqual(int(status["CapEff"], 16), 0)
                refused(2)
                wait_until(lambda: len(rt.events()) >= 2, 10, "2 events as nobody")
                rt.proc.send_signal(signal.SIGHUP)  # reopen as nobody
                refused(1)
                wait_until(lambda: len(rt.events()) >= 3, 10, "3 events")
            self.assertEqual(rt.returncode, 0)
            self.assertEqual(rt.summary()["capture"]["failed_writes"], 0)
            self.assertEqual(os.stat(capture).st_uid, 0)  # created and reopened by root, written by nobody

    def test_wrapper_provenance_through_the_broker(self):
        # sshd in a mount namespace of its own, where /etc/hosts.deny refuses 127.0.0.1:
        # rsttrace (without privileges) names the line through the broker.
        workdir = tempfile.TemporaryDirectory(prefix="rsttrace-wrap-")
        self.addCleanup(workdir.cleanup)
        for name, text in (("hosts.allow", "# nothing allowed explicitly\n"), ("hosts.deny", "sshd: 127.0.0.1\n")):
            with open(os.path.join(workdir.name, name), "w") as f:
                f.write(text)
        binds = " && ".join(f"mount --bind {workdir.name}/{name} /etc/{name}" for name in ("hosts.allow", "hosts.deny"))
        wrap = ["unshare", "--mount", "--propagation", "private", "sh", "-c", binds + ' && exec "$0" "$@"']
        with Rsttrace("--port", str(PORT), "--netns", str(NETNS)) as rt:
            start_sshd(self, workdir.name, wrap=wrap)
            with socket.create_connection(("127.0.0.1", PORT)) as client:
                client.sendall(b"SSH-2.0-rsttrace-test\r\n")
                event = rt.wait_event(timeout=20, verdict="tcp-wrappers")
        self.assertEqual(event["wrapper_rule"]["file"], "/etc/hosts.deny")
        self.assertEqual(event["wrapper_rule"]["line"], 1)
        self.assertEqual(event["wrapper_rule"]["text"], "sshd: 127.0.0.1")
        self.assertEqual(event["written_by"]["source"], "mtime")


if __name__ == "__main__":
    harness.require_root()
    NETNS = harness.enter_private_netns()
    unittest.main()
